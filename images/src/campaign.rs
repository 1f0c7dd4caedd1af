//! `cargo os campaign`: run one fault-injection campaign headless and keep its record.
//!
//! The guest's shell does the work (`campaign NAME COUNT SEED`) and prints a line per fault and
//! one summary line; this module boots it (under `-icount` if asked, so restart latencies are
//! counts of retired instructions), reads those lines and the kernel's restart-latency lines, and
//! writes `target/os/campaign-NAME-sSEED.json`. If the kernel panicked, the guest could not
//! print its summary: the summary is rebuilt from the fault lines, with `panics=1`.

use crate::qemu::{self, Echo, Machine, Outcome};
use crate::{build, out_dir, Personality, Result};
use std::fmt::Write as _;
use std::time::Duration;

/// One fault, as the guest reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub n: u32,
    pub kind: String,
    /// What was hit (register and bit, address, session and offset), as printed.
    pub target: String,
    /// benign, recovered, error or lost.
    pub verdict: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub injected: u32,
    pub manifested: u32,
    pub recovered: u32,
    pub errors: u32,
    pub lost: u32,
    pub panics: u32,
}

impl Summary {
    pub fn line(&self, server: &str) -> String {
        format!(
            "campaign {server}: injected={} manifested={} recovered={} errors={} lost={} panics={}",
            self.injected, self.manifested, self.recovered, self.errors, self.lost, self.panics
        )
    }
}

