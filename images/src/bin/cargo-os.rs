//! `cargo os`: build Axolotl's ISO and boot it in QEMU. Run `cargo os help` for the verbs.

use axolotl_images::qemu;
use axolotl_images::{build, fail, Personality, Result};
use std::process::ExitCode;
use std::time::Duration;

const HELP: &str = "\
cargo os — build and boot Axolotl

USAGE:
    cargo os <VERB> [OPTIONS]

VERBS:
    build     build the kernel and servers and write target/os/axolotl.iso
    run       build if needed and boot the ISO in QEMU
    campaign  run a fault-injection campaign headless and write its record as JSON
    bench     measure protected calls on both personalities (instructions, under -icount)
    help      show this text (also: cargo os <VERB> --help)

Missing host tools (QEMU, GRUB, xorriso, mtools) are installed with apt-get when this user
may, or the exact command to install them is printed.";

const BUILD_HELP: &str = "\
cargo os build — build kernel and servers for x86_64-unknown-none, write target/os/axolotl.iso

USAGE:
    cargo os build

The ISO boots with GRUB (Multiboot2) and has one menu entry per personality: the microkernel
with the servers the manifest lists, and the libos (one binary, its cells linked in).
The servers on it are the tasks listed in images/microkernel.manifest.";

const RUN_HELP: &str = "\
cargo os run — boot Axolotl in QEMU with the serial console on this terminal

