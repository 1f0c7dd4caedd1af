//! The fs cell: a hierarchical file system (the `fs-core` format) over the disk cell when a
//! disk is attached (the same format the microkernel writes), else over the ramdisk cell.
//!
//! State-spill freedom by opaque exportation: the server keeps nothing about its clients.
//! Each client holds a [`Session`] — its current directory and open files with offsets — whose
//! fields it cannot see (they are private to this crate) and whose bytes are sealed with a key
//! the fs cell was given at boot and keeps across incarnations. Every request carries the
//! session in and the answer carries it back, updated and sealed again. A session that fails
//! its seal or its range checks (a flipped bit, a wild write) is refused; the client sends its
//! second copy, and only if both are refused is it replaced by a fresh one and that client
//! alone hears `StateReset`.
//!
//! A fault in this cell must not become wrong data either: every operation runs twice and its
//! answer and writes are believed only if both runs agree (`twice`), and every block goes to
//! its store through a checking client (`store`: the ramdisk's mirror, or the disk's read-back
//! and tags of this boot, `cell_virtio_blk::Blocks`). `Format` alone runs once (it writes more
//! blocks than a run may hold back), straight to the store. Blocks read are kept between
//! requests (`twice::Cache`), each with the tag its store vouched for it with, checked at every
//! use; the cache is this incarnation's, and the next one starts empty.
//!
//! A disk that holds something other than this file system is not mounted and not written
//! (`fs_core::Volume`): the cell stays up and answers every request but `Format` with why.
//!
//! ```text
//!  client (holds Session)            fs task (no client state)        ramdisk task
//!   Request{session, op} ─────────►  check seal + ranges
//!                                    do op ───── Read/Write block ──► blocks (MappedPages)
//!   ◄──────── Response{session', result}  (session' resealed)
//! ```
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod server;
mod store;
mod twice;

use algo::bytes::same;
use algo::seal::{absorb, finish};
use bytemuck::{AnyBitPattern, CheckedBitPattern, Zeroable};
use fs_core::{FsError, SmallClientState, PATH_MAX};

/// What the file system checker found.
pub use fs_core::{Problem, Report};
use libos_kernel::{CheckedEndpoint, Inbox, Kept};

pub use fs_core::{Entry, KIND_DIR, KIND_FILE};
pub use server::start;

/// Most bytes one read or write carries.
pub const IO_MAX: usize = 256;
/// Most bytes one [`Fs::put`] carries: as many as fit beside the path without making a
/// request longer than a write's (every message is copied whole, reads included).
pub const PUT_MAX: usize = IO_MAX - PATH_MAX - 4;

/// Open modes, combinable (the file system's own).
pub use fs_core::mode;

/// A client's file-system state, sealed by the fs cell. Opaque: only this crate sees inside.
///
/// Its layout is numbered like the microkernel fs's SSR layouts: 3 is fs-core's state alone
/// (version 1 writes it), 4 adds the count of the session's requests (version 2; see
/// [`Build`]). Both fit this one type, so a client holds whichever its fs gave it.
#[repr(C)]
#[derive(Clone, Copy, AnyBitPattern)]
pub struct Session {
    state: SmallClientState,
    layout: u32,
    /// Requests made since the session came to layout 4 (0 in layout 3).
    requests: u32,
    seal: u64,
}

/// Layout 3: fs-core's state alone.
pub const LAYOUT_PLAIN: u32 = 3;
/// Layout 4: and the count of the session's requests.
pub const LAYOUT_COUNTED: u32 = 4;

/// Opaque to its holder's log lines too (the checked messages' derived bit patterns ask for it).
impl core::fmt::Debug for Session {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Session { .. }")
    }
}

impl Session {
    /// A session no fs sealed (a client's before `Connect`).
    fn blank() -> Session {
        Session { state: SmallClientState::zeroed(), layout: 0, requests: 0, seal: 0 }
    }

    /// The seal of its bytes under `key`: the state, then its layout and count.
    fn sealed_as(&self, key: u64) -> u64 {
        const LEN: usize = core::mem::size_of::<SmallClientState>();
        // Always the whole state (the `else` is never taken): as an array, two words a step
        // (`seal_pairs`: any one bent word still changes the seal), unrolled.
        let state = bytemuck::bytes_of(&self.state);
        let head = match state.first_chunk::<LEN>() {
            Some(whole) => algo::seal::seal_pairs(key, whole),
            None => algo::seal::seal(key, state),
        };
        algo::seal::seal_word(head, u64::from(self.layout) << 32 | u64::from(self.requests))
    }
}