#[derive(Debug, Clone)]
pub struct Report {
    pub server: String,
    pub seed: u64,
    pub faults: Vec<Fault>,
    pub summary: Summary,
    /// Restart latencies of the server (fault to its next incarnation's first `recv`).
    pub latencies: Vec<u64>,
    /// How the run ended ("powered off cleanly", a panic, a stall...), as `Transcript::summary`.
    pub ended: String,
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

fn parse_summary(line: &str, server: &str) -> Option<Summary> {
    let rest = line.strip_prefix(&format!("campaign {server}: injected="))?;
    let line = format!("injected={rest}");
    let field = |name: &str| -> Option<u32> {
        line.split_whitespace().find_map(|w| w.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
    };
    Some(Summary {
        injected: field("injected")?,
        manifested: field("manifested")?,
        recovered: field("recovered")?,
        errors: field("errors")?,
        lost: field("lost")?,
        panics: field("panics")?,
    })
}

/// Read a campaign's console back. `panicked`: the run ended in a kernel panic.
pub fn parse(console: &str, server: &str, seed: u64, panicked: bool) -> Report {
    let faults: Vec<Fault> = console.lines().filter_map(parse_fault).collect();
    let latency_prefix = format!("[kernel] {server} gen ");
    let latencies = console
        .lines()
        .filter_map(|l| l.strip_prefix(&latency_prefix)?.split_once(" ready: "))
        .filter_map(|(_, rest)| rest.split_whitespace().next()?.parse().ok())
        .collect();
    let summary = match console.lines().find_map(|l| parse_summary(l, server)) {
        Some(s) if !panicked => s,
        _ => {
            let count = |v: &str| faults.iter().filter(|f| f.verdict == v).count() as u32;
            Summary {
                injected: faults.len() as u32,
                manifested: faults.len() as u32 - count("benign"),
                recovered: count("recovered"),
                errors: count("error"),
                lost: console.lines().filter(|l| l.starts_with("campaign: LOST")).count() as u32,
                panics: u32::from(panicked),
            }
        }
    };
    Report { server: server.into(), seed, faults, summary, latencies, ended: String::new() }
}

fn stats(v: &[u64]) -> Option<(u64, u64, u64)> {
    let mut v = v.to_vec();
    v.sort_unstable();
    Some((*v.first()?, v[v.len() / 2], *v.last()?))
}

impl Report {
    /// The record as JSON (hand-written: every string here is plain ASCII without quotes).
    pub fn to_json(&self) -> String {
        let s = &self.summary;
        let mut j = String::new();
        let _ = writeln!(j, "{{\n  \"server\": \"{}\",\n  \"seed\": {},", self.server, self.seed);
        let _ = writeln!(
            j,
            "  \"summary\": {{\"injected\": {}, \"manifested\": {}, \"recovered\": {}, \"errors\": {}, \"lost\": {}, \"panics\": {}}},",
            s.injected, s.manifested, s.recovered, s.errors, s.lost, s.panics
        );
        let rate = if s.manifested > 0 { s.recovered as f64 / s.manifested as f64 } else { 1.0 };
        let _ = writeln!(j, "  \"recovered_of_manifested\": {rate:.4},");
        let _ = writeln!(j, "  \"ended\": \"{}\",", self.ended.replace('"', "'"));
        match stats(&self.latencies) {
            Some((min, median, max)) => {
                let _ = writeln!(
                    j,
                    "  \"restart_latency_instructions\": {{\"count\": {}, \"min\": {min}, \"median\": {median}, \"max\": {max}}},",
                    self.latencies.len()
                );
            }
            None => j.push_str("  \"restart_latency_instructions\": null,\n"),
        }
        j.push_str("  \"faults\": [\n");
        for (i, f) in self.faults.iter().enumerate() {
            let comma = if i + 1 < self.faults.len() { "," } else { "" };
            let _ = writeln!(
                j,
                "    {{\"n\": {}, \"kind\": \"{}\", \"target\": \"{}\", \"verdict\": \"{}\"}}{comma}",
                f.n, f.kind, f.target, f.verdict
            );
        }
        j.push_str("  ]\n}\n");
        j
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
fn progress(line: &str) -> bool {
    line.starts_with("campaign ") || line.contains("LOST") || line.contains("KERNEL PANIC")
}

/// Boot, run the campaign, write the JSON. Returns the report and the JSON's path.
pub fn run(
    personality: Personality,
    server: &str,
    faults: u32,
    seed: u64,
    icount: bool,
) -> Result<(Report, std::path::PathBuf)> {
    let image = build::build()?;
    // A `hang` costs a second of guest time to detect: under -icount that is 10^9 instructions.
    let timeout = Duration::from_secs(120 + faults as u64 * if icount { 20 } else { 4 });
    eprintln!(
        "[os] campaign against {server} ({}): {faults} faults, seed {seed}, timeout {} s",
        personality.id(),
        timeout.as_secs()
    );
    let machine = Machine { icount, gdb: false };
    let cmd = [format!("campaign {server} {faults} {seed}")];
    // Every fault prints a line within seconds (a detected hang takes one second of guest time,
    // 10^9 instructions under -icount): a console silent far longer means the machine stopped.
    let silence = Duration::from_secs(if icount { 600 } else { 120 });
    let limits = qemu::Limits { total: timeout, silence: Some(silence) };
    let t = qemu::exec(&image.iso, personality, machine, &cmd, limits, Echo::Lines(progress))?;
    let mut report = parse(&t.console, server, seed, t.outcome == Outcome::Panicked);
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
    std::fs::write(&path, report.to_json())
        .map_err(|e| crate::fail!("cannot write {}: {e}", path.display()))?;
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

    #[test]
    fn parses_faults_summary_and_latencies() {
        let r = parse(CONSOLE, "fs", 9, false);
        assert_eq!(r.faults.len(), 3);
        assert_eq!(
            r.faults[2],
            Fault { n: 3, kind: "ssr".into(), target: "0x30010".into(), verdict: "error".into() }
        );
        assert_eq!(
            r.summary,
            Summary { injected: 3, manifested: 2, recovered: 1, errors: 1, lost: 0, panics: 0 }
        );
        assert_eq!(r.latencies, [5000, 7000]);
        assert_eq!(
            r.summary.line("fs"),
            "campaign fs: injected=3 manifested=2 recovered=1 errors=1 lost=0 panics=0"
        );
        assert_eq!(r.by_kind()[0], ("kill".to_string(), 1, 1, 1));
    }

    #[test]
    fn a_panic_rebuilds_the_summary_from_the_fault_lines() {
        let cut = &CONSOLE[..CONSOLE.find("fault 3").unwrap()];
        let r = parse(cut, "fs", 9, true);
        assert_eq!(
            r.summary,
            Summary { injected: 2, manifested: 1, recovered: 1, errors: 0, lost: 0, panics: 1 }
        );
    }

    #[test]
    fn json_has_every_fault_and_the_rate() {
        let mut r = parse(CONSOLE, "fs", 9, false);
        r.ended = "TIMED OUT waiting for \"x\"".into();
        let j = r.to_json();
        assert!(j.contains("\"ended\": \"TIMED OUT waiting for 'x'\","), "how the run ended, quotes escaped");
        assert!(j.contains("\"server\": \"fs\""));
        assert!(j.contains("\"recovered_of_manifested\": 0.5000"));
        assert!(j.contains("\"restart_latency_instructions\": {\"count\": 2, \"min\": 5000, \"median\": 7000, \"max\": 7000}"));
        assert_eq!(j.matches("\"verdict\"").count(), 3);
        assert!(!j.contains("},\n  ]"), "no trailing comma");
    }
}
