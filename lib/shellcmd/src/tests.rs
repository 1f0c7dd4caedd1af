//! The shared commands against a fake shell on the host: a file system in a map, a console that
//! keeps what it was given, and a record of what reached the personality's own commands.

extern crate std;

use crate::personality::{Console, Entry, Files, Report, Shell, Status};
use crate::{print_task_header, print_task_row, run, run_line, update_args, TaskRow, UpdateArgs};
use core::cell::RefCell;
use core::fmt;
use fs_core::{mode, Problem, KIND_DIR, KIND_FILE, PATH_MAX};
use std::collections::BTreeMap;
use std::format;
use std::string::{String, ToString};
use std::vec::Vec;

#[derive(Debug, PartialEq)]
enum FakeError {
    NotFound,
    Exists,
    NotADirectory,
    BadFd,
    NoSpace,
    HoldsFiles,
    Late,
}

impl fmt::Display for FakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FakeError::NotFound => "no such file or directory",
            FakeError::Exists => "already exists",
            FakeError::NotADirectory => "not a directory",
            FakeError::BadFd => "bad file descriptor",
            FakeError::NoSpace => "no space left",
            FakeError::HoldsFiles => "holds files",
            FakeError::Late => "woke late",
        })
    }
}

/// A file system of absolute paths; `None` is a directory.
struct FakeFiles {
    nodes: BTreeMap<String, Option<Vec<u8>>>,
    cwd: String,
    /// Open files: path and position.
    open: Vec<(String, usize)>,
    /// Largest read the client makes, as the real clients cap theirs.
    read_max: usize,
    /// Most nodes (the root included) there is room for.
    room: usize,
    /// Most bytes all files together have room for.
    bytes_room: usize,
    /// What `fsck` finds.
    problems: Vec<Problem>,
}

impl FakeFiles {
    fn new() -> FakeFiles {
        let nodes = BTreeMap::from([("/".to_string(), None)]);
        FakeFiles {
            nodes,
            cwd: "/".to_string(),
            open: Vec::new(),
            read_max: 256,
            room: usize::MAX,
            bytes_room: usize::MAX,
            problems: Vec::new(),
        }
    }

    fn abs(&self, path: &str) -> String {
        match path {
            "." => self.cwd.clone(),
            p if p.starts_with('/') => p.to_string(),
            p if self.cwd == "/" => format!("/{p}"),
            p => format!("{}/{p}", self.cwd),
        }
    }

    fn parent_is_dir(&self, abs: &str) -> bool {
        let parent = abs.rsplit_once('/').map_or("/", |(p, _)| if p.is_empty() { "/" } else { p });
        matches!(self.nodes.get(parent), Some(None))
    }

    fn file(&mut self, fd: u32) -> Result<(&mut Vec<u8>, &mut usize), FakeError> {
        let (path, pos) = self.open.get_mut(fd as usize).ok_or(FakeError::BadFd)?;
        match self.nodes.get_mut(path.as_str()) {
            Some(Some(data)) => Ok((data, pos)),
            _ => Err(FakeError::BadFd),
        }
    }
}

impl campaign::Files for FakeFiles {
    type Error = FakeError;

    fn close(&mut self, fd: u32) -> Result<(), FakeError> {
        self.file(fd).map(|_| ())
    }

    fn mkdir(&mut self, path: &str) -> Result<(), FakeError> {
        let abs = self.abs(path);
        if self.nodes.contains_key(&abs) {
            return Err(FakeError::Exists);
        }
        if !self.parent_is_dir(&abs) {
            return Err(FakeError::NotFound);
        }
        if self.nodes.len() == self.room {
            return Err(FakeError::NoSpace);
        }
        self.nodes.insert(abs, None);
        Ok(())
    }
    fn open(&mut self, path: &str, m: u8) -> Result<u32, FakeError> {
        let abs = self.abs(path);
        let creatable = m & mode::CREATE != 0 && self.parent_is_dir(&abs);
        match self.nodes.get_mut(&abs) {
            Some(Some(data)) if m & mode::TRUNCATE != 0 => data.clear(),
            Some(_) => {}
            None if creatable => {
                self.nodes.insert(abs.clone(), Some(Vec::new()));
            }
            None => return Err(FakeError::NotFound),
        }
        self.open.push((abs, 0));
        Ok(self.open.len() as u32 - 1)
    }
    fn seek(&mut self, fd: u32, pos: u32) -> Result<(), FakeError> {
        *self.file(fd)?.1 = pos as usize;
        Ok(())
    }
    fn read(&mut self, fd: u32, out: &mut [u8]) -> Result<usize, FakeError> {
        let read_max = self.read_max;
        let (data, pos) = self.file(fd)?;
        let n = out.len().min(read_max).min(data.len() - *pos);
        out[..n].copy_from_slice(&data[*pos..*pos + n]);
        *pos += n;
        Ok(n)
    }
    fn write(&mut self, fd: u32, bytes: &[u8]) -> Result<(), FakeError> {
        self.file(fd)?.0.extend_from_slice(bytes);
        Ok(())
    }
    fn exists(e: &FakeError) -> bool {
        *e == FakeError::Exists
    }
    fn session_reset(e: &FakeError) -> bool {
        *e == FakeError::BadFd
    }
}