/// The versions of the fs cell the image stages (`update fs fs-v2` in the shell switches the
/// running task to another; see `server::start`). They serve with the same code and differ
/// where a new version would: what they answer and the layout they write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Build {
    /// As booted: writes layout 3, reads only it.
    V1,
    /// Counts each session's requests (layout 4, migrated from 3 on the session's first
    /// request) and answers `requests` from the count.
    V2,
    /// Version 2 that fails a session's second request after the update, having migrated it
    /// on the first: an update to it rolls back, with states to restore.
    Faulty,
    /// Version 1 that spills: it remembers, in the frame of its serving loop, a digest of the
    /// last path a client named (or of its whole request) (the state-spill audit's test:
    /// `update fs fs-spill; audit fs`).
    Spill,
}

impl Build {
    pub const ALL: [Build; 4] = [Build::V1, Build::V2, Build::Faulty, Build::Spill];

    /// The name `update` takes.
    pub fn name(self) -> &'static str {
        match self {
            Build::V1 => "fs-v1",
            Build::V2 => "fs-v2",
            Build::Faulty => "fs-faulty",
            Build::Spill => "fs-spill",
        }
    }

    pub fn version(self) -> libos_kernel::Version {
        match self {
            Build::V1 => libos_kernel::Version { number: 1, writes: LAYOUT_PLAIN, reads: &[LAYOUT_PLAIN] },
            Build::V2 => libos_kernel::Version {
                number: 2,
                writes: LAYOUT_COUNTED,
                reads: &[LAYOUT_PLAIN, LAYOUT_COUNTED],
            },
            Build::Faulty => libos_kernel::Version {
                number: 3,
                writes: LAYOUT_COUNTED,
                reads: &[LAYOUT_PLAIN, LAYOUT_COUNTED],
            },
            Build::Spill => libos_kernel::Version { number: 9, writes: LAYOUT_PLAIN, reads: &[LAYOUT_PLAIN] },
        }
    }

    fn reads(self, layout: u32) -> bool {
        self.version().reads.contains(&layout)
    }
}

/// A path carried in a request.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, CheckedBitPattern)]
pub struct PathBuf {
    len: u8,
    bytes: [u8; PATH_MAX],
}

impl PathBuf {
    fn new(s: &str) -> Result<PathBuf> {
        if s.len() > PATH_MAX {
            return Err(FsError::NameTooLong);
        }
        let mut bytes = [0u8; PATH_MAX];
        bytes[..s.len()].copy_from_slice(s.as_bytes());
        Ok(PathBuf { len: s.len() as u8, bytes })
    }

    /// Every byte of its buffer (its length goes into the digest apart).
    fn raw(&self) -> &[u8] {
        &self.bytes
    }

    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.bytes[..(self.len as usize).min(PATH_MAX)]).unwrap_or("")
    }
}

// Messages are plain values copied between tasks; boxing a variant would put a pointer into an
// arena that dies with its task. Checked on receipt (`CheckedEndpoint`), as every type a
// message carries: a corrupted discriminant is an error, not a jump.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, CheckedBitPattern)]
#[repr(u8)]
pub enum Op {
    Connect,
    Open {
        path: PathBuf,
        mode: u8,
    },
    Read {
        fd: u32,
        len: u32,
    },
    Write {
        fd: u32,
        len: u32,
        data: [u8; IO_MAX],
    },
    Seek {
        fd: u32,
        pos: u32,
    },
    Close {
        fd: u32,
    },
    Stat {
        path: PathBuf,
    },
    Mkdir {
        path: PathBuf,
    },
    List {
        path: PathBuf,
        index: u32,
    },
    Remove {
        path: PathBuf,
    },
    Chdir {
        path: PathBuf,
    },
    Cwd,
    /// Make `data[..len]` the file's contents (with `append`, add it), creating the file.
    Put {
        path: PathBuf,
        append: bool,
        len: u8,
        data: [u8; PUT_MAX],
    },
    Fsck,
    /// How many requests the session has made (version 2 counts them; version 1 answers
    /// `Malformed`).
    Requests,
    /// Write an empty file system over the disk (`fs_core::Volume::format`): a refused disk,
    /// or one that holds files only with `force`.
    Format {
        force: bool,
    },
    /// Forget every block the cell keeps between requests (its cache): the next requests read
    /// from the block store. Nothing on the disk changes. For benchmarks of the path to the
    /// device (`bench disk`), as the microkernel's `DropCaches`.
    DropCaches,
}

