//! A client's session with the file system — its current directory and open files with their
//! modes and offsets — and the requests served against it.
//!
//! Neither file server keeps this state itself: the microkernel's `servers/fs` finds it in the
//! client's Server State Region, the libos fs cell receives it sealed inside each request. Both
//! hand it to the same code here, which is why it is a plain `#[repr(C)]` value with no
//! pointers: it must mean the same after being copied to another page or back from a client.
//! Since the bytes come from outside the server, [`ClientState::check`] is run on them before
//! any request is served; the requests then rely on what it checked.
//!
//! ```text
//!  offset  0    cwd_len (u16), padding
//!          8    cwd: PATH_MAX bytes, UTF-8, absolute
//!        104    files: MAX_FILES x OpenFile (12 bytes each; SMALL_MAX_FILES for the libos)
//!        296    end (200 for the libos)
//! ```
//!
//! ## Files that other sessions have open
//!
//! One rule, applied wherever another session holds what an operation would change: **a file
//! has at most one writing session at a time, and nothing is taken away from a session that
//! has a file or directory in use.** So, against what the other sessions hold ([`Held`]):
//!
//! | operation                                      | refused while another session ...       |
//! |------------------------------------------------|-----------------------------------------|
//! | open for writing (WRITE, APPEND), `put` append | has the file open for writing (`InUse`) |
//! | open with TRUNCATE, `put` replacing            | has the file open at all (`InUse`)      |
//! | remove a file                                  | has it open at all (`InUse`)            |
//! | remove a directory                             | is in it or below (`CurrentDirectory`)  |
//!
//! Reading and opening to read are never refused. A session's own descriptors do not stop it
//! (the scribe truncates the log it has open), except that it cannot remove a file it has open
//! or its own current directory or one above it: the format has no unnamed open files, and a
//! current directory that no longer exists leaves every relative path broken. Only the server
//! knows what the other sessions hold, so it passes it in (`others`): the microkernel's fs
//! reads every session's SSR; the libos cell reads the sessions its other clients keep
//! (`libos_kernel::kept_by_others`). Either way a descriptor records its inode's generation, so
//! one whose file was removed (and its inode perhaps reused) gets `BadFd`, never another file's
//! bytes.
//!
//! Every operation that changes the disk does so through one change set (`tx`) and commits it
//! only once nothing can fail any more: an operation that fails leaves the disk as it was.

use crate::disk::{Disk, Store};
use crate::layout::{DirEntry, INODES, KIND_DIR, KIND_FILE, MAX_FILE};
use crate::path::Path;
use crate::tx::Tx;
use crate::{mode, BlockDevice, FsError, Result, PATH_MAX};
use bytemuck::{Pod, Zeroable};

/// How many files one client of the microkernel's fs may have open at once ([`ClientState`]).
pub const MAX_FILES: usize = 16;
/// The most bytes of one write that are one operation (see `ClientState::write`): what the
/// journal is sized for, and the file protocols' largest write.
pub const WRITE_ATOMIC: usize = 2048;
/// How many files one libos client may have open at once ([`SmallClientState`]): its session
/// is copied into every request and back, so it stays small.
pub const SMALL_MAX_FILES: usize = 8;

/// What a slot of the open-file table holds while open: an object magic number in the CuriOS
/// manner, so a slot overwritten by a stray write is told apart from one that is free (0).
const FD_MAGIC: u16 = 0xF11E;

/// Open modes that let a descriptor change the file.
const WRITING: u8 = mode::WRITE | mode::APPEND;

/// One slot of the open-file table; its index is the file descriptor.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
struct OpenFile {
    /// `FD_MAGIC` while open, 0 when free.
    magic: u16,
    mode: u8,
    _pad: u8,
    inode: u16,
    /// The inode's generation when it was opened: a different one now means the file is gone.
    generation: u16,
    offset: u32,
}

