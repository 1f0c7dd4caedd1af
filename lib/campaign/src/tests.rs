//! The campaign against fake personalities on the host: a file system in a vector, a task
//! whose faults are scripted by kind, a clock that can be made to wake early.

extern crate std;

use crate::note::{Note, Noting, Phase, Problem};
use crate::personality::{Clock, Console, Files, Shell, Status, Target};
use crate::workload::{Records, Seen};
use algo::rng::Rng;
use core::cell::RefCell;
use core::fmt;
use std::format;
use std::rc::Rc;
use std::string::{String, ToString};
use std::vec::Vec;

/// The fake file server's state, shared by the sessions and the task that injects into it.
#[derive(Default)]
struct Disk {
    data: Vec<u8>,
    /// Bumped by a `reset` fault: descriptors opened before are gone.
    epoch: u32,
    /// Restarts of tasks other than the target, bumped by a `spill` fault.
    others: u32,
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
    fn close(&mut self, fd: u32) -> Result<(), FakeError> {
        self.valid(fd)
    }
    fn exists(e: &FakeError) -> bool {
        *e == FakeError::Exists
    }
    fn session_reset(e: &FakeError) -> bool {
        *e == FakeError::Reset
    }
}

/// A clock that advances by what was slept, less `early` milliseconds; every `fail_every`-th
/// sleep fails (0: none does).
struct FakeClock {
    now: u64,
    early: u64,
    sleeps: u32,
    fail_every: u32,
}

impl Clock for FakeClock {
    type Error = &'static str;

    fn now_ms(&mut self) -> Result<u64, &'static str> {
        Ok(self.now)
    }
    fn sleep(&mut self, ms: u32) -> Result<(), &'static str> {
        self.sleeps += 1;
        if self.fail_every > 0 && self.sleeps.is_multiple_of(self.fail_every) {
            return Err("server failed");
        }
        self.now += ms as u64 - self.early;
        Ok(())
    }
}

/// The task under test. Kinds: `kill` restarts it, `nop` changes nothing, `miss` finds nothing
/// to hit, `reset` drops every session's open files, `spill` restarts another task.
struct FakeTask {
    disk: Rc<RefCell<Disk>>,
    restarts: u32,
}

impl Target for FakeTask {
    type Kind = &'static str;
    const KINDS: &'static [&'static str] = &["kill", "nop", "miss", "reset", "spill"];

    fn kind_name(kind: &'static str) -> &'static str {
        kind
    }
    fn inject(&mut self, kind: &'static str, seed: u64) -> Option<u64> {
        match kind {
            "kill" => self.restarts += 1,
            "reset" => self.disk.borrow_mut().epoch += 1,
            "spill" => self.disk.borrow_mut().others += 1,
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
        self.disk.borrow().others
    }
}

#[derive(Default)]
struct FakeShell {
    lines: Vec<String>,
    disk: Rc<RefCell<Disk>>,
    early: u64,
    fail_every: u32,
    /// Ctrl-C comes when the campaign asks this many times.
    ctrl_c_at: Option<u32>,
    asked: u32,
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
        Some(FakeClock { now: 0, early: self.early, sleeps: 0, fail_every: self.fail_every })
    }
    fn interrupted(&mut self) -> bool {
        self.asked += 1;
        self.ctrl_c_at == Some(self.asked)
    }
}

fn campaign(shell: &mut FakeShell, name: &str, count: u32, seed: u64) -> Vec<String> {
    assert_eq!(crate::run(shell, name, count, seed), crate::Ended::Ran);
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
        seen.add(records.step(&mut Noting { out: &mut shell, phase: Phase::Fault(1) }, &mut rng));
    }
    assert!(seen.errors > 0, "the reset is seen");
    assert_eq!(shell.lines.len(), seen.errors as usize, "each error is noted");
    assert!(shell.lines[0].starts_with("campaign: fault 1: ERROR: "), "{}", shell.lines[0]);
    assert!(shell.lines[0].ends_with(": session reset"), "with the error: {}", shell.lines[0]);
    // Without opening the file again, every record still known would fail to read.
    let end = records.verify_all(&mut Noting { out: &mut shell, phase: Phase::FinalCheck });
    assert_eq!((end.errors, end.wrong), (0, 0));
}

