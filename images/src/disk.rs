//! The persistent disk: a raw image file QEMU attaches as a virtio-blk PCI device, so the
//! guest's files survive a reboot (`qemu::Machine::disk`).
//!
//! ```text
//!  cargo os run               target/os/disk.img, created on first use (64 MiB of zeros, sparse)
//!  cargo os run --disk PATH   PATH, created the same way if missing; an existing file as it is
//!  cargo os run --no-disk     no disk: the guest keeps its files in its RAM disk
//!  tests, campaigns           a Scratch disk: a fresh image of their own, never disk.img
//! ```

use crate::{fail, out_dir, Result};
use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// The size of a disk made for `cargo os run` or a scratch disk: 64 MiB.
pub const SIZE: u64 = 64 << 20;

/// An existing image smaller than this (64 KiB) is refused: it is no disk, more likely a file
/// named by mistake.
pub const MIN_SIZE: u64 = 64 << 10;

/// `target/os/disk.img`: the disk `cargo os run` attaches unless told otherwise.
pub fn default_path() -> PathBuf {
    out_dir().join("disk.img")
}

/// A disk image ready to attach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disk {
    /// Absolute: QEMU would read `a:b.img` as protocol `a`.
    pub path: PathBuf,
    pub size: u64,
    /// Made just now (all zeros), not found.
    pub created: bool,
}

impl std::fmt::Display for Disk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let size = if self.size.is_multiple_of(1 << 20) {
            format!("{} MiB", self.size >> 20)
        } else {
            format!("{} bytes", self.size)
        };
        let how = if self.created { ", new: all zeros" } else { "" };
        write!(f, "{} ({size}{how})", self.path.display())
    }
}

/// The disk at `path`: a new [`SIZE`] image of zeros if nothing is there (its directory must
/// exist), else the file as it is, if it is a regular file of at least [`MIN_SIZE`] bytes
/// that this user may read and write.
pub fn prepare(path: &Path) -> Result<Disk> {
    let shown = path.display();
    if path.to_str().is_none() {
        return Err(fail!(
            "disk image {shown}: the path is not valid UTF-8, which QEMU's -drive cannot take"
        ));
    }
    let created = match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => {
            return Err(fail!(
                "disk image {shown} is a directory; give the path of a file (--disk DIR/disk.img)"
            ))
        }
        Ok(meta) if !meta.is_file() => return Err(fail!("disk image {shown} is not a regular file")),
        Ok(meta) if meta.len() < MIN_SIZE => {
            return Err(fail!(
                "disk image {shown} is {} bytes, less than the {} KiB a disk must have; \
                 remove it to get a fresh {} MiB one, or name another file",
                meta.len(),
                MIN_SIZE >> 10,
                SIZE >> 20
            ))
        }
        Ok(_) => false,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match create(path, SIZE) {
            Ok(()) => true,
            // Another `cargo os` made it meanwhile: use that one.
            Err(_) if path.is_file() => false,
            Err(e) => return Err(e),
        },
        Err(e) => return Err(fail!("disk image {shown}: {e}")),
    };
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| fail!("disk image {shown} cannot be opened for reading and writing: {e}"))?;
    let path = std::path::absolute(path).map_err(|e| fail!("disk image {shown}: {e}"))?;
    let size = std::fs::metadata(&path).map_err(|e| fail!("disk image {shown}: {e}"))?.len();
    Ok(Disk { path, size, created })
}

/// A disk image file as the host's block device for fs-core (the guest's file system code).
struct FileDevice {
    file: std::cell::RefCell<std::fs::File>,
    blocks: u32,
}

impl fs_core::BlockDevice for FileDevice {
    fn blocks(&self) -> Option<u32> {
        Some(self.blocks)
    }

    fn read(&self, block: u32, out: &mut fs_core::Block) -> bool {
        use std::io::Read;
        let mut f = self.file.borrow_mut();
        f.seek(SeekFrom::Start(block as u64 * fs_core::BLOCK_SIZE as u64)).is_ok()
            && f.read_exact(out).is_ok()
    }

    fn write(&self, block: u32, data: &fs_core::Block) -> bool {
        let mut f = self.file.borrow_mut();
        f.seek(SeekFrom::Start(block as u64 * fs_core::BLOCK_SIZE as u64)).is_ok()
            && f.write_all(data).is_ok()
    }

