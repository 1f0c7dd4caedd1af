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
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

mod disk;

use block_api::BlockDevice;
use bytemuck::{Pod, Zeroable};
use disk::{Dev, Disk};
use fs_api::{FsError, Request, Response, LABEL, MAX_IO};
use fs_core::{ClientState, Held};
use ssr::{Broken, Layout};
use userlib::abi::{badge_client, badge_session, BootInfo, Error, IPC_BUFFER_SIZE};
use userlib::cap::{ssr_window, Cap, Endpoint, SsrView};
use userlib::msg;

/// A client's [`ClientState`] as the layout of its SSR. fs-core's type cannot carry this
/// crate-foreign trait itself, and the wrapper is transparent, so the SSR holds the state's
/// bytes exactly (296 of them; with the header and its backup copy well inside the page).
#[repr(transparent)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct SsrState(ClientState);

/// A buffer aligned for `SsrState` (a byte array alone need not be).
#[repr(C, align(8))]
struct Aligned<const N: usize>([u8; N]);

impl Layout for SsrState {
    const KIND: u16 = 0xF5;
    /// Goes up with every change to `ClientState`'s layout (fs-core asserts its size). 3: an
    /// open file's padding became its inode's generation.
    const VERSION: u16 = 3;
    const BACKUP: bool = true;

    fn fresh() -> Self {
        SsrState(ClientState::fresh())
    }

    fn check(&self) -> Result<(), Broken> {
        self.0.check().map_err(Broken::Inconsistent)
    }
}

struct Server {
    disk: Disk,
    view: Option<Cap<SsrView>>,
}

impl Server {
    /// What the other sessions hold of inode `ino` at `path` (read through the SsrView
    /// capability). Only operations that would change an existing file or remove something ask,
    /// never a read.
    fn held_elsewhere(&self, ino: u16, path: &[u8], me: u16) -> Held {
        let Some(view) = self.view else { return Held::default() };
        let primary = ssr::HEADER_LEN + core::mem::size_of::<SsrState>();
        let held = |s: &SsrState| s.0.held(ino, path);
        // Aligned for the state's type; long enough for the backup copy, which is read only
        // when the primary fails its checks.
        let mut buf = Aligned([0; ssr::BACKUP_OFFSET + ssr::HEADER_LEN + core::mem::size_of::<SsrState>()]);
        (0..64u16).filter(|&i| i != me).fold(Held::default(), |all, i| {
            if view.read(i as usize, &mut buf.0[..primary]).is_err() {
                return all;
            }
            if let Ok(s) = ssr::verify::<SsrState>(&buf.0[..primary]) {
                return all.or(held(s));
            }
            if view.read(i as usize, &mut buf.0).is_err() {
                return all;
            }
            all.or(ssr::verify::<SsrState>(&buf.0).map(held).unwrap_or_default())
        })
    }

    /// Serve one request of session `session` whose state is `st`.
    fn handle<'o>(
        &self,
        st: &mut ClientState,
        session: u16,
        req: Request<'_>,
        out: &'o mut [u8],
    ) -> Response<'o> {
        let disk = &self.disk;
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

userlib::entry!(main);

fn main(boot: &'static BootInfo) -> Result<(), Error> {
    console_api::init_log(log::LevelFilter::Info);
    let ep = Cap::<Endpoint>::from_boot(boot, "fs").ok_or(Error::EmptySlot)?;
    let block = Cap::<Endpoint>::from_boot(boot, "block").ok_or(Error::EmptySlot)?;
    // Only the first incarnation may format a blank store: a later one that does not find the
    // file system (the block store answered its superblock read wrongly) must not erase it; it
    // fails, and the next incarnation tries again.
    let dev = Dev(BlockDevice::new(block));
    let mounted = if boot.generation == 0 { Disk::mount(dev) } else { Disk::attach(dev).map(|d| (d, false)) };
    let (disk, formatted) = match mounted {
        Ok(d) => d,
        Err(e) => {
            log::error!("cannot mount the block store: {}", e);
            return Err(Error::Dead);
        }
    };
    if formatted {
        log::info!("formatted an empty block store");
    }
    let server = Server { disk, view: Cap::<SsrView>::from_boot(boot, "fs") };
    let mut payload = [0u8; IPC_BUFFER_SIZE];
    let mut data = [0u8; MAX_IO];
    let mut out = [0u8; MAX_IO + 32];
    let mut m = ep.recv()?;
    loop {
        let n = m.payload_into(&mut payload);
        let resp = match (badge_session(m.badge), m.info.label) {
            (None, _) => Response::Error(FsError::NoSession),
            (Some(_), label) if label != LABEL => Response::Error(FsError::Malformed),
            (Some(session), _) => match msg::decode::<Request<'_>>(&payload[..n]) {
                Err(_) => Response::Error(FsError::Malformed),
                Ok(req) => {
                    match ssr::open_reporting::<SsrState>(ssr_window(), badge_client(m.badge), session) {
                        Ok(mut region) => server.handle(&mut region.state().0, session, req, &mut data),
                        Err(_) => Response::Error(FsError::StateReset),
                    }
                }
            },
        };
        let len = msg::encode(&resp, &mut out).unwrap_or(0);
        m = ep.reply_recv(LABEL, [0; 4], &out[..len])?;
    }
}