#[test]
fn a_wrong_record_is_reported_once_until_rewritten() {
    let mut shell = FakeShell::default();
    let mut records = Records::create(shell.files().unwrap()).unwrap();
    shell.disk.borrow_mut().data[5 * 16] ^= 1;
    let mut check = |shell: &mut FakeShell| {
        records.verify_all(&mut Noting { out: shell, phase: Phase::FinalCheck }).wrong
    };
    assert_eq!(check(&mut shell), 1);
    assert_eq!(check(&mut shell), 0);
    assert_eq!(shell.lines, ["campaign: final check: LOST: record 5 differs from what was acknowledged"]);
}

#[test]
fn a_sleep_that_ends_early_is_lost() {
    let mut shell = FakeShell { early: 1, ..FakeShell::default() };
    let lines = campaign(&mut shell, "timer", 10, 1);
    assert_eq!(verdicts(&faults(&lines), "lost"), 10);
    assert!(lines
        .iter()
        .any(|l| l.starts_with("campaign: fault 1: WRONG: a ") && l.ends_with(" ms sleep returned early")));
    // Every sleep of the run was wrong: the 40 of the windows, and those before the faults.
    let wrong: Vec<Note> = notes(&lines).into_iter().filter(|n| n.problem == Problem::Wrong).collect();
    let in_windows = wrong.iter().filter(|n| matches!(n.phase, Phase::Fault(_))).count();
    let wrong = wrong.len();
    assert!(wrong > 40 && in_windows == 40, "{wrong} wrong, {in_windows} in the windows");
    let summary = std::format!("errors=0 lost={wrong} panics=0");
    assert!(lines.last().unwrap().ends_with(&summary), "{}", lines.last().unwrap());
}

fn notes(lines: &[String]) -> Vec<Note<'_>> {
    lines.iter().filter_map(|l| Note::parse(l)).collect()
}

/// (n, verdict) of every `fault N: KIND WHAT -> VERDICT` line.
fn numbered(lines: &[String]) -> Vec<(u32, String)> {
    lines
        .iter()
        .filter_map(|l| {
            let (n, rest) = l.strip_prefix("fault ")?.split_once(": ")?;
            Some((n.parse().ok()?, rest.split_once(" -> ")?.1.to_string()))
        })
        .collect()
}

#[test]
fn each_error_is_noted_with_the_fault_whose_window_saw_it() {
    for (name, mut shell) in
        [("fs", FakeShell::default()), ("timer", FakeShell { fail_every: 7, ..FakeShell::default() })]
    {
        let lines = campaign(&mut shell, name, 40, 5);
        let notes = notes(&lines);
        for (n, verdict) in numbered(&lines) {
            let errors = notes.iter().filter(|e| e.phase == Phase::Fault(n) && e.problem == Problem::Error);
            assert_eq!(errors.count() > 0, verdict == "error", "{name}: fault {n} -> {verdict}");
        }
        // A note precedes its fault's line: the host files it under that fault.
        for note in notes.iter().filter(|n| matches!(n.phase, Phase::Fault(_))) {
            let Phase::Fault(n) = note.phase else { unreachable!() };
            let at = lines.iter().position(|l| Note::parse(l) == Some(*note)).unwrap();
            let verdict = lines.iter().position(|l| l.starts_with(&std::format!("fault {n}: "))).unwrap();
            assert!(at < verdict, "{name}: '{note}' before its fault's line");
        }
        assert!(notes.iter().any(|n| n.problem == Problem::Error), "{name}: some errors were seen");
    }
}

#[test]
fn restarts_of_other_tasks_are_reported_with_their_fault() {
    let lines = campaign(&mut FakeShell::default(), "fs", 60, 3);
    let spills: Vec<u32> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("fault ")?.split_once(": spill ").and_then(|(n, _)| n.parse().ok()))
        .collect();
    assert!(!spills.is_empty(), "the seed picks some spills");
    let restarts: Vec<u32> = notes(&lines)
        .iter()
        .filter(|n| n.problem == Problem::Restarts)
        .map(|n| {
            assert_eq!(n.text, "other tasks restarted 1 time");
            let Phase::Fault(f) = n.phase else { panic!("a restart note of a fault: {n}") };
            f
        })
        .collect();
    assert_eq!(restarts, spills, "one note with each fault that restarted another task");
    let end = std::format!("campaign fs: other tasks restarted {} times during the campaign", spills.len());
    assert!(lines.contains(&end), "and the total at the end");
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
    assert_eq!(crate::run(&mut shell, "nobody", 5, 1), crate::Ended::NotRun);
    assert_eq!(crate::run(&mut shell, "console", 5, 1), crate::Ended::NotRun);
    assert_eq!(
        shell.lines,
        [
            "error: campaign: no task named 'nobody'",
            "error: campaign: no checked workload for 'console' (try fs, ramdisk, virtio-blk or timer)"
        ]
    );
}

