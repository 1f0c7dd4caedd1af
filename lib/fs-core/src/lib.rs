//! The Axolotl file system, over any [`BlockDevice`]: its on-disk format, a client's session
//! ([`ClientState`]) with the requests served against it, and the checker ([`fsck`]). Both
//! file servers run this code: the microkernel's `servers/fs` over the ramdisk server (or a
//! disk), the libos fs cell over the ramdisk cell; each keeps only its transport and where the
//! session lives. A device that holds something other than this file system is never written
//! unless someone asks for a format ([`Volume`]).
//!
//! ```text
//!  session ── the requests, and the rule for files other sessions hold
//!     │
//!     ├─► tx ── one operation's changes ─► journal ── whole or not at all,
//!     │                                                even across a power cut ──┐
//!     │                                                                          ▼
//!     └─► disk ── read inodes, files, directories ─────────────────────────► BlockDevice
//!  volume ── mount (or refuse to), format ──► disk
//!  fsck ── reads everything, changes nothing ──► disk        layout: the format, path: paths
//! ```
//! Every change is written to the block store and flushed before the request is answered, and
//! every operation either happens entirely or changes nothing, also when the machine stops in
//! the middle of it (the journal, redone at mount). A server may keep blocks between requests
//! in a [`cache::Cached`] device: write-through, and checked on every hit.

#![no_std]
#![forbid(unsafe_code)]

pub mod cache;
#[cfg(any(test, feature = "crash"))]
pub mod crash;
mod disk;
mod fsck;
mod journal;
mod layout;
pub mod path;
mod session;
mod tx;
mod volume;

pub use disk::Disk;
pub use fsck::{fsck, Problem, Report, LISTED};
pub use journal::Durability;
pub use layout::{Block, DirEntry, BLOCK_SIZE, INODES, KIND_DIR, KIND_FILE, MAX_FILE, NAME_MAX, ROOT};
pub use session::{ClientState, Held, SmallClientState, MAX_FILES, SMALL_MAX_FILES, WRITE_ATOMIC};
pub use volume::Volume;

/// Longest path.
pub const PATH_MAX: usize = 96;
/// Open modes, combinable.
pub mod mode {
    pub const READ: u8 = 1;
    pub const WRITE: u8 = 2;
    /// Every write goes to the end of the file.
    pub const APPEND: u8 = 4;
    /// Create the file if it does not exist.
    pub const CREATE: u8 = 8;
    /// Cut the file to zero length on open.
    pub const TRUNCATE: u8 = 16;
    pub const ALL: u8 = 31;
}

/// A store of fixed-size blocks.
pub trait BlockDevice {
    fn blocks(&self) -> Option<u32>;
    fn read(&self, block: u32, out: &mut Block) -> bool;
    /// Call `f` on block `block` where the device keeps it, if it keeps it (a cache), else on a
    /// copy read into a buffer; false (and `f` is not called) if it cannot be read. The file
    /// system reads inodes, directories and file data this way: a block it only looks at is
    /// then neither zeroed nor copied. `f` only looks: it must not use the device.
    fn read_with(&self, block: u32, f: &mut dyn FnMut(&Block)) -> bool {
        let mut out = [0u8; BLOCK_SIZE];
        self.read(block, &mut out) && {
            f(&out);
            true
        }
    }
    /// Call `f` on bytes `range` of block `block` (within the block, else false), as
    /// [`read_with`](Self::read_with) does on the whole block: a cache that checks what it hands
    /// out checks only those bytes. A file read and an inode are read this way.
    fn read_range(&self, block: u32, range: core::ops::Range<usize>, f: &mut dyn FnMut(&[u8])) -> bool {
        let mut ok = false;
        self.read_with(block, &mut |b| {
            if let Some(bytes) = b.get(range.clone()) {
                ok = true;
                f(bytes);
            }
        }) && ok
    }
    fn write(&self, block: u32, data: &Block) -> bool;
    /// Make every block written so far durable (a disk's write cache flushed to the medium);
    /// false if the device could not. A store with nothing to flush (RAM) keeps the default.
    fn flush(&self) -> bool {
        true
    }
}

