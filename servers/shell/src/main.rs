//! The Axolotl shell: reads lines from the console server, runs built-in commands.
//!
//! The prompt carries the last command's status, so scripts driving the serial line (such as
//! `cargo os run --exec`) can tell success from failure: `axolotl> ` after success,
//! `axolotl [N]> ` after a command that failed with status N.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use console_api::{print, println, Console};
use userlib::abi::{BootInfo, Error, TaskInfo, TaskState, DEBUG_EXIT_PORT, DEBUG_EXIT_POWEROFF};
use userlib::cap::{Cap, IoPort, Task};

userlib::entry!(main);

const LINE_MAX: usize = 160;
/// Task table size of the kernel (`task_info` answers InvalidArgument past it).
const MAX_TASKS: usize = 32;

const HELP: &str = "\
Axolotl shell commands:
  help              this text
  echo TEXT...      print TEXT
  ps                list tasks: name, id, generation, state, restarts, priority, syscalls
  start NAME        start a task the manifest loaded as held
  wait NAME         wait until task NAME stops, print how it ended
  run NAME          start NAME and wait for it (e.g. `run hostile`)
  poweroff          switch the machine off
Line editing: Backspace deletes, Ctrl-U clears the line, Ctrl-C abandons it.";

/// How a command ended: 0 = success.
type Status = u32;

struct Shell {
    console: Console,
    tasks: Option<Cap<Task>>,
    power: Option<Cap<IoPort>>,
}

impl Shell {
    fn fail(&self, msg: core::fmt::Arguments<'_>) -> Status {
        println!("error: {}", msg);
        1
    }

    fn run(&mut self, line: &str) -> Status {
        let mut words = line.split_whitespace();
        let Some(cmd) = words.next() else { return 0 };
        let rest = line.trim_start()[cmd.len()..].trim();
        match cmd {
            "help" => {
                println!("{}", HELP);
                0
            }
            "echo" => {
                println!("{}", rest);
                0
            }
            "ps" => self.ps(),
            "start" | "wait" | "run" => match words.next() {
                None => self.fail(format_args!("usage: {} NAME", cmd)),
                Some(name) => self.control(cmd, name),
            },
            "poweroff" => self.poweroff(),
            _ => self.fail(format_args!("unknown command '{}' (type 'help')", cmd)),
        }
    }

    fn task_cap(&self) -> Result<Cap<Task>, Status> {
        self.tasks.ok_or_else(|| self.fail(format_args!("this shell holds no task capability")))
    }

    fn infos(&self, tasks: Cap<Task>) -> impl Iterator<Item = TaskInfo> {
        (0..MAX_TASKS).filter_map(move |i| tasks.info(i).ok()).filter(|t| t.state() != Some(TaskState::Free))
    }

    fn ps(&self) -> Status {
        let tasks = match self.task_cap() {
            Ok(t) => t,
            Err(s) => return s,
        };
        println!(
            "{:<16} {:>3} {:>4}  {:<8} {:>8} {:>4} {:>9}",
            "NAME", "ID", "GEN", "STATE", "RESTARTS", "PRIO", "SYSCALLS"
        );
        for t in self.infos(tasks) {
            let state = t.state().map(|s| s.name()).unwrap_or("?");
            println!(
                "{:<16} {:>3} {:>4}  {:<8} {:>8} {:>4} {:>9}",
                t.name(),
                t.index,
                t.generation,
                state,
                t.restarts,
                t.priority,
                t.syscalls
            );
        }
        0
    }

    fn control(&self, cmd: &str, name: &str) -> Status {
        let tasks = match self.task_cap() {
            Ok(t) => t,
            Err(s) => return s,
        };
        let Some(target) = self.infos(tasks).find(|t| t.name() == name) else {
            return self.fail(format_args!("no task named '{}' (see 'ps')", name));
        };
        let index = target.index as usize;
        if cmd != "wait" {
            if let Err(e) = tasks.start(index) {
                return self.fail(format_args!("cannot start {}: {}", name, e));
            }
            println!("started {} (task {})", name, index);
        }
        if cmd == "start" {
            return 0;
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
            Err(e) => self.fail(format_args!("cannot wait for {}: {}", name, e)),
        }
    }

    fn poweroff(&self) -> Status {
        let Some(port) = self.power else {
            return self.fail(format_args!("this shell holds no power-off capability"));
        };
        if let Err(e) = port.enable() {
            if e != Error::AlreadyDone {
                return self.fail(format_args!("cannot open the power-off port: {}", e));
            }
        }
        println!("powering off");
        // The kernel opened this port to us; writing it makes QEMU exit.
        userlib::sys::outb(DEBUG_EXIT_PORT, DEBUG_EXIT_POWEROFF);
        self.fail(format_args!("the machine did not power off (no isa-debug-exit device?)"))
    }

    /// Read one line with editing; `None` if it was abandoned with Ctrl-C.
    fn read_line(&self, line: &mut heapless::String<LINE_MAX>) -> Option<()> {
        line.clear();
        let mut escape = 0u8;
        loop {
            let mut buf = [0u8; 64];
            let n = match self.console.read(&mut buf) {
                Ok(n) => n,
                Err(_) => {
                    userlib::sys::yield_now();
                    continue;
                }
            };
            for &b in &buf[..n] {
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
                        print!("\n");
                        return Some(());
                    }
                    0x1b => escape = 1,
                    0x08 | 0x7f if line.pop().is_some() => print!("\x08 \x08"),
                    0x15 => {
                        for _ in 0..line.len() {
                            print!("\x08 \x08");
                        }
                        line.clear();
                    }
                    0x03 => {
                        print!("^C\n");
                        line.clear();
                        return None;
                    }
                    0x20..=0x7e if line.push(b as char).is_ok() => {
                        let _ = self.console.write(&[b]);
                    }
                    _ => {}
                }
            }
        }
    }
}

fn fault_name(vector: u64) -> &'static str {
    match vector {
        0 => "divide error",
        6 => "invalid opcode",
        13 => "general protection",
        14 => "page fault",
        101 => "panic",
        _ => "exception",
    }
}

fn main(boot: &'static BootInfo) -> Result<(), Error> {
    let console = Console::from_boot().ok_or(Error::EmptySlot)?;
    let mut shell = Shell {
        console,
        tasks: Cap::<Task>::from_boot(boot, "all"),
        power: Cap::<IoPort>::from_boot(boot, "debug-exit"),
    };
    console_api::init_log(log::LevelFilter::Info);
    log::info!("started with {} capabilities", boot.caps().len());
    println!("\nAxolotl shell. Type 'help' for commands.");
    let mut status: Status = 0;
    let mut line = heapless::String::<LINE_MAX>::new();
    loop {
        if status == 0 {
            print!("axolotl> ");
        } else {
            print!("axolotl [{}]> ", status);
        }
        if shell.read_line(&mut line).is_none() {
            status = 130;
            continue;
        }
        status = shell.run(&line);
    }
}
