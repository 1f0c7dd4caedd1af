//! The libos shell: the microkernel shell's commands and output formats, over the cells.
//!
//! The prompt carries the last command's status: `axolotl> ` after success, `axolotl [N]> `
//! after a command that failed with status N (the host tool and the tests depend on it).
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod audit;
mod bench;
mod campaign;
mod clients;
mod scribe;

use cell_console::Console;
use cell_fs::Fs;
use cell_timer::Timer;
use clients::{Clock, Files};
use core::fmt::Write;
use fault::update::BUSY_DEADLINE_MS;
use fs_core::FsError;
use libos_kernel::{ControlError, InjectError, InjectKind, Privilege, UpdateError, MAX_TASKS};
use shellcmd::{Console as _, Status, TaskRow, LINE_MAX};

/// This shell's own lines of `help`; `shellcmd` puts the shared ones around them.
const HELP: shellcmd::Help = shellcmd::Help {
    title: "Axolotl shell commands (libos personality):",
    tasks: "  ps                list tasks: name, id, generation, state, restarts, priority, and in the
                    SYSCALLS column the requests the task has answered (cell calls served)
  mem               frames, kernel heap bytes and page slots in use (and each task's heap)
  restart NAME [COUNT]
                    replace task NAME with a new incarnation (COUNT times, waiting for each)
  kill NAME         crash task NAME now (supervised tasks are restarted)
  audit NAME [REQUESTS]
                    state-spill audit of cell NAME: two client tasks take turns until it
                    took REQUESTS requests (default 200); what one left changed in its
                    memory when the other came is spill, unless the cell declared it
  pause NAME        stop scheduling task NAME (what it waits for still happens); ps: paused
  resume NAME       schedule a paused task again
  requests          the requests this shell's fs session has made (fs version 2 counts them)
  update NAME VERSION [WINDOW]
                    switch cell NAME to VERSION, staged in the image (e.g. fs-v2; `update
                    NAME` lists them), while its clients wait; it rolls back if the new one
                    fails before answering WINDOW requests (default 8)",
    sessions: "  cd PATH, pwd      change, show the current directory (kept in our fs session, which we hold)
  fsck              check the fs cell's disk: what is in use, or every problem found
  sleep MS          wait MS milliseconds, at most one hour (timer cell)
  bench [N]         time N cell calls, channel round trips, fs reads, restarts (default 1000)
  bench disk [N]    time N runs of: 4 KiB read and write through the disk cell, 64-byte fs
                    read from the disk, disk cell restart (at most 50); needs a disk
  bench grow [N]    how costs grow: channel round trips of 0 to 4096 bytes, fs reads of
                    64 B to 64 KiB, fs restart with 1, 8 and 64 sessions open (at most 50)",
};

/// Keys typed while a command runs that the shell keeps for the next prompt (the console cell
/// queues more behind them).
const TYPEAHEAD: usize = 64;

/// What the shell is wired to.
#[derive(Clone)]
pub struct Wiring {
    pub console: Console,
    pub fs: cell_fs::Ep,
    pub timer: cell_timer::Ep,
    pub echo: bench::EchoEp,
    /// Echo tasks of 0- to 4,096-byte messages, for `bench grow`.
    pub echoes: bench::Echoes,
    /// The disk cell, for `bench disk` (it reads and rewrites the disk's last 4 KiB unchanged).
    pub disk: cell_virtio_blk::Ep,
    /// The two client tasks `audit` drives a cell with.
    pub auditors: audit::Auditors,
}

pub use audit::{start_auditors, Reach as AuditReach};
pub use bench::{start_echo, start_echoes};
pub use scribe::start as start_scribe;

struct Shell<'p> {
    out: Out,
    w: Wiring,
    fs: Option<Files>,
    timer: Clock,
    /// Keys read from the console while a command ran, kept for the next prompt.
    typeahead: shellcmd::Typeahead<TYPEAHEAD>,
    /// The kernel's privilege token, which the image's wiring handed to the shell alone: it
    /// opens kill, restart, inject, poweroff and the benchmarks' unpreempted runs.
    privilege: &'p Privilege,
    /// The TSC when the shell's first incarnation showed its first prompt (`bench`'s
    /// `los.boot`; later incarnations know it too).
    booted: Option<u64>,
}

