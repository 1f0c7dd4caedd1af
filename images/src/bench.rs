//! `cargo os bench`: the protected-call benchmark of both personalities, side by side.
//!
//! ```text
//!  build ISO ─► for each personality: boot under -icount, type `bench N`, read its rows;
//!              boot again with a scratch disk, type `bench disk N`, read those rows
//!                 bench: mk.null_call n=1000 min=552 median=552 p99=552
//!              boot again, type `bench grow N`: how costs grow with payload, size, sessions
//!           ─► boot Linux under the same flags (crate::linux): its rows
//!           ─► add the published reference rows (../shared/ANCHORS.md)
//!           ─► target/os/bench/protected-calls.{json,md,svg}, cost-growth.svg (curves),
//!              and the table on stdout
//! ```
//! Under QEMU TCG with `-icount shift=0,align=off,sleep=off` the guest's TSC advances by one per
//! retired instruction, so every figure is an instruction count, the same on every run.

use crate::qemu::{self, Echo, Machine, Outcome};
use crate::{build, fail, out_dir, progress, Personality, Result};
use indicatif::ProgressBar;
use serde::{Serialize, Serializer};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

/// One row of the table: measured here, or published elsewhere.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    pub name: String,
    pub runs: u64,
    pub min: u64,
    pub median: u64,
    pub p99: u64,
    /// `None` for a figure measured by this run; the citation for a published one. The JSON
    /// calls it `source`: "measured" or the citation.
    #[serde(rename = "source", serialize_with = "source")]
    pub published: Option<&'static str>,
}

fn source<S: Serializer>(published: &Option<&'static str>, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(published.unwrap_or("measured"))
}

/// The JSON record, `target/os/bench/protected-calls.json`.
#[derive(Serialize)]
struct Record<'a> {
    unit: &'static str,
    rows: &'a [Row],
}

/// Published figures in instructions, comparable with ours (see `../shared/ANCHORS.md`).
pub const PUBLISHED: [(&str, u64, &str); 4] = [
    ("curios.null_call", 1594, "CuriOS, OSDI 2008: protected call without SSR, 1594 ± 4 instructions"),
    ("curios.ssr_call", 4893, "CuriOS, OSDI 2008: protected call with SSR, 4893 ± 3 instructions"),
    (
        "sel4.call_rtt",
        451,
        "seL4 sel4bench, release, fastpath, the same QEMU -icount flags: Call + ReplyRecv round trip timed like mk.null_call (ANCHORS.md)",
    ),
    (
        "sel4.call_rtt_nopti",
        403,
        "the same with seL4's Meltdown page-table switch and FPU switching off (ANCHORS.md)",
    ),
];

/// The Linux row each Axolotl row is set beside (`ratio`): the operation a Linux program does
/// for the same work. A protected call against a system call (one kernel entry, where a call is
/// two and two address-space switches), a rendezvous of two tasks against a futex round trip of
/// two threads, a file read against `pread`, a block read or write through the driver against
/// an `O_DIRECT` one.
pub const LINUX_PEERS: [(&str, &str); 37] = [
    ("mk.null_call", "linux.null_syscall"),
    ("mk.ssr_call", "linux.null_syscall"),
    ("mk.fs_read", "linux.pread_64"),
    ("mk.fs_write", "linux.write_64"),
    ("mk.fs_seek", "linux.seek"),
    ("mk.fs_open_close", "linux.open_close"),
    ("mk.fs_stat", "linux.stat"),
    ("mk.blk_read", "linux.blk_read"),
    ("mk.blk_write", "linux.blk_write"),
    ("los.fn_call", "linux.null_syscall"),
    ("los.cell_call", "linux.null_syscall"),
    ("los.channel_rtt", "linux.futex_rtt"),
    ("los.fs_read", "linux.pread_64"),
    ("los.fs_write", "linux.write_64"),
    ("los.fs_seek", "linux.seek"),
    ("los.fs_open_close", "linux.open_close"),
    ("los.fs_stat", "linux.stat"),
    ("los.blk_read", "linux.blk_read"),
    ("los.blk_write", "linux.blk_write"),
    ("sel4.call_rtt", "linux.null_syscall"),
    ("sel4.call_rtt_nopti", "linux.null_syscall"),
    // `bench grow`: a call or channel round trip carrying B bytes each way against a pipe round
    // trip carrying as many (a 1-byte one for B = 0), a read of B bytes against one `pread`.
    ("mk.call_payload_0", "linux.pipe_rtt"),
    ("mk.call_payload_64", "linux.pipe_payload_64"),
    ("mk.call_payload_512", "linux.pipe_payload_512"),
    ("mk.call_payload_4096", "linux.pipe_payload_4096"),
    ("los.channel_payload_0", "linux.pipe_rtt"),
    ("los.channel_payload_64", "linux.pipe_payload_64"),
    ("los.channel_payload_512", "linux.pipe_payload_512"),
    ("los.channel_payload_4096", "linux.pipe_payload_4096"),
    ("mk.read_64", "linux.pread_64"),
    ("mk.read_512", "linux.pread_512"),
    ("mk.read_4096", "linux.pread_4096"),
    ("mk.read_65536", "linux.pread_65536"),
    ("los.read_64", "linux.pread_64"),
    ("los.read_512", "linux.pread_512"),
    ("los.read_4096", "linux.pread_4096"),
    ("los.read_65536", "linux.pread_65536"),
];

