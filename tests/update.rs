//! Live update on the microkernel (`update NAME PATH`, the kernel's `task_update`): a new
//! version of fs from Axolotl's own file system replaces the running one while the scribe
//! writes and verifies; a version that fails rolls back with every client's state; updates
//! that cannot be done are refused with nothing changed.

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
    check(&t, t.console.contains("usage: update NAME PATH [WINDOW]"), "a bad window gets the usage");
    let (fs, timer) = (ps_row(&t, "fs"), ps_row(&t, "timer"));
    check(&t, fs.get(2) == Some(&"1") && fs.get(7) == Some(&"2"), "fs stays version 2, generation 1");
    check(&t, timer.get(2) == Some(&"0") && timer.get(7) == Some(&"1"), "the timer is untouched");
    check(&t, outputs(&t, "requests").len() == 2, "requests answered before and after the refusals");
}
