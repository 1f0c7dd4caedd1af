//! What both shells' `bench grow` share: the file its reads go through, and how a read of a
//! given size is made of the reads a file server answers.

/// The size of the file `bench grow` reads: 64 KiB.
pub const FILE_SIZE: usize = 65536;

/// Byte `i` of that file.
pub fn byte(i: usize) -> u8 {
    (i as u8) ^ (i >> 8) as u8
}

/// Whether `bytes` are the file's from offset `at`.
pub fn is_at(bytes: &[u8], at: usize) -> bool {
    bytes.iter().enumerate().all(|(i, &b)| b == byte(at + i))
}

/// Where the `i`-th extra session of a restart row keeps its file's offset.
pub fn offset(i: usize) -> usize {
    (i * 1000) % (FILE_SIZE - 64)
}

/// Read `size` bytes from a file's offset through `chunk`, in as many `read`s (each into a
/// prefix of `chunk`, answering how many bytes came) as the server needs; with `check`,
/// whether they are the file's bytes (the offset being 0 at the start).
pub fn read_exactly(
    size: usize,
    chunk: &mut [u8],
    check: bool,
    mut read: impl FnMut(&mut [u8]) -> Result<usize, &'static str>,
) -> Result<bool, &'static str> {
    let (mut done, mut right) = (0, true);
    while done < size {
        let want = (size - done).min(chunk.len());
        let got = read(&mut chunk[..want])?;
        if got == 0 {
            return Err("the file ended early");
        }
        if check {
            right &= is_at(&chunk[..got], done);
        }
        done += got;
    }
    Ok(right)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_is_made_of_the_servers_answers_and_checked() {
        let file: [u8; 300] = core::array::from_fn(byte);
        let mut chunk = [0u8; 64];
        // A server that answers at most 50 bytes at a time.
        let mut at = 0;
        let mut server = |out: &mut [u8]| {
            let n = out.len().min(50).min(file.len() - at);
            out[..n].copy_from_slice(&file[at..at + n]);
            at += n;
            Ok(n)
        };
        assert_eq!(read_exactly(200, &mut chunk, true, &mut server), Ok(true));
        assert_eq!(read_exactly(200, &mut chunk, true, &mut server), Err("the file ended early"));
        let mut wrong = |out: &mut [u8]| {
            out.fill(0xee);
            Ok(out.len())
        };
        assert_eq!(read_exactly(100, &mut chunk, true, &mut wrong), Ok(false));
        assert_eq!(read_exactly(100, &mut chunk, false, &mut wrong), Ok(true));
        assert!(is_at(&file[10..20], 10) && !is_at(&file[10..20], 11));
        assert!(offset(63) + 64 <= FILE_SIZE);
    }
}
