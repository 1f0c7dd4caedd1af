//! Boot the libos personality (GRUB entry `libos`) in QEMU, drive its shell over the serial
//! line, check what it prints. Same helpers and style as `tests/qemu.rs`.

mod common;

use axolotl_images::qemu::{Failed, Machine, Outcome, Transcript, Why};
use axolotl_images::Personality;
use common::{check, outputs, ps_row};

fn boot_with(machine: Machine, commands: &[&str], timeout_secs: u64) -> Transcript {
    common::boot_as(Personality::Libos, machine, commands, timeout_secs)
}

fn boot(commands: &[&str], timeout_secs: u64) -> Transcript {
    boot_with(Machine::default(), commands, timeout_secs)
}

#[test]
fn libos_done_when_file_survives_killing_fs() {
    let t = boot(&["ps", "write /a hi", "cat /a", "kill fs", "cat /a", "poweroff"], 60);
    check(&t, t.ok(), "the session must succeed and power off");
    check(
        &t,
        t.console.contains("NAME              ID  GEN  STATE    RESTARTS PRIO  SYSCALLS  VERSION"),
        "ps header",
    );
    check(&t, outputs(&t, "cat /a") == ["hi", "hi"], "cat prints hi before and after the kill");
    check(&t, t.console.contains("KILL fs (task"), "the kill is reported");
    check(
        &t,
        t.console.contains("[kernel] fs gen 0: killed; restarting as gen 1; 0 caller(s) suspended, 0 failed"),
        "fs is restarted as generation 1, in the microkernel supervisor's words",
    );
    check(&t, ps_row(&t, "fs").get(2) == Some(&"0"), "ps ran before the kill: fs was generation 0");
}

#[test]
fn libos_format_needs_force_to_erase_files_and_leaves_open_files_stale() {
    let t = boot(&common::FORMAT_SESSION, 60);
    common::check_format(&t, "[fs] formatted the RAM disk: the file system spans 2048 of its 2048 blocks");
    check(
        &t,
        t.console.contains("[fs] formatted the RAM disk (it was blank): "),
        "at boot, the blank RAM disk was formatted",
    );
}

#[test]
fn libos_output_that_looks_like_a_prompt_is_not_taken_for_one() {
    let t = boot(&["echo axolotl [3]> x", "echo ok", "frobnicate", "echo end"], 60);
    check(&t, t.outcome == Outcome::PoweredOff, "clean power-off");
    check(&t, t.failed_commands() == ["frobnicate"], "only the unknown command failed");
    check(&t, outputs(&t, "echo ok") == ["ok"], "each command's output is its own");
    check(&t, t.tags.len() == 1, "the shell was never thought restarted");
}

#[test]
fn libos_a_command_that_kills_the_shell_is_reported_failed() {
    // Before, the restarted shell's fresh prompt read as the success of `kill shell`.
    let t = boot(&["kill shell", "echo after", "ps"], 60);
    check(&t, t.outcome == Outcome::PoweredOff, "clean power-off");
    let restarted = Failed { command: "kill shell".into(), why: Why::ShellRestarted };
    check(&t, t.failed == [restarted], "the command in flight failed, and only it");
    check(&t, t.console.contains("[kernel] shell gen 0: killed; restarting as gen 1"), "it was restarted");
    check(&t, t.tags.len() == 2, "the new shell was given a tag of its own");
    check(&t, outputs(&t, "echo after") == ["after"], "the next command runs in the new shell");
    check(&t, ps_row(&t, "shell").get(2) == Some(&"1"), "ps: the shell at gen 1");
}

#[test]
fn libos_lines_typed_ahead_are_kept() {
    let t = boot(&["echo first\recho second"], 60);
    check(&t, t.outcome == Outcome::PoweredOff, "the shell powers off after both lines");
    check(&t, t.console.lines().any(|l| l == "second"), "the line typed ahead ran");
}

