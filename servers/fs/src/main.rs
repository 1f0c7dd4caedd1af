//! The file server: a hierarchical file system over the block store.
//!
//! It keeps no client state of its own. Each request arrives through a client's session, the
//! kernel maps that session's SSR at the SSR window, and the server finds the client's open-file
//! table and current directory there ([`SsrState`]), checked by the `ssr` library before use.
//! The requests are served by `fs_core` against that state, the same code the libos fs cell
//! runs; what is this server's own is the transport, where the state lives, and the errors.
//! File data and metadata go to the block store before the reply, so nothing a client was told
//! is written lives only in this server. To keep a file another client has open from being
//! changed under it (fs-core's rule: one writing session at a time, nothing truncated or
//! removed while open elsewhere, no current directory removed), it reads the other sessions'
//! SSRs through its SsrView capability (read-only).
//!
//! The files live on the disk if the manifest gives this server one (`disk`, served by the disk
//! driver) and a device is attached, otherwise on the RAM disk (`block`): see [`choose_store`].
//! A store that holds something other than this file system is not mounted and not written:
//! the server stays up and answers every request with the reason, except `Format`.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

mod disk;

use block_api::{BlockDevice, BlockError};
use bytemuck::{Pod, Zeroable};
use disk::{Dev, Volume};
use fs_api::{FsError, Request, Response, COUNT, DATA, DONE, LABEL, MAX_IO, READ, SEEK, WRITE};
use fs_core::{ClientState, Held};
use ssr::{Broken, Layout};
use userlib::abi::{badge_client, badge_session, BootInfo, Error, MAX_SESSIONS};
use userlib::cap::{ssr_window, Cap, Endpoint, Message, SsrView};
use userlib::msg;
use userlib::serve::Answer;

/// A client's [`ClientState`] as the layout of its SSR (layout 3). fs-core's type cannot carry
/// this crate-foreign trait itself, and the wrapper is transparent, so the SSR holds the
/// state's bytes exactly (296 of them; with the header and its backup copy well inside the page).
#[repr(transparent)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct SsrState3(ClientState);

/// Layout 4 (version 2): layout 3 and the number of requests the session has made since.
#[cfg(feature = "v2")]
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct SsrState4 {
    files: ClientState,
    requests: u64,
}

/// The layout this version writes.
#[cfg(not(feature = "v2"))]
type SsrState = SsrState3;
#[cfg(feature = "v2")]
type SsrState = SsrState4;

/// The file-system state in a client's SSR, whichever the layout.
trait Files {
    fn files(&self) -> &ClientState;
    fn files_mut(&mut self) -> &mut ClientState;
    /// Count one more request of the session, if the layout keeps a count; the count.
    fn count_request(&mut self) -> Option<u32> {
        None
    }
}

impl Files for SsrState3 {
    fn files(&self) -> &ClientState {
        &self.0
    }
    fn files_mut(&mut self) -> &mut ClientState {
        &mut self.0
    }
}

#[cfg(feature = "v2")]
impl Files for SsrState4 {
    fn files(&self) -> &ClientState {
        &self.files
    }
    fn files_mut(&mut self) -> &mut ClientState {
        &mut self.files
    }
    fn count_request(&mut self) -> Option<u32> {
        self.requests += 1;
        Some(self.requests as u32)
    }
}

#[cfg(feature = "v2")]
impl Layout for SsrState4 {
    const KIND: u16 = 0xF5;
    const VERSION: u16 = 4;
    const BACKUP: bool = true;

    fn fresh() -> Self {
        SsrState4 { files: ClientState::fresh(), requests: 0 }
    }

    fn check(&self) -> Result<(), Broken> {
        self.files.check().map_err(Broken::Inconsistent)
    }
}

/// A buffer aligned for `SsrState` (a byte array alone need not be).
#[repr(C, align(8))]
struct Aligned<const N: usize>([u8; N]);

