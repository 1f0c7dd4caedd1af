//! `cargo os campaign`: run one fault-injection campaign headless and keep its record.
//!
//! The guest's shell does the work (`campaign NAME COUNT SEED`) and prints a line per fault and
//! one summary line; this module boots it (under `-icount` if asked, so restart latencies are
//! counts of retired instructions), reads those lines (the summary with the guest's own
//! [`campaign::Summary`]) and the kernel's restart-latency lines, and writes
//! `target/os/campaign-NAME-sSEED.json`. If the kernel panicked, the guest could not
//! print its summary: the summary is rebuilt from the fault lines, with `panics=1`.

use crate::qemu::{self, Echo, Machine, Outcome};
use crate::{build, fail, out_dir, progress, Personality, Result};
use campaign::Summary;
use indicatif::ProgressBar;
use serde::Serialize;
use std::time::Duration;

/// One fault, as the guest reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fault {
    pub n: u32,
    pub kind: String,
    /// What was hit (register and bit, address, session and offset), as printed.
    pub target: String,
    /// benign, recovered, error or lost.
    pub verdict: String,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub seed: u64,
    pub faults: Vec<Fault>,
    /// The guest's summary line, or one rebuilt from the fault lines if the kernel panicked.
    pub summary: Summary,
    /// Restart latencies of the server (fault to its next incarnation's first `recv`).
    pub latencies: Vec<u64>,
    /// How the run ended ("powered off cleanly", a panic, a stall...), as `Transcript::summary`.
    pub ended: String,
}

/// The JSON record of a campaign, `target/os/campaign-NAME-sSEED.json`.
#[derive(Serialize)]
struct Record<'a> {
    server: &'a str,
    seed: u64,
    summary: Counts,
    /// Of the faults that manifested, the share the client never noticed (1 if none did).
    recovered_of_manifested: f64,
    ended: &'a str,
    /// `null` when the server never restarted.
    restart_latency_instructions: Option<Latencies>,
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
    })
}

/// Read a campaign's console back. `panicked`: the run ended in a kernel panic.
pub fn parse(console: &str, server: &str, seed: u64, panicked: bool) -> Result<Report> {
    let faults: Vec<Fault> = console.lines().filter_map(parse_fault).collect();
    let latency_prefix = format!("[kernel] {server} gen ");
    let latencies = console
        .lines()
        .filter_map(|l| l.strip_prefix(&latency_prefix)?.split_once(" ready: "))
        .filter_map(|(_, rest)| rest.split_whitespace().next()?.parse().ok())
        .collect();
    let printed =
        console.lines().filter_map(|l| l.trim_end().parse::<Summary>().ok()).find(|s| s.server() == server);
    let summary = match printed {
        Some(s) if !panicked => s,
        // The guest never printed its summary: count the fault lines it did print.
        _ => {
            let count = |v: &str| faults.iter().filter(|f| f.verdict == v).count() as u32;
            let mut s = Summary::new(server).map_err(|e| fail!("'{server}' cannot name a server: {e}"))?;
            s.injected = faults.len() as u32;
            s.manifested = faults.len() as u32 - count("benign");
            s.recovered = count("recovered");
            s.errors = count("error");
            s.lost = console.lines().filter(|l| l.starts_with("campaign: LOST")).count() as u32;
            s.panics = u32::from(panicked);
            s
        }
    };
    Ok(Report { seed, faults, summary, latencies, ended: String::new() })
}

fn stats(v: &[u64]) -> Option<(u64, u64, u64)> {
    let mut v = v.to_vec();
    v.sort_unstable();
    Some((*v.first()?, v[v.len() / 2], *v.last()?))
}