impl Op {
    /// The path the operation names, if it names one.
    fn path(&self) -> Option<&str> {
        match self {
            Op::Open { path, .. }
            | Op::Stat { path }
            | Op::Mkdir { path }
            | Op::List { path, .. }
            | Op::Remove { path }
            | Op::Chdir { path }
            | Op::Put { path, .. } => Some(path.as_str()),
            _ => None,
        }
    }

    /// A digest of everything the operation asks, taken by the client as it sends the request
    /// and checked by the fs cell before and after serving it: a word of the request bent in
    /// fs's memory while it waits or runs (a `memflip` of fs once changed a record's bytes
    /// this way, and both runs agreed on them) is then caught, and the request is delivered
    /// again, from the client's own copy, to fs's next incarnation.
    fn digest(&self) -> u64 {
        let none: &[u8] = &[];
        let (kind, a, b, first, second): (u64, u64, u64, &[u8], &[u8]) = match self {
            Op::Connect => (1, 0, 0, none, none),
            Op::Open { path, mode } => (2, u64::from(*mode), u64::from(path.len), path.raw(), none),
            Op::Read { fd, len } => (3, u64::from(*fd), u64::from(*len), none, none),
            Op::Write { fd, len, data } => (4, u64::from(*fd), u64::from(*len), &data[..], none),
            Op::Seek { fd, pos } => (5, u64::from(*fd), u64::from(*pos), none, none),
            Op::Close { fd } => (6, u64::from(*fd), 0, none, none),
            Op::Stat { path } => (7, 0, u64::from(path.len), path.raw(), none),
            Op::Mkdir { path } => (8, 0, u64::from(path.len), path.raw(), none),
            Op::List { path, index } => (9, u64::from(*index), u64::from(path.len), path.raw(), none),
            Op::Remove { path } => (10, 0, u64::from(path.len), path.raw(), none),
            Op::Chdir { path } => (11, 0, u64::from(path.len), path.raw(), none),
            Op::Cwd => (12, 0, 0, none, none),
            Op::Put { path, append, len, data } => {
                (13, u64::from(*append) | u64::from(*len) << 1, u64::from(path.len), path.raw(), &data[..])
            }
            Op::Fsck => (14, 0, 0, none, none),
            Op::Format { force } => (15, u64::from(*force), 0, none, none),
            Op::DropCaches => (16, 0, 0, none, none),
            Op::Requests => (17, 0, 0, none, none),
        };
        // One word for what the operation is, then its bytes, if any: each step of the seal
        // changes with any change of its word, so a bent word anywhere changes the digest. (An
        // operation with no bytes, a read, is one step and the final mix: no calls.)
        let head = kind ^ a.rotate_left(8) ^ b.rotate_left(48);
        if first.is_empty() && second.is_empty() {
            // The same value, without the loops' set-up.
            return algo::seal::seal_word(DIGEST, head);
        }
        let words = absorb(algo::seal::start(DIGEST), &head.to_le_bytes());
        finish(DIGEST, absorb(absorb(words, first), second), 8 + first.len() + second.len())
    }
}

/// The key of request digests: they are checked by the cell against a client's own copy, not
/// sealed against clients.
const DIGEST: u64 = 0x6469_6765_7374_0001;

// `Put` fits in what `Write` already takes: adding it made no message longer.
const _: () = assert!(
    core::mem::size_of::<(PathBuf, bool, u8, [u8; PUT_MAX])>()
        <= core::mem::size_of::<(u32, u32, [u8; IO_MAX])>()
);

#[repr(C)]
#[derive(Clone, Copy, CheckedBitPattern)]
pub struct Request {
    session: Session,
    /// Where the client keeps its session ([`Kept::id`]; 0 before it has one): the fs cell
    /// leaves it out when it looks at what the other sessions hold.
    holder: u64,
    op: Op,
    /// `op.digest()`, taken by the client.
    digest: u64,
}

impl Request {
    fn new(session: Session, holder: u64, op: Op) -> Request {
        Request { session, holder, op, digest: op.digest() }
    }

