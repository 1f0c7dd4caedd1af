//! `cargo os campaign`: run one fault-injection campaign headless and keep its record.
//!
//! The guest's shell does the work (`campaign NAME COUNT SEED`) and prints a line per fault,
//! notes of what its workload saw (`campaign: fault 12: ERROR: ...`, [`campaign::Note`]) and
//! one summary line; this module boots it (under `-icount` if asked, so restart latencies are
//! counts of retired instructions), reads those lines (the summary with the guest's own
//! [`campaign::Summary`]), the kernel's restart-latency lines and every supervisor decision
//! about another task, and writes `target/os/campaign-NAME-sSEED.json`.
//!
//! ```text
//!  console ─► fault N lines ──────► faults, each with the notes of its window
//!          ─► notes before a fault, of the final check ─► outside_windows
//!          ─► [kernel] NAME gen G ready ─► restart latencies (the target's)
//!          ─► [reincarnation]/[kernel] NAME gen G: ...; restarting ─► other_tasks (not the target)
//!          ─► summary line ─► summary; if none (a panic, a stall, the shell restarted): rebuilt
//! ```
//! A campaign the guest could not finish is not complete: the kernel panicked, the machine
//! stopped answering, or a fault reached the shell running the campaign (on the libos one can),
//! which was restarted and lost the campaign. The record says which.

use crate::qemu::{self, Echo, Machine, Outcome, Why};
use crate::{build, fail, out_dir, progress, Personality, Result};
use campaign::{Note, Phase, Problem, Summary};
use indicatif::ProgressBar;
use serde::Serialize;
use std::fmt;
use std::path::Path;
use std::time::Duration;

/// The task that runs the campaign, on both personalities.
const SHELL: &str = "shell";

/// One fault, as the guest reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fault {
    pub n: u32,
    pub kind: String,
    /// What was hit (register and bit, address, session and offset), as printed.
    pub target: String,
    /// benign, recovered, error or lost.
    pub verdict: String,
    /// What the workload saw in the window after the fault, and restarts of other tasks, as
    /// the guest noted them: `ERROR: write of record 5: server failed`, `LOST: ...`, `WRONG: ...`,
    /// `RESTARTS: ...`.
    pub notes: Vec<String>,
}

/// A note printed outside every fault's window: at the moment before a fault, or in the final
/// check. Wrong answers there count in `lost`; errors there count for no fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outside {
    /// `before fault N` or `final check`.
    pub at: String,
    pub note: String,
}

/// What a supervisor did to a task other than the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    Restarted,
    /// Held after a crash loop: not restarted again.
    Held,
    /// Not supervised: stopped for good (libos).
    Stopped,
}

/// A restart (or hold, or stop) of a task other than the target, read from the console.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OtherTask {
    pub task: String,
    /// The generation that failed.
    pub generation: u32,
    pub event: Event,
    /// The fault being injected or watched when it happened: one more than the last fault
    /// whose line came before it (so, after the last fault, one more than the faults injected).
    pub during_fault: u32,
    /// The console line it was read from.
    pub line: String,
}

impl fmt::Display for OtherTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.event {
            Event::Restarted => "restarted",
            Event::Held => "HELD after a crash loop",
            Event::Stopped => "stopped",
        };
        write!(f, "{} gen {} {what} during fault {}", self.task, self.generation, self.during_fault)
    }
}

/// What the restart latencies count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Unit {
    /// The host CPU's time stamp counter (a run at full speed).
    #[serde(rename = "TSC ticks")]
    TscTicks,
    /// Retired instructions (under `-icount shift=0`, where the guest's TSC counts them).
    #[serde(rename = "instructions")]
    Instructions,
}