/// Where the shell's lines go: the console cell.
struct Out(Console);

impl shellcmd::Console for Out {
    fn print(&self, text: core::fmt::Arguments<'_>) {
        let _ = (&self.0).write_fmt(text);
    }
}

macro_rules! say {
    ($sh:expr, $($arg:tt)*) => {
        $sh.out.println(format_args!($($arg)*))
    };
}

/// The commands both personalities share run in `shellcmd`; these are the libos's.
impl shellcmd::Shell for Shell<'_> {
    type Console = Out;
    type Files = Files;
    type Clock = Clock;

    const HELP: shellcmd::Help = HELP;
    const SLEEP_MAX_MS: u32 = cell_timer::MAX_SLEEP_MS;

    fn console(&self) -> &Out {
        &self.out
    }

    fn files(&mut self) -> (&Out, Result<&mut Files, &'static str>) {
        self.connect_fs();
        (&self.out, self.fs.as_mut().ok_or("no file system session"))
    }

    fn clock(&mut self) -> Option<&mut Clock> {
        Some(&mut self.timer)
    }

    fn seed(&self) -> u64 {
        libos_kernel::rdtsc()
    }

    fn interrupted(&mut self) -> bool {
        let mut keys = [0u8; TYPEAHEAD];
        let mut n = 0;
        while n < self.typeahead.room() {
            match self.out.0.try_key() {
                Some(k) => {
                    keys[n] = k;
                    n += 1;
                }
                None => break,
            }
        }
        self.typeahead.interrupt(&keys[..n])
    }

    fn inject(&mut self, name: &str, kind: &str, seed: u64) -> Status {
        let Some(kind) = InjectKind::parse(kind) else {
            return self.out.fail(format_args!("unknown fault kind '{}': {}", kind, InjectKind::NAMES));
        };
        let index = match self.find(name) {
            Ok(i) => i,
            Err(s) => return s,
        };
        if kind != InjectKind::Kill {
            self.out.0.flush();
        }
        match libos_kernel::inject(self.privilege, index, kind, seed) {
            Ok(what) => {
                if kind == InjectKind::Kill {
                    // Come back when its next incarnation serves, so its report precedes our
                    // prompt (after its back-off, if it is in a crash loop; at once if held).
                    libos_kernel::wait_ready(index);
                } else {
                    say!(self, "injected {} into {} ({:#x})", kind.name(), name, what);
                }
                0
            }
            Err(InjectError::NotRunning) => self.out.fail(format_args!("{} is not running", name)),
            Err(InjectError::IsCurrent) => {
                self.out.fail(format_args!("the shell does not inject into itself (try kill shell)"))
            }
            Err(InjectError::NoTarget) => {
                self.out.fail(format_args!("nothing to hit in {}: it keeps no client state", name))
            }
            Err(InjectError::NoSuchTask) => {
                self.out.fail(format_args!("cannot inject into {}: not a supervised task", name))
            }
        }
    }

    fn campaign(&mut self, name: &str, count: u32, seed: u64) -> Status {
        let (con, w, privilege) = (self.out.0.clone(), self.w.clone(), self.privilege);
        let interrupted = &mut || shellcmd::Shell::interrupted(self);
        match campaign::run(&con, &w, privilege, interrupted, (name, count, seed)) {
            ::campaign::Ended::Ran => 0,
            ::campaign::Ended::Interrupted => shellcmd::INTERRUPTED,
            ::campaign::Ended::NotRun => 1,
        }
    }

    fn bench(&mut self, rows: shellcmd::BenchRows, runs: usize) -> Status {
        self.connect_fs();
        let Some(Files(fs)) = self.fs.as_mut() else {
            return self.out.fail(format_args!("no file system session"));
        };
        let measured = match rows {
            shellcmd::BenchRows::Calls => {
                bench::run(&self.out.0, &self.w, self.privilege, fs, runs, self.booted)
            }
            shellcmd::BenchRows::Disk => bench::disk(&self.out.0, &self.w, self.privilege, fs, runs),
            shellcmd::BenchRows::Grow => bench::grow(&self.out.0, &self.w, self.privilege, fs, runs),
        };
        match measured {
            Ok(()) => 0,
            Err(e) => self.out.fail(format_args!("bench: {}", e)),
        }
    }

    fn command(&mut self, cmd: &str, args: &str) -> Option<Status> {
        let mut words = args.split_whitespace();
        Some(match cmd {
            "ps" => self.ps(),
            "mem" => self.mem(),
            "restart" => match (words.next(), words.next().map(str::parse::<u32>)) {
                (Some(name), None) => self.restart(name, 1),
                (Some(name), Some(Ok(n))) if (1..=100_000).contains(&n) => self.restart(name, n),
                _ => self.out.fail(format_args!("usage: restart NAME [COUNT] with 1 <= COUNT <= 100000")),
            },
            "update" => match (shellcmd::update_args(args), words.next(), words.next()) {
                (Some(u), _, _) => self.update(u.name, u.image, u.window),
                (None, Some(name), None) => self.versions(name),
                _ => self.out.fail(format_args!("{}", shellcmd::UPDATE_USAGE)),
            },
            "requests" => self.requests(),
            "audit" => match (words.next(), words.next().map(str::parse::<u32>), words.next()) {
                (Some(name), None, None) => self.audit(name, audit::DEFAULT_REQUESTS),
                (Some(name), Some(Ok(n)), None) if (audit::MIN_REQUESTS..=audit::MAX_REQUESTS).contains(&n) => {
                    self.audit(name, n)
                }
                _ => self.out.fail(format_args!(
                    "usage: audit NAME [REQUESTS], REQUESTS {} to {} (default {}); NAME one of fs, timer, ramdisk, virtio-blk, console",
                    audit::MIN_REQUESTS,
                    audit::MAX_REQUESTS,
                    audit::DEFAULT_REQUESTS
                )),
            },
            "pause" | "resume" => match (words.next(), words.next()) {
                (Some(name), None) => self.pause(name, cmd == "pause"),
                _ => self.out.fail(format_args!("usage: {} NAME", cmd)),
            },
            "poweroff" => {
                say!(self, "powering off");
                self.out.0.flush();
                // fs serves one request at a time, and ours queues behind the one it serves
                // (the scribe's, say): once it is answered, that operation's blocks are all on
                // the disk. Its answer switches straight back here, and nothing runs before
                // the machine stops, so no next operation is cut half-way either (a disk cut
                // mid-commit leaks an inode or a block, which fsck reports).
                if let Some(Files(fs)) = self.fs.as_mut() {
                    let _ = fs.stat("/");
                }
                libos_kernel::power_off(self.privilege)
            }
            _ => return None,
        })
    }
}

