//! Boot the real ISO in QEMU, drive the shell over the serial line, check what it prints.
//!
//! Every test builds the image once (shared), boots its own QEMU with a timeout, and on failure
//! shows the tail of the console.

mod common;

use axolotl_images::qemu::{self, Echo, Failed, Limits, Machine, Outcome, Transcript, Why};
use axolotl_images::Personality;
use common::{answer_after, check, outputs, ps_row};
use std::time::{Duration, Instant};

fn boot(commands: &[&str], timeout_secs: u64) -> Transcript {
    common::boot_as(Personality::Microkernel, Machine::default(), commands, timeout_secs)
}

#[test]
fn a_console_silent_too_long_ends_the_session_early() {
    // What `cargo os campaign` relies on to report a machine that stopped answering instead of
    // waiting out its whole timeout: here the shell just sleeps, printing nothing.
    let limits = Limits { total: Duration::from_secs(120), silence: Some(Duration::from_secs(3)) };
    // Built first: the time limit below is for the session, not for a build.
    let iso = common::iso();
    let started = Instant::now();
    let cmds = ["sleep 60000".to_string()];
    let t = qemu::exec(iso, Personality::Microkernel, Machine::default(), &cmds, limits, Echo::Nothing)
        .expect("QEMU runs");
    check(
        &t,
        matches!(&t.outcome, Outcome::TimedOut(what) if what.contains("silent for 3 s")),
        "the session ends on the silence",
    );
    check(&t, started.elapsed() < Duration::from_secs(40), "long before the sleep or the total limit");
}

#[test]
fn output_that_looks_like_a_prompt_is_not_taken_for_one() {
    // Before prompts carried the session's tag, the echo of this line and its output were both
    // read as prompts with status 3: the command and the next one were reported failed.
    let t = boot(&["echo axolotl [3]> x", "echo ok", "echo axolotl> y", "frobnicate", "echo end"], 60);
    check(&t, t.outcome == Outcome::PoweredOff, "clean power-off");
    check(&t, t.failed_commands() == ["frobnicate"], "only the unknown command failed");
    check(&t, outputs(&t, "echo axolotl [3]> x") == ["axolotl [3]> x"], "the output is the command's");
    check(&t, outputs(&t, "echo ok") == ["ok"], "and the next command's is its own");
    check(&t, t.tags.len() == 1, "the shell was never thought restarted");
}

#[test]
fn a_command_during_which_the_shell_is_killed_is_reported_failed() {
    // No command can kill this shell (the kernel refuses to inject into the caller), so the
    // test does it through QEMU's gdb stub: `ps` reads each task's record with
    // `Cap<Task>::info`, and when the shell reaches that function its rip is set to 0.
    let iso = common::iso();
    let shell = axolotl_images::build::binary_dir().join("shell");
    let (addr, code) = common::gdb::function(&shell, "Task$GT$4info").unwrap_or_else(|e| panic!("{e}"));
    let socket = common::gdb::socket("shell");
    let fault = common::gdb::fault_at(socket, addr, code, Duration::from_secs(120));
    let machine = Machine { debug_socket: Some(socket), ..Machine::default() };
    let cmds: Vec<String> = ["echo before", "ps", "echo after", "ps"].map(String::from).to_vec();
    let t =
        qemu::exec(iso, Personality::Microkernel, machine, &cmds, Duration::from_secs(120), Echo::Nothing)
            .expect("QEMU runs");
    let _ = std::fs::remove_file(socket);
    let faulted = fault.join().expect("the gdb thread ends");
    check(&t, faulted.is_ok(), &format!("the shell was made to fault: {faulted:?}"));
    check(&t, t.outcome == Outcome::PoweredOff, "clean power-off");
    let restarted = Failed { command: "ps".into(), why: Why::ShellRestarted };
    check(&t, t.failed == [restarted], "the command in flight failed, and only it");
    check(
        &t,
        t.console.contains("[reincarnation] shell gen 0: page fault (#PF) at 0x0; restarting as gen 1"),
        "the shell really was restarted",
    );
    check(&t, t.tags.len() == 2, "the new shell was given a tag of its own");
    check(&t, outputs(&t, "echo after") == ["after"], "the next command runs in the new shell");
    let row = ps_row(&t, "shell");
    check(&t, row.get(2) == Some(&"1") && row.get(4) == Some(&"1"), "ps: the shell at gen 1, 1 restart");
    check(&t, t.summary().contains("command 'ps' FAILED: the shell was restarted while it ran"), "says so");
}

