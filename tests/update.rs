//! Live update on the microkernel (`update NAME PATH`, the kernel's `task_update`): a new
//! version of fs, of the timer and of the console driver from Axolotl's own file system
//! replaces the running one while the scribe writes and verifies; a version that fails rolls
//! back with every client's state; updates that cannot be done are refused with nothing
//! changed.

mod common;

use axolotl_images::{build, disk, Personality};
use common::{answer_after, check, outputs, ps_row, TestDisk};

/// A disk whose file system holds the update images `cargo os build` made, under /servers.
fn disk_with_updates(name: &str) -> TestDisk {
    common::iso();
    let d = TestDisk::new(name);
    for (_, _, image) in build::UPDATES {
        let bytes =
            std::fs::read(build::updates_dir().join(image)).expect("cargo os build writes the update images");
        disk::put(d.path(), &format!("/servers/{image}"), &bytes).unwrap_or_else(|e| panic!("{e}"));
    }
    d
}

#[test]
fn fs_is_updated_while_the_scribe_writes_and_every_client_keeps_its_state() {
    let d = disk_with_updates("update");
    let cmds = [
        "write /a hello",
        "cd /servers",
        "sleep 700",
        "update fs /servers/fs-v2",
        "sleep 1500",
        "requests",
        "pwd",
        "cat /a",
        "cat /scribe/status",
        "ps",
    ];
    let t = common::boot_with_disk(Personality::Microkernel, &d, &cmds, 180);
    check(&t, t.failed_commands().is_empty(), "every command succeeds");
    let updated = outputs(&t, "update fs /servers/fs-v2").join("\n");
    check(
        &t,
        updated.contains("updated fs from version 1 to 2 (generation 1)"),
        "the shell reports the update",
    );
    check(
        &t,
        t.console.contains("[kernel] fs (task 4) updated: version 1 -> 2 as generation 1"),
        "the kernel logs it",
    );
    check(
        &t,
        t.console.contains("state migrated from layout 3 to 4"),
        "client states move to the new layout",
    );
    check(
        &t,
        t.console.contains("fs (task 4): version 2 kept: it answered"),
        "the window passes and the update is kept",
    );
    check(
        &t,
        answer_after(&t, "requests").is_some_and(|l| l.starts_with("this shell's fs session has made")),
        "the new version's request answers (the old one did not know it)",
    );
    check(&t, answer_after(&t, "pwd") == Some("/servers"), "the shell's current directory survived");
    check(&t, answer_after(&t, "cat /a") == Some("hello"), "its files too");
    let status = outputs(&t, "cat /scribe/status").join("\n");
    check(
        &t,
        status.contains(" 0 errors") || status.contains("errors 0"),
        &format!("the scribe saw no error: {status}"),
    );
    let fs = ps_row(&t, "fs");
    check(&t, fs.get(2) == Some(&"1") && fs.get(4) == Some(&"0"), "generation 1, no restart counted");
    check(&t, fs.get(7) == Some(&"2"), "ps: version 2");
    check(&t, !t.console.contains("[scribe] ERROR"), "the scribe found nothing wrong");
}

/// The scribe's status file says it found no error.
#[track_caller]
fn check_scribe_clean(t: &axolotl_images::qemu::Transcript) {
    let status = outputs(t, "cat /scribe/status").join("\n");
    check(t, status.contains(" 0 errors"), &format!("the scribe saw no error: {status}"));
    check(t, !t.console.contains("[scribe] ERROR"), "the scribe found nothing wrong");
}