    /// What an answer to this request carries to say so ([`Answer::echo`]): its operation, the
    /// session it came with, and who sent it.
    fn echo(&self) -> u64 {
        self.digest ^ self.session.seal.rotate_left(21) ^ self.holder.rotate_left(42)
    }
}

// Messages are plain values copied between tasks; boxing a variant would put a pointer into an
// arena that dies with its task.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, PartialEq, CheckedBitPattern)]
#[repr(u8)]
pub enum Out {
    Fd(u32),
    Data { len: u32, bytes: [u8; IO_MAX] },
    Count(u32),
    Done,
    Stat { kind: u8, size: u32 },
    Entry(Entry),
    End,
    Path(PathBuf),
    Report(Report),
}

/// The fs cell's answer, in two copies built apart from the two runs of the operation (see
/// `twice`): the client believes it only if both agree, so a fault in the cell after its runs
/// agreed (building the answer, sealing the session) is met like one during them. Each run
/// builds its copy where the cell sends it from, and the client reads it where the kernel put
/// it (`call_into`): no copy of either side stands between the runs and the client's use.
///
/// Two fields, not an array: the kernel checks the answer as a `CheckedBitPattern`, which
/// bytemuck gives structs and enums, not arrays of them.
#[repr(C)]
#[derive(Clone, Copy, CheckedBitPattern)]
pub struct Response {
    one: Answer,
    two: Answer,
}

impl Response {
    /// Both copies, where they lie.
    fn answers(&mut self) -> [&mut Answer; 2] {
        [&mut self.one, &mut self.two]
    }
}

/// An operation's outcome, as an answer carries it: a `Result<Out, FsError>` of a layout
/// the kernel can check (`core::result::Result` has none it could).
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, PartialEq, CheckedBitPattern)]
#[repr(C, u8)]
enum Outcome {
    Ok(Out),
    Err(FsError),
}

impl Outcome {
    fn get(&self) -> Result<&Out> {
        match self {
            Outcome::Ok(out) => Ok(out),
            Outcome::Err(e) => Err(*e),
        }
    }
}

impl From<Result<Out>> for Outcome {
    fn from(r: Result<Out>) -> Outcome {
        match r {
            Ok(out) => Outcome::Ok(out),
            Err(e) => Outcome::Err(e),
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, CheckedBitPattern)]
struct Answer {
    /// The request this answers ([`Request::echo`]), written by the run that builds it. The
    /// cell builds each answer where the previous one was, so a run a fault skipped whole would
    /// leave the previous answer there, sealed and, in both copies, agreeing: it answers another
    /// request, and the client asks again.
    echo: u64,
    session: Session,
    result: Outcome,
}

impl Answer {
    fn agrees(&self, other: &Answer) -> bool {
        self.echo == other.echo
            && same_session(&self.session, &other.session)
            && same_result(&self.result, &other.result)
    }
}

/// Are two sessions the same bytes?
fn same_session(a: &Session, b: &Session) -> bool {
    a.seal == b.seal
        && (a.layout, a.requests) == (b.layout, b.requests)
        && same(bytemuck::bytes_of(&a.state), bytemuck::bytes_of(&b.state))
}

/// Are two results the same? A read's bytes are compared a word at a time, and only those it
/// read (`..len`): nothing past them reaches a client ([`Fs::read`] takes at most `len`), so
/// two answers that agree on these agree on all a client can be given, and a read of 64 bytes
/// compares 64, not [`IO_MAX`].
fn same_result(a: &Outcome, b: &Outcome) -> bool {
    match (a, b) {
        (Outcome::Ok(Out::Data { len: m, bytes: x }), Outcome::Ok(Out::Data { len: n, bytes: y })) => {
            let read = (*m as usize).min(IO_MAX);
            m == n && same(&x[..read], &y[..read])
        }
        _ => a == b,
    }
}

pub type Ep = CheckedEndpoint<Request, Response>;

/// A client of the file system: the endpoint and this client's session, which it holds in two
/// copies (a stray write into one, the `ssr` fault, is met with the other: see [`exchange`]).
pub struct Fs {
    ep: Ep,
    session: Kept<[Session; 2]>,
}

type Result<T> = core::result::Result<T, FsError>;

/// Send `request` and give `take` the answer whose two copies agree and answer this request,
/// where the kernel put it. One that does not is asked for again: the cell did the operation or
/// not, and doing it again from the same session does the same (a write lands at the same
/// offset); a `mkdir` done twice says `Exists`. A session the fs cell refuses (`StateReset`:
/// its seal or ranges do not check, and the cell did nothing) is sent once more as `second`,
/// the client's other copy, if it has one that differs.
fn exchange<R>(
    ep: Ep,
    mut request: Request,
    second: Second<'_>,
    take: impl FnOnce(&Answer) -> R,
) -> Result<R> {
    let mut second = Some(second);
    let mut inbox = Inbox::new();
    let mut tries = 0;
    let answer = loop {
        let echo = request.echo();
        let r = ep.call_into(&request, &mut inbox).map_err(|_| FsError::ServerFailed)?;
        let (a, b) = (&r.one, &r.two);
        if a.echo != echo || !a.agrees(b) {
            tries += 1;
            if tries == ATTEMPTS {
                return Err(FsError::Malformed);
            }
            continue;
        }
        match a.result {
            Outcome::Err(FsError::StateReset) => match second.take().and_then(Second::differs) {
                Some(other) => {
                    request.session = other;
                    tries = 0;
                }
                None => break a,
            },
            _ => break a,
        }
    };
    Ok(take(answer))
}

/// The client's other copy of the session, beside the one sent (as both were when the request
/// was made): worth sending only if it differs.
#[derive(Clone, Copy)]
struct Second<'s>(&'s Session, Session);