impl Files for FakeFiles {
    const NOT_A_DIRECTORY: FakeError = FakeError::NotADirectory;
    /// Small, so that the tests' texts go in pieces as long ones do on the libos.
    const PUT_MAX: usize = 8;

    fn not_found(e: &FakeError) -> bool {
        *e == FakeError::NotFound
    }
    fn stat(&mut self, path: &str) -> Result<(u8, u32), FakeError> {
        match self.nodes.get(&self.abs(path)) {
            Some(None) => Ok((KIND_DIR, 0)),
            Some(Some(data)) => Ok((KIND_FILE, data.len() as u32)),
            None => Err(FakeError::NotFound),
        }
    }
    fn entry(&mut self, path: &str, index: u32) -> Result<Option<Entry>, FakeError> {
        let dir = self.abs(path);
        let prefix = if dir == "/" { dir.clone() } else { format!("{dir}/") };
        let children = self.nodes.iter().filter(|(p, _)| {
            p.strip_prefix(&prefix).is_some_and(|name| !name.is_empty() && !name.contains('/'))
        });
        Ok(children
            .map(|(p, node)| match node {
                None => Entry::new(&p[prefix.len()..], KIND_DIR, 0),
                Some(data) => Entry::new(&p[prefix.len()..], KIND_FILE, data.len() as u32),
            })
            .nth(index as usize))
    }
    fn remove(&mut self, path: &str) -> Result<(), FakeError> {
        self.nodes.remove(&self.abs(path)).map(|_| ()).ok_or(FakeError::NotFound)
    }
    fn chdir(&mut self, path: &str) -> Result<(), FakeError> {
        match self.stat(path)? {
            (KIND_DIR, _) => {
                self.cwd = self.abs(path);
                Ok(())
            }
            _ => Err(FakeError::NotADirectory),
        }
    }
    fn cwd<'o>(&mut self, out: &'o mut [u8; PATH_MAX]) -> Result<&'o str, FakeError> {
        out[..self.cwd.len()].copy_from_slice(self.cwd.as_bytes());
        Ok(core::str::from_utf8(&out[..self.cwd.len()]).unwrap())
    }
    fn put(&mut self, path: &str, data: &[u8], append: bool) -> Result<(), FakeError> {
        let abs = self.abs(path);
        if !self.parent_is_dir(&abs) {
            return Err(FakeError::NotFound);
        }
        if !self.nodes.contains_key(&abs) && self.nodes.len() == self.room {
            return Err(FakeError::NoSpace);
        }
        let kept = if append { self.stat(path).map_or(0, |(_, size)| size as usize) } else { 0 };
        let elsewhere: usize =
            self.nodes.iter().filter(|(p, _)| **p != abs).map(|(_, n)| n.as_ref().map_or(0, Vec::len)).sum();
        if elsewhere + kept + data.len() > self.bytes_room {
            return Err(FakeError::NoSpace);
        }
        let file =
            self.nodes.entry(abs).or_insert(Some(Vec::new())).as_mut().ok_or(FakeError::NotADirectory)?;
        if !append {
            file.clear();
        }
        file.extend_from_slice(data);
        Ok(())
    }
    fn fsck(&mut self) -> Result<Report, FakeError> {
        let mut r = Report::new(self.nodes.len() as u16, 127, 18 + self.nodes.len() as u32, 512);
        for &p in &self.problems {
            r.add(p);
        }
        Ok(r)
    }
    fn format(&mut self, force: bool) -> Result<(), FakeError> {
        if !force && self.nodes.len() > 1 {
            return Err(FakeError::HoldsFiles);
        }
        self.nodes.retain(|p, _| p == "/");
        Ok(())
    }
    fn holds_files(e: &FakeError) -> bool {
        *e == FakeError::HoldsFiles
    }
}

