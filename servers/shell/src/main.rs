//! The Axolotl shell: reads lines from the console server, runs built-in commands.
//!
//! The prompt carries the last command's status, so scripts driving the serial line (such as
//! `cargo os run --exec`) can tell success from failure: `axolotl> ` after success,
//! `axolotl [N]> ` after a command that failed with status N.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use clients::{Clock, Files};
use console_api::{print, println, Console};
use fs_api::Fs;
use shellcmd::{Console as _, Status, TaskRow, LINE_MAX};
use timer_api::Timer;
use userlib::abi::{BootInfo, Error, FaultKind, InjectKind, TaskInfo, TaskState, TASK_PAUSED};
use userlib::cap::{Cap, Endpoint, IoPort, Memory, Session, Task};
use x86::qemu::{DEBUG_EXIT_PORT, DEBUG_EXIT_POWEROFF};

mod audit;
mod bench;
mod campaign;
mod clients;

/// Task table size of the kernel (`task_info` answers InvalidArgument past it).
const MAX_TASKS: usize = 32;

/// This shell's own lines of `help`; `shellcmd` puts the shared ones around them.
const HELP: shellcmd::Help = shellcmd::Help {
    title: "Axolotl shell commands:",
    tasks: "  ps                list tasks: name, id, generation, state, restarts, priority, syscalls
  mem               free frames, and the frames each task's address space owns
  start NAME        start a task the manifest loaded dormant (again, if it stopped)
  wait NAME         wait until task NAME stops, print how it ended
  run NAME          start NAME and wait for it (e.g. `run hostile`, `run ssrtest`)
  restart NAME      replace task NAME with a new incarnation from its pristine image
  kill NAME         crash task NAME now (the reincarnation server restarts supervised tasks)
  pause NAME        stop scheduling task NAME (what it waits for still happens); ps: paused
  resume NAME       schedule a paused task again
  audit NAME [REQUESTS]
                    state-spill audit: drive server NAME with two clients' requests and
                    report what a request left changed in its memory (default 200)
  requests          the requests this shell's fs session has made (fs version 2 counts them)
  slept             the sleeps this shell's timer session began (timer version 2 counts them)
  tty               the bytes the console wrote and read (console version 2 counts them)
  update NAME PATH [WINDOW]
                    replace server NAME with the version in file PATH while its clients
                    wait; it rolls back if the new one fails before answering WINDOW
                    requests (default 8)",
    sessions: "  cd PATH, pwd      change, show the current directory (kept in the fs server's SSR for us)
  fsck              check the fs server's disk: what is in use, or every problem found
  sleep MS          wait MS milliseconds, at most one hour (timer server)
  bench [N]         time N runs of: null protected call, call with an SSR word, 64-byte
                    fs read, fs restart (at most 50); default 1000
  bench disk [N]    time N runs of: 4 KiB read and write through the disk driver, 64-byte
                    fs read from the disk, driver restart (at most 50); needs a disk
  bench grow [N]    how costs grow: calls with 0 to 4096 bytes of payload, fs reads of
                    64 B to 64 KiB, fs restart with 1, 8 and 64 sessions open (at most 50)",
};

struct Shell {
    console: Console,
    tasks: Option<Cap<Task>>,
    power: Option<Cap<IoPort>>,
    fs: Option<Files>,
    timer: Option<Clock>,
    bench: Option<(Cap<Endpoint>, Cap<Session>)>,
    /// The file server's endpoint, for `bench grow` (which opens more sessions with it).
    fs_ep: Option<Cap<Endpoint>>,
    /// Memory where `update` puts a server's new image.
    staging: Option<Cap<Memory>>,
    /// TSC ticks per millisecond (the kernel's measure).
    tsc_per_ms: u64,
    /// The disk driver, for `bench disk` (the shell reads and rewrites the disk's last 4 KiB).
    disk: Option<block_api::BlockDevice>,
    /// Keys read from the console but not yet edited into a line.
    typeahead: shellcmd::Typeahead<TYPEAHEAD>,
    /// The TSC when the first incarnation of the shell showed its first prompt: the machine's
    /// boot (`bench`'s `mk.boot`). `None` in a later incarnation.
    booted: Option<u64>,
    /// The TSC when the kernel was entered (the boot info's).
    boot_tsc: u64,
}

/// Keys the shell takes from the console at once, and holds until it edits them.
const TYPEAHEAD: usize = 64;

