//! The campaign loop: pick a moment and a fault with the seeded generator, inject it, watch a
//! few workload steps, classify, and print a line per fault and a [`Summary`].
//!
//! ```text
//!  0-2 steps (before fault N) ─► inject fault N ─► 4 steps (fault N) ─► verdict, restarts of
//!  other tasks ─► `fault N: KIND WHAT -> VERDICT` ─► next fault ... ─► final check ─► summary
//! ```
//! What the steps saw is printed as notes (`crate::note`) of the phase they ran in; only the
//! window after a fault decides its verdict. Wrong answers count in `lost` wherever they are
//! seen, so `lost` is the number of LOST and WRONG notes.

use crate::note::{Noting, Phase, Problem};
use crate::personality::{Shell, Target};
use crate::summary::Summary;
use crate::workload::{Records, Seen, Sleeps, Work};
use algo::rng::Rng;

/// Workload steps watched after each fault.
const WINDOW: u32 = 4;

/// What became of one fault (the words the host tool parses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Benign,
    Recovered,
    Error,
    Lost,
}

impl Verdict {
    /// The worst thing the client saw decides; a crash the client never noticed is a recovery.
    fn of(seen: Seen, crashed: bool) -> Verdict {
        if seen.wrong > 0 {
            Verdict::Lost
        } else if seen.errors > 0 {
            Verdict::Error
        } else if crashed {
            Verdict::Recovered
        } else {
            Verdict::Benign
        }
    }

    fn name(self) -> &'static str {
        match self {
            Verdict::Benign => "benign",
            Verdict::Recovered => "recovered",
            Verdict::Error => "error",
            Verdict::Lost => "lost",
        }
    }
}

/// Count one fault into the summary. `lost` counts wrong answers, not faults: one fault can
/// lose several records.
fn tally(summary: &mut Summary, verdict: Verdict, seen: Seen) {
    summary.manifested += u32::from(verdict != Verdict::Benign);
    summary.recovered += u32::from(verdict == Verdict::Recovered);
    // Any error the client saw counts, also from a fault whose verdict is `lost`.
    summary.errors += u32::from(seen.errors > 0);
    summary.lost += seen.wrong;
}

/// How a campaign ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// It ran (all its faults, or until the target was halted) and printed its summary.
    Ran,
    /// Ctrl-C stopped it between two faults; the final check and the summary of the faults
    /// injected so far were printed.
    Interrupted,
    /// It could not start (no such task, no workload, no session); the reason was printed.
    NotRun,
}

/// Run a campaign of `count` faults against task `name`.
pub fn run<S: Shell>(shell: &mut S, name: &str, count: u32, seed: u64) -> Ended {
    let Some(mut target) = shell.target(name) else {
        shell.println(format_args!("error: campaign: no task named '{}'", name));
        return Ended::NotRun;
    };
    let Some(mut work) = workload(shell, name) else { return Ended::NotRun };
    let Ok(mut summary) = Summary::new(name) else {
        shell.println(format_args!("error: campaign: '{}' does not fit a summary line", name));
        return Ended::NotRun;
    };
    let mut ended = Ended::Ran;
    shell.println(format_args!(
        "campaign {}: {} faults, seed {}, {} workload steps watched after each",
        name, count, seed, WINDOW
    ));
    let others_before = target.restarts_of_others();
    let mut others_seen = others_before;
    let mut rng = Rng(seed);
    let progress = (count / 10).max(1);
    let mut attempts = 0;
    while summary.injected < count && attempts < count * 4 {
        attempts += 1;
        if shell.interrupted() {
            shell.println(format_args!(
                "campaign {}: interrupted (Ctrl-C) after {} of {} faults",
                name, summary.injected, count
            ));
            ended = Ended::Interrupted;
            break;
        }
        // A random moment: a few workload steps first. They may meet late effects of earlier
        // faults, which no verdict counts: only wrong answers count (in `lost`).
        let before = Phase::Before(summary.injected + 1);
        for _ in 0..rng.below(3) {
            summary.lost += work.step(&mut Noting { out: shell, phase: before }, &mut rng).wrong;
        }
        if !target.wait_running() {
            shell.println(format_args!("campaign {}: {} is halted; stopping early", name, name));
            break;
        }
        let kinds = S::Target::KINDS;
        let kind = kinds[rng.below(kinds.len() as u64) as usize];
        let before = target.status();
        // Nothing to hit (e.g. no session to corrupt) is not an injected fault: pick again.
        let Some(what) = target.inject(kind, rng.next_u64()) else { continue };
        summary.injected += 1;
        let phase = Phase::Fault(summary.injected);
        let mut seen = Seen::default();
        for _ in 0..WINDOW {
            seen.add(work.step(&mut Noting { out: shell, phase }, &mut rng));
        }
        let after = target.status();
        let crashed = after.restarts > before.restarts || after.down;
        target.wait_running();
        let verdict = Verdict::of(seen, crashed);
        tally(&mut summary, verdict, seen);
        // A fault that reached another task is reported with the fault, not only at the end.
        let others = target.restarts_of_others();
        if others > others_seen {
            let n = others - others_seen;
            let times = if n == 1 { "time" } else { "times" };
            Noting { out: shell, phase }
                .note(Problem::Restarts, format_args!("other tasks restarted {} {}", n, times));
        }
        others_seen = others_seen.max(others);
        let kind = S::Target::kind_name(kind);
        shell.println(format_args!("fault {}: {} {:#x} -> {}", summary.injected, kind, what, verdict.name()));
        if summary.injected % progress == 0 {
            shell.println(format_args!(
                "campaign {}: {}/{} injected, {} manifested, {} recovered",
                name, summary.injected, count, summary.manifested, summary.recovered
            ));
        }
    }
    summary.lost += work.verify_all(&mut Noting { out: shell, phase: Phase::FinalCheck }).wrong;
    let others = target.restarts_of_others().saturating_sub(others_before);
    shell.println(format_args!(
        "campaign {}: other tasks restarted {} times during the campaign",
        name, others
    ));
    // A panic would have ended the run before this line: `panics` stays 0.
    shell.println(format_args!("{}", summary));
    ended
}

/// The checked workload for the server called `name`, set up; `None` (after saying why) if
/// there is none or it cannot be set up.
fn workload<S: Shell>(shell: &mut S, name: &str) -> Option<Work<S::Files, S::Clock>> {
    let work = match name {
        "fs" | "ramdisk" | "virtio-blk" => shell.files().map(|fs| Records::create(fs).map(Work::File)),
        "timer" => shell.clock().map(|clock| Ok(Work::Clock(Sleeps(clock)))),
        _ => {
            shell.println(format_args!(
                "error: campaign: no checked workload for '{}' (try fs, ramdisk, virtio-blk or timer)",
                name
            ));
            return None;
        }
    };
    match work {
        Some(Ok(work)) => Some(work),
        Some(Err(e)) => {
            shell.println(format_args!("error: campaign: setting up the file workload: {}", e));
            None
        }
        None => {
            shell.println(format_args!("error: campaign: cannot open a session with the server under test"));
            None
        }
    }
}