#[test]
fn libos_help_and_failed_commands() {
    let t = boot(&["help", "frobnicate", "cat /nothing", "echo still here"], 60);
    check(&t, t.outcome == Outcome::PoweredOff, "powers off");
    for cmd in ["ps", "mem", "kill", "inject", "campaign", "bench", "restart", "sleep", "poweroff"] {
        check(&t, outputs(&t, "help")[0].contains(&format!("  {cmd}")), &format!("help lists {cmd}"));
    }
    check(
        &t,
        t.failed
            .iter()
            .map(|f| (f.command.as_str(), f.why))
            .eq([("frobnicate", Why::Status(1)), ("cat /nothing", Why::Status(1))]),
        "two failures, status 1",
    );
    check(&t, t.console.contains("error: cat: /nothing: no such file or directory"), "clear error");
    let prompt = format!("axolotl [{}:1]> echo still here", t.tags[0]);
    check(&t, t.console.contains(&prompt), "the prompt carries the status");
}

#[test]
fn libos_fsck_is_clean_and_the_current_directory_is_kept() {
    let t = boot(
        &[
            "write /f/a one",
            "append /f/a two",
            "mkdir /f/d",
            "cd /f/d",
            "rm /f/d",
            "rm .",
            "cd /",
            "rm /f/a",
            "rm /f/d",
            "ls /f",
            "fsck",
            "help",
        ],
        60,
    );
    check(&t, t.outcome == Outcome::PoweredOff, "powers off");
    let failed = t.failed_commands();
    check(&t, failed == ["rm /f/d", "rm ."], "exactly the removals of the current directory failed");
    check(&t, t.console.contains("error: rm: /f/d: is a current directory"), "a clear error");
    check(&t, outputs(&t, "ls /f") == [""], "both removed once the shell left them");
    common::check_fsck_clean(&t);
    check(&t, outputs(&t, "help")[0].contains("  fsck "), "help lists fsck");
}

#[test]
fn libos_line_editing_and_task_control_errors() {
    // 0x7f is Backspace, 0x15 is Ctrl-U, ESC [ A the Up arrow.
    let long = format!("echo {}", "x".repeat(1500));
    let t = boot(
        &[
            "ecx\x7fho edited",
            "junk\x15echo cleared",
            "kill nosuchtask",
            "kill idle",
            "restart shell",
            "inject console ssr 1",
            "\x1b[Aecho arrows",
            &long,
        ],
        60,
    );
    check(&t, t.outcome == Outcome::PoweredOff, "powers off");
    check(&t, t.console.lines().any(|l| l == "arrows"), "an arrow key's escape sequence is swallowed whole");
    check(
        &t,
        t.console.contains("error: line too long (at most 1024 characters): nothing was run"),
        "a line longer than the editor holds is refused whole, as on the microkernel",
    );
    check(&t, !t.console.lines().any(|l| l.starts_with("xxxxxxxxxx")), "no part of the long line ran");
    check(&t, t.console.lines().any(|l| l == "edited"), "backspace edits the line");
    check(&t, t.console.lines().any(|l| l == "cleared"), "Ctrl-U clears the line");
    check(&t, t.console.contains("no task named 'nosuchtask'"), "a bad task name is explained");
    check(
        &t,
        t.console.contains("cannot inject into idle: not a supervised task"),
        "the idle task is not killable",
    );
    check(
        &t,
        t.console.contains("cannot restart shell: the shell cannot restart itself"),
        "the shell does not restart itself",
    );
    check(
        &t,
        t.console.contains("error: nothing to hit in console: it keeps no client state"),
        "a fault with nothing to hit says so, as on the microkernel",
    );
    check(&t, t.failed.len() == 5, "exactly the five bad lines failed");
}

