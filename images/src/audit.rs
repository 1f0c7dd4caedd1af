//! `cargo os audit`: the state-spill audit of one server, headless, and its record.
//!
//! The guest's shell does the work (`audit NAME REQUESTS`, on either personality) and prints
//! one line per spilled range, one per declared range, and its summary last:
//!
//! ```text
//!  audit: spill addr=0x40004000 len=4 task=7 session=5 request=1 times=49 read=yes
//!         reader_task=7 reader_session=6 reader_request=3 symbol=probe::LAST_WORD+0x0  ─► spills
//!  audit: declared addr=0x40016040 len=33800 changed=3849 name=block cache            ─► declared
//!  audit fs: requests=100 clients=2 switches=49 ... dropped=0 verdict=clean           ─► summary
//! ```
//! (one line each on the console). `symbol` and `name` come last and run to the end of the
//! line (a name may hold spaces); the other values are single words. This module boots the
//! machine, reads those lines, and writes `target/os/audit/P-NAME.json`, `.md` (the tables) and
//! `.log` (the console).

use crate::qemu::{self, Echo, Machine, Outcome, Transcript};
use crate::{build, fail, out_dir, progress, Personality, Result};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A range one client's request changed and left changed when another client's request came.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Spill {
    pub addr: u64,
    pub len: u64,
    /// The client whose request caused it: its task, and its session (`-` for none).
    pub task: String,
    pub session: String,
    /// That request's number in the audit (from 1).
    pub request: u64,
    /// Client switches that found it changed.
    pub times: u64,
    /// `yes` (another client's request read it: `reader`), `no`, or `unwatched` (stack).
    pub read: String,
    /// The reading request, as printed (`task=7 session=6 request=3`).
    pub reader: Option<String>,
    /// The symbol it lies in and the offset (`probe::LAST_WORD+0x0`, `stack+0xd0`).
    pub symbol: String,
}

/// A range the server declared as server-global state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Declared {
    pub addr: u64,
    pub len: u64,
    /// Its bytes that changed across clients (meant to: it is declared).
    pub changed: u64,
    pub name: String,
}

/// The guest's summary line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub requests: u64,
    pub clients: u64,
    pub switches: u64,
    pub pages: u64,
    pub spill: u64,
    pub spill_bytes: u64,
    pub declared: u64,
    pub declared_changed: u64,
    pub dropped: u64,
    pub verdict: String,
}

/// What one audit's console said.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub server: String,
    pub spills: Vec<Spill>,
    pub declared: Vec<Declared>,
    /// `None` if the guest never printed it (no such server, no workload, a panic...).
    pub summary: Option<Summary>,
}

impl Report {
    /// A summary came, and it found no undeclared spill.
    pub fn clean(&self) -> bool {
        self.summary.as_ref().is_some_and(|s| s.spill == 0 && s.dropped == 0 && s.verdict == "clean")
    }
}

/// `key=value` words of `text`, up to `last=` which takes the rest of the line.
fn pairs<'a>(text: &'a str, last: &'a str) -> Vec<(&'a str, &'a str)> {
    let (words, rest) = match text.find(&format!(" {last}=")) {
        Some(i) => (&text[..i], Some(&text[i + last.len() + 2..])),
        None => (text, None),
    };
    let mut kv: Vec<_> = words.split_whitespace().filter_map(|w| w.split_once('=')).collect();
    if let Some(rest) = rest {
        kv.push((last, rest.trim_end()));
    }
    kv
}

fn get<'a>(kv: &[(&str, &'a str)], key: &str) -> Option<&'a str> {
    kv.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