impl Shell<'_> {
    /// Open the fs session if there is none: a restart of fs can leave the shell without one.
    fn connect_fs(&mut self) {
        if self.fs.is_none() {
            self.fs = Fs::connect(self.w.fs).ok().map(Files);
        }
    }

    fn ps(&self) -> Status {
        shellcmd::print_task_header(&self.out);
        for t in (0..MAX_TASKS).filter_map(libos_kernel::task_info) {
            let row = TaskRow {
                name: t.name,
                index: t.index,
                generation: t.generation,
                state: if t.paused { "paused" } else { t.state.name() },
                restarts: t.restarts,
                priority: t.prio,
                calls: t.served,
                version: t.version,
                window_left: t.window_left,
            };
            shellcmd::print_task_row(&self.out, &row);
        }
        0
    }

    /// `update NAME VERSION WINDOW`: switch cell NAME to its version staged in the image as
    /// VERSION (see `libos_kernel::update`), retrying while it serves requests, for up to
    /// `fault::update::BUSY_DEADLINE_MS`; then wait until the new version waits for work.
    fn update(&mut self, name: &str, version: &str, window: u32) -> Status {
        let index = match self.find(name) {
            Ok(i) => i,
            Err(s) => return s,
        };
        let before = libos_kernel::task_info(index).map_or(0, |t| t.version);
        let t0 = libos_kernel::rdtsc();
        let deadline = libos_kernel::ticks() + BUSY_DEADLINE_MS;
        let updated = loop {
            match libos_kernel::update(self.privilege, index, version, window) {
                Err(UpdateError::Busy) if libos_kernel::ticks() < deadline => libos_kernel::yield_now(),
                Err(UpdateError::Busy) => {
                    return self.out.fail(format_args!(
                        "update {}: it stayed busy serving requests for {} ms; not updated (nothing changed)",
                        name, BUSY_DEADLINE_MS
                    ))
                }
                Err(UpdateError::NotStaged) => {
                    let _ = self.versions(name);
                    return self.out.fail(format_args!(
                        "update {}: no version of it is staged in this image as '{}'; nothing changed",
                        name, version
                    ));
                }
                Err(e) => {
                    return self.out.fail(format_args!(
                        "update {}: refused, nothing changed: {}",
                        name,
                        update_error(e)
                    ))
                }
                Ok(u) => break u,
            }
        };
        let serving = libos_kernel::wait_ready(index);
        let now = libos_kernel::task_info(index);
        match (serving, now) {
            (Some(latency), Some(t)) if t.generation == updated.generation => {
                say!(
                    self,
                    "updated {} from version {} to {} (generation {}): staged in the image as {}; serving {} TSC ticks after the switch ({} from the command); the old version comes back if this one fails before answering {} request(s)",
                    name,
                    before,
                    updated.to,
                    updated.generation,
                    version,
                    latency,
                    libos_kernel::rdtsc() - t0,
                    window
                );
                0
            }
            (_, t) => {
                let (generation, version) = t.map_or((0, 0), |t| (t.generation, t.version));
                self.out.fail(format_args!(
                    "update {}: the new version failed before this shell saw it serve; rolled back (now generation {}, version {})",
                    name, generation, version
                ))
            }
        }
    }

    /// `audit NAME REQUESTS`: run the audit (see `audit`) and print its report in the
    /// microkernel's lines.
    fn audit(&mut self, name: &str, requests: u32) -> Status {
        let index = match self.find(name) {
            Ok(i) => i,
            Err(s) => return s,
        };
        let Some(target) = audit::Target::of(name) else {
            return self.out.fail(format_args!(
                "audit: no workload for {} (fs, timer, ramdisk, virtio-blk, console)",
                name
            ));
        };
        let settle = || self.out.0.flush();
        let (r, wrong) = match audit::run(self.privilege, &self.w.auditors, (index, target), requests, settle)
        {
            Ok(done) => done,
            Err(audit::Failed::NoSuchTarget) => {
                return self.out.fail(format_args!("no task named '{}'", name))
            }
            Err(audit::Failed::Setup(why)) => return self.out.fail(format_args!("audit {}: {}", name, why)),
        };
        let mut spill = (0, 0);
        for rec in &r.records {
            spill = (spill.0 + 1, spill.1 + rec.len as u64);
            let client: &dyn core::fmt::Display =
                if rec.client == usize::MAX { &"device" } else { &rec.client };
            let line = shellcmd::audit::Spill {
                addr: rec.addr,
                len: rec.len as u64,
                task: client,
                // A libos client keeps its state itself: there is no session number.
                session: &"-",
                request: rec.request,
                times: rec.times,
                // One address space: no page to hide from one task alone.
                read: "unwatched",
                reader: None,
                symbol: &audit::symbol(&r, rec.region),
                offset: rec.offset as u64,
            };
            say!(self, "{}", line);
        }
        let mut declared_changed = 0;
        for (&(addr, len, name), &changed) in r.declared.iter().zip(&r.declared_changed) {
            declared_changed += changed as u64;
            let (len, changed) = (len as u64, changed as u64);
            say!(self, "{}", shellcmd::audit::Declared { addr, len, changed, name });
        }
        let pages = r.bytes.iter().map(|b| b.div_ceil(4096)).sum::<usize>() as u64;
        let clean = spill.0 == 0 && r.dropped == 0 && !r.target_gone && wrong == 0;
        let line = shellcmd::audit::Summary {
            name,
            requests: r.requests,
            clients: r.clients,
            switches: r.switches,
            pages,
            spill: spill.0,
            spill_bytes: spill.1,
            declared: r.declared.len() as u64,
            declared_changed,
            dropped: u64::from(r.dropped),
            clean,
        };
        say!(self, "{}", line);
        if r.target_gone {
            return self.out.fail(format_args!(
                "audit {}: it stopped during the audit (a fault?): the report is partial",
                name
            ));
        }
        if wrong > 0 {
            return self.out.fail(format_args!("audit {}: {} workload step(s) went wrong", name, wrong));
        }
        if !clean {
            return self.out.fail(format_args!("audit {}: state spill found", name));
        }
        0
    }

    fn pause(&mut self, name: &str, on: bool) -> Status {
        let index = match self.find(name) {
            Ok(i) => i,
            Err(s) => return s,
        };
        if on && name == "console" {
            return self
                .out
                .fail(format_args!("pause: not the console cell (this shell talks to you through it)"));
        }
        let verb = if on { "pause" } else { "resume" };
        match libos_kernel::pause(self.privilege, index, on) {
            Ok(()) => {
                say!(self, "{} {} (task {})", if on { "paused" } else { "resumed" }, name, index);
                0
            }
            Err(ControlError::IsCurrent) => self.out.fail(format_args!("{}: not this shell itself", verb)),
            Err(e) => self.out.fail(format_args!("cannot {} {}: {}", verb, name, control_error(e))),
        }
    }

    /// `update NAME`: the versions of cell NAME staged in the image.
    fn versions(&mut self, name: &str) -> Status {
        let running =
            libos_kernel::find_task(name).and_then(libos_kernel::task_info).map_or(0, |t| t.version);
        let mut any = false;
        libos_kernel::staged(name, |staged, v| {
            any = true;
            let mark = if v.number == running { "  (running)" } else { "" };
            say!(
                self,
                "{}: version {}, writes layout {}, reads layouts {:?}{}",
                staged,
                v.number,
                v.writes,
                v.reads,
                mark
            );
        });
        if !any {
            return self
                .out
                .fail(format_args!("{} has no versions staged in this image (only fs does)", name));
        }
        0
    }

    fn requests(&mut self) -> Status {
        self.connect_fs();
        let Some(Files(fs)) = self.fs.as_mut() else {
            return self.out.fail(format_args!("no file system session"));
        };
        match fs.requests() {
            Ok(n) => {
                say!(self, "this shell's fs session has made {} requests (counted since fs version 2)", n);
                0
            }
            Err(FsError::Malformed) => self
                .out
                .fail(format_args!("requests: this fs does not count them (version 2 does: see `update`)")),
            Err(e) => self.out.fail(format_args!("requests: {}", e.describe())),
        }
    }

    fn mem(&self) -> Status {
        let u = libos_kernel::mem_usage();
        let recipes = if u.recipes_read_only { "read-only" } else { "WRITABLE" };
        say!(
            self,
            "mem: frames={} kernel_heap={} slots={} recipes={} ({})",
            u.frames,
            u.kernel_heap,
            u.slots,
            u.recipes,
            recipes
        );
        for t in (0..MAX_TASKS).filter_map(libos_kernel::task_info) {
            say!(self, "  {:<16} heap {:>7} bytes in use", t.name, t.heap_used);
        }
        0
    }

    fn find(&self, name: &str) -> Result<usize, Status> {
        libos_kernel::find_task(name)
            .ok_or_else(|| self.out.fail(format_args!("no task named '{}' (see 'ps')", name)))
    }

    fn restart(&mut self, name: &str, count: u32) -> Status {
        let index = match self.find(name) {
            Ok(i) => i,
            Err(s) => return s,
        };
        if count == 1 {
            return match libos_kernel::restart(self.privilege, index) {
                Ok(generation) => {
                    libos_kernel::wait_ready(index);
                    say!(self, "restarted {} as generation {}", name, generation);
                    0
                }
                Err(e) => self.out.fail(format_args!("cannot restart {}: {}", name, control_error(e))),
            };
        }
        self.out.0.flush();
        libos_kernel::set_quiet(self.privilege, true);
        let mut result: Result<u32, ControlError> = Ok(0);
        for done in 0..count {
            if shellcmd::Shell::interrupted(self) {
                libos_kernel::set_quiet(self.privilege, false);
                return shellcmd::interrupted(
                    &self.out,
                    format_args!("restart {} after {} of {} restarts", name, done, count),
                );
            }
            result = libos_kernel::restart(self.privilege, index);
            if result.is_err() {
                break;
            }
            libos_kernel::wait_ready(index);
        }
        libos_kernel::set_quiet(self.privilege, false);
        match result {
            Ok(generation) => {
                say!(self, "restarted {} {} times; now generation {}", name, count, generation);
                0
            }
            Err(e) => self.out.fail(format_args!("cannot restart {}: {}", name, control_error(e))),
        }
    }

    /// Read one line at the prompt into `line`, with editing; returns how it ended (Enter,
    /// Ctrl-C, too long). (The console cell hands keys over one at a time and keeps the rest
    /// queued.)
    fn read_line(&mut self, line: &mut heapless::String<LINE_MAX>) -> shellcmd::Edit {
        line.clear();
        let mut editor = shellcmd::LineEditor::default();
        loop {
            let key = self.typeahead.pop().unwrap_or_else(|| self.out.0.read_key());
            match editor.key(line, key, |echo| self.out.0.write(echo)) {
                shellcmd::Edit::More => {}
                done => return done,
            }
        }
    }
}

