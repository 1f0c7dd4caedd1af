//! The state-spill audit on the libos (`audit NAME`): every cell the audit has a workload for
//! leaves nothing of one client's requests in its memory when another client comes (0
//! undeclared spill), and a build of fs that spills is caught, with where it spills named.

mod common;

use axolotl_images::Personality;
use common::{check, outputs, TestDisk};

/// The summary line of `audit NAME`, split into `key=value` pairs.
fn summary<'a>(t: &'a axolotl_images::qemu::Transcript, name: &str) -> Vec<(&'a str, &'a str)> {
    let head = format!("audit {name}: ");
    t.console
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(head.as_str()))
        .map(|rest| rest.split_whitespace().filter_map(|kv| kv.split_once('=')).collect())
        .unwrap_or_default()
}

fn value<'a>(pairs: &[(&'a str, &'a str)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

#[test]
fn libos_every_cell_is_spill_free_and_a_spilling_fs_is_caught() {
    let d = TestDisk::new("los-audit");
    let cells = ["fs", "timer", "ramdisk", "virtio-blk", "console"];
    let mut cmds: Vec<String> = cells.iter().map(|c| format!("audit {c}")).collect();
    cmds.extend(["update fs fs-spill".to_string(), "audit fs 40".to_string(), "audit".to_string()]);
    let cmds: Vec<&str> = cmds.iter().map(String::as_str).collect();
    let t = common::boot_with_disk(Personality::Libos, &d, &cmds, 300);
    for cell in cells {
        let outs = outputs(&t, &format!("audit {cell}")).join("\n");
        let s: Vec<(&str, &str)> = outs
            .lines()
            .find_map(|l| l.strip_prefix(&format!("audit {cell}: ")))
            .map(|rest| rest.split_whitespace().filter_map(|kv| kv.split_once('=')).collect())
            .unwrap_or_default();
        check(
            &t,
            value(&s, "verdict") == Some("clean") && value(&s, "spill") == Some("0"),
            &format!("{cell}: clean"),
        );
        // Two auditors took turns: a test that saw no switch would prove nothing.
        let switches: u32 = value(&s, "switches").and_then(|v| v.parse().ok()).unwrap_or(0);
        check(&t, switches >= 19, &format!("{cell}: clients took turns ({switches} switches)"));
    }
    let fs = outputs(&t, "audit fs").join("\n");
    check(
        &t,
        fs.contains("audit: declared") && fs.contains("name=block cache"),
        "fs's block cache is reported as declared",
    );
    let spilled = outputs(&t, "audit fs 40").join("\n");
    check(
        &t,
        spilled.contains("audit: spill ")
            && spilled.contains("symbol=stack+0x")
            && value(&summary(&t, "fs"), "verdict") == Some("SPILL"),
        &format!("the spilling fs is caught, in its serving loop's frame: {spilled}"),
    );
    let failed = t.failed_commands();
    check(
        &t,
        failed == ["audit fs 40", "audit"],
        &format!("only the spilling audit and the bare command fail: {failed:?}"),
    );
    check(&t, t.console.contains("usage: audit NAME [REQUESTS]"), "a bare `audit` gets the usage");
}