impl Layout for SsrState3 {
    const KIND: u16 = 0xF5;
    /// Goes up with every change to `ClientState`'s layout (fs-core asserts its size). 3: an
    /// open file's padding became its inode's generation.
    const VERSION: u16 = 3;
    const BACKUP: bool = true;

    fn fresh() -> Self {
        SsrState3(ClientState::fresh())
    }

    fn check(&self) -> Result<(), Broken> {
        self.0.check().map_err(Broken::Inconsistent)
    }
}

/// What the session whose SSR copy is `bytes` holds of `ino` at `path`, read in this version's
/// layout or, for a session not migrated yet, layout 3.
fn held_in<S: Layout + Files>(bytes: &[u8], ino: u16, path: &[u8]) -> Option<Held> {
    match ssr::verify::<S>(bytes) {
        Ok(s) => Some(s.files().held(ino, path)),
        Err(_) if S::VERSION != SsrState3::VERSION => {
            ssr::verify::<SsrState3>(bytes).ok().map(|s| s.files().held(ino, path))
        }
        Err(_) => None,
    }
}

struct Server {
    volume: Volume,
    /// What the log calls the store.
    store: &'static str,
    view: Option<Cap<SsrView>>,
}

impl Server {
    /// What the other sessions hold of inode `ino` at `path` (read through the SsrView
    /// capability). Only operations that would change an existing file or remove something ask,
    /// never a read.
    fn held_elsewhere(&self, ino: u16, path: &[u8], me: u16) -> Held {
        let Some(view) = self.view else { return Held::default() };
        let primary = ssr::HEADER_LEN + core::mem::size_of::<SsrState>();
        // Aligned for the state's type; long enough for the backup copy, which is read only
        // when the primary fails its checks.
        let mut buf = Aligned([0; ssr::BACKUP_OFFSET + ssr::HEADER_LEN + core::mem::size_of::<SsrState>()]);
        (0..MAX_SESSIONS as u16).filter(|&i| i != me).fold(Held::default(), |all, i| {
            if view.read(i as usize, &mut buf.0[..primary]).is_err() {
                return all;
            }
            if let Some(h) = held_in::<SsrState>(&buf.0[..primary], ino, path) {
                return all.or(h);
            }
            if view.read(i as usize, &mut buf.0).is_err() {
                return all;
            }
            all.or(held_in::<SsrState>(&buf.0, ino, path).unwrap_or_default())
        })
    }

    /// Serve one request of session `session` whose state is `st`.
    fn handle<'o>(
        &mut self,
        st: &mut ClientState,
        session: u16,
        req: Request<'_>,
        out: &'o mut [u8],
    ) -> Response<'o> {
        if let Request::Format { force } = req {
            return match self.volume.format(force) {
                Ok(()) => {
                    log::info!("formatted {}: {}", self.store, Span(&self.volume));
                    Response::Done
                }
                Err(e) => Response::Error(e),
            };
        }
        // A refused store: every other request hears why.
        let disk = match self.volume.disk() {
            Ok(disk) => disk,
            Err(e) => return Response::Error(e),
        };
        let others = |ino, path: &[u8]| self.held_elsewhere(ino, path, session);
        let result = match req {
            Request::Open { path, mode } => st.open(disk, path, mode, others).map(Response::Fd),
            Request::Read { fd, len } => {
                let want = (len as usize).min(out.len());
                return match st.read(disk, fd, &mut out[..want]) {
                    Ok(n) => Response::Data(&out[..n]),
                    Err(e) => Response::Error(e),
                };
            }
            Request::Write { fd, data } => st.write(disk, fd, data).map(Response::Count),
            Request::Put { path, data, append } => {
                st.put(disk, path, data, append, others).map(|_| Response::Done)
            }
            Request::Seek { fd, pos } => st.seek(fd, pos).map(|_| Response::Done),
            Request::Close { fd } => st.close(fd).map(|_| Response::Done),
            Request::Tell { fd } => st.tell(fd).map(|(offset, mode)| Response::Position { offset, mode }),
            Request::Stat { path } => st.stat(disk, path).map(|(kind, size)| Response::Stat { kind, size }),
            Request::Mkdir { path } => st.mkdir(disk, path).map(|_| Response::Done),
            Request::Remove { path } => st.remove(disk, path, others).map(|_| Response::Done),
            Request::Fsck => fs_core::fsck(disk).map(Response::Report),
            Request::Chdir { path } => st.chdir(disk, path).map(|_| Response::Done),
            Request::Cwd => {
                let cwd = st.cwd().as_bytes();
                out[..cwd.len()].copy_from_slice(cwd);
                return Response::Path(core::str::from_utf8(&out[..cwd.len()]).unwrap_or("/"));
            }
            Request::Format { .. } => Err(FsError::Malformed), // served above
            Request::Requests => Err(FsError::Malformed),      // served by `serve`
            Request::DropCaches => {
                disk.device().clear();
                Ok(Response::Done)
            }
            Request::List { path, index } => match st.entry(disk, path, index) {
                Ok(Some((e, size))) => {
                    let n = e.name().len();
                    out[..n].copy_from_slice(e.name());
                    let name = core::str::from_utf8(&out[..n]).unwrap_or("?");
                    return Response::Entry { name, kind: e.kind, size };
                }
                Ok(None) => Ok(Response::End),
                Err(e) => Err(e),
            },
        };
        result.unwrap_or_else(Response::Error)
    }
}