/// How long `update` waits for a busy server to come to its receive point.
const UPDATE_DEADLINE_MS: u64 = fault::update::BUSY_DEADLINE_MS;

/// Read file `path` into the staging memory (mapped for the read, unmapped after); its length.
pub(crate) fn read_image(fs: Fs, staging: Cap<Memory>, path: &str) -> Result<usize, &'static str> {
    let map = staging.map(STAGING_AT, true).map_err(|e| e.describe())?;
    let fd = fs.open(path, fs_api::mode::READ);
    let result = fd.map_err(fs_api::FsError::describe).and_then(|fd| {
        let mut len = 0;
        let r = loop {
            match fs.read(fd, &mut map.bytes[len..]) {
                Ok(0) => break Ok(len),
                Ok(n) => len += n,
                Err(e) => break Err(e.describe()),
            }
            if len == map.bytes.len() {
                // A byte more would not fit: say so rather than update from a truncated image.
                let mut probe = [0u8; 1];
                break match fs.read(fd, &mut probe) {
                    Ok(0) => Ok(len),
                    _ => Err("larger than the staging memory (512 KiB)"),
                };
            }
        };
        let _ = fs.close(fd);
        r
    });
    let _ = map.unmap();
    match result {
        Ok(0) => Err("the file is empty"),
        other => other,
    }
}

/// Where the shell maps its staging memory while it reads an image into it.
const STAGING_AT: u64 = userlib::abi::MAP_BASE;

/// Capability slots where the shell keeps its sessions.
const FS_SLOT: u8 = 40;
const TIMER_SLOT: u8 = 41;
const BENCH_SLOT: u8 = 42;
/// How often `wait` and `run` look at the task they wait for (and for Ctrl-C).
const WAIT_POLL_MS: u32 = 20;

/// Where the shell's lines go: the console server, through `console_api`'s `print!`.
struct Out;

impl shellcmd::Console for Out {
    fn print(&self, text: core::fmt::Arguments<'_>) {
        print!("{}", text);
    }
}

/// The commands both personalities share run in `shellcmd`; these are the microkernel's.
impl shellcmd::Shell for Shell {
    type Console = Out;
    type Files = Files;
    type Clock = Clock;

    const HELP: shellcmd::Help = HELP;
    const SLEEP_MAX_MS: u32 = timer_api::MAX_SLEEP_MS;

    fn console(&self) -> &Out {
        &Out
    }

    fn files(&mut self) -> (&Out, Result<&mut Files, &'static str>) {
        (&Out, self.fs.as_mut().ok_or("no file server session"))
    }

    fn clock(&mut self) -> Option<&mut Clock> {
        self.timer.as_mut()
    }

    fn seed(&self) -> u64 {
        userlib::sys::rdtsc()
    }

    fn interrupted(&mut self) -> bool {
        let mut keys = [0u8; TYPEAHEAD];
        let room = self.typeahead.room();
        let n = self.console.poll(&mut keys[..room]).unwrap_or(0);
        self.typeahead.interrupt(&keys[..n.min(room)])
    }

    fn inject(&mut self, name: &str, kind: &str, seed: u64) -> Status {
        let tasks = match self.task_cap() {
            Ok(t) => t,
            Err(s) => return s,
        };
        let Some(kind) = InjectKind::parse(kind) else {
            return Out.fail(format_args!(
                "unknown fault kind '{}': kill regflip memflip memword skip hang ssr",
                kind
            ));
        };
        let Some(index) = tasks.find(name) else {
            return Out.fail(format_args!("no task named '{}' (see 'ps')", name));
        };
        match tasks.inject(index, kind, seed) {
            Ok(what) => {
                if kind != InjectKind::Kill {
                    println!("injected {} into {} ({:#x})", kind.name(), name, what);
                }
                0
            }
            Err(Error::AlreadyDone) => Out.fail(format_args!("{} is not running", name)),
            Err(Error::NothingToHit) => {
                Out.fail(format_args!("nothing to hit in {}: it keeps no client state", name))
            }
            Err(e) => Out.fail(format_args!("cannot inject into {}: {}", name, e)),
        }
    }