/// One panel of the cost-growth chart: a quantity on the x axis, and per design the row measured
/// at each of its values (`None`: no such row, as Linux has no sessions to restart with).
pub struct Curve {
    pub title: &'static str,
    pub x_label: &'static str,
    pub xs: &'static [&'static str],
    pub series: &'static [(&'static str, &'static str, &'static [Option<&'static str>])],
}

const MK: &str = "#2b6cb0";
const LOS: &str = "#c05621";
const LINUX: &str = "#2f855a";

/// The panels of `cost-growth.svg`: the rows of `bench grow` and Linux's equivalents.
pub const GROWTH: [Curve; 3] = [
    Curve {
        title: "A round trip carrying B bytes each way",
        x_label: "payload B (bytes)",
        xs: &["0", "64", "512", "4096"],
        series: &[
            (
                "microkernel call",
                MK,
                &[
                    Some("mk.call_payload_0"),
                    Some("mk.call_payload_64"),
                    Some("mk.call_payload_512"),
                    Some("mk.call_payload_4096"),
                ],
            ),
            (
                "libos channel",
                LOS,
                &[
                    Some("los.channel_payload_0"),
                    Some("los.channel_payload_64"),
                    Some("los.channel_payload_512"),
                    Some("los.channel_payload_4096"),
                ],
            ),
            (
                "Linux pipe (0: 1 byte)",
                LINUX,
                &[
                    Some("linux.pipe_rtt"),
                    Some("linux.pipe_payload_64"),
                    Some("linux.pipe_payload_512"),
                    Some("linux.pipe_payload_4096"),
                ],
            ),
        ],
    },
    Curve {
        title: "Reading B bytes of an open file",
        x_label: "read B (bytes)",
        xs: &["64", "512", "4096", "65536"],
        series: &[
            (
                "microkernel fs",
                MK,
                &[Some("mk.read_64"), Some("mk.read_512"), Some("mk.read_4096"), Some("mk.read_65536")],
            ),
            (
                "libos fs",
                LOS,
                &[Some("los.read_64"), Some("los.read_512"), Some("los.read_4096"), Some("los.read_65536")],
            ),
            (
                "Linux pread (tmpfs)",
                LINUX,
                &[
                    Some("linux.pread_64"),
                    Some("linux.pread_512"),
                    Some("linux.pread_4096"),
                    Some("linux.pread_65536"),
                ],
            ),
        ],
    },
    Curve {
        title: "Restarting fs with K sessions open",
        x_label: "sessions K",
        xs: &["1", "8", "64"],
        series: &[
            (
                "microkernel",
                MK,
                &[
                    Some("mk.restart_sessions_1"),
                    Some("mk.restart_sessions_8"),
                    Some("mk.restart_sessions_64"),
                ],
            ),
            (
                "libos",
                LOS,
                &[
                    Some("los.restart_sessions_1"),
                    Some("los.restart_sessions_8"),
                    Some("los.restart_sessions_64"),
                ],
            ),
        ],
    },
];