    fn flush(&self) -> bool {
        self.file.borrow_mut().sync_data().is_ok()
    }
}

/// Write `data` as file `guest` (an absolute path; missing directories are made) into the
/// file system on disk image `image`, with the guest's own file-system code (fs-core), all
/// of it or nothing: how a server built on the host reaches the guest's disk (`cargo os put`),
/// to be installed with `update`. A blank image is formatted first; one that holds anything
/// else is refused and left as it is.
pub fn put(image: &Path, guest: &str, data: &[u8]) -> Result<()> {
    use fs_core::{ClientState, FsError, Held, Volume};
    let shown = image.display();
    if !guest.starts_with('/') {
        return Err(fail!("{guest}: give the guest path from the root (/servers/fs-v2)"));
    }
    let disk = prepare(image)?;
    let file =
        OpenOptions::new().read(true).write(true).open(&disk.path).map_err(|e| fail!("{shown}: {e}"))?;
    let blocks = u32::try_from(disk.size / fs_core::BLOCK_SIZE as u64).unwrap_or(u32::MAX);
    let dev = FileDevice { file: std::cell::RefCell::new(file), blocks };
    let (volume, _) =
        Volume::mount(dev).map_err(|e| fail!("{shown}: cannot mount its file system: {e:?}"))?;
    let fs =
        volume.disk().map_err(|e| fail!("{shown} holds no Axolotl file system ({e:?}); nothing written"))?;
    let st = ClientState::fresh();
    let mut at = 0;
    while let Some(i) = guest[at + 1..].find('/') {
        at += 1 + i;
        match st.mkdir(fs, &guest[..at]) {
            Ok(()) | Err(FsError::Exists) => {}
            Err(e) => return Err(fail!("{shown}: cannot make directory {}: {e:?}", &guest[..at])),
        }
    }
    st.put(fs, guest, data, false, Held::unseen).map_err(|e| fail!("{shown}: cannot write {guest}: {e:?}"))
}

/// Make a new image of `size` zero bytes at `path`, sparse (no block is written). Fails if
/// anything is at `path` already.
pub fn create(path: &Path, size: u64) -> Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| fail!("cannot create disk image {}: {e}", path.display()))?;
    file.set_len(size).map_err(|e| {
        let _ = std::fs::remove_file(path);
        fail!("cannot make disk image {} {size} bytes long: {e}", path.display())
    })
}

/// A fresh disk image of its own for one test or campaign, under `target/os/scratch/`: never
/// the user's `disk.img`. Removed when dropped, unless the thread is panicking (a failing
/// test: the image stays for inspection and its path is printed) or [`Scratch::keep`] was
/// called.
#[derive(Debug)]
pub struct Scratch {
    path: PathBuf,
    keep: bool,
}

impl Scratch {
    /// A new [`SIZE`] image of zeros named after `name` (`target/os/scratch/NAME-PID-N.img`).
    pub fn new(name: &str) -> Result<Scratch> {
        Scratch::with_bytes(name, SIZE, &[])
    }