/// How much of the store the file system spans, for the log: `N of its M blocks`.
struct Span<'v>(&'v Volume);

impl core::fmt::Display for Span<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let v = self.0;
        write!(f, "the file system spans {} of its {} blocks", v.blocks(), v.device_blocks())
    }
}

/// A block store the files can live on, and what the log calls it.
struct Store {
    dev: BlockDevice,
    name: &'static str,
    /// Lost at power-off (the RAM disk).
    volatile: bool,
}

/// How many times fs asks the disk driver what it serves before it gives up.
const PROBES: u32 = 5;

/// Which store holds the files. Without a `disk` capability (a manifest with no disk driver),
/// the RAM disk; with one, the disk, unless its driver answers that no device is attached.
/// A driver that does not answer at all is an error, never a reason to use the RAM disk:
/// files written there would be lost at power-off without anyone being told. Every
/// incarnation asks again and so picks what the first did: whether a device is attached does
/// not change while the machine runs. Only the first says so in the log (`first`).
fn choose_store(boot: &BootInfo, first: bool) -> Result<Store, Error> {
    let ram = || {
        let ep = Cap::<Endpoint>::from_boot(boot, "block").ok_or(Error::EmptySlot)?;
        Ok(Store { dev: BlockDevice::new(ep), name: "the RAM disk", volatile: true })
    };
    let Some(disk) = Cap::<Endpoint>::from_boot(boot, "disk") else { return ram() };
    let disk = Store { dev: BlockDevice::new(disk), name: "the disk", volatile: false };
    let mut why = BlockError::Malformed;
    for _ in 0..PROBES {
        match disk.dev.blocks() {
            Ok(_) => return Ok(disk),
            Err(BlockError::NoDevice) => {
                if first {
                    log::warn!("no disk attached: files live on the RAM disk and are lost at power-off");
                }
                return ram();
            }
            Err(e) => why = e,
        }
        userlib::sys::yield_now();
    }
    log::error!(
        "the disk driver did not say what it serves ({:?}, {} tries): not using any store",
        why,
        PROBES
    );
    Err(Error::Dead)
}

#[cfg(not(feature = "v2"))]
userlib::version!("fs", 1, [(SsrState3::KIND, SsrState3::VERSION)]);
#[cfg(all(feature = "v2", not(feature = "faulty")))]
userlib::version!("fs", 2, [(SsrState3::KIND, SsrState3::VERSION), (SsrState4::KIND, SsrState4::VERSION)]);
#[cfg(feature = "faulty")]
userlib::version!("fs", 3, [(SsrState3::KIND, SsrState3::VERSION), (SsrState4::KIND, SsrState4::VERSION)]);
userlib::entry!(main);

