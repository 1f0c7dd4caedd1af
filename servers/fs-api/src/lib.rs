//! The file server's protocol and client stub.
//!
//! A client opens a session with the file server (`Fs::connect`); everything the server
//! remembers about the client — its open files with their offsets and modes, and its current
//! directory — lives in that session's Server State Region, not in the server. Paths are
//! absolute (`/a/b`) or relative to the current directory; `.` and `..` are understood.
#![no_std]
#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};
use userlib::abi::Error;
use userlib::cap::{Cap, Endpoint, Message, Session};
use userlib::msg::{self, CallError};

pub const LABEL: u32 = 0xF5;

// The requests clients make most go in a fixed layout instead, with neither end encoding or
// decoding (postcard at both ends was 300 instructions of a 64-byte read, traced): their
// arguments in the message's words, bytes as the raw payload. Each is answered with its own
// label when it succeeds, and with [`LABEL`] and an encoded `Response::Error` when it fails.

/// Read: the descriptor and the most bytes wanted in words 0 and 1, no payload. Answered with
/// [`DATA`].
pub const READ: u32 = 0xF6;
/// The answer to [`READ`]: the payload is the bytes read (none at the end of the file).
pub const DATA: u32 = 0xF7;
/// Seek: the descriptor and the new offset in words 0 and 1. Answered with [`DONE`].
pub const SEEK: u32 = 0xF8;
/// Done, with nothing more to say.
pub const DONE: u32 = 0xF9;
/// Write: the descriptor in word 0, the bytes (at most [`MAX_IO`]) as the payload. Answered
/// with [`COUNT`].
pub const WRITE: u32 = 0xFA;
/// The answer to [`WRITE`]: the bytes written in word 0.
pub const COUNT: u32 = 0xFB;
/// Most bytes one read or write carries.
pub const MAX_IO: usize = 2048;
/// Longest name of one path component, longest path: the file system's own limits.
pub use fs_core::{NAME_MAX, PATH_MAX};

/// Open modes, combinable (the file system's own).
pub use fs_core::mode;

/// What a directory entry names.
pub use fs_core::{Entry, KIND_DIR, KIND_FILE};

/// What the file system checker found.
pub use fs_core::{Problem, Report};

#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    Open {
        path: &'a str,
        mode: u8,
    },
    Read {
        fd: u32,
        len: u32,
    },
    Write {
        fd: u32,
        #[serde(with = "serde_bytes")]
        data: &'a [u8],
    },
    Seek {
        fd: u32,
        pos: u32,
    },
    Close {
        fd: u32,
    },
    Stat {
        path: &'a str,
    },
    Mkdir {
        path: &'a str,
    },
    /// The `index`-th entry of a directory.
    List {
        path: &'a str,
        index: u32,
    },
    Remove {
        path: &'a str,
    },
    Chdir {
        path: &'a str,
    },
    Cwd,
    /// Offset and mode of an open file (what this client's state says).
    Tell {
        fd: u32,
    },
    /// Make `data` the file's contents (with `append`, add it at the end), creating the file:
    /// all of it or, on error, nothing.
    Put {
        path: &'a str,
        #[serde(with = "serde_bytes")]
        data: &'a [u8],
        append: bool,
    },
    /// Check the disk (`fs_core::fsck`).
    Fsck,
    /// Write an empty file system over the disk (`fs_core::Volume::format`): a disk the server
    /// refused is formatted; one that holds files only with `force`. Every session's open
    /// files then go stale (`BadFd`).
    Format {
        force: bool,
    },
    /// Forget every block the server keeps between requests (its cache): the next requests
    /// read from the block store. Nothing on the disk changes. For benchmarks of the path to
    /// the device (`bench disk`).
    DropCaches,
    /// How many requests this session has made since fs version 2 began counting them (kept in
    /// the session's state, layout 4). Version 1 does not know it: `Malformed`.
    Requests,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