#[test]
fn a_console_that_fails_mid_write_sends_each_byte_once() {
    // Through QEMU's gdb stub, the console is made to fault (rip 0) as it is about to send byte
    // 5 ('Q') of the echo's output: 5 bytes are out. The kernel delivers the write again to
    // the next console, which must send the rest, not the whole line again.
    let iso = common::iso();
    let console = axolotl_images::build::binary_dir().join("console");
    let (addr, code) = common::gdb::function(&console, "console4send").unwrap_or_else(|e| panic!("{e}"));
    let socket = common::gdb::socket("console");
    let at_q = |regs: &[u8]| {
        use common::gdb::{reg, RDI, RSI};
        reg(regs, RDI) == 5 && reg(regs, RSI) as u8 == b'Q'
    };
    let fault = common::gdb::fault_when(socket, addr, code, at_q, Duration::from_secs(120));
    let machine = Machine { debug_socket: Some(socket), ..Machine::default() };
    let cmds: Vec<String> = ["echo ABCDEQRSTUVWXYZ", "echo after"].map(String::from).to_vec();
    let t =
        qemu::exec(iso, Personality::Microkernel, machine, &cmds, Duration::from_secs(120), Echo::Nothing)
            .expect("QEMU runs");
    let _ = std::fs::remove_file(socket);
    let faulted = fault.join().expect("the gdb thread ends");
    check(&t, faulted.is_ok(), &format!("the console was made to fault: {faulted:?}"));
    check(&t, t.ok(), "every command succeeds");
    check(
        &t,
        t.console.contains("[reincarnation] console gen 0: page fault (#PF) at 0x0"),
        "it was restarted",
    );
    check(
        &t,
        t.console.contains("1 caller(s) suspended, 0 failed"),
        "the write was kept for the next console",
    );
    // The typed line's echo holds ABCDE once, the output once more; a repeated write, a third.
    check(&t, t.console.matches("ABCDE").count() == 2, "the first five bytes went out once");
    check(&t, t.console.contains("QRSTUVWXYZ\n"), "the rest followed");
    check(&t, outputs(&t, "echo after") == ["after"], "the console serves on");
}

#[test]
fn lines_typed_ahead_are_kept() {
    // Both lines arrive in one burst, as when pasted: the second waits in the shell's typeahead.
    let t = boot(&["echo first\recho second"], 60);
    check(&t, t.outcome == Outcome::PoweredOff, "the shell powers off after both lines");
    check(&t, t.console.lines().any(|l| l == "second"), "the line typed ahead ran");
}

#[test]
fn keys_typed_while_the_machine_boots_reach_the_shell() {
    // Typed when the kernel's first line appears: GRUB is done, the console server not yet up.
    let machine = Machine { early_keys: Some("echo typed early\r"), ..Machine::default() };
    let t = common::boot_as(Personality::Microkernel, machine, &[], 60);
    check(&t, t.ok(), "the session ends cleanly");
    check(&t, t.console.lines().any(|l| l == "typed early"), "the line typed during boot ran");
}