/// A client state in layout 3 becomes layout 4 on the session's first request to version 2.
#[cfg(feature = "v2")]
fn migrate(client: u16, session: u16) {
    let window = ssr_window();
    if ssr::layout_of(window, SsrState3::KIND) == Some(SsrState3::VERSION) {
        migrate_3_to_4(window, client, session);
    }
    if cfg!(feature = "faulty") {
        panic!("the faulty build of fs fails on every request, after migrating the client's state");
    }
}

#[cfg(feature = "v2")]
fn migrate_3_to_4(window: &mut [u8], client: u16, session: u16) {
    match ssr::migrate::<SsrState3, SsrState4>(window, |old| SsrState4 { files: old.0, requests: 0 }) {
        Ok(()) => log::info!("client task {client} (session {session}): state migrated from layout 3 to 4"),
        // Left as it is: opening it in layout 4 then fails and resets it, as any broken state.
        Err(e) => log::warn!("client task {client} (session {session}): cannot migrate its state: {e}"),
    }
}

#[cfg(not(feature = "v2"))]
fn migrate(_client: u16, _session: u16) {}

/// One request on a client state of this version's layout: counted, where the layout keeps
/// a count (version 2), and `Requests` answered from it; version 1 has none to answer from.
fn serve<'o>(
    server: &mut Server,
    st: &mut SsrState,
    session: u16,
    req: Request<'_>,
    out: &'o mut [u8],
) -> Response<'o> {
    let requests = st.count_request();
    match req {
        Request::Requests => requests.map_or(Response::Error(FsError::Malformed), Response::Count),
        req => server.handle(st.files_mut(), session, req, out),
    }
}

/// `f` on the state of session `session` of task `client`, in its SSR (migrated first, if
/// this version's layout is newer), checked and sealed again afterwards; `StateReset` if the
/// state was broken beyond repair (it is reset: the client's next request starts afresh).
fn with_state<R>(client: u16, session: u16, f: impl FnOnce(&mut SsrState) -> R) -> Result<R, FsError> {
    migrate(client, session);
    match ssr::open_reporting::<SsrState>(ssr_window(), client, session) {
        Ok(mut region) => Ok(f(region.state())),
        Err(_) => Err(FsError::StateReset),
    }
}

/// Room the answers to requests other than `Read` need for their bytes: a path (`Cwd`) or a
/// name (`List`).
const ANSWER_ROOM: usize = fs_api::PATH_MAX;
const _: () = assert!(fs_api::NAME_MAX <= ANSWER_ROOM);

/// Call `f` with room for `need` bytes of an answer (at most [`MAX_IO`]), on this stack and
/// zeroed (this server has no unsafe code to leave it uninitialised): sized in steps, so a
/// 64-byte read clears 128 bytes, not the largest read's 2 KiB (which was a tenth of
/// `mk.fs_read`).
fn with_room<R>(need: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
    if need <= 128 {
        f(&mut [0u8; 128])
    } else if need <= 512 {
        f(&mut [0u8; 512])
    } else {
        f(&mut [0u8; MAX_IO])
    }
}