pub enum Response<'a> {
    // First: with the error last, the compiled client spent 4 more instructions on every read
    // (measured, `mk.fs_read`); both ends are built together, so the order is free.
    Error(FsError),
    Fd(u32),
    Data(#[serde(with = "serde_bytes")] &'a [u8]),
    Count(u32),
    Done,
    Stat { kind: u8, size: u32 },
    Entry { name: &'a str, kind: u8, size: u32 },
    End,
    Path(&'a str),
    Position { offset: u32, mode: u8 },
    Report(Report),
}

/// The file system's errors, one enum for both personalities, carried as they are.
pub use fs_core::FsError;

/// A failed call as the file system's error: a server that failed twice on the request (or
/// is held) is `ServerFailed`, as on the libos; a session the kernel no longer knows is
/// `NoSession`; any other kernel error is `Ipc`.
fn call_error(e: CallError) -> FsError {
    match e {
        CallError::Ipc(Error::ServerFailed) => FsError::ServerFailed,
        CallError::Ipc(Error::Dead | Error::EmptySlot) => FsError::NoSession,
        CallError::Ipc(_) => FsError::Ipc,
        CallError::Encode | CallError::Decode => FsError::Malformed,
    }
}

/// Why the server refused a request made in a fixed layout: the error its encoded answer
/// carries (apart, and cold: the stubs' common path is the answer they asked for).
#[cold]
#[inline(never)]
fn refused(m: &Message) -> FsError {
    if m.info.label != LABEL {
        return FsError::Malformed;
    }
    m.with_payload(|bytes| match msg::decode::<Response<'_>>(bytes) {
        Ok(Response::Error(e)) => e,
        _ => FsError::Malformed,
    })
}

/// The longest answer to `Fsck` (a test fills every field of a report to its widest).
const REPORT_REPLY: usize = 128;

/// A client session with the file server.
#[derive(Clone, Copy)]
pub struct Fs {
    session: Cap<Session>,
}

type Result<T> = core::result::Result<T, FsError>;

impl Fs {
    /// Open a session with the file server at `ep`, keeping the session capability in `slot`.
    pub fn connect(ep: Cap<Endpoint>, slot: u8) -> Result<Self> {
        Self::connect_badge(ep, slot).map(|(fs, _)| fs)
    }

    /// Like [`connect`](Self::connect), also returning the session's badge.
    pub fn connect_badge(ep: Cap<Endpoint>, slot: u8) -> Result<(Self, u64)> {
        ep.connect_badge(slot)
            .map(|(session, badge)| (Fs { session }, badge))
            .map_err(|e| call_error(CallError::Ipc(e)))
    }

    fn call<'r>(&self, req: &Request<'_>, reply: &'r mut [u8]) -> Result<Response<'r>> {
        match self.session.call_encoded(LABEL, req, reply).map_err(call_error)? {
            Response::Error(e) => Err(e),
            other => Ok(other),
        }
    }

    fn done(&self, req: &Request<'_>) -> Result<()> {
        let mut reply = [0u8; 16];
        match self.call(req, &mut reply)? {
            Response::Done => Ok(()),
            _ => Err(FsError::Malformed),
        }
    }

    pub fn open(&self, path: &str, mode: u8) -> Result<u32> {
        let mut reply = [0u8; 16];
        match self.call(&Request::Open { path, mode }, &mut reply)? {
            Response::Fd(fd) => Ok(fd),
            _ => Err(FsError::Malformed),
        }
    }

    /// A request in a fixed layout (see [`READ`]): `label`, `words` and `payload` as they are.
    /// What `f` makes of the answer if it has the label `ok`; the error an encoded answer
    /// carries otherwise.
    #[inline(always)]
    fn call_fixed<R>(
        &self,
        (label, words, payload): (u32, [u64; 4], &[u8]),
        ok: u32,
        f: impl FnOnce(&Message) -> Result<R>,
    ) -> Result<R> {
        let answer = |m: &Message| if m.info.label == ok { f(m) } else { Err(refused(m)) };
        self.session
            .as_endpoint()
            .call_then(label, words, payload, answer)
            .map_err(|e| call_error(CallError::Ipc(e)))?
    }

    /// Read up to `out.len()` bytes (at most `MAX_IO`) at the file's offset; 0 at the end.
    /// In the fixed layout of [`READ`].
    pub fn read(&self, fd: u32, out: &mut [u8]) -> Result<usize> {
        let len = out.len().min(MAX_IO);
        self.call_fixed((READ, [fd as u64, len as u64, 0, 0], &[]), DATA, |m| {
            // More than was asked for is malformed, not cut short.
            if m.info.len as usize > len {
                return Err(FsError::Malformed);
            }
            Ok(m.payload_into(out))
        })
    }

    /// Write all of `data`, in pieces of at most `MAX_IO`.
    /// In the fixed layout of [`WRITE`].
    pub fn write(&self, fd: u32, data: &[u8]) -> Result<()> {
        for chunk in data.chunks(MAX_IO) {
            self.call_fixed((WRITE, [fd as u64, 0, 0, 0], chunk), COUNT, |m| match m.words[0] {
                n if n == chunk.len() as u64 => Ok(()),
                n if n < chunk.len() as u64 => Err(FsError::NoSpace),
                _ => Err(FsError::Malformed),
            })?;
        }
        Ok(())
    }

    /// Make `data` (at most [`MAX_IO`] bytes: one request, so that it is all-or-nothing) the
    /// contents of the file at `path`, or with `append` add it at the end; the file is created
    /// if it is missing. On error nothing changed.
    pub fn put(&self, path: &str, data: &[u8], append: bool) -> Result<()> {
        if data.len() > MAX_IO {
            return Err(FsError::FileTooLarge);
        }
        self.done(&Request::Put { path, data, append })
    }

    /// Check the file server's disk: what is in use, and every problem found.
    pub fn fsck(&self) -> Result<Report> {
        let mut reply = [0u8; REPORT_REPLY];
        match self.call(&Request::Fsck, &mut reply)? {
            Response::Report(r) => Ok(r),
            _ => Err(FsError::Malformed),
        }
    }

    /// Empty the server's block cache: see [`Request::DropCaches`].
    pub fn drop_caches(&self) -> Result<()> {
        self.done(&Request::DropCaches)
    }

    /// Format the disk: see [`Request::Format`]. Without `force`, a disk that holds files is
    /// refused with `HoldsFiles` and left as it was.
    pub fn format(&self, force: bool) -> Result<()> {
        self.done(&Request::Format { force })
    }

    /// In the fixed layout of [`SEEK`].
    pub fn seek(&self, fd: u32, pos: u32) -> Result<()> {
        self.call_fixed((SEEK, [fd as u64, pos as u64, 0, 0], &[]), DONE, |_| Ok(()))
    }

    pub fn close(&self, fd: u32) -> Result<()> {
        self.done(&Request::Close { fd })
    }

    /// Kind and size of what `path` names.
    pub fn stat(&self, path: &str) -> Result<(u8, u32)> {
        let mut reply = [0u8; 16];
        match self.call(&Request::Stat { path }, &mut reply)? {
            Response::Stat { kind, size } => Ok((kind, size)),
            _ => Err(FsError::Malformed),
        }
    }

    pub fn mkdir(&self, path: &str) -> Result<()> {
        self.done(&Request::Mkdir { path })
    }

    pub fn remove(&self, path: &str) -> Result<()> {
        self.done(&Request::Remove { path })
    }

    pub fn chdir(&self, path: &str) -> Result<()> {
        self.done(&Request::Chdir { path })
    }

    /// The current directory, copied into `out`.
    pub fn cwd<'o>(&self, out: &'o mut [u8; PATH_MAX]) -> Result<&'o str> {
        let mut reply = [0u8; PATH_MAX + 16];
        match self.call(&Request::Cwd, &mut reply)? {
            Response::Path(p) => {
                let n = p.len().min(PATH_MAX);
                out[..n].copy_from_slice(&p.as_bytes()[..n]);
                core::str::from_utf8(&out[..n]).map_err(|_| FsError::Malformed)
            }
            _ => Err(FsError::Malformed),
        }
    }

    /// The `index`-th entry of directory `path`, or `None` past the last.
    pub fn entry(&self, path: &str, index: u32) -> Result<Option<Entry>> {
        let mut reply = [0u8; 64];
        match self.call(&Request::List { path, index }, &mut reply)? {
            Response::Entry { name, kind, size } => Ok(Some(Entry::new(name, kind, size))),
            Response::End => Ok(None),
            _ => Err(FsError::Malformed),
        }
    }

    /// The requests this session has made that fs counted (fs version 2 and later).
    pub fn requests(&self) -> Result<u32> {
        let mut reply = [0u8; 16];
        match self.call(&Request::Requests, &mut reply)? {
            Response::Count(n) => Ok(n),
            _ => Err(FsError::Malformed),
        }
    }

    /// Offset and mode of open file `fd`, as this client's session state records them.
    pub fn tell(&self, fd: u32) -> Result<(u32, u8)> {
        let mut reply = [0u8; 16];
        match self.call(&Request::Tell { fd }, &mut reply)? {
            Response::Position { offset, mode } => Ok((offset, mode)),
            _ => Err(FsError::Malformed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec::Vec;

    #[test]
    fn requests_round_trip() {
        let mut buf = [0u8; 64];
        let req = Request::Write { fd: 3, data: b"hello" };
        let n = userlib::msg::encode(&req, &mut buf).unwrap();
        assert_eq!(userlib::msg::decode::<Request<'_>>(&buf[..n]).unwrap(), req);
        assert!(userlib::msg::decode::<Request<'_>>(&[200, 1]).is_err());
    }

    #[test]
    fn a_full_report_fits_the_reply_fsck_gives_it() {
        let mut r = Report::new(u16::MAX, u16::MAX, u32::MAX, u32::MAX);
        for _ in 0..fs_core::LISTED + 1 {
            r.add(Problem::Shared { inode: u16::MAX, block: u16::MAX });
        }
        let mut reply = [0u8; REPORT_REPLY];
        let n = userlib::msg::encode(&Response::Report(r), &mut reply).unwrap();
        assert_eq!(userlib::msg::decode::<Response<'_>>(&reply[..n]).unwrap(), Response::Report(r));
        let put = Request::Put { path: "/a", data: b"x\n", append: true };
        let n = userlib::msg::encode(&put, &mut reply).unwrap();
        assert_eq!(userlib::msg::decode::<Request<'_>>(&reply[..n]).unwrap(), put);
    }

    #[test]
    fn every_error_crosses_the_wire_unchanged() {
        use FsError::*;
        // Every variant, by its wire tag (a one-byte varint): each decodes to a distinct
        // error and encodes back to the same bytes; the first tag past the last is refused.
        let mut seen: Vec<FsError> = Vec::new();
        for tag in 0u8.. {
            let Ok(e) = userlib::msg::decode::<FsError>(&[tag]) else { break };
            let mut buf = [0u8; 16];
            let n = userlib::msg::encode(&Response::Error(e), &mut buf).unwrap();
            assert_eq!(userlib::msg::decode::<Response<'_>>(&buf[..n]).unwrap(), Response::Error(e));
            assert_eq!(userlib::msg::encode(&e, &mut buf).unwrap(), 1);
            assert_eq!(buf[0], tag);
            assert!(!seen.contains(&e), "{e:?} twice");
            seen.push(e);
        }
        assert_eq!(seen.len(), 24, "every variant crossed: {seen:?}");
        assert!(seen.contains(&NotFound) && seen.contains(&HoldsFiles));
        assert_eq!(call_error(CallError::Ipc(Error::ServerFailed)), ServerFailed);
        assert_eq!(call_error(CallError::Ipc(Error::Dead)), NoSession);
        assert_eq!(call_error(CallError::Ipc(Error::QuotaExceeded)), Ipc);
        assert_eq!(call_error(CallError::Decode), Malformed);
    }
}
