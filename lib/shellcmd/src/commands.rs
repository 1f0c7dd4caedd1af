//! The command line: which command a line names, its arguments checked, and the usage line a
//! command gives when they do not fit. Commands whose work is the personality's (inject,
//! campaign, bench and its own) get their arguments from here already checked.

use crate::files;
use crate::line::Edit;
use crate::personality::{Console, Shell, Status};
use campaign::Clock;
use core::fmt;

/// The `help` lines both shells share, around each personality's own (see [`Shell`]).
const HELP_FIRST: &str = "  help              this text
  echo TEXT...      print TEXT";
const HELP_MIDDLE: &str = "  inject NAME KIND [SEED]
                    inject a fault: kill regflip memflip memword skip hang ssr
  campaign NAME COUNT [SEED]
                    inject COUNT faults into NAME (fs, ramdisk, timer) under a checked workload
  ls [PATH]         list a directory
  cat PATH          print a file
  write PATH TEXT   replace a file's contents with TEXT and a newline (creates directories)
  append PATH TEXT  add TEXT and a newline to a file (creates it and its directories)
  mkdir PATH        make a directory
  rm PATH           remove a file or an empty directory
  format [--force]  write an empty file system over the disk (one that holds files: --force)";
const HELP_LAST: &str = "  poweroff          switch the machine off
Line editing: Backspace deletes, Ctrl-U clears the line, Ctrl-C abandons it; a line holds
at most 1024 characters. Ctrl-C also interrupts a long command: sleep, campaign, and this
shell's waits and repeated restarts.";

/// Which rows `bench` measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchRows {
    /// `bench [N]`: protected calls, a file read, a server's restart.
    Calls,
    /// `bench disk [N]`: the disk driver's block reads and writes, a file read that reaches the
    /// disk, the driver's restart. Needs a disk: it reads and rewrites the disk's last 4 KiB.
    Disk,
    /// `bench grow [N]`: how costs grow with the work: calls with 0 to 4,096 bytes of payload,
    /// file reads of 64 B to 64 KiB, a restart with 1, 8 and 64 client sessions open.
    Grow,
}

/// Most runs `bench` takes: each shell keeps one sample per run on its stack.
pub const BENCH_MAX: usize = 4000;
/// Runs `bench` takes without an argument.
const BENCH_DEFAULT: usize = 1000;
/// Most faults one `campaign` injects.
const CAMPAIGN_MAX: u32 = 100_000;

/// The longest line a shell runs; longer ones are refused whole (see `line`). The IPC buffer
/// and the fs protocols carry far more; this bounds the editor's buffer on the shells' stacks.
pub const LINE_MAX: usize = 1024;

/// The status of a command Ctrl-C interrupted (and of a line it abandoned): 128 + SIGINT, as
/// in POSIX shells.
pub const INTERRUPTED: Status = 130;

/// A sleep runs in slices this long, Ctrl-C checked between them.
const SLEEP_SLICE_MS: u32 = 100;

/// Report that Ctrl-C interrupted `what` (`^C what: interrupted`); returns [`INTERRUPTED`].
pub fn interrupted(con: &impl Console, what: fmt::Arguments<'_>) -> Status {
    con.println(format_args!("^C {}: interrupted", what));
    INTERRUPTED
}

/// What to do with what the line editor returned: run the line, or give the status of a line
/// Ctrl-C abandoned (130) or that was too long (refused: nothing of it runs).
pub fn run_line<S: Shell>(shell: &mut S, edit: Edit, line: &str) -> Status {
    match edit {
        Edit::Cancel => INTERRUPTED,
        Edit::TooLong => shell
            .console()
            .fail(format_args!("line too long (at most {} characters): nothing was run", LINE_MAX)),
        Edit::Enter | Edit::More => run(shell, line),
    }
}

