//! The libos shell: the microkernel shell's commands and output formats, over the cells.
//!
//! The prompt carries the last command's status: `axolotl> ` after success, `axolotl [N]> `
//! after a command that failed with status N (the host tool and the tests depend on it).
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod bench;
mod campaign;

use cell_console::Console;
use cell_fs::{mode, Fs, KIND_DIR};
use cell_timer::Timer;
use core::fmt::Write;
use fs_core::{FsError, PATH_MAX};
use libos_core::inject::{InjectError, Kind};
use libos_core::task::{self, ControlError, MAX_TASKS};

const LINE_MAX: usize = 160;
const BENCH_MAX: usize = 4000;

const HELP: &str = "\
Axolotl shell commands (libos personality):
  help              this text
  echo TEXT...      print TEXT
  ps                list tasks: name, id, generation, state, restarts, priority, and in the
                    SYSCALLS column the requests the task has answered (cell calls served)
  mem               frames, core heap bytes and page slots in use (and each task's heap)
  restart NAME [COUNT]
                    replace task NAME with a new incarnation (COUNT times, waiting for each)
  kill NAME         crash task NAME now (supervised tasks are restarted)
  inject NAME KIND [SEED]
                    inject a fault: kill regflip memflip memword skip hang ssr
  campaign NAME COUNT [SEED]
                    inject COUNT faults into NAME (fs, ramdisk, timer) under a checked workload
  ls [PATH]         list a directory
  cat PATH          print a file
  write PATH TEXT   replace a file's contents with TEXT and a newline (creates directories)
  append PATH TEXT  add TEXT and a newline to a file (creates it and its directories)
  mkdir PATH        make a directory
  rm PATH           remove a file or an empty directory
  cd PATH, pwd      change, show the current directory (kept in our fs session, which we hold)
  sleep MS          wait MS milliseconds (timer cell)
  bench [N]         time N cell calls, channel round trips, fs reads, restarts (default 1000)
  poweroff          switch the machine off
Line editing: Backspace deletes, Ctrl-U clears the line, Ctrl-C abandons it.";

/// How a command ended: 0 = success.
type Status = u32;

/// What the shell is wired to.
#[derive(Clone)]
pub struct Wiring {
    pub console: Console,
    pub fs: cell_fs::Ep,
    pub timer: cell_timer::Ep,
    pub echo: bench::EchoEp,
}

pub use bench::start_echo;

struct Shell {
    con: Console,
    w: Wiring,
    fs: Option<Fs>,
    timer: Timer,
}

macro_rules! say {
    ($sh:expr, $($arg:tt)*) => {{
        let _ = writeln!(&$sh.con, $($arg)*);
    }};
}

impl Shell {
    fn fail(&self, msg: core::fmt::Arguments<'_>) -> Status {
        say!(self, "error: {}", msg);
        1
    }

    fn run(&mut self, line: &str) -> Status {
        // The echo of the line must be on the wire before the core prints anything about it.
        self.con.flush();
        let mut words = line.split_whitespace();
        let Some(cmd) = words.next() else { return 0 };
        let rest = line.trim_start()[cmd.len()..].trim();
        match cmd {
            "help" => {
                say!(self, "{}", HELP);
                0
            }
            "echo" => {
                say!(self, "{}", rest);
                0
            }
            "ps" => self.ps(),
            "mem" => self.mem(),
            "restart" => match (words.next(), words.next().map(str::parse::<u32>)) {
                (Some(name), None) => self.restart(name, 1),
                (Some(name), Some(Ok(n))) if (1..=100_000).contains(&n) => self.restart(name, n),
                _ => self.fail(format_args!("usage: restart NAME [COUNT] with 1 <= COUNT <= 100000")),
            },
            "kill" => match words.next() {
                None => self.fail(format_args!("usage: kill NAME")),
                Some(name) => self.inject(name, "kill", 0),
            },
            "inject" => match (words.next(), words.next(), words.next().map(str::parse::<u64>)) {
                (Some(name), Some(kind), None) => self.inject(name, kind, libos_core::rdtsc()),
                (Some(name), Some(kind), Some(Ok(seed))) => self.inject(name, kind, seed),
                _ => self.fail(format_args!(
                    "usage: inject NAME KIND [SEED]; KIND: kill regflip memflip memword skip hang ssr"
                )),
            },
            "campaign" => {
                let (name, count, seed) =
                    (words.next(), words.next().map(str::parse::<u32>), words.next().map(str::parse::<u64>));
                match (name, count, seed) {
                    (Some(name), Some(Ok(count)), seed @ (None | Some(Ok(_))))
                        if (1..=100_000).contains(&count) =>
                    {
                        let seed = seed.and_then(Result::ok).unwrap_or(1);
                        if campaign::run(&self.con, &self.w, name, count, seed) {
                            0
                        } else {
                            1
                        }
                    }
                    _ => {
                        self.fail(format_args!("usage: campaign NAME COUNT [SEED] with 1 <= COUNT <= 100000"))
                    }
                }
            }
            "ls" | "cat" | "write" | "append" | "mkdir" | "rm" | "cd" | "pwd" => self.file_command(cmd, rest),
            "sleep" => match rest.parse::<u32>() {
                Ok(ms) => match self.timer.sleep(ms) {
                    Ok(()) => 0,
                    Err(e) => self.fail(format_args!("sleep: {}", e)),
                },
                Err(_) => self.fail(format_args!("usage: sleep MS (a whole number of milliseconds)")),
            },
            "bench" => {
                let n = if rest.is_empty() { Ok(1000) } else { rest.parse::<usize>() };
                match n {
                    Ok(n) if (10..=BENCH_MAX).contains(&n) => self.bench(n),
                    _ => self.fail(format_args!("usage: bench [N] with 10 <= N <= {}", BENCH_MAX)),
                }
            }
            "poweroff" => {
                say!(self, "powering off");
                self.con.flush();
                libos_core::poweroff()
            }
            _ => self.fail(format_args!("unknown command '{}' (type 'help')", cmd)),
        }
    }

    fn ps(&self) -> Status {
        say!(
            self,
            "{:<16} {:>3} {:>4}  {:<8} {:>8} {:>4} {:>9}",
            "NAME",
            "ID",
            "GEN",
            "STATE",
            "RESTARTS",
            "PRIO",
            "SYSCALLS"
        );
        for t in (0..MAX_TASKS).filter_map(task::info) {
            say!(
                self,
                "{:<16} {:>3} {:>4}  {:<8} {:>8} {:>4} {:>9}",
                t.name,
                t.index,
                t.generation,
                t.state.name(),
                t.restarts,
                t.prio,
                t.served
            );
        }
        0
    }

    fn mem(&self) -> Status {
        let u = libos_core::mem::usage();
        say!(self, "mem: frames={} core_heap={} slots={}", u.frames, u.core_heap, u.slots);
        for t in (0..MAX_TASKS).filter_map(task::info) {
            say!(self, "  {:<16} heap {:>7} bytes in use", t.name, t.heap_used);
        }
        0
    }

    fn find(&self, name: &str) -> Result<usize, Status> {
        task::find(name).ok_or_else(|| self.fail(format_args!("no task named '{}' (see 'ps')", name)))
    }

    fn inject(&self, name: &str, kind: &str, seed: u64) -> Status {
        let Some(kind) = Kind::parse(kind) else {
            return self.fail(format_args!(
                "unknown fault kind '{}': kill regflip memflip memword skip hang ssr",
                kind
            ));
        };
        let index = match self.find(name) {
            Ok(i) => i,
            Err(s) => return s,
        };
        if kind != Kind::Kill {
            self.con.flush();
        }
        match libos_core::inject::inject(index, kind, seed) {
            Ok(what) => {
                if kind == Kind::Kill {
                    // Come back when its next incarnation serves, so its report precedes our prompt.
                    task::wait_ready(index);
                } else {
                    say!(self, "injected {} into {} ({:#x})", kind.name(), name, what);
                }
                0
            }
            Err(InjectError::NotRunning) => self.fail(format_args!("{} is not running", name)),
            Err(InjectError::IsCurrent) => {
                self.fail(format_args!("the shell does not inject into itself (try kill shell)"))
            }
            Err(InjectError::NoTarget) => {
                self.fail(format_args!("nothing to hit in {} (no client-held state)", name))
            }
            Err(InjectError::NoSuchTask) => {
                self.fail(format_args!("cannot inject into {}: not a supervised task", name))
            }
        }
    }

    fn restart(&self, name: &str, count: u32) -> Status {
        let index = match self.find(name) {
            Ok(i) => i,
            Err(s) => return s,
        };
        if count == 1 {
            return match task::restart(index) {
                Ok(generation) => {
                    task::wait_ready(index);
                    say!(self, "restarted {} as generation {}", name, generation);
                    0
                }
                Err(e) => self.fail(format_args!("cannot restart {}: {}", name, control_error(e))),
            };
        }
        self.con.flush();
        task::set_quiet(true);
        let mut result: Result<u32, ControlError> = Ok(0);
        for _ in 0..count {
            result = task::restart(index);
            if result.is_err() {
                break;
            }
            task::wait_ready(index);
        }
        task::set_quiet(false);
        match result {
            Ok(generation) => {
                say!(self, "restarted {} {} times; now generation {}", name, count, generation);
                0
            }
            Err(e) => self.fail(format_args!("cannot restart {}: {}", name, control_error(e))),
        }
    }

    fn file_command(&mut self, cmd: &str, rest: &str) -> Status {
        let (path, text) = match rest.split_once(char::is_whitespace) {
            Some((p, t)) => (p, t.trim_start()),
            None => (rest, ""),
        };
        if !matches!(cmd, "ls" | "pwd") && path.is_empty() {
            let text_arg = if cmd == "write" || cmd == "append" { " TEXT" } else { "" };
            return self.fail(format_args!("usage: {} PATH{}", cmd, text_arg));
        }
        if self.fs.is_none() {
            self.fs = Fs::connect(self.w.fs).ok();
        }
        let con = self.con.clone();
        let Some(fs) = self.fs.as_mut() else {
            return self.fail(format_args!("no file system session"));
        };
        let result = match cmd {
            "ls" => ls(&con, fs, if path.is_empty() { "." } else { path }),
            "cat" => cat(&con, fs, path),
            "write" => put(fs, path, text, mode::WRITE | mode::CREATE | mode::TRUNCATE),
            "append" => put(fs, path, text, mode::WRITE | mode::APPEND | mode::CREATE),
            "mkdir" => fs.mkdir(path),
            "rm" => fs.remove(path),
            "cd" => fs.chdir(path),
            _ => {
                let mut buf = [0u8; PATH_MAX];
                fs.cwd(&mut buf).map(|p| {
                    let _ = writeln!(&con, "{}", p);
                })
            }
        };
        match result {
            Ok(()) => 0,
            Err(e) => self.fail(format_args!("{}: {}: {}", cmd, path, e)),
        }
    }

    fn bench(&mut self, n: usize) -> Status {
        if self.fs.is_none() {
            self.fs = Fs::connect(self.w.fs).ok();
        }
        let Some(fs) = self.fs.as_mut() else {
            return self.fail(format_args!("no file system session"));
        };
        match bench::run(&self.con, &self.w, fs, n) {
            Ok(()) => 0,
            Err(e) => self.fail(format_args!("bench: {}", e)),
        }
    }

    /// Read one line with editing; `None` if it was abandoned with Ctrl-C.
    fn read_line(&self, line: &mut heapless::String<LINE_MAX>) -> Option<()> {
        line.clear();
        let mut escape = 0u8;
        loop {
            let b = self.con.read_key();
            // Swallow ANSI escape sequences (arrow keys): ESC [ ... final byte.
            if escape == 1 {
                escape = if b == b'[' { 2 } else { 0 };
                continue;
            }
            if escape == 2 {
                if (0x40..=0x7e).contains(&b) {
                    escape = 0;
                }
                continue;
            }
            match b {
                b'\r' | b'\n' => {
                    self.con.write(b"\n");
                    return Some(());
                }
                0x1b => escape = 1,
                0x08 | 0x7f if line.pop().is_some() => self.con.write(b"\x08 \x08"),
                0x15 => {
                    for _ in 0..line.len() {
                        self.con.write(b"\x08 \x08");
                    }
                    line.clear();
                }
                0x03 => {
                    self.con.write(b"^C\n");
                    line.clear();
                    return None;
                }
                0x20..=0x7e if line.push(b as char).is_ok() => self.con.write(&[b]),
                _ => {}
            }
        }
    }
}

fn control_error(e: ControlError) -> &'static str {
    match e {
        ControlError::NoSuchTask => "not a supervised task",
        ControlError::IsCurrent => "the shell cannot restart itself (try kill shell)",
        ControlError::OutOfMemory => "out of memory",
    }
}