fn number(kv: &[(&str, &str)], key: &str) -> Option<u64> {
    let v = get(kv, key)?;
    match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

fn parse_spill(text: &str) -> Option<Spill> {
    let kv = pairs(text, "symbol");
    let reader = ["reader_task", "reader_session", "reader_request"]
        .iter()
        .map(|k| get(&kv, k).map(|v| format!("{}={v}", &k["reader_".len()..])))
        .collect::<Option<Vec<_>>>()
        .map(|v| v.join(" "));
    Some(Spill {
        addr: number(&kv, "addr")?,
        len: number(&kv, "len")?,
        task: get(&kv, "task")?.into(),
        session: get(&kv, "session").unwrap_or("-").into(),
        request: number(&kv, "request")?,
        times: number(&kv, "times")?,
        read: get(&kv, "read")?.into(),
        reader,
        symbol: get(&kv, "symbol").unwrap_or("?").into(),
    })
}

fn parse_declared(text: &str) -> Option<Declared> {
    let kv = pairs(text, "name");
    Some(Declared {
        addr: number(&kv, "addr")?,
        len: number(&kv, "len")?,
        changed: number(&kv, "changed")?,
        name: get(&kv, "name")?.into(),
    })
}

fn parse_summary(text: &str) -> Option<Summary> {
    let kv = pairs(text, "verdict");
    let n = |k| number(&kv, k);
    Some(Summary {
        requests: n("requests")?,
        clients: n("clients")?,
        switches: n("switches")?,
        pages: n("pages")?,
        spill: n("spill")?,
        spill_bytes: n("spill_bytes")?,
        declared: n("declared")?,
        declared_changed: n("declared_changed")?,
        dropped: n("dropped")?,
        verdict: get(&kv, "verdict")?.into(),
    })
}

/// Read the audit of `server` from a console. The markers are looked for anywhere in a line: a
/// server's own output (the console's audit writes characters) can come before them.
pub fn parse(console: &str, server: &str) -> Report {
    let head = format!("audit {server}: ");
    let mut report = Report { server: server.into(), ..Report::default() };
    for line in console.lines() {
        if let Some(i) = line.find("audit: spill ") {
            report.spills.extend(parse_spill(&line[i + "audit: spill ".len()..]));
        } else if let Some(i) = line.find("audit: declared ") {
            report.declared.extend(parse_declared(&line[i + "audit: declared ".len()..]));
        } else if let Some(i) = line.find(&head) {
            // The last summary counts (a line of the same head without the keys does not).
            if let Some(s) = parse_summary(&line[i + head.len()..]) {
                report.summary = Some(s);
            }
        }
    }
    report
}

/// The report as Markdown tables (spills, declared ranges, the summary).
pub fn to_markdown(r: &Report, personality: Personality) -> String {
    let mut md = format!("# State-spill audit of {} ({})\n\n", r.server, personality.id());
    match &r.summary {
        Some(s) => {
            let _ = writeln!(
                md,
                "**{}**: {} requests of {} clients, {} client switches, {} pages watched; {} spilled ranges \
                 ({} bytes), {} declared ranges ({} bytes changed), {} dropped.\n",
                s.verdict,
                s.requests,
                s.clients,
                s.switches,
                s.pages,
                s.spill,
                s.spill_bytes,
                s.declared,
                s.declared_changed,
                s.dropped
            );
        }
        None => md.push_str("**no summary**: the guest never reported the audit's end.\n\n"),
    }
    if !r.spills.is_empty() {
        md.push_str("| spill | bytes | client | request | times | read by another client | symbol |\n");
        md.push_str("|---|---:|---|---:|---:|---|---|\n");
        for s in &r.spills {
            let read = s.reader.as_ref().map_or(s.read.clone(), |by| format!("{} ({by})", s.read));
            let _ = writeln!(
                md,
                "| {:#x} | {} | task {} session {} | {} | {} | {read} | `{}` |",
                s.addr, s.len, s.task, s.session, s.request, s.times, s.symbol
            );
        }
        md.push('\n');
    }
    if !r.declared.is_empty() {
        md.push_str("| declared | bytes | changed across clients | name |\n|---|---:|---:|---|\n");
        for d in &r.declared {
            let _ = writeln!(md, "| {:#x} | {} | {} | {} |", d.addr, d.len, d.changed, d.name);
        }
    }
    md
}

/// The report as a table for a terminal.
pub fn to_table(r: &Report) -> String {
    let mut t = String::new();
    if r.spills.is_empty() {
        if r.summary.is_some() {
            t.push_str("no undeclared spill\n");
        }
    } else {
        let _ = writeln!(
            t,
            "{:<12} {:>6} {:<16} {:>7} {:>6} {:<10} symbol",
            "spill", "bytes", "client", "request", "times", "read"
        );
        for s in &r.spills {
            let client = format!("task {} sess {}", s.task, s.session);
            let _ = writeln!(
                t,
                "{:<12} {:>6} {client:<16} {:>7} {:>6} {:<10} {}",
                format!("{:#x}", s.addr),
                s.len,
                s.request,
                s.times,
                s.read,
                s.symbol
            );
        }
    }
    for d in &r.declared {
        let _ = writeln!(
            t,
            "{:<12} {:>6} declared: {} ({} bytes changed across clients)",
            format!("{:#x}", d.addr),
            d.len,
            d.name,
            d.changed
        );
    }
    t
}

/// The JSON record: the report and how the run went.
#[derive(Serialize)]
struct Record<'a> {
    personality: &'static str,
    requests_asked: u32,
    clean: bool,
    ended: &'a str,
    failed_commands: Vec<&'a str>,
    server: &'a str,
    /// `null` if the guest never printed it.
    summary: Option<&'a Summary>,
    spills: &'a [Spill],
    declared: &'a [Declared],
}

