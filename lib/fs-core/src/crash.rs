//! Crash states, after CrashMonkey (OSDI 2018): given every write and flush a workload made,
//! in order, rebuild the disk as a power cut could have left it and check each state. Used by
//! fs-core's own tests (a workload run on the host) and by `cargo os crashtest` (a workload run
//! in QEMU, the disk recorded by the host tool). Host only (`std`): feature `crash`.
//!
//! ```text
//!  states   at every flush: the flushed disk; and before it, the epoch's writes (those since
//!           the previous flush) as the device's cache may have let them reach the medium:
//!           every in-order prefix, the whole epoch less any one write, and random subsets
//!  check    it mounts (redoing the journal) without formatting or refusing it; fsck finds
//!           nothing at all; the tree under the workload's directory is the model's after some
//!           operation, not before the last one acknowledged by then (durable and whole)
//! ```

extern crate std;

use crate::layout::{Block, BLOCK_SIZE, KIND_DIR, MAX_FILE};
use crate::{fsck, mode, BlockDevice, ClientState, Disk, FsError, Held, Result};
use core::cell::RefCell;
use std::collections::BTreeMap;
use std::format;
use std::string::{String, ToString};
use std::vec::Vec;

/// Random subsets tried per epoch, besides its prefixes and one-less sets.
pub const RANDOM_SUBSETS: usize = 6;

/// What a workload did to its disk, in order. (Nearly every event is a write: boxing the block
/// would only add an allocation to each.)
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Write(u32, Block),
    Flush,
}

/// A tree: each path under the workload's directory, with a file's contents or `None` for a
/// directory.
pub type Tree = BTreeMap<String, Option<Vec<u8>>>;

/// A recorded run: the disk before it, every event, and for each operation the workload saw
/// answered, the number of events by then and the tree as its model has it after it. The
/// first entry is the tree at the start (0 events).
pub struct Recording {
    pub start: Vec<Block>,
    pub log: Vec<Event>,
    pub acked: Vec<(usize, Tree)>,
}

/// Blocks in memory, as a device.
pub struct Image(pub RefCell<Vec<Block>>);

impl BlockDevice for &Image {
    fn blocks(&self) -> Option<u32> {
        Some(self.0.borrow().len() as u32)
    }
    fn read(&self, b: u32, out: &mut Block) -> bool {
        self.0.borrow().get(b as usize).map(|blk| *out = *blk).is_some()
    }
    fn write(&self, b: u32, data: &Block) -> bool {
        self.0.borrow_mut().get_mut(b as usize).map(|blk| *blk = *data).is_some()
    }
}

