//! Long seeded runs of random operations by two sessions on a disk small enough that they keep
//! running out of blocks and of inodes, against a model of the tree (paths to directories and
//! file contents, each session's current directory and open files).
//!
//! After every step: `fsck` finds nothing; a failed operation changed no block of the device
//! (nor the session's offsets); the error is the one the model predicts, or, where the model
//! cannot know (it does not count blocks), `NoSpace` when the free blocks could not have been
//! enough. Every few steps the whole tree is read back and compared with the model.

use super::{disk_of, Ram};
use crate::path::normalize;
use crate::*;
use std::collections::BTreeMap;
use std::string::{String, ToString};
use std::vec::Vec;
use std::{format, vec};

extern crate std;

/// The device: 18 metadata blocks and 46 for data.
const BLOCKS: usize = 64;
/// Inodes the run may use: the rest hold empty files in [`BALLAST`] (a few blocks of entries),
/// made at the start and never touched, so that the inode table is as easily used up as the
/// blocks are.
const HEADROOM: usize = 60;
const BALLAST: &str = "/z";
const STEPS: u32 = 3000;
/// Names paths are made of: few, so operations keep meeting what earlier ones made.
const NAMES: [&str; 12] = ["a", "b", "c", "dd", "e", "f", "g", "h", "i", "j", "k", "long-name"];
/// Deepest path made (so paths stay far below `PATH_MAX`).
const DEPTH: usize = 3;

/// splitmix64: small, seeded, the same on every host.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[derive(Clone, PartialEq, Debug)]
enum Node {
    Dir,
    File(Vec<u8>),
}

/// An open file as the model sees it. The rule keeps an open file from being removed by
/// anyone, so its path names it for as long as it is open.
struct Open {
    fd: u32,
    path: String,
    mode: u8,
    offset: usize,
}

struct Client {
    st: ClientState,
    cwd: String,
    open: Vec<Open>,
}

/// What the run met, to show it met what it is meant to.
#[derive(Default, Debug)]
struct Tally {
    ok: u32,
    expected_errors: u32,
    no_space: u32,
    no_inodes: u32,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Data,
    Names,
    Shrink,
}

impl Phase {
    /// Of every 1000 steps: 400 filling with data, 100 shrinking, 400 filling with names,
    /// 100 shrinking.
    fn at(step: u32) -> Phase {
        match step % 1000 / 100 {
            0..=3 => Phase::Data,
            5..=8 => Phase::Names,
            _ => Phase::Shrink,
        }
    }
}

struct World {
    d: Disk<Ram>,
    phase: Phase,
    tree: BTreeMap<String, Node>,
    clients: [Client; 2],
    rng: Rng,
    tally: Tally,
    step: u32,
}

fn join(dir: &str, name: &str) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

fn parent_of(p: &str) -> &str {
    match p.rfind('/') {
        Some(0) => "/",
        Some(i) => &p[..i],
        None => "/",
    }
}

fn depth(p: &str) -> usize {
    p.split('/').filter(|c| !c.is_empty()).count()
}

/// Is `p` the directory `dir` or below it?
fn within(p: &str, dir: &str) -> bool {
    dir == "/" || p == dir || p.starts_with(&format!("{dir}/"))
}

/// What the model expects of an operation: success (perhaps impossible for want of blocks,
/// with at most `blocks` needed), or one error.
enum Expect {
    Ok { blocks: usize },
    Err(FsError),
}

impl World {
    fn new(seed: u64) -> World {
        let client = || Client { st: ClientState::fresh(), cwd: "/".to_string(), open: Vec::new() };
        let mut w = World {
            d: disk_of(BLOCKS),
            phase: Phase::Data,
            tree: BTreeMap::from([("/".to_string(), Node::Dir)]),
            clients: [client(), client()],
            rng: Rng(seed),
            tally: Tally::default(),
            step: 0,
        };
        let st = ClientState::fresh();
        st.mkdir(&w.d, BALLAST).unwrap();
        w.tree.insert(BALLAST.to_string(), Node::Dir);
        while w.live() < INODES as usize - 2 - HEADROOM {
            let p = join(BALLAST, &w.live().to_string());
            st.put(&w.d, &p, b"", false, Held::unseen).unwrap();
            w.tree.insert(p, Node::File(Vec::new()));
        }
        w
    }