#[test]
fn ctrl_c_stops_between_faults_and_still_sums_up() {
    let mut shell = FakeShell { ctrl_c_at: Some(6), ..FakeShell::default() };
    assert_eq!(crate::run(&mut shell, "fs", 40, 3), crate::Ended::Interrupted);
    let lines = core::mem::take(&mut shell.lines);
    let injected = faults(&lines).len();
    assert!((1..=5).contains(&injected), "it stopped early: {injected} faults");
    assert!(lines
        .iter()
        .any(|l| l == &format!("campaign fs: interrupted (Ctrl-C) after {injected} of 40 faults")));
    let summary = lines.last().expect("a summary");
    assert!(summary.starts_with(&format!("campaign fs: injected={injected} ")), "{summary}");
}

/// The scribe against the real file system on a RAM disk, through one of two sessions.
mod scribe {
    extern crate std;

    use crate::personality::{Console, Files};
    use crate::scribe::{record, Scribe};
    use core::cell::RefCell;
    use fs_core::{mode, Block, BlockDevice, Disk, FsError, Held, SmallClientState, BLOCK_SIZE};
    use std::rc::Rc;
    use std::string::String;
    use std::vec::Vec;

    /// A RAM device; clones share the blocks (a second mount of the same disk).
    #[derive(Clone)]
    struct Ram(Rc<RefCell<Vec<Block>>>);

    impl BlockDevice for Ram {
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

    /// Every session of one disk; `others` of session `me` is what the rest hold.
    struct Fs {
        disk: Disk<Ram>,
        sessions: Vec<SmallClientState>,
    }

    #[derive(Clone)]
    struct Session(Rc<RefCell<Fs>>, usize);

    impl Session {
        fn with<T>(
            &self,
            f: impl FnOnce(&Disk<Ram>, &mut SmallClientState, &dyn Fn(u16, &[u8]) -> Held) -> T,
        ) -> T {
            let mut fs = self.0.borrow_mut();
            let Fs { disk, sessions } = &mut *fs;
            let mut st = sessions[self.1];
            let others_of = sessions.clone();
            let me = self.1;
            let others = move |ino: u16, path: &[u8]| {
                others_of
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != me)
                    .fold(Held::default(), |h, (_, s)| h.or(s.held(ino, path)))
            };
            let r = f(&*disk, &mut st, &others);
            sessions[self.1] = st;
            r
        }
    }

    impl Files for Session {
        type Error = FsError;
        fn mkdir(&mut self, path: &str) -> Result<(), FsError> {
            self.with(|d, st, _| st.mkdir(d, path))
        }
        fn open(&mut self, path: &str, m: u8) -> Result<u32, FsError> {
            self.with(|d, st, o| st.open(d, path, m, o))
        }
        fn seek(&mut self, fd: u32, pos: u32) -> Result<(), FsError> {
            self.with(|_, st, _| st.seek(fd, pos))
        }
        fn read(&mut self, fd: u32, out: &mut [u8]) -> Result<usize, FsError> {
            self.with(|d, st, _| st.read(d, fd, out))
        }
        fn write(&mut self, fd: u32, data: &[u8]) -> Result<(), FsError> {
            self.with(|d, st, _| st.write(d, fd, data)).map(|_| ())
        }
        fn close(&mut self, fd: u32) -> Result<(), FsError> {
            self.with(|_, st, _| st.close(fd))
        }
        fn exists(e: &FsError) -> bool {
            *e == FsError::Exists
        }
        fn session_reset(e: &FsError) -> bool {
            matches!(e, FsError::StateReset | FsError::BadFd)
        }
    }

