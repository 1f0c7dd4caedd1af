//! `cargo os`: build Axolotl's ISO and boot it in QEMU. Run `cargo os help` for the verbs.
//!
//! The command line is declared with clap: each verb is a variant of [`Verb`] with its options
//! in a struct, and the help a person reads is the text on them.

use axolotl_images::qemu;
use axolotl_images::{build, disk, Personality, Result};
use clap::{Args, CommandFactory, Parser, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const AFTER_HELP: &str = "\
Missing host tools (QEMU, GRUB, xorriso, mtools) are installed with apt-get when this user
may, or the exact command to install them is printed.

Each verb has its own help: cargo os VERB --help (or cargo os help VERB).";

const BUILD_ABOUT: &str = "\
Build kernel and servers for x86_64-unknown-none, write target/os/axolotl.iso

The ISO boots with GRUB (Multiboot2) and has one menu entry per personality: the microkernel
with the servers the manifest lists, and the libos (one binary, its cells linked in).
The servers on it are the tasks listed in images/microkernel.manifest. It also builds the
other versions of servers that `update` installs into target/os/updates/ (fs-v2, fs-faulty,
fs-v1, timer-v2, console-v2, and the spilling test build probe-spill; see `cargo os put`).";

const PUT_ABOUT: &str = "\
Write a host file into the file system on a disk image, for the guest to read

With the guest's own file-system code (fs-core): the file is written whole or not at all, and
missing directories are made; a blank image is formatted first, one holding anything else is
refused. This is how a server built on the host reaches Axolotl's file system, to be installed
with the shell's `update` (the machine must not be running on that image).";

const PUT_EXAMPLES: &str = "\
Examples:
    cargo os build && cargo os put target/os/updates/fs-v2 /servers/fs-v2
    cargo os run --exec \"update fs /servers/fs-v2; ps; requests\"";

const RUN_ABOUT: &str = "\
Boot Axolotl in QEMU with the serial console on this terminal (built first if needed)

Interactive unless --exec gives a script: quit QEMU with Ctrl-A X, or type 'poweroff'.
A persistent disk, target/os/disk.img, is attached as a virtio-blk PCI device, so files
can outlive the machine (unless --disk names another or --no-disk).";

const RUN_EXAMPLES: &str = "\
Examples:
    cargo os run --exec \"ps; echo hi; poweroff\"
    cargo os run --icount --exec \"bench\"
    cargo os run --personality libos --exec \"ps; write /a hi; cat /a; kill fs; cat /a\"
    cargo os run --disk /tmp/scratch.img --exec \"ls /\"
    cargo os run --no-disk";

const CAMPAIGN_ABOUT: &str = "\
Inject faults into one server under a checked workload, headless

NAME is fs, ramdisk, timer or virtio-blk (the disk driver; its run gets a fresh 64 MiB disk
image under target/os/scratch/, kept only if the run did not complete). The guest's shell runs `campaign NAME N S`: it keeps a model of
what it wrote, injects N faults (kill regflip memflip memword skip hang ssr) at random moments,
and classifies each. Runs at full speed (restart latencies in host TSC ticks) unless
--icount, which makes them counts of retired instructions but runs ~10x slower (a `hang`
then costs a full second of guest instructions). Prints progress, restarts of any other task, then the summary line last:
    campaign NAME: injected=N manifested=M recovered=R errors=E lost=L panics=P
and writes it, with every fault's record (the errors and wrong answers of its window), to
target/os/campaign-NAME-sS.json (target/os/campaign-libos-NAME-sS.json for the libos).
Exits non-zero unless the campaign completed: every fault injected, no kernel panic, and
the shell running it never restarted.";

const AUDIT_ABOUT: &str = "\
The state-spill audit of one server, headless

Boots the personality and types `audit NAME N` at its shell: the server is driven by two or
more clients taking turns with its protocol's workload, and its own memory is watched (on the
microkernel by the kernel: writable image pages and the stack above the receive point; on the
libos: a cell task's closure, heap arena and stack). Bytes one client's request changed that
are still changed when another client's request arrives are spill, unless the server declared
them as server-global state. Prints each spilled range (with its symbol, the client and the
request that caused it, whether another client's request read it), each declared range, and
the guest's summary line last:
    audit NAME: requests=R clients=C switches=S pages=P spill=N spill_bytes=B declared=D
                declared_changed=X dropped=K verdict=clean|SPILL
and writes target/os/audit/mk-NAME.json (los- for the libos), .md (the tables) and .log (the
console). NAME is a server the guest's `audit` has a workload for: fs, timer, ramdisk,
console, virtio-blk (a fresh scratch disk is attached for it, or for any with --disk) and the
probe. Exits non-zero on undeclared spill, or if no summary line came.";

const AUDIT_EXAMPLES: &str = "\
Examples:
    cargo os audit fs
    cargo os audit virtio-blk --requests 400
    cargo os audit timer --personality libos";

const BENCH_ABOUT: &str = "\
The protected-call benchmark of both personalities, side by side

Boots each personality under QEMU TCG with -icount shift=0,align=off,sleep=off (the guest's
TSC then counts retired instructions, so two runs print the same figures), types `bench N`
and reads its rows: min, median and p99 instructions of
    mk.null_call   call and reply, no payload          los.fn_call      plain call into a cell
    mk.ssr_call    server reads+writes an SSR word      los.cell_call    cell call, client-held state
    mk.fs_read     64-byte read, open fs session        los.channel_rtt  rendezvous round trip
    mk.restart     fs fault to restarted fs ready       los.fs_read, los.restart
beside the published CuriOS figures (../shared/ANCHORS.md). Prints the table (Markdown) and
writes target/os/bench/protected-calls.json, .md (the table) and .svg (a bar chart).";

/// cargo os — build and boot Axolotl
#[derive(Debug, Parser)]
#[command(name = "cargo-os", bin_name = "cargo os", after_help = AFTER_HELP)]
struct Cli {
    /// Without one, this help.
    #[command(subcommand)]
    verb: Option<Verb>,
}

#[derive(Debug, Subcommand)]
enum Verb {
    /// Build the kernel and servers and write target/os/axolotl.iso
    #[command(long_about = BUILD_ABOUT)]
    Build,
    /// Build if needed and boot the ISO in QEMU
    #[command(long_about = RUN_ABOUT, after_help = RUN_EXAMPLES)]
    Run(RunArgs),
    /// Run a fault-injection campaign headless and write its record as JSON
    #[command(long_about = CAMPAIGN_ABOUT)]
    Campaign(CampaignArgs),
    /// Audit one server for state spill (what a client's request leaves in its memory)
    #[command(long_about = AUDIT_ABOUT, after_help = AUDIT_EXAMPLES)]
    Audit(AuditArgs),
    /// Measure protected calls on both personalities (instructions, under -icount)
    #[command(long_about = BENCH_ABOUT)]
    Bench(BenchArgs),
    /// Record a workload's disk writes in QEMU and check every state a power cut could leave
    #[command(long_about = CRASHTEST_ABOUT)]
    Crashtest(CrashtestArgs),
    /// Write a host file into the file system of a disk image (a server's new version)
    #[command(long_about = PUT_ABOUT, after_help = PUT_EXAMPLES)]
    Put(PutArgs),
}

#[derive(Debug, Args)]
struct PutArgs {
    /// The host file
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Where it goes in the guest's file system (absolute, e.g. /servers/fs-v2)
    #[arg(value_name = "GUEST_PATH")]
    guest: String,
    /// The disk image (default target/os/disk.img, created if missing)
    #[arg(long, value_name = "PATH")]
    disk: Option<PathBuf>,
}

fn put(args: PutArgs) -> Result<ExitCode> {
    let data = std::fs::read(&args.file)
        .map_err(|e| axolotl_images::fail!("cannot read {}: {e}", args.file.display()))?;
    let image = args.disk.unwrap_or_else(disk::default_path);
    disk::put(&image, &args.guest, &data)?;
    eprintln!(
        "[os] wrote {} ({} bytes) as {} on {}",
        args.file.display(),
        data.len(),
        args.guest,
        image.display()
    );
    Ok(ExitCode::SUCCESS)
}

const CRASHTEST_ABOUT: &str = "\
Record a workload's disk writes in QEMU and check every state a power cut could leave.

Boots the personality with its disk served by an NBD server inside this tool, which records
every write and flush in order; types a seeded workload of N file commands under /w (mkdir,
write, append, rm), noting how many disk events there were when each was answered. Then it
rebuilds every crash state (each flush boundary; within each epoch between two flushes every
in-order prefix, the epoch less any one write, and random subsets, after CrashMonkey) and
checks each on the host with fs-core: it mounts (redoing the journal), fsck finds nothing, and
/w is the model's tree after an operation no older than the last one answered. Two states are
also booted in QEMU, where the guest's fsck must find them clean. As a control, the same
recording with each commit flush taken out (what a build without it would write) must fail
some states: a checker that passed it would pass anything. Prints a summary line per
personality and writes target/os/crashtest-PERSONALITY-sSEED.json; exits non-zero if any
state fails.";

#[derive(Debug, Args)]
struct RunArgs {
    /// Which GRUB entry to boot
    #[arg(long, value_enum, value_name = "P", default_value_t = Personality::Microkernel)]
    personality: Personality,
    /// Run headless, typing the commands of SCRIPT (separated by ';')
    ///
    /// Wait for the shell prompt, type each command, wait for its prompt, then power off;
    /// print the whole console and exit non-zero if the kernel panicked, a command failed,
    /// or the timeout passed.
    #[arg(long, value_name = "SCRIPT", verbatim_doc_comment)]
    exec: Option<String>,
    /// Limit for the whole --exec session, in seconds (1 to 604800, a week)
    #[arg(long, value_name = "SECS", default_value_t = 120, value_parser = seconds)]
    timeout: u64,
    /// Count instructions instead of time
    ///
    /// The guest's TSC then advances by one per retired instruction
    /// (-icount shift=0,align=off,sleep=off), so `bench` prints instruction counts, the same
    /// on every run.
    #[arg(long, verbatim_doc_comment)]
    icount: bool,
    /// Start QEMU halted, waiting for a debugger on localhost:1234
    ///
    /// Not with --exec: a debugger session is interactive. The gdb command line to attach
    /// is printed before QEMU starts.
    #[arg(long, conflicts_with = "exec", verbatim_doc_comment)]
    gdb: bool,
    /// Attach the raw disk image PATH instead of target/os/disk.img
    ///
    /// The guest sees it as a virtio-blk PCI device and its writes reach the file. Missing,
    /// it is created: 64 MiB of zeros (sparse). An existing file is used as it is, whatever
    /// its size; a directory, or a file under 64 KiB, is refused. Without --disk or
    /// --no-disk, target/os/disk.img is attached (created the same way on first use).
    /// QEMU locks the file: one running machine per disk.
    #[arg(long, value_name = "PATH", conflicts_with = "no_disk", verbatim_doc_comment)]
    disk: Option<PathBuf>,
    /// Attach no disk: the guest keeps its files in its RAM disk, lost at power-off
    #[arg(long)]
    no_disk: bool,
}

#[derive(Debug, Args)]
struct CampaignArgs {
    /// The server to inject faults into
    #[arg(value_name = "NAME", value_parser = ["fs", "ramdisk", "timer", "virtio-blk"])]
    name: String,
    /// Number of faults, 1 to 100000
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = fault_count)]
    faults: u32,
    /// Seed of the campaign's random choices
    #[arg(long, value_name = "S", default_value_t = 1, value_parser = whole_number)]
    seed: u64,
    /// Count instructions (-icount shift=0): latencies in instructions, ~10x slower
    #[arg(long, overrides_with = "no_icount")]
    icount: bool,
    /// Undo an earlier --icount
    #[arg(long, hide = true, overrides_with = "icount")]
    no_icount: bool,
    /// Which personality to run the campaign on
    #[arg(long, value_enum, value_name = "P", default_value_t = Personality::Microkernel)]
    personality: Personality,
}