/// `row`'s median over its Linux peer's, if both are in `rows`.
pub fn ratio(rows: &[Row], row: &Row) -> Option<f64> {
    let peer = LINUX_PEERS.iter().find(|(a, _)| *a == row.name)?.1;
    let linux = rows.iter().find(|r| r.name == peer)?;
    (linux.median > 0).then(|| row.median as f64 / linux.median as f64)
}

/// Parse the guest's `bench: ROW n=N min=A median=B p99=C` lines.
pub fn parse_rows(console: &str) -> Vec<Row> {
    console.lines().filter_map(parse_row).collect()
}

/// One `bench: ROW n=N min=A median=B p99=C` line; `None` for any other line.
fn parse_row(line: &str) -> Option<Row> {
    let rest = line.trim().strip_prefix("bench: ")?;
    let mut words = rest.split_whitespace();
    let name = words.next()?;
    if !name.contains('.') {
        return None;
    }
    let mut field = |key: &str| words.next()?.strip_prefix(key)?.parse::<u64>().ok();
    Some(Row {
        name: name.to_string(),
        runs: field("n=")?,
        min: field("min=")?,
        median: field("median=")?,
        p99: field("p99=")?,
        published: None,
    })
}

/// The guest's lines shown while a measurement runs: its rows and errors.
fn worth_showing(line: &str) -> bool {
    line.starts_with("bench: ") || line.starts_with("error")
}

/// What a measurement's console shows as it runs: its rows and errors on stdout, and on
/// `spinner` how far it got (booting, measuring, the rows read so far).
fn watch(spinner: ProgressBar) -> Echo {
    let mut rows = 0;
    Echo::lines(move |line| {
        if let Some(row) = parse_row(line) {
            rows += 1;
            spinner.set_message(format!("row {rows} read: {}", row.name));
        } else if qemu::after_prompt(line).is_some_and(|(_, typed)| typed.starts_with("bench ")) {
            spinner.set_message("measuring");
        }
        if worth_showing(line) {
            progress::out(&spinner, line);
        }
    })
}

/// Boot `personality` under -icount and run `bench runs`. No disk is attached, so fs keeps
/// its files on the RAM disk, as these rows were measured before the disk driver.
pub fn measure(iso: &std::path::Path, personality: Personality, runs: usize) -> Result<Vec<Row>> {
    session(
        iso,
        personality,
        Machine { icount: true, ..Machine::default() },
        &[format!("bench {runs}")],
        runs,
    )
}

/// Boot `personality` under -icount with a blank disk (served by [`crate::nbd`] with
/// [`DEVICE_LATENCY`]) and run `bench disk runs`: block I/O through the driver, a file read
/// that reaches the disk, the driver's restart.
pub fn measure_disk(iso: &std::path::Path, personality: Personality, runs: usize) -> Result<Vec<Row>> {
    // The microkernel's `mk.update` installs fs version 2 from the disk: put it there.
    let image = match personality {
        Personality::Microkernel => {
            let scratch = crate::disk::Scratch::new("bench-disk")?;
            let v2 = crate::build::updates_dir().join("fs-v2");
            let bytes =
                std::fs::read(&v2).map_err(|e| fail!("{}: {e} (cargo os build writes it)", v2.display()))?;
            crate::disk::put(scratch.path(), "/servers/fs-v2", &bytes)?;
            crate::disk::read(scratch.path())?
        }
        Personality::Libos => vec![0; crate::disk::SIZE as usize],
    };
    let server = crate::nbd::Server::start_with(image, DEVICE_LATENCY, false)?;
    // `ls /` first: fs mounts the disk (formatting a blank image) before the rows.
    let cmds = ["ls /".to_string(), format!("bench disk {runs}")];
    let machine = Machine { icount: true, nbd: Some(server.port), ..Machine::default() };
    // The server's thread ends when QEMU disconnects (or, if QEMU never connected, with this
    // process): nothing to wait for.
    session(iso, personality, machine, &cmds, runs)
}