#[test]
fn boots_lists_tasks_echoes_and_powers_off() {
    let t = boot(&["ps", "echo hi", "poweroff"], 60);
    check(&t, t.ok(), "the session should end in a clean power-off with every command succeeding");
    check(&t, t.console.contains("NAME") && t.console.contains("RESTARTS"), "ps prints its header");
    let servers =
        [("console", "recv", "1"), ("fs", "recv", "1"), ("shell", "ready", "-"), ("hostile", "dormant", "-")];
    for (name, state, version) in servers {
        let row = ps_row(&t, name);
        // NAME ID GEN STATE RESTARTS PRIO SYSCALLS VERSION
        check(&t, row.len() == 8, &format!("ps lists {name}"));
        check(&t, row[7] == version, &format!("{name}'s version is {version} (declared, or none)"));
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
    check(
        &t,
        t.console.contains("hostile: victim's BAR2 mapped: 0x1000 bytes"),
        "the driver syscalls had a device to aim at (pointers into its BAR were refused)",
    );
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
    check(&t, t.console.contains("hostile faulted (page fault (#PF))"), "the shell learns how it ended");
    check(&t, ps_row(&t, "hostile").get(3) == Some(&"faulted"), "ps shows hostile faulted");
    check(&t, ps_row(&t, "console").get(3) == Some(&"recv"), "the console server still serves");
    check(&t, t.console.lines().any(|l| l == "still alive"), "the shell still works afterwards");
}

#[test]
fn a_task_run_again_or_restarted_by_hand_names_itself_anew() {
    // Its `task self` capability must follow it to each new incarnation: with a stale one,
    // every syscall on itself is refused as Dead and the hostile task counts surprises.
    let t = boot(&["run hostile", "run hostile", "restart hostile", "wait hostile"], 240);
    check(&t, t.ok(), "every command succeeds");
    let clean = t.console.matches(" 0 surprises").count();
    check(&t, clean == 3, &format!("three clean runs of 20,000 syscalls ({clean})"));
    check(&t, !t.console.contains("SURPRISE"), "no wrong answers");
    let starts = t.console.lines().filter(|l| l.starts_with("started hostile (task")).count();
    check(&t, starts == 2, "run starts it again");
}

#[test]
fn failed_commands_are_reported_and_line_editing_works() {
    // 0x7f is Backspace: "ecx" + Backspace + "ho edited" must run "echo edited".
    // ESC [ A is the Up arrow a terminal sends: swallowed whole, it must not become "[Aecho".
    let long = format!("echo {}", "x".repeat(1500));
    let t = boot(
        &[
            "frobnicate",
            "ecx\x7fho edited",
            "start nosuchtask",
            "inject console ssr 1",
            "\x1b[Aecho arrows",
            &long,
        ],
        60,
    );
    check(&t, t.outcome == Outcome::PoweredOff, "the session still powers off cleanly");
    check(&t, !t.ok(), "a failed command makes the session fail");
    let frobnicate = Failed { command: "frobnicate".into(), why: Why::Status(1) };
    check(&t, t.failed.contains(&frobnicate), "the failure is attributed");
    check(&t, t.console.contains("unknown command 'frobnicate' (type 'help')"), "a clear message");
    check(&t, t.console.lines().any(|l| l == "edited"), "backspace edits the line");
    check(&t, t.console.contains("no task named 'nosuchtask'"), "a bad task name is explained");
    check(
        &t,
        t.console.contains("error: nothing to hit in console: it keeps no client state"),
        "a fault with nothing to hit says so (not 'dead or stale')",
    );
    check(&t, t.console.lines().any(|l| l == "arrows"), "an arrow key's escape sequence is swallowed whole");
    check(
        &t,
        t.console.contains("error: line too long (at most 1024 characters): nothing was run"),
        "a line longer than the editor holds is refused whole",
    );
    check(&t, !t.console.lines().any(|l| l.starts_with("xxxxxxxxxx")), "no part of the long line ran");
    check(&t, t.failed.len() == 4, "exactly the four bad lines failed");
}

/// What one `mem` printed: the machine's free frames, the frames the tasks own, each task's.
type MemReport = (u64, u64, Vec<(String, u64)>);

/// `mem`'s numbers, if its output has the shape it prints.
fn mem_report(out: &str) -> Option<MemReport> {
    let mut lines = out.lines().filter(|l| !l.trim().is_empty());
    let head = lines.next()?.strip_prefix("mem: ")?;
    let value = |key: &str| {
        let rest = head.split(key).nth(1)?;
        rest.split_whitespace().next()?.parse::<u64>().ok()
    };
    let (free, held) = (value("free_frames=")?, value("task_frames=")?);
    let tasks = lines
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            match w.as_slice() {
                [name, "frames", n, ..] => Some((name.to_string(), n.parse().ok()?)),
                _ => None,
            }
        })
        .collect::<Option<Vec<_>>>()?;
    Some((free, held, tasks))
}

