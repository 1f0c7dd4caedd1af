//! The file server: a hierarchical file system over the block store.
//!
//! It keeps no client state of its own. Each request arrives through a client's session, the
//! kernel maps that session's SSR at the SSR window, and the server finds the client's open-file
//! table and current directory there ([`ClientState`]), checked by the `ssr` library before use.
//! File data and metadata go to the block store before the reply, so nothing a client was told
//! is written lives only in this server. To refuse removing a file another client has open, it
//! reads the other sessions' SSRs through its SsrView capability (read-only).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

mod disk;

use block_api::BlockDevice;
use bytemuck::{Pod, Zeroable};
use disk::{Disk, Inode, MAX_FILE, ROOT};
use fs_api::{mode, normalize, FsError, Request, Response, KIND_DIR, KIND_FILE, LABEL, MAX_IO, PATH_MAX};
use ssr::{Broken, Layout};
use userlib::abi::{badge_client, badge_session, BootInfo, Error, IPC_BUFFER_SIZE};
use userlib::cap::{ssr_window, Cap, Endpoint, SsrView};
use userlib::msg;

userlib::entry!(main);

const MAX_FILES: usize = 16;
const FD_MAGIC: u16 = 0xF11E;

/// One open file, in the client's SSR.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
struct OpenFile {
    /// `FD_MAGIC` while open, 0 when free: an object magic number in the CuriOS manner.
    magic: u16,
    mode: u8,
    _pad: u8,
    inode: u16,
    _pad2: u16,
    offset: u32,
}

/// Everything the file server remembers about one client. Lives only in the client's SSR.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct ClientState {
    cwd_len: u16,
    _pad: [u8; 6],
    cwd: [u8; PATH_MAX],
    files: [OpenFile; MAX_FILES],
}

/// A buffer aligned for `ClientState` (a byte array alone need not be).
#[repr(C, align(8))]
struct Aligned<const N: usize>([u8; N]);

impl Layout for ClientState {
    const KIND: u16 = 0xF5;
    const VERSION: u16 = 2;
    const BACKUP: bool = true;

    fn fresh() -> Self {
        let mut s = ClientState::zeroed();
        s.cwd[0] = b'/';
        s.cwd_len = 1;
        s
    }

    fn check(&self) -> Result<(), Broken> {
        if self.cwd_len == 0 || self.cwd_len as usize > PATH_MAX || self.cwd[0] != b'/' {
            return Err(Broken::Inconsistent("current directory"));
        }
        if core::str::from_utf8(&self.cwd[..self.cwd_len as usize]).is_err() {
            return Err(Broken::Inconsistent("current directory is not UTF-8"));
        }
        for f in &self.files {
            match f.magic {
                0 => {}
                FD_MAGIC => {
                    if f.inode == 0
                        || f.inode >= disk::INODES
                        || f.mode & !mode::ALL != 0
                        || f.offset > MAX_FILE
                    {
                        return Err(Broken::Inconsistent("open-file entry out of range"));
                    }
                }
                _ => return Err(Broken::Inconsistent("open-file entry with a bad magic number")),
            }
        }
        Ok(())
    }
}

impl ClientState {
    fn cwd(&self) -> &str {
        core::str::from_utf8(&self.cwd[..self.cwd_len as usize]).unwrap_or("/")
    }

    fn file(&mut self, fd: u32) -> Result<&mut OpenFile, FsError> {
        self.files.get_mut(fd as usize).filter(|f| f.magic == FD_MAGIC).ok_or(FsError::BadFd)
    }
}

struct Server {
    disk: Disk,
    view: Option<Cap<SsrView>>,
}

/// An absolute, normalised path.
struct Path {
    buf: [u8; PATH_MAX],
    len: usize,
}

impl Path {
    fn new(cwd: &str, path: &str) -> Result<Path, FsError> {
        let mut buf = [0u8; PATH_MAX];
        let len = normalize(cwd, path, &mut buf)?;
        Ok(Path { buf, len })
    }

    fn components(&self) -> impl Iterator<Item = &[u8]> {
        self.buf[..self.len].split(|&b| b == b'/').filter(|c| !c.is_empty())
    }

    /// The parent's path components and the last name (`None` for the root).
    fn split_last(&self) -> Option<(&[u8], &[u8])> {
        let s = &self.buf[..self.len];
        let cut = s.iter().rposition(|&b| b == b'/')?;
        let name = &s[cut + 1..];
        (!name.is_empty()).then_some((&s[..cut], name))
    }
}