    fn abs(&self, c: usize, path: &str) -> String {
        let mut out = [0u8; PATH_MAX];
        let n = normalize(&self.clients[c].cwd, path, &mut out).expect("the run makes valid paths only");
        String::from_utf8(out[..n].to_vec()).unwrap()
    }

    /// The kind at `p`, or the error a walk to it meets.
    fn resolve(&self, p: &str) -> Result<u8> {
        let mut cur = "/".to_string();
        for comp in p.split('/').filter(|c| !c.is_empty()) {
            if matches!(self.tree.get(&cur), Some(Node::File(_))) {
                return Err(FsError::NotADirectory);
            }
            cur = join(&cur, comp);
            if !self.tree.contains_key(&cur) {
                return Err(FsError::NotFound);
            }
        }
        Ok(if matches!(self.tree[&cur], Node::Dir) { KIND_DIR } else { KIND_FILE })
    }

    /// The walk to the directory that would hold `p`.
    fn parent(&self, p: &str) -> Result<()> {
        if p == "/" {
            return Err(FsError::BadPath);
        }
        match self.resolve(parent_of(p))? {
            KIND_DIR => Ok(()),
            _ => Err(FsError::NotADirectory),
        }
    }

    fn live(&self) -> usize {
        self.tree.len() - 1
    }

    /// Making a new inode: possible, or `NoInodes` (inode 0 is never used, the root has 1).
    fn new_inode(&self, blocks: usize) -> Expect {
        if self.live() == INODES as usize - 2 {
            Expect::Err(FsError::NoInodes)
        } else {
            Expect::Ok { blocks }
        }
    }

    /// What the other session holds of `p`.
    fn others(&self, c: usize, p: &str) -> Held {
        let other = &self.clients[1 - c];
        let mut h = Held { cwd: within(&other.cwd, p), ..Held::default() };
        for o in other.open.iter().filter(|o| o.path == p) {
            h.open = true;
            h.writing |= o.mode & (mode::WRITE | mode::APPEND) != 0;
        }
        h
    }

    fn own(&self, c: usize, p: &str) -> Held {
        let me = &self.clients[c];
        Held { open: me.open.iter().any(|o| o.path == p), writing: false, cwd: within(&me.cwd, p) }
    }

    /// A path to work on: with `new`, mostly a name in a directory that exists (often free),
    /// else mostly one that exists; relative to the current directory where it can be.
    fn pick(&mut self, c: usize, new: bool) -> String {
        let dirs = new && !self.rng.chance(5);
        let nodes: Vec<&String> = self
            .tree
            .iter()
            .filter(|(k, n)| !within(k, BALLAST) && (!dirs || (**n == Node::Dir && depth(k) < DEPTH)))
            .map(|(k, _)| k)
            .collect();
        let mut p = nodes[self.rng.below(nodes.len())].clone();
        if (dirs || self.rng.chance(20)) && depth(&p) < DEPTH {
            // Shallow names far more often than deep ones: many directories cost many blocks.
            let names = if depth(&p) == 0 || self.rng.chance(30) { NAMES.len() } else { 3 };
            p = join(&p, NAMES[self.rng.below(names)]);
        }
        let cwd = &self.clients[c].cwd;
        if self.rng.chance(40) && cwd != "/" && p.starts_with(&format!("{cwd}/")) {
            return p[cwd.len() + 1..].to_string();
        }
        if self.rng.chance(10) && cwd != "/" {
            return format!("{}{}", "../".repeat(depth(cwd)), &p[1..]); // up to the root, then down
        }
        p
    }

    /// One of session `c`'s descriptors, or now and then one that is not open.
    fn pick_fd(&mut self, c: usize) -> Option<usize> {
        let open = self.clients[c].open.len();
        (open > 0 && !self.rng.chance(5)).then(|| self.rng.below(open))
    }