#[test]
fn libos_every_fault_kind_on_fs_is_survived() {
    let mut cmds = vec!["write /d/a hi"];
    let kinds = [
        "inject fs regflip 1",
        "inject fs memflip 2",
        "inject fs memword 3",
        "inject fs skip 4",
        "inject fs hang 5",
        "kill fs",
        "inject fs ssr 6",
    ];
    // After each fault: the first read may meet it (a clear error is allowed), the second must
    // find the data.
    for k in kinds {
        cmds.extend([k, "cat /d/a", "cat /d/a"]);
    }
    cmds.push("ps");
    let t = boot(&cmds, 90);
    check(&t, t.outcome == Outcome::PoweredOff, "no core panic; powers off");
    let cats = outputs(&t, "cat /d/a");
    check(&t, cats.len() == 2 * kinds.len(), "every cat ran");
    for (i, pair) in cats.chunks(2).enumerate() {
        let first_ok = pair[0] == "hi" || pair[0].starts_with("error: cat: /d/a: ");
        check(&t, first_ok, &format!("after '{}': data or a clear error", kinds[i]));
        check(&t, pair[1] == "hi", &format!("after '{}': the data is intact", kinds[i]));
    }
    check(
        &t,
        t.failed.iter().all(|f| *f == Failed { command: "cat /d/a".into(), why: Why::Status(1) }),
        "only reads fail, with status 1",
    );
    // `ssr` corrupts a word of one of the two copies of the shell's own fs session: fs refuses
    // that copy, the client sends the other, and even the first read after it finds the data.
    check(&t, cats[cats.len() - 2] == "hi", "the ssr fault is met with the session's other copy");
    check(&t, !t.console.contains("session state was broken"), "and no session is reset");
    // The microkernel's report layout: `HANG in NAME (task N, gen G): WHY`.
    check(
        &t,
        t.console.contains("HANG in fs (task")
            && t.console.contains("ran 1001 ms without a syscall or blocking"),
        "the hang is reported",
    );
    check(
        &t,
        t.console.contains("1 caller(s) suspended, 0 failed"),
        "a request in flight is delivered again to the next generation",
    );
    let restarts: u32 = ps_row(&t, "fs").get(4).and_then(|r| r.parse().ok()).unwrap_or(0);
    check(&t, restarts >= 2, "hang and kill at least restarted fs");
    for other in ["ramdisk", "timer", "console", "shell"] {
        check(&t, ps_row(&t, other).get(4) == Some(&"0"), &format!("{other} was not restarted"));
    }
}

/// A campaign's faults leave the kernel's heap as it was. The injector counts a fault's
/// countdown by single steps, and a step inside one of the kernel's critical sections (a
/// channel call the cell made) returned to the cell with its allocations still routed to the
/// kernel's arena: the fs cell's held writes then landed there, and when a later fault killed
/// fs mid-request they stayed, lost (seed 8's first 50 faults, counting instructions: 16,640 bytes, every run).
#[test]
fn libos_kernel_heap_after_a_campaign_equals_before() {
    // Counting instructions (`icount`): every fault strikes where it did when this was found.
    let machine = Machine { icount: true, ..Machine::default() };
    let t = boot_with(machine, &["sleep 1000", "mem", "campaign fs 50 8", "mem"], 240);
    check(&t, t.outcome == Outcome::PoweredOff, "powers off");
    let mems: Vec<String> = outputs(&t, "mem");
    check(&t, mems.len() == 2, "two mem reports");
    let heads: Vec<&str> = mems.iter().filter_map(|m| m.lines().next()).collect();
    check(&t, heads.len() == 2 && heads[0].contains(" kernel_heap="), "mem prints the kernel heap");
    check(&t, heads.first() == heads.last(), "frames, kernel heap and slots are unchanged");
    check(&t, t.console.contains("campaign fs: injected=50 "), "the campaign ran its 50 faults");
}