    /// A new image of `size` bytes, zeros except `writes`: each `(offset, bytes)` written at
    /// its byte offset (they must fit in `size`).
    pub fn with_bytes(name: &str, size: u64, writes: &[(u64, &[u8])]) -> Result<Scratch> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = out_dir().join("scratch");
        std::fs::create_dir_all(&dir).map_err(|e| fail!("cannot create {}: {e}", dir.display()))?;
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("{name}-{}-{n}.img", std::process::id()));
        // A file left by an earlier process of the same id (a kept image) is not reused.
        let _ = std::fs::remove_file(&path);
        create(&path, size)?;
        let scratch = Scratch { path, keep: false };
        scratch.write_at(writes)?;
        Ok(scratch)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Do not remove the image when dropped; returns its path.
    pub fn keep(mut self) -> PathBuf {
        self.keep = true;
        self.path.clone()
    }

    fn write_at(&self, writes: &[(u64, &[u8])]) -> Result<()> {
        let shown = self.path.display();
        let mut file =
            OpenOptions::new().write(true).open(&self.path).map_err(|e| fail!("cannot open {shown}: {e}"))?;
        let size = file.metadata().map_err(|e| fail!("{shown}: {e}"))?.len();
        for &(offset, bytes) in writes {
            if offset.checked_add(bytes.len() as u64).is_none_or(|end| end > size) {
                return Err(fail!(
                    "{} bytes at offset {offset} do not fit in the {size}-byte image {shown}",
                    bytes.len()
                ));
            }
            file.seek(SeekFrom::Start(offset))
                .and_then(|_| file.write_all(bytes))
                .map_err(|e| fail!("cannot write {shown} at {offset}: {e}"))?;
        }
        file.sync_all().map_err(|e| fail!("cannot write {shown}: {e}"))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() && !self.keep {
            eprintln!("[os] disk image kept for inspection: {}", self.path.display());
        } else if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// How two images differ, in 512-byte sectors: `None` if they are the same, else what a
/// person needs to start looking (how many sectors differ, the first few, the sizes).
pub fn differences(before: &[u8], after: &[u8]) -> Option<String> {
    const SECTOR: usize = 512;
    if before == after {
        return None;
    }
    let mut changed = Vec::new();
    for (i, (a, b)) in before.chunks(SECTOR).zip(after.chunks(SECTOR)).enumerate() {
        if a != b {
            changed.push(i);
        }
    }
    let mut what = Vec::new();
    if before.len() != after.len() {
        what.push(format!("size {} bytes, was {}", after.len(), before.len()));
    }
    if let Some(&first) = changed.first() {
        let a = &before[first * SECTOR..];
        let b = &after[first * SECTOR..];
        let byte = first * SECTOR + a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(0);
        let list: Vec<String> = changed.iter().take(8).map(|s| s.to_string()).collect();
        let more = if changed.len() > 8 { ", ..." } else { "" };
        what.push(format!(
            "{} sector(s) of 512 bytes changed ({}{more}); the first changed byte is at offset {byte}",
            changed.len(),
            list.join(", ")
        ));
    }
    Some(what.join("; "))
}

/// The whole image at `path` (64 MiB by default: fine for a test).
pub fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| fail!("cannot read disk image {}: {e}", path.display()))
}