/// A timer that either sleeps or says it woke late.
#[derive(Default)]
struct FakeClock {
    late: bool,
    /// Every sleep asked of the timer, in order.
    slices: Vec<u32>,
}

impl campaign::Clock for FakeClock {
    type Error = FakeError;

    fn now_ms(&mut self) -> Result<u64, FakeError> {
        Ok(0)
    }
    fn sleep(&mut self, ms: u32) -> Result<(), FakeError> {
        self.slices.push(ms);
        if self.late {
            Err(FakeError::Late)
        } else {
            Ok(())
        }
    }
}

#[derive(Default)]
struct Screen(RefCell<String>);

impl Console for Screen {
    fn print(&self, text: fmt::Arguments<'_>) {
        self.0.borrow_mut().push_str(&text.to_string());
    }
}

struct FakeShell {
    screen: Screen,
    fs: Option<FakeFiles>,
    clock: Option<FakeClock>,
    /// What reached the personality: `inject NAME KIND SEED`, `campaign ...`, `bench N`, `own ...`.
    calls: Vec<String>,
    /// Ctrl-C comes once the clock has slept this long.
    ctrl_c_after_ms: Option<u32>,
}

impl Shell for FakeShell {
    type Console = Screen;
    type Files = FakeFiles;
    type Clock = FakeClock;

    const HELP: crate::Help =
        crate::Help { title: "fake help", tasks: "  fake tasks", sessions: "  fake sessions" };
    const SLEEP_MAX_MS: u32 = 3_600_000;

    fn console(&self) -> &Screen {
        &self.screen
    }
    fn files(&mut self) -> (&Screen, Result<&mut FakeFiles, &'static str>) {
        (&self.screen, self.fs.as_mut().ok_or("no fake session"))
    }
    fn clock(&mut self) -> Option<&mut FakeClock> {
        self.clock.as_mut()
    }
    fn seed(&self) -> u64 {
        42
    }
    fn interrupted(&mut self) -> bool {
        let slept: u32 = self.clock.as_ref().map_or(0, |c| c.slices.iter().sum());
        self.ctrl_c_after_ms.is_some_and(|at| slept >= at)
    }
    fn inject(&mut self, name: &str, kind: &str, seed: u64) -> Status {
        self.calls.push(format!("inject {name} {kind} {seed}"));
        0
    }
    fn campaign(&mut self, name: &str, count: u32, seed: u64) -> Status {
        self.calls.push(format!("campaign {name} {count} {seed}"));
        0
    }
    fn bench(&mut self, rows: crate::BenchRows, runs: usize) -> Status {
        self.calls.push(match rows {
            crate::BenchRows::Calls => format!("bench {runs}"),
            crate::BenchRows::Disk => format!("bench disk {runs}"),
            crate::BenchRows::Grow => format!("bench grow {runs}"),
        });
        0
    }
    fn command(&mut self, cmd: &str, args: &str) -> Option<Status> {
        (cmd == "own").then(|| {
            self.calls.push(format!("own {args}"));
            7
        })
    }
}

fn shell() -> FakeShell {
    FakeShell {
        screen: Screen::default(),
        fs: Some(FakeFiles::new()),
        clock: Some(FakeClock::default()),
        calls: Vec::new(),
        ctrl_c_after_ms: None,
    }
}

impl FakeShell {
    /// Run `line`; its status and what it printed (cleared for the next line).
    fn run(&mut self, line: &str) -> (Status, String) {
        let status = run(self, line);
        (status, self.screen.0.take())
    }
}

#[test]
fn write_append_cat() {
    let mut sh = shell();
    assert_eq!(sh.run("write /a hello   world"), (0, String::new()));
    assert_eq!(sh.run("append /a more"), (0, String::new()));
    assert_eq!(sh.run("cat /a"), (0, "hello   world\nmore\n".into()));
    assert_eq!(sh.run("write /a new"), (0, String::new()));
    assert_eq!(sh.run("cat /a"), (0, "new\n".into()));
}

#[test]
fn write_makes_missing_directories() {
    let mut sh = shell();
    assert_eq!(sh.run("write /x/y/z deep"), (0, String::new()));
    assert_eq!(sh.run("cat /x/y/z"), (0, "deep\n".into()));
    assert_eq!(sh.run("ls /x"), (0, "       -  y/\n".into()));
}