#[test]
fn mem_counts_each_tasks_frames_and_restarts_lose_none() {
    // Restarted by the kernel (`restart`) and by the reincarnation server after a kill: each
    // new incarnation's address space is built anew and the old one freed, frame for frame.
    // The first `sleep`: the scribe opens its sessions (an SSR frame each) after the prompt.
    let cmds = [
        "sleep 1000",
        "mem",
        "restart fs",
        "restart timer",
        "kill fs",
        "sleep 500",
        "restart console",
        "mem",
    ];
    let t = boot(&cmds, 90);
    check(&t, t.ok(), "every command succeeds");
    let runs = outputs(&t, "mem");
    check(&t, runs.len() == 2, "mem ran twice");
    let reports: Vec<_> = runs.iter().map(|r| mem_report(r)).collect();
    check(&t, reports.iter().all(Option::is_some), "mem prints its header and one line per task");
    let reports: Vec<_> = reports.into_iter().flatten().collect();
    for (free, held, tasks) in &reports {
        check(&t, *free > 0, "free frames are counted");
        check(&t, tasks.iter().map(|(_, n)| n).sum::<u64>() == *held, "the total is the tasks' sum");
        for name in ["fs", "timer", "console", "shell", "hostile"] {
            let n = tasks.iter().find(|(t, _)| t == name).map(|(_, n)| *n);
            // Every address space owns at least its page tables and some pages.
            check(&t, n.is_some_and(|n| n > 4), &format!("{name} owns frames"));
        }
    }
    if let [before, after] = &reports[..] {
        check(&t, before.0 == after.0, "three restarts later the same frames are free: nothing leaked");
        check(&t, before.2 == after.2, "and every task owns what it owned");
    }
}

#[test]
fn help_lists_every_command() {
    let t = boot(&["help"], 60);
    check(&t, t.ok(), "help succeeds");
    let help = outputs(&t, "help").concat();
    for cmd in [
        "help", "echo", "ps", "start", "wait", "run", "pause", "resume", "ls", "cd", "sleep", "bench",
        "requests", "slept", "tty", "update", "mem", "poweroff",
    ] {
        check(&t, help.lines().any(|l| l.starts_with(&format!("  {cmd}"))), &format!("help lists {cmd}"));
    }
    // The shared lines and this shell's own are laid out alike: a command after two spaces,
    // or a continuation under the descriptions, between the title and the line-editing note.
    let lines: Vec<&str> = help.lines().collect();
    check(&t, lines.first() == Some(&"Axolotl shell commands:"), "the title comes first");
    let note = lines.iter().position(|l| l.starts_with("Line editing:"));
    check(&t, note.is_some(), "the editing note ends the help");
    check(&t, help.contains("at most 1024 characters"), "it gives the line limit");
    for l in &lines[1..note.unwrap_or(1)] {
        check(&t, l.starts_with("  ") && !l.starts_with("   ") || l.starts_with(&" ".repeat(20)), l);
    }
}

#[test]
fn files_are_written_read_and_listed() {
    let t = boot(&["write /notes/a hello", "append /notes/a world", "cat /notes/a", "ls /notes"], 60);
    check(&t, t.ok(), "every file command succeeds");
    check(&t, outputs(&t, "cat /notes/a") == ["hello\nworld"], "cat prints both lines in order");
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
            "cd /",
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
    check(&t, outputs(&t, "cat f") == ["x"], "relative paths resolve from the current directory");
    check(&t, t.console.contains("error: mkdir: /d: already exists"), "mkdir twice");
    check(&t, t.failed_commands() == ["cat /nope", "rm /d", "mkdir /d"], "exactly the bad commands failed");
}

#[test]
fn fsck_is_clean_and_files_in_use_are_refused_clearly() {
    let t = boot(
        &[
            "write /f/a one",
            "append /f/a two",
            "mkdir /f/d",
            "cd /f/d",
            "rm /f/d",
            "cd /",
            "rm /f/a",
            "rm /f/d",
            // The scribe has its log open, writing: another client may read it, not change it.
            // (It opens it once it first runs, at the lowest priority: after fs has formatted the
            // RAM disk, which the first commands can beat.)
            "sleep 500",
            "write /scribe/log X",
            "append /scribe/log X",
            "rm /scribe/log",
            "cat /scribe/log",
            "sleep 1500",
            "cat /scribe/status",
            "fsck",
            "help",
        ],
        90,
    );
    check(&t, t.outcome == Outcome::PoweredOff, "clean power-off");
    let failed = t.failed_commands();
    check(
        &t,
        failed == ["rm /f/d", "write /scribe/log X", "append /scribe/log X", "rm /scribe/log"],
        "exactly the refused commands failed",
    );
    check(&t, t.console.contains("error: rm: /f/d: is a current directory"), "the current directory is kept");
    common::check_refused_while_open(&t, "/scribe/log");
    check(
        &t,
        outputs(&t, "cat /scribe/log").first().is_some_and(|l| l.starts_with("scribe ")),
        "reading is fine",
    );
    let status = t.console.lines().find(|l| l.starts_with("scribe: ") && l.contains("records written"));
    let numbers: Vec<u32> = status
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|w| w.trim_end_matches(',').parse().ok())
        .collect();
    check(
        &t,
        numbers.len() == 4 && numbers[0] > 0 && numbers[0] == numbers[1] && numbers[2] == 0,
        "the scribe wrote and verified every record, without an error",
    );
    check(&t, !t.console.contains("[scribe] ERROR"), "the scribe never reported an error");
    common::check_fsck_clean(&t);
    check(&t, outputs(&t, "help").concat().lines().any(|l| l.starts_with("  fsck ")), "help lists fsck");
}