impl Unit {
    pub fn name(self) -> &'static str {
        match self {
            Unit::TscTicks => "TSC ticks",
            Unit::Instructions => "instructions",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Report {
    pub seed: u64,
    /// The faults asked for, as the guest's first line says (0 if it never said).
    pub requested: u32,
    pub faults: Vec<Fault>,
    pub outside_windows: Vec<Outside>,
    /// The guest's summary line, or one rebuilt from the fault lines if the guest never printed
    /// it (a panic, a stall, the shell restarted).
    pub summary: Summary,
    /// Restart latencies of the server (fault to its next incarnation's first `recv`).
    pub latencies: Vec<u64>,
    pub unit: Unit,
    /// Restarts, holds and stops of every task but the target, after the campaign began.
    pub other_tasks: Vec<OtherTask>,
    /// Restarts of other tasks as the campaign in the guest counted them (by task, not by name:
    /// it also sees a task that bears the target's name), if it printed its count.
    pub guest_other_restarts: Option<u32>,
    /// Why the guest could not finish the campaign, if it could not.
    pub cut_short: Option<String>,
    /// How the run ended ("powered off cleanly", a panic, a stall...), as `Transcript::summary`.
    pub ended: String,
}

/// The JSON record of a campaign, `target/os/campaign-NAME-sSEED.json`.
#[derive(Serialize)]
struct Record<'a> {
    server: &'a str,
    seed: u64,
    faults_requested: u32,
    /// Every fault asked for was injected and classified, and the guest said so.
    complete: bool,
    cut_short: Option<&'a str>,
    summary: Counts,
    /// Of the faults that manifested, the share the client never noticed (1 if none did).
    recovered_of_manifested: f64,
    ended: &'a str,
    /// `null` when the server never restarted.
    restart_latency: Option<Latencies>,
    other_tasks: &'a [OtherTask],
    /// The guest's own count (see `Report::guest_other_restarts`).
    other_task_restarts_counted_by_the_guest: Option<u32>,
    outside_windows: &'a [Outside],
    faults: &'a [Fault],
}

/// A summary's counts; the server is named once, at the top of the record.
#[derive(Serialize)]
struct Counts {
    injected: u32,
    manifested: u32,
    recovered: u32,
    errors: u32,
    lost: u32,
    panics: u32,
}

impl From<&Summary> for Counts {
    fn from(s: &Summary) -> Counts {
        Counts {
            injected: s.injected,
            manifested: s.manifested,
            recovered: s.recovered,
            errors: s.errors,
            lost: s.lost,
            panics: s.panics,
        }
    }
}

#[derive(Serialize)]
struct Latencies {
    unit: Unit,
    count: usize,
    min: u64,
    median: u64,
    max: u64,
}

fn parse_fault(line: &str) -> Option<Fault> {
    // "fault 12: regflip 0x203 -> benign"
    let rest = line.strip_prefix("fault ")?;
    let (n, rest) = rest.split_once(": ")?;
    let (what, verdict) = rest.split_once(" -> ")?;
    let (kind, target) = what.split_once(' ')?;
    Some(Fault {
        n: n.parse().ok()?,
        kind: kind.into(),
        target: target.into(),
        verdict: verdict.trim().into(),
        notes: Vec::new(),
    })
}

/// A supervisor's decision about a task, from its console line: the microkernel's
/// reincarnation server and the libos kernel print them alike (`fault::recovery::Decision`),
///     [reincarnation] fs gen 3: killed; restarting as gen 4; 1 caller(s) suspended, 0 failed
///     [kernel] echo gen 4: killed; 5 faults in a row ...: crash loop, holding echo
///     [kernel] echo gen 0: killed; not supervised: stopped
/// and a restarted reincarnation server says `[reincarnation] generation G supervising again`.
/// (The marker is looked for anywhere in the line: a kernel line can land inside another.)
fn task_event(line: &str) -> Option<(&str, u32, Event)> {
    if let Some(i) = line.find("[reincarnation] generation ") {
        let rest = &line[i + "[reincarnation] generation ".len()..];
        let (g, rest) = rest.split_once(' ')?;
        let g: u32 = g.parse().ok()?;
        return rest
            .starts_with("supervising again")
            .then(|| ("reincarnation", g.saturating_sub(1), Event::Restarted));
    }
    let i = ["[reincarnation] ", "[kernel] "].iter().find_map(|m| line.find(m).map(|i| i + m.len()))?;
    let (task, rest) = line[i..].split_once(" gen ")?;
    let (g, what) = rest.split_once(": ")?;
    if task.is_empty() || task.contains(' ') || !g.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let event = if what.contains("; restarting as gen ") {
        Event::Restarted
    } else if what.ends_with(&format!("crash loop, holding {task}")) {
        Event::Held
    } else if what.ends_with("; not supervised: stopped") {
        Event::Stopped
    } else {
        return None;
    };
    Some((task, g.parse().ok()?, event))
}

/// Read a campaign's console back. `panicked`: the run ended in a kernel panic.
pub fn parse(console: &str, server: &str, seed: u64, panicked: bool) -> Result<Report> {
    let header = format!("campaign {server}: ");
    let mut requested = 0;
    let mut started = false;
    let mut faults: Vec<Fault> = Vec::new();
    let mut window: Vec<String> = Vec::new();
    let mut outside_windows = Vec::new();
    let mut other_tasks = Vec::new();
    let mut printed = None;
    let mut guest_other_restarts = None;
    let mut lost = 0;
    let others_prefix = format!("campaign {server}: other tasks restarted ");
    let latency_prefix = format!("[kernel] {server} gen ");
    let mut latencies = Vec::new();
    // A log line can tear a fault line in two (the kernel's report of a restart, printed from
    // a trap): the fault line is read whole, after the log line.
    for line in crate::qemu::lines_mended(console) {
        let line = line.trim_end();
        if let Some(rest) = line.strip_prefix(&header) {
            // "campaign fs: 3 faults, seed 9, 4 workload steps watched after each"
            if let Some((n, _)) = rest.split_once(" faults, seed ") {
                requested = n.parse().unwrap_or(0);
                started = true;
            }
        }
        if let Some(n) = line.strip_prefix(&others_prefix).and_then(|r| r.split_whitespace().next()) {
            guest_other_restarts = n.parse().ok();
        }
        if let Some(mut fault) = parse_fault(line) {
            fault.notes = std::mem::take(&mut window);
            faults.push(fault);
        } else if let Some(note) = Note::parse(line) {
            let text = format!("{}: {}", note.problem.name(), note.text);
            lost += u32::from(matches!(note.problem, Problem::Lost | Problem::Wrong));
            match note.phase {
                Phase::Fault(_) => window.push(text),
                at => outside_windows.push(Outside { at: at.to_string(), note: text }),
            }
        } else if let Ok(summary) = line.parse::<Summary>() {
            if summary.server() == server {
                printed = Some(summary);
            }
        } else if let Some((task, generation, event)) = task_event(line).filter(|_| started) {
            if task != server {
                let during_fault = faults.last().map_or(0, |f| f.n) + 1;
                other_tasks.push(OtherTask {
                    task: task.into(),
                    generation,
                    event,
                    during_fault,
                    line: line.into(),
                });
            }
        }
        if let Some((_, rest)) = line.strip_prefix(&latency_prefix).and_then(|r| r.split_once(" ready: ")) {
            latencies.extend(rest.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()));
        }
    }
    // The shell's restart ends the campaign it ran: the guest cannot say so, the console can.
    let cut_short = other_tasks.iter().find(|e| e.task == SHELL).filter(|_| printed.is_none()).map(|e| {
        format!(
            "the shell running the campaign was restarted during fault {} ({}); the campaign died with it",
            e.during_fault,
            e.line.trim_start()
        )
    });
    let summary = match printed {
        Some(s) if !panicked => s,
        // The guest never printed its summary: count the fault lines it did print.
        _ => {
            let count = |v: &str| faults.iter().filter(|f| f.verdict == v).count() as u32;
            let mut s = Summary::new(server).map_err(|e| fail!("'{server}' cannot name a server: {e}"))?;
            s.injected = faults.len() as u32;
            s.manifested = faults.len() as u32 - count("benign");
            s.recovered = count("recovered");
            s.errors =
                faults.iter().filter(|f| f.notes.iter().any(|n| n.starts_with("ERROR: "))).count() as u32;
            s.lost = lost;
            s.panics = u32::from(panicked);
            s
        }
    };
    Ok(Report {
        seed,
        requested,
        faults,
        outside_windows,
        summary,
        latencies,
        unit: Unit::TscTicks,
        other_tasks,
        guest_other_restarts,
        cut_short,
        ended: String::new(),
    })
}