fn main(boot: &'static BootInfo) -> Result<(), Error> {
    console_api::init_log(log::LevelFilter::Info);
    let ep = Cap::<Endpoint>::from_boot(boot, "fs").ok_or(Error::EmptySlot)?;
    let first = boot.generation == 0;
    let store = choose_store(boot, first)?;
    // Only the first incarnation may format a blank store: a later one that does not find the
    // file system (the block store answered its reads wrongly) must not erase it; it fails,
    // and the next incarnation tries again. A store that holds something else is refused by
    // every incarnation alike.
    let dev = disk::cached(Dev { store: store.dev, volatile: store.volatile });
    let mounted = if first { Volume::mount(dev) } else { Volume::attach(dev).map(|v| (v, false)) };
    let (volume, formatted) = match mounted {
        Ok(v) => v,
        Err(e) => {
            log::error!("cannot mount {}: {}", store.name, e);
            return Err(Error::Dead);
        }
    };
    match volume.refused() {
        Some(why) => log::error!("not mounting {}: {}", store.name, why),
        None if formatted => log::info!("formatted {} (it was blank): {}", store.name, Span(&volume)),
        None if first => log::info!("mounted {}: {}", store.name, Span(&volume)),
        None => {}
    }
    if let Some((seq, r)) = volume.redone() {
        log::info!(
            "{}: redid operation {} from the journal (the machine stopped while writing it)",
            store.name,
            seq
        );
        if r.is_clean() {
            log::info!(
                "{}: fsck after the recovery: clean: {} of {} blocks in use",
                store.name,
                r.blocks,
                r.blocks_total
            );
        } else {
            log::error!("{}: fsck after the recovery found {} problem(s): run `fsck`", store.name, r.found);
        }
    }
    let mut server = Server { volume, store: store.name, view: Cap::<SsrView>::from_boot(boot, "fs") };
    // Server-global by design: the mounted volume's in-memory state (allocation hints, the
    // journal's sequence), read again from the store by every incarnation.
    userlib::declare(&server, "mounted volume")?;
    userlib::serve::serve(ep, |m: &Message| {
        let resp = |resp: &Response<'_>| Answer::encode(LABEL, resp);
        let Some(session) = badge_session(m.badge) else {
            return resp(&Response::Error(FsError::NoSession));
        };
        let client = badge_client(m.badge);
        match m.info.label {
            // A read in the fixed layout (`fs_api::READ`): no payload to copy or decode, and the
            // bytes read sent as they are. (Read into this stack, not straight into the IPC
            // buffer: a block the cache misses is fetched through it from the block store.)
            READ => {
                let len = m.words[1].min(MAX_IO as u64) as u32;
                let req = Request::Read { fd: m.words[0] as u32, len };
                let read = with_state(client, session, |st| {
                    with_room(len as usize, |data| match serve(&mut server, st, session, req, data) {
                        Response::Data(d) => Ok(Answer::bytes(DATA, d)),
                        Response::Error(e) => Err(e),
                        _ => Err(FsError::Malformed),
                    })
                });
                read.and_then(|r| r).unwrap_or_else(|e| resp(&Response::Error(e)))
            }
            SEEK => {
                let req =
                    Request::Seek { fd: m.words[0] as u32, pos: m.words[1].min(u32::MAX as u64) as u32 };
                let seek =
                    with_state(client, session, |st| match serve(&mut server, st, session, req, &mut []) {
                        Response::Done => Ok(Answer::words(DONE, [0; 4])),
                        Response::Error(e) => Err(e),
                        _ => Err(FsError::Malformed),
                    });
                seek.and_then(|r| r).unwrap_or_else(|e| resp(&Response::Error(e)))
            }
            WRITE => m.with_payload(|data| {
                let req = Request::Write { fd: m.words[0] as u32, data };
                let write =
                    with_state(client, session, |st| match serve(&mut server, st, session, req, &mut []) {
                        Response::Count(n) => Ok(Answer::words(COUNT, [n as u64, 0, 0, 0])),
                        Response::Error(e) => Err(e),
                        _ => Err(FsError::Malformed),
                    });
                write.and_then(|r| r).unwrap_or_else(|e| resp(&Response::Error(e)))
            }),
            LABEL => m.with_payload(|payload| match msg::decode::<Request<'_>>(payload) {
                Err(_) => resp(&Response::Error(FsError::Malformed)),
                Ok(req) => {
                    let need = match req {
                        Request::Read { len, .. } => len as usize,
                        _ => ANSWER_ROOM,
                    };
                    with_state(client, session, |st| {
                        with_room(need, |data| resp(&serve(&mut server, st, session, req, data)))
                    })
                    .unwrap_or_else(|e| resp(&Response::Error(e)))
                }
            }),
            _ => resp(&Response::Error(FsError::Malformed)),
        }
    })
}