/// Memory after 1,000 restarts of fs (and 100 of the ramdisk) is what it was: frames, kernel
/// heap and slots exactly, and each task's heap when it is not in the middle of a request
/// (fs holds its runs' writes on its heap while it serves one, the scribe's say, and `mem` can
/// land then): the smallest of three readings, 100 ms apart (on a loaded host, three readings
/// in a row once all landed while fs served one of the scribe's requests).
#[test]
fn libos_memory_after_1000_restarts_equals_before() {
    let t = boot(
        &[
            "mem",
            "sleep 100",
            "mem",
            "sleep 100",
            "mem",
            "restart fs 1000",
            "mem",
            "sleep 100",
            "mem",
            "sleep 100",
            "mem",
            "restart ramdisk 100",
            "mem",
            "sleep 100",
            "mem",
            "sleep 100",
            "mem",
            "cat /nothing-here",
        ],
        90,
    );
    check(&t, t.outcome == Outcome::PoweredOff, "powers off");
    let mems: Vec<String> = outputs(&t, "mem");
    check(&t, mems.len() == 9, "nine mem reports");
    let first = mems[0].lines().next().unwrap_or_default();
    check(&t, first.starts_with("mem: frames="), "mem prints frames and heap");
    // The restart recipes (every task's closure, fs's parts) are mapped read-only once the
    // system runs, as the live page tables say: a wild write there faults in its writer.
    check(
        &t,
        first.ends_with(" (read-only)") && first.contains(" recipes="),
        "the restart recipes are read-only",
    );
    check(
        &t,
        mems.iter().all(|m| m.lines().next() == Some(first)),
        "frames, kernel heap and slots are unchanged",
    );
    // Per group of three readings: each task's smallest heap.
    let least = |group: &[String]| -> Vec<(String, u64)> {
        let mut heaps: std::collections::BTreeMap<String, u64> = Default::default();
        for m in group {
            for line in m.lines().skip(1) {
                let words: Vec<&str> = line.split_whitespace().collect();
                if let [name, "heap", bytes, ..] = words[..] {
                    let b = bytes.parse().unwrap_or(u64::MAX);
                    let e = heaps.entry(name.to_string()).or_insert(b);
                    *e = (*e).min(b);
                }
            }
        }
        heaps.into_iter().collect()
    };
    let groups: Vec<_> = mems.chunks(3).map(least).collect();
    check(
        &t,
        !groups[0].is_empty() && groups.iter().all(|g| *g == groups[0]),
        "every task heap is unchanged",
    );
    check(&t, t.console.contains("restarted fs 1000 times; now generation 1000"), "1000 restarts done");
}

#[test]
fn libos_short_seeded_campaign_reports_one_summary_line() {
    let t = boot(&["campaign fs 25 7", "cat /campaign/data"], 120);
    check(&t, t.outcome == Outcome::PoweredOff, "no core panic");
    // Another task's log line can land inside the shell's (the console writes byte by byte: a
    // scribe reset once tore the summary line in two): read the shell's lines without them.
    let console = t.shell_text();
    let summary = console.lines().find(|l| l.starts_with("campaign fs: injected=")).unwrap_or_default();
    check(&t, summary.starts_with("campaign fs: injected=25 manifested="), "one summary line, 25 faults");
    check(&t, summary.ends_with("panics=0"), "no panic");
    // Seed 7 loses records within 25 faults when a fault in fs goes unchecked (a skip at fault
    // 23 made later records read back as zeros before fs ran every operation twice).
    check(&t, summary.contains(" lost=0 "), "no record lost");
    // One line per fault. Looked for in the raw console too: a shell line can also land inside
    // a log line, which the shell's text then leaves out with it (the scribe's "ERROR: session
    // state was broken" once began, "fault 25: kill ..." came, and the scribe's line went on).
    let line_of = |i: usize| {
        let start = format!("fault {i}: ");
        console.lines().any(|l| l.starts_with(&start)) || t.console.contains(&start)
    };
    check(&t, (1..=25).all(line_of), "one line per fault");
    check(&t, console.lines().filter(|l| l.starts_with("fault ")).count() <= 25, "and no more");
    check(&t, t.console.contains("campaign fs: other tasks restarted 0 times"), "faults stayed inside fs");
}