#[test]
fn ls_lines_and_errors() {
    let mut sh = shell();
    sh.run("write /f abc");
    sh.run("mkdir /d");
    assert_eq!(sh.run("ls"), (0, "       -  d/\n       4  f\n".into()));
    assert_eq!(sh.run("ls /f"), (1, "error: ls: /f: not a directory\n".into()));
    assert_eq!(sh.run("ls /none"), (1, "error: ls: /none: no such file or directory\n".into()));
    // A current directory that went away (here the fake allows it) is named `.`.
    sh.run("cd /d");
    sh.fs.as_mut().unwrap().nodes.remove("/d");
    assert_eq!(sh.run("ls"), (1, "error: ls: .: no such file or directory\n".into()));
}

#[test]
fn cd_pwd_rm_mkdir() {
    let mut sh = shell();
    assert_eq!(sh.run("pwd"), (0, "/\n".into()));
    assert_eq!(sh.run("mkdir /d"), (0, String::new()));
    assert_eq!(sh.run("mkdir /d"), (1, "error: mkdir: /d: already exists\n".into()));
    assert_eq!(sh.run("cd d"), (0, String::new()));
    assert_eq!(sh.run("pwd"), (0, "/d\n".into()));
    sh.run("write f x");
    assert_eq!(sh.run("cat /d/f"), (0, "x\n".into()));
    assert_eq!(sh.run("rm f"), (0, String::new()));
    assert_eq!(sh.run("rm f"), (1, "error: rm: f: no such file or directory\n".into()));
}

#[test]
fn a_write_that_fails_leaves_no_directory_it_made() {
    let mut sh = shell();
    sh.run("mkdir /x");
    // Room for /x/y and /x/y/z, not for the file under them.
    sh.fs.as_mut().unwrap().room = 4;
    assert_eq!(sh.run("write /x/y/z/f deep"), (1, "error: write: /x/y/z/f: no space left\n".into()));
    let fs = sh.fs.as_ref().unwrap();
    assert_eq!(fs.nodes.keys().collect::<Vec<_>>(), ["/", "/x"], "/x was there before; the rest is gone");
    // With room, the same command makes them all.
    sh.fs.as_mut().unwrap().room = usize::MAX;
    assert_eq!(sh.run("write /x/y/z/f deep"), (0, String::new()));
    assert_eq!(sh.run("cat x/y/z/f"), (0, "deep\n".into()));
    assert_eq!(sh.run("append x/y/z/f deeper"), (0, String::new()));
    assert_eq!(sh.run("cat x/y/z/f"), (0, "deep\ndeeper\n".into()));
}

#[test]
fn a_text_in_pieces_that_fails_leaves_no_file_it_made() {
    let mut sh = shell();
    sh.fs.as_mut().unwrap().bytes_room = 12;
    let text = "0123456789abcdef";
    assert!(text.len() > FakeFiles::PUT_MAX && text.len() > 12);
    let error = "error: write: /d/long: no space left\n";
    assert_eq!(sh.run(&format!("write /d/long {text}")), (1, error.into()));
    assert_eq!(sh.fs.as_ref().unwrap().nodes.keys().collect::<Vec<_>>(), ["/"], "neither file nor directory");
    // A file that was there keeps what reached it; the error says the command failed.
    sh.fs.as_mut().unwrap().bytes_room = usize::MAX;
    sh.run("write /f old");
    sh.fs.as_mut().unwrap().bytes_room = 12;
    assert_eq!(sh.run(&format!("append /f {text}")).0, 1);
    assert!(sh.fs.as_ref().unwrap().nodes.contains_key("/f"));
    sh.fs.as_mut().unwrap().bytes_room = usize::MAX;
    assert_eq!(sh.run(&format!("write /f {text}")), (0, String::new()));
    assert_eq!(sh.run("cat /f"), (0, format!("{text}\n")));
}

#[test]
fn fsck_prints_what_is_in_use_or_every_problem() {
    let mut sh = shell();
    sh.run("write /f abc");
    assert_eq!(sh.run("fsck"), (0, "fsck: clean: 2 of 127 inodes, 20 of 512 blocks in use\n".into()));
    assert_eq!(sh.run("fsck now"), (1, "error: usage: fsck\n".into()));
    let problems = [Problem::LeakedInode { inode: 9 }, Problem::MarkedFree { block: 40 }];
    sh.fs.as_mut().unwrap().problems = problems.to_vec();
    let (status, out) = sh.run("fsck");
    assert_eq!(status, 1);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            format!("fsck: {}", problems[0]).as_str(),
            &format!("fsck: {}", problems[1]),
            "error: fsck: 2 problems: 2 of 127 inodes, 20 of 512 blocks in use",
        ]
    );
    // Past what a report lists, the rest are counted.
    sh.fs.as_mut().unwrap().problems = [problems[0]; fs_core::LISTED + 3].to_vec();
    let (_, out) = sh.run("fsck");
    assert!(out.contains("fsck: and 3 more\n") && out.contains(&format!("{} problems", fs_core::LISTED + 3)));
    sh.fs = None;
    assert_eq!(sh.run("fsck"), (1, "error: no fake session\n".into()));
}