fn stats(v: &[u64]) -> Option<(u64, u64, u64)> {
    let mut v = v.to_vec();
    v.sort_unstable();
    Some((*v.first()?, v[v.len() / 2], *v.last()?))
}

impl Report {
    /// Every fault asked for was injected and classified, the guest printed its summary, and
    /// the kernel did not panic.
    pub fn complete(&self) -> bool {
        let s = &self.summary;
        self.cut_short.is_none() && s.panics == 0 && self.requested > 0 && s.injected == self.requested
    }

    /// The record as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        let s = &self.summary;
        let rate = if s.manifested > 0 { f64::from(s.recovered) / f64::from(s.manifested) } else { 1.0 };
        let record = Record {
            server: s.server(),
            seed: self.seed,
            faults_requested: self.requested,
            complete: self.complete(),
            cut_short: self.cut_short.as_deref(),
            summary: s.into(),
            // Four decimals, as a person reads a rate; more would only be noise.
            recovered_of_manifested: (rate * 1e4).round() / 1e4,
            ended: &self.ended,
            restart_latency: stats(&self.latencies).map(|(min, median, max)| Latencies {
                unit: self.unit,
                count: self.latencies.len(),
                min,
                median,
                max,
            }),
            other_tasks: &self.other_tasks,
            other_task_restarts_counted_by_the_guest: self.guest_other_restarts,
            outside_windows: &self.outside_windows,
            faults: &self.faults,
        };
        let mut json = serde_json::to_string_pretty(&record).expect("a record of strings and numbers");
        json.push('\n');
        json
    }

    /// Counts by kind: (kind, injected, manifested, recovered).
    pub fn by_kind(&self) -> Vec<(String, u32, u32, u32)> {
        let mut kinds: Vec<String> = self.faults.iter().map(|f| f.kind.clone()).collect();
        kinds.sort();
        kinds.dedup();
        kinds
            .into_iter()
            .map(|k| {
                let of = self.faults.iter().filter(|f| f.kind == k);
                let n = of.clone().count() as u32;
                let m = of.clone().filter(|f| f.verdict != "benign").count() as u32;
                let r = of.filter(|f| f.verdict == "recovered").count() as u32;
                (k, n, m, r)
            })
            .collect()
    }
}

