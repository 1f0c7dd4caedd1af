//! Paths: join to a current directory and normalise (`.`, `..`, repeated slashes).

use crate::{FsError, NAME_MAX, PATH_MAX};

/// Join `path` to the directory `cwd` (absolute) and normalise. Writes the absolute result into
/// `out` and returns its length.
pub fn normalize(cwd: &str, path: &str, out: &mut [u8; PATH_MAX]) -> Result<usize, FsError> {
    if path.is_empty() {
        return Err(FsError::BadPath);
    }
    let mut len = 0usize;
    let base = if path.starts_with('/') { "" } else { cwd };
    for comp in base.split('/').chain(path.split('/')) {
        match comp {
            "" | "." => {}
            ".." => {
                while len > 0 {
                    len -= 1;
                    if out[len] == b'/' {
                        break;
                    }
                }
            }
            c => {
                if c.len() > NAME_MAX || len + 1 + c.len() > PATH_MAX {
                    return Err(FsError::NameTooLong);
                }
                out[len] = b'/';
                out[len + 1..len + 1 + c.len()].copy_from_slice(c.as_bytes());
                len += 1 + c.len();
            }
        }
    }
    if len == 0 {
        out[0] = b'/';
        len = 1;
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::string::String;

    fn norm(cwd: &str, path: &str) -> Result<String, FsError> {
        let mut out = [0u8; PATH_MAX];
        normalize(cwd, path, &mut out).map(|n| String::from_utf8(out[..n].to_vec()).unwrap())
    }

    #[test]
    fn paths_normalize() {
        assert_eq!(norm("/", "a/b").unwrap(), "/a/b");
        assert_eq!(norm("/x/y", "../z/./w//").unwrap(), "/x/z/w");
        assert_eq!(norm("/x", "/abs").unwrap(), "/abs");
        assert_eq!(norm("/", "../../..").unwrap(), "/");
        assert_eq!(norm("/", ""), Err(FsError::BadPath));
        assert_eq!(norm("/", &"n".repeat(NAME_MAX + 1)), Err(FsError::NameTooLong));
    }
}