/// How long the bench's disk takes to answer each request, in real time. QEMU completes a
/// block on a host thread: from a file, often before the driver has gone to sleep on its
/// interrupt, and then the driver finds it done and neither sleeps nor switches, and the rows
/// depend on a race. Two milliseconds (a slow disk's read) is far more than the guest needs
/// to reach its `hlt`, so every request takes the path a real disk's would: submit, sleep,
/// interrupt, wake. (Half a millisecond was not always enough: on a host running three QEMUs
/// at once one libos block in 8,000 came early.) The time waited is not in the rows (see
/// `bench disk` in each shell).
pub const DEVICE_LATENCY: std::time::Duration = std::time::Duration::from_millis(2);

/// Boot `personality` under -icount and run `bench grow runs`: calls and channel round trips
/// with 0 to 4,096 bytes of payload, file reads of 64 B to 64 KiB, fs's restart with 1, 8 and
/// 64 sessions open (the points of `cost-growth.svg`).
pub fn measure_grow(iso: &std::path::Path, personality: Personality, runs: usize) -> Result<Vec<Row>> {
    let machine = Machine { icount: true, ..Machine::default() };
    session(iso, personality, machine, &[format!("bench grow {runs}")], runs)
}

/// One boot under -icount typing `cmds`; the rows it printed for `personality`.
fn session(
    iso: &std::path::Path,
    personality: Personality,
    machine: Machine,
    cmds: &[String],
    runs: usize,
) -> Result<Vec<Row>> {
    let disk = machine.nbd;
    // Generous: TCG with -icount runs ~100 M instructions/s; a restart row is ~50 k each, and a
    // disk row waits for the host's file each block.
    let grow = cmds.iter().any(|c| c.starts_with("bench grow"));
    let timeout = Duration::from_secs(
        120 + runs as u64 / 10
            + if disk.is_some() { runs as u64 / 4 } else { 0 }
            // 150 restarts, and up to 100 libos reads of 64 KiB (~5 M instructions each).
            + if grow { 120 + runs as u64 / 10 } else { 0 },
    );
    let what = match (disk.is_some(), grow) {
        (true, _) => "bench disk",
        (_, true) => "bench grow",
        _ => "bench",
    };
    let spinner = progress::spinner(&format!("{what} {}", personality.id()));
    spinner.set_message("booting under -icount");
    let t = qemu::exec(iso, personality, machine, cmds, timeout, watch(spinner.clone()));
    spinner.finish_and_clear();
    let t = t?;
    if t.outcome != Outcome::PoweredOff || !t.failed.is_empty() {
        return Err(fail!(
            "{what} on {} did not complete: {}\n--- console tail:\n{}",
            personality.id(),
            t.summary(),
            t.tail(20)
        ));
    }
    let rows: Vec<Row> =
        parse_rows(&t.console).into_iter().filter(|r| r.name.starts_with(personality.short())).collect();
    if rows.is_empty() {
        return Err(fail!("{what} on {} printed no rows:\n{}", personality.id(), t.tail(20)));
    }
    Ok(rows)
}