/// Progress lines worth showing while a campaign against `server` runs: the guest's own lines
/// about it, wrong answers (LOST, WRONG), restarts of other tasks (its notes and the
/// supervisors' lines), a panic. Errors are many on a bad run: the record has each.
fn worth_showing(line: &str, server: &str) -> bool {
    line.starts_with("campaign ")
        || Note::parse(line).is_some_and(|n| n.problem != Problem::Error)
        || task_event(line).is_some_and(|(task, _, _)| task != server)
        || line.contains("KERNEL PANIC")
}

/// What the campaign's console shows as it runs: its progress lines on stdout, and on `bar`
/// the faults injected so far with the running counts.
fn watch(bar: ProgressBar, server: &str) -> Echo {
    let server = server.to_string();
    let (mut manifested, mut recovered, mut errors, mut lost) = (0, 0, 0, 0);
    Echo::lines(move |line| {
        if let Some(f) = parse_fault(line) {
            manifested += u32::from(f.verdict != "benign");
            recovered += u32::from(f.verdict == "recovered");
            errors += u32::from(f.verdict == "error");
            lost += u32::from(f.verdict == "lost");
            bar.set_position(f.n.into());
            bar.set_message(format!(
                "{manifested} manifested, {recovered} recovered, {errors} errors, {lost} lost"
            ));
        } else if qemu::after_prompt(line).is_some_and(|(_, typed)| typed.starts_with("campaign ")) {
            bar.set_message("injecting");
        }
        if worth_showing(line, &server) {
            progress::out(&bar, line);
        }
    })
}

