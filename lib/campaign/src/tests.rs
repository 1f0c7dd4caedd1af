//! The campaign against fake personalities on the host: a file system in a vector, a task
//! whose faults are scripted by kind, a clock that can be made to wake early.

extern crate std;

use crate::personality::{Clock, Console, Files, Shell, Status, Target};
use crate::workload::{Records, Seen};
use algo::rng::Rng;
use core::cell::RefCell;
use core::fmt;
use std::rc::Rc;
use std::string::{String, ToString};
use std::vec::Vec;

/// The fake file server's state, shared by the sessions and the task that injects into it.
#[derive(Default)]
struct Disk {
    data: Vec<u8>,
    /// Bumped by a `reset` fault: descriptors opened before are gone.
    epoch: u32,
}

#[derive(Debug, PartialEq)]
enum FakeError {
    Exists,
    Reset,
}

impl fmt::Display for FakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if *self == FakeError::Exists { "exists" } else { "session reset" })
    }
}

/// A session with one file; a descriptor is the epoch it was opened in.
struct FakeFiles {
    disk: Rc<RefCell<Disk>>,
    pos: usize,
    dirs: u32,
}

impl FakeFiles {
    fn valid(&self, fd: u32) -> Result<(), FakeError> {
        if fd == self.disk.borrow().epoch {
            Ok(())
        } else {
            Err(FakeError::Reset)
        }
    }
}

impl Files for FakeFiles {
    type Error = FakeError;