/// The whole benchmark: both personalities, then the published rows.
pub fn run(runs: usize, personalities: &[Personality]) -> Result<(Vec<Row>, [PathBuf; 4])> {
    let image = build::build()?;
    let mut rows = Vec::new();
    for (i, &p) in personalities.iter().enumerate() {
        eprintln!(
            "[bench] {}/{}: booting {} under -icount, {runs} runs per row",
            i + 1,
            personalities.len(),
            p.id()
        );
        rows.extend(measure(&image.iso, p, runs)?);
        eprintln!("[bench] {}/{}: booting {} again with a scratch disk", i + 1, personalities.len(), p.id());
        rows.extend(measure_disk(&image.iso, p, runs)?);
        eprintln!("[bench] {}/{}: booting {} again for `bench grow`", i + 1, personalities.len(), p.id());
        rows.extend(measure_grow(&image.iso, p, runs)?);
    }
    eprintln!("[bench] Linux: Debian's kernel under the same flags, {runs} runs per row");
    match crate::linux::measure(runs) {
        Ok(linux) => rows.extend(linux),
        // Axolotl's rows still count; say loudly what is missing and why.
        Err(e) => eprintln!("[bench] WARNING: no Linux rows in this run: {e}"),
    }
    rows.extend(PUBLISHED.iter().map(|&(name, figure, cite)| Row {
        name: name.to_string(),
        runs: 0,
        min: figure,
        median: figure,
        p99: figure,
        published: Some(cite),
    }));
    let dir = out_dir().join("bench");
    std::fs::create_dir_all(&dir).map_err(|e| fail!("cannot create {}: {e}", dir.display()))?;
    let paths = [
        dir.join("protected-calls.json"),
        dir.join("protected-calls.md"),
        dir.join("protected-calls.svg"),
        dir.join("cost-growth.svg"),
    ];
    let texts = [to_json(&rows), to_markdown(&rows), to_svg(&rows), to_growth_svg(&rows)];
    for (path, text) in paths.iter().zip(texts) {
        std::fs::write(path, text).map_err(|e| fail!("cannot write {}: {e}", path.display()))?;
    }
    Ok((rows, paths))
}

/// The rows as pretty-printed JSON, with the unit they are counted in.
pub fn to_json(rows: &[Row]) -> String {
    let record = Record { unit: "instructions (QEMU TCG -icount shift=0,align=off,sleep=off)", rows };
    let mut json = serde_json::to_string_pretty(&record).expect("rows of strings and numbers");
    json.push('\n');
    json
}

pub fn to_markdown(rows: &[Row]) -> String {
    let mut s = String::from(
        "| operation | runs | min | median | p99 | median ÷ Linux's | source |\n|---|---:|---:|---:|---:|---:|---|\n",
    );
    for r in rows {
        let runs = if r.published.is_some() { "—".to_string() } else { r.runs.to_string() };
        let vs = match ratio(rows, r) {
            Some(x) => {
                format!("{x:.2} (`{}`)", LINUX_PEERS.iter().find(|(a, _)| *a == r.name).map_or("", |p| p.1))
            }
            None => "—".to_string(),
        };
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | {} | {} | {} | {} |",
            r.name,
            runs,
            r.min,
            r.median,
            r.p99,
            vs,
            r.published.map(|c| format!("published: {c}")).unwrap_or_else(|| "measured".into())
        );
    }
    s
}

/// A horizontal bar chart of the medians on a log scale (the rows span 10 to 100,000,000).
pub fn to_svg(rows: &[Row]) -> String {
    let (label_w, bar_w, row_h, top) = (190.0, 520.0, 26.0, 40.0);
    let height = top + rows.len() as f64 * row_h + 40.0;
    let max = rows.iter().map(|r| r.median.max(1)).max().unwrap_or(1) as f64;
    let decades = max.log10().ceil().max(1.0);
    let x = |v: u64| label_w + bar_w * ((v.max(1) as f64).log10() / decades);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"22\" font-size=\"14\">Protected calls: median instructions (log scale; QEMU -icount)</text>\n",
        w = label_w + bar_w + 90.0
    );
    for d in 0..=decades as u32 {
        let gx = x(10u64.pow(d));
        let _ = writeln!(
            s,
            "<line x1=\"{gx}\" y1=\"{top}\" x2=\"{gx}\" y2=\"{}\" stroke=\"#ddd\"/><text x=\"{gx}\" y=\"{}\" text-anchor=\"middle\" fill=\"#666\">{}</text>",
            height - 30.0,
            height - 15.0,
            10u64.pow(d)
        );
    }
    for (i, r) in rows.iter().enumerate() {
        let y = top + i as f64 * row_h;
        let colour = match (r.published, r.name.split('.').next()) {
            (Some(_), _) => "#999999",
            (None, Some("mk")) => "#2b6cb0",
            _ => "#c05621",
        };
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}{}</text><rect x=\"{label_w}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{colour}\"/><text x=\"{}\" y=\"{}\">{}</text>",
            label_w - 8.0,
            y + 16.0,
            r.name,
            if r.published.is_some() { " (published)" } else { "" },
            y + 4.0,
            (x(r.median) - label_w).max(1.0),
            row_h - 8.0,
            x(r.median) + 4.0,
            y + 16.0,
            r.median
        );
    }
    s.push_str("</svg>\n");
    s
}