#[test]
fn libos_bench_rows_have_the_host_format_and_repeat_exactly() {
    let machine = Machine { icount: true, ..Machine::default() };
    let rows = |t: &Transcript| -> Vec<String> {
        t.console.lines().filter(|l| l.starts_with("bench: los.")).map(str::to_string).collect()
    };
    let a = boot_with(machine, &["bench 100"], 90);
    check(&a, a.ok(), "bench succeeds");
    let names: Vec<String> =
        rows(&a).iter().filter_map(|r| r.split_whitespace().nth(1).map(str::to_string)).collect();
    check(&a, names == common::LOS_BENCH_ROWS, "ten rows");
    for r in rows(&a) {
        let f: Vec<&str> = r.split_whitespace().collect();
        let num = |i: usize, key: &str| {
            f.get(i).and_then(|w| w.strip_prefix(key)).and_then(|v| v.parse::<u64>().ok())
        };
        let ok = f.len() == 6
            && num(2, "n=").is_some()
            && num(3, "min=").is_some()
            && num(4, "median=").is_some()
            && num(5, "p99=").is_some();
        check(&a, ok, &format!("row '{r}' has the format bench: NAME n=N min=A median=B p99=C"));
        check(
            &a,
            num(3, "min=") <= num(4, "median=") && num(4, "median=") <= num(5, "p99="),
            "min <= median <= p99",
        );
    }
    let restart = rows(&a).into_iter().find(|r| r.starts_with("bench: los.restart "));
    check(&a, restart.is_some_and(|r| r.contains(" n=50 ")), "restart uses n=min(N,50)");
    let b = boot_with(machine, &["bench 100"], 90);
    check(&b, rows(&a) == rows(&b), "two runs under -icount give the same counts");
}

#[test]
fn libos_bench_refuses_to_run_into_an_armed_fault() {
    // bench masks the timer while it measures: a hang armed in the echo task it calls would
    // strike there and never be detected, so it refuses until the task is restarted.
    let t = boot(&["inject echo hang", "bench 10", "restart echo", "echo alive"], 60);
    check(&t, t.outcome == Outcome::PoweredOff, "clean power-off");
    check(&t, t.console.contains("bench: a fault injected into echo has not struck yet"), "says why");
    check(&t, t.failed_commands() == ["bench 10"], "only bench failed");
    check(&t, outputs(&t, "echo alive") == ["alive"], "and the shell carries on");
}

#[test]
fn libos_a_crash_loop_backs_off_then_holds_and_the_rest_keeps_running() {
    // Kills count as faults, and echo (the bench partner) answers nothing between them: the
    // first fault restarts it at once, the next three after a growing back-off, the fifth
    // holds it. A restart by hand brings it back.
    let kills = ["kill echo"; 5];
    let mut cmds = kills.to_vec();
    cmds.extend(["ps", "bench 10", "echo alive", "restart echo", "bench 10", "ps"]);
    let t = boot(&cmds, 90);
    check(&t, t.outcome == Outcome::PoweredOff, "clean power-off");
    check(
        &t,
        t.console
            .contains("[kernel] echo gen 0: killed; restarting as gen 1; 0 caller(s) suspended, 0 failed"),
        "the first fault restarts it at once",
    );
    for (generation, ms) in [(1, 50), (2, 100), (3, 200)] {
        let line = format!(
            "[kernel] echo gen {generation}: killed; restarting as gen {} after {ms} ms;",
            generation + 1
        );
        check(&t, t.console.contains(&line), &format!("fault {} backs off {ms} ms", generation + 1));
    }
    check(
        &t,
        t.console.contains(
            "[kernel] echo gen 4: killed; 5 faults in a row without answering a request: crash loop, holding echo"
        ),
        "the fifth fault holds it",
    );
    let first_ps = outputs(&t, "ps").first().cloned().unwrap_or_default();
    let echo_row: Vec<&str> = first_ps
        .lines()
        .find(|l| l.starts_with("echo "))
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default();
    check(&t, echo_row.get(3) == Some(&"halted"), "ps shows it halted");
    check(&t, echo_row.get(4) == Some(&"4"), "after four restarts");
    let benches = outputs(&t, "bench 10");
    check(
        &t,
        benches
            .first()
            .is_some_and(|b| b.contains("error: bench: los.channel_rtt: server failed before replying")),
        "a command that needs it fails at once with a clear error",
    );
    check(&t, outputs(&t, "echo alive") == ["alive"], "everything else still works");
    check(&t, t.console.contains("restarted echo as generation 5"), "restart by hand brings it back");
    check(
        &t,
        benches.get(1).is_some_and(|b| b.contains("bench: los.channel_rtt n=10 ")),
        "and the channel benchmark runs again",
    );
    check(&t, t.failed_commands() == ["bench 10"], "only the bench run against the held echo failed");
    let echo = ps_row(&t, "echo");
    check(&t, echo.get(2) == Some(&"5") && echo.get(3) == Some(&"recv"), "echo serves again as gen 5");
}