    fn mkdir(&mut self, _: &str) -> Result<(), FakeError> {
        self.dirs += 1;
        if self.dirs > 1 {
            Err(FakeError::Exists)
        } else {
            Ok(())
        }
    }
    fn open(&mut self, _: &str, mode: u8) -> Result<u32, FakeError> {
        let mut disk = self.disk.borrow_mut();
        if mode & fs_core::mode::TRUNCATE != 0 {
            disk.data.clear();
        }
        self.pos = 0;
        Ok(disk.epoch)
    }
    fn seek(&mut self, fd: u32, pos: u32) -> Result<(), FakeError> {
        self.valid(fd)?;
        self.pos = pos as usize;
        Ok(())
    }
    fn read(&mut self, fd: u32, out: &mut [u8]) -> Result<usize, FakeError> {
        self.valid(fd)?;
        let disk = self.disk.borrow();
        let n = out.len().min(disk.data.len().saturating_sub(self.pos));
        out[..n].copy_from_slice(&disk.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
    fn write(&mut self, fd: u32, data: &[u8]) -> Result<(), FakeError> {
        self.valid(fd)?;
        let mut disk = self.disk.borrow_mut();
        let end = self.pos + data.len();
        if disk.data.len() < end {
            disk.data.resize(end, 0);
        }
        disk.data[self.pos..end].copy_from_slice(data);
        self.pos = end;
        Ok(())
    }
    fn exists(e: &FakeError) -> bool {
        *e == FakeError::Exists
    }
    fn session_reset(e: &FakeError) -> bool {
        *e == FakeError::Reset
    }
}

/// A clock that advances by what was slept, less `early` milliseconds.
struct FakeClock {
    now: u64,
    early: u64,
}

impl Clock for FakeClock {
    type Error = ();

    fn now_ms(&mut self) -> Result<u64, ()> {
        Ok(self.now)
    }
    fn sleep(&mut self, ms: u32) -> Result<(), ()> {
        self.now += ms as u64 - self.early;
        Ok(())
    }
}

/// The task under test. Kinds: `kill` restarts it, `nop` changes nothing, `miss` finds nothing
/// to hit, `reset` drops every session's open files.
struct FakeTask {
    disk: Rc<RefCell<Disk>>,
    restarts: u32,
}

impl Target for FakeTask {
    type Kind = &'static str;
    const KINDS: &'static [&'static str] = &["kill", "nop", "miss", "reset"];

    fn kind_name(kind: &'static str) -> &'static str {
        kind
    }
    fn inject(&mut self, kind: &'static str, seed: u64) -> Option<u64> {
        match kind {
            "kill" => self.restarts += 1,
            "reset" => self.disk.borrow_mut().epoch += 1,
            "miss" => return None,
            _ => {}
        }
        Some(seed & 0xff)
    }
    fn status(&mut self) -> Status {
        Status { restarts: self.restarts, down: false }
    }
    fn wait_running(&mut self) -> bool {
        true
    }
    fn restarts_of_others(&mut self) -> u32 {
        0
    }
}

#[derive(Default)]
struct FakeShell {
    lines: Vec<String>,
    disk: Rc<RefCell<Disk>>,
    early: u64,
}

impl Console for FakeShell {
    fn println(&mut self, line: fmt::Arguments<'_>) {
        self.lines.push(line.to_string());
    }
}

impl Shell for FakeShell {
    type Target = FakeTask;
    type Files = FakeFiles;
    type Clock = FakeClock;

    fn target(&mut self, name: &str) -> Option<FakeTask> {
        ["fs", "timer", "console"].contains(&name).then(|| FakeTask { disk: self.disk.clone(), restarts: 0 })
    }
    fn files(&mut self) -> Option<FakeFiles> {
        Some(FakeFiles { disk: self.disk.clone(), pos: 0, dirs: 0 })
    }
    fn clock(&mut self) -> Option<FakeClock> {
        Some(FakeClock { now: 0, early: self.early })
    }
}

fn campaign(shell: &mut FakeShell, name: &str, count: u32, seed: u64) -> Vec<String> {
    assert!(crate::run(shell, name, count, seed));
    core::mem::take(&mut shell.lines)
}

/// (kind, verdict) of every `fault N: KIND WHAT -> VERDICT` line.
fn faults(lines: &[String]) -> Vec<(String, String)> {
    lines
        .iter()
        .filter_map(|l| {
            let (what, verdict) = l.strip_prefix("fault ")?.split_once(" -> ")?;
            Some((what.split(' ').nth(1)?.to_string(), verdict.to_string()))
        })
        .collect()
}

fn verdicts(faults: &[(String, String)], verdict: &str) -> usize {
    faults.iter().filter(|(_, v)| v == verdict).count()
}

#[test]
fn the_summary_adds_up_the_fault_lines() {
    let lines = campaign(&mut FakeShell::default(), "fs", 60, 3);
    let f = faults(&lines);
    assert_eq!(f.len(), 60);
    assert!(f.iter().all(|(k, _)| k != "miss"), "nothing to hit is not an injected fault");
    assert!(f.iter().filter(|(k, _)| k == "kill").all(|(_, v)| v == "recovered"));
    assert!(f.iter().filter(|(k, _)| k == "nop").all(|(_, v)| v == "benign"));
    let (recovered, errors) = (verdicts(&f, "recovered"), verdicts(&f, "error"));
    let summary = std::format!(
        "campaign fs: injected=60 manifested={} recovered={recovered} errors={errors} lost=0 panics=0",
        recovered + errors
    );
    assert_eq!(lines.last(), Some(&summary));
    let progress =
        std::format!("campaign fs: 60/60 injected, {} manifested, {recovered} recovered", recovered + errors);
    assert!(lines.contains(&progress));
    assert_eq!(lines[0], "campaign fs: 60 faults, seed 3, 4 workload steps watched after each");
}

#[test]
fn a_reset_session_is_an_error_and_the_file_is_opened_again() {
    let mut shell = FakeShell::default();
    let mut records = Records::create(shell.files().unwrap()).unwrap();
    shell.disk.borrow_mut().epoch += 1;
    let (mut rng, mut seen) = (Rng(1), Seen::default());
    for _ in 0..40 {
        seen.add(records.step(&mut shell, &mut rng));
    }
    assert!(seen.errors > 0, "the reset is seen");
    // Without opening the file again, every record still known would fail to read.
    let end = records.verify_all(&mut shell);
    assert_eq!((end.errors, end.wrong), (0, 0));
}

#[test]
fn a_wrong_record_is_reported_once_until_rewritten() {
    let mut shell = FakeShell::default();
    let mut records = Records::create(shell.files().unwrap()).unwrap();
    shell.disk.borrow_mut().data[5 * 16] ^= 1;
    assert_eq!(records.verify_all(&mut shell).wrong, 1);
    assert_eq!(records.verify_all(&mut shell).wrong, 0);
    assert_eq!(shell.lines, ["campaign: LOST: record 5 differs from what was acknowledged"]);
}

#[test]
fn a_sleep_that_ends_early_is_lost() {
    let mut shell = FakeShell { early: 1, ..FakeShell::default() };
    let lines = campaign(&mut shell, "timer", 10, 1);
    assert_eq!(verdicts(&faults(&lines), "lost"), 10);
    assert!(lines
        .iter()
        .any(|l| l.starts_with("campaign: WRONG: a ") && l.ends_with(" ms sleep returned early")));
    assert!(lines.last().unwrap().ends_with("errors=0 lost=40 panics=0"));
}

#[test]
fn a_seed_fixes_the_campaign() {
    let run = |seed| campaign(&mut FakeShell::default(), "fs", 40, seed);
    assert_eq!(run(9), run(9));
    assert_ne!(faults(&run(9)), faults(&run(10)));
}

#[test]
fn a_campaign_needs_a_task_and_a_workload() {
    let mut shell = FakeShell::default();
    assert!(!crate::run(&mut shell, "nobody", 5, 1));
    assert!(!crate::run(&mut shell, "console", 5, 1));
    assert_eq!(
        shell.lines,
        [
            "error: campaign: no task named 'nobody'",
            "error: campaign: no checked workload for 'console' (try fs, ramdisk or timer)"
        ]
    );
}