/// Run one command line; returns its status (0 for an empty line).
pub fn run<S: Shell>(shell: &mut S, line: &str) -> Status {
    let mut words = line.split_whitespace();
    let Some(cmd) = words.next() else { return 0 };
    let rest = line.trim_start()[cmd.len()..].trim();
    let con = shell.console();
    match cmd {
        "help" if !rest.is_empty() => con.fail(format_args!("usage: help")),
        "help" => {
            con.println(format_args!(
                "{}\n{HELP_FIRST}\n{}\n{HELP_MIDDLE}\n{}\n{HELP_LAST}",
                S::HELP.title,
                S::HELP.tasks,
                S::HELP.sessions
            ));
            0
        }
        "echo" => {
            con.println(format_args!("{}", rest));
            0
        }
        "kill" => match (words.next(), words.next()) {
            (Some(name), None) => shell.inject(name, "kill", 0),
            _ => con.fail(format_args!("usage: kill NAME")),
        },
        "inject" => inject(shell, words),
        "campaign" => campaign(shell, words),
        "ls" | "cat" | "write" | "append" | "mkdir" | "rm" | "cd" | "pwd" => files::run(shell, cmd, rest),
        "fsck" => files::fsck(shell, rest),
        "format" => files::format(shell, rest),
        "sleep" => sleep(shell, rest),
        "bench" => {
            let word = |w: &str| rest.strip_prefix(w).filter(|r| r.is_empty() || r.starts_with(' '));
            let (rows, rest) = match (word("disk"), word("grow")) {
                (Some(r), _) => (BenchRows::Disk, r.trim_start()),
                (_, Some(r)) => (BenchRows::Grow, r.trim_start()),
                _ => (BenchRows::Calls, rest),
            };
            let runs = if rest.is_empty() { Ok(BENCH_DEFAULT) } else { rest.parse::<usize>() };
            match runs {
                Ok(n) if (10..=BENCH_MAX).contains(&n) => shell.bench(rows, n),
                _ => con.fail(format_args!("usage: bench [disk|grow] [N] with 10 <= N <= {}", BENCH_MAX)),
            }
        }
        _ => match shell.command(cmd, rest) {
            Some(status) => status,
            None => shell.console().fail(format_args!("unknown command '{}' (type 'help')", cmd)),
        },
    }
}

/// `inject NAME KIND [SEED]`: without a seed, the shell picks one.
fn inject<'a, S: Shell>(shell: &mut S, mut words: impl Iterator<Item = &'a str>) -> Status {
    let args = (words.next(), words.next(), words.next().map(str::parse::<u64>), words.next());
    match args {
        (Some(name), Some(kind), None, None) => {
            let seed = shell.seed();
            shell.inject(name, kind, seed)
        }
        (Some(name), Some(kind), Some(Ok(seed)), None) => shell.inject(name, kind, seed),
        _ => shell.console().fail(format_args!(
            "usage: inject NAME KIND [SEED]; KIND: kill regflip memflip memword skip hang ssr"
        )),
    }
}

/// `campaign NAME COUNT [SEED]`: the seed is 1 unless given, so a plain run is repeatable.
fn campaign<'a, S: Shell>(shell: &mut S, mut words: impl Iterator<Item = &'a str>) -> Status {
    let (name, count, seed) =
        (words.next(), words.next().map(str::parse::<u32>), words.next().map(str::parse::<u64>));
    match (name, count, seed, words.next()) {
        (Some(name), Some(Ok(count)), seed @ (None | Some(Ok(_))), None)
            if (1..=CAMPAIGN_MAX).contains(&count) =>
        {
            let seed = seed.and_then(Result::ok).unwrap_or(1);
            shell.campaign(name, count, seed)
        }
        _ => shell
            .console()
            .fail(format_args!("usage: campaign NAME COUNT [SEED] with 1 <= COUNT <= {}", CAMPAIGN_MAX)),
    }
}

/// `sleep MS` on the shell's timer session, in slices so that Ctrl-C interrupts it.
fn sleep<S: Shell>(shell: &mut S, rest: &str) -> Status {
    let Ok(ms) = rest.parse::<u32>() else {
        return shell.console().fail(format_args!("usage: sleep MS (a whole number of milliseconds)"));
    };
    if ms > S::SLEEP_MAX_MS {
        return shell.console().fail(format_args!(
            "sleep: at most {} ms (one hour); {} is too long",
            S::SLEEP_MAX_MS,
            ms
        ));
    }
    let mut slept = 0;
    while slept < ms {
        let slice = (ms - slept).min(SLEEP_SLICE_MS);
        let result = match shell.clock() {
            Some(clock) => clock.sleep(slice),
            None => return shell.console().fail(format_args!("no timer server")),
        };
        if let Err(e) = result {
            return shell.console().fail(format_args!("sleep: {}", e));
        }
        slept += slice;
        if slept < ms && shell.interrupted() {
            return interrupted(shell.console(), format_args!("sleep after {} of {} ms", slept, ms));
        }
    }
    0
}