fn ls(con: &Console, fs: &mut Fs, path: &str) -> Result<(), FsError> {
    let (kind, _) = fs.stat(path)?;
    if kind != KIND_DIR {
        return Err(FsError::NotADirectory);
    }
    let mut i = 0;
    while let Some(e) = fs.entry(path, i)? {
        if e.kind == KIND_DIR {
            let _ = writeln!(&*con, "{:>8}  {}/", "-", e.name());
        } else {
            let _ = writeln!(&*con, "{:>8}  {}", e.size, e.name());
        }
        i += 1;
    }
    Ok(())
}

fn cat(con: &Console, fs: &mut Fs, path: &str) -> Result<(), FsError> {
    let fd = fs.open(path, mode::READ)?;
    let mut buf = [0u8; cell_fs::IO_MAX];
    let mut last = b'\n';
    let result = loop {
        match fs.read(fd, &mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                last = buf[n - 1];
                match core::str::from_utf8(&buf[..n]) {
                    Ok(text) => {
                        let _ = write!(&*con, "{}", text);
                    }
                    Err(_) => {
                        let _ = write!(&*con, "<{} bytes of binary data>", n);
                    }
                }
            }
            Err(e) => break Err(e),
        }
    };
    if last != b'\n' {
        let _ = writeln!(&*con);
    }
    let _ = fs.close(fd);
    result
}