#[derive(Debug, Args)]
struct AuditArgs {
    /// The server to audit (fs, timer, ramdisk, console, virtio-blk, probe)
    #[arg(value_name = "NAME")]
    name: String,
    /// Requests the clients make, 2 to 5000
    #[arg(long, value_name = "N", default_value_t = 200, value_parser = audit_requests)]
    requests: u32,
    /// Which personality to audit the server on
    #[arg(long, value_enum, value_name = "P", default_value_t = Personality::Microkernel)]
    personality: Personality,
    /// Attach a fresh scratch disk (always done for virtio-blk, the disk driver)
    #[arg(long)]
    disk: bool,
}

#[derive(Debug, Args)]
struct BenchArgs {
    /// Runs per row, 10 to 4000 (restarts at most 50)
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = runs)]
    runs: usize,
    /// Only this personality [default: both]
    #[arg(long, value_enum, value_name = "P")]
    personality: Option<Personality>,
}

#[derive(Debug, Args)]
struct CrashtestArgs {
    /// Seed of the workload and of the random subsets
    #[arg(long, value_name = "S", default_value_t = 1, value_parser = whole_number)]
    seed: u64,
    /// Workload commands, 1 to 1000
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = ops)]
    ops: usize,
    /// Only this personality [default: both]
    #[arg(long, value_enum, value_name = "P")]
    personality: Option<Personality>,
    /// Build the guest's file system broken: without the commit flush (no-commit-flush), or
    /// committing in place with no journal, as before it had one (in-place); the crashtest must
    /// then fail states, and exits non-zero if it does not
    #[arg(long, value_name = "HOW", value_parser = ["no-commit-flush", "in-place"], verbatim_doc_comment)]
    broken: Option<String>,
}

