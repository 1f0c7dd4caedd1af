//! Fault containment in the libos (issue #12, items 4 and 5), checked in QEMU with faults the
//! shell's `inject NAME KIND SEED` places deterministically: a wild write from one cell must
//! fault in that cell instead of landing in another; a cell's corrupted message must be an
//! error, not undefined behaviour in its receiver; a block the ramdisk misplaced or corrupted
//! must be detected and recovered, never read back as wrong data; a sleep never ends early.

mod common;

use axolotl_images::qemu::{Machine, Outcome, Transcript};
use axolotl_images::Personality;
use common::{check, outputs, ps_row};

fn boot(commands: &[&str], timeout_secs: u64) -> Transcript {
    common::boot_as(Personality::Libos, Machine::default(), commands, timeout_secs)
}

/// `regflip` seeds that flip bit 23 of the ramdisk's `rdi` while it copies or zeroes a block
/// buffer: with the slot layout before write protection (1 MiB slots), each one sent the
/// ramdisk's `memset`/`memcpy` 8 MiB up, into the shell's stack, and the shell died of it
/// (seed 3617 is the campaign's "ramdisk memset zeroes shell stack").
const WILD_WRITE_SEEDS: [u64; 3] = [3617, 21540, 54688];

#[test]
fn libos_wild_write_from_the_ramdisk_faults_in_the_ramdisk_not_in_the_shell() {
    let mut commands = vec!["write /x hello".to_string()];
    for seed in WILD_WRITE_SEEDS {
        commands.push(format!("inject ramdisk regflip {seed}"));
        commands.push("cat /x".to_string());
    }
    commands.push("ps".to_string());
    let commands: Vec<&str> = commands.iter().map(String::as_str).collect();
    let t = boot(&commands, 90);
    check(&t, t.outcome == Outcome::PoweredOff, "the session ends with the shell powering off");
    check(&t, outputs(&t, "cat /x") == ["hello"; 3], "every read after a fault gives the data back");
    check(&t, !t.console.contains("FAULT in shell"), "no fault ever shows up in the shell");
    check(
        &t,
        ps_row(&t, "shell").get(2..5) == Some(&["0", "run", "0"][..]),
        "the shell is generation 0, never restarted",
    );
    check(
        &t,
        t.console.contains("a wild write stopped:") && t.console.contains("read-only while ramdisk runs"),
        "the ramdisk's wild write is stopped by protection and reported as such",
    );
    check(
        &t,
        ps_row(&t, "ramdisk").get(4).is_some_and(|r| *r != "0"),
        "the writer, the ramdisk, was restarted",
    );
}

/// `regflip` seeds that set the direction flag in the timer (rflags bit 10). The kernel's copy
/// of the timer's answer into the shell's stack then ran backwards, below the answer buffer,
/// over the shell's return addresses: the shell died at rip 0 at every later sleep (the
/// campaign's "shell dies at rip 0"). The kernel now clears DF in every critical section.
const DIRECTION_FLAG_SEEDS: [u64; 3] = [533, 1070, 1885];

#[test]
fn libos_a_direction_flag_flipped_in_the_timer_does_not_reach_the_shell() {
    let mut commands = Vec::new();
    for seed in DIRECTION_FLAG_SEEDS {
        commands.push(format!("inject timer regflip {seed}"));
        commands.extend(std::iter::repeat_n("sleep 5".to_string(), 4));
    }
    commands.push("echo alive".to_string());
    commands.push("ps".to_string());
    let commands: Vec<&str> = commands.iter().map(String::as_str).collect();
    let t = boot(&commands, 90);
    check(&t, t.outcome == Outcome::PoweredOff, "the session ends with the shell powering off");
    check(
        &t,
        t.console.matches("injected regflip into timer (0x110a)").count() == 3,
        "each seed flips rflags bit 10 (DF)",
    );
    check(&t, t.failed.is_empty(), "every sleep succeeds");
    check(&t, !t.console.contains("FAULT in shell"), "the shell never faults");
    check(
        &t,
        ps_row(&t, "shell").get(2..5) == Some(&["0", "run", "0"][..]),
        "the shell is generation 0, never restarted",
    );
    check(&t, outputs(&t, "echo alive") == ["alive"], "the shell is still there");
}

/// The first 25 faults of seed 7 against the timer include the `skip` after which, before the
/// client checked the timer's answers against its own clock, "a 5 ms sleep returned early"
/// (fault 23 of the 300-fault campaign).
#[test]
fn libos_no_sleep_ends_early_under_timer_faults() {
    let t = boot(&["campaign timer 25 7"], 120);
    check(&t, t.outcome == Outcome::PoweredOff, "no core panic");
    let summary = t.console.lines().find(|l| l.starts_with("campaign timer: injected=")).unwrap_or_default();
    check(&t, summary.starts_with("campaign timer: injected=25 "), "25 faults");
    check(&t, summary.ends_with(" errors=0 lost=0 panics=0"), "no error, no sleep cut short");
    check(&t, !t.console.contains("returned early"), "no sleep returned early");
}
