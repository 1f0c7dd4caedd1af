//! `cargo os crashtest`: power cuts at every instant of a real run, checked.
//!
//! ```text
//!  host: an empty file system with /w (fs-core) ─► NBD server (records writes, flushes)
//!  QEMU: boots the personality with that disk (virtio-blk over nbd://127.0.0.1:PORT); the
//!        host types a seeded workload under /w (mkdir, write, append, rm), one command at a
//!        time, and notes how many events the disk had seen when each was answered
//!  host: every crash state of the recording (fs_core::crash): mounts, fsck clean, /w is
//!        the model's tree after an operation no older than the last one answered
//!        ─► a sample of the states booted in QEMU: the guest's fsck finds them clean too
//!        ─► the control: the same recording without its commit flushes must fail some states
//!        ─► summary line, target/os/crashtest-PERSONALITY-sSEED.json
//! ```
//! The scribe writes its own files meanwhile: its writes are in the recording too, and its
//! files are outside /w, so only what the workload did is compared.

pub use fs_core::Durability;

use crate::qemu::{self, Echo, Machine, Outcome};
use crate::{build, disk, fail, out_dir, progress, Personality, Result};
use algo::rng::Rng;
use fs_core::crash::{self, Event, Image, Recording, Tree};
use fs_core::{Block, ClientState, Disk, BLOCK_SIZE};
use serde::Serialize;
use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The disk: the most blocks the file system spans (2 MiB).
const BLOCKS: usize = 4096;
const ROOT: &str = "/w";
/// Crash states booted in QEMU as well.
const BOOTED: usize = 2;

#[derive(Debug, Serialize)]
pub struct Report {
    pub personality: &'static str,
    /// How the guest's file system committed: `journal`, or a broken build (`--broken`).
    pub file_system: &'static str,
    pub seed: u64,
    pub ops: usize,
    /// Workload commands answered (each an operation on /w).
    pub answered: usize,
    /// Writes and flushes the disk saw.
    pub events: usize,
    pub flushes: usize,
    pub states: usize,
    /// Each failing state: after how many events, and why (the first 20).
    pub failed: Vec<(usize, String)>,
    pub failed_count: usize,
    /// The control: the same recording with each commit flush taken out (as a build without
    /// it would have written): states checked, and how many failed (must be some).
    pub control_states: usize,
    pub control_failed: usize,
    /// Crash states booted in QEMU: after how many events, and what the guest's fsck said.
    pub booted: Vec<(usize, String)>,
    pub seconds: f64,
}

/// A number in `0..n`.
fn below(rng: &mut Rng, n: usize) -> usize {
    rng.below(n as u64) as usize
}

/// `ops` shell commands under /w and the tree after each, as the model has it.
fn workload(seed: u64, ops: usize) -> (Vec<String>, Vec<Tree>) {
    let mut rng = Rng(seed);
    let mut tree: Tree = Tree::new();
    tree.insert(ROOT.into(), None);
    let (mut cmds, mut trees) = (Vec::new(), Vec::new());
    let names = ["a", "b", "c", "d", "e"];
    while cmds.len() < ops {
        let dirs: Vec<String> = tree.iter().filter(|(_, v)| v.is_none()).map(|(k, _)| k.clone()).collect();
        let files: Vec<String> = tree.iter().filter(|(_, v)| v.is_some()).map(|(k, _)| k.clone()).collect();
        let dir = &dirs[below(&mut rng, dirs.len())];
        let path = format!("{dir}/{}", names[below(&mut rng, names.len())]);
        // Short lines: the libos console takes a burst of keys into a 128-entry mailbox.
        let text: String =
            (0..below(&mut rng, 60) + 1).map(|_| (b'a' + below(&mut rng, 26) as u8) as char).collect();
        let cmd = match below(&mut rng, 10) {
            0 if !tree.contains_key(&path) && dirs.len() < 6 => {
                tree.insert(path.clone(), None);
                format!("mkdir {path}")
            }
            1..=3 if !tree.get(&path).is_some_and(Option::is_none) => {
                tree.insert(path.clone(), Some(format!("{text}\n").into_bytes()));
                format!("write {path} {text}")
            }
            4..=7 if !tree.get(&path).is_some_and(Option::is_none) => {
                let mut data = tree.get(&path).cloned().flatten().unwrap_or_default();
                data.extend(format!("{text}\n").bytes());
                tree.insert(path.clone(), Some(data));
                format!("append {path} {text}")
            }
            8 if !files.is_empty() => {
                let f = files[below(&mut rng, files.len())].clone();
                tree.remove(&f);
                format!("rm {f}")
            }
            _ => continue,
        };
        cmds.push(cmd);
        trees.push(tree.clone());
    }
    (cmds, trees)
}