USAGE:
    cargo os run [--personality microkernel|libos] [--exec \"CMD; CMD; ...\"] [--icount] [--gdb]
                 [--timeout SECS]

OPTIONS:
    --personality P   which GRUB entry to boot: microkernel (default) or libos
    --exec SCRIPT     run headless: wait for the shell prompt, type each command, wait for its
                      prompt, then power off; print the whole console and exit non-zero if the
                      kernel panicked, a command failed, or the timeout passed
    --timeout SECS    limit for the whole --exec session (default 120)
    --icount          count instructions: the guest's TSC then advances by one per retired
                      instruction (-icount shift=0,align=off,sleep=off), so `bench` prints
                      instruction counts, the same on every run
    --gdb             start QEMU halted, waiting for a debugger on localhost:1234
    -h, --help        show this text

EXAMPLE:
    cargo os run --exec \"ps; echo hi; poweroff\"
    cargo os run --icount --exec \"bench\"
    cargo os run --personality libos --exec \"ps; write /a hi; cat /a; kill fs; cat /a\"";

const CAMPAIGN_HELP: &str = "\
cargo os campaign — inject faults into one server under a checked workload, headless

USAGE:
    cargo os campaign NAME [--faults N] [--seed S] [--icount] [--personality P]

NAME is fs, ramdisk or timer. The guest's shell runs `campaign NAME N S`: it keeps a model of
what it wrote, injects N faults (kill regflip memflip memword skip hang ssr) at random moments,
and classifies each. Runs at full speed (restart latencies in host TSC ticks) unless
--icount, which makes them counts of retired instructions but runs ~10x slower (a `hang`
then costs a full second of guest instructions). Prints progress, then the summary line last:
    campaign NAME: injected=N manifested=M recovered=R errors=E lost=L panics=P
and writes it, with every fault's record, to target/os/campaign-NAME-sS.json.

OPTIONS:
    --faults N     number of faults (default 100)
    --seed S       seed of the campaign's random choices (default 1)
    --icount       count instructions (-icount shift=0): latencies in instructions, slower
    --personality P  microkernel (default) or libos; the record is then
                   target/os/campaign-libos-NAME-sS.json";

const BENCH_HELP: &str = "\
cargo os bench — the protected-call benchmark of both personalities, side by side

USAGE:
    cargo os bench [--runs N] [--personality P]

Boots each personality under QEMU TCG with -icount shift=0,align=off,sleep=off (the guest's
TSC then counts retired instructions, so two runs print the same figures), types `bench N`
and reads its rows: min, median and p99 instructions of
    mk.null_call   call and reply, no payload          los.fn_call      plain call into a cell
    mk.ssr_call    server reads+writes an SSR word      los.cell_call    cell call, client-held state
    mk.fs_read     64-byte read, open fs session        los.channel_rtt  rendezvous round trip
    mk.restart     fs fault to restarted fs ready       los.fs_read, los.restart
beside the published CuriOS figures (../shared/ANCHORS.md). Writes
target/os/bench/protected-calls.json, .md (the table) and .svg (a bar chart).

OPTIONS:
    --runs N           runs per row (default 1000; restarts at most 50)
    --personality P    only microkernel or only libos";

fn bench(args: &[String]) -> Result<ExitCode> {
    let mut it = args.iter();
    let (mut runs, mut which) = (1000usize, Personality::ALL.to_vec());
    while let Some(a) = it.next() {
        let mut value = |flag: &str| {
            it.next().cloned().ok_or_else(|| fail!("{flag} needs a value (see cargo os bench --help)"))
        };
        match a.as_str() {
            "-h" | "--help" => {
                println!("{BENCH_HELP}");
                return Ok(ExitCode::SUCCESS);
            }
            "--runs" => {
                let v = value("--runs")?;
                runs = v
                    .parse()
                    .ok()
                    .filter(|n| (10..=4000).contains(n))
                    .ok_or_else(|| fail!("--runs takes a whole number from 10 to 4000, not '{v}'"))?;
            }
            "--personality" => which = vec![Personality::parse(&value("--personality")?)?],
            other => return Err(fail!("unknown option '{other}' (see cargo os bench --help)")),
        }
    }
    let (rows, paths) = axolotl_images::bench::run(runs, &which)?;
    println!("{}", axolotl_images::bench::to_markdown(&rows));
    for p in &paths {
        eprintln!("[bench] wrote {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn campaign(args: &[String]) -> Result<ExitCode> {
    let mut it = args.iter();
    let mut name = None;
    let (mut faults, mut seed, mut icount) = (100u32, 1u64, false);
    let mut personality = Personality::Microkernel;
    while let Some(a) = it.next() {
        let mut num = |flag: &str| -> Result<u64> {
            let v = it.next().ok_or_else(|| fail!("{flag} needs a value (see cargo os campaign --help)"))?;
            v.parse().map_err(|_| fail!("{flag} takes a whole number, not '{v}'"))
        };
        match a.as_str() {
            "-h" | "--help" => {
                println!("{CAMPAIGN_HELP}");
                return Ok(ExitCode::SUCCESS);
            }
            "--faults" => faults = num("--faults")?.clamp(1, 100_000) as u32,
            "--seed" => seed = num("--seed")?,
            "--icount" => icount = true,
            "--no-icount" => icount = false,
            "--personality" => {
                let v = it.next().ok_or_else(|| fail!("--personality needs a value"))?;
                personality = Personality::parse(v)?;
            }
            other if other.starts_with('-') => {
                return Err(fail!("unknown option '{other}' (see cargo os campaign --help)"))
            }
            other if name.is_none() => name = Some(other.to_string()),
            other => return Err(fail!("unexpected argument '{other}'")),
        }
    }
    let name = name.ok_or_else(|| fail!("which server? cargo os campaign NAME (fs, ramdisk or timer)"))?;
    if !matches!(name.as_str(), "fs" | "ramdisk" | "timer") {
        return Err(fail!("no checked workload for '{name}': choose fs, ramdisk or timer"));
    }
    let (report, path) = axolotl_images::campaign::run(personality, &name, faults, seed, icount)?;
    println!("{:<10} {:>9} {:>11} {:>10}", "kind", "injected", "manifested", "recovered");
    for (kind, n, m, r) in report.by_kind() {
        println!("{kind:<10} {n:>9} {m:>11} {r:>10}");
    }
    if let (Some(min), Some(max)) = (report.latencies.iter().min(), report.latencies.iter().max()) {
        let mut v = report.latencies.clone();
        v.sort_unstable();
        let unit = if icount { "instructions" } else { "TSC ticks" };
        println!(
            "restart latency ({} restarts): min {min}, median {}, max {max} {unit}",
            v.len(),
            v[v.len() / 2]
        );
    }
    eprintln!("[os] record written to {}", path.display());
    println!("{}", report.summary);
    Ok(if report.summary.panics == 0 && report.summary.injected == faults {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[derive(Debug)]
struct RunArgs {
    personality: Personality,
    exec: Option<String>,
    machine: qemu::Machine,
    timeout: Duration,
}

fn parse_run(args: &[String]) -> Result<Option<RunArgs>> {
    let mut r = RunArgs {
        personality: Personality::Microkernel,
        exec: None,
        machine: qemu::Machine::default(),
        timeout: Duration::from_secs(120),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next().cloned().ok_or_else(|| fail!("{name} needs a value (see cargo os run --help)"))
        };
        match a.as_str() {
            "-h" | "--help" => return Ok(None),
            "--personality" => r.personality = Personality::parse(&value("--personality")?)?,
            "--exec" => r.exec = Some(value("--exec")?),
            "--gdb" => r.machine.gdb = true,
            "--icount" => r.machine.icount = true,
            "--timeout" => {
                let v = value("--timeout")?;
                let secs: u64 = v.parse().map_err(|_| fail!("--timeout takes whole seconds, not '{v}'"))?;
                r.timeout = Duration::from_secs(secs.max(1));
            }
            other => return Err(fail!("unknown option '{other}' for run (see cargo os run --help)")),
        }
    }
    if r.machine.gdb && r.exec.is_some() {
        return Err(fail!("--gdb and --exec do not go together: a debugger session is interactive"));
    }
    Ok(Some(r))
}

fn run(args: &[String]) -> Result<ExitCode> {
    let Some(r) = parse_run(args)? else {
        println!("{RUN_HELP}");
        return Ok(ExitCode::SUCCESS);
    };
    let image = build::build()?;
    match r.exec {
        Some(script) => {
            let commands = qemu::split_commands(&script);
            eprintln!(
                "[os] booting headless; {} command(s); timeout {} s",
                commands.len(),
                r.timeout.as_secs()
            );
            let t = qemu::exec(
                &image.iso,
                r.personality,
                r.machine,
                &commands,
                r.timeout,
                qemu::Echo::Everything,
            )?;
            println!();
            eprintln!("[os] {}", t.summary());
            Ok(if t.ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        None => {
            if r.machine.gdb {
                eprintln!("[os] QEMU waits for a debugger. In another terminal:");
                let libos = r.personality == Personality::Libos;
                let elf = if libos { &image.libos } else { &image.kernel };
                eprintln!("       gdb {} -ex 'target remote localhost:1234'", elf.display());
                for s in image.servers.iter().filter(|_| !libos) {
                    eprintln!("       (a server's symbols: add-symbol-file {})", s.display());
                }
            }
            let code = qemu::interactive(&image.iso, r.personality, r.machine)?;
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
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo os` is an alias; also accept being run as the `cargo-os` subcommand (`cargo-os os ...`).
    let args = if args.first().map(String::as_str) == Some("os") { &args[1..] } else { &args[..] };
    let result = match args.first().map(String::as_str) {
        None | Some("help" | "-h" | "--help") => {
            println!("{HELP}");
            Ok(ExitCode::SUCCESS)
        }
        Some("build") if args[1..].iter().any(|a| a == "-h" || a == "--help") => {
            println!("{BUILD_HELP}");
            Ok(ExitCode::SUCCESS)
        }
        Some("build") if args.len() > 1 => Err(fail!("build takes no arguments (see cargo os build --help)")),
        Some("build") => build::build().map(|img| {
            eprintln!("[os] done: {}", img.iso.display());
            ExitCode::SUCCESS
        }),
        Some("run") => run(&args[1..]),
        Some("campaign") => campaign(&args[1..]),
        Some("bench") => bench(&args[1..]),
        Some(other) => Err(fail!("unknown verb '{other}' (try: cargo os help)")),
    };
    result.unwrap_or_else(|e| {
        eprintln!("cargo os: error: {e}");
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn run_options_parse_and_bad_ones_say_why() {
        let r = parse_run(&strings(&["--exec", "ps", "--timeout", "9"])).unwrap().unwrap();
        assert_eq!((r.exec.as_deref(), r.timeout.as_secs(), r.machine.gdb), (Some("ps"), 9, false));
        assert!(parse_run(&strings(&["--help"])).unwrap().is_none());
        assert!(parse_run(&strings(&["--icount"])).unwrap().unwrap().machine.icount);
        assert!(parse_run(&strings(&["--exec"])).unwrap_err().0.contains("needs a value"));
        assert!(parse_run(&strings(&["--timeout", "soon"])).unwrap_err().0.contains("whole seconds"));
        assert!(parse_run(&strings(&["--personality", "dos"]))
            .unwrap_err()
            .0
            .contains("unknown personality"));
        assert!(parse_run(&strings(&["--gdb", "--exec", "ps"]))
            .unwrap_err()
            .0
            .contains("do not go together"));
        assert!(parse_run(&strings(&["--frobnicate"])).unwrap_err().0.contains("unknown option"));
    }
}
