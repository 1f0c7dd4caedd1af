//! The fs task: checks the client's session, serves one operation, reseals the session.

use crate::{mode, Entry, FsError, Op, OpenFile, Out, PathBuf, Response, Session, State, IO_MAX, MAX_FILES};
use bytemuck::Zeroable;
use cell_ramdisk::Blocks;
use fs_core::path::normalize;
use fs_core::{Disk, Inode, KIND_DIR, KIND_FILE, MAX_FILE, NAME_MAX, PATH_MAX, ROOT};
use libos_logic::seal::seal;

const FD_MAGIC: u16 = 0xF11E;

type Result<T> = core::result::Result<T, FsError>;

fn sealed(key: u64, state: State) -> Session {
    Session { state, seal: seal(key, bytemuck::bytes_of(&state)) }
}

fn fresh() -> State {
    let mut s = State::zeroed();
    s.cwd[0] = b'/';
    s.cwd_len = 1;
    s
}

/// The seal and every range the server relies on.
fn check(key: u64, s: &Session) -> Result<()> {
    let st = &s.state;
    if s.seal != seal(key, bytemuck::bytes_of(st)) {
        return Err(FsError::StateReset);
    }
    let cwd_ok = st.cwd_len as usize >= 1
        && st.cwd_len as usize <= PATH_MAX
        && st.cwd[0] == b'/'
        && core::str::from_utf8(&st.cwd[..st.cwd_len as usize]).is_ok();
    let files_ok = st.files.iter().all(|f| match f.magic {
        0 => true,
        FD_MAGIC => {
            f.inode != 0 && f.inode < fs_core::INODES && f.mode & !mode::ALL == 0 && f.offset <= MAX_FILE
        }
        _ => false,
    });
    if cwd_ok && files_ok {
        Ok(())
    } else {
        Err(FsError::StateReset)
    }
}

impl State {
    fn cwd(&self) -> &str {
        core::str::from_utf8(&self.cwd[..self.cwd_len as usize]).unwrap_or("/")
    }

    fn file(&mut self, fd: u32) -> Result<&mut OpenFile> {
        self.files.get_mut(fd as usize).filter(|f| f.magic == FD_MAGIC).ok_or(FsError::BadFd)
    }
}

/// An absolute, normalised path.
struct Path {
    buf: [u8; PATH_MAX],
    len: usize,
}

impl Path {
    fn new(cwd: &str, path: &str) -> Result<Path> {
        let mut buf = [0u8; PATH_MAX];
        let len = normalize(cwd, path, &mut buf)?;
        Ok(Path { buf, len })
    }

    fn components(&self) -> impl Iterator<Item = &[u8]> {
        self.buf[..self.len].split(|&b| b == b'/').filter(|c| !c.is_empty())
    }

    fn split_last(&self) -> Option<(&[u8], &[u8])> {
        let s = &self.buf[..self.len];
        let cut = s.iter().rposition(|&b| b == b'/')?;
        let name = &s[cut + 1..];
        (!name.is_empty()).then_some((&s[..cut], name))
    }
}

struct Server {
    disk: Disk<Blocks>,
}