/// Why an operation on the file system failed: one enum for both file servers and their
/// clients. The microkernel's protocol (`fs-api`) carries it as it is (serde, with the `serde`
/// feature); the libos fs cell hands it back in a message the kernel checks on the way
/// (`CheckedBitPattern`, hence `#[repr(u8)]`): a bent discriminant is refused there, not matched
/// on by a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, bytemuck::CheckedBitPattern)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[repr(u8)]
pub enum FsError {
    NotFound,
    Exists,
    NotADirectory,
    IsADirectory,
    NotEmpty,
    /// Every block is in use.
    NoSpace,
    /// Every inode is in use: no more files or directories.
    NoInodes,
    NameTooLong,
    BadPath,
    BadFd,
    TooManyOpen,
    /// The file was not opened for this kind of access.
    BadMode,
    /// The file is open: in the caller's session, or (where the server can see them) in
    /// another client's.
    InUse,
    /// The directory is a session's current directory, or above one: removing it would leave
    /// that session nowhere.
    CurrentDirectory,
    FileTooLarge,
    /// The client's session state failed its checks and was reset; its open files are gone.
    StateReset,
    /// The block store failed.
    Disk,
    /// The server failed twice on this request (or is held after a crash loop).
    ServerFailed,
    /// The request did not come through a session.
    NoSession,
    /// The request or its answer did not decode.
    Malformed,
    /// The transport failed (the microkernel's IPC, for a reason other than the server's
    /// failure). A unit variant, like every other: a payload would make every `Result` of the
    /// file system wider, and its every operation dearer.
    Ipc,
    /// The device holds something that is not this file system and is not blank: it was not
    /// mounted, and nothing was written to it (`Volume::format` erases it).
    Foreign,
    /// The device holds this file system's superblock for another version or another size:
    /// it was not mounted, and nothing was written to it (`Volume::format` erases it).
    OtherFormat,
    /// `format` without `force` on a file system that holds files.
    HoldsFiles,
}

impl FsError {
    pub fn describe(self) -> &'static str {
        use FsError::*;
        match self {
            NotFound => "no such file or directory",
            Exists => "already exists",
            NotADirectory => "not a directory",
            IsADirectory => "is a directory",
            NotEmpty => "directory not empty",
            NoSpace => "no space left (every block is in use)",
            NoInodes => "too many files (every inode is in use)",
            NameTooLong => "name too long",
            BadPath => "bad path",
            BadFd => "bad file descriptor (not open, or its file is gone)",
            TooManyOpen => "too many open files",
            BadMode => "file not opened for that",
            InUse => "file is open (here or in another session)",
            CurrentDirectory => "is a current directory (here or in another session)",
            FileTooLarge => "file too large",
            StateReset => "session state was broken and has been reset",
            Disk => "block store error",
            ServerFailed => "file server failed",
            NoSession => "not called through a session",
            Malformed => "malformed message",
            Ipc => "IPC failed",
            Foreign => {
                "the disk holds something that is not an Axolotl file system; it is left untouched \
                 (`format` erases it)"
            }
            OtherFormat => {
                "the disk holds an Axolotl file system of another version or size; it is left \
                 untouched (`format` erases it)"
            }
            HoldsFiles => "the disk holds an Axolotl file system with files; `format --force` erases them",
        }
    }
}

impl core::fmt::Display for FsError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.describe())
    }
}

/// One directory entry as a client sees it (what `ls` lists): the same type for every client
/// of both file servers, whatever carried it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, bytemuck::CheckedBitPattern)]
pub struct Entry {
    name: [u8; NAME_MAX],
    name_len: u8,
    /// [`KIND_FILE`] or [`KIND_DIR`].
    pub kind: u8,
    /// Size in bytes (files).
    pub size: u32,
}

impl Entry {
    /// An entry called `name` (cut to `NAME_MAX` bytes, at a character boundary).
    pub fn new(name: &str, kind: u8, size: u32) -> Entry {
        let mut len = name.len().min(NAME_MAX);
        while !name.is_char_boundary(len) {
            len -= 1;
        }
        let mut e = Entry { name: [0; NAME_MAX], name_len: len as u8, kind, size };
        e.name[..len].copy_from_slice(&name.as_bytes()[..len]);
        e
    }

    pub fn name(&self) -> &str {
        core::str::from_utf8(&self.name[..self.name_len as usize]).unwrap_or("?")
    }
}

pub type Result<T> = core::result::Result<T, FsError>;

#[cfg(test)]
mod tests;