/// Boot, run the campaign, write the JSON (and the console, beside it with the extension
/// `.log`). Returns the report and the JSON's path.
pub fn run(
    personality: Personality,
    server: &str,
    faults: u32,
    seed: u64,
    icount: bool,
) -> Result<(Report, std::path::PathBuf)> {
    // A name that cannot head a summary line would only be found out after the whole run.
    Summary::new(server).map_err(|e| fail!("'{server}' cannot name a server: {e}"))?;
    let image = build::build()?;
    // A `hang` costs a second of guest time to detect: under -icount that is 10^9 instructions.
    let timeout = Duration::from_secs(120 + faults as u64 * if icount { 20 } else { 4 });
    let bar = progress::bar(faults.into(), &format!("campaign {server}"));
    progress::note(
        &bar,
        format!(
            "[os] campaign against {server} ({}): {faults} faults, seed {seed}, timeout {} s",
            personality.id(),
            timeout.as_secs()
        ),
    );
    bar.set_message(format!("booting the {}", personality.id()));
    // The disk driver is only exercised with a disk: a fresh one, never the user's. It is kept
    // for a look when the run did not complete, removed otherwise.
    let scratch = match server {
        "virtio-blk" => Some(crate::disk::Scratch::new(&format!("campaign-{server}-s{seed}"))?),
        _ => None,
    };
    let disk: Option<&'static Path> =
        scratch.as_ref().map(|s| &*Box::leak(s.path().to_path_buf().into_boxed_path()));
    let machine = Machine { icount, disk, ..Machine::default() };
    let cmd = [format!("campaign {server} {faults} {seed}")];
    // Every fault prints a line within seconds (a detected hang takes one second of guest time,
    // 10^9 instructions under -icount): a console silent far longer means the machine stopped.
    let silence = Duration::from_secs(if icount { 600 } else { 120 });
    let limits = qemu::Limits { total: timeout, silence: Some(silence) };
    let t = qemu::exec(&image.iso, personality, machine, &cmd, limits, watch(bar.clone(), server));
    progress::keep(&bar);
    let t = t?;
    let mut report = parse(&t.console, server, seed, t.outcome == Outcome::Panicked)?;
    report.ended = t.summary();
    report.requested = faults;
    report.unit = if icount { Unit::Instructions } else { Unit::TscTicks };
    if report.cut_short.is_none() {
        report.cut_short = t.failed.first().map(|f| match f.why {
            Why::ShellRestarted => {
                "the shell running the campaign was restarted; the campaign died with it".into()
            }
            Why::Status(status) => format!("the guest's campaign command failed with status {status}"),
        });
    }
    if !matches!(t.outcome, Outcome::PoweredOff | Outcome::Panicked) {
        eprintln!("[os] the run did not end cleanly: {}", report.ended);
        if let Some(last) = report.faults.last() {
            eprintln!(
                "[os] the last fault reported was fault {} ({} {}); the machine stopped answering \
                 during or after fault {}. The record holds the {} faults before.",
                last.n,
                last.kind,
                last.target,
                last.n + 1,
                report.faults.len()
            );
        }
    }
    if let Some(scratch) = scratch {
        if report.cut_short.is_some() || !matches!(t.outcome, Outcome::PoweredOff) {
            eprintln!("[os] the campaign's disk is kept: {}", scratch.keep().display());
        }
    }
    let prefix = if personality == Personality::Libos { "campaign-libos" } else { "campaign" };
    let path = out_dir().join(format!("{prefix}-{server}-s{seed}.json"));
    std::fs::write(&path, report.to_json()).map_err(|e| fail!("cannot write {}: {e}", path.display()))?;
    // The whole console beside it: the record quotes its lines, this is where they stand.
    let log = path.with_extension("log");
    std::fs::write(&log, &t.console).map_err(|e| fail!("cannot write {}: {e}", log.display()))?;
    Ok((report, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONSOLE: &str = "\
axolotl> prompt 0a1b2c3d4e5f
axolotl [0a1b2c3d4e5f:0]> campaign fs 3 9
campaign fs: 3 faults, seed 9, 4 workload steps watched after each
[kernel] fs gen 1 ready: 5000 TSC ticks from its predecessor's fault to its first recv; 2 sessions kept
fault 1: kill 0x0 -> recovered
campaign: before fault 2: LOST: record 3 differs from what was acknowledged
fault 2: regflip 0x203 -> benign
[kernel] fs gen 2 ready: 7000 TSC ticks from its predecessor's fault to its first recv; 2 sessions kept
[reincarnation] ramdisk gen 0: page fault (#PF) at 0x40001234; restarting as gen 1; 1 caller(s) suspended, 0 failed
campaign: fault 3: ERROR: read of record 5: the session's state was reset
campaign: fault 3: RESTARTS: other tasks restarted 1 time
fault 3: ssr 0x30010 -> error
campaign fs: other tasks restarted 1 times during the campaign
campaign fs: injected=3 manifested=2 recovered=1 errors=1 lost=1 panics=0
";

    fn summary(counts: [u32; 6]) -> Summary {
        let mut s = Summary::new("fs").unwrap();
        [s.injected, s.manifested, s.recovered, s.errors, s.lost, s.panics] = counts;
        s
    }

    #[test]
    fn parses_faults_their_notes_summary_and_latencies() {
        let r = parse(CONSOLE, "fs", 9, false).unwrap();
        assert_eq!(r.faults.len(), 3);
        assert_eq!(
            r.faults[2],
            Fault {
                n: 3,
                kind: "ssr".into(),
                target: "0x30010".into(),
                verdict: "error".into(),
                notes: vec![
                    "ERROR: read of record 5: the session's state was reset".into(),
                    "RESTARTS: other tasks restarted 1 time".into()
                ],
            }
        );
        assert!(r.faults[..2].iter().all(|f| f.notes.is_empty()), "a note before a fault is not its");
        let before = Outside {
            at: "before fault 2".into(),
            note: "LOST: record 3 differs from what was acknowledged".into(),
        };
        assert_eq!(r.outside_windows, [before]);
        assert_eq!(r.summary, summary([3, 2, 1, 1, 1, 0]));
        assert_eq!((r.requested, r.latencies.as_slice()), (3, &[5000, 7000][..]));
        assert_eq!(r.by_kind()[0], ("kill".to_string(), 1, 1, 1));
        assert_eq!(r.other_tasks.len(), 1);
        assert_eq!(r.other_tasks[0].to_string(), "ramdisk gen 0 restarted during fault 3");
        assert_eq!(r.guest_other_restarts, Some(1), "the guest's own count is kept");
        assert!(r.cut_short.is_none() && r.complete());
    }

    #[test]
    fn a_task_with_the_targets_name_is_counted_by_the_guest_and_kept() {
        // A libos ramdisk campaign once saw a second task named "ramdisk" made by a fault: the
        // console's lines name the target, the guest's count (by task) says 1.
        let console = CONSOLE.replace("[reincarnation] ramdisk gen 0", "[kernel] fs gen 0");
        let r = parse(&console, "fs", 9, false).unwrap();
        assert!(r.other_tasks.is_empty(), "no other name in the console");
        assert_eq!(r.guest_other_restarts, Some(1));
        assert!(r.to_json().contains("\"other_task_restarts_counted_by_the_guest\": 1"));
    }

    #[test]
    fn supervisor_decisions_on_both_personalities() {
        let restart =
            "[reincarnation] fs gen 3: killed; restarting as gen 4; 1 caller(s) suspended, 0 failed";
        assert_eq!(task_event(restart), Some(("fs", 3, Event::Restarted)));
        let later =
            "[kernel] echo gen 2: killed; restarting as gen 3 after 100 ms; 0 caller(s) suspended, 0 failed";
        assert_eq!(task_event(later), Some(("echo", 2, Event::Restarted)));
        let held = "[kernel] echo gen 4: killed; 5 faults in a row without answering a request: crash loop, holding echo";
        assert_eq!(task_event(held), Some(("echo", 4, Event::Held)));
        assert_eq!(
            task_event("[kernel] idle gen 0: killed; not supervised: stopped"),
            Some(("idle", 0, Event::Stopped))
        );
        let again = "[reincarnation] generation 1 supervising again (0 fault records were lost)";
        assert_eq!(task_event(again), Some(("reincarnation", 0, Event::Restarted)));
        let inside =
            "fault 9: kill 0x0 -> rec[reincarnation] shell gen 0: killed; restarting as gen 1; 0 caller(s)";
        assert_eq!(task_event(inside), Some(("shell", 0, Event::Restarted)), "a line inside another");
        for not in [
            "[kernel] fs gen 1 ready: 5000 TSC ticks from its predecessor's fault to its first recv",
            "[kernel] restarted fs (task 3) as generation 1",
            "[kernel] KILL fs (task 3, gen 0) on request",
            "echo fs gen 3: killed; restarting as gen 4",
            "[reincarnation] supervising; faults of supervised tasks come here",
        ] {
            assert_eq!(task_event(not), None, "{not}");
        }
    }

    #[test]
    fn a_fault_line_a_restart_report_tore_is_read_whole() {
        // As in a libos timer campaign: the JSON had 999 faults where the summary said 1000.
        let torn = "campaign fs: 2 faults, seed 9, 4 workload steps watched after each\n\
                    fault 1: kill 0x0 -> rec[kernel] timer gen 0: killed; restarting as gen 1\n\
                    overed\nfault 2: memflip 0x10 -> benign\n";
        let r = parse(torn, "fs", 9, true).unwrap();
        let faults: Vec<(u32, &str)> = r.faults.iter().map(|f| (f.n, f.verdict.as_str())).collect();
        assert_eq!(faults, [(1, "recovered"), (2, "benign")]);
        assert_eq!(r.other_tasks.len(), 1, "the restart in the middle is seen too");
        assert_eq!(r.other_tasks[0].during_fault, 1);
    }

    #[test]
    fn a_panic_rebuilds_the_summary_from_the_fault_lines() {
        let cut = &CONSOLE[..CONSOLE.find("campaign: fault 3").unwrap()];
        let r = parse(cut, "fs", 9, true).unwrap();
        assert_eq!(r.summary, summary([2, 1, 1, 0, 1, 1]));
        assert!(!r.complete());
        assert!(parse(cut, "no such server", 9, true).is_err());
    }

    /// The console of `cargo os campaign ramdisk --faults 700 --seed 1 --personality libos`, in
    /// which a fault in the ramdisk cell reached the shell running the campaign (the lines of
    /// faults 1 to 565 cut). Before, its record said `ended: powered off cleanly` and no other
    /// task restarted.
    const SHELL_RESTARTED: &str = include_str!("../fixtures/campaign-libos-ramdisk-s1-shell-restarted.log");

    #[test]
    fn a_campaign_cut_short_by_a_restart_of_its_shell_says_so() {
        let r = parse(SHELL_RESTARTED, "ramdisk", 1, false).unwrap();
        let shell = r.other_tasks.iter().find(|e| e.task == "shell").expect("the shell's restart is found");
        assert_eq!((shell.event, shell.generation), (Event::Restarted, 0));
        let last = r.faults.last().unwrap().n;
        assert_eq!(shell.during_fault, last + 1, "during the fault after the last one reported");
        let why = r.cut_short.as_deref().expect("the run was cut short");
        assert!(why
            .starts_with(&format!("the shell running the campaign was restarted during fault {}", last + 1)));
        assert!(!r.complete(), "not complete");
        assert_eq!((r.requested, last), (700, 573));
        assert_eq!(r.summary.injected, r.faults.len() as u32, "the summary counts what was reported");
        let j: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(j["complete"], false);
        assert_eq!(j["cut_short"], why);
        assert_eq!(j["other_tasks"][0]["task"], "shell");
        assert_eq!(j["other_tasks"][0]["event"], "restarted");
    }

    #[test]
    fn the_bar_follows_the_fault_lines() {
        let bar = crate::progress::bar(3, "campaign fs");
        let Echo::Lines(mut on_line) = watch(bar.clone(), "fs") else { panic!("a line watcher") };
        for line in CONSOLE.lines().take(7) {
            on_line(line);
        }
        assert_eq!(
            (bar.position(), bar.message().as_str()),
            (2, "1 manifested, 1 recovered, 0 errors, 0 lost")
        );
    }

    #[test]
    fn progress_shows_wrong_answers_and_other_tasks_restarts() {
        for shown in [
            "campaign fs: 10/100 injected, 4 manifested, 4 recovered",
            "campaign: fault 3: LOST: record 5 differs from what was acknowledged",
            "campaign: fault 3: WRONG: a 3 ms sleep returned early",
            "campaign: before fault 3: WRONG: a 3 ms sleep returned early",
            "campaign: fault 3: RESTARTS: other tasks restarted 1 time",
            "[kernel] shell gen 0: page fault (#PF) at 0x0; restarting as gen 1; 0 caller(s) suspended, 0 failed",
            "KERNEL PANIC",
        ] {
            assert!(worth_showing(shown, "fs"), "{shown}");
        }
        for hidden in [
            "fault 3: ssr 0x30010 -> error",
            "campaign: fault 3: ERROR: read of record 5: server failed",
            "[reincarnation] fs gen 3: killed; restarting as gen 4; 1 caller(s) suspended, 0 failed",
        ] {
            assert!(!worth_showing(hidden, "fs"), "{hidden}");
        }
    }

    #[test]
    fn json_has_every_fault_the_unit_and_the_other_tasks() {
        let mut r = parse(CONSOLE, "fs", 9, false).unwrap();
        r.ended = "TIMED OUT waiting for \"x\"".into();
        let j: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(j["server"], "fs");
        assert_eq!(j["seed"], 9);
        assert_eq!(
            (&j["faults_requested"], &j["complete"], &j["cut_short"]),
            (&3.into(), &true.into(), &serde_json::Value::Null)
        );
        assert_eq!(j["ended"], "TIMED OUT waiting for \"x\"", "how the run ended, quotes kept");
        assert_eq!(j["summary"]["manifested"], 2);
        assert_eq!(j["summary"]["panics"], 0);
        assert_eq!(j["recovered_of_manifested"], 0.5);
        assert_eq!(
            j["restart_latency"],
            serde_json::json!({"unit": "TSC ticks", "count": 2, "min": 5000, "median": 7000, "max": 7000})
        );
        assert!(j.get("restart_latency_instructions").is_none(), "the old key named the wrong unit");
        r.unit = Unit::Instructions;
        let j: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(j["restart_latency"]["unit"], "instructions");
        assert_eq!(j["faults"].as_array().unwrap().len(), 3);
        assert_eq!(
            j["faults"][0],
            serde_json::json!({"n": 1, "kind": "kill", "target": "0x0", "verdict": "recovered", "notes": []})
        );
        assert_eq!(j["faults"][2]["notes"][0], "ERROR: read of record 5: the session's state was reset");
        assert_eq!(j["outside_windows"][0]["at"], "before fault 2");
        assert_eq!(j["other_tasks"][0]["task"], "ramdisk");
        assert_eq!(j["other_tasks"][0]["during_fault"], 3);
        r.latencies.clear();
        let j: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert!(j["restart_latency"].is_null());
    }
}