    fn campaign(&mut self, name: &str, count: u32, seed: u64) -> Status {
        match self.task_cap() {
            Ok(tasks) => {
                let ep = |n| Cap::<Endpoint>::from_boot(userlib::rt::boot_info(), n);
                let (fs, timer) = (ep("fs"), ep("timer"));
                let interrupted = &mut || shellcmd::Shell::interrupted(self);
                let w = campaign::Wiring { tasks, fs, timer, interrupted };
                match campaign::run(w, name, count, seed) {
                    ::campaign::Ended::Ran => 0,
                    ::campaign::Ended::Interrupted => shellcmd::INTERRUPTED,
                    ::campaign::Ended::NotRun => 1,
                }
            }
            Err(s) => s,
        }
    }

    fn bench(&mut self, rows: shellcmd::BenchRows, n: usize) -> Status {
        match rows {
            shellcmd::BenchRows::Calls => bench::calls(self, n),
            shellcmd::BenchRows::Disk => bench::disk(self, n),
            shellcmd::BenchRows::Grow => bench::grow(self, n),
        }
    }

    fn command(&mut self, cmd: &str, args: &str) -> Option<Status> {
        let mut words = args.split_whitespace();
        Some(match cmd {
            "ps" => self.ps(),
            "mem" => self.mem(),
            "start" | "wait" | "run" => match words.next() {
                None => Out.fail(format_args!("usage: {} NAME", cmd)),
                Some(name) => self.control(cmd, name),
            },
            "restart" => match words.next() {
                None => Out.fail(format_args!("usage: restart NAME")),
                Some(name) => self.restart(name),
            },
            "pause" | "resume" => match (words.next(), words.next()) {
                (Some(name), None) => self.pause(name, cmd == "pause"),
                _ => Out.fail(format_args!("usage: {} NAME", cmd)),
            },
            "update" => match shellcmd::update_args(args) {
                Some(u) => self.update(u.name, u.image, u.window),
                None => Out.fail(format_args!("{}", shellcmd::UPDATE_USAGE)),
            },
            "requests" => match self.fs {
                Some(Files(fs)) => match fs.requests() {
                    Ok(n) => {
                        println!(
                            "this shell's fs session has made {} requests (counted since fs version 2)",
                            n
                        );
                        0
                    }
                    Err(fs_api::FsError::Malformed) => Out.fail(format_args!(
                        "requests: this fs does not count them (version 2 does: see `update`)"
                    )),
                    Err(e) => Out.fail(format_args!("requests: {}", e.describe())),
                },
                None => Out.fail(format_args!("no file system session")),
            },
            "audit" => match (words.next(), words.next(), words.next()) {
                (Some("--help"), None, None) | (None, _, _) => audit_usage(),
                (Some(name), requests, None) => match requests.map(str::parse::<u32>) {
                    None => self.audit(name, audit::DEFAULT_REQUESTS),
                    Some(Ok(n)) if (2..=audit::MAX_REQUESTS).contains(&n) => self.audit(name, n),
                    Some(_) => audit_usage(),
                },
                _ => audit_usage(),
            },
            "slept" => match self.timer {
                Some(Clock(timer)) => match timer.slept() {
                    Ok((sleeps, ms)) => {
                        println!(
                            "this shell's timer session has begun {} sleeps, {} ms in all (counted since timer version 2)",
                            sleeps, ms
                        );
                        0
                    }
                    Err(timer_api::TimerError::Malformed) => Out.fail(format_args!(
                        "slept: this timer does not count sleeps (version 2 does: see `update`)"
                    )),
                    Err(e) => Out.fail(format_args!("slept: {}", e)),
                },
                None => Out.fail(format_args!("no timer server")),
            },
            "tty" => match self.console.counts() {
                Ok((written, read)) => {
                    println!(
                        "the console has written {} bytes and read {} since it started (console version 2 counts them)",
                        written, read
                    );
                    0
                }
                Err(console_api::ConsoleError::Malformed) => Out.fail(format_args!(
                    "tty: this console does not count its bytes (version 2 does: see `update`)"
                )),
                Err(e) => Out.fail(format_args!("tty: {:?}", e)),
            },
            "poweroff" => self.poweroff(),
            _ => return None,
        })
    }
}

fn audit_usage() -> Status {
    Out.fail(format_args!(
        "usage: audit NAME [REQUESTS]: audit server NAME ({}) for state spill over REQUESTS requests of two or more clients (2 to {}, default {})",
        audit::SERVERS,
        audit::MAX_REQUESTS,
        audit::DEFAULT_REQUESTS
    ))
}

impl Shell {
    fn audit(&mut self, name: &str, requests: u32) -> Status {
        match self.task_cap() {
            Ok(tasks) => {
                let interrupted = &mut || shellcmd::Shell::interrupted(self);
                audit::run(tasks, name, requests, interrupted)
            }
            Err(s) => s,
        }
    }