/// Where an audit's record goes: `target/os/audit/mk-NAME.json` (`los-` for the libos).
pub fn record_path(personality: Personality, server: &str) -> PathBuf {
    out_dir().join("audit").join(format!("{}-{server}.json", personality.short()))
}

/// Boot `personality`, run `audit SERVER REQUESTS` (with a fresh scratch disk attached if
/// `disk`), read the report, write its record. Returns the report, the transcript and the
/// record's path.
pub fn run(
    personality: Personality,
    server: &str,
    requests: u32,
    disk: bool,
) -> Result<(Report, Transcript, PathBuf)> {
    if server.is_empty() || !server.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(fail!("'{server}' cannot name a server"));
    }
    let image = build::build()?;
    let timeout = Duration::from_secs(120 + u64::from(requests) / 10);
    let bar = progress::spinner(&format!("audit {server}"));
    bar.set_message(format!("booting the {}", personality.id()));
    // A fresh disk, never the user's: the block stores' workload rewrites its last block.
    let scratch = disk.then(|| crate::disk::Scratch::new(&format!("audit-{server}"))).transpose()?;
    let disk: Option<&'static Path> =
        scratch.as_ref().map(|s| &*Box::leak(s.path().to_path_buf().into_boxed_path()));
    let machine = Machine { disk, ..Machine::default() };
    let cmd = [format!("audit {server} {requests}")];
    let echo = {
        let bar = bar.clone();
        Echo::lines(move |line| {
            if line.contains("audit") {
                bar.set_message("auditing");
                progress::out(&bar, line);
            }
        })
    };
    let t = qemu::exec(&image.iso, personality, machine, &cmd, timeout, echo);
    progress::keep(&bar);
    let t = t?;
    let report = parse(&t.console, server);
    let dir = out_dir().join("audit");
    std::fs::create_dir_all(&dir).map_err(|e| fail!("cannot create {}: {e}", dir.display()))?;
    let path = record_path(personality, server);
    let ended = t.summary();
    let record = Record {
        personality: personality.id(),
        requests_asked: requests,
        clean: report.clean() && t.outcome == Outcome::PoweredOff,
        ended: &ended,
        failed_commands: t.failed_commands(),
        server,
        summary: report.summary.as_ref(),
        spills: &report.spills,
        declared: &report.declared,
    };
    let json = serde_json::to_string_pretty(&record).map_err(|e| fail!("cannot encode the record: {e}"))?;
    let write = |path: &Path, text: &str| {
        std::fs::write(path, text).map_err(|e| fail!("cannot write {}: {e}", path.display()))
    };
    write(&path, &json)?;
    write(&path.with_extension("md"), &to_markdown(&report, personality))?;
    write(&path.with_extension("log"), &t.console)?;
    Ok((report, t, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONSOLE: &str = "\
axolotl [0a1b2c3d4e5f:0]> audit probe 100
audit probe: 17 pages of private memory watched; 2 clients take turns
[kernel] probe (task 9): version 2 kept: it answered 13 request(s) in its update's window
audit: spill addr=0x40004000 len=4 task=7 session=5 request=1 times=49 read=yes reader_task=7 reader_session=6 reader_request=3 symbol=probe::LAST_WORD+0x0
audit: spill addr=0x7fffff30 len=8 task=7 session=- request=2 times=38 read=unwatched symbol=<T as core::fmt::Debug>::fmt+0x10
ababababaudit: declared addr=0x40016040 len=33800 changed=3849 name=block cache
audit: declared addr=0x7ffffd88 len=536 changed=0 name=input, reader, counts
audit probe: requests=100 clients=2 switches=49 pages=17 spill=2 spill_bytes=12 declared=2 declared_changed=3849 dropped=0 verdict=SPILL
audit probe: ended early: interrupted
";

    #[test]
    fn every_line_is_read_with_its_keys() {
        let r = parse(CONSOLE, "probe");
        assert_eq!(r.spills.len(), 2);
        let s = &r.spills[0];
        assert_eq!((s.addr, s.len, s.task.as_str(), s.session.as_str()), (0x4000_4000, 4, "7", "5"));
        assert_eq!((s.request, s.times, s.read.as_str()), (1, 49, "yes"));
        assert_eq!(s.reader.as_deref(), Some("task=7 session=6 request=3"));
        assert_eq!(s.symbol, "probe::LAST_WORD+0x0");
        // A symbol with spaces runs to the end of the line; no reader when unwatched.
        assert_eq!(r.spills[1].symbol, "<T as core::fmt::Debug>::fmt+0x10");
        assert_eq!((r.spills[1].session.as_str(), r.spills[1].reader.as_ref()), ("-", None));
        // Found after the console's own characters; a name with spaces and commas kept whole.
        assert_eq!(
            r.declared[0],
            Declared { addr: 0x40016040, len: 33800, changed: 3849, name: "block cache".into() }
        );
        assert_eq!(r.declared[1].name, "input, reader, counts");
        let sum = r.summary.as_ref().unwrap();
        assert_eq!((sum.requests, sum.clients, sum.switches, sum.pages), (100, 2, 49, 17));
        assert_eq!((sum.spill, sum.spill_bytes, sum.declared, sum.declared_changed), (2, 12, 2, 3849));
        assert_eq!((sum.dropped, sum.verdict.as_str()), (0, "SPILL"));
        assert!(!r.clean());
    }

    #[test]
    fn a_clean_audit_is_clean_and_a_missing_summary_is_not() {
        let clean = "audit fs: requests=100 clients=2 switches=49 pages=25 spill=0 spill_bytes=0 declared=2 \
                     declared_changed=3872 dropped=0 verdict=clean\n";
        assert!(parse(clean, "fs").clean());
        // Another server's summary, a start line, a usage line: no summary of fs.
        for console in [
            clean.replace("audit fs:", "audit timer:"),
            "audit fs: 25 pages of private memory watched; 2 clients take turns\n".into(),
            "usage: audit NAME [REQUESTS]: audit server NAME (fs, timer)\n".into(),
            String::new(),
        ] {
            let r = parse(&console, "fs");
            assert!(r.summary.is_none() && !r.clean(), "{console}");
        }
        // A dropped record is not clean, whatever the verdict says.
        assert!(!parse(&clean.replace("dropped=0", "dropped=1"), "fs").clean());
    }

    #[test]
    fn the_libos_lines_read_the_same() {
        let los = "audit: spill addr=0x12345 len=16 task=device session=- request=4 times=2 read=unwatched \
                   symbol=cell_fs::server::start::{{closure}}+0x18\n\
                   audit fs: requests=60 clients=2 switches=29 pages=9 spill=1 spill_bytes=16 declared=1 \
                   declared_changed=10 dropped=0 verdict=SPILL\n";
        let r = parse(los, "fs");
        assert_eq!(r.spills[0].task, "device");
        assert_eq!(r.spills[0].symbol, "cell_fs::server::start::{{closure}}+0x18");
        assert_eq!(r.summary.unwrap().spill, 1);
    }

    #[test]
    fn tables_name_every_range() {
        let r = parse(CONSOLE, "probe");
        let md = to_markdown(&r, Personality::Microkernel);
        assert!(
            md.contains("| 0x40004000 | 4 | task 7 session 5 | 1 | 49 | yes (task=7 session=6 request=3) |")
        );
        assert!(
            md.contains("`probe::LAST_WORD+0x0`")
                && md.contains("| 0x40016040 | 33800 | 3849 | block cache |")
        );
        let table = to_table(&r);
        assert!(table.contains("probe::LAST_WORD+0x0") && table.contains("declared: block cache"));
        let clean = "audit fs: requests=9 clients=2 switches=4 pages=1 spill=0 spill_bytes=0 declared=0 \
                     declared_changed=0 dropped=0 verdict=clean";
        assert_eq!(to_table(&parse(clean, "fs")), "no undeclared spill\n");
        assert_eq!(to_table(&parse("", "fs")), "", "no summary: nothing is said clean");
    }
}