/// Write `text` and a newline to `path` with open mode `m`, creating missing directories.
fn put(fs: &mut Fs, path: &str, text: &str, m: u8) -> Result<(), FsError> {
    let fd = match fs.open(path, m) {
        Err(FsError::NotFound) => {
            for (i, b) in path.bytes().enumerate() {
                if b == b'/' && i > 0 {
                    match fs.mkdir(&path[..i]) {
                        Ok(()) | Err(FsError::Exists) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            fs.open(path, m)?
        }
        other => other?,
    };
    let mut result = fs.write(fd, text.as_bytes());
    if result.is_ok() {
        result = fs.write(fd, b"\n");
    }
    let _ = fs.close(fd);
    result
}

/// Spawn the shell task.
pub fn start(w: Wiring) -> Result<libos_core::TaskId, libos_core::task::SpawnError> {
    libos_core::spawn("shell", 5, true, move || {
        let mut shell =
            Shell { con: w.console.clone(), w: w.clone(), fs: Fs::connect(w.fs).ok(), timer: Timer(w.timer) };
        say!(shell, "\nAxolotl shell (libos personality). Type 'help' for commands.");
        let mut status: Status = 0;
        let mut line = heapless::String::<LINE_MAX>::new();
        loop {
            if status == 0 {
                let _ = write!(&shell.con, "axolotl> ");
            } else {
                let _ = write!(&shell.con, "axolotl [{}]> ", status);
            }
            if shell.read_line(&mut line).is_none() {
                status = 130;
                continue;
            }
            status = shell.run(&line);
        }
    })
}