    fn task_cap(&self) -> Result<Cap<Task>, Status> {
        self.tasks.ok_or_else(|| Out.fail(format_args!("this shell holds no task capability")))
    }

    fn infos(&self, tasks: Cap<Task>) -> impl Iterator<Item = TaskInfo> {
        (0..MAX_TASKS).filter_map(move |i| tasks.info(i).ok()).filter(|t| t.state() != Some(TaskState::Free))
    }

    fn ps(&self) -> Status {
        let tasks = match self.task_cap() {
            Ok(t) => t,
            Err(s) => return s,
        };
        shellcmd::print_task_header(&Out);
        for t in self.infos(tasks) {
            let row = TaskRow {
                name: t.name(),
                index: t.index as usize,
                generation: t.generation,
                state: match t.state() {
                    _ if t.flags & TASK_PAUSED != 0 => "paused",
                    Some(s) => s.name(),
                    None => "?",
                },
                restarts: t.restarts,
                priority: t.priority,
                calls: t.syscalls,
                version: t.version,
                window_left: t.window_left,
            };
            shellcmd::print_task_row(&Out, &row);
        }
        0
    }

    /// `mem`: the machine's free frames, and each task's (what its address space owns, freed
    /// when it dies), from one `task_info` each, so that the total is the sum of the lines: a
    /// restart that leaks shows as free frames lost.
    fn mem(&self) -> Status {
        let tasks = match self.task_cap() {
            Ok(t) => t,
            Err(s) => return s,
        };
        let infos: heapless::Vec<TaskInfo, MAX_TASKS> = (0..MAX_TASKS)
            .filter_map(|i| tasks.info_with_frames(i).ok())
            .filter(|t| t.state() != Some(TaskState::Free))
            .collect();
        let kib = |frames: u32| u64::from(frames) * 4;
        let Some(free) = infos.last().map(|t| t.free_frames) else {
            return Out.fail(format_args!("mem: no task to ask"));
        };
        let held = infos.iter().map(|t| t.frames).sum::<u32>();
        println!("mem: free_frames={} ({} KiB) task_frames={} ({} KiB)", free, kib(free), held, kib(held));
        for t in &infos {
            println!("  {:<16} frames {:>6} ({} KiB)", t.name(), t.frames, kib(t.frames));
        }
        0
    }

    /// `pause NAME` / `resume NAME`. Not the console server: this shell could then not print,
    /// nor read the `resume` that would undo it.
    fn pause(&mut self, name: &str, on: bool) -> Status {
        let tasks = match self.task_cap() {
            Ok(t) => t,
            Err(s) => return s,
        };
        let Some(target) = self.infos(tasks).find(|t| t.name() == name) else {
            return Out.fail(format_args!("no task named '{}' (see 'ps')", name));
        };
        if on && name == "console" {
            return Out
                .fail(format_args!("pause: not the console server (this shell talks to you through it)"));
        }
        match tasks.pause(target.index as usize, on) {
            Ok(()) => {
                println!("{} {} (task {})", if on { "paused" } else { "resumed" }, name, target.index);
                0
            }
            Err(Error::WouldDeadlock) => Out.fail(format_args!("pause: not this shell itself")),
            Err(e) => {
                Out.fail(format_args!("cannot {} {}: {}", if on { "pause" } else { "resume" }, name, e))
            }
        }
    }