    struct Lines(Vec<String>);

    impl Console for Lines {
        fn println(&mut self, line: core::fmt::Arguments<'_>) {
            self.0.push(std::format!("{line}"));
        }
    }

    fn two_sessions() -> (Session, Session) {
        let (a, b, _) = two_sessions_and_the_device();
        (a, b)
    }

    fn two_sessions_and_the_device() -> (Session, Session, Ram) {
        let ram = Ram(Rc::new(RefCell::new(std::vec![[0u8; BLOCK_SIZE]; 256])));
        let (disk, _) = Disk::mount(ram.clone()).unwrap();
        let fs = Rc::new(RefCell::new(Fs { disk, sessions: std::vec![SmallClientState::fresh(); 2] }));
        (Session(fs.clone(), 0), Session(fs, 1), ram)
    }

    #[test]
    fn a_scribe_whose_files_are_formatted_away_starts_a_fresh_log_and_says_so_once() {
        let (scribe, mut shell, ram) = two_sessions_and_the_device();
        let mut con = Lines(Vec::new());
        let mut s = Scribe::open(scribe).map_err(|(_, e)| e).unwrap();
        for _ in 0..5 {
            s.step_or_report(&mut con);
        }
        // `format --force` from another session: the same device, formatted under the scribe.
        let (mut volume, _) = fs_core::Volume::mount(ram).unwrap();
        volume.format(true).unwrap();
        for _ in 0..20 {
            s.step_or_report(&mut con);
        }
        let errors = con.0.iter().filter(|l| l.contains("ERROR")).count();
        assert_eq!(errors, 1, "one error, when its files went: {:?}", con.0);
        assert_eq!(con.0.len(), 2, "and one line saying what it did: {:?}", con.0);
        assert!(
            con.0[1].contains("files are gone") && con.0[1].contains("started a fresh log"),
            "{:?}",
            con.0
        );
        let status = String::from_utf8(cat(&mut shell, "/scribe/status")).unwrap();
        assert_eq!(status, "scribe:     19 records written,     19 verified, 1 errors, 0 rotations\n");
        assert_eq!(cat(&mut shell, "/scribe/log").len(), 19 * crate::scribe::RECORD);
    }

    fn cat(s: &mut Session, path: &str) -> Vec<u8> {
        let fd = s.open(path, mode::READ).unwrap();
        let mut out = std::vec![0u8; 4096];
        let n = s.read(fd, &mut out).unwrap();
        s.close(fd).unwrap();
        out.truncate(n);
        out
    }

    #[test]
    fn the_scribe_writes_verifies_and_reports_its_records() {
        let (scribe, mut shell) = two_sessions();
        let mut con = Lines(Vec::new());
        let mut s = Scribe::open(scribe).map_err(|(_, e)| e).unwrap();
        for _ in 0..25 {
            s.step_or_report(&mut con);
        }
        assert!(con.0.is_empty(), "{:?}", con.0);
        let log = cat(&mut shell, "/scribe/log");
        assert_eq!(log.len(), 25 * 16);
        assert_eq!(&log[16 * 24..], &record(24));
        let status = String::from_utf8(cat(&mut shell, "/scribe/status")).unwrap();
        assert_eq!(status, "scribe:     25 records written,     25 verified, 0 errors, 0 rotations\n");
    }

    #[test]
    fn another_session_cannot_truncate_or_remove_the_log_the_scribe_holds() {
        let (scribe, mut shell) = two_sessions();
        let mut con = Lines(Vec::new());
        let mut s = Scribe::open(scribe).map_err(|(_, e)| e).unwrap();
        s.step_or_report(&mut con);
        assert_eq!(shell.open("/scribe/log", mode::WRITE | mode::TRUNCATE), Err(FsError::InUse));
        assert_eq!(shell.with(|d, st, o| st.remove(d, "/scribe/log", o)), Err(FsError::InUse));
        assert_eq!(shell.with(|d, st, o| st.put(d, "/scribe/log", b"X", false, o)), Err(FsError::InUse));
        for _ in 0..19 {
            s.step_or_report(&mut con);
        }
        assert!(con.0.is_empty(), "the scribe saw: {:?}", con.0);
        assert_eq!(s.verified, 20);
    }
}
