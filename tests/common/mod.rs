//! Helpers the QEMU test suites share: build the ISO once, boot a personality with commands,
//! and read what the shell printed; give a test a persistent disk of its own. (Each test
//! binary uses its own subset.)
#![allow(dead_code)]

use axolotl_images::disk::{self, Scratch};
use axolotl_images::qemu::{self, Machine, Transcript};
use axolotl_images::{build, Personality};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

pub mod gdb;

/// The rows `bench` prints on the microkernel, in order (`bench disk`'s aside).
pub const MK_BENCH_ROWS: [&str; 9] = [
    "mk.null_call",
    "mk.ssr_call",
    "mk.fs_read",
    "mk.fs_write",
    "mk.fs_seek",
    "mk.fs_open_close",
    "mk.fs_stat",
    "mk.restart",
    "mk.boot",
];

/// The rows `bench` prints on the libos, in order.
pub const LOS_BENCH_ROWS: [&str; 10] = [
    "los.fn_call",
    "los.cell_call",
    "los.channel_rtt",
    "los.fs_read",
    "los.fs_write",
    "los.fs_seek",
    "los.fs_open_close",
    "los.fs_stat",
    "los.restart",
    "los.boot",
];

/// The rows `bench grow` prints on the microkernel, in order.
pub const MK_GROW_ROWS: [&str; 11] = [
    "mk.call_payload_0",
    "mk.call_payload_64",
    "mk.call_payload_512",
    "mk.call_payload_4096",
    "mk.read_64",
    "mk.read_512",
    "mk.read_4096",
    "mk.read_65536",
    "mk.restart_sessions_1",
    "mk.restart_sessions_8",
    "mk.restart_sessions_64",
];

/// The rows `bench grow` prints on the libos, in order.
pub const LOS_GROW_ROWS: [&str; 11] = [
    "los.channel_payload_0",
    "los.channel_payload_64",
    "los.channel_payload_512",
    "los.channel_payload_4096",
    "los.read_64",
    "los.read_512",
    "los.read_4096",
    "los.read_65536",
    "los.restart_sessions_1",
    "los.restart_sessions_8",
    "los.restart_sessions_64",
];

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

/// A fresh disk image for one test: 64 MiB, zeros except the bytes it was made with, at a
/// path of its own under `target/os/scratch/` (never the user's `target/os/disk.img`).
///
/// Removed when dropped if the test passes; if it fails (the thread is panicking) it stays
/// for inspection and its path is printed with the failure. Keep the `TestDisk` alive until
/// the session is over: `let disk = TestDisk::new("name");`, not `TestDisk::new("name").machine()`.
pub struct TestDisk {
    scratch: Scratch,
    /// The same path, for [`Machine::disk`] (which holds `&'static Path`s): leaked, a few
    /// bytes per test.
    path: &'static Path,
}

impl TestDisk {
    /// 64 MiB of zeros, named after `name` (`target/os/scratch/NAME-PID-N.img`).
    pub fn new(name: &str) -> TestDisk {
        TestDisk::with_bytes(name, &[])
    }

    /// 64 MiB of zeros except `writes`, each `(byte offset, bytes)`: a file system's
    /// signature, say, to check that the guest leaves a disk it does not know alone.
    pub fn with_bytes(name: &str, writes: &[(u64, &[u8])]) -> TestDisk {
        let scratch = Scratch::with_bytes(name, disk::SIZE, writes)
            .unwrap_or_else(|e| panic!("cannot make a disk image for the test: {e}"));
        let path = Box::leak(scratch.path().to_path_buf().into_boxed_path());
        TestDisk { scratch, path }
    }

    pub fn path(&self) -> &'static Path {
        self.path
    }

    /// A machine with only this disk attached.
    pub fn machine(&self) -> Machine {
        self.attach(Machine::default())
    }

    /// `machine` with this disk attached.
    pub fn attach(&self, machine: Machine) -> Machine {
        Machine { disk: Some(self.path), ..machine }
    }

    /// The whole image as it is now: take it before a boot, compare after with
    /// [`check_disk_unchanged`].
    pub fn bytes(&self) -> Vec<u8> {
        disk::read(self.path).unwrap_or_else(|e| panic!("{e}"))
    }
}

/// Boot `personality` with `disk` attached as its virtio-blk disk, type `commands`, power off;
/// the whole session within `timeout_secs`. (For more machine options: `disk.attach(machine)`
/// and [`boot_as`].)
pub fn boot_with_disk(
    personality: Personality,
    disk: &TestDisk,
    commands: &[&str],
    timeout_secs: u64,
) -> Transcript {
    boot_as(personality, disk.machine(), commands, timeout_secs)
}

