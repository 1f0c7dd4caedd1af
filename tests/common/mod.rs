//! Helpers the QEMU test suites share: build the ISO once, boot a personality with commands,
//! and read what the shell printed. (Each test binary uses its own subset.)
#![allow(dead_code)]

use axolotl_images::qemu::{self, Machine, Transcript};
use axolotl_images::{build, Personality};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

pub mod gdb;

/// The ISO, built once per test binary.
pub fn iso() -> &'static PathBuf {
    static ISO: OnceLock<PathBuf> = OnceLock::new();
    ISO.get_or_init(|| build::build().unwrap_or_else(|e| panic!("cargo os build failed: {e}")).iso)
}

/// Boot `personality`, type `commands` at its shell, power off; the whole session within
/// `timeout_secs`.
pub fn boot_as(
    personality: Personality,
    machine: Machine,
    commands: &[&str],
    timeout_secs: u64,
) -> Transcript {
    let commands: Vec<String> = commands.iter().map(|c| c.to_string()).collect();
    qemu::exec(iso(), personality, machine, &commands, Duration::from_secs(timeout_secs), qemu::Echo::Nothing)
        .unwrap_or_else(|e| panic!("could not run QEMU: {e}"))
}

/// Assert with the console's tail in the message.
#[track_caller]
pub fn check(t: &Transcript, cond: bool, what: &str) {
    assert!(cond, "{what}\n--- outcome: {}\n--- console tail:\n{}", t.summary(), t.tail(40));
}

/// `fsck` ran once and found the disk clean (`fsck: clean: N of M inodes, B of T blocks in use`).
#[track_caller]
pub fn check_fsck_clean(t: &Transcript) {
    let fsck = outputs(t, "fsck");
    check(
        t,
        fsck.len() == 1 && fsck[0].starts_with("fsck: clean: ") && fsck[0].ends_with(" blocks in use"),
        "fsck finds the disk clean",
    );
}

/// `write`, `append` and `rm` of `path`, which another session has open, were each refused
/// with the open-file rule's error.
#[track_caller]
pub fn check_refused_while_open(t: &Transcript, path: &str) {
    for cmd in ["write", "append", "rm"] {
        let refused = format!("error: {cmd}: {path}: file is open (here or in another session)");
        check(t, t.console.contains(&refused), &format!("{cmd} is refused with a clear error"));
    }
}

/// What each run of command `cmd` printed: the lines between its prompt and the next prompt,
/// without log lines (`[kernel] ...`, `[fs] ...`), which may interleave at any time. Only the
/// session's own prompts count (see `Transcript::runs`): output that looks like one does not.
pub fn outputs(t: &Transcript, cmd: &str) -> Vec<String> {
    t.runs().iter().filter(|r| r.typed == cmd).map(|r| r.output.join("\n")).collect()
}

/// The first line printed after the last time `cmd` was typed, skipping log lines. Unlike
/// [`outputs`] it does not need the command on its prompt's line: a task that hogs the CPU
/// (a hung server) can delay the shell's echo past log lines.
pub fn answer_after<'a>(t: &'a Transcript, cmd: &str) -> Option<&'a str> {
    let lines: Vec<&str> = t.console.lines().collect();
    let typed = lines.iter().rposition(|l| *l == cmd || l.ends_with(&format!("> {cmd}")))?;
    lines[typed + 1..].iter().copied().find(|l| !l.starts_with('[') && !l.is_empty())
}

/// The `ps` row of task `name` in the last `ps`, split into columns.
pub fn ps_row<'a>(t: &'a Transcript, name: &str) -> Vec<&'a str> {
    t.console
        .lines()
        .rev()
        .find(|l| l.split_whitespace().next() == Some(name))
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default()
}
