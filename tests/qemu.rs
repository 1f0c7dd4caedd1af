//! Boot the real ISO in QEMU, drive the shell over the serial line, check what it prints.
//!
//! Every test builds the image once (shared), boots its own QEMU with a timeout, and on failure
//! shows the tail of the console.

use axolotl_images::qemu::{self, Machine, Outcome, Transcript};
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
    qemu::exec(
        iso(),
        Personality::Microkernel,
        Machine::default(),
        &commands,
        Duration::from_secs(timeout_secs),
        false,
    )
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
    for (name, state) in [("console", "recv"), ("fs", "recv"), ("shell", "ready"), ("hostile", "held")] {
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
    check(
        &t,
        t.console.contains("FAULT in hostile (task ") && t.console.contains(", gen 0): page fault (#PF)"),
        "fault report",
    );
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

#[test]
fn files_are_written_read_and_listed() {
    let t = boot(&["write /notes/a hello", "append /notes/a world", "cat /notes/a", "ls /notes"], 60);
    check(&t, t.ok(), "every file command succeeds");
    check(&t, t.console.contains("cat /notes/a\nhello\nworld\n"), "cat prints both lines in order");
    check(
        &t,
        t.console.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["12", "a"]),
        "ls lists a (12 bytes)",
    );
}

#[test]
fn file_errors_are_clear_and_the_current_directory_is_per_client() {
    let t = boot(
        &[
            "cat /nope",
            "write /d/f x",
            "rm /d",
            "cd /d",
            "pwd",
            "cat f",
            "rm f",
            "rm /d",
            "ls /",
            "mkdir /d",
            "mkdir /d",
        ],
        60,
    );
    check(&t, t.outcome == Outcome::PoweredOff, "clean power-off");
    check(&t, t.console.contains("error: cat: /nope: no such file or directory"), "missing file");
    check(&t, t.console.contains("error: rm: /d: directory not empty"), "non-empty directory");
    check(&t, t.console.lines().any(|l| l == "/d"), "pwd shows the directory cd chose");
    check(&t, t.console.contains("cat f\nx\n"), "relative paths resolve from the current directory");
    check(&t, t.console.contains("error: mkdir: /d: already exists"), "mkdir twice");
    let failed: Vec<&str> = t.failed.iter().map(|(c, _)| c.as_str()).collect();
    check(&t, failed == ["cat /nope", "rm /d", "mkdir /d"], "exactly the bad commands failed");
}

#[test]
fn ssrs_isolate_clients_and_outlive_a_faulting_server() {
    let t = boot(&["run ssrtest", "ps"], 180);
    check(&t, t.ok(), "the session ends cleanly");
    for line in t.console.lines().filter(|l| l.starts_with("ssrtest: ") && !l.contains("checks failed")) {
        check(&t, line.ends_with(" ok"), &format!("check passed: {line}"));
    }
    check(&t, t.console.matches("ssrtest: ").count() >= 19, "every check ran");
    check(&t, t.console.contains("ssrtest: 0 checks failed"), "no check failed");
    // The two faults the probe server was made to commit, with their reports.
    check(
        &t,
        t.console.contains(
            "FAULT in probe (task 7, gen 0): page fault (#PF), error 0x4 (user read, page not present)",
        ),
        "window touched after the reply",
    );
    check(
        &t,
        t.console.contains("<probe::touch_after_reply+") && t.console.contains("address 0x80005000"),
        "report names the window",
    );
    check(
        &t,
        t.console.contains("FAULT in probe (task 7, gen 1): page fault (#PF)"),
        "second fault in the next incarnation",
    );
    check(
        &t,
        t.console.contains("<probe::touch_neighbour+") && t.console.contains("address 0x80006000"),
        "past the client's SSR",
    );
    let probe = ps_row(&t, "probe");
    check(
        &t,
        probe.get(2) == Some(&"2") && probe.get(4) == Some(&"2"),
        "ps shows probe at generation 2, 2 restarts",
    );
}

#[test]
fn timer_sleeps_and_the_scribe_verifies_its_records() {
    let t = boot(&["sleep 300", "sleep 1500", "cat /scribe/status"], 90);
    check(&t, t.ok(), "sleeps and cat succeed");
    let status = t.console.lines().find(|l| l.starts_with("scribe: ") && l.contains("records written"));
    let status = status.unwrap_or_default();
    let numbers: Vec<u32> =
        status.split_whitespace().filter_map(|w| w.trim_end_matches(',').parse().ok()).collect();
    check(&t, numbers.len() == 4, &format!("status line has four counts: {status}"));
    check(&t, numbers[0] >= 3 && numbers[0] == numbers[1], "records were written and every one verified");
    check(&t, numbers[2] == 0, "no errors");
    check(&t, !t.console.contains("scribe: ERROR"), "the scribe never reported an error");
}

#[test]
fn bench_prints_measured_protected_call_costs() {
    let t = boot(&["bench 200"], 90);
    check(&t, t.ok(), "bench succeeds");
    for (row, curios) in [("null protected call", "1594"), ("call with SSR word", "4893")] {
        let line = t.console.lines().find(|l| l.trim_start().starts_with(row)).unwrap_or_default();
        let figures: Vec<u64> =
            line[row.len() + 2..].split_whitespace().filter_map(|w| w.parse().ok()).collect();
        check(&t, figures.len() == 4, &format!("{row}: min, median, p99 and the CuriOS figure"));
        check(
            &t,
            figures[0] > 0 && figures[0] <= figures[1] && figures[1] <= figures[2],
            "ordered, non-zero",
        );
        check(&t, figures[3].to_string() == curios, "the published figure is beside it");
    }
}

#[test]
fn file_data_and_client_state_survive_restarting_fs_and_ramdisk() {
    let t = boot(&["write /keep/a one", "cd /keep", "restart fs", "cat a", "restart ramdisk", "cat /keep/a", "pwd", "ps"], 60);
    check(&t, t.ok(), "every command succeeds");
    check(&t, t.console.contains("cat a\none\n"), "after an fs restart the shell's cwd (in its SSR) still works");
    check(&t, t.console.contains("cat /keep/a\none\n"), "after a ramdisk restart the blocks are still there");
    check(&t, t.console.lines().any(|l| l == "/keep"), "the current directory survived");
    check(&t, ps_row(&t, "fs").get(2) == Some(&"1") && ps_row(&t, "ramdisk").get(2) == Some(&"1"), "both at gen 1");
    check(&t, t.console.matches("formatted an empty block store").count() == 1, "formatted once, at boot only");
}