impl Server {
    /// Walk path components from the root.
    fn walk<'a>(&self, comps: impl Iterator<Item = &'a [u8]>) -> Result<(u16, u8), FsError> {
        let (mut ino, mut kind) = (ROOT, KIND_DIR);
        for c in comps {
            if kind != KIND_DIR {
                return Err(FsError::NotADirectory);
            }
            let (_, e) = self.disk.lookup(ino, c)?.ok_or(FsError::NotFound)?;
            (ino, kind) = (e.inode, e.kind);
        }
        Ok((ino, kind))
    }

    fn resolve(&self, p: &Path) -> Result<(u16, u8), FsError> {
        self.walk(p.components())
    }

    /// The parent directory's inode and the final name.
    fn parent<'p>(&self, p: &'p Path) -> Result<(u16, &'p [u8]), FsError> {
        let (parent, name) = p.split_last().ok_or(FsError::BadPath)?;
        let (ino, kind) = self.walk(parent.split(|&b| b == b'/').filter(|c| !c.is_empty()))?;
        if kind != KIND_DIR {
            return Err(FsError::NotADirectory);
        }
        Ok((ino, name))
    }

    /// Whether any other session has inode `ino` open (read through the SsrView capability).
    fn open_elsewhere(&self, ino: u16, me: u16) -> bool {
        let Some(view) = self.view else { return false };
        let primary = ssr::HEADER_LEN + core::mem::size_of::<ClientState>();
        let holds = |s: &ClientState| s.files.iter().any(|f| f.magic == FD_MAGIC && f.inode == ino);
        // Aligned for the state's type; long enough for the backup copy, which is read only
        // when the primary fails its checks.
        let mut buf =
            Aligned([0; ssr::BACKUP_OFFSET + ssr::HEADER_LEN + core::mem::size_of::<ClientState>()]);
        (0..64u16).filter(|&i| i != me).any(|i| {
            if view.read(i as usize, &mut buf.0[..primary]).is_err() {
                return false;
            }
            match ssr::verify::<ClientState>(&buf.0[..primary]) {
                Ok(s) => holds(s),
                Err(_) => {
                    view.read(i as usize, &mut buf.0).is_ok()
                        && ssr::verify::<ClientState>(&buf.0).is_ok_and(holds)
                }
            }
        })
    }

    fn open(&self, st: &mut ClientState, path: &str, m: u8) -> Result<u32, FsError> {
        if m & !mode::ALL != 0 || m & (mode::READ | mode::WRITE | mode::APPEND) == 0 {
            return Err(FsError::BadMode);
        }
        let fd = st.files.iter().position(|f| f.magic != FD_MAGIC).ok_or(FsError::TooManyOpen)?;
        let p = Path::new(st.cwd(), path)?;
        let ino = match self.resolve(&p) {
            Ok((_, KIND_DIR)) => return Err(FsError::IsADirectory),
            Ok((ino, _)) => ino,
            Err(FsError::NotFound) if m & mode::CREATE != 0 => {
                let (dir, name) = self.parent(&p)?;
                let ino = self.disk.free_inode()?;
                self.disk.put_inode(ino, &Inode::new(KIND_FILE))?;
                if let Err(e) = self.disk.link(dir, name, ino, KIND_FILE) {
                    self.disk.put_inode(ino, &Inode::default())?;
                    return Err(e);
                }
                ino
            }
            Err(e) => return Err(e),
        };
        if m & mode::TRUNCATE != 0 {
            let mut inode = self.disk.inode(ino)?;
            self.disk.truncate(ino, &mut inode)?;
        }
        st.files[fd] = OpenFile { magic: FD_MAGIC, mode: m, _pad: 0, inode: ino, _pad2: 0, offset: 0 };
        Ok(fd as u32)
    }

    fn read<'o>(
        &self,
        st: &mut ClientState,
        fd: u32,
        len: u32,
        out: &'o mut [u8],
    ) -> Result<&'o [u8], FsError> {
        let f = st.file(fd)?;
        if f.mode & mode::READ == 0 {
            return Err(FsError::BadMode);
        }
        let mut inode = self.disk.inode(f.inode)?;
        let want = (len as usize).min(MAX_IO).min(out.len());
        let n = self.disk.read_at(&mut inode, f.offset, &mut out[..want])?;
        f.offset += n as u32;
        Ok(&out[..n])
    }

    fn write(&self, st: &mut ClientState, fd: u32, data: &[u8]) -> Result<u32, FsError> {
        let f = st.file(fd)?;
        if f.mode & (mode::WRITE | mode::APPEND) == 0 {
            return Err(FsError::BadMode);
        }
        let mut inode = self.disk.inode(f.inode)?;
        if inode.kind != KIND_FILE {
            return Err(FsError::BadFd);
        }
        let at = if f.mode & mode::APPEND != 0 { inode.size } else { f.offset };
        let n = self.disk.write_at(f.inode, &mut inode, at, data)?;
        f.offset = at + n as u32;
        Ok(n as u32)
    }

    fn mkdir(&self, st: &ClientState, path: &str) -> Result<(), FsError> {
        let p = Path::new(st.cwd(), path)?;
        let (dir, name) = self.parent(&p)?;
        if self.disk.lookup(dir, name)?.is_some() {
            return Err(FsError::Exists);
        }
        let ino = self.disk.free_inode()?;
        self.disk.put_inode(ino, &Inode::new(KIND_DIR))?;
        self.disk.link(dir, name, ino, KIND_DIR)
    }

    fn remove(&self, st: &ClientState, path: &str, me: u16) -> Result<(), FsError> {
        let p = Path::new(st.cwd(), path)?;
        let (dir, name) = self.parent(&p)?;
        let (slot, e) = self.disk.lookup(dir, name)?.ok_or(FsError::NotFound)?;
        if e.kind == KIND_DIR && self.disk.nth_entry(e.inode, 0)?.is_some() {
            return Err(FsError::NotEmpty);
        }
        let open_here = st.files.iter().any(|f| f.magic == FD_MAGIC && f.inode == e.inode);
        if open_here || self.open_elsewhere(e.inode, me) {
            return Err(FsError::InUse);
        }
        let mut inode = self.disk.inode(e.inode)?;
        self.disk.truncate(e.inode, &mut inode)?;
        self.disk.put_inode(e.inode, &Inode::default())?;
        self.disk.unlink(dir, slot)
    }

    fn chdir(&self, st: &mut ClientState, path: &str) -> Result<(), FsError> {
        let p = Path::new(st.cwd(), path)?;
        if self.resolve(&p)?.1 != KIND_DIR {
            return Err(FsError::NotADirectory);
        }
        st.cwd[..p.len].copy_from_slice(&p.buf[..p.len]);
        st.cwd_len = p.len as u16;
        Ok(())
    }

    /// Serve one request of session `session` whose state is `st`.
    fn handle<'o>(
        &self,
        st: &mut ClientState,
        session: u16,
        req: Request<'_>,
        out: &'o mut [u8],
    ) -> Response<'o> {
        let result = match req {
            Request::Open { path, mode } => self.open(st, path, mode).map(Response::Fd),
            Request::Read { fd, len } => {
                return self.read(st, fd, len, out).map_or_else(Response::Error, Response::Data)
            }
            Request::Write { fd, data } => self.write(st, fd, data).map(Response::Count),
            Request::Seek { fd, pos } => st.file(fd).and_then(|f| {
                if pos > MAX_FILE {
                    return Err(FsError::FileTooLarge);
                }
                f.offset = pos;
                Ok(Response::Done)
            }),
            Request::Close { fd } => st.file(fd).map(|f| {
                *f = OpenFile::zeroed();
                Response::Done
            }),
            Request::Tell { fd } => {
                st.file(fd).map(|f| Response::Position { offset: f.offset, mode: f.mode })
            }
            Request::Stat { path } => Path::new(st.cwd(), path)
                .and_then(|p| self.resolve(&p))
                .and_then(|(ino, kind)| Ok(Response::Stat { kind, size: self.disk.inode(ino)?.size })),
            Request::Mkdir { path } => self.mkdir(st, path).map(|_| Response::Done),
            Request::Remove { path } => self.remove(st, path, session).map(|_| Response::Done),
            Request::Chdir { path } => self.chdir(st, path).map(|_| Response::Done),
            Request::Cwd => {
                let n = st.cwd_len as usize;
                out[..n].copy_from_slice(&st.cwd[..n]);
                return Response::Path(core::str::from_utf8(&out[..n]).unwrap_or("/"));
            }
            Request::List { path, index } => match Path::new(st.cwd(), path).and_then(|p| self.resolve(&p)) {
                Ok((ino, KIND_DIR)) => match self.disk.nth_entry(ino, index) {
                    Ok(Some(e)) => {
                        let size = self.disk.inode(e.inode).map(|i| i.size).unwrap_or(0);
                        let n = e.name().len();
                        out[..n].copy_from_slice(e.name());
                        let name = core::str::from_utf8(&out[..n]).unwrap_or("?");
                        return Response::Entry { name, kind: e.kind, size };
                    }
                    Ok(None) => Ok(Response::End),
                    Err(e) => Err(e),
                },
                Ok(_) => Err(FsError::NotADirectory),
                Err(e) => Err(e),
            },
        };
        result.unwrap_or_else(Response::Error)
    }
}

fn main(boot: &'static BootInfo) -> Result<(), Error> {
    console_api::init_log(log::LevelFilter::Info);
    let ep = Cap::<Endpoint>::from_boot(boot, "fs").ok_or(Error::EmptySlot)?;
    let block = Cap::<Endpoint>::from_boot(boot, "block").ok_or(Error::EmptySlot)?;
    let (disk, formatted) = match Disk::mount(BlockDevice::new(block)) {
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
                    match ssr::open_reporting::<ClientState>(ssr_window(), badge_client(m.badge), session) {
                        Ok(mut region) => server.handle(region.state(), session, req, &mut data),
                        Err(_) => Response::Error(FsError::StateReset),
                    }
                }
            },
        };
        let len = msg::encode(&resp, &mut out).unwrap_or(0);
        m = ep.reply_recv(LABEL, [0; 4], &out[..len])?;
    }
}