fn ops(v: &str) -> std::result::Result<usize, String> {
    v.parse()
        .ok()
        .filter(|n| (1..=1000).contains(n))
        .ok_or_else(|| "not a whole number from 1 to 1000".into())
}

// Value checks. clap prints "invalid value 'X' for '--option <V>': " before what they say.

fn whole_number(v: &str) -> std::result::Result<u64, String> {
    v.parse().map_err(|_| "not a whole number".into())
}

/// The longest `--timeout`: far beyond any session, far below what a clock can add.
const TIMEOUT_MAX: u64 = 7 * 24 * 3600;

fn seconds(v: &str) -> std::result::Result<u64, String> {
    v.parse()
        .ok()
        .filter(|s| (1..=TIMEOUT_MAX).contains(s))
        .ok_or_else(|| format!("not a whole number of seconds from 1 to {TIMEOUT_MAX} (a week)"))
}

/// What the guest's `campaign` takes: it refuses the rest, and so does this.
fn fault_count(v: &str) -> std::result::Result<u32, String> {
    v.parse()
        .ok()
        .filter(|n| (1..=campaign::MAX_FAULTS).contains(n))
        .ok_or_else(|| format!("not a whole number of faults from 1 to {}", campaign::MAX_FAULTS))
}

/// What the guest's `audit` takes (2 to 5000 requests).
fn audit_requests(v: &str) -> std::result::Result<u32, String> {
    v.parse()
        .ok()
        .filter(|n| (2..=5000).contains(n))
        .ok_or_else(|| "not a whole number of requests from 2 to 5000".into())
}

