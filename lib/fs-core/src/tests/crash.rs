//! Crash states, after CrashMonkey (OSDI 2018): record every write and flush a seeded workload
//! makes, then rebuild the disk as a power cut could leave it — every flush boundary, and
//! within each epoch between two flushes the writes that reached the medium in any order the
//! device's cache chose — and check each one: it mounts (redoing the journal), `fsck` finds
//! nothing, and the tree is the model's after the last acknowledged operation, or after the
//! one in flight (atomicity: nothing in between).
//!
//! Within an epoch of n writes the states are: every in-order prefix, the whole epoch less any
//! one write, and `RANDOM_SUBSETS` random subsets (all 2^n are too many for the journal's
//! epochs of up to 15 writes).

extern crate std;

use super::Ram;
use crate::journal::Durability;
use crate::layout::*;
use crate::*;
use std::collections::BTreeMap;
use std::format;
use std::string::{String, ToString};
use std::vec::Vec;

const RANDOM_SUBSETS: usize = 6;
const BLOCKS: usize = 192;

// Nearly every step is a write: boxing the block would only add an allocation to each.
#[allow(clippy::large_enum_variant)]
enum Event {
    Write(u32, Block),
    Flush,
}

/// A RAM disk that records what is done to it.
struct Recorder {
    ram: Ram,
    log: core::cell::RefCell<Vec<Event>>,
}

impl BlockDevice for &Recorder {
    fn blocks(&self) -> Option<u32> {
        self.ram.blocks()
    }
    fn read(&self, b: u32, out: &mut Block) -> bool {
        self.ram.read(b, out)
    }
    fn write(&self, b: u32, data: &Block) -> bool {
        self.log.borrow_mut().push(Event::Write(b, *data));
        self.ram.write(b, data)
    }
    fn flush(&self) -> bool {
        self.log.borrow_mut().push(Event::Flush);
        true
    }
}

/// What the tree holds: files' contents and directories, by path.
type Tree = BTreeMap<String, Option<Vec<u8>>>;

/// xorshift: the workload is the same for a seed everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The workload's run: the image it started from, the log, and after each operation that
/// succeeded the log's length then and the tree as the model has it.
struct Run {
    start: Vec<Block>,
    log: Vec<Event>,
    acked: Vec<(usize, Tree)>,
}