/// A formatted file system of [`BLOCKS`] blocks holding an empty /w, made `fs`'s way (a file
/// system built without the journal must not find one left by the host's own mkdir).
fn start_image(fs: Durability) -> Result<Vec<Block>> {
    let img = Image(RefCell::new(vec![[0u8; BLOCK_SIZE]; BLOCKS]));
    {
        let (d, formatted) =
            Disk::mount(&img).map_err(|e| fail!("crashtest: cannot format the disk: {e}"))?;
        if !formatted {
            return Err(fail!("crashtest: a blank disk was not formatted"));
        }
        d.set_durability(fs);
        ClientState::fresh().mkdir(&d, ROOT).map_err(|e| fail!("crashtest: mkdir {ROOT}: {e}"))?;
    }
    Ok(img.0.into_inner())
}

fn bytes_of(blocks: &[Block]) -> Vec<u8> {
    blocks.iter().flat_map(|b| b.iter().copied()).collect()
}

/// The whole test on one personality, with the guest's file system built to commit the way
/// `fs` says (a broken way must fail).
pub fn run(
    personality: Personality,
    seed: u64,
    ops: usize,
    fs: fs_core::Durability,
) -> Result<(Report, PathBuf)> {
    let started = Instant::now();
    let iso = build::build_with(fs)?.iso;
    let (cmds, trees) = workload(seed, ops);
    let start = start_image(fs)?;
    let server = crate::nbd::Server::start(bytes_of(&start))?;
    let machine = Machine { nbd: Some(server.port), ..Machine::default() };
    // When command i+1's echo completes, command i was answered: the number of events then.
    let seen: Arc<Mutex<Vec<(String, usize)>>> = Arc::default();
    let (seen_by_echo, disk) = (seen.clone(), server.disk.clone());
    let spinner = progress::spinner(&format!("crashtest {}", personality.id()));
    spinner.set_message("booting with the recorded disk");
    let shown = spinner.clone();
    let echo = Echo::lines(move |line| {
        if let Some((_, typed)) = qemu::after_prompt(line) {
            let events = disk.lock().map(|d| d.log.len()).unwrap_or(0);
            let mut s = seen_by_echo.lock().expect("lock");
            s.push((typed.to_string(), events));
            shown.set_message(format!("workload: {} commands typed, {events} disk events", s.len()));
        }
    });
    let mut typed = cmds.clone();
    typed.push(format!("ls {ROOT}"));
    let limit = Duration::from_secs(120 + ops as u64);
    let t = qemu::exec(&iso, personality, machine, &typed, limit, echo);
    spinner.finish_and_clear();
    let t = t?;
    let rec = server.finish()?;
    if t.outcome != Outcome::PoweredOff || !t.failed.is_empty() {
        return Err(fail!(
            "crashtest: the workload did not complete: {}\n--- console tail:\n{}",
            t.summary(),
            t.tail(20)
        ));
    }
    // Each workload command's answer: the events when the next typed line's echo was seen.
    let seen = seen.lock().expect("lock").clone();
    let mut acked = vec![(0usize, trees_root(&start)?)];
    // The echoes in order (a command may repeat an earlier one's text).
    let mut echoes = seen.iter();
    for (i, cmd) in cmds.iter().enumerate() {
        let next = typed[i + 1].as_str();
        let Some(&(_, at)) = echoes.by_ref().find(|(line, _)| line == next) else {
            return Err(fail!("crashtest: the answer to '{cmd}' was not seen on the console"));
        };
        acked.push((at, trees[i].clone()));
    }
    let events = rec.log.len();
    let flushes = rec.log.iter().filter(|e| **e == Event::Flush).count();
    let recording = Recording { start: start.clone(), log: rec.log, acked };
    let total = crash::count_states(&recording);
    let bar = progress::bar(total as u64, &format!("crashtest {}", personality.id()));
    bar.set_message("checking crash states");
    let out = crash::check_all(&recording, seed, ROOT, |n| bar.set_position(n as u64));
    progress::keep(&bar);
    let control = crash::without_commit_flushes(&recording);
    let bar = progress::bar(crash::count_states(&control) as u64, &format!("crashtest {}", personality.id()));
    bar.set_message("the control: the same run without its commit flushes");
    let broken = crash::check_all(&control, seed, ROOT, |n| bar.set_position(n as u64));
    progress::keep(&bar);
    // A sample booted in QEMU: the disk as an in-order prefix of the events left it.
    let mut booted = Vec::new();
    let mut rng = Rng(seed ^ 0x5eed);
    for _ in 0..BOOTED {
        let at = below(&mut rng, events + 1);
        let mut image = start.clone();
        for ev in &recording.log[..at] {
            if let Event::Write(b, data) = ev {
                image[*b as usize] = *data;
            }
        }
        let scratch = disk::Scratch::with_bytes(
            &format!("crashtest-{}", personality.id()),
            (BLOCKS * BLOCK_SIZE) as u64,
            &[(0, &bytes_of(&image))],
        )?;
        let path: &'static std::path::Path = Box::leak(scratch.path().to_path_buf().into_boxed_path());
        let m = Machine { disk: Some(path), ..Machine::default() };
        let t = qemu::exec(
            &iso,
            personality,
            m,
            // A pause first: the scribe's start (its files opened after the mount's recovery, or
            // its notice that it cannot) prints while it runs, and a line of it landing between
            // the prompt and the echo of `fsck` hid the command from the transcript once.
            &["sleep 500".to_string(), "fsck".to_string(), format!("ls {ROOT}")],
            Duration::from_secs(90),
            Echo::Nothing,
        )?;
        // fsck's own lines (the scribe's retry notice can land among them); why, if it did not run.
        let own = |l: &&&str| l.starts_with("fsck") || l.starts_with("error: fsck");
        let fsck = t
            .runs()
            .iter()
            .find(|r| r.typed == "fsck")
            .map(|r| r.output.iter().filter(own).copied().collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|| format!("fsck did not run: {}", t.summary()));
        booted.push((at, fsck));
    }
    let boot_failed = booted.iter().filter(|(_, f)| !f.starts_with("fsck: clean")).count();
    // A checker that passes the control too would pass anything: count that as a failure.
    let failed_count = out.failed.len() + boot_failed + usize::from(broken.failed.is_empty());
    let report = Report {
        personality: personality.id(),
        file_system: fs.name(),
        seed,
        ops,
        answered: cmds.len(),
        events,
        flushes,
        states: out.states,
        failed: out.failed.into_iter().take(20).collect(),
        failed_count,
        control_states: broken.states,
        control_failed: broken.failed.len(),
        booted,
        seconds: started.elapsed().as_secs_f64(),
    };
    let broken = if fs == fs_core::Durability::Journal { String::new() } else { format!("-{}", fs.name()) };
    let path = out_dir().join(format!("crashtest-{}-s{seed}{broken}.json", personality.id()));
    let json = serde_json::to_string_pretty(&report).map_err(|e| fail!("crashtest: {e}"))? + "\n";
    std::fs::write(&path, json).map_err(|e| fail!("cannot write {}: {e}", path.display()))?;
    Ok((report, path))
}