fn runs(v: &str) -> std::result::Result<usize, String> {
    v.parse()
        .ok()
        .filter(|n| (10..=4000).contains(n))
        .ok_or_else(|| "not a whole number from 10 to 4000".into())
}

/// Parse the command line (program name first).
fn parse<I, T>(args: I) -> std::result::Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let mut args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    // `cargo os` is an alias; cargo also runs this binary as its `os` subcommand: `cargo-os os ...`.
    if args.get(1).is_some_and(|a| a == "os") {
        args.remove(1);
    }
    Cli::try_parse_from(args)
}

fn crashtest(args: CrashtestArgs) -> Result<ExitCode> {
    let which = args.personality.map_or(Personality::ALL.to_vec(), |p| vec![p]);
    let fs = args
        .broken
        .as_deref()
        .and_then(fs_core::Durability::from_name)
        .unwrap_or(fs_core::Durability::Journal);
    let mut all_passed = true;
    for p in which {
        let (r, path) = axolotl_images::crashtest::run(p, args.seed, args.ops, fs)?;
        for (at, why) in &r.failed {
            println!("FAILED after {at} events: {why}");
        }
        let booted: Vec<String> =
            r.booted.iter().map(|(at, fsck)| format!("after {at} events: {fsck}")).collect();
        println!(
            "crashtest {} seed {}: {} commands answered, {} disk events ({} flushes), {} crash states checked, {} failed; \
             control without the commit flushes: {} of {} states fail; booted in QEMU: {}; {:.0} s",
            r.personality,
            r.seed,
            r.answered,
            r.events,
            r.flushes,
            r.states,
            r.failed_count,
            r.control_failed,
            r.control_states,
            booted.join("; "),
            r.seconds
        );
        eprintln!("[os] record written to {}", path.display());
        if fs == fs_core::Durability::Journal {
            all_passed &= r.failed_count == 0;
        } else {
            let caught = r.failed_count > 0;
            println!(
                "crashtest {}: the file system built {}: {}",
                r.personality,
                fs.name(),
                if caught { "caught (states fail, as they must)" } else { "NOT CAUGHT: every state passed" }
            );
            all_passed &= caught;
        }
    }
    // After a broken build the next `cargo os` rebuilds the guest as it should be.
    Ok(if all_passed { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn bench(args: BenchArgs) -> Result<ExitCode> {
    let which = args.personality.map_or(Personality::ALL.to_vec(), |p| vec![p]);
    let (rows, paths) = axolotl_images::bench::run(args.runs, &which)?;
    println!("{}", axolotl_images::bench::to_markdown(&rows));
    for p in &paths {
        eprintln!("[bench] wrote {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn campaign(args: CampaignArgs) -> Result<ExitCode> {
    let CampaignArgs { name, faults, seed, icount, personality, .. } = args;
    let (report, path) = axolotl_images::campaign::run(personality, &name, faults, seed, icount)?;
    println!("{:<10} {:>9} {:>11} {:>10}", "kind", "injected", "manifested", "recovered");
    for (kind, n, m, r) in report.by_kind() {
        println!("{kind:<10} {n:>9} {m:>11} {r:>10}");
    }
    if let (Some(min), Some(max)) = (report.latencies.iter().min(), report.latencies.iter().max()) {
        let mut v = report.latencies.clone();
        v.sort_unstable();
        println!(
            "restart latency ({} restarts): min {min}, median {}, max {max} {}",
            v.len(),
            v[v.len() / 2],
            report.unit.name()
        );
    }
    let guest = report.guest_other_restarts.unwrap_or(0);
    match report.other_tasks.len() {
        0 if guest == 0 => println!("other tasks: none was restarted"),
        n => {
            println!("other tasks: {n} restart(s) or stop(s) of tasks other than {name}:");
            for e in &report.other_tasks {
                println!("  {e}");
            }
        }
    }
    let named =
        report.other_tasks.iter().filter(|e| e.event == axolotl_images::campaign::Event::Restarted).count();
    if guest as usize > named {
        println!(
            "other tasks: the campaign counted {guest} restart(s) of tasks other than {name}, the console names {named}: \
             a task bearing {name}'s name, or a restart whose line was lost (see the log)"
        );
    }
    if let Some(why) = &report.cut_short {
        println!("CUT SHORT: {why}; {} of {faults} faults injected", report.summary.injected);
    }
    eprintln!(
        "[os] record written to {}; the console to {}",
        path.display(),
        path.with_extension("log").display()
    );
    // Scripts read this line: it stays the last on stdout.
    println!("{}", report.summary);
    Ok(if report.complete() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn audit(args: AuditArgs) -> Result<ExitCode> {
    let AuditArgs { name, requests, personality, disk } = args;
    let disk = disk || name == "virtio-blk";
    let (report, t, path) = axolotl_images::audit::run(personality, &name, requests, disk)?;
    print!("{}", axolotl_images::audit::to_table(&report));
    eprintln!(
        "[os] record written to {} (and .md); the console to {}",
        path.display(),
        path.with_extension("log").display()
    );
    for f in &t.failed {
        eprintln!("[os] {f}");
    }
    if t.outcome != qemu::Outcome::PoweredOff {
        eprintln!("[os] the run did not end cleanly: {}", t.summary());
    }
    // Scripts read this line: it stays the last on stdout.
    match report.summary {
        Some(_) => {
            let line = t
                .console
                .lines()
                .rev()
                .find_map(|l| l.find(&format!("audit {name}: requests=")).map(|i| &l[i..]));
            println!("{}", line.unwrap_or_default());
        }
        None => println!("audit {name}: no summary line came (see the console)"),
    }
    Ok(if report.clean() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// The disk `cargo os run` attaches, ready (created if missing), or none with --no-disk.
fn run_disk(args: &RunArgs) -> Result<Option<disk::Disk>> {
    if args.no_disk {
        return Ok(None);
    }
    let path = match &args.disk {
        Some(path) => path.clone(),
        None => {
            let out = axolotl_images::out_dir();
            std::fs::create_dir_all(&out)
                .map_err(|e| axolotl_images::fail!("cannot create {}: {e}", out.display()))?;
            disk::default_path()
        }
    };
    disk::prepare(&path).map(Some)
}

fn run(args: RunArgs) -> Result<ExitCode> {
    // Before the build: a bad --disk is told at once.
    let disk = run_disk(&args)?;
    let machine = qemu::Machine {
        icount: args.icount,
        gdb: args.gdb,
        // Leaked: one path for the life of the process.
        disk: disk.as_ref().map(|d| &*Box::leak(d.path.clone().into_boxed_path())),
        ..qemu::Machine::default()
    };
    let image = build::build()?;
    match &disk {
        Some(d) => eprintln!("[os] disk: {d}"),
        None => eprintln!("[os] no disk (--no-disk): files live in the guest's RAM disk"),
    }
    match args.exec {
        Some(script) => {
            let commands = qemu::split_commands(&script);
            let timeout = Duration::from_secs(args.timeout);
            eprintln!(
                "[os] booting headless; {} command(s); timeout {} s",
                commands.len(),
                timeout.as_secs()
            );
            let t = qemu::exec(
                &image.iso,
                args.personality,
                machine,
                &commands,
                timeout,
                qemu::Echo::Everything,
            )?;
            println!();
            eprintln!("[os] {}", t.summary());
            Ok(if t.ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        None => {
            if machine.gdb {
                eprintln!("[os] QEMU waits for a debugger. In another terminal:");
                let libos = args.personality == Personality::Libos;
                let elf = if libos { &image.libos } else { &image.kernel };
                eprintln!("       gdb {} -ex 'target remote localhost:1234'", elf.display());
                for s in image.servers.iter().filter(|_| !libos) {
                    eprintln!("       (a server's symbols: add-symbol-file {})", s.display());
                }
            }
            let code = qemu::interactive(&image.iso, args.personality, machine)?;
            Ok(match code {
                0 | qemu::EXIT_POWEROFF => ExitCode::SUCCESS,
                qemu::EXIT_PANIC => {
                    eprintln!("[os] the kernel panicked");
                    ExitCode::FAILURE
                }
                c => {
                    eprintln!("[os] QEMU exited with status {c}");
                    ExitCode::FAILURE
                }
            })
        }
    }
}

fn main() -> ExitCode {
    // Help goes to stdout with success; a bad command line to stderr, with usage, status 2.
    let cli = parse(std::env::args_os()).unwrap_or_else(|e| e.exit());
    axolotl_images::progress::enable();
    let result = match cli.verb {
        None => {
            let _ = Cli::command().print_help();
            Ok(ExitCode::SUCCESS)
        }
        Some(Verb::Build) => build::build().map(|img| {
            eprintln!("[os] done: {}", img.iso.display());
            ExitCode::SUCCESS
        }),
        Some(Verb::Run(args)) => run(args),
        Some(Verb::Campaign(args)) => campaign(args),
        Some(Verb::Audit(args)) => audit(args),
        Some(Verb::Bench(args)) => bench(args),
        Some(Verb::Crashtest(args)) => crashtest(args),
        Some(Verb::Put(args)) => put(args),
    };
    result.unwrap_or_else(|e| {
        eprintln!("cargo os: error: {e}");
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;

    fn verb(args: &[&str]) -> std::result::Result<Verb, clap::Error> {
        parse(["cargo-os"].iter().chain(args)).map(|cli| cli.verb.expect("a verb was given"))
    }

    fn error(args: &[&str]) -> String {
        verb(args).expect_err("a bad command line").to_string()
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_options_parse_and_bad_ones_say_why() {
        let Ok(Verb::Run(r)) = verb(&["run", "--exec", "ps", "--timeout", "9"]) else { panic!("run") };
        assert_eq!((r.exec.as_deref(), r.timeout, r.gdb, r.icount), (Some("ps"), 9, false, false));
        assert_eq!(r.personality, Personality::Microkernel);
        let Ok(Verb::Run(r)) = verb(&["run", "--icount", "--personality", "los"]) else { panic!("run") };
        assert!(r.icount && r.personality == Personality::Libos && r.exec.is_none());
        assert_eq!(verb(&["run", "--help"]).unwrap_err().kind(), ErrorKind::DisplayHelp);
        assert!(error(&["run", "--exec"]).contains("a value is required for '--exec <SCRIPT>'"));
        assert!(error(&["run", "--timeout", "soon"])
            .contains("'soon' for '--timeout <SECS>': not a whole number of seconds from 1 to 604800"));
        let Ok(Verb::Run(r)) = verb(&["run", "--timeout", "604800"]) else { panic!("run") };
        assert_eq!(r.timeout, 604_800, "a week is the longest");
        // Once clamped to 1, or (the largest u64) an overflow when the deadline was computed.
        for bad in ["0", "604801", "18446744073709551615", "18446744073709551616"] {
            assert!(
                error(&["run", "--timeout", bad])
                    .contains(&format!("'{bad}' for '--timeout <SECS>': not a whole number of seconds")),
                "--timeout {bad}"
            );
        }
        assert!(error(&["run", "--personality", "dos"]).contains("[possible values: microkernel, libos]"));
        assert!(error(&["run", "--gdb", "--exec", "ps"])
            .contains("'--gdb' cannot be used with '--exec <SCRIPT>'"));
        assert!(error(&["run", "--frobnicate"]).contains("unexpected argument '--frobnicate'"));
    }

    #[test]
    fn disk_options_parse_and_bad_ones_say_why() {
        let Ok(Verb::Run(r)) = verb(&["run"]) else { panic!("run") };
        assert_eq!((r.disk.as_deref(), r.no_disk), (None, false), "the default disk");
        let Ok(Verb::Run(r)) = verb(&["run", "--disk", "/tmp/d.img", "--exec", "ls"]) else { panic!("run") };
        assert_eq!((r.disk.as_deref(), r.no_disk), (Some(std::path::Path::new("/tmp/d.img")), false));
        let Ok(Verb::Run(r)) = verb(&["run", "--no-disk", "--personality", "libos"]) else { panic!("run") };
        assert_eq!((r.disk.as_deref(), r.no_disk), (None, true));
        assert!(error(&["run", "--disk", "a.img", "--no-disk"])
            .contains("'--disk <PATH>' cannot be used with '--no-disk'"));
        assert!(error(&["run", "--no-disk", "--disk", "a.img"])
            .contains("'--no-disk' cannot be used with '--disk <PATH>'"));
        assert!(error(&["run", "--disk"]).contains("a value is required for '--disk <PATH>'"));
        assert!(error(&["run", "--no-disk=yes"]).contains("unexpected value 'yes' for '--no-disk'"));
        // The other verbs attach no disk: their figures stay comparable with earlier runs.
        assert!(error(&["bench", "--disk", "a.img"]).contains("unexpected argument '--disk'"));
        assert!(error(&["campaign", "fs", "--no-disk"]).contains("unexpected argument '--no-disk'"));
        let help = Cli::command().find_subcommand_mut("run").unwrap().render_long_help().to_string();
        assert!(help.contains("--disk <PATH>") && help.contains("64 MiB of zeros (sparse)"), "{help}");
        assert!(help.contains("--no-disk") && help.contains("RAM disk"), "{help}");
    }

    #[test]
    fn the_disk_run_attaches() {
        let Ok(Verb::Run(r)) = verb(&["run", "--no-disk"]) else { panic!("run") };
        assert_eq!(run_disk(&r).unwrap(), None);
        // A bad --disk is refused before anything is built.
        let dir = axolotl_images::out_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let Ok(Verb::Run(r)) = verb(&["run", "--disk", dir.to_str().unwrap()]) else { panic!("run") };
        let e = run_disk(&r).unwrap_err().to_string();
        assert!(e.contains("is a directory"), "{e}");
    }

    #[test]
    fn audit_options_parse_and_bad_ones_say_why() {
        let Ok(Verb::Audit(a)) = verb(&["audit", "fs"]) else { panic!("audit") };
        assert_eq!(
            (a.name.as_str(), a.requests, a.personality, a.disk),
            ("fs", 200, Personality::Microkernel, false)
        );
        let Ok(Verb::Audit(a)) =
            verb(&["audit", "timer", "--requests", "5000", "--personality", "los", "--disk"])
        else {
            panic!("audit")
        };
        assert_eq!((a.requests, a.personality, a.disk), (5000, Personality::Libos, true));
        for bad in ["1", "5001", "many"] {
            assert!(
                error(&["audit", "fs", "--requests", bad])
                    .contains("not a whole number of requests from 2 to 5000"),
                "--requests {bad}"
            );
        }
        assert!(error(&["audit"]).contains("<NAME>"));
        assert_eq!(verb(&["audit", "--help"]).unwrap_err().kind(), ErrorKind::DisplayHelp);
    }

    #[test]
    fn campaign_options_parse_and_bad_ones_say_why() {
        let Ok(Verb::Campaign(c)) = verb(&["campaign", "timer", "--seed", "7", "--icount"]) else { panic!() };
        assert_eq!((c.name.as_str(), c.faults, c.seed, c.icount), ("timer", 100, 7, true));
        let Ok(Verb::Campaign(c)) = verb(&["campaign", "fs", "--faults", "1", "--icount", "--no-icount"])
        else {
            panic!()
        };
        assert_eq!((c.faults, c.icount), (1, false));
        let Ok(Verb::Campaign(c)) = verb(&["campaign", "fs", "--faults", "100000"]) else { panic!() };
        assert_eq!(c.faults, 100_000);
        // Once brought silently into 1..=100000; the guest's shell refuses them.
        for bad in ["0", "100001", "999999", "4294967296"] {
            assert!(
                error(&["campaign", "fs", "--faults", bad]).contains(&format!(
                    "'{bad}' for '--faults <N>': not a whole number of faults from 1 to 100000"
                )),
                "--faults {bad}"
            );
        }
        assert!(error(&["campaign"]).contains("<NAME>"));
        assert!(error(&["campaign", "console"]).contains("[possible values: fs, ramdisk, timer, virtio-blk]"));
        assert!(error(&["campaign", "fs", "--faults", "many"]).contains("not a whole number"));
        assert!(error(&["campaign", "fs", "ramdisk"]).contains("unexpected argument 'ramdisk'"));
    }

    #[test]
    fn bench_and_build_options() {
        let Ok(Verb::Bench(b)) = verb(&["bench"]) else { panic!() };
        assert_eq!((b.runs, b.personality), (1000, None));
        let Ok(Verb::Bench(b)) = verb(&["bench", "--runs", "10", "--personality", "mk"]) else { panic!() };
        assert_eq!((b.runs, b.personality), (10, Some(Personality::Microkernel)));
        assert!(error(&["bench", "--runs", "9"]).contains("not a whole number from 10 to 4000"));
        assert!(error(&["bench", "--runs", "4001"]).contains("not a whole number from 10 to 4000"));
        assert!(matches!(verb(&["build"]), Ok(Verb::Build)));
        assert!(error(&["build", "now"]).contains("unexpected argument 'now'"));
        assert!(error(&["frobnicate"]).contains("unrecognized subcommand 'frobnicate'"));
    }

    #[test]
    fn run_as_cargo_subcommand_and_without_a_verb() {
        assert!(matches!(parse(["cargo-os", "os", "build"]).unwrap().verb, Some(Verb::Build)));
        assert!(parse(["cargo-os"]).unwrap().verb.is_none());
        assert!(parse(["cargo-os", "os"]).unwrap().verb.is_none());
        assert_eq!(parse(["cargo-os", "help"]).unwrap_err().kind(), ErrorKind::DisplayHelp);
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("campaign") && help.contains("installed with apt-get"));
    }
}
