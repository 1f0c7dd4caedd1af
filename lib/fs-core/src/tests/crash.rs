//! Crash states of workloads run on the host (see `crate::crash`): a seeded workload over a
//! RAM disk that records every write and flush, then every crash state checked.

extern crate std;

use super::Ram;
use crate::crash::{check_all, Event, Recording, Tree};

/// A number in `0..n`.
fn below(rng: &mut algo::rng::Rng, n: usize) -> usize {
    rng.below(n as u64) as usize
}
use crate::journal::Durability;
use crate::layout::*;
use crate::*;
use std::collections::BTreeMap;
use std::format;
use std::string::String;
use std::vec::Vec;

const BLOCKS: usize = 192;

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

/// The workload: mkdir, create or replace or append (up to 2 KiB), overwrite, remove,
/// truncate, on random paths under the root.
fn run(seed: u64, ops: usize, durability: Durability) -> Recording {
    let rec = Recorder { ram: Ram::new(BLOCKS), log: Default::default() };
    let (d, _) = Disk::mount(&rec).unwrap();
    d.set_durability(durability);
    let start = rec.ram.snapshot();
    rec.log.borrow_mut().clear();
    let mut tree: Tree = BTreeMap::new();
    tree.insert("/".into(), None);
    let mut acked = std::vec![(0, tree.clone())];
    let mut rng = algo::rng::Rng(seed);
    let mut st = ClientState::fresh();
    let names = ["a", "b", "c", "d"];
    for op in 0..ops {
        let dirs: Vec<String> = tree.iter().filter(|(_, v)| v.is_none()).map(|(k, _)| k.clone()).collect();
        let files: Vec<String> = tree.iter().filter(|(_, v)| v.is_some()).map(|(k, _)| k.clone()).collect();
        let dir = &dirs[below(&mut rng, dirs.len())];
        let fresh =
            format!("{}{}{}", if dir == "/" { "" } else { dir }, "/", names[below(&mut rng, names.len())]);
        let bytes = |rng: &mut algo::rng::Rng, n: usize| -> Vec<u8> {
            (0..n).map(|i| (rng.next_u64() as u8) ^ (op + i) as u8).collect()
        };
        let done = match below(&mut rng, 6) {
            0 if !tree.contains_key(&fresh) => {
                st.mkdir(&d, &fresh).map(|()| tree.insert(fresh.clone(), None)).is_ok()
            }
            1 | 2 if !tree.get(&fresh).is_some_and(Option::is_none) => {
                // Create or replace, or append: up to 2 KiB, one operation.
                let append = below(&mut rng, 2) == 0;
                let n = below(&mut rng, WRITE_ATOMIC) + 1;
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
                let path = &files[below(&mut rng, files.len())];
                let old = tree[path].clone().unwrap_or_default();
                let at = below(&mut rng, old.len() + 600);
                let n = below(&mut rng, 1500) + 1;
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
                let path = files[below(&mut rng, files.len())].clone();
                st.remove(&d, &path, Held::unseen).map(|()| tree.remove(&path)).is_ok()
            }
            5 if !files.is_empty() => {
                let path = files[below(&mut rng, files.len())].clone();
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
    Recording { start, log: rec.log.into_inner(), acked }
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
        let out = check_all(&run, seed, "/", |_| {});
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
        let out = check_all(&run, 1, "/", |_| {});
        std::eprintln!("{durability:?}: {} of {} crash states fail", out.failed.len(), out.states);
        assert!(!out.failed.is_empty(), "{durability:?}: all {} crash states passed", out.states);
    }
}