    /// Check an operation's result against the model's expectation and the disk before it.
    fn judge<T: core::fmt::Debug>(
        &mut self,
        what: &str,
        expect: Expect,
        got: &Result<T>,
        before: &[Block],
        free: u32,
    ) {
        let ctx = format!("step {} ({what}): got {got:?}", self.step);
        match (expect, got) {
            (Expect::Ok { .. }, Ok(_)) => self.tally.ok += 1,
            (Expect::Ok { blocks }, Err(FsError::NoSpace)) => {
                assert!((free as usize) < blocks, "{ctx}, with {free} blocks free for at most {blocks}");
                self.tally.no_space += 1;
            }
            (Expect::Err(e), Err(g)) if e == *g => {
                if e == FsError::NoInodes {
                    self.tally.no_inodes += 1;
                } else {
                    self.tally.expected_errors += 1;
                }
            }
            (Expect::Err(e), _) => panic!("{ctx}, expected {e:?}"),
            (Expect::Ok { .. }, Err(_)) => panic!("{ctx}, expected success"),
        }
        if got.is_err() {
            assert!(self.d.dev().snapshot() == before, "{ctx}: the failed operation changed the disk");
        }
    }

    fn step(&mut self) {
        self.step += 1;
        let c = self.rng.below(2);
        let before = self.d.dev().snapshot();
        let report = fsck(&self.d).unwrap();
        let free = report.blocks_total - report.blocks;
        // Phases, so that the disk fills with data, empties, fills with names (empty files and
        // directories, using up the inodes before the blocks) and empties again.
        let phase = Phase::at(self.step);
        self.phase = phase;
        let weights: [usize; 9] = match phase {
            Phase::Data => [8, 14, 18, 8, 18, 4, 6, 12, 4],
            Phase::Names => [14, 18, 2, 6, 30, 2, 4, 20, 4],
            Phase::Shrink => [2, 6, 4, 8, 20, 30, 6, 24, 4],
        };
        let mut pick = self.rng.below(weights.iter().sum());
        let mut op = 0;
        while pick >= weights[op] {
            pick -= weights[op];
            op += 1;
        }
        match op {
            0 => self.mkdir(c, &before, free),
            1 => self.open(c, &before, free),
            2 => self.write(c, &before, free),
            3 => self.read(c),
            4 => self.put(c, &before, free),
            5 => self.remove(c, &before, free),
            6 => self.chdir(c, &before, free),
            7 => self.close(c),
            _ => self.stat(c),
        }
        let r = fsck(&self.d).unwrap();
        assert!(r.is_clean(), "step {}: fsck: {:?}", self.step, r.problems().collect::<Vec<_>>());
        assert_eq!(r.inodes as usize, self.live() + 1, "step {}: inodes in use", self.step);
        for cl in &mut self.clients {
            for o in &cl.open {
                assert_eq!(cl.st.tell(o.fd).unwrap(), (o.offset as u32, o.mode), "step {}", self.step);
            }
        }
        if self.step.is_multiple_of(100) {
            self.compare_tree();
        }
    }

    fn mkdir(&mut self, c: usize, before: &[Block], free: u32) {
        let path = self.pick(c, true);
        let p = self.abs(c, &path);
        let expect = match self.parent(&p) {
            Err(e) => Expect::Err(e),
            Ok(()) if self.tree.contains_key(&p) => Expect::Err(FsError::Exists),
            Ok(()) => self.new_inode(2),
        };
        let got = self.clients[c].st.mkdir(&self.d, &path);
        self.judge(&format!("mkdir {path}"), expect, &got, before, free);
        if got.is_ok() {
            self.tree.insert(p, Node::Dir);
        }
    }