#[test]
fn format_erases_files_only_when_forced_and_says_how_many() {
    let mut sh = shell();
    sh.run("write /a x");
    let refused =
        "error: format: the disk holds an Axolotl file system with 1 file or directory; `format --force` erases it\n";
    assert_eq!(sh.run("format"), (1, refused.into()));
    sh.run("mkdir /d");
    let (status, out) = sh.run("format");
    assert!(
        status == 1 && out.contains(" with 2 files and directories; `format --force` erases them\n"),
        "{out}"
    );
    assert_eq!(sh.run("cat /a"), (0, "x\n".into()), "a refused format changes nothing");
    let done = "format: the disk now holds an empty file system\n";
    assert_eq!(sh.run("format --force"), (0, done.into()));
    assert_eq!(sh.run("ls /"), (0, String::new()));
    assert_eq!(sh.run("format"), (0, done.into()), "nothing to lose: no --force needed");
    assert_eq!(sh.run("format -f"), (1, "error: usage: format [--force]\n".into()));
    sh.fs = None;
    assert_eq!(sh.run("format"), (1, "error: no fake session\n".into()));
}

#[test]
fn cat_reports_binary_chunks_and_ends_the_line() {
    let mut sh = shell();
    let fs = sh.fs.as_mut().unwrap();
    fs.nodes.insert("/bin".into(), Some([b'a', b'b', 0xff, b'c'].to_vec()));
    fs.nodes.insert("/text".into(), Some(b"no newline".to_vec()));
    assert_eq!(sh.run("cat /bin"), (0, "<4 bytes of binary data>\n".into()));
    assert_eq!(sh.run("cat /text"), (0, "no newline\n".into()));
    assert_eq!(sh.run("cat /none"), (1, "error: cat: /none: no such file or directory\n".into()));
}

#[test]
fn cat_reads_in_the_clients_chunks() {
    let mut sh = shell();
    let fs = sh.fs.as_mut().unwrap();
    fs.read_max = 2;
    fs.nodes.insert("/bin".into(), Some([b'a', b'b', 0xff, b'c'].to_vec()));
    assert_eq!(sh.run("cat /bin"), (0, "ab<2 bytes of binary data>\n".into()));
}

#[test]
fn file_command_usage_before_the_session() {
    let mut sh = shell();
    sh.fs = None;
    assert_eq!(sh.run("cat"), (1, "error: usage: cat PATH\n".into()));
    assert_eq!(sh.run("write"), (1, "error: usage: write PATH TEXT\n".into()));
    assert_eq!(sh.run("append  "), (1, "error: usage: append PATH TEXT\n".into()));
    assert_eq!(sh.run("ls"), (1, "error: no fake session\n".into()));
}

#[test]
fn help_echo_and_empty_lines() {
    let mut sh = shell();
    assert_eq!(sh.run("   "), (0, String::new()));
    let (status, help) = sh.run("help");
    assert_eq!(status, 0);
    let lines: Vec<&str> = help.lines().collect();
    assert_eq!(
        (lines[0], lines[1], lines[3]),
        ("fake help", "  help              this text", "  fake tasks")
    );
    assert!(
        lines.contains(&"  fake sessions")
            && lines.contains(&"  rm PATH           remove a file or an empty directory")
    );
    let editing = &help[help.find("\nLine editing:").expect("the editing paragraph ends help")..];
    assert!(
        editing.contains(&format!("at most {} characters", crate::LINE_MAX)),
        "the line limit, as enforced"
    );
    let at = |l: &str| lines.iter().position(|x| x.starts_with(l));
    assert!(
        at("  fake tasks") < at("  inject")
            && at("  rm PATH") < at("  format [--force]  write an empty file system")
            && at("  format") < at("  fake sessions")
            && at("  fake sessions") < at("  poweroff")
    );
    assert_eq!(sh.run("  echo  two  words "), (0, "two  words\n".into()));
}

