//! Live update on the libos (`update NAME VERSION`, `libos_kernel::update`): the fs cell is
//! switched to a version staged in the image while the scribe writes and verifies; a version
//! that fails rolls back with every client's session as it was; updates that cannot be done
//! (a server that stays busy among them) are refused with nothing changed.

mod common;

use axolotl_images::Personality;
use common::{answer_after, check, outputs, ps_row, TestDisk};

#[test]
fn libos_fs_is_updated_while_the_scribe_writes_and_every_client_keeps_its_state() {
    let d = TestDisk::new("los-update");
    let cmds = [
        "write /a hello",
        "mkdir /d",
        "cd /d",
        "requests",
        "sleep 700",
        "update fs fs-v2",
        "sleep 1500",
        "requests",
        "pwd",
        "cat /a",
        "cat /scribe/status",
        "ps",
        "update fs fs-v1",
    ];
    let t = common::boot_with_disk(Personality::Libos, &d, &cmds, 180);
    check(
        &t,
        t.failed_commands() == ["requests", "update fs fs-v1"],
        "only version 1's requests and the way back fail",
    );
    check(
        &t,
        t.console.contains("fs (task 4) updated: version 1 -> 2 as generation 1;"),
        "the kernel reports the update",
    );
    let updated = outputs(&t, "update fs fs-v2").join("\n");
    check(
        &t,
        updated.contains("updated fs from version 1 to 2 (generation 1)")
            && updated.contains("TSC ticks after the switch"),
        "the shell reports it, with its timing",
    );
    check(
        &t,
        t.console.contains("session migrated from layout 3 to 4"),
        "sessions move to layout 4 on first use",
    );
    check(
        &t,
        answer_after(&t, "requests").is_some_and(|l| l.starts_with("this shell's fs session has made")),
        "the new version answers what the old one did not know",
    );
    check(&t, answer_after(&t, "pwd") == Some("/d"), "the shell's current directory survived");
    check(&t, answer_after(&t, "cat /a") == Some("hello"), "its files too");
    let status = outputs(&t, "cat /scribe/status").join("\n");
    check(
        &t,
        status.contains(" 0 errors") && !status.contains(" 0 verified"),
        &format!("the scribe went on: {status}"),
    );
    let fs = ps_row(&t, "fs");
    check(&t, fs.get(2) == Some(&"1") && fs.get(4) == Some(&"0"), "generation 1, no restart counted");
    check(&t, fs.get(7) == Some(&"2"), "ps: version 2");
    check(
        &t,
        answer_after(&t, "update fs fs-v1").is_some_and(|l| l.contains("cannot read layout 4")),
        "version 1 cannot read the sessions version 2 wrote: refused",
    );
    check(&t, !t.console.contains("[scribe] ERROR"), "the scribe found nothing wrong");
}

#[test]
fn libos_an_update_that_fails_rolls_back_with_every_client_session() {
    let d = TestDisk::new("los-rollback");
    let cmds = [
        "write /a hello",
        "mkdir /d",
        "cd /d",
        "update fs fs-faulty",
        "pwd",
        "cat /a",
        "ps",
        "cat /scribe/status",
    ];
    let t = common::boot_with_disk(Personality::Libos, &d, &cmds, 180);
    // The scribe's requests may make it fail before the shell sees it serve: then `update`
    // itself says it rolled back, and fails.
    check(
        &t,
        t.failed_commands().iter().all(|c| *c == "update fs fs-faulty"),
        "every other command succeeds: the failed request is served again",
    );
    check(&t, t.console.contains("panicked: at"), "the faulty version fails");
    check(
        &t,
        t.console.contains("the update to version 3 failed (panic)")
            && t.console.contains("rolled back to version 1 as generation 2"),
        "the kernel rolls the update back",
    );
    // The faulty version answers each session's first request (migrating it to layout 4) and
    // fails its second: at least the session that made two is put back.
    check(&t, !t.console.contains(": 0 of 2 client state(s) restored"), "and restores the migrated sessions");
    check(&t, answer_after(&t, "pwd") == Some("/d"), "the shell's current directory is as before");
    check(&t, answer_after(&t, "cat /a") == Some("hello"), "its files too");
    let fs = ps_row(&t, "fs");
    check(&t, fs.get(7) == Some(&"1") && fs.get(2) == Some(&"2"), "ps: version 1 again, generation 2");
    let status = outputs(&t, "cat /scribe/status").join("\n");
    check(&t, status.contains(" 0 errors"), &format!("the scribe saw no error: {status}"));
    check(&t, !t.console.contains("[scribe] ERROR"), "the scribe found nothing wrong");
}

#[test]
fn libos_updates_that_cannot_be_done_are_refused_and_change_nothing() {
    let d = TestDisk::new("los-refused");
    let cmds = [
        "write /a hello",
        "update fs",
        "update fs nosuch",
        "update timer fs-v2",
        "update fs fs-v2 0",
        "update nosuch fs-v2",
        "update shell fs-v2",
        // The disk cell paused: the scribe's next write holds fs in a disk call, for good.
        "pause virtio-blk",
        "sleep 1000",
        "update fs fs-v2",
        "resume virtio-blk",
        "sleep 500",
        "ps",
        "cat /a",
        "cat /scribe/status",
    ];
    let t = common::boot_with_disk(Personality::Libos, &d, &cmds, 180);
    let want = [
        "update fs nosuch",
        "update timer fs-v2",
        "update fs fs-v2 0",
        "update nosuch fs-v2",
        "update shell fs-v2",
        "update fs fs-v2",
    ];
    check(
        &t,
        t.failed_commands() == want,
        &format!("exactly the impossible updates fail: {:?}", t.failed_commands()),
    );
    let listed = outputs(&t, "update fs").join("\n");
    check(
        &t,
        listed.contains("fs-v1: version 1, writes layout 3, reads layouts [3]  (running)")
            && listed.contains("fs-v2"),
        &format!("`update fs` lists the staged versions: {listed}"),
    );
    check(
        &t,
        answer_after(&t, "update fs fs-v2")
            .is_some_and(|l| l.contains("stayed busy serving requests for 2000 ms")),
        "a server that stays busy is not updated",
    );
    check(&t, !t.console.contains("updated: version"), "no update happened");
    let fs = ps_row(&t, "fs");
    check(&t, fs.get(2) == Some(&"0") && fs.get(7) == Some(&"1"), "fs: generation 0, version 1");
    check(&t, answer_after(&t, "cat /a") == Some("hello"), "files intact");
    let status = outputs(&t, "cat /scribe/status").join("\n");
    check(&t, status.contains(" 0 errors"), &format!("the scribe went on once the disk came back: {status}"));
}