fn run(seed: u64, ops: usize, durability: Durability) -> Run {
    let rec = Recorder { ram: Ram::new(BLOCKS), log: Default::default() };
    let (d, _) = Disk::mount(&rec).unwrap();
    d.set_durability(durability);
    let start = rec.ram.snapshot();
    rec.log.borrow_mut().clear();
    let mut tree: Tree = BTreeMap::new();
    tree.insert("/".into(), None);
    let mut acked = std::vec![(0, tree.clone())];
    let mut rng = Rng(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1);
    let mut st = ClientState::fresh();
    let names = ["a", "b", "c", "d"];
    for op in 0..ops {
        let dirs: Vec<String> = tree.iter().filter(|(_, v)| v.is_none()).map(|(k, _)| k.clone()).collect();
        let files: Vec<String> = tree.iter().filter(|(_, v)| v.is_some()).map(|(k, _)| k.clone()).collect();
        let dir = &dirs[rng.below(dirs.len())];
        let fresh = format!("{}{}{}", if dir == "/" { "" } else { dir }, "/", names[rng.below(names.len())]);
        let bytes = |rng: &mut Rng, n: usize| -> Vec<u8> {
            (0..n).map(|i| (rng.next() as u8) ^ (op + i) as u8).collect()
        };
        let done = match rng.below(6) {
            0 if !tree.contains_key(&fresh) => {
                st.mkdir(&d, &fresh).map(|()| tree.insert(fresh.clone(), None)).is_ok()
            }
            1 | 2 if !tree.get(&fresh).is_some_and(Option::is_none) => {
                // Create or replace, or append: up to 2 KiB, one operation.
                let append = rng.below(2) == 0;
                let n = rng.below(WRITE_ATOMIC) + 1;
                let data = bytes(&mut rng, n);
                let ok = st.put(&d, &fresh, &data, append, Held::unseen).is_ok();
                if ok {
                    let old = tree.get(&fresh).cloned().flatten().filter(|_| append).unwrap_or_default();
                    tree.insert(fresh.clone(), Some([old, data].concat()));
                }
                ok
            }
            3 if !files.is_empty() => {
                // Overwrite inside (or past the end of) a file.
                let path = &files[rng.below(files.len())];
                let old = tree[path].clone().unwrap_or_default();
                let at = rng.below(old.len() + 600);
                let n = rng.below(1500) + 1;
                let data = bytes(&mut rng, n);
                let fd = st.open(&d, path, mode::WRITE, Held::unseen).unwrap();
                st.seek(fd, at as u32).unwrap();
                let ok = st.write(&d, fd, &data).is_ok();
                st.close(fd).unwrap();
                if ok {
                    let mut new = old;
                    if new.len() < at + data.len() {
                        new.resize(at + data.len(), 0);
                    }
                    new[at..at + data.len()].copy_from_slice(&data);
                    tree.insert(path.clone(), Some(new));
                }
                ok
            }
            4 if !files.is_empty() => {
                let path = files[rng.below(files.len())].clone();
                st.remove(&d, &path, Held::unseen).map(|()| tree.remove(&path)).is_ok()
            }
            5 if !files.is_empty() => {
                let path = files[rng.below(files.len())].clone();
                let fd = st.open(&d, &path, mode::WRITE | mode::TRUNCATE, Held::unseen);
                fd.map(|fd| {
                    st.close(fd).unwrap();
                    tree.insert(path, Some(Vec::new()));
                })
                .is_ok()
            }
            _ => false,
        };
        if done {
            acked.push((rec.log.borrow().len(), tree.clone()));
        }
    }
    Run { start, log: rec.log.into_inner(), acked }
}

/// The tree a disk holds, read through the file system.
fn tree_of(d: &Disk<&Ram>) -> Result<Tree> {
    let st = ClientState::fresh();
    let mut tree: Tree = BTreeMap::new();
    let mut dirs = std::vec![String::from("/")];
    while let Some(dir) = dirs.pop() {
        tree.insert(dir.clone(), None);
        let mut i = 0;
        while let Some((e, _)) = st.entry(d, &dir, i)? {
            i += 1;
            let name = core::str::from_utf8(e.name()).map_err(|_| FsError::Disk)?;
            let path = format!("{}/{}", if dir == "/" { "" } else { &dir }, name);
            if e.kind == KIND_DIR {
                dirs.push(path);
            } else {
                let mut st = ClientState::fresh();
                let fd = st.open(d, &path, mode::READ, Held::unseen)?;
                let mut data = std::vec![0u8; MAX_FILE as usize];
                let n = st.read(d, fd, &mut data)?;
                data.truncate(n);
                tree.insert(path, Some(data));
            }
        }
    }
    Ok(tree)
}

/// Check the disk `image` as a crash left it, after `at` events of which the last acknowledged
/// operation is `acked[k]`. `Err` says what is wrong.
fn check(image: Vec<Block>, acked: &[(usize, Tree)], at: usize) -> core::result::Result<(), String> {
    let ram = Ram::holding(image);
    let (d, formatted) = Disk::mount(&ram).map_err(|e| format!("mount: {e:?}"))?;
    if formatted {
        return Err("mount formatted the disk".into());
    }
    let r = fsck(&d).map_err(|e| format!("fsck: {e:?}"))?;
    if !r.is_clean() {
        return Err(format!("fsck: {:?}", r.problems().map(|p| p.to_string()).collect::<Vec<_>>()));
    }
    let tree = tree_of(&d).map_err(|e| format!("reading the tree: {e:?}"))?;
    let k = acked.iter().rposition(|(end, _)| *end <= at).unwrap_or(0);
    let fits = |j: usize| acked.get(j).is_some_and(|(_, t)| *t == tree);
    if fits(k) || fits(k + 1) {
        Ok(())
    } else {
        Err(format!("the tree is neither operation {k}'s nor the next one's"))
    }
}

