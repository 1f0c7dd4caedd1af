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

/// An absolute, normalised path.
pub struct Path {
    buf: [u8; PATH_MAX],
    len: usize,
}

impl Path {
    /// `path` taken relative to the directory `cwd` (absolute), normalised.
    pub fn new(cwd: &str, path: &str) -> Result<Path, FsError> {
        let mut buf = [0u8; PATH_MAX];
        let len = normalize(cwd, path, &mut buf)?;
        Ok(Path { buf, len })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The names from the root down; none for the root itself.
    pub fn components(&self) -> impl Iterator<Item = &[u8]> {
        components(self.as_bytes())
    }

    /// The parent's path and the last name (`None` for the root).
    pub fn split_last(&self) -> Option<(&[u8], &[u8])> {
        let s = self.as_bytes();
        let cut = s.iter().rposition(|&b| b == b'/')?;
        let name = &s[cut + 1..];
        (!name.is_empty()).then_some((&s[..cut], name))
    }
}

/// The names of a `/`-separated path, empty ones skipped.
pub fn components(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.split(|&b| b == b'/').filter(|c| !c.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::string::String;
    use std::vec::Vec;

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
        assert_eq!(norm("/a", ".").unwrap(), "/a");
        assert_eq!(norm("/", ""), Err(FsError::BadPath));
        assert_eq!(norm("/", &"n".repeat(NAME_MAX + 1)), Err(FsError::NameTooLong));
        assert_eq!(norm("/", &"abcdefgh/".repeat(12)), Err(FsError::NameTooLong));
    }

    #[test]
    fn paths_split_into_parent_and_name() {
        let p = Path::new("/x", "y/z").unwrap();
        assert_eq!(p.components().collect::<Vec<_>>(), [&b"x"[..], b"y", b"z"]);
        assert_eq!(p.split_last(), Some((&b"/x/y"[..], &b"z"[..])));
        assert_eq!(Path::new("/x", "..").unwrap().split_last(), None);
    }
}
