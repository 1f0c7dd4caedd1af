//! Boot the real ISO in QEMU, drive the shell over the serial line, check what it prints.
//!
//! Every test builds the image once (shared), boots its own QEMU with a timeout, and on failure
//! shows the tail of the console.

use axolotl_images::qemu::{self, Outcome, Transcript};
use axolotl_images::{build, Personality};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

fn iso() -> &'static PathBuf {
    static ISO: OnceLock<PathBuf> = OnceLock::new();
    ISO.get_or_init(|| build::build().unwrap_or_else(|e| panic!("cargo os build failed: {e}")).iso)
}

fn boot(commands: &[&str], timeout_secs: u64) -> Transcript {
    let commands: Vec<String> = commands.iter().map(|c| c.to_string()).collect();
    qemu::exec(iso(), Personality::Microkernel, &commands, Duration::from_secs(timeout_secs), false)
        .unwrap_or_else(|e| panic!("could not run QEMU: {e}"))
}

/// Assert with the console's tail in the message.
#[track_caller]
fn check(t: &Transcript, cond: bool, what: &str) {
    assert!(cond, "{what}\n--- outcome: {}\n--- console tail:\n{}", t.summary(), t.tail(40));
}

/// The `ps` row of task `name`, split into columns.
fn ps_row<'a>(t: &'a Transcript, name: &str) -> Vec<&'a str> {
    t.console
        .lines()
        .rev()
        .find(|l| l.split_whitespace().next() == Some(name))
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default()
}

#[test]
fn boots_lists_tasks_echoes_and_powers_off() {
    let t = boot(&["ps", "echo hi", "poweroff"], 60);
    check(&t, t.ok(), "the session should end in a clean power-off with every command succeeding");
    check(&t, t.console.contains("NAME") && t.console.contains("RESTARTS"), "ps prints its header");
    for (name, state) in [("console", "recv"), ("shell", "ready"), ("hostile", "held")] {
        let row = ps_row(&t, name);
        // NAME ID GEN STATE RESTARTS PRIO SYSCALLS
        check(&t, row.len() == 7, &format!("ps lists {name}"));
        check(&t, row[2] == "0" && row[4] == "0", &format!("{name} starts at generation 0, 0 restarts"));
        check(&t, row[3] == state, &format!("{name} is {state}"));
    }
    check(&t, t.console.lines().any(|l| l == "hi"), "echo prints its argument on a line of its own");
    check(&t, t.console.contains("powering off"), "poweroff says so");
}

#[test]
fn the_kernel_survives_a_hostile_task_and_keeps_serving_the_shell() {
    let t = boot(&["run hostile", "ps", "echo still alive"], 240);
    check(&t, t.ok(), "the session should end cleanly");
    check(&t, t.console.contains("hostile: done: 20000 syscalls"), "hostile made all its syscalls");
    check(&t, t.console.contains(" 0 surprises"), "the kernel answered every checked syscall as it must");
    check(&t, !t.console.contains("SURPRISE"), "no wrong answers");
    // Its last act is a store into kernel memory, which must fault and be reported.
    check(&t, t.console.contains("FAULT in hostile (task 2, gen 0): page fault (#PF)"), "fault report");
    check(&t, t.console.contains("(user write, protection violation)"), "the page-fault error is decoded");
    check(&t, t.console.contains("<hostile::wild_store+"), "the faulting RIP is symbolized");
    check(&t, t.console.contains("address 0x100000"), "the faulting address is reported");
    check(&t, t.console.contains("hostile faulted (page fault)"), "the shell learns how it ended");
    check(&t, ps_row(&t, "hostile").get(3) == Some(&"faulted"), "ps shows hostile faulted");
    check(&t, ps_row(&t, "console").get(3) == Some(&"recv"), "the console server still serves");
    check(&t, t.console.lines().any(|l| l == "still alive"), "the shell still works afterwards");
}

#[test]
fn failed_commands_are_reported_and_line_editing_works() {
    // 0x7f is Backspace: "ecx" + Backspace + "ho edited" must run "echo edited".
    let t = boot(&["frobnicate", "ecx\x7fho edited", "start nosuchtask"], 60);
    check(&t, t.outcome == Outcome::PoweredOff, "the session still powers off cleanly");
    check(&t, !t.ok(), "a failed command makes the session fail");
    check(&t, t.failed.iter().any(|(c, s)| c == "frobnicate" && *s == 1), "the failure is attributed");
    check(&t, t.console.contains("unknown command 'frobnicate' (type 'help')"), "a clear message");
    check(&t, t.console.lines().any(|l| l == "edited"), "backspace edits the line");
    check(&t, t.console.contains("no task named 'nosuchtask'"), "a bad task name is explained");
    check(&t, t.failed.len() == 2, "exactly the two bad commands failed");
}

#[test]
fn help_lists_every_command() {
    let t = boot(&["help"], 60);
    check(&t, t.ok(), "help succeeds");
    for cmd in ["help", "echo", "ps", "start", "wait", "run", "poweroff"] {
        check(
            &t,
            t.console.lines().any(|l| l.trim_start().starts_with(cmd)),
            &format!("help mentions {cmd}"),
        );
    }
}