/// Whether the file at `path` occupies fewer bytes on the host than its length (it has holes,
/// as [`create`] makes them).
#[cfg(unix)]
pub fn is_sparse(path: &Path) -> Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).map_err(|e| fail!("{}: {e}", path.display()))?;
    Ok(meta.blocks() * 512 < meta.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory of this test's own under target/os/test-disk-units.
    fn dir(name: &str) -> PathBuf {
        let d = out_dir().join("test-disk-units").join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    #[cfg(unix)]
    fn a_missing_disk_is_made_64_mib_of_zeros_and_sparse() {
        let d = dir("missing");
        let path = d.join("disk.img");
        let disk = prepare(&path).unwrap();
        assert!(disk.created && disk.size == SIZE && disk.path.is_absolute());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 64 * 1024 * 1024);
        assert!(is_sparse(&path).unwrap(), "no block written");
        assert!(disk.to_string().ends_with("disk.img (64 MiB, new: all zeros)"), "{disk}");
        // Found the second time, and left as it is.
        std::fs::write(&path, vec![7u8; 100 << 10]).unwrap();
        let again = prepare(&path).unwrap();
        assert!(!again.created && again.size == 100 << 10);
        assert_eq!(again.to_string(), format!("{} (102400 bytes)", again.path.display()));
        assert_eq!(std::fs::read(&path).unwrap(), vec![7u8; 100 << 10]);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_relative_path_becomes_absolute() {
        let d = dir("relative");
        // Unit tests run in the crate's directory, images/: the out dir is reached by `..`.
        assert_eq!(std::env::current_dir().unwrap(), Path::new(env!("CARGO_MANIFEST_DIR")));
        let rel = Path::new("..").join(d.strip_prefix(crate::workspace_root()).unwrap());
        let disk = prepare(&rel.join("a:b.img")).unwrap();
        assert!(disk.path.is_absolute() && disk.path.ends_with("a:b.img"));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_directory_a_tiny_file_or_a_missing_directory_is_refused() {
        let d = dir("refused");
        let e = prepare(&d).unwrap_err().to_string();
        assert!(e.contains("is a directory; give the path of a file"), "{e}");
        let tiny = d.join("tiny.img");
        std::fs::write(&tiny, [0u8; 512]).unwrap();
        let e = prepare(&tiny).unwrap_err().to_string();
        assert!(e.contains("tiny.img is 512 bytes, less than the 64 KiB a disk must have"), "{e}");
        assert_eq!(std::fs::metadata(&tiny).unwrap().len(), 512, "left alone");
        std::fs::write(&tiny, vec![0u8; MIN_SIZE as usize]).unwrap();
        assert_eq!(prepare(&tiny).unwrap().size, MIN_SIZE, "64 KiB is enough");
        let e = prepare(&d.join("nowhere").join("disk.img")).unwrap_err().to_string();
        assert!(e.starts_with("cannot create disk image ") && e.contains("nowhere/disk.img"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    #[cfg(unix)]
    fn a_read_only_disk_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let d = dir("readonly");
        let path = d.join("ro.img");
        create(&path, MIN_SIZE).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
        // root may write anyway
        if OpenOptions::new().write(true).open(&path).is_err() {
            let e = prepare(&path).unwrap_err().to_string();
            assert!(e.contains("cannot be opened for reading and writing"), "{e}");
        }
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn scratch_disks_are_fresh_prefilled_and_removed() {
        let magic: &[u8] = b"\x53\xef";
        let a = Scratch::with_bytes("unit", MIN_SIZE, &[(1080, magic), (0, b"boot")]).unwrap();
        let b = Scratch::new("unit").unwrap();
        assert_ne!(a.path(), b.path());
        let bytes = read(a.path()).unwrap();
        assert_eq!(bytes.len() as u64, MIN_SIZE);
        assert_eq!((&bytes[..4], &bytes[1080..1082]), (&b"boot"[..], magic));
        assert!(bytes[4..1080].iter().chain(&bytes[1082..]).all(|&x| x == 0));
        assert_eq!(std::fs::metadata(b.path()).unwrap().len(), SIZE);
        let e = Scratch::with_bytes("unit", MIN_SIZE, &[(MIN_SIZE - 1, b"ab")]).unwrap_err().to_string();
        assert!(e.contains("2 bytes at offset 65535 do not fit in the 65536-byte image"), "{e}");
        let (pa, pb) = (a.path().to_path_buf(), b.path().to_path_buf());
        drop(a);
        let kept = b.keep();
        assert!(!pa.exists() && kept == pb && pb.exists());
        std::fs::remove_file(pb).unwrap();
    }

    #[test]
    fn differences_name_the_sectors() {
        let before = vec![0u8; 4096];
        assert_eq!(differences(&before, &before), None);
        let mut after = before.clone();
        after[1030] = 1;
        after[4095] = 2;
        assert_eq!(
            differences(&before, &after).unwrap(),
            "2 sector(s) of 512 bytes changed (2, 7); the first changed byte is at offset 1030"
        );
        assert_eq!(differences(&before, &before[..512]).unwrap(), "size 512 bytes, was 4096");
    }
}

#[cfg(test)]
mod put_tests {
    use super::*;

    #[test]
    fn put_writes_a_server_image_the_guest_can_read_back() {
        let scratch = Scratch::new("put").unwrap();
        let data: Vec<u8> = (0..140_000u32).map(|i| (i * 7 % 251) as u8).collect();
        put(scratch.path(), "/servers/fs-v2", &data).unwrap();
        put(scratch.path(), "/servers/fs-v2", &data[..1000]).unwrap();
        put(scratch.path(), "/servers/other", &data).unwrap();
        assert!(put(scratch.path(), "servers/x", &data).is_err(), "a relative path is refused");
        // Read back with the guest's code, as fs would.
        let file = OpenOptions::new().read(true).write(true).open(scratch.path()).unwrap();
        let dev = FileDevice { file: std::cell::RefCell::new(file), blocks: (SIZE / 512) as u32 };
        let (volume, formatted) = fs_core::Volume::mount(dev).unwrap();
        assert!(!formatted);
        let fs = volume.disk().unwrap();
        let mut st = fs_core::ClientState::fresh();
        for (path, want) in [("/servers/fs-v2", &data[..1000]), ("/servers/other", &data[..])] {
            let fd = st.open(fs, path, fs_core::mode::READ, fs_core::Held::unseen).unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 2048];
            loop {
                let n = st.read(fs, fd, &mut buf).unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            assert!(got == want, "{path} reads back as written");
            st.close(fd).unwrap();
        }
        let fsck = fs_core::fsck(fs).unwrap();
        assert!(fsck.is_clean(), "{fsck:?}");
    }
}