/// The [`GROWTH`] panels side by side: median instructions (log scale) against the quantity,
/// one line per design; a point only where its row was measured.
pub fn to_growth_svg(rows: &[Row]) -> String {
    let (panel_w, panel_h, left, top, gap) = (330.0, 300.0, 62.0, 56.0, 40.0);
    let width = GROWTH.len() as f64 * (left + panel_w + gap) + 20.0;
    let height = top + panel_h + 110.0;
    let median = |name: &str| rows.iter().find(|r| r.name == name && r.published.is_none()).map(|r| r.median);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"11\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"20\" font-size=\"14\">How costs grow: median instructions (log scale; QEMU -icount)</text>\n"
    );
    for (p, curve) in GROWTH.iter().enumerate() {
        let x0 = 10.0 + p as f64 * (left + panel_w + gap) + left;
        let values: Vec<u64> = curve
            .series
            .iter()
            .flat_map(|(_, _, names)| names.iter().flatten().filter_map(|n| median(n)))
            .collect();
        let (lo, hi) = match (values.iter().min(), values.iter().max()) {
            (Some(&lo), Some(&hi)) => ((lo.max(1) as f64).log10().floor(), (hi.max(1) as f64).log10().ceil()),
            _ => (0.0, 1.0),
        };
        let hi = if hi <= lo { lo + 1.0 } else { hi };
        let y = |v: u64| top + panel_h - panel_h * (((v.max(1) as f64).log10() - lo) / (hi - lo));
        let step = panel_w / (curve.xs.len().max(2) - 1) as f64;
        let x = |i: usize| x0 + 10.0 + i as f64 * (step - 20.0 / (curve.xs.len().max(2) - 1) as f64);
        let _ = writeln!(s, "<text x=\"{x0}\" y=\"{}\" font-size=\"12\">{}</text>", top - 14.0, curve.title);
        for d in lo as u32..=hi as u32 {
            let gy = y(10u64.pow(d));
            let _ = writeln!(
                s,
                "<line x1=\"{x0}\" y1=\"{gy}\" x2=\"{}\" y2=\"{gy}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#666\">{}</text>",
                x0 + panel_w,
                x0 - 6.0,
                gy + 4.0,
                10u64.pow(d)
            );
        }
        for (i, label) in curve.xs.iter().enumerate() {
            let _ = writeln!(
                s,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#666\">{label}</text>",
                x(i),
                top + panel_h + 16.0
            );
        }
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            x0 + panel_w / 2.0,
            top + panel_h + 34.0,
            curve.x_label
        );
        for (k, (name, colour, names)) in curve.series.iter().enumerate() {
            let points: Vec<(f64, f64, u64)> = names
                .iter()
                .enumerate()
                .filter_map(|(i, n)| n.and_then(median).map(|v| (x(i), y(v), v)))
                .collect();
            let line: Vec<String> = points.iter().map(|(px, py, _)| format!("{px:.1},{py:.1}")).collect();
            if points.len() > 1 {
                let _ = writeln!(
                    s,
                    "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"/>",
                    line.join(" ")
                );
            }
            for (px, py, v) in &points {
                let _ = writeln!(
                    s,
                    "<circle cx=\"{px:.1}\" cy=\"{py:.1}\" r=\"3\" fill=\"{colour}\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"9\" fill=\"{colour}\">{v}</text>",
                    px + 4.0,
                    py - 4.0
                );
            }
            let ly = top + panel_h + 52.0 + k as f64 * 15.0;
            let _ = writeln!(
                s,
                "<line x1=\"{x0}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{colour}\" stroke-width=\"2\"/><text x=\"{}\" y=\"{ly}\">{name}{}</text>",
                ly - 4.0,
                x0 + 20.0,
                ly - 4.0,
                x0 + 26.0,
                if points.is_empty() { " (not measured in this run)" } else { "" }
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONSOLE: &str = "axolotl> bench 10\n\
        bench: 10 runs per row; TSC ticks per operation, less the 9-tick timing loop\n\
        bench: mk.null_call n=10 min=552 median=552 p99=560\n\
        [kernel] fs gen 3 ready\n\
        bench: mk.restart n=10 min=48887 median=48976 p99=49284\n\
        bench: broken n=1\n";

    #[test]
    fn rows_are_parsed_and_other_lines_ignored() {
        let rows = parse_rows(CONSOLE);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].name, "mk.null_call");
        assert_eq!((rows[0].runs, rows[0].min, rows[0].median, rows[0].p99), (10, 552, 552, 560));
        assert_eq!(rows[1].median, 48976);
    }

    #[test]
    fn the_spinner_counts_the_rows_read() {
        let spinner = crate::progress::spinner("bench microkernel");
        let Echo::Lines(mut on_line) = watch(spinner.clone()) else { panic!("a line watcher") };
        for line in CONSOLE.lines() {
            on_line(line);
        }
        assert_eq!(spinner.message(), "row 2 read: mk.restart");
    }

    #[test]
    fn outputs_name_every_row_and_mark_published_ones() {
        let mut rows = parse_rows(CONSOLE);
        rows.push(Row {
            name: "curios.null_call".into(),
            runs: 0,
            min: 1594,
            median: 1594,
            p99: 1594,
            published: Some("CuriOS"),
        });
        let json = to_json(&rows);
        assert!(json.contains("\"name\": \"mk.null_call\"") && json.contains("\"source\": \"CuriOS\""));
        assert_eq!(json.matches("\"name\"").count(), 3);
        let j: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert!(j["unit"].as_str().unwrap().starts_with("instructions"));
        assert_eq!(
            j["rows"][1],
            serde_json::json!({"name": "mk.restart", "runs": 10, "min": 48887, "median": 48976, "p99": 49284, "source": "measured"})
        );
        let md = to_markdown(&rows);
        assert!(md.contains("| `mk.restart` | 10 | 48887 | 48976 | 49284 | — | measured |"));
        assert!(md.contains("published: CuriOS"));
        // A row with a Linux peer in the run gets its ratio; without the peer, none.
        assert!(md.contains("| `mk.null_call` | 10 | 552 | 552 | 560 | — |"), "{md}");
        rows.push(Row {
            name: "linux.null_syscall".into(),
            runs: 10,
            min: 300,
            median: 300,
            p99: 320,
            published: None,
        });
        let md = to_markdown(&rows);
        assert!(
            md.contains("| `mk.null_call` | 10 | 552 | 552 | 560 | 1.84 (`linux.null_syscall`) | measured |"),
            "{md}"
        );
        let svg = to_svg(&rows);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<rect x=").count(), 4, "one bar per row");
    }

    #[test]
    fn growth_curves_plot_the_points_they_have() {
        let row = |name: &str, median: u64| Row {
            name: name.into(),
            runs: 10,
            min: median,
            median,
            p99: median,
            published: None,
        };
        let rows = [
            row("mk.call_payload_0", 500),
            row("mk.call_payload_64", 600),
            row("mk.call_payload_4096", 2600),
            row("linux.pread_65536", 30000),
            row("mk.restart_sessions_8", 71000),
        ];
        let svg = to_growth_svg(&rows);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<circle").count(), rows.len(), "one point per row measured");
        // A line joins two or more points of one design; one point alone is not a line.
        assert_eq!(svg.matches("<polyline").count(), 1, "{svg}");
        assert!(svg.contains(">2600</text>") && svg.contains(">30000</text>"));
        assert!(svg.contains("libos channel (not measured in this run)"));
        // Every Axolotl row of a panel has a Linux peer where Linux has the operation.
        for curve in &GROWTH[..2] {
            for (_, _, names) in &curve.series[..2] {
                for name in names.iter().flatten() {
                    assert!(LINUX_PEERS.iter().any(|(a, _)| a == name), "{name} has no Linux peer");
                }
            }
        }
    }
}