    fn open(&mut self, c: usize, before: &[Block], free: u32) {
        use mode::*;
        const MODES: [u8; 9] = [
            READ,
            WRITE,
            READ | WRITE,
            APPEND,
            WRITE | TRUNCATE,
            READ | WRITE | CREATE,
            WRITE | CREATE | TRUNCATE,
            APPEND | CREATE,
            READ | CREATE,
        ];
        let m = MODES[self.rng.below(MODES.len())];
        let path = self.pick(c, m & CREATE != 0);
        let p = self.abs(c, &path);
        let expect = if self.clients[c].open.len() == MAX_FILES {
            Expect::Err(FsError::TooManyOpen)
        } else {
            match self.resolve(&p) {
                Ok(KIND_DIR) => Expect::Err(FsError::IsADirectory),
                Ok(_) if m & (WRITE | APPEND | TRUNCATE) != 0 && refuses(self.others(c, &p), m) => {
                    Expect::Err(FsError::InUse)
                }
                Ok(_) => Expect::Ok { blocks: 0 },
                Err(FsError::NotFound) if m & CREATE != 0 => match self.parent(&p) {
                    Err(e) => Expect::Err(e),
                    Ok(()) => self.new_inode(2),
                },
                Err(e) => Expect::Err(e),
            }
        };
        let others = self.clients[1 - c].st;
        let got = self.clients[c].st.open(&self.d, &path, m, |i, q| others.held(i, q));
        self.judge(&format!("open {path} {m:#x}"), expect, &got, before, free);
        if let Ok(fd) = got {
            let node = self.tree.entry(p.clone()).or_insert(Node::File(Vec::new()));
            if let (Node::File(data), true) = (node, m & TRUNCATE != 0) {
                data.clear();
            }
            self.clients[c].open.push(Open { fd, path: p, mode: m, offset: 0 });
        }
    }

    fn write(&mut self, c: usize, before: &[Block], free: u32) {
        let Some(i) = self.pick_fd(c) else { return self.bad_fd(c) };
        let (fd, path, m) = {
            let o = &self.clients[c].open[i];
            (o.fd, o.path.clone(), o.mode)
        };
        let size = self.file(&path).len();
        let offset = match self.rng.below(20) {
            0 => MAX_FILE as usize - self.rng.below(2 * BLOCK_SIZE),
            1..=8 => self.rng.below(size + BLOCK_SIZE),
            _ => self.clients[c].open[i].offset,
        };
        // At most what one operation writes whole (the protocols' largest write): a longer one
        // is cut into such operations, and one that fails part-way leaves the pieces before.
        let len = if self.rng.chance(30) {
            self.rng.below(crate::WRITE_ATOMIC + 1)
        } else {
            self.rng.below(3 * BLOCK_SIZE)
        };
        let data = self.rng.bytes(len);
        self.clients[c].st.seek(fd, offset as u32).unwrap();
        self.clients[c].open[i].offset = offset;
        let at = if m & mode::APPEND != 0 { size } else { offset };
        let expect = if m & (mode::WRITE | mode::APPEND) == 0 {
            Expect::Err(FsError::BadMode)
        } else if at + len > MAX_FILE as usize {
            Expect::Err(FsError::FileTooLarge)
        } else {
            Expect::Ok { blocks: len.div_ceil(BLOCK_SIZE) + 2 }
        };
        let got = self.clients[c].st.write(&self.d, fd, &data);
        self.judge(&format!("write {path} {len} at {at}"), expect, &got, before, free);
        if got.is_ok() {
            let Some(Node::File(content)) = self.tree.get_mut(&path) else { unreachable!() };
            if len > 0 && content.len() < at + len {
                content.resize(at + len, 0);
            }
            content[at..at + len].copy_from_slice(&data);
            self.clients[c].open[i].offset = at + len;
        }
    }

    fn read(&mut self, c: usize) {
        let Some(i) = self.pick_fd(c) else { return self.bad_fd(c) };
        let o = &self.clients[c].open[i];
        let (fd, path, m, offset) = (o.fd, o.path.clone(), o.mode, o.offset);
        let mut out = vec![0u8; self.rng.below(2 * BLOCK_SIZE)];
        let got = self.clients[c].st.read(&self.d, fd, &mut out);
        if m & mode::READ == 0 {
            assert_eq!(got, Err(FsError::BadMode), "step {}", self.step);
            return;
        }
        let content = self.file(&path);
        let n = got.unwrap_or_else(|e| panic!("step {}: read {path}: {e:?}", self.step));
        let lo = offset.min(content.len());
        let hi = (offset + out.len()).min(content.len()).max(lo);
        assert_eq!(&out[..n], &content[lo..hi], "step {}: read {path} at {offset}", self.step);
        self.clients[c].open[i].offset += n;
        self.tally.ok += 1;
    }