#[test]
fn libos_ctrl_c_interrupts_a_sleep_and_restarts_and_sleeps_are_bounded_alike() {
    // As on the microkernel: Ctrl-C and the next line typed right after the command's Enter.
    let t = boot(
        &[
            "sleep 3600001",
            "sleep 100000\r\x03echo after sleep",
            "restart fs 100000\r\x03echo after restarts",
        ],
        60,
    );
    check(&t, t.outcome == Outcome::PoweredOff, "powers off");
    check(
        &t,
        t.console.contains("error: sleep: at most 3600000 ms (one hour); 3600001 is too long"),
        "the same bound and words as the microkernel",
    );
    check(&t, t.console.contains("^C sleep after 100 of 100000 ms: interrupted"), "Ctrl-C ends the sleep");
    check(&t, t.console.lines().any(|l| l == "after sleep"), "the line typed after Ctrl-C runs");
    check(&t, t.console.contains("^C restart fs after "), "Ctrl-C ends a long run of restarts");
    check(&t, t.console.lines().any(|l| l == "after restarts"), "and the next line runs");
    let c = boot(&["campaign timer 1000\r\x03echo after campaign"], 60);
    // Ctrl-C is read between two faults: before the first, or (the host typing it a little
    // late) after one or two.
    let ended = c.console.lines().find(|l| l.starts_with("campaign timer: interrupted (Ctrl-C) after "));
    let done: Option<u32> = ended.and_then(|l| l.split_whitespace().nth(5)).and_then(|n| n.parse().ok());
    check(
        &c,
        done.is_some_and(|n| n < 10) && ended.is_some_and(|l| l.ends_with(" of 1000 faults")),
        "Ctrl-C ends it",
    );
    check(&c, c.console.lines().any(|l| l == "after campaign"), "and the next line runs");
}

#[test]
fn libos_files_another_session_has_open_are_refused_and_the_scribe_survives_fs_restarts() {
    // The scribe (its own task and fs session) holds /scribe/log open for writing; the fs cell
    // keeps no list of sessions and must still see that one when the shell's session asks.
    let t = boot(
        &[
            "sleep 1000",
            "write /scribe/log X",
            "append /scribe/log X",
            "rm /scribe/log",
            "cat /scribe/log",
            "kill fs",
            "sleep 1000",
            "cat /scribe/status",
            "fsck",
        ],
        90,
    );
    check(&t, t.outcome == Outcome::PoweredOff, "clean power-off");
    check(
        &t,
        t.failed_commands() == ["write /scribe/log X", "append /scribe/log X", "rm /scribe/log"],
        "exactly the commands that would change the scribe's open file failed",
    );
    common::check_refused_while_open(&t, "/scribe/log");
    check(
        &t,
        outputs(&t, "cat /scribe/log").first().is_some_and(|o| o.starts_with("scribe 00000000")),
        "reading is allowed",
    );
    let status = outputs(&t, "cat /scribe/status");
    check(
        &t,
        status.len() == 1 && status[0].ends_with(" verified, 0 errors, 0 rotations"),
        "the scribe verified every record, through the fs restart",
    );
    check(&t, !t.console.contains("[scribe] ERROR"), "the scribe saw no error");
    common::check_fsck_clean(&t);
}

#[test]
fn libos_keys_typed_while_the_machine_boots_reach_the_shell() {
    // Typed when the kernel's first line appears: GRUB is done, the console cell not yet up.
    let machine = Machine { early_keys: Some("echo typed early\r"), ..Machine::default() };
    let t = boot_with(machine, &[], 60);
    check(&t, t.ok(), "the session ends cleanly");
    check(&t, t.console.lines().any(|l| l == "typed early"), "the line typed during boot ran");
}