impl Second<'_> {
    fn differs(self) -> Option<Session> {
        (!same_session(self.0, &self.1)).then_some(self.1)
    }
}

/// Tries of one request whose answer's copies disagree.
const ATTEMPTS: u32 = 3;

impl Fs {
    /// Open a session (the fs cell seals a fresh state for us).
    pub fn connect(ep: Ep) -> Result<Fs> {
        let blank = Session::blank();
        let session = exchange(ep, Request::new(blank, 0, Op::Connect), Second(&blank, blank), |a| {
            a.result.get().map(|_| a.session)
        })??;
        Ok(Fs { ep, session: Kept::new("fs", [session; 2]) })
    }

    /// Send `op` with our session, and give `take` what the cell answered (where it lies). A
    /// session the fs cell refuses is sent once more from the other copy, if that one differs;
    /// only when both are refused do we take the fresh session and the error. Unless the
    /// session we keep changed while we waited: an update that rolled back put it back as it was
    /// before the update (the one we sent, from the new version, the old one cannot read), and
    /// the request goes again with it, once.
    fn call_with<R>(&mut self, op: Op, take: impl FnOnce(&Out) -> Result<R>) -> Result<R> {
        let mut take = Some(take);
        for _ in 0..2 {
            let [first, second] = self.session.get();
            let request = Request::new(first, self.session.id(), op);
            let session = &mut self.session;
            let take = &mut take;
            // The two copies are compared, and the one kept now looked at, only when the cell
            // refused the session: what they decide is asked for nothing else.
            let answered = exchange(self.ep, request, Second(&first, second), |a| {
                if a.result == Outcome::Err(FsError::StateReset) {
                    let now = session.get()[0];
                    let second = Second(&first, second).differs();
                    let put_back =
                        !same_session(&now, &first) && second.is_none_or(|s| !same_session(&now, &s));
                    if put_back {
                        return None;
                    }
                }
                session.set([a.session; 2]);
                Some(match (a.result.get(), take.take()) {
                    (Ok(out), Some(take)) => take(out),
                    (Ok(_), None) => Err(FsError::Malformed),
                    (Err(e), _) => Err(e),
                })
            })?;
            if let Some(r) = answered {
                return r;
            }
        }
        Err(FsError::StateReset)
    }

    fn call(&mut self, op: Op) -> Result<Out> {
        self.call_with(op, |out| Ok(*out))
    }

    pub fn open(&mut self, path: &str, mode: u8) -> Result<u32> {
        match self.call(Op::Open { path: PathBuf::new(path)?, mode })? {
            Out::Fd(fd) => Ok(fd),
            _ => Err(FsError::Disk),
        }
    }