#[test]
fn the_timer_is_updated_while_its_clients_sleep_and_their_sessions_move_to_layout_3() {
    let d = disk_with_updates("update-timer");
    // The first sleep gives the shell's and the scribe's sessions their state in layout 2. The
    // sleeps after the update let its window pass before `slept`: the kernel's line saying so
    // does not land in the middle of the answer.
    let cmds = [
        "sleep 700",
        "slept",
        "update timer /servers/timer-v2",
        "sleep 300",
        "sleep 1000",
        "slept",
        "cat /scribe/status",
        "ps",
    ];
    let t = common::boot_with_disk(Personality::Microkernel, &d, &cmds, 180);
    check(&t, t.failed_commands() == ["slept"], "only version 1's `slept` fails");
    check(
        &t,
        outputs(&t, "slept").first().map(String::as_str)
            == Some("error: slept: this timer does not count sleeps (version 2 does: see `update`)"),
        "version 1 does not know the request",
    );
    let updated = outputs(&t, "update timer /servers/timer-v2").join("\n");
    check(
        &t,
        updated.contains("updated timer from version 1 to 2 (generation 1)"),
        "the shell reports the update",
    );
    check(
        &t,
        t.console.contains("[kernel] timer (task 5) updated: version 1 -> 2 as generation 1"),
        "the kernel logs it",
    );
    // Tasks 7 and 8 are the shell and the scribe (the manifest's order).
    for (who, task) in [("the shell's", 7), ("the scribe's", 8)] {
        let migrated = format!("[timer] INFO client task {task} (session ");
        check(
            &t,
            t.console
                .lines()
                .any(|l| l.starts_with(&migrated) && l.ends_with("state migrated from layout 2 to 3")),
            &format!("{who} timer session moves to layout 3"),
        );
    }
    check(
        &t,
        t.console.contains("timer (task 5): version 2 kept: it answered"),
        "the window passes and the update is kept",
    );
    // `sleep` sleeps in slices of 100 ms, each a request the new version counts.
    check(
        &t,
        answer_after(&t, "slept")
            == Some("this shell's timer session has begun 13 sleeps, 1300 ms in all (counted since timer version 2)"),
        "the new version counts the shell's sleeps since it migrated the session",
    );
    check_scribe_clean(&t);
    let timer = ps_row(&t, "timer");
    check(&t, timer.get(2) == Some(&"1") && timer.get(4) == Some(&"0"), "generation 1, no restart counted");
    check(&t, timer.get(7) == Some(&"2"), "ps: version 2");
}

#[test]
fn the_console_is_updated_under_the_shell_that_prints_through_it() {
    let d = disk_with_updates("update-console");
    // As for the timer, the sleep lets the window pass before `tty` answers.
    let cmds = [
        "tty",
        "update console /servers/console-v2",
        "sleep 500",
        "echo hi",
        "tty",
        "cat /scribe/status",
        "ps",
    ];
    let t = common::boot_with_disk(Personality::Microkernel, &d, &cmds, 180);
    check(&t, t.failed_commands() == ["tty"], "only version 1's `tty` fails");
    check(
        &t,
        t.console
            .contains("error: tty: this console does not count its bytes (version 2 does: see `update`)"),
        "version 1 does not know the request",
    );
    let updated = outputs(&t, "update console /servers/console-v2").join("\n");
    check(
        &t,
        updated.contains("updated console from version 1 to 2 (generation 1)"),
        "the shell reports the update through the new version",
    );
    check(
        &t,
        t.console
            .contains("[kernel] console (task 1) updated: version 1 -> 2 as generation 1; 0 client state(s)"),
        "the kernel logs it: the console keeps no client state",
    );
    check(
        &t,
        t.console.contains("console (task 1): version 2 kept: it answered"),
        "the window passes and the update is kept",
    );
    check(&t, answer_after(&t, "echo hi") == Some("hi"), "the shell reads and prints as before");
    // Since version 2 started it read `sleep 500`, `echo hi` and `tty`, each with its Enter:
    // 22 keys. It wrote more: their echo, and the shell's prompts and answers.
    let tty = answer_after(&t, "tty").unwrap_or_default();
    let counts: Vec<u64> = tty.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    check(
        &t,
        tty.starts_with("the console has written ") && counts.len() == 3 && counts[1] == 22 && counts[0] > 22,
        &format!("the new version counts what it wrote and read: {tty}"),
    );
    check_scribe_clean(&t);
    let console = ps_row(&t, "console");
    check(
        &t,
        console.get(2) == Some(&"1") && console.get(4) == Some(&"0"),
        "generation 1, no restart counted",
    );
    check(&t, console.get(7) == Some(&"2"), "ps: version 2");
}