impl Server {
    fn walk<'a>(&self, comps: impl Iterator<Item = &'a [u8]>) -> Result<(u16, u8)> {
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

    fn resolve(&self, p: &Path) -> Result<(u16, u8)> {
        self.walk(p.components())
    }

    fn parent<'p>(&self, p: &'p Path) -> Result<(u16, &'p [u8])> {
        let (parent, name) = p.split_last().ok_or(FsError::BadPath)?;
        let (ino, kind) = self.walk(parent.split(|&b| b == b'/').filter(|c| !c.is_empty()))?;
        if kind != KIND_DIR {
            return Err(FsError::NotADirectory);
        }
        Ok((ino, name))
    }

    fn open(&self, st: &mut State, path: &str, m: u8) -> Result<u32> {
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

    fn read(&self, st: &mut State, fd: u32, len: u32) -> Result<Out> {
        let f = st.file(fd)?;
        if f.mode & mode::READ == 0 {
            return Err(FsError::BadMode);
        }
        let mut inode = self.disk.inode(f.inode)?;
        let mut bytes = [0u8; IO_MAX];
        let want = (len as usize).min(IO_MAX);
        let n = self.disk.read_at(&mut inode, f.offset, &mut bytes[..want])?;
        f.offset += n as u32;
        Ok(Out::Data { len: n as u32, bytes })
    }

    fn write(&self, st: &mut State, fd: u32, data: &[u8]) -> Result<u32> {
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

    fn mkdir(&self, st: &State, path: &str) -> Result<()> {
        let p = Path::new(st.cwd(), path)?;
        let (dir, name) = self.parent(&p)?;
        if self.disk.lookup(dir, name)?.is_some() {
            return Err(FsError::Exists);
        }
        let ino = self.disk.free_inode()?;
        self.disk.put_inode(ino, &Inode::new(KIND_DIR))?;
        self.disk.link(dir, name, ino, KIND_DIR)
    }

    fn remove(&self, st: &State, path: &str) -> Result<()> {
        let p = Path::new(st.cwd(), path)?;
        let (dir, name) = self.parent(&p)?;
        let (slot, e) = self.disk.lookup(dir, name)?.ok_or(FsError::NotFound)?;
        if e.kind == KIND_DIR && self.disk.nth_entry(e.inode, 0)?.is_some() {
            return Err(FsError::NotEmpty);
        }
        // Only the caller's own session is visible here: the server keeps no list of clients.
        if st.files.iter().any(|f| f.magic == FD_MAGIC && f.inode == e.inode) {
            return Err(FsError::InUse);
        }
        let mut inode = self.disk.inode(e.inode)?;
        self.disk.truncate(e.inode, &mut inode)?;
        self.disk.put_inode(e.inode, &Inode::default())?;
        self.disk.unlink(dir, slot)
    }

    fn chdir(&self, st: &mut State, path: &str) -> Result<()> {
        let p = Path::new(st.cwd(), path)?;
        if self.resolve(&p)?.1 != KIND_DIR {
            return Err(FsError::NotADirectory);
        }
        st.cwd[..p.len].copy_from_slice(&p.buf[..p.len]);
        st.cwd_len = p.len as u16;
        Ok(())
    }

    fn handle(&self, st: &mut State, op: &Op) -> Result<Out> {
        match op {
            Op::Connect => Ok(Out::Done),
            Op::Open { path, mode } => self.open(st, path.as_str(), *mode).map(Out::Fd),
            Op::Read { fd, len } => self.read(st, *fd, *len),
            Op::Write { fd, len, data } => {
                let n = (*len as usize).min(IO_MAX);
                self.write(st, *fd, &data[..n]).map(Out::Count)
            }
            Op::Seek { fd, pos } => {
                let f = st.file(*fd)?;
                if *pos > MAX_FILE {
                    return Err(FsError::FileTooLarge);
                }
                f.offset = *pos;
                Ok(Out::Done)
            }
            Op::Close { fd } => {
                *st.file(*fd)? = OpenFile::zeroed();
                Ok(Out::Done)
            }
            Op::Stat { path } => {
                let p = Path::new(st.cwd(), path.as_str())?;
                let (ino, kind) = self.resolve(&p)?;
                Ok(Out::Stat { kind, size: self.disk.inode(ino)?.size })
            }
            Op::Mkdir { path } => self.mkdir(st, path.as_str()).map(|_| Out::Done),
            Op::Remove { path } => self.remove(st, path.as_str()).map(|_| Out::Done),
            Op::Chdir { path } => self.chdir(st, path.as_str()).map(|_| Out::Done),
            Op::Cwd => PathBuf::new(st.cwd()).map(Out::Path),
            Op::List { path, index } => {
                let p = Path::new(st.cwd(), path.as_str())?;
                match self.resolve(&p)? {
                    (ino, KIND_DIR) => match self.disk.nth_entry(ino, *index)? {
                        Some(e) => {
                            let size = self.disk.inode(e.inode).map(|i| i.size).unwrap_or(0);
                            let mut name = [0u8; NAME_MAX];
                            let n = e.name().len().min(NAME_MAX);
                            name[..n].copy_from_slice(&e.name()[..n]);
                            Ok(Out::Entry(Entry { name, name_len: n as u8, kind: e.kind, size }))
                        }
                        None => Ok(Out::End),
                    },
                    _ => Err(FsError::NotADirectory),
                }
            }
        }
    }
}

/// Spawn the fs task over the block store `blocks`; `key` seals sessions (chosen at boot, kept
/// by the task table across incarnations). Returns the endpoint.
pub fn start(blocks: cell_ramdisk::Ep, key: u64) -> Option<crate::Ep> {
    let ep = crate::Ep::create("fs")?;
    libos_core::spawn("fs", 5, true, move || {
        let (disk, _) = match Disk::mount(Blocks(blocks)) {
            Ok(d) => d,
            Err(e) => panic!("cannot mount the block store: {}", e),
        };
        let server = Server { disk };
        loop {
            let (token, req) = ep.recv();
            let resp = if matches!(req.op, Op::Connect) {
                Response { session: sealed(key, fresh()), result: Ok(Out::Done) }
            } else {
                match check(key, &req.session) {
                    Err(e) => Response { session: sealed(key, fresh()), result: Err(e) },
                    Ok(()) => {
                        let mut st = req.session.state;
                        let result = server.handle(&mut st, &req.op);
                        Response { session: sealed(key, st), result }
                    }
                }
            };
            let _ = ep.reply(token, resp);
        }
    })
    .ok()?;
    Some(ep)
}

const _: () = assert!(MAX_FILES <= 16);