    /// Read up to `out.len()` (at most [`IO_MAX`]) bytes; 0 at the end of the file.
    pub fn read(&mut self, fd: u32, out: &mut [u8]) -> Result<usize> {
        let want = out.len().min(IO_MAX) as u32;
        self.call_with(Op::Read { fd, len: want }, |answer| match answer {
            Out::Data { len, bytes } => {
                let n = (*len as usize).min(out.len());
                out[..n].copy_from_slice(&bytes[..n]);
                Ok(n)
            }
            _ => Err(FsError::Disk),
        })
    }

    pub fn write(&mut self, fd: u32, data: &[u8]) -> Result<()> {
        for chunk in data.chunks(IO_MAX) {
            let mut buf = [0u8; IO_MAX];
            buf[..chunk.len()].copy_from_slice(chunk);
            self.call(Op::Write { fd, len: chunk.len() as u32, data: buf })?;
        }
        Ok(())
    }

    /// Make `data` (at most [`PUT_MAX`] bytes: one request, so that it is all-or-nothing) the
    /// contents of the file at `path`, or with `append` add it at the end; the file is created
    /// if it is missing. On error nothing changed.
    pub fn put(&mut self, path: &str, data: &[u8], append: bool) -> Result<()> {
        if data.len() > PUT_MAX {
            return Err(FsError::FileTooLarge);
        }
        let mut buf = [0u8; PUT_MAX];
        buf[..data.len()].copy_from_slice(data);
        let op = Op::Put { path: PathBuf::new(path)?, append, len: data.len() as u8, data: buf };
        self.call(op).map(|_| ())
    }

    /// Check the fs cell's disk: what is in use, and every problem found.
    pub fn fsck(&mut self) -> Result<Report> {
        match self.call(Op::Fsck)? {
            Out::Report(r) => Ok(r),
            _ => Err(FsError::Disk),
        }
    }

    /// Format the fs cell's disk: a disk it refused, or with `force` one that holds files
    /// (without, `HoldsFiles` and nothing changes). Every session's open files go stale.
    pub fn format(&mut self, force: bool) -> Result<()> {
        self.call(Op::Format { force }).map(|_| ())
    }

    /// How many requests this session has made since it came to layout 4 (this one included):
    /// only version 2 counts them; version 1 answers `Malformed`.
    pub fn requests(&mut self) -> Result<u32> {
        match self.call(Op::Requests)? {
            Out::Count(n) => Ok(n),
            _ => Err(FsError::Disk),
        }
    }

    /// Empty the fs cell's block cache (see [`Op::DropCaches`]).
    pub fn drop_caches(&mut self) -> Result<()> {
        self.call(Op::DropCaches).map(|_| ())
    }

    pub fn seek(&mut self, fd: u32, pos: u32) -> Result<()> {
        self.call(Op::Seek { fd, pos }).map(|_| ())
    }

    pub fn close(&mut self, fd: u32) -> Result<()> {
        self.call(Op::Close { fd }).map(|_| ())
    }

    /// Kind and size of `path`.
    pub fn stat(&mut self, path: &str) -> Result<(u8, u32)> {
        match self.call(Op::Stat { path: PathBuf::new(path)? })? {
            Out::Stat { kind, size } => Ok((kind, size)),
            _ => Err(FsError::Disk),
        }
    }

    pub fn mkdir(&mut self, path: &str) -> Result<()> {
        self.call(Op::Mkdir { path: PathBuf::new(path)? }).map(|_| ())
    }

    pub fn remove(&mut self, path: &str) -> Result<()> {
        self.call(Op::Remove { path: PathBuf::new(path)? }).map(|_| ())
    }

    pub fn chdir(&mut self, path: &str) -> Result<()> {
        self.call(Op::Chdir { path: PathBuf::new(path)? }).map(|_| ())
    }

    pub fn cwd<'o>(&mut self, out: &'o mut [u8; PATH_MAX]) -> Result<&'o str> {
        match self.call(Op::Cwd)? {
            Out::Path(p) => {
                let s = p.as_str();
                out[..s.len()].copy_from_slice(s.as_bytes());
                Ok(core::str::from_utf8(&out[..s.len()]).unwrap_or("/"))
            }
            _ => Err(FsError::Disk),
        }
    }

    /// The `index`-th entry of directory `path`.
    pub fn entry(&mut self, path: &str, index: u32) -> Result<Option<Entry>> {
        match self.call(Op::List { path: PathBuf::new(path)?, index })? {
            Out::Entry(e) => Ok(Some(e)),
            _ => Ok(None),
        }
    }
}