/// The tree under `root` (a directory) as the file system on `d` holds it.
pub fn tree_of<D: BlockDevice>(d: &Disk<D>, root: &str) -> Result<Tree> {
    let st = ClientState::fresh();
    let mut tree: Tree = BTreeMap::new();
    let mut dirs = std::vec![String::from(root)];
    while let Some(dir) = dirs.pop() {
        tree.insert(dir.clone(), None);
        let mut i = 0;
        while let Some((e, _)) = st.entry(d, &dir, i)? {
            i += 1;
            let name = core::str::from_utf8(e.name()).map_err(|_| FsError::Disk)?;
            let path = format!("{}/{}", dir.trim_end_matches('/'), name);
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

/// Check one crash state: the disk `image` after `at` events of `rec` (see the module
/// comment); the tree compared is the one under `root`. `Err` says what is wrong.
pub fn check(image: Vec<Block>, rec: &Recording, at: usize, root: &str) -> core::result::Result<(), String> {
    let img = Image(RefCell::new(image));
    let (d, formatted) = Disk::mount(&img).map_err(|e| format!("mount: {e}"))?;
    if formatted {
        return Err("mounting formatted the disk".into());
    }
    let r = fsck(&d).map_err(|e| format!("fsck: {e}"))?;
    if !r.is_clean() {
        return Err(format!("fsck: {}", r.problems().map(|p| p.to_string()).collect::<Vec<_>>().join("; ")));
    }
    let tree = tree_of(&d, root).map_err(|e| format!("reading {root}: {e}"))?;
    let k = rec.acked.iter().rposition(|(end, _)| *end <= at).unwrap_or(0);
    if rec.acked[k..].iter().any(|(_, t)| *t == tree) {
        return Ok(());
    }
    // Say where it differs from the last answered operation's tree.
    let expected = &rec.acked[k].1;
    let shown = |v: Option<&Option<Vec<u8>>>| match v {
        None => "absent".to_string(),
        Some(None) => "a directory".to_string(),
        Some(Some(d)) => format!("{} bytes {:?}", d.len(), String::from_utf8_lossy(&d[..d.len().min(40)])),
    };
    let first = expected.keys().chain(tree.keys()).find(|p| expected.get(*p) != tree.get(*p));
    let at = first.map_or(String::new(), |p| {
        format!("; {p}: {} where operation {k} left {}", shown(tree.get(p)), shown(expected.get(p)))
    });
    Err(format!("{root} is not the tree after any operation from the last answered ({k}) on{at}"))
}

/// The outcome of checking every state of a recording.
pub struct Outcome {
    pub states: usize,
    /// Each failed state: after how many events, and why.
    pub failed: Vec<(usize, String)>,
}

/// How many states [`check_all`] will build for `rec`.
pub fn count_states(rec: &Recording) -> usize {
    let mut n = 0;
    let mut epoch = 0usize;
    for ev in &rec.log {
        match ev {
            Event::Write(..) => epoch += 1,
            Event::Flush => {
                n += 2 * epoch + if epoch > 2 { RANDOM_SUBSETS } else { 0 } + 1;
                epoch = 0;
            }
        }
    }
    n
}

/// Build every crash state of `rec` (see the module comment) and check each; `progress` is
/// told after each state.
pub fn check_all(rec: &Recording, seed: u64, root: &str, mut progress: impl FnMut(usize)) -> Outcome {
    let mut rng = algo::rng::Rng(seed);
    let mut durable = rec.start.clone();
    let mut out = Outcome { states: 0, failed: Vec::new() };
    let mut epoch: Vec<(u32, Block)> = Vec::new();
    let mut try_state = |durable: &Vec<Block>, writes: &[&(u32, Block)], at: usize, out: &mut Outcome| {
        let mut image = durable.clone();
        for (b, data) in writes {
            if let Some(blk) = image.get_mut(*b as usize) {
                *blk = *data;
            }
        }
        out.states += 1;
        if let Err(e) = check(image, rec, at, root) {
            out.failed.push((at, e));
        }
        progress(out.states);
    };
    for (i, ev) in rec.log.iter().enumerate() {
        match ev {
            Event::Write(b, data) => epoch.push((*b, *data)),
            Event::Flush => {
                let n = epoch.len();
                let all: Vec<&(u32, Block)> = epoch.iter().collect();
                for p in 0..n {
                    try_state(&durable, &all[..p], i, &mut out);
                }
                for skip in 0..n {
                    let less: Vec<_> =
                        all.iter().enumerate().filter(|(j, _)| *j != skip).map(|(_, w)| *w).collect();
                    try_state(&durable, &less, i, &mut out);
                }
                if n > 2 {
                    for _ in 0..RANDOM_SUBSETS {
                        let bits = rng.next_u64();
                        let some: Vec<_> = all
                            .iter()
                            .enumerate()
                            .filter(|(j, _)| bits >> (j % 64) & 1 == 1)
                            .map(|(_, w)| *w)
                            .collect();
                        try_state(&durable, &some, i, &mut out);
                    }
                }
                for (b, data) in epoch.drain(..) {
                    if let Some(blk) = durable.get_mut(b as usize) {
                        *blk = data;
                    }
                }
                try_state(&durable, &[], i + 1, &mut out);
            }
        }
    }
    out
}

/// The same recording as a build without the flush that makes an operation durable would
/// have made it: each flush that follows the journal header's write is gone. The checker must
/// find states of it that fail (`cargo os crashtest` checks that it does, on every run).
pub fn without_commit_flushes(rec: &Recording) -> Recording {
    let mut log = Vec::with_capacity(rec.log.len());
    let mut after_header = false;
    // `acked` counts events of the original log: map each to the new one's.
    let mut kept_before = Vec::with_capacity(rec.log.len() + 1);
    for ev in &rec.log {
        kept_before.push(log.len());
        match ev {
            Event::Flush if after_header => after_header = false,
            Event::Write(b, _) => {
                after_header = *b == crate::layout::JOURNAL_HEAD;
                log.push(ev.clone());
            }
            Event::Flush => log.push(ev.clone()),
        }
    }
    kept_before.push(log.len());
    let acked = rec.acked.iter().map(|(at, t)| (kept_before[(*at).min(rec.log.len())], t.clone())).collect();
    Recording { start: rec.start.clone(), log, acked }
}

/// Blocks of `bytes` (a raw disk image), for [`Recording::start`].
pub fn blocks_of(bytes: &[u8]) -> Vec<Block> {
    bytes
        .chunks(BLOCK_SIZE)
        .map(|c| {
            let mut b = [0u8; BLOCK_SIZE];
            b[..c.len()].copy_from_slice(c);
            b
        })
        .collect()
}