fn update_error(e: UpdateError) -> alloc::string::String {
    match e {
        UpdateError::NoSuchTask => "not a cell started from a staged version".into(),
        UpdateError::IsCurrent => "the shell does not update itself".into(),
        UpdateError::NotStaged => "no such version staged".into(),
        UpdateError::Busy => "busy".into(),
        UpdateError::Incompatible { layout } => {
            alloc::format!("that version cannot read layout {layout}, which client states may be in")
        }
        UpdateError::BadWindow => "the window is 1 to 1000 requests".into(),
        UpdateError::OutOfMemory => "out of memory for the new incarnation (the old version is back)".into(),
    }
}

fn control_error(e: ControlError) -> &'static str {
    match e {
        ControlError::NoSuchTask => "not a supervised task",
        ControlError::IsCurrent => "the shell cannot restart itself (try kill shell)",
        ControlError::NotRunning => "it is not running",
        ControlError::OutOfMemory => "out of memory",
    }
}

/// Spawn the shell task. It keeps `privilege` (in its closure, across incarnations) and lends
/// it to no other cell.
pub fn start(w: Wiring, privilege: Privilege) -> Result<libos_kernel::TaskId, libos_kernel::SpawnError> {
    libos_kernel::spawn("shell", 5, true, move || {
        let mut shell = Shell {
            out: Out(w.console.clone()),
            w: w.clone(),
            fs: Fs::connect(w.fs).ok().map(Files),
            timer: Clock(Timer(w.timer)),
            privilege: &privilege,
            typeahead: shellcmd::Typeahead::default(),
            booted: None,
        };
        say!(shell, "\nAxolotl shell (libos personality). Type 'help' for commands.");
        let mut status: Status = 0;
        let mut prompt = shellcmd::Prompt::default();
        let mut line = heapless::String::<LINE_MAX>::new();
        // The first incarnation's first prompt, which the kernel keeps (the closure is read-only).
        shell.booted = Some(libos_kernel::booted());
        loop {
            prompt.print(&shell.out, status);
            let edit = shell.read_line(&mut line);
            // The echo of the line must be on the wire before the kernel prints anything about it.
            shell.out.0.flush();
            status = prompt.run_line(&mut shell, edit, &line);
        }
    })
}