impl Report {
    /// The record as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        let s = &self.summary;
        let rate = if s.manifested > 0 { f64::from(s.recovered) / f64::from(s.manifested) } else { 1.0 };
        let record = Record {
            server: s.server(),
            seed: self.seed,
            summary: s.into(),
            // Four decimals, as a person reads a rate; more would only be noise.
            recovered_of_manifested: (rate * 1e4).round() / 1e4,
            ended: &self.ended,
            restart_latency_instructions: stats(&self.latencies).map(|(min, median, max)| Latencies {
                count: self.latencies.len(),
                min,
                median,
                max,
            }),
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

/// Progress lines worth showing while a campaign runs.
fn worth_showing(line: &str) -> bool {
    line.starts_with("campaign ") || line.contains("LOST") || line.contains("KERNEL PANIC")
}

/// What the campaign's console shows as it runs: its progress lines on stdout, and on `bar`
/// the faults injected so far with the running manifested and recovered counts.
fn watch(bar: ProgressBar) -> Echo {
    let (mut manifested, mut recovered) = (0, 0);
    Echo::lines(move |line| {
        if let Some(f) = parse_fault(line) {
            manifested += u32::from(f.verdict != "benign");
            recovered += u32::from(f.verdict == "recovered");
            bar.set_position(f.n.into());
            bar.set_message(format!("{manifested} manifested, {recovered} recovered"));
        } else if qemu::after_prompt(line).is_some_and(|(_, typed)| typed.starts_with("campaign ")) {
            bar.set_message("injecting");
        }
        if worth_showing(line) {
            progress::out(&bar, line);
        }
    })
}

/// Boot, run the campaign, write the JSON. Returns the report and the JSON's path.
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
    let machine = Machine { icount, ..Machine::default() };
    let cmd = [format!("campaign {server} {faults} {seed}")];
    // Every fault prints a line within seconds (a detected hang takes one second of guest time,
    // 10^9 instructions under -icount): a console silent far longer means the machine stopped.
    let silence = Duration::from_secs(if icount { 600 } else { 120 });
    let limits = qemu::Limits { total: timeout, silence: Some(silence) };
    let t = qemu::exec(&image.iso, personality, machine, &cmd, limits, watch(bar.clone()));
    progress::keep(&bar);
    let t = t?;
    let mut report = parse(&t.console, server, seed, t.outcome == Outcome::Panicked)?;
    report.ended = t.summary();
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
    let prefix = if personality == Personality::Libos { "campaign-libos" } else { "campaign" };
    let path = out_dir().join(format!("{prefix}-{server}-s{seed}.json"));
    std::fs::write(&path, report.to_json()).map_err(|e| fail!("cannot write {}: {e}", path.display()))?;
    Ok((report, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONSOLE: &str = "\
campaign fs: 3 faults, seed 9, 4 workload steps watched after each
[kernel] fs gen 1 ready: 5000 TSC ticks from its predecessor's fault to its first recv; 2 sessions kept
fault 1: kill 0x0 -> recovered
fault 2: regflip 0x203 -> benign
[kernel] fs gen 2 ready: 7000 TSC ticks from its predecessor's fault to its first recv; 2 sessions kept
fault 3: ssr 0x30010 -> error
campaign fs: injected=3 manifested=2 recovered=1 errors=1 lost=0 panics=0
";

    fn summary(counts: [u32; 6]) -> Summary {
        let mut s = Summary::new("fs").unwrap();
        [s.injected, s.manifested, s.recovered, s.errors, s.lost, s.panics] = counts;
        s
    }

    #[test]
    fn parses_faults_summary_and_latencies() {
        let r = parse(CONSOLE, "fs", 9, false).unwrap();
        assert_eq!(r.faults.len(), 3);
        assert_eq!(
            r.faults[2],
            Fault { n: 3, kind: "ssr".into(), target: "0x30010".into(), verdict: "error".into() }
        );
        assert_eq!(r.summary, summary([3, 2, 1, 1, 0, 0]));
        assert_eq!(r.latencies, [5000, 7000]);
        assert_eq!(
            r.summary.to_string(),
            "campaign fs: injected=3 manifested=2 recovered=1 errors=1 lost=0 panics=0"
        );
        assert_eq!(r.by_kind()[0], ("kill".to_string(), 1, 1, 1));
    }

    #[test]
    fn a_panic_rebuilds_the_summary_from_the_fault_lines() {
        let cut = &CONSOLE[..CONSOLE.find("fault 3").unwrap()];
        let r = parse(cut, "fs", 9, true).unwrap();
        assert_eq!(r.summary, summary([2, 1, 1, 0, 0, 1]));
        assert!(parse(cut, "no such server", 9, true).is_err());
    }

    #[test]
    fn the_bar_follows_the_fault_lines() {
        let bar = crate::progress::bar(3, "campaign fs");
        let Echo::Lines(mut on_line) = watch(bar.clone()) else { panic!("a line watcher") };
        for line in CONSOLE.lines().take(4) {
            on_line(line);
        }
        assert_eq!((bar.position(), bar.message().as_str()), (2, "1 manifested, 1 recovered"));
    }

    #[test]
    fn json_has_every_fault_and_the_rate() {
        let mut r = parse(CONSOLE, "fs", 9, false).unwrap();
        r.ended = "TIMED OUT waiting for \"x\"".into();
        let j: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(j["server"], "fs");
        assert_eq!(j["seed"], 9);
        assert_eq!(j["ended"], "TIMED OUT waiting for \"x\"", "how the run ended, quotes kept");
        assert_eq!(j["summary"]["manifested"], 2);
        assert_eq!(j["summary"]["panics"], 0);
        assert_eq!(j["recovered_of_manifested"], 0.5);
        assert_eq!(
            j["restart_latency_instructions"],
            serde_json::json!({"count": 2, "min": 5000, "median": 7000, "max": 7000})
        );
        assert_eq!(j["faults"].as_array().unwrap().len(), 3);
        assert_eq!(
            j["faults"][2],
            serde_json::json!({"n": 3, "kind": "ssr", "target": "0x30010", "verdict": "error"})
        );
        r.latencies.clear();
        let j: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert!(j["restart_latency_instructions"].is_null());
    }
}