    fn put(&mut self, c: usize, before: &[Block], free: u32) {
        let new = match self.phase {
            Phase::Data => self.rng.chance(70),
            Phase::Names => self.rng.chance(95),
            Phase::Shrink => false,
        };
        let path = self.pick(c, new);
        let p = self.abs(c, &path);
        let append = self.rng.chance(30);
        // Empty files often: they take an inode and no block.
        let empty = if self.phase == Phase::Data { 40 } else { 90 };
        let len = if self.rng.chance(empty) { 0 } else { self.rng.below(2 * BLOCK_SIZE) };
        let data = self.rng.bytes(len);
        let m = if append { mode::WRITE | mode::APPEND } else { mode::WRITE | mode::TRUNCATE };
        let need = len.div_ceil(BLOCK_SIZE) + 2;
        let expect = match self.resolve(&p) {
            Ok(KIND_DIR) => Expect::Err(FsError::IsADirectory),
            Ok(_) if refuses(self.others(c, &p), m) => Expect::Err(FsError::InUse),
            Ok(_) if append && self.file(&p).len() + len > MAX_FILE as usize => {
                Expect::Err(FsError::FileTooLarge)
            }
            Ok(_) => Expect::Ok { blocks: need },
            Err(FsError::NotFound) => match self.parent(&p) {
                Err(e) => Expect::Err(e),
                Ok(()) => self.new_inode(need + 2),
            },
            Err(e) => Expect::Err(e),
        };
        let others = self.clients[1 - c].st;
        let got = self.clients[c].st.put(&self.d, &path, &data, append, |i, q| others.held(i, q));
        self.judge(&format!("put {path} {len} append={append}"), expect, &got, before, free);
        if got.is_ok() {
            let Node::File(content) = self.tree.entry(p).or_insert(Node::File(Vec::new())) else {
                unreachable!()
            };
            if !append {
                content.clear();
            }
            content.extend_from_slice(&data);
        }
    }

    fn remove(&mut self, c: usize, before: &[Block], free: u32) {
        // Shrinking, mostly files (data first of all): directories go once they are empty.
        let files: Vec<String> = self
            .tree
            .iter()
            .filter(|(k, n)| matches!(n, Node::File(_)) && !within(k, BALLAST))
            .map(|(k, _)| k.clone())
            .collect();
        let path = if self.phase == Phase::Shrink && !files.is_empty() && self.rng.chance(70) {
            files[self.rng.below(files.len())].clone()
        } else {
            self.pick(c, false)
        };
        let p = self.abs(c, &path);
        let held = self.own(c, &p).or(self.others(c, &p));
        let expect = match self.parent(&p) {
            Err(e) => Expect::Err(e),
            Ok(()) => match self.tree.get(&p) {
                None => Expect::Err(FsError::NotFound),
                Some(Node::Dir) if self.tree.keys().any(|k| k != &p && within(k, &p)) => {
                    Expect::Err(FsError::NotEmpty)
                }
                Some(Node::Dir) if held.cwd => Expect::Err(FsError::CurrentDirectory),
                Some(Node::File(_)) if held.open => Expect::Err(FsError::InUse),
                Some(_) => Expect::Ok { blocks: 0 },
            },
        };
        let others = self.clients[1 - c].st;
        let got = self.clients[c].st.remove(&self.d, &path, |i, q| others.held(i, q));
        self.judge(&format!("rm {path}"), expect, &got, before, free);
        if got.is_ok() {
            self.tree.remove(&p);
        }
    }

    fn chdir(&mut self, c: usize, before: &[Block], free: u32) {
        let path = self.pick(c, false);
        let p = self.abs(c, &path);
        let expect = match self.resolve(&p) {
            Ok(KIND_DIR) => Expect::Ok { blocks: 0 },
            Ok(_) => Expect::Err(FsError::NotADirectory),
            Err(e) => Expect::Err(e),
        };
        let got = self.clients[c].st.chdir(&self.d, &path);
        self.judge(&format!("cd {path}"), expect, &got, before, free);
        if got.is_ok() {
            self.clients[c].cwd = p;
        }
    }

    fn close(&mut self, c: usize) {
        let Some(i) = self.pick_fd(c) else { return self.bad_fd(c) };
        let o = self.clients[c].open.remove(i);
        self.clients[c].st.close(o.fd).unwrap();
        self.tally.ok += 1;
    }