/// What sessions hold of one file or directory: one session's (see `held`), or all the other
/// sessions' a server can see, combined.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Held {
    /// A session has the file open ...
    pub open: bool,
    /// ... and for writing (WRITE or APPEND).
    pub writing: bool,
    /// A session's current directory is this directory or below it.
    pub cwd: bool,
}

impl Held {
    /// Both holds together.
    pub fn or(self, other: Held) -> Held {
        Held {
            open: self.open || other.open,
            writing: self.writing || other.writing,
            cwd: self.cwd || other.cwd,
        }
    }

    /// What a server that cannot see its other sessions knows of them: nothing (for tests and
    /// single-session uses).
    pub fn unseen(_ino: u16, _path: &[u8]) -> Held {
        Held::default()
    }

    /// Would opening with mode `m` take from a holder what the rule protects?
    fn refuses(self, m: u8) -> bool {
        (m & mode::TRUNCATE != 0 && self.open) || (m & WRITING != 0 && self.writing)
    }
}

/// A session type holding `$files` open files, and the requests on it: written once, made
/// twice (below), because a `Pod` type cannot be generic over the table's length.
macro_rules! client_state {
    ($(#[$doc:meta])* $name:ident, $files:expr) => {
        /// Everything a file server remembers about one client. It lives with the client (see the
        /// module comment), so its fields are private: only the operations below change them, and
        /// they keep what [`check`](Self::check) verifies true.
        ///
        $(#[$doc])*
        #[repr(C)]
        #[derive(Clone, Copy, Pod, Zeroable)]
        pub struct $name {
            cwd_len: u16,
            _pad: [u8; 6],
            cwd: [u8; PATH_MAX],
            files: [OpenFile; $files],
        }

        impl $name {
            /// The state of a new session: in the root, nothing open.
            pub fn fresh() -> $name {
                let mut s = $name::zeroed();
                s.cwd[0] = b'/';
                s.cwd_len = 1;
                s
            }

            /// Every range the operations rely on; on failure, what is broken.
            pub fn check(&self) -> core::result::Result<(), &'static str> {
                if self.cwd_len == 0 || self.cwd_len as usize > PATH_MAX || self.cwd[0] != b'/' {
                    return Err("current directory");
                }
                // ASCII first: most paths are (the full check was 44 instructions of every
                // request on the microkernel, traced).
                let cwd = &self.cwd[..self.cwd_len as usize];
                if !cwd.is_ascii() && core::str::from_utf8(cwd).is_err() {
                    return Err("current directory is not UTF-8");
                }
                for f in &self.files {
                    match f.magic {
                        0 => {}
                        FD_MAGIC => {
                            if f.inode == 0 || f.inode >= INODES || f.mode & !mode::ALL != 0 || f.offset > MAX_FILE {
                                return Err("open-file entry out of range");
                            }
                        }
                        _ => return Err("open-file entry with a bad magic number"),
                    }
                }
                Ok(())
            }

            /// The current directory (absolute).
            pub fn cwd(&self) -> &str {
                core::str::from_utf8(&self.cwd[..self.cwd_len as usize]).unwrap_or("/")
            }

            /// What this session holds of inode `ino`, which is at `path` (absolute, normalised).
            pub fn held(&self, ino: u16, path: &[u8]) -> Held {
                let mut h = Held::default();
                for f in self.files.iter().filter(|f| f.magic == FD_MAGIC && f.inode == ino) {
                    h.open = true;
                    h.writing |= f.mode & WRITING != 0;
                }
                let cwd = &self.cwd[..self.cwd_len as usize];
                h.cwd = cwd.starts_with(path)
                    && (cwd.len() == path.len() || path == b"/" || cwd.get(path.len()) == Some(&b'/'));
                h
            }

            fn file(&mut self, fd: u32) -> Result<&mut OpenFile> {
                self.files.get_mut(fd as usize).filter(|f| f.magic == FD_MAGIC).ok_or(FsError::BadFd)
            }

            /// Open the file at `path` in mode `m` (see [`mode`]); returns the file descriptor.
            /// `others` says what the server's other sessions hold of a file (see the module
            /// comment); it is asked only when opening an existing file to change it.
            pub fn open<D: BlockDevice>(
                &mut self,
                disk: &Disk<D>,
                path: &str,
                m: u8,
                others: impl FnOnce(u16, &[u8]) -> Held,
            ) -> Result<u32> {
                if m & !mode::ALL != 0 || m & (mode::READ | WRITING) == 0 {
                    return Err(FsError::BadMode);
                }
                let fd = self.files.iter().position(|f| f.magic != FD_MAGIC).ok_or(FsError::TooManyOpen)?;
                let p = Path::new(self.cwd(), path)?;
                // Only creating and truncating change the disk, so only they build a change set:
                // a plain open just reads, as it always did.
                let (ino, generation) = match disk.resolve(&p) {
                    Ok((_, KIND_DIR)) => return Err(FsError::IsADirectory),
                    Ok((ino, _)) => {
                        if m & (WRITING | mode::TRUNCATE) != 0 && others(ino, p.as_bytes()).refuses(m) {
                            return Err(FsError::InUse);
                        }
                        let mut inode = disk.inode(ino)?;
                        if m & mode::TRUNCATE != 0 {
                            let mut tx = Tx::new(disk);
                            tx.truncate(ino, &mut inode)?;
                            tx.commit()?;
                        }
                        (ino, inode.generation)
                    }
                    Err(FsError::NotFound) if m & mode::CREATE != 0 => {
                        let mut tx = Tx::new(disk);
                        let ino = create(&mut tx, &p, KIND_FILE)?;
                        let generation = tx.inode(ino)?.generation;
                        tx.commit()?;
                        (ino, generation)
                    }
                    Err(e) => return Err(e),
                };
                self.files[fd] = OpenFile { magic: FD_MAGIC, mode: m, _pad: 0, inode: ino, generation, offset: 0 };
                Ok(fd as u32)
            }

            /// Read into all of `out` (the caller bounds it by its transport) at the file's offset and
            /// move past what was read; returns how much that was, 0 at the end of the file.
            pub fn read<D: BlockDevice>(&mut self, disk: &Disk<D>, fd: u32, out: &mut [u8]) -> Result<usize> {
                let f = self.file(fd)?;
                if f.mode & mode::READ == 0 {
                    return Err(FsError::BadMode);
                }
                let inode = disk.inode(f.inode)?;
                if inode.generation != f.generation {
                    return Err(FsError::BadFd);
                }
                let n = disk.read_at(&inode, f.offset, out)?;
                f.offset += n as u32;
                Ok(n)
            }

            /// Write `data` at the file's offset (at its end in append mode) and move past it.
            /// Each [`WRITE_ATOMIC`] bytes are one operation, whole or absent after a crash (the
            /// protocols never send more at once); a longer write that fails part-way has
            /// written the pieces before, and says how much.
            pub fn write<D: BlockDevice>(&mut self, disk: &Disk<D>, fd: u32, data: &[u8]) -> Result<u32> {
                let mut done = 0;
                for piece in data.chunks(WRITE_ATOMIC).chain(data.is_empty().then_some(&data[..0])) {
                    match self.write_piece(disk, fd, piece) {
                        Ok(n) => done += n,
                        Err(e) if done == 0 => return Err(e),
                        Err(_) => break,
                    }
                }
                Ok(done)
            }

            fn write_piece<D: BlockDevice>(&mut self, disk: &Disk<D>, fd: u32, data: &[u8]) -> Result<u32> {
                let f = self.file(fd)?;
                if f.mode & WRITING == 0 {
                    return Err(FsError::BadMode);
                }
                let mut tx = Tx::new(disk);
                let mut inode = tx.inode(f.inode)?;
                // Removed since the open (by a session the libos cell could not see), and the
                // inode perhaps reused.
                if inode.generation != f.generation || inode.kind != KIND_FILE {
                    return Err(FsError::BadFd);
                }
                let at = if f.mode & mode::APPEND != 0 { inode.size } else { f.offset };
                tx.write_file(f.inode, &mut inode, at, data)?;
                tx.commit()?;
                f.offset = at + data.len() as u32;
                Ok(data.len() as u32)
            }

            /// Make `data` the contents of the file at `path` (with `append`, add it at the end),
            /// creating the file if it is missing: all of it, or on error nothing at all. The
            /// old contents survive a replacement that does not fit.
            pub fn put<D: BlockDevice>(
                &self,
                disk: &Disk<D>,
                path: &str,
                data: &[u8],
                append: bool,
                others: impl FnOnce(u16, &[u8]) -> Held,
            ) -> Result<()> {
                let p = Path::new(self.cwd(), path)?;
                let m = if append { mode::WRITE | mode::APPEND } else { mode::WRITE | mode::TRUNCATE };
                let mut tx = Tx::new(disk);
                let ino = match tx.resolve(&p) {
                    Ok((_, KIND_DIR)) => return Err(FsError::IsADirectory),
                    Ok((ino, _)) if others(ino, p.as_bytes()).refuses(m) => return Err(FsError::InUse),
                    Ok((ino, _)) => ino,
                    Err(FsError::NotFound) => create(&mut tx, &p, KIND_FILE)?,
                    Err(e) => return Err(e),
                };
                let mut inode = tx.inode(ino)?;
                if !append {
                    tx.truncate(ino, &mut inode)?;
                }
                let at = inode.size;
                tx.write_file(ino, &mut inode, at, data)?;
                tx.commit()
            }

            /// Move the file's offset to `pos` (past the end is allowed; a write there leaves a hole).
            pub fn seek(&mut self, fd: u32, pos: u32) -> Result<()> {
                let f = self.file(fd)?;
                if pos > MAX_FILE {
                    return Err(FsError::FileTooLarge);
                }
                f.offset = pos;
                Ok(())
            }

            pub fn close(&mut self, fd: u32) -> Result<()> {
                *self.file(fd)? = OpenFile::zeroed();
                Ok(())
            }

            /// Offset and mode of open file `fd`.
            pub fn tell(&mut self, fd: u32) -> Result<(u32, u8)> {
                self.file(fd).map(|f| (f.offset, f.mode))
            }

            /// Kind and size of what `path` names.
            pub fn stat<D: BlockDevice>(&self, disk: &Disk<D>, path: &str) -> Result<(u8, u32)> {
                let (ino, kind) = disk.resolve(&Path::new(self.cwd(), path)?)?;
                Ok((kind, disk.inode(ino)?.size))
            }

            pub fn mkdir<D: BlockDevice>(&self, disk: &Disk<D>, path: &str) -> Result<()> {
                let p = Path::new(self.cwd(), path)?;
                let mut tx = Tx::new(disk);
                create(&mut tx, &p, KIND_DIR)?;
                tx.commit()
            }

            /// Remove the file or empty directory at `path`, unless the rule in the module
            /// comment protects it: `others` says what the server's other sessions hold of it.
            pub fn remove<D: BlockDevice>(
                &self,
                disk: &Disk<D>,
                path: &str,
                others: impl FnOnce(u16, &[u8]) -> Held,
            ) -> Result<()> {
                let p = Path::new(self.cwd(), path)?;
                let mut tx = Tx::new(disk);
                let (dir, name) = tx.parent(&p)?;
                let (slot, e) = tx.lookup(dir, name)?.ok_or(FsError::NotFound)?;
                let mut inode = tx.inode(e.inode)?;
                if inode.kind == KIND_DIR && tx.nth_entry(e.inode, 0)?.is_some() {
                    return Err(FsError::NotEmpty);
                }
                let held = self.held(e.inode, p.as_bytes()).or(others(e.inode, p.as_bytes()));
                match inode.kind {
                    KIND_DIR if held.cwd => return Err(FsError::CurrentDirectory),
                    KIND_FILE if held.open => return Err(FsError::InUse),
                    _ => {}
                }
                tx.unlink(dir, slot)?;
                tx.free_inode(e.inode, &mut inode)?;
                tx.commit()
            }

            /// Make the directory at `path` the current one.
            pub fn chdir<D: BlockDevice>(&mut self, disk: &Disk<D>, path: &str) -> Result<()> {
                let p = Path::new(self.cwd(), path)?;
                if disk.resolve(&p)?.1 != KIND_DIR {
                    return Err(FsError::NotADirectory);
                }
                let new = p.as_bytes();
                self.cwd[..new.len()].copy_from_slice(new);
                self.cwd_len = new.len() as u16;
                Ok(())
            }

            /// The `index`-th entry of the directory at `path` and the size of what it names (0 if
            /// that cannot be read), or `None` past the last.
            pub fn entry<D: BlockDevice>(
                &self,
                disk: &Disk<D>,
                path: &str,
                index: u32,
            ) -> Result<Option<(DirEntry, u32)>> {
                match disk.resolve(&Path::new(self.cwd(), path)?)? {
                    (ino, KIND_DIR) => Ok(disk.nth_entry(ino, index)?.map(|e| {
                        let size = disk.inode(e.inode).map(|i| i.size).unwrap_or(0);
                        (e, size)
                    })),
                    _ => Err(FsError::NotADirectory),
                }
            }
        }
    };
}

/// Make a new, empty file or directory of `kind` at `p`, whose parent must exist.
fn create<D: BlockDevice>(tx: &mut Tx<'_, '_, D>, p: &Path, kind: u8) -> Result<u16> {
    let (dir, name) = tx.parent(p)?;
    if tx.lookup(dir, name)?.is_some() {
        return Err(FsError::Exists);
    }
    let ino = tx.new_inode(kind)?;
    tx.link(dir, name, ino, kind)?;
    Ok(ino)
}

client_state!(
    /// A client of the microkernel's fs, in its Server State Region: [`MAX_FILES`] open files.
    ClientState,
    MAX_FILES
);
client_state!(
    /// A libos client, carried in every request and answer: [`SMALL_MAX_FILES`] open files.
    SmallClientState,
    SMALL_MAX_FILES
);

// The microkernel's fs keeps this value in client SSRs that outlive a server incarnation: a
// change of layout needs a new `VERSION` in `servers/fs`, or a restarted server misreads them.
const _: () = assert!(core::mem::size_of::<ClientState>() == 296);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::disk;

    const RW: u8 = mode::READ | mode::WRITE | mode::CREATE;

    #[test]
    fn each_descriptor_keeps_its_own_offset() {
        let d = disk();
        let mut st = ClientState::fresh();
        let w = st.open(&d, "/f", RW, Held::unseen).unwrap();
        assert_eq!(st.write(&d, w, b"hello world").unwrap(), 11);
        let r = st.open(&d, "f", mode::READ, Held::unseen).unwrap();
        let mut out = [0u8; 5];
        assert_eq!(st.read(&d, r, &mut out).unwrap(), 5);
        assert_eq!(&out, b"hello");
        assert_eq!(st.tell(w).unwrap(), (11, RW));
        assert_eq!(st.tell(r).unwrap(), (5, mode::READ));
        st.seek(r, 6).unwrap();
        assert_eq!(st.read(&d, r, &mut out).unwrap(), 5);
        assert_eq!(&out, b"world");
        assert_eq!(st.read(&d, r, &mut out).unwrap(), 0);
        assert_eq!(st.write(&d, r, b"x"), Err(FsError::BadMode));
        assert_eq!(st.seek(r, MAX_FILE + 1), Err(FsError::FileTooLarge));
        st.close(r).unwrap();
        assert_eq!(st.close(r), Err(FsError::BadFd));
        assert_eq!(st.stat(&d, "/f").unwrap(), (KIND_FILE, 11));
        assert!(st.check().is_ok());
    }

    #[test]
    fn the_open_file_table_is_bounded_and_slots_are_reused() {
        let d = disk();
        let mut st = ClientState::fresh();
        for fd in 0..MAX_FILES as u32 {
            assert_eq!(st.open(&d, "/f", RW, Held::unseen).unwrap(), fd);
        }
        assert_eq!(st.open(&d, "/f", RW, Held::unseen), Err(FsError::TooManyOpen));
        st.close(3).unwrap();
        assert_eq!(st.open(&d, "/f", mode::APPEND, Held::unseen).unwrap(), 3);
        assert_eq!(st.open(&d, "/f", mode::CREATE, Held::unseen), Err(FsError::BadMode));
    }

    #[test]
    fn the_small_session_holds_its_own_number_of_files() {
        let d = disk();
        let mut st = SmallClientState::fresh();
        for fd in 0..SMALL_MAX_FILES as u32 {
            assert_eq!(st.open(&d, "/f", RW | mode::CREATE, Held::unseen), Ok(fd));
        }
        assert_eq!(st.open(&d, "/f", RW, Held::unseen), Err(FsError::TooManyOpen));
        assert_eq!(core::mem::size_of::<SmallClientState>(), 296 - 8 * 12);
    }

    #[test]
    fn directories_paths_and_removal() {
        let d = disk();
        let mut st = ClientState::fresh();
        st.mkdir(&d, "/a").unwrap();
        assert_eq!(st.mkdir(&d, "a"), Err(FsError::Exists));
        st.chdir(&d, "a").unwrap();
        assert_eq!(st.cwd(), "/a");
        let fd = st.open(&d, "../a/./g", RW, Held::unseen).unwrap();
        assert_eq!(st.open(&d, "/a", mode::READ, Held::unseen), Err(FsError::IsADirectory));
        assert_eq!(st.chdir(&d, "g"), Err(FsError::NotADirectory));
        let (e, size) = st.entry(&d, ".", 0).unwrap().unwrap();
        assert_eq!((e.name(), e.kind, size), (&b"g"[..], KIND_FILE, 0));
        assert!(st.entry(&d, ".", 1).unwrap().is_none());
        assert_eq!(st.remove(&d, "/a", Held::unseen), Err(FsError::NotEmpty));
        assert_eq!(st.remove(&d, "g", Held::unseen), Err(FsError::InUse));
        st.close(fd).unwrap();
        assert_eq!(
            st.remove(&d, "g", |_, _| Held { open: true, ..Held::default() }),
            Err(FsError::InUse),
            "open in another session"
        );
        st.remove(&d, "g", Held::unseen).unwrap();
        assert_eq!(st.stat(&d, "g"), Err(FsError::NotFound));
        st.chdir(&d, "/").unwrap();
        st.remove(&d, "a", Held::unseen).unwrap();
        assert_eq!(st.remove(&d, "/", Held::unseen), Err(FsError::BadPath));
    }

    #[test]
    fn check_catches_what_the_operations_rely_on() {
        let good = ClientState::fresh();
        assert!(good.check().is_ok());
        let mut s = good;
        s.cwd_len = 0;
        assert_eq!(s.check(), Err("current directory"));
        let mut s = good;
        s.cwd[..2].copy_from_slice(b"/\xff");
        s.cwd_len = 2;
        assert_eq!(s.check(), Err("current directory is not UTF-8"));
        let mut s = good;
        s.files[2] =
            OpenFile { magic: FD_MAGIC, mode: mode::READ, _pad: 0, inode: INODES, generation: 0, offset: 0 };
        assert_eq!(s.check(), Err("open-file entry out of range"));
        let mut s = good;
        s.files[5].magic = 1;
        assert_eq!(s.check(), Err("open-file entry with a bad magic number"));
    }
}