/// The tree under /w of the disk `blocks`.
fn trees_root(blocks: &[Block]) -> Result<Tree> {
    let img = Image(RefCell::new(blocks.to_vec()));
    let (d, _) = Disk::mount(&img).map_err(|e| fail!("crashtest: {e}"))?;
    crash::tree_of(&d, ROOT).map_err(|e| fail!("crashtest: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workload_is_seeded_and_its_model_follows_each_command() {
        let (a, ta) = workload(3, 40);
        let (b, _) = workload(3, 40);
        assert_eq!(a, b);
        assert_ne!(a, workload(4, 40).0);
        assert_eq!((a.len(), ta.len()), (40, 40));
        for (cmd, tree) in a.iter().zip(&ta) {
            let mut w = cmd.split(' ');
            let (verb, path) = (w.next().unwrap(), w.next().unwrap());
            match verb {
                "mkdir" => assert_eq!(tree.get(path), Some(&None)),
                "write" => assert_eq!(tree[path], Some(format!("{}\n", w.next().unwrap()).into_bytes())),
                "append" => assert!(tree[path]
                    .as_ref()
                    .unwrap()
                    .ends_with(format!("{}\n", w.next().unwrap()).as_bytes())),
                "rm" => assert!(!tree.contains_key(path)),
                _ => panic!("{cmd}"),
            }
        }
    }

    #[test]
    fn the_start_image_holds_an_empty_w() {
        let start = start_image(Durability::Journal).unwrap();
        let t = trees_root(&start).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t.get(ROOT), Some(&None));
    }
}