#[test]
fn format_needs_force_to_erase_files_and_leaves_open_files_stale() {
    let t = boot(&common::FORMAT_SESSION, 60);
    common::check_format(
        &t,
        "[fs] INFO formatted the RAM disk: the file system spans 2048 of its 2048 blocks",
    );
    check(
        &t,
        t.console.contains("[fs] INFO formatted the RAM disk (it was blank): "),
        "at boot, the blank RAM disk was formatted",
    );
}

#[test]
fn ssrs_isolate_clients_and_outlive_a_faulting_server() {
    let t = boot(&["run ssrtest", "ps"], 180);
    check(&t, t.ok(), "the session ends cleanly");
    for line in t.console.lines().filter(|l| l.starts_with("ssrtest: ") && !l.contains("checks failed")) {
        check(&t, line.ends_with(" ok"), &format!("check passed: {line}"));
    }
    check(&t, t.console.matches("ssrtest: ").count() >= 28, "every check ran");
    check(
        &t,
        t.console.contains("probe: printing through a capability it was granted"),
        "a granted capability works",
    );
    check(&t, t.console.contains("ssrtest: 0 checks failed"), "no check failed");
    check(&t, t.console.contains("repaired from its backup copy"), "a corrupted primary copy was repaired");
    check(
        &t,
        t.console.contains("is broken: ") && t.console.contains("resetting it"),
        "both copies broken: reset",
    );
    // The faults the probe server was made to commit, with their reports.
    let fault = |gen: u32| format!(", gen {gen}): page fault (#PF), error 0x4 (user read, page not present)");
    check(
        &t,
        t.console.contains("FAULT in probe (task ") && t.console.contains(&fault(0)),
        "window touched after reply",
    );
    check(
        &t,
        t.console.contains("<probe::touch_after_reply+") && t.console.contains("address 0x80005000"),
        "window",
    );
    check(
        &t,
        t.console.contains(&fault(1)) && t.console.contains(&fault(2)),
        "one request faulted two incarnations",
    );
    check(
        &t,
        t.console.contains("<probe::touch_neighbour+") && t.console.contains("address 0x80006000"),
        "past the SSR",
    );
    check(
        &t,
        t.console.contains("1 caller(s) suspended, 0 failed")
            && t.console.contains("0 caller(s) suspended, 1 failed"),
        "delivered again once, then failed",
    );
    check(
        &t,
        t.console.contains("is broken: ") && t.console.contains("resetting it"),
        "fs names the broken client",
    );
    let probe = ps_row(&t, "probe");
    check(
        &t,
        probe.get(2) == Some(&"3") && probe.get(4) == Some(&"3"),
        "ps shows probe at generation 3, 3 restarts",
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
    check(&t, !t.console.contains("[scribe] ERROR"), "the scribe never reported an error");
}

#[test]
fn a_paused_task_does_not_run_until_resumed() {
    let cmds = [
        "pause scribe",
        "ps",
        "sleep 1000",
        "cat /scribe/status",
        "sleep 1000",
        "cat /scribe/status",
        "resume scribe",
        "sleep 1000",
        "cat /scribe/status",
        "ps",
        "pause fs",
        "sleep 1000",
        "resume fs",
        "sleep 700",
        "cat /scribe/status",
        "pause console",
        "pause shell",
        "pause nosuch",
        "resume",
    ];
    let t = boot(&cmds, 90);
    let ps = outputs(&t, "ps");
    let state = |out: &str| {
        let row = out.lines().find(|l| l.split_whitespace().next() == Some("scribe")).unwrap_or_default();
        row.split_whitespace().nth(3).unwrap_or_default().to_string()
    };
    check(&t, ps.len() == 2 && state(&ps[0]) == "paused", "ps shows the scribe paused");
    check(&t, ps.len() == 2 && state(&ps[1]) != "paused", "and, resumed, no longer");
    let status = outputs(&t, "cat /scribe/status");
    check(&t, status.len() == 4, "four status reads");
    check(&t, status[0] == status[1], "paused, the scribe wrote no record in a second");
    check(&t, status[2] != status[1], "resumed, it writes again");
    // A paused server in `recv`: its callers (the scribe) wait, and are served once it resumes.
    check(&t, status[3] != status[2], "fs paused and resumed: the scribe's calls went through");
    check(&t, t.console.contains("paused fs (task ") && t.console.contains("resumed fs (task "), "fs too");
    check(
        &t,
        t.console.contains("paused scribe (task ") && t.console.contains("resumed scribe (task "),
        "both said",
    );
    check(&t, t.console.contains("error: pause: not the console server"), "the console is refused");
    check(&t, t.console.contains("error: pause: not this shell itself"), "so is the shell itself");
    check(&t, t.console.contains("error: no task named 'nosuch' (see 'ps')"), "an unknown name");
    check(&t, t.console.contains("error: usage: resume NAME"), "a missing name");
    check(&t, !t.console.contains("[scribe] ERROR"), "the scribe found nothing wrong after its pause");
}

#[test]
fn bench_prints_one_row_per_operation() {
    // Under -icount the figures are instruction counts, so the comparisons below cannot depend
    // on how busy the host is.
    let icount = Machine { icount: true, ..Machine::default() };
    let t = common::boot_as(Personality::Microkernel, icount, &["bench 20"], 120);
    check(&t, t.ok(), "bench succeeds");
    let rows = axolotl_images::bench::parse_rows(&t.console);
    let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    check(&t, names == common::MK_BENCH_ROWS, "the nine rows, in order");
    for r in &rows {
        check(
            &t,
            r.min > 0 && r.min <= r.median && r.median <= r.p99,
            &format!("{}: ordered, non-zero", r.name),
        );
    }
    let cost = |name: &str| rows.iter().find(|r| r.name == name).map(|r| r.median).unwrap_or(0);
    check(&t, cost("mk.null_call") < cost("mk.ssr_call"), "the SSR word costs something");
    check(&t, cost("mk.ssr_call") < cost("mk.fs_seek"), "a seek is a longer path (fs, its session)");
    check(&t, cost("mk.fs_seek") < cost("mk.fs_read"), "a read longer still (the file's blocks)");
    check(&t, cost("mk.fs_read") < cost("mk.fs_write"), "and a write (the journal) longer again");
    check(&t, cost("mk.fs_read") < cost("mk.restart"), "a restart (remount) is longer still");
    check(&t, cost("mk.restart") < cost("mk.boot"), "and the boot, every server's start, longer again");
    check(
        &t,
        t.console.contains("bench: before the kernel (firmware, GRUB): "),
        "the firmware's part, apart",
    );
}

#[test]
fn file_data_and_client_state_survive_restarting_fs_and_ramdisk() {
    let t = boot(
        &[
            "write /keep/a one",
            "cd /keep",
            "restart fs",
            "cat a",
            "restart ramdisk",
            "cat /keep/a",
            "pwd",
            "ps",
        ],
        60,
    );
    check(&t, t.ok(), "every command succeeds");
    check(
        &t,
        outputs(&t, "cat a") == ["one"],
        "after an fs restart the shell's cwd (in its SSR) still works",
    );
    check(&t, outputs(&t, "cat /keep/a") == ["one"], "after a ramdisk restart the blocks are still there");
    check(&t, t.console.lines().any(|l| l == "/keep"), "the current directory survived");
    check(
        &t,
        ps_row(&t, "fs").get(2) == Some(&"1") && ps_row(&t, "ramdisk").get(2) == Some(&"1"),
        "both at gen 1",
    );
    check(
        &t,
        t.console.matches("[fs] INFO formatted the RAM disk (it was blank): ").count() == 1,
        "formatted once, at boot only",
    );
}

#[test]
fn a_killed_server_comes_back_behind_the_same_endpoint() {
    let t = boot(&["write /a keep", "kill fs", "cat /a", "ps"], 60);
    check(&t, t.ok(), "every command succeeds");
    // The kernel's "fs gen 1 ready" can land between the prompt and the typed `cat /a` (seen
    // in CI): read the first line after the command, not the command's run on its prompt.
    check(
        &t,
        answer_after(&t, "cat /a") == Some("keep"),
        "the file written before the kill is read after it",
    );
    check(
        &t,
        t.console.contains("[reincarnation] fs gen 0: killed; restarting as gen 1"),
        "the supervisor says so",
    );
    check(
        &t,
        t.console.contains("fs gen 1 ready: ") && t.console.contains("sessions kept"),
        "readiness, kept sessions",
    );
    let fs = ps_row(&t, "fs");
    check(&t, fs.get(2) == Some(&"1") && fs.get(4) == Some(&"1"), "ps: fs at generation 1 with one restart");
    let scribe = ps_row(&t, "scribe");
    check(&t, scribe.get(3).is_some_and(|s| *s != "faulted" && *s != "halted"), "the scribe still runs");
}

#[test]
fn every_fault_kind_on_fs_is_survived() {
    let kinds = ["regflip", "memflip", "memword", "skip", "hang", "ssr", "kill"];
    let injections: Vec<String> =
        kinds.iter().enumerate().map(|(i, k)| format!("inject fs {k} {}", 1000 + i)).collect();
    let mut cmds = vec!["write /a keep"];
    for inj in &injections {
        cmds.extend([inj.as_str(), "cat /a", "cat /a"]);
    }
    cmds.push("ps");
    let t = boot(&cmds, 180);
    check(&t, t.outcome == Outcome::PoweredOff, "the system survives every kind and powers off");
    for k in &kinds[..6] {
        check(&t, t.console.contains(&format!("injected {k} into fs")), &format!("{k} was injected"));
    }
    check(&t, t.console.contains("HANG in fs"), "the hang is detected");
    check(&t, t.console.contains("KILL fs"), "the kill is reported");
    let reads = outputs(&t, "cat /a").iter().filter(|o| *o == "keep").count();
    check(&t, reads >= kinds.len(), &format!("the file reads back after every fault ({reads} good reads)"));
    for f in &t.failed {
        check(&t, f.command == "cat /a", &format!("only a read may fail, with a clear error ({f})"));
    }
}

#[test]
fn a_rip_flipped_out_of_the_canonical_range_faults_at_once() {
    // Seed 68 flips bit 50 of fs's saved rip (register 16, see `fault::inject::RegFlip`) while
    // fs waits for a request: the #GP it would raise on its next fetch is charged at once, with
    // a readable report, and fs is restarted before anyone calls it.
    let t = boot(&["write /a keep", "inject fs regflip 68", "cat /a"], 60);
    check(&t, t.ok(), "every command succeeds");
    let fault = t.console.find("FAULT in fs").unwrap_or(usize::MAX);
    let injected = t.console.find("injected regflip into fs (0x1032)").unwrap_or(0);
    check(&t, fault < injected, "the fault is reported before the injection returns");
    check(&t, t.console.contains("general protection (#GP)"), "as a general-protection fault");
    check(&t, t.console.contains("restarted fs (task"), "fs is restarted");
    check(&t, answer_after(&t, "cat /a") == Some("keep"), "and the file reads back");
}

#[test]
fn a_request_in_flight_when_the_server_fails_is_answered() {
    let t = boot(&["write /a keep", "inject fs hang 3", "cat /a"], 60);
    check(&t, t.ok(), "the read succeeds");
    check(&t, t.console.contains("HANG in fs"), "the hang is detected");
    check(&t, t.console.contains("1 caller(s) suspended, 0 failed"), "the caller was suspended, not failed");
    check(&t, answer_after(&t, "cat /a") == Some("keep"), "and got its answer from the next incarnation");
}

#[test]
fn a_crash_loop_ends_on_hold_and_the_rest_keeps_running() {
    let cmds = [
        "kill bench",
        "kill bench",
        "kill bench",
        "kill bench",
        "kill bench",
        "ps",
        "bench 10",
        "echo alive",
    ];
    let t = boot(&cmds, 60);
    check(&t, t.outcome == Outcome::PoweredOff, "clean power-off");
    check(&t, t.console.contains("crash loop, holding bench"), "the supervisor holds it");
    check(&t, t.console.contains("after 50 ms") && t.console.contains("after 100 ms"), "it backed off first");
    check(&t, ps_row(&t, "bench").get(3) == Some(&"halted"), "ps shows it halted");
    check(&t, t.console.contains("bench: mk.null_call: server failed before replying"), "a clear error");
    check(&t, t.console.lines().any(|l| l == "alive"), "everything else still works");
    check(&t, t.failed_commands().contains(&"bench 10"), "the bench command failed");
}

#[test]
fn the_supervisor_and_the_console_are_restarted_too() {
    let t = boot(
        &["kill reincarnation", "kill console", "echo back", "kill fs", "write /b x", "cat /b", "ps"],
        60,
    );
    check(&t, t.ok(), "every command succeeds");
    check(
        &t,
        t.console.contains("the supervisor itself failed; the kernel restarts it"),
        "kernel restarts it",
    );
    check(&t, t.console.contains("[reincarnation] generation 1 supervising again"), "it says so");
    check(
        &t,
        t.console.contains("[reincarnation] console gen 0: killed; restarting as gen 1"),
        "console is back",
    );
    check(&t, t.console.lines().any(|l| l == "back"), "output after the console's restart");
    check(&t, outputs(&t, "cat /b") == ["x"], "and the new supervisor still restarts fs");
}

#[test]
fn a_short_seeded_campaign_reports_one_summary_line() {
    let t = boot(&["campaign fs 15 42"], 240);
    check(&t, t.ok(), "the campaign completes");
    let summary = t.console.lines().find(|l| l.starts_with("campaign fs: injected=")).unwrap_or_default();
    let field = |name: &str| -> Option<u32> {
        summary.split_whitespace().find_map(|w| w.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
    };
    check(&t, field("injected") == Some(15), &format!("15 faults injected: {summary}"));
    check(&t, field("panics") == Some(0) && field("lost") == Some(0), "no panic, nothing lost");
    let (m, r) = (field("manifested").unwrap_or(0), field("recovered").unwrap_or(0));
    check(&t, m > 0 && r <= m, "some faults manifested, recovered <= manifested");
    check(&t, t.console.matches("\nfault ").count() == 15, "one line per fault");
    check(&t, t.console.contains("campaign fs: other tasks restarted 0 times"), "faults stayed inside fs");
}

#[test]
fn ctrl_c_interrupts_a_sleep_and_a_wait_and_sleeps_are_bounded() {
    // Each line arrives in one burst: the command and Enter, then Ctrl-C and a line typed ahead,
    // as when a user interrupts at once and types on. The sleep would take 100 s, the wait
    // forever (fs never stops): both must end well within the session's 60 s.
    let started = Instant::now();
    let t = boot(&["sleep 3600001", "sleep 100000\r\x03echo after sleep"], 60);
    check(&t, t.outcome == Outcome::PoweredOff, "powers off");
    check(
        &t,
        t.console.contains("error: sleep: at most 3600000 ms (one hour); 3600001 is too long"),
        "a sleep longer than an hour is refused before it starts",
    );
    check(&t, t.console.contains("^C sleep after 100 of 100000 ms: interrupted"), "Ctrl-C ends the sleep");
    check(
        &t,
        t.failed.iter().any(|f| f.command.starts_with("sleep 100000") && f.why == qemu::Why::Status(130)),
        "status 130",
    );
    check(&t, t.console.lines().any(|l| l == "after sleep"), "the line typed after Ctrl-C runs");
    let w = boot(&["wait fs\r\x03echo after wait"], 60);
    check(&w, w.outcome == Outcome::PoweredOff, "powers off after the wait");
    check(&w, w.console.contains("^C wait for fs: interrupted"), "Ctrl-C ends the wait");
    check(&w, w.console.lines().any(|l| l == "after wait"), "the line typed after Ctrl-C runs");
    let c = boot(&["campaign fs 1000\r\x03echo after campaign"], 60);
    check(&c, c.outcome == Outcome::PoweredOff, "powers off after the campaign");
    check(
        &c,
        c.console.contains("campaign fs: interrupted (Ctrl-C) after 0 of 1000 faults"),
        "Ctrl-C ends it",
    );
    check(&c, c.console.contains("campaign fs: injected=0 "), "with the summary of what it did");
    check(&c, c.console.lines().any(|l| l == "after campaign"), "and the next line runs");
    check(&t, started.elapsed() < Duration::from_secs(60), "neither waited out its time");
}