    fn stat(&mut self, c: usize) {
        let path = self.pick(c, false);
        let p = self.abs(c, &path);
        let got = self.clients[c].st.stat(&self.d, &path);
        match (self.resolve(&p), got) {
            (Ok(KIND_FILE), Ok((KIND_FILE, size))) => assert_eq!(size as usize, self.file(&p).len()),
            (Ok(KIND_DIR), Ok((KIND_DIR, _))) => {}
            (Err(e), Err(g)) => assert_eq!(e, g),
            (want, got) => panic!("step {}: stat {path}: {got:?}, expected {want:?}", self.step),
        }
    }

    /// A descriptor no file is open under.
    fn bad_fd(&mut self, c: usize) {
        let fd =
            (0..MAX_FILES as u32 + 1).find(|fd| self.clients[c].open.iter().all(|o| o.fd != *fd)).unwrap();
        assert_eq!(self.clients[c].st.close(fd), Err(FsError::BadFd));
        let mut out = [0u8; 4];
        assert_eq!(self.clients[c].st.read(&self.d, fd, &mut out), Err(FsError::BadFd));
        assert_eq!(self.clients[c].st.write(&self.d, fd, b"x"), Err(FsError::BadFd));
    }

    fn file(&self, p: &str) -> &[u8] {
        match self.tree.get(p) {
            Some(Node::File(data)) => data,
            other => panic!("step {}: {p} is {other:?}, not a file", self.step),
        }
    }

    /// Read the whole tree back through a third session and compare it with the model.
    fn compare_tree(&self) {
        let mut st = ClientState::fresh();
        for (p, node) in &self.tree {
            match node {
                Node::Dir => {
                    let mut listed = Vec::new();
                    while let Some((e, size)) = st.entry(&self.d, p, listed.len() as u32).unwrap() {
                        listed.push((join(p, core::str::from_utf8(e.name()).unwrap()), e.kind, size));
                    }
                    listed.sort();
                    let mut expected: Vec<(String, u8, u32)> = self
                        .tree
                        .iter()
                        .filter(|(k, _)| *k != "/" && parent_of(k) == p)
                        .map(|(k, n)| match n {
                            Node::Dir => (k.clone(), KIND_DIR, 0),
                            Node::File(d) => (k.clone(), KIND_FILE, d.len() as u32),
                        })
                        .collect();
                    for (e, l) in expected.iter_mut().zip(&listed) {
                        if e.1 == KIND_DIR {
                            e.2 = l.2; // a directory's size is its entry slots: not modelled
                        }
                    }
                    assert_eq!(listed, expected, "step {}: ls {p}", self.step);
                }
                Node::File(data) => {
                    let fd = st.open(&self.d, p, mode::READ, Held::unseen).unwrap();
                    let mut back = vec![0u8; data.len() + 1];
                    assert_eq!(
                        st.read(&self.d, fd, &mut back).unwrap(),
                        data.len(),
                        "step {}: {p}",
                        self.step
                    );
                    assert!(back[..data.len()] == data[..], "step {}: {p} differs", self.step);
                    st.close(fd).unwrap();
                }
            }
        }
    }
}

/// The rule, as the model states it: truncating takes from anyone who has the file open;
/// writing, from anyone who writes it.
fn refuses(h: Held, m: u8) -> bool {
    (m & mode::TRUNCATE != 0 && h.open) || (m & (mode::WRITE | mode::APPEND) != 0 && h.writing)
}

#[test]
fn random_operations_agree_with_the_model_and_fail_without_a_trace() {
    for seed in 1..=3 {
        let mut w = World::new(seed);
        for _ in 0..STEPS {
            w.step();
        }
        w.compare_tree();
        let t = &w.tally;
        // The run met what it is for: full disks, a full inode table, and plenty of both
        // successes and predicted errors.
        std::eprintln!("seed {seed}: {t:?}");
        assert!(t.no_space > 20 && t.no_inodes > 20, "seed {seed}: {t:?}");
        assert!(t.ok > STEPS / 3 && t.expected_errors > STEPS / 10, "seed {seed}: {t:?}");
    }
}