    fn control(&mut self, cmd: &str, name: &str) -> Status {
        let tasks = match self.task_cap() {
            Ok(t) => t,
            Err(s) => return s,
        };
        let Some(target) = self.infos(tasks).find(|t| t.name() == name) else {
            return Out.fail(format_args!("no task named '{}' (see 'ps')", name));
        };
        let index = target.index as usize;
        if cmd != "wait" {
            // A task that ran and stopped starts again as a new incarnation; one the manifest
            // left dormant starts for the first time.
            let stopped = matches!(target.state(), Some(TaskState::Exited | TaskState::Faulted));
            let started = if stopped { tasks.restart(index).map(|_| ()) } else { tasks.start(index) };
            if let Err(e) = started {
                return Out.fail(format_args!("cannot start {}: {}", name, e));
            }
            println!("started {} (task {})", name, index);
        }
        if cmd == "start" {
            return 0;
        }
        // Poll rather than block in `task_wait`, so that Ctrl-C can end the wait; a supervised
        // task may stop and be restarted between two looks, which its generation shows.
        let generation = match tasks.info(index) {
            Ok(info) => info.generation,
            Err(e) => return Out.fail(format_args!("cannot wait for {}: {}", name, e)),
        };
        loop {
            match tasks.info(index) {
                Ok(info) if info.state().is_some_and(TaskState::is_stopped) => break,
                Ok(info) if info.generation != generation => {
                    println!("{} stopped and was restarted (now generation {})", name, info.generation);
                    return 0;
                }
                Ok(_) => {}
                Err(e) => return Out.fail(format_args!("cannot wait for {}: {}", name, e)),
            }
            if shellcmd::Shell::interrupted(self) {
                return shellcmd::interrupted(&Out, format_args!("wait for {}", name));
            }
            match self.timer.as_mut() {
                Some(Clock(timer)) if timer.sleep(WAIT_POLL_MS).is_ok() => {}
                _ => userlib::sys::yield_now(),
            }
        }
        match tasks.wait(index) {
            Ok((code, state)) if state == TaskState::Exited as u64 => {
                println!("{} exited with code {}", name, code as i64);
                0
            }
            Ok((code, _)) => {
                println!("{} faulted ({})", name, fault_name(code));
                0
            }
            Err(e) => Out.fail(format_args!("cannot wait for {}: {}", name, e)),
        }
    }

    fn restart(&self, name: &str) -> Status {
        let tasks = match self.task_cap() {
            Ok(t) => t,
            Err(s) => return s,
        };
        let Some(index) = tasks.find(name) else {
            return Out.fail(format_args!("no task named '{}' (see 'ps')", name));
        };
        match tasks.restart(index) {
            Ok(generation) => {
                println!("restarted {} as generation {}", name, generation);
                0
            }
            Err(e) => Out.fail(format_args!("cannot restart {}: {}", name, e)),
        }
    }

    /// `update NAME PATH [WINDOW]`: replace server NAME with the version in file PATH (an ELF
    /// image declaring `userlib::version!`), read into the staging memory, while its clients
    /// wait. If NAME is serving a request, try again until [`UPDATE_DEADLINE_MS`] has passed.
    fn update(&mut self, name: &str, path: &str, window: u32) -> Status {
        let tasks = match self.task_cap() {
            Ok(t) => t,
            Err(s) => return s,
        };
        let (Some(staging), Some(Files(fs))) = (self.staging, self.fs) else {
            return Out.fail(format_args!("update needs the staging memory and a file system session"));
        };
        let Some(before) = self.infos(tasks).find(|t| t.name() == name) else {
            return Out.fail(format_args!("no task named '{}' (see 'ps')", name));
        };
        let index = before.index as usize;
        let t0 = userlib::sys::rdtsc();
        let len = match read_image(fs, staging, path) {
            Ok(len) => len,
            Err(e) => return Out.fail(format_args!("update {}: {}: {}", name, path, e)),
        };
        let read = userlib::sys::rdtsc() - t0;
        let deadline = t0 + UPDATE_DEADLINE_MS * self.tsc_per_ms;
        let generation = loop {
            match tasks.update(index, staging, len, window) {
                Ok(g) => break g,
                // Not a sleep on the timer: the timer may be the server that is busy.
                Err(Error::Busy) if userlib::sys::rdtsc() < deadline => userlib::sys::yield_now(),
                Err(Error::Busy) => {
                    return Out.fail(format_args!(
                        "update {}: it stayed busy serving requests for {} ms; not updated (nothing changed)",
                        name, UPDATE_DEADLINE_MS
                    ))
                }
                Err(e) => return Out.fail(format_args!("update {}: refused, nothing changed: {}", name, e)),
            }
        };
        // Serving: the new incarnation waits for its first request.
        let info = loop {
            match tasks.info(index) {
                Ok(i) if i.generation == generation && i.state() == Some(TaskState::Receiving) => {
                    break Some(i)
                }
                Ok(i) if i.generation != generation => break None,
                Ok(_) => userlib::sys::yield_now(),
                Err(e) => return Out.fail(format_args!("update {}: {}", name, e)),
            }
        };
        let Some(info) = info else {
            let now = tasks.info(index).map(|i| (i.generation, i.version)).unwrap_or_default();
            return Out.fail(format_args!(
                "update {}: the new version failed at once; rolled back (now generation {}, version {})",
                name, now.0, now.1
            ));
        };
        let per_us = (self.tsc_per_ms / 1000).max(1);
        println!(
            "updated {} from version {} to {} (generation {}): {} bytes read from {} in {} us; serving {} TSC ticks ({} us) after the switch; the old version comes back if this one fails before answering {} request(s)",
            name,
            before.version,
            info.version,
            generation,
            len,
            path,
            read / per_us,
            info.recovery_tsc,
            info.recovery_tsc / per_us,
            window
        );
        0
    }