#[test]
fn the_personalitys_commands_get_checked_arguments() {
    let mut sh = shell();
    assert_eq!(sh.run("kill fs").0, 0);
    assert_eq!(sh.run("inject fs memflip").0, 0);
    assert_eq!(sh.run("inject fs memflip 9").0, 0);
    assert_eq!(sh.run("campaign fs 10").0, 0);
    assert_eq!(sh.run("campaign fs 100000 5").0, 0);
    assert_eq!(sh.run("bench").0, 0);
    assert_eq!(sh.run("bench 4000").0, 0);
    assert_eq!(sh.run("bench disk").0, 0);
    assert_eq!(sh.run("bench disk 20").0, 0);
    assert_eq!(sh.run("bench grow").0, 0);
    assert_eq!(sh.run("bench grow 30").0, 0);
    assert_eq!(sh.run("own a  b"), (7, String::new()));
    let expected = [
        "inject fs kill 0",
        "inject fs memflip 42",
        "inject fs memflip 9",
        "campaign fs 10 1",
        "campaign fs 100000 5",
        "bench 1000",
        "bench 4000",
        "bench disk 1000",
        "bench disk 20",
        "bench grow 1000",
        "bench grow 30",
        "own a  b",
    ];
    assert_eq!(sh.calls, expected);
}

#[test]
fn bad_arguments_give_the_usage_line() {
    let mut sh = shell();
    let inject = "error: usage: inject NAME KIND [SEED]; KIND: kill regflip memflip memword skip hang ssr\n";
    let campaign = "error: usage: campaign NAME COUNT [SEED] with 1 <= COUNT <= 100000\n";
    let bench = "error: usage: bench [disk|grow] [N] with 10 <= N <= 4000\n";
    for (line, usage) in [
        ("kill", "error: usage: kill NAME\n"),
        ("inject fs", inject),
        ("inject fs kill x", inject),
        ("campaign fs", campaign),
        ("campaign fs 0", campaign),
        ("campaign fs 100001", campaign),
        ("campaign fs 5 x", campaign),
        ("bench 9", bench),
        ("bench 4001", bench),
        ("bench x", bench),
        ("bench disk 9", bench),
        ("bench diskette", bench),
        ("bench 20 disk", bench),
        ("bench grow 5", bench),
        ("bench growth", bench),
        ("bench disk grow", bench),
        ("sleep", "error: usage: sleep MS (a whole number of milliseconds)\n"),
        ("nosuch x", "error: unknown command 'nosuch' (type 'help')\n"),
    ] {
        assert_eq!(sh.run(line), (1, usage.to_string()), "{line}");
    }
    assert!(sh.calls.is_empty());
}

#[test]
fn sleep_on_the_timer_session() {
    let mut sh = shell();
    assert_eq!(sh.run("sleep 10"), (0, String::new()));
    assert_eq!(sh.run("sleep 0"), (0, String::new()));
    sh.clock = Some(FakeClock { late: true, ..FakeClock::default() });
    assert_eq!(sh.run("sleep 10"), (1, "error: sleep: woke late\n".into()));
    sh.clock = None;
    assert_eq!(sh.run("sleep 10"), (1, "error: no timer server\n".into()));
}

#[test]
fn ps_table() {
    let screen = Screen::default();
    let row = TaskRow {
        name: "fs",
        index: 3,
        generation: 2,
        state: "Ready",
        restarts: 1,
        priority: 5,
        calls: 12345,
        version: 2,
        window_left: 0,
    };
    print_task_header(&screen);
    print_task_row(&screen, &row);
    print_task_row(&screen, &TaskRow { version: 3, window_left: 7, ..row });
    print_task_row(&screen, &TaskRow { version: 0, ..row });
    assert_eq!(
        screen.0.take(),
        "NAME              ID  GEN  STATE    RESTARTS PRIO  SYSCALLS  VERSION\n\
         fs                 3    2  Ready           1    5     12345  2\n\
         fs                 3    2  Ready           1    5     12345  3 (updating: 7 requests to go)\n\
         fs                 3    2  Ready           1    5     12345  -\n"
    );
}

/// Feed `keys` to a fresh editor; the line, what was echoed, and the last edit.
fn edit(keys: &[u8]) -> (String, Vec<u8>, crate::Edit) {
    let mut editor = crate::LineEditor::default();
    let mut line = heapless::String::<8>::new();
    let mut echoed = Vec::new();
    let mut last = crate::Edit::More;
    for &k in keys {
        last = editor.key(&mut line, k, |e| echoed.extend_from_slice(e));
    }
    (line.as_str().to_string(), echoed, last)
}