struct Outcome {
    states: usize,
    failed: Vec<String>,
}

/// Build every crash state of `run` (see the module comment) and check each.
fn crash_states(run: &Run, seed: u64) -> Outcome {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut durable = run.start.clone();
    let mut out = Outcome { states: 0, failed: Vec::new() };
    let mut epoch: Vec<(usize, u32, Block)> = Vec::new();
    let try_state = |durable: &Vec<Block>, writes: &[&(usize, u32, Block)], at: usize, out: &mut Outcome| {
        let mut image = durable.clone();
        for (_, b, data) in writes {
            image[*b as usize] = *data;
        }
        out.states += 1;
        if let Err(e) = check(image, &run.acked, at) {
            if out.failed.len() < 5 {
                out.failed.push(format!("after event {at}: {e}"));
            } else {
                out.failed.push(String::new());
            }
        }
    };
    for (i, ev) in run.log.iter().enumerate() {
        match ev {
            Event::Write(b, data) => epoch.push((i, *b, *data)),
            Event::Flush => {
                let n = epoch.len();
                // The cut came before this flush: the epoch's writes, reordered.
                let all: Vec<&(usize, u32, Block)> = epoch.iter().collect();
                for p in 0..n {
                    try_state(&durable, &all[..p], i, &mut out);
                }
                for skip in 0..n {
                    let less: Vec<_> =
                        all.iter().enumerate().filter(|(j, _)| *j != skip).map(|(_, w)| *w).collect();
                    try_state(&durable, &less, i, &mut out);
                }
                for _ in 0..RANDOM_SUBSETS.min(if n > 2 { RANDOM_SUBSETS } else { 0 }) {
                    let some: Vec<_> = all.iter().filter(|_| rng.below(2) == 0).copied().collect();
                    try_state(&durable, &some, i, &mut out);
                }
                for (_, b, data) in epoch.drain(..) {
                    durable[b as usize] = data;
                }
                // The flush boundary itself.
                try_state(&durable, &[], i + 1, &mut out);
            }
        }
    }
    out
}

#[test]
fn every_crash_state_of_a_journalled_workload_mounts_clean_with_whole_operations() {
    for seed in [1, 2, 3] {
        let run = run(seed, 100, Durability::Journal);
        assert!(
            run.acked.len() > 50,
            "seed {seed}: the workload did things ({} operations)",
            run.acked.len()
        );
        let out = crash_states(&run, seed);
        std::eprintln!(
            "seed {seed}: {} operations, {} events, {} crash states",
            run.acked.len() - 1,
            run.log.len(),
            out.states
        );
        assert!(
            out.failed.is_empty(),
            "seed {seed}: {} of {} crash states fail: {:?}",
            out.failed.len(),
            out.states,
            &out.failed[..out.failed.len().min(5)]
        );
    }
}

/// The checker finds breakage: without the flush that makes an operation durable before its
/// blocks go home, and with the file system as it was before the journal (careful write
/// order, no journal), crash states fail.
#[test]
fn the_crash_states_catch_a_missing_commit_flush_and_the_file_system_before_the_journal() {
    for durability in [Durability::NoCommitFlush, Durability::InPlace] {
        let run = run(1, 60, durability);
        let out = crash_states(&run, 1);
        std::eprintln!("{durability:?}: {} of {} crash states fail", out.failed.len(), out.states);
        assert!(!out.failed.is_empty(), "{durability:?}: all {} crash states passed", out.states);
    }
}