    fn poweroff(&self) -> Status {
        let Some(port) = self.power else {
            return Out.fail(format_args!("this shell holds no power-off capability"));
        };
        if let Err(e) = port.enable() {
            if e != Error::AlreadyDone {
                return Out.fail(format_args!("cannot open the power-off port: {}", e));
            }
        }
        println!("powering off");
        // The kernel opened this port to us; writing it makes QEMU exit.
        userlib::sys::outb(DEBUG_EXIT_PORT, DEBUG_EXIT_POWEROFF);
        Out.fail(format_args!("the machine did not power off (no isa-debug-exit device?)"))
    }

    /// Read one line at the prompt into `line`, with editing; returns how it ended (Enter,
    /// Ctrl-C, too long). Keys typed ahead (pasted lines, or typed while a command ran) arrive
    /// in the same console read as the end of this line: they stay in `typeahead` for the next
    /// call instead of being dropped.
    fn read_line(&mut self, line: &mut heapless::String<LINE_MAX>) -> shellcmd::Edit {
        line.clear();
        let mut editor = shellcmd::LineEditor::default();
        loop {
            if self.typeahead.is_empty() {
                let mut buf = [0u8; TYPEAHEAD];
                match self.console.read(&mut buf) {
                    Ok(n) => self.typeahead.push(&buf[..n.min(TYPEAHEAD)]),
                    Err(_) => {
                        userlib::sys::yield_now();
                        continue;
                    }
                }
            }
            while let Some(b) = self.typeahead.pop() {
                match editor.key(line, b, |echo| {
                    let _ = self.console.write(echo);
                }) {
                    shellcmd::Edit::More => {}
                    done => return done,
                }
            }
        }
    }
}

/// Why a task stopped, from the code `task_wait` returns for a faulted task: the exception
/// vector, or 0x100 plus the kind of any other fault (see the kernel's `lifecycle`).
fn fault_name(code: u64) -> &'static str {
    match code.checked_sub(0x100) {
        Some(kind) => FaultKind::from_raw(kind as u32).map_or("fault", FaultKind::name),
        None => x86::exception::name(code),
    }
}

userlib::entry!(main);

fn main(boot: &'static BootInfo) -> Result<(), Error> {
    let console = Console::from_boot().ok_or(Error::EmptySlot)?;
    let endpoint = |name| Cap::<Endpoint>::from_boot(boot, name);
    let mut shell = Shell {
        console,
        tasks: Cap::<Task>::from_boot(boot, "all"),
        power: Cap::<IoPort>::from_boot(boot, "debug-exit"),
        fs: endpoint("fs").and_then(|ep| Fs::connect(ep, FS_SLOT).ok()).map(Files),
        timer: endpoint("timer").and_then(|ep| Timer::connect(ep, TIMER_SLOT).ok()).map(Clock),
        bench: endpoint("bench").and_then(|ep| ep.connect(BENCH_SLOT).ok().map(|s| (ep, s))),
        fs_ep: endpoint("fs"),
        staging: Cap::<Memory>::from_boot(boot, "staging"),
        tsc_per_ms: boot.tsc_per_ms,
        disk: endpoint("disk").map(block_api::BlockDevice::new),
        typeahead: shellcmd::Typeahead::default(),
        booted: None,
        boot_tsc: boot.boot_tsc,
    };
    console_api::init_log(log::LevelFilter::Info);
    log::info!("started with {} capabilities", boot.caps().len());
    println!("\nAxolotl shell. Type 'help' for commands.");
    let mut status: Status = 0;
    let mut prompt = shellcmd::Prompt::default();
    let mut line = heapless::String::<LINE_MAX>::new();
    if boot.generation == 0 {
        shell.booted = Some(userlib::sys::rdtsc());
    }
    loop {
        prompt.print(&Out, status);
        let edit = shell.read_line(&mut line);
        status = prompt.run_line(&mut shell, edit, &line);
    }
}