#[test]
fn the_line_editor_keeps_echoes_and_erases() {
    assert_eq!(edit(b"ls /a\r"), ("ls /a".into(), b"ls /a\n".to_vec(), crate::Edit::Enter));
    assert_eq!(edit(b"lx\x7fs").0, "ls", "backspace erases one key");
    assert_eq!(edit(b"rm /a\x15pwd").0, "pwd", "Ctrl-U erases the line");
    assert_eq!(edit(b"\x1b[Apwd").0, "pwd", "an arrow key's escape sequence is swallowed");
    assert_eq!(edit(b"cat\x03"), (String::new(), b"cat^C\n".to_vec(), crate::Edit::Cancel));
    assert_eq!(edit(b"\x7f\x01a").1, b"a".to_vec(), "nothing to erase, a control key: no echo");
}

#[test]
fn a_line_longer_than_the_editor_holds_is_refused_whole() {
    let (line, echoed, last) = edit(b"0123456789\r");
    assert_eq!((line.as_str(), last), ("", crate::Edit::TooLong), "not cut: refused");
    assert_eq!(echoed, b"0123456789\n".to_vec(), "the keys were echoed");
    let (line, _, last) = edit(b"0123456789\x15ls\r");
    assert_eq!((line.as_str(), last), ("ls", crate::Edit::Enter), "Ctrl-U forgets the overflow");
    assert_eq!(edit(b"0123456789\x03").2, crate::Edit::Cancel);
    assert_eq!(edit(b"01234567\r").2, crate::Edit::Enter, "a line that just fits runs");
}

#[test]
fn escape_sequences_are_swallowed_whole_but_never_the_enter() {
    assert_eq!(edit(b"\x1b[\r").2, crate::Edit::Enter, "ESC [ then Enter: the Enter counts");
    assert_eq!(edit(b"\x1b[1;5Cls\r").0, "ls", "a CSI with parameters");
    assert_eq!(edit(b"\x1bOPls\r").0, "ls", "SS3 (F1)");
    assert_eq!(edit(b"\x1b]0;title\x07ls\r").0, "ls", "OSC ended by BEL leaks nothing");
    assert_eq!(edit(b"\x1b]0;t\x1b\\ls\r").0, "ls", "OSC ended by ST");
    assert_eq!(edit(b"\x1bPq#0\x1b\\pwd").0, "pwd", "DCS");
    assert_eq!(edit(b"\x1b]0;never ended\r").2, crate::Edit::Enter, "Enter ends a string too");
    assert_eq!(edit(b"\x1b]0;x\x03").2, crate::Edit::Cancel, "so does Ctrl-C");
    assert_eq!(edit(b"\x1bxls").0, "ls", "another two-byte escape");
}

#[test]
fn every_argument_is_accounted_for() {
    let mut sh = shell();
    let usage = |sh: &mut FakeShell, line: &str, want: &str| {
        assert_eq!(sh.run(line), (1, format!("error: usage: {want}\n")), "{line}");
    };
    usage(&mut sh, "write /a", "write PATH TEXT");
    usage(&mut sh, "append /a", "append PATH TEXT");
    usage(&mut sh, "cat /a /b", "cat PATH");
    usage(&mut sh, "mkdir /a /b", "mkdir PATH");
    usage(&mut sh, "rm /a /b", "rm PATH");
    usage(&mut sh, "cd /a /b", "cd PATH");
    usage(&mut sh, "ls /a /b", "ls [PATH]");
    usage(&mut sh, "pwd /a", "pwd");
    usage(&mut sh, "help me", "help");
    usage(&mut sh, "kill fs now", "kill NAME");
    let (status, out) = sh.run("inject fs kill 1 2");
    assert!(status == 1 && out.starts_with("error: usage: inject NAME KIND [SEED]"), "{out}");
    let (status, out) = sh.run("campaign fs 3 1 more");
    assert!(status == 1 && out.starts_with("error: usage: campaign NAME COUNT [SEED]"), "{out}");
    assert!(sh.calls.is_empty(), "nothing reached the personality: {:?}", sh.calls);
    assert_eq!(sh.run("write /a text with spaces").0, 0, "the text is the rest of the line");
}

#[test]
fn a_refused_line_runs_nothing() {
    let mut sh = shell();
    assert_eq!(
        run_line(&mut sh, crate::Edit::TooLong, "write /a x"),
        1,
        "the editor's verdict wins over what the line holds"
    );
    assert!(sh.screen.0.take().contains("line too long (at most 1024 characters): nothing was run"));
    assert_eq!(sh.run("cat /a").0, 1, "/a was not written");
    assert_eq!(run_line(&mut sh, crate::Edit::Cancel, "write /a x"), 130);
}