#[test]
fn an_update_that_fails_rolls_back_with_every_client_state() {
    let d = disk_with_updates("rollback");
    let cmds =
        ["write /a hello", "cd /servers", "update fs fs-faulty", "pwd", "cat /a", "ps", "cat /scribe/status"];
    let t = common::boot_with_disk(Personality::Microkernel, &d, &cmds, 180);
    check(&t, t.failed_commands().is_empty(), "every command succeeds: the failed request is served again");
    check(&t, t.console.contains("panicked: panicked at"), "the faulty version fails");
    check(
        &t,
        t.console.contains("the update to version 3 failed (panic)")
            && t.console.contains("rolled back to version 1 as generation 2"),
        "the kernel rolls the update back",
    );
    check(
        &t,
        t.console.contains("client state(s) restored as they were"),
        "and restores the migrated states",
    );
    // The rollback's log lines can land between the prompt and the echo of `pwd`.
    check(&t, answer_after(&t, "pwd") == Some("/servers"), "the shell's current directory is as before");
    check(&t, answer_after(&t, "cat /a") == Some("hello"), "its files too");
    check(&t, ps_row(&t, "fs").get(7) == Some(&"1"), "ps: version 1 again");
    check(&t, !t.console.contains("[scribe] ERROR"), "the scribe found nothing wrong");
}

#[test]
fn updates_that_cannot_be_done_are_refused_and_change_nothing() {
    let d = disk_with_updates("refused");
    let cmds = [
        "write /a hello",
        "cd /servers",
        "update fs fs-v2 3",
        "requests",
        "update fs fs-v1",
        "update timer fs-v2",
        "update fs /a",
        "update fs /nosuch",
        "update fs fs-v2 0",
        "update nosuch fs-v2",
        "pause timer",
        "update timer fs-v2",
        "resume timer",
        "sleep 10",
        "ps",
        "requests",
    ];
    let t = common::boot_with_disk(Personality::Microkernel, &d, &cmds, 180);
    let failed = t.failed_commands();
    let want = [
        "update fs fs-v1",
        "update timer fs-v2",
        "update fs /a",
        "update fs /nosuch",
        "update fs fs-v2 0",
        "update nosuch fs-v2",
        "update timer fs-v2",
    ];
    check(&t, failed == want, &format!("exactly the impossible updates fail: {failed:?}"));
    check(
        &t,
        t.console.contains("refused: session")
            && t.console.contains("layout 4, which the new version does not read"),
        "going back to a version that cannot read layout 4 is refused, naming the session",
    );
    check(
        &t,
        t.console.contains("update of timer refused: the image is another server's"),
        "another server's image",
    );
    check(&t, t.console.contains("not a server image with a version"), "a file that is no server image");
    check(
        &t,
        t.console.contains("it stayed busy serving requests for 2000 ms; not updated"),
        "a server that cannot stop",
    );
    check(&t, t.console.contains("usage: update NAME IMAGE [WINDOW]"), "a bad window gets the usage");
    let (fs, timer) = (ps_row(&t, "fs"), ps_row(&t, "timer"));
    check(&t, fs.get(2) == Some(&"1") && fs.get(7) == Some(&"2"), "fs stays version 2, generation 1");
    check(&t, timer.get(2) == Some(&"0") && timer.get(7) == Some(&"1"), "the timer is untouched");
    check(&t, outputs(&t, "requests").len() == 2, "requests answered before and after the refusals");
}