/// The image of `disk` is byte for byte `before` (from [`TestDisk::bytes`]); if not, the
/// message says which sectors changed, and the image is kept for inspection.
#[track_caller]
pub fn check_disk_unchanged(t: &Transcript, disk: &TestDisk, before: &[u8]) {
    let after = disk.bytes();
    let what = disk::differences(before, &after).map(|d| format!(": {d}")).unwrap_or_default();
    check(t, what.is_empty(), &format!("the disk image {} is unchanged{what}", disk.path().display()));
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
    // Its own lines only: a line of the scribe's can land among them (at boot it may find the
    // file it wants open in a command's session, and says it will retry).
    let lines: Vec<&str> = fsck.iter().flat_map(|o| o.lines()).filter(|l| l.starts_with("fsck")).collect();
    check(
        t,
        fsck.len() == 1
            && lines.len() == 1
            && lines[0].starts_with("fsck: clean: ")
            && lines[0].ends_with(" blocks in use"),
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

/// The commands of the `format` test, the same on both personalities. The first lets the
/// scribe open its files, so that the format leaves them stale under it.
pub const FORMAT_SESSION: [&str; 8] =
    ["sleep 500", "write /a x", "format", "format --force", "ls /", "cat /a", "fsck", "sleep 1000"];

/// [`FORMAT_SESSION`] went as it must: `format` alone refused a disk with files (the test's
/// and the scribe's) and changed nothing, `format --force` erased them and the file server
/// said so (`formatted`, its log line), the disk was then empty and clean, and the scribe,
/// whose open files went stale, heard a clear error and never read another file's bytes.
///
/// Read from the whole console rather than per command: once its files are gone the scribe
/// says so every 300 ms, and a line of its can fall between a prompt and the command's echo.
#[track_caller]
pub fn check_format(t: &Transcript, formatted: &str) {
    check(t, t.outcome == qemu::Outcome::PoweredOff, "clean power-off");
    check(t, t.failed_commands() == ["format", "cat /a"], "exactly the refused format and the cat failed");
    let refused = "error: format: the disk holds an Axolotl file system with ";
    let line = t.console.lines().find(|l| l.starts_with(refused)).unwrap_or_default();
    check(
        t,
        line.ends_with(" files and directories; `format --force` erases them"),
        "format alone refuses, saying how many files it would erase",
    );
    check(t, t.console.contains("\nformat: the disk now holds an empty file system\n"), "format --force");
    check(t, t.console.contains(formatted), "the file server logs the format");
    let listed_a = t.console.lines().any(|l| l.split_whitespace().eq(["2", "a"]));
    check(t, !listed_a, "ls / does not list the file");
    check(t, t.console.contains("\nerror: cat: /a: no such file or directory\n"), "the file is gone");
    check(
        t,
        t.console.lines().any(|l| l.starts_with("fsck: clean: 1 of ") && l.ends_with(" blocks in use")),
        "fsck finds the disk clean, with the root alone",
    );
    check(
        t,
        t.console.contains("[scribe] ERROR: bad file descriptor (not open, or its file is gone)"),
        "the scribe's stale descriptors give a clear error",
    );
    check(t, !t.console.contains("[scribe] ERROR at record"), "and never another file's bytes");
}

/// What each run of command `cmd` printed: the lines between its prompt and the next prompt,
/// without log lines (`[kernel] ...`, `[fs] ...`), which may interleave at any time. Only the
/// session's own prompts count (see `Transcript::runs`): output that looks like one does not.
pub fn outputs(t: &Transcript, cmd: &str) -> Vec<String> {
    t.runs().iter().filter(|r| r.typed == cmd).map(|r| r.output.join("\n")).collect()
}

/// The first line printed after the last time `cmd` was typed, skipping log lines. Unlike
/// [`outputs`] it does not need the command on its prompt's line: a task that hogs the CPU
/// (a hung server) can delay the shell's echo past log lines, or tear it with them.
pub fn answer_after<'a>(t: &'a Transcript, cmd: &str) -> Option<&'a str> {
    // Through the transcript's runs, which mend an echoed command a log line tore in two (a
    // fault report landed inside `pwd`'s echo once, and the line `pwd` was never seen).
    let runs = t.runs();
    let run = runs.iter().rev().find(|r| r.typed == cmd)?;
    run.output.iter().copied().find(|l| !l.is_empty())
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