#[test]
fn a_sleep_goes_in_slices_that_ctrl_c_stops() {
    let mut sh = shell();
    assert_eq!(sh.run("sleep 250"), (0, String::new()));
    assert_eq!(sh.clock.as_ref().unwrap().slices, [100, 100, 50], "slept in 100 ms slices, exactly 250 ms");
    let mut sh = shell();
    sh.ctrl_c_after_ms = Some(300);
    assert_eq!(
        sh.run("sleep 100000"),
        (crate::INTERRUPTED, "^C sleep after 300 of 100000 ms: interrupted\n".into())
    );
    assert_eq!(sh.clock.as_ref().unwrap().slices.len(), 3, "no slice after the Ctrl-C");
}

#[test]
fn sleeps_are_bounded_before_they_start() {
    let mut sh = shell();
    assert_eq!(
        sh.run("sleep 4294967295"),
        (1, "error: sleep: at most 3600000 ms (one hour); 4294967295 is too long\n".into())
    );
    assert!(sh.clock.as_ref().unwrap().slices.is_empty(), "nothing slept");
    assert_eq!(sh.run("sleep 4294967296").0, 1, "past u32 is a usage error");
}

#[test]
fn an_interrupt_takes_the_keys_before_it_and_keeps_those_after() {
    let mut t = crate::Typeahead::<16>::default();
    assert!(!t.interrupt(b"ls"), "no Ctrl-C yet");
    assert_eq!(t.room(), 14, "the keys are kept");
    assert!(t.interrupt(b"\r\x03pw\x03cd"));
    let rest: Vec<u8> = core::iter::from_fn(|| t.pop()).collect();
    assert_eq!(rest, b"cd", "everything up to the last Ctrl-C went with it");
    assert!(!t.interrupt(b""), "an interrupt is reported once");
    t.push(b"\x03");
    assert_eq!(t.pop(), Some(0x03), "at the prompt, Ctrl-C is a key for the editor");
}

#[test]
fn update_takes_a_name_an_image_and_a_window_in_range() {
    let args = |name, image, window| Some(UpdateArgs { name, image, window });
    assert_eq!(update_args("fs fs-v2"), args("fs", "fs-v2", 8));
    assert_eq!(update_args(" fs  /servers/fs-v2  3 "), args("fs", "/servers/fs-v2", 3));
    assert_eq!(update_args("fs fs-v2 1000"), args("fs", "fs-v2", 1000));
    for bad in ["", "fs", "fs fs-v2 0", "fs fs-v2 1001", "fs fs-v2 x", "fs fs-v2 3 4", "fs fs-v2 -1"] {
        assert_eq!(update_args(bad), None, "{bad:?}");
    }
}

#[test]
fn audit_lines_have_the_format_cargo_os_audit_reads() {
    use crate::audit::{Declared, Spill, Summary};
    let spill = Spill {
        addr: 0x40004000,
        len: 4,
        task: &7,
        session: &5,
        request: 1,
        times: 49,
        read: "yes",
        reader: Some((&7, &6, 3)),
        symbol: &"probe::LAST_WORD.0",
        offset: 0,
    };
    assert_eq!(
        spill.to_string(),
        "audit: spill addr=0x40004000 len=4 task=7 session=5 request=1 times=49 read=yes reader_task=7 reader_session=6 reader_request=3 symbol=probe::LAST_WORD.0+0x0"
    );
    let libos = Spill {
        task: &12,
        session: &"-",
        read: "unwatched",
        reader: None,
        symbol: &"heap",
        offset: 0x29cc,
        ..spill
    };
    assert_eq!(
        libos.to_string(),
        "audit: spill addr=0x40004000 len=4 task=12 session=- request=1 times=49 read=unwatched symbol=heap+0x29cc"
    );
    let declared = Declared { addr: 0x40016040, len: 33800, changed: 3849, name: "block cache" };
    assert_eq!(
        declared.to_string(),
        "audit: declared addr=0x40016040 len=33800 changed=3849 name=block cache"
    );
    let summary = Summary {
        name: "fs",
        requests: 100,
        clients: 2,
        switches: 49,
        pages: 25,
        spill: 0,
        spill_bytes: 0,
        declared: 2,
        declared_changed: 3871,
        dropped: 0,
        clean: true,
    };
    assert_eq!(
        summary.to_string(),
        "audit fs: requests=100 clients=2 switches=49 pages=25 spill=0 spill_bytes=0 declared=2 declared_changed=3871 dropped=0 verdict=clean"
    );
    assert!(Summary { clean: false, ..summary }.to_string().ends_with("verdict=SPILL"));
}
