//! Linux measured the way Axolotl is: Debian's own kernel booted under the same QEMU flags
//! (`-icount shift=0,align=off,sleep=off`, the same machine, the same NBD disk as `bench disk`),
//! with a small static benchmark program of ours as `/init`, printing rows in the format of
//! the shells' `bench` (`bench: linux.ROW n=.. min=.. median=.. p99=..`).
//!
//! ```text
//!  apt-cache depends linux-image-amd64 ─► linux-image-6.1.0-N-amd64
//!  apt-get download, dpkg-deb -x (first use) ─► target/os/linux/PKG/{vmlinuz, modules/*.ko, modules.list}
//!  gcc -static -O2 images/linux/bench.c (when changed) ─► target/os/linux/bench/init
//!  initramfs (newc cpio, written here) ─► target/os/linux/initramfs.cpio
//!  qemu -kernel vmlinuz -initrd initramfs.cpio -append "console=ttyS0 ... -- RUNS"
//!       + the NBD disk (crate::nbd, bench::DEVICE_LATENCY) ─► rows on the serial console
//! ```
//!
//! What lies between the timestamps of each row (every operation is a raw `syscall`
//! instruction; each row is `runs` single operations, each timed alone after one untimed run,
//! less the fastest of `runs` empty timing spans, as `servers/shell/src/bench.rs` does):
//!
//! - `linux.null_syscall`: `getppid`: entry, the call, `sysretq`.
//! - `linux.pipe_rtt`: a 1-byte `write` into a pipe to a child process and a 1-byte `read` of
//!   its answer on another pipe: both processes' system calls, the two wake-ups and the two
//!   context switches (one CPU: the machine has one, as for Axolotl).
//! - `linux.futex_rtt`: the same between two threads of one process through a futex word
//!   (`FUTEX_WAKE`, `FUTEX_WAIT`, private futexes).
//! - `linux.pread_64`: `pread` of 64 bytes at offset 0 of a 4 KiB file on a tmpfs.
//! - `linux.write_64`: `write` of 64 bytes at offset 0 of that file, then `lseek` back to 0.
//! - `linux.seek`: `lseek(fd, 0, SEEK_SET)`. `linux.open_close`: `open` (read-only) and
//!   `close` of that file. `linux.stat`: `stat` of its path.
//! - `linux.pipe_payload_B` (B = 64, 512, 4096): `linux.pipe_rtt` with B bytes each way (one
//!   `write`, and `read`s until all B are back), beside the shells' `*.call_payload_B` and
//!   `los.channel_payload_B` (`bench grow`).
//! - `linux.pread_B` (B = 512, 4096, 65536): one `pread` of B bytes at offset 0 of a 64 KiB file
//!   on the tmpfs, beside the shells' `*.read_B`.
//! - `linux.blk_read`, `linux.blk_write`: `pread`/`pwrite` of 4 KiB with `O_DIRECT` on
//!   `/dev/vda` (the virtio-blk disk, with no I/O scheduler; its last 4 KiB, written back
//!   unchanged), through the block layer and the virtio driver to the device and back. These
//!   are not rdtsc spans: see [CPU time](self#cpu-time).
//!
//! # CPU time
//!
//! The disk answers each request after 2 ms of real time ([`crate::bench::DEVICE_LATENCY`]),
//! and under `sleep=off` a halted CPU's clock jumps to the next timer deadline: an rdtsc span
//! would count the wait. So the block rows count the CPU time the scheduler charges, in the
//! spirit of the microkernel's `billed_tsc` (a caller is billed for the servers working for it):
//!
//! - to the benchmark thread, `clock_gettime(CLOCK_THREAD_CPUTIME_ID)` (its `sum_exec_runtime`
//!   brought up to date) read just before and just after the operation, less the same pair
//!   around nothing;
//! - plus, read outside that span, the `sum_exec_runtime` (`/proc/PID/schedstat`) of the block
//!   layer's worker threads on the CPU (kblockd's, `kworker/0:NH`). A write to a block device
//!   is plugged, and the plug is flushed when the thread goes to sleep, by handing the request
//!   to such a worker, which issues it to the driver; a read is issued from the thread's own
//!   system call (no I/O scheduler: with the default mq-deadline every request went through
//!   the worker).
//!
//! Linux's scheduler clock is the TSC in ns; under `-icount shift=0` the TSC runs at 1 GHz, the
//! kernel finds 999.999 or 1000.000 MHz, and one ns is one instruction to 1 ppm (the program
//! checks it on a busy loop and prints both counts; [`measure`] refuses figures where they
//! differ). The scheduler reads that clock once per switch, at the start of `__schedule`:
//! a task is charged from the switch to it (from that reading in the task switching to it) to
//! the same reading in its own next `__schedule`.
//!
//! So a block row includes the system call, the block layer, the virtio driver's submission and
//! notify (in the thread or the worker), the switches away and back (from the scheduler's
//! clock readings), the wake-up's tail in the thread (the end of the request, the copy's
//! bookkeeping, `sysretq`), and any interrupt or softirq that arrives while the thread or the
//! worker runs (this kernel has no `IRQ_TIME_ACCOUNTING`: interrupt time is charged to the
//! task it interrupts). It leaves out the idle task, and with it the device's completion
//! interrupt and its block softirq (the driver's completion, `bio_endio`, the wake-up), which
//! run while the CPU idles; and every other task. The kernel runs with `idle=poll` (see
//! [`CMDLINE`]).
//!
//! A sample during which another task ran (the context switches since the last sample, `ctxt`
//! in `/proc/stat`, are not the operation's own: a read's two, to idle and back, a write's
//! three, to the worker, to idle, back), or in which the thread did not sleep once (the device
//! answered first: the host was slow), is taken again, and the program says how many were.
//! What such a sample counts depends on what else ran, since the switch from it is charged to
//! the thread.

use crate::bench::{parse_rows, Row};
use crate::qemu::Machine;
use crate::{fail, out_dir, progress, Result};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The benchmark program: `/init` of the initramfs.
const BENCH_C: &str = include_str!("../linux/bench.c");

/// The rows the program prints, in order.
pub const ROWS: [&str; 16] = [
    "linux.null_syscall",
    "linux.pipe_rtt",
    "linux.futex_rtt",
    "linux.pread_64",
    "linux.write_64",
    "linux.seek",
    "linux.open_close",
    "linux.stat",
    "linux.pipe_payload_64",
    "linux.pipe_payload_512",
    "linux.pipe_payload_4096",
    "linux.pread_512",
    "linux.pread_4096",
    "linux.pread_65536",
    "linux.blk_read",
    "linux.blk_write",
];

/// The Debian meta package whose dependency names the current kernel image package.
const META_PACKAGE: &str = "linux-image-amd64";

/// The modules the virtio block disk needs (their dependencies are found from the `.ko`s):
/// the PCI transport and the block driver.
const DISK_MODULES: [&str; 2] = ["virtio_pci", "virtio_blk"];

/// The kernel command line, before `-- RUNS` (the benchmark's argument).
///
/// `nokaslr`, `norandmaps` and `randomize_kstack_offset=off` take the randomness out of
/// addresses (kernel, user mappings, the kernel stack's offset at each system call), so two
/// boots run the same instructions. `mitigations=off` as in ANCHORS.md's Linux figures.
/// `panic=-1` with QEMU's `-no-reboot`: a panic ends QEMU at once. `idle=poll`: the idle
/// task spins instead of halting, so QEMU's clock never jumps while the block rows wait (with
/// `hlt` and `sleep=off` each wait jumped through timer after timer for as long as the host
/// took, and which timers and kernel threads had run changed what the thread was charged: the
/// rows' medians moved by ~2,000 instructions from sample to sample). The other rows never
/// idle.
pub const CMDLINE: &str =
    "console=ttyS0 quiet mitigations=off nokaslr norandmaps randomize_kstack_offset=off panic=-1 idle=poll";

/// The kernel, the modules the disk needs and their load order, as cached.
#[derive(Debug)]
pub struct Kernel {
    pub package: String,
    pub vmlinuz: PathBuf,
    /// `.ko` files (uncompressed), in the order to load them.
    pub modules: Vec<PathBuf>,
}

/// Boot Linux under -icount with the bench's disk and run the rows, `runs` samples each.
pub fn measure(runs: usize) -> Result<Vec<Row>> {
    if !(1..=100_000).contains(&runs) {
        return Err(fail!("linux bench: runs must be 1..=100000, not {runs}"));
    }
    crate::tools::ensure()?;
    let kernel = kernel()?;
    let init = bench_program()?;
    let initrd = out_dir().join("linux").join("initramfs.cpio");
    write_initramfs(&initrd, &init, &kernel.modules)?;

    let server = crate::nbd::Server::start_with(
        vec![0; crate::disk::SIZE as usize],
        crate::bench::DEVICE_LATENCY,
        false,
    )?;
    let machine = Machine { icount: true, nbd: Some(server.port), ..Machine::default() };
    let append = format!("{CMDLINE} -- {runs}");
    let cmd = command(&kernel.vmlinuz, &initrd, &append, machine);
    // Linux reaches /init after ~6 G instructions (XZ decompression most of them): about a
    // minute at TCG's speed under -icount; each row then takes a few seconds per 1,000 runs.
    let timeout = Duration::from_secs(300 + runs as u64 / 5);
    let console = boot(cmd, timeout, &kernel.package)?;
    check(&console, runs)
}

/// The rows in `console`, once they are all there, every one with `runs` samples, and the
/// clock check says one ns of CPU time is one instruction.
fn check(console: &str, runs: usize) -> Result<Vec<Row>> {
    let tail = || {
        console.lines().rev().take(25).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
    };
    if !console.contains("linux-bench: done") {
        return Err(fail!("the Linux benchmark did not complete\n--- console tail:\n{}", tail()));
    }
    if let Some((tsc, ns)) = clock_check(console) {
        // Different by more than rounding: the block rows' ns are not instructions.
        // The same loop: a few instructions apart (the rdtsc pair), and 1 ppm (999.999 MHz).
        if tsc.abs_diff(ns) > tsc / 100_000 + 16 {
            return Err(fail!(
                "the Linux benchmark's clock check: {tsc} TSC ticks but {ns} ns of CPU time on the same loop; \
                 the block rows (CPU time in ns) would not count instructions"
            ));
        }
    } else {
        return Err(fail!("the Linux benchmark printed no clock check\n--- console tail:\n{}", tail()));
    }
    let rows: Vec<Row> = parse_rows(console).into_iter().filter(|r| r.name.starts_with("linux.")).collect();
    let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    if names != ROWS || rows.iter().any(|r| r.runs != runs as u64) {
        return Err(fail!(
            "the Linux benchmark printed rows {names:?}, expected {ROWS:?}\n--- console tail:\n{}",
            tail()
        ));
    }
    Ok(rows)
}

/// `linux-bench: clock check: T TSC ticks, N ns of thread CPU time`.
fn clock_check(console: &str) -> Option<(u64, u64)> {
    let line = console.lines().find_map(|l| l.trim().strip_prefix("linux-bench: clock check: "))?;
    let mut words = line.split_whitespace();
    let tsc = words.next()?.parse().ok()?;
    let ns = words.nth(2)?.trim_end_matches(',').parse().ok()?;
    Some((tsc, ns))
}

// ---- QEMU ---------------------------------------------------------------------------------

/// The QEMU command line: the machine of [`crate::qemu::command`] (built by the same
/// functions: `hardware`, `headless`, `attach_disk`), booting `vmlinuz` with `initrd` directly
/// instead of the ISO through GRUB. A test checks the options are the same.
///
/// Two options more, which fix what Linux draws its randomness from ([`FIXED_RANDOMNESS`]):
/// `-seed` (the values of `rdrand`, which `-cpu max` has) and the RTC's starting date. Linux
/// seeds its random numbers with both at boot, and they choose, among other things, where
/// slab objects lie and which tag the block layer hands out first: with them drawn afresh
/// each boot, the block rows' medians moved by up to 8 instructions from boot to boot.
pub fn command(vmlinuz: &Path, initrd: &Path, append: &str, machine: Machine) -> Command {
    let mut cmd = Command::new("qemu-system-x86_64");
    crate::qemu::hardware(&mut cmd, &machine, Some(FIXED_RANDOMNESS.1));
    crate::qemu::headless(&mut cmd);
    cmd.args(["-seed", FIXED_RANDOMNESS.0]);
    crate::qemu::attach_disk(&mut cmd, &machine);
    cmd.arg("-kernel").arg(vmlinuz).arg("-initrd").arg(initrd).arg("-append").arg(append);
    crate::qemu::end_with_parent(&mut cmd);
    cmd
}

/// QEMU's `-seed` and the RTC's starting date (see [`command`]).
pub const FIXED_RANDOMNESS: (&str, &str) = ("1", "2025-01-01T00:00:00");

/// Run `cmd` to its end (the guest powers off), showing progress; the console it printed.
fn boot(mut cmd: Command, timeout: Duration, package: &str) -> Result<String> {
    let spinner = progress::spinner("bench linux");
    spinner.set_message(format!("booting {package} under -icount (~6 G instructions to /init)"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail!("cannot start qemu-system-x86_64: {e}"))?;
    let console = Arc::new(Mutex::new(String::new()));
    let out = child.stdout.take().expect("stdout was piped");
    let reader = {
        let console = console.clone();
        let spinner = spinner.clone();
        std::thread::spawn(move || {
            let mut rows = 0;
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let line = line.replace('\r', "");
                if line.starts_with("linux-bench: ready") {
                    spinner.set_message("measuring");
                } else if let Some(row) = parse_rows(&line).pop() {
                    rows += 1;
                    spinner.set_message(format!("row {rows}/{} read: {}", ROWS.len(), row.name));
                }
                if line.starts_with("bench: ")
                    || line.starts_with("error")
                    || line.starts_with("linux-bench: linux.")
                {
                    progress::out(&spinner, &line);
                }
                let mut c = console.lock().expect("console lock");
                c.push_str(&line);
                c.push('\n');
            }
        })
    };
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() < timeout => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let _ = reader.join();
    spinner.finish_and_clear();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
    }
    let console = console.lock().expect("console lock").clone();
    match status {
        Some(s) if s.success() => Ok(console),
        Some(s) => Err(fail!(
            "QEMU running Linux ended with {s}: {}\n--- console tail:\n{}",
            stderr.trim(),
            tail(&console, 25)
        )),
        None => Err(fail!(
            "Linux did not power off within {} s\n--- console tail:\n{}",
            timeout.as_secs(),
            tail(&console, 25)
        )),
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

// ---- the kernel ---------------------------------------------------------------------------

/// The kernel image package `linux-image-amd64` depends on (`linux-image-6.1.0-N-amd64`).
fn resolve_package() -> Result<String> {
    let ask = || -> Result<Option<String>> {
        let out = Command::new("apt-cache")
            .args(["depends", META_PACKAGE])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| fail!("cannot run apt-cache (is this Debian?): {e}"))?;
        Ok(depends_on_image(&String::from_utf8_lossy(&out.stdout)))
    };
    if let Some(p) = ask()? {
        return Ok(p);
    }
    // A fresh machine may not have the package lists yet.
    if crate::tools::may_install() {
        eprintln!("[os] apt-cache knows no {META_PACKAGE}: apt-get update");
        crate::tools::apt_get(&["update", "-q"])?;
        if let Some(p) = ask()? {
            return Ok(p);
        }
    }
    Err(fail!(
        "`apt-cache depends {META_PACKAGE}` names no kernel image package; \
         run `sudo apt-get update` (Debian's package lists are needed to fetch the kernel)"
    ))
}

/// `Depends: linux-image-6.1.0-N-amd64` in `apt-cache depends` output.
fn depends_on_image(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let dep = l.trim().strip_prefix("Depends:")?.trim();
        let dep = dep.trim_start_matches('<').trim_end_matches('>');
        (dep.starts_with("linux-image-") && !dep.contains(' ')).then(|| dep.to_string())
    })
}

/// The kernel: from the cache, or downloaded and unpacked there first.
pub fn kernel() -> Result<Kernel> {
    let dir = out_dir().join("linux");
    let package = match resolve_package() {
        Ok(p) => p,
        Err(e) => {
            // Offline with a kernel cached: use it.
            match cached_any(&dir) {
                Some(k) => {
                    eprintln!("[os] {e}\n[os] using the cached {}", k.package);
                    return Ok(k);
                }
                None => return Err(e),
            }
        }
    };
    let home = dir.join(&package);
    if let Some(k) = cached(&home, &package) {
        return Ok(k);
    }
    fetch(&dir, &package)?;
    cached(&home, &package).ok_or_else(|| fail!("{} is incomplete after unpacking", home.display()))
}

/// Any kernel in the cache (the newest by name).
fn cached_any(dir: &Path) -> Option<Kernel> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("linux-image-"))
        .collect();
    names.sort();
    names.into_iter().rev().find_map(|n| cached(&dir.join(&n), &n))
}

/// The kernel cached in `home`: `vmlinuz`, `modules.list` (module file names, in load order)
/// and `modules/`.
fn cached(home: &Path, package: &str) -> Option<Kernel> {
    let vmlinuz = home.join("vmlinuz");
    let list = std::fs::read_to_string(home.join("modules.list")).ok()?;
    let modules: Vec<PathBuf> =
        list.lines().filter(|l| !l.is_empty()).map(|l| home.join("modules").join(l)).collect();
    (vmlinuz.is_file() && modules.iter().all(|m| m.is_file())).then(|| Kernel {
        package: package.to_string(),
        vmlinuz,
        modules,
    })
}

/// Download `package` with apt-get, unpack it, keep the kernel and the disk's modules under
/// `dir/package`.
fn fetch(dir: &Path, package: &str) -> Result<()> {
    for tool in ["apt-get", "dpkg-deb"] {
        if crate::tools::which(tool).is_none() {
            return Err(fail!("fetching Linux needs {tool} (a Debian machine), and it is not on PATH"));
        }
    }
    let work = dir.join(format!("unpack-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| fail!("cannot create {}: {e}", work.display()))?;
    let result = (|| {
        let spinner = progress::spinner("linux");
        spinner.set_message(format!("apt-get download {package} (~70 MB)"));
        let out = Command::new("apt-get")
            .args(["download", "-q", package])
            .current_dir(&work)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| fail!("cannot run apt-get: {e}"))?;
        if !out.status.success() {
            spinner.finish_and_clear();
            return Err(fail!(
                "`apt-get download {package}` failed ({}):\n{}\nIs the network up, and `apt-get update` done?",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let deb = std::fs::read_dir(&work)
            .map_err(|e| fail!("{}: {e}", work.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "deb"))
            .ok_or_else(|| fail!("`apt-get download {package}` left no .deb in {}", work.display()))?;
        spinner.set_message(format!("dpkg-deb -x {}", deb.file_name().unwrap_or_default().to_string_lossy()));
        let tree = work.join("tree");
        run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&tree))?;
        spinner.set_message("picking the kernel and the disk's modules");
        let r = keep(&tree, &work.join("keep"));
        spinner.finish_and_clear();
        r
    })();
    let home = dir.join(package);
    let result = result.and_then(|()| {
        let _ = std::fs::remove_dir_all(&home);
        std::fs::rename(work.join("keep"), &home)
            .map_err(|e| fail!("cannot move into {}: {e}", home.display()))
    });
    let _ = std::fs::remove_dir_all(&work);
    result
}

/// From the unpacked package `tree`, into `keep`: `vmlinuz`, `config`, `modules/NAME.ko` (the
/// disk's modules and what they depend on, uncompressed) and `modules.list`.
fn keep(tree: &Path, keep: &Path) -> Result<()> {
    let boot = tree.join("boot");
    let find = |prefix: &str| -> Result<PathBuf> {
        std::fs::read_dir(&boot)
            .map_err(|e| fail!("{}: {e}", boot.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(prefix)))
            .ok_or_else(|| fail!("the package has no /boot/{prefix}*"))
    };
    let vmlinuz = find("vmlinuz-")?;
    let version = vmlinuz.file_name().unwrap_or_default().to_string_lossy()["vmlinuz-".len()..].to_string();
    let modroot = tree.join("lib/modules").join(&version);
    let modroot = if modroot.is_dir() { modroot } else { tree.join("usr/lib/modules").join(&version) };
    let builtin = std::fs::read_to_string(modroot.join("modules.builtin")).unwrap_or_default();
    let builtin: Vec<String> = builtin.lines().filter_map(|l| module_name(Path::new(l))).collect();
    let mut files = BTreeMap::new();
    walk(&modroot.join("kernel"), &mut |p| {
        if let Some(name) = module_name(p) {
            files.insert(name, p.to_path_buf());
        }
    })?;
    let order = load_order(&DISK_MODULES, &builtin, |name| {
        let path =
            files.get(name).ok_or_else(|| fail!("the package has no module {name} (nor is it built in)"))?;
        Ok(modinfo_depends(&uncompressed(path)?))
    })?;
    let mods = keep.join("modules");
    std::fs::create_dir_all(&mods).map_err(|e| fail!("cannot create {}: {e}", mods.display()))?;
    let mut list = String::new();
    for name in &order {
        let file = format!("{name}.ko");
        std::fs::write(mods.join(&file), uncompressed(&files[name])?)
            .map_err(|e| fail!("cannot write {}: {e}", mods.join(&file).display()))?;
        list.push_str(&file);
        list.push('\n');
    }
    std::fs::copy(&vmlinuz, keep.join("vmlinuz"))
        .map_err(|e| fail!("cannot copy {}: {e}", vmlinuz.display()))?;
    if let Ok(config) = find("config-") {
        let _ = std::fs::copy(config, keep.join("config"));
    }
    std::fs::write(keep.join("modules.list"), list).map_err(|e| fail!("cannot write modules.list: {e}"))
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|e| fail!("{}: {e}", dir.display()))? {
        let path = entry.map_err(|e| fail!("{}: {e}", dir.display()))?.path();
        if path.is_dir() {
            walk(&path, f)?;
        } else {
            f(&path);
        }
    }
    Ok(())
}

/// A module's name from its file name (`virtio-rng.ko.xz` → `virtio_rng`), as the kernel and
/// `depends=` spell it; `None` for a file that is no module.
fn module_name(path: &Path) -> Option<String> {
    let file = path.file_name()?.to_str()?;
    let stem = ["", ".xz", ".zst", ".gz"].iter().find_map(|z| file.strip_suffix(&format!(".ko{z}")))?;
    Some(stem.replace('-', "_"))
}

/// The modules to load, dependencies first: `roots` and what they need (`depends(name)`), less
/// those built into the kernel.
fn load_order(
    roots: &[&str],
    builtin: &[String],
    mut depends: impl FnMut(&str) -> Result<Vec<String>>,
) -> Result<Vec<String>> {
    fn visit(
        name: &str,
        builtin: &[String],
        depends: &mut dyn FnMut(&str) -> Result<Vec<String>>,
        order: &mut Vec<String>,
        path: &mut Vec<String>,
    ) -> Result<()> {
        if builtin.iter().any(|b| b == name) || order.iter().any(|o| o == name) {
            return Ok(());
        }
        if path.iter().any(|p| p == name) {
            return Err(fail!("modules depend on each other in a circle: {} -> {name}", path.join(" -> ")));
        }
        path.push(name.to_string());
        for dep in depends(name)? {
            visit(&dep, builtin, depends, order, path)?;
        }
        path.pop();
        order.push(name.to_string());
        Ok(())
    }
    let mut order = Vec::new();
    for root in roots {
        visit(root, builtin, &mut depends, &mut order, &mut Vec::new())?;
    }
    Ok(order)
}

/// A module file's bytes, decompressed if its name says it is compressed (with `xz`, `zstd`
/// or `gzip`: the kernel would need its own decompressor configured to load it as it is).
fn uncompressed(path: &Path) -> Result<Vec<u8>> {
    let name = path.to_string_lossy();
    let tool = match () {
        _ if name.ends_with(".ko.xz") => ("xz", "xz-utils"),
        _ if name.ends_with(".ko.zst") => ("zstd", "zstd"),
        _ if name.ends_with(".ko.gz") => ("gzip", "gzip"),
        _ => return std::fs::read(path).map_err(|e| fail!("cannot read {}: {e}", path.display())),
    };
    let out = Command::new(tool.0).arg("-dc").arg(path).stdin(Stdio::null()).output().map_err(|e| {
        fail!("cannot run {} to decompress {} (install {}): {e}", tool.0, path.display(), tool.1)
    })?;
    if !out.status.success() {
        return Err(fail!(
            "`{} -dc {}` failed: {}",
            tool.0,
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(out.stdout)
}

/// The `depends=` of a module's `.modinfo` section (ELF64, little-endian).
fn modinfo_depends(elf: &[u8]) -> Vec<String> {
    let Some(info) = elf_section(elf, ".modinfo") else { return Vec::new() };
    info.split(|&b| b == 0)
        .find_map(|entry| entry.strip_prefix(b"depends="))
        .map(|deps| {
            String::from_utf8_lossy(deps).split(',').filter(|d| !d.is_empty()).map(str::to_string).collect()
        })
        .unwrap_or_default()
}

/// The bytes of the section `name` of an ELF64 little-endian file.
fn elf_section<'a>(elf: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let u16_at = |o: usize| Some(u16::from_le_bytes(elf.get(o..o + 2)?.try_into().ok()?) as usize);
    let u32_at = |o: usize| Some(u32::from_le_bytes(elf.get(o..o + 4)?.try_into().ok()?) as usize);
    let u64_at = |o: usize| Some(u64::from_le_bytes(elf.get(o..o + 8)?.try_into().ok()?) as usize);
    if elf.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let (shoff, shentsize, shnum, shstrndx) = (u64_at(0x28)?, u16_at(0x3a)?, u16_at(0x3c)?, u16_at(0x3e)?);
    let header = |i: usize| shoff.checked_add(i.checked_mul(shentsize)?);
    let bytes = |h: usize| {
        let (off, size) = (u64_at(h + 24)?, u64_at(h + 32)?);
        elf.get(off..off.checked_add(size)?)
    };
    let names = bytes(header(shstrndx)?)?;
    (0..shnum).find_map(|i| {
        let h = header(i)?;
        let at = u32_at(h)?;
        let end = at + names.get(at..)?.iter().position(|&b| b == 0)?;
        (&names[at..end] == name.as_bytes()).then(|| bytes(h)).flatten()
    })
}

fn run(cmd: &mut Command) -> Result<()> {
    let out =
        cmd.stdin(Stdio::null()).output().map_err(|e| fail!("cannot run {:?}: {e}", cmd.get_program()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(fail!("{cmd:?} failed ({}):\n{}", out.status, String::from_utf8_lossy(&out.stderr).trim()))
    }
}

// ---- the benchmark program ----------------------------------------------------------------

/// `images/linux/bench.c` compiled (static) into the cache, again whenever the source changed.
pub fn bench_program() -> Result<PathBuf> {
    let dir = out_dir().join("linux").join("bench");
    let (src, bin) = (dir.join("bench.c"), dir.join("init"));
    if bin.is_file() && std::fs::read_to_string(&src).ok().as_deref() == Some(BENCH_C) {
        return Ok(bin);
    }
    std::fs::create_dir_all(&dir).map_err(|e| fail!("cannot create {}: {e}", dir.display()))?;
    std::fs::write(&src, BENCH_C).map_err(|e| fail!("cannot write {}: {e}", src.display()))?;
    let Some(gcc) = crate::tools::which("gcc") else {
        return Err(fail!("the Linux benchmark program is C: install gcc and the static C library:\n    sudo apt-get install -y gcc libc6-dev"));
    };
    let out = Command::new(gcc)
        .args(["-static", "-O2", "-Wall", "-o"])
        .arg(&bin)
        .arg(&src)
        .arg("-lpthread")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| fail!("cannot run gcc: {e}"))?;
    if !out.status.success() {
        let _ = std::fs::remove_file(&bin);
        let err = String::from_utf8_lossy(&out.stderr);
        let hint = if err.contains("cannot find -l") || err.contains("No such file") {
            "\nA static C library is needed: sudo apt-get install -y libc6-dev"
        } else {
            ""
        };
        return Err(fail!("gcc -static {} failed:\n{}{hint}", src.display(), err.trim()));
    }
    Ok(bin)
}

// ---- the initramfs ------------------------------------------------------------------------

/// The initramfs: `/init` (the benchmark), the directories it mounts on, `/dev/console`, the
/// modules under `/modules/` and their load order in `/modules.list`.
pub fn write_initramfs(path: &Path, init: &Path, modules: &[PathBuf]) -> Result<()> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| fail!("cannot read {}: {e}", p.display()));
    let mut cpio = Cpio::default();
    for dir in ["dev", "proc", "sys", "tmp", "modules"] {
        cpio.dir(dir);
    }
    cpio.char_device("dev/console", 5, 1);
    cpio.file("init", 0o755, &read(init)?);
    let mut list = String::new();
    for m in modules {
        let name = m.file_name().unwrap_or_default().to_string_lossy();
        cpio.file(&format!("modules/{name}"), 0o644, &read(m)?);
        list.push_str(&format!("/modules/{name}\n"));
    }
    cpio.file("modules.list", 0o644, list.as_bytes());
    let bytes = cpio.finish();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| fail!("cannot create {}: {e}", dir.display()))?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(&bytes))
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| fail!("cannot write {}: {e}", path.display()))
}

/// An archive in the "new ASCII" (newc) cpio format, the one the kernel unpacks as an
/// initramfs: per entry a 110-byte header of `070701` and 13 eight-digit hex fields, the name
/// (NUL-terminated) padded to 4 bytes, the data padded to 4 bytes; `TRAILER!!!` last.
#[derive(Default)]
pub struct Cpio {
    out: Vec<u8>,
    ino: u32,
}

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFCHR: u32 = 0o020000;

impl Cpio {
    pub fn dir(&mut self, name: &str) {
        self.entry(name, S_IFDIR | 0o755, 2, (0, 0), &[]);
    }

    pub fn file(&mut self, name: &str, perm: u32, data: &[u8]) {
        self.entry(name, S_IFREG | (perm & 0o7777), 1, (0, 0), data);
    }

    pub fn char_device(&mut self, name: &str, major: u32, minor: u32) {
        self.entry(name, S_IFCHR | 0o600, 1, (major, minor), &[]);
    }

    /// The archive, with its trailer.
    pub fn finish(mut self) -> Vec<u8> {
        self.ino = 0;
        self.entry("TRAILER!!!", 0, 1, (0, 0), &[]);
        self.out
    }

    fn entry(&mut self, name: &str, mode: u32, nlink: u32, rdev: (u32, u32), data: &[u8]) {
        if name != "TRAILER!!!" {
            self.ino += 1;
        }
        let fields = [
            self.ino,
            mode,
            0, // uid
            0, // gid
            nlink,
            0, // mtime: the same archive every time
            data.len() as u32,
            0, // devmajor
            0, // devminor
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0, // check (only for the crc format)
        ];
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An entry read back: name, mode, rdev, data.
    type Entry = (String, u32, (u32, u32), Vec<u8>);

    /// A newc reader, independent of the writer: every entry up to the trailer.
    fn parse(mut a: &[u8]) -> Vec<Entry> {
        let mut entries = Vec::new();
        let total = a.len();
        loop {
            assert!((total - a.len()).is_multiple_of(4), "each header starts 4-aligned");
            assert_eq!(&a[..6], b"070701");
            let field = |i: usize| {
                u32::from_str_radix(std::str::from_utf8(&a[6 + 8 * i..14 + 8 * i]).unwrap(), 16).unwrap()
            };
            let (mode, size, rdev, namesize) =
                (field(1), field(6) as usize, (field(9), field(10)), field(11) as usize);
            let name = std::str::from_utf8(&a[110..110 + namesize - 1]).unwrap().to_string();
            assert_eq!(a[110 + namesize - 1], 0, "the name ends with NUL");
            let data_at = (110 + namesize).next_multiple_of(4);
            let data = a[data_at..data_at + size].to_vec();
            a = &a[(data_at + size).next_multiple_of(4)..];
            if name == "TRAILER!!!" {
                assert!(a.is_empty(), "nothing after the trailer");
                return entries;
            }
            entries.push((name, mode, rdev, data));
        }
    }

    #[test]
    fn cpio_reads_back() {
        let mut c = Cpio::default();
        c.dir("dev");
        c.char_device("dev/console", 5, 1);
        c.file("init", 0o755, b"#!hello");
        c.file("a/bc", 0o644, &[]);
        c.file("x", 0o600, &[7; 5]);
        let entries = parse(&c.finish());
        let want: Vec<Entry> = vec![
            ("dev".into(), 0o040755, (0, 0), vec![]),
            ("dev/console".into(), 0o020600, (5, 1), vec![]),
            ("init".into(), 0o100755, (0, 0), b"#!hello".to_vec()),
            ("a/bc".into(), 0o100644, (0, 0), vec![]),
            ("x".into(), 0o100600, (0, 0), vec![7; 5]),
        ];
        assert_eq!(entries, want);
    }

    #[test]
    fn the_kernel_package_from_apt_cache() {
        let text = "linux-image-amd64\n  Depends: linux-image-6.1.0-57-amd64\n";
        assert_eq!(depends_on_image(text).as_deref(), Some("linux-image-6.1.0-57-amd64"));
        assert_eq!(depends_on_image("linux-image-amd64\n"), None);
    }

    #[test]
    fn module_names_and_load_order() {
        assert_eq!(module_name(Path::new("a/virtio-rng.ko.xz")).as_deref(), Some("virtio_rng"));
        assert_eq!(module_name(Path::new("virtio_blk.ko")).as_deref(), Some("virtio_blk"));
        assert_eq!(module_name(Path::new("modules.order")), None);
        let deps = |n: &str| -> Result<Vec<String>> {
            Ok(match n {
                "virtio_pci" => vec!["virtio_ring".into(), "virtio".into(), "virtio_pci_legacy_dev".into()],
                "virtio_blk" => vec!["virtio_ring".into(), "virtio".into()],
                "virtio_ring" => vec!["virtio".into()],
                _ => vec![],
            })
        };
        let order = load_order(&DISK_MODULES, &["virtio_pci_legacy_dev".to_string()], deps).unwrap();
        assert_eq!(order, ["virtio", "virtio_ring", "virtio_pci", "virtio_blk"]);
        let circle =
            |n: &str| -> Result<Vec<String>> { Ok(vec![if n == "a" { "b" } else { "a" }.to_string()]) };
        assert!(load_order(&["a"], &[], circle).is_err());
    }

    #[test]
    fn modinfo_of_an_elf() {
        // A minimal ELF64: header, two sections (.shstrtab, .modinfo) after it.
        let shstrtab = b"\0.shstrtab\0.modinfo\0".to_vec();
        let modinfo = b"license=GPL\0depends=virtio,virtio_ring\0name=x\0".to_vec();
        let mut elf = vec![0u8; 64];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        let str_at = elf.len();
        elf.extend(&shstrtab);
        let info_at = elf.len();
        elf.extend(&modinfo);
        let shoff = elf.len();
        let section = |name: u32, off: usize, size: usize| {
            let mut h = vec![0u8; 64];
            h[..4].copy_from_slice(&name.to_le_bytes());
            h[24..32].copy_from_slice(&(off as u64).to_le_bytes());
            h[32..40].copy_from_slice(&(size as u64).to_le_bytes());
            h
        };
        elf.extend(section(0, 0, 0));
        elf.extend(section(1, str_at, shstrtab.len()));
        elf.extend(section(11, info_at, modinfo.len()));
        elf[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
        elf[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        elf[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        elf[0x3e..0x40].copy_from_slice(&1u16.to_le_bytes());
        assert_eq!(modinfo_depends(&elf), ["virtio", "virtio_ring"]);
        assert!(modinfo_depends(b"not an elf").is_empty());
    }

    /// Boots Linux twice (the kernel is fetched first if not cached: ~70 MB; then ~20 s a boot):
    /// `cargo test -p axolotl-images --lib linux::tests::two_boots -- --ignored --nocapture`.
    #[test]
    #[ignore = "downloads Debian's kernel once, boots Linux twice (~1 min)"]
    fn two_boots_give_the_same_min_and_median() {
        let key = |rows: &[Row]| rows.iter().map(|r| (r.name.clone(), r.min, r.median)).collect::<Vec<_>>();
        let first = measure(200).unwrap_or_else(|e| panic!("{e}"));
        let second = measure(200).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(key(&first), key(&second));
    }

    #[test]
    fn the_clock_check_line() {
        let console = "x\nlinux-bench: clock check: 12000 TSC ticks, 11999 ns of thread CPU time\n";
        assert_eq!(clock_check(console), Some((12000, 11999)));
    }

    #[test]
    fn the_same_machine_as_axolotl() {
        let machine = Machine { icount: true, nbd: Some(10809), ..Machine::default() };
        let args = |c: Command| c.get_args().map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>();
        let ours = args(command(Path::new("/k"), Path::new("/i"), "console=ttyS0", machine));
        let axolotl =
            args(crate::qemu::command(Path::new("/x.iso"), crate::Personality::Microkernel, false, machine));
        // Every option of Axolotl's command line but those that boot the ISO through GRUB;
        // the RTC's with a fixed start.
        let mut i = 0;
        while i < axolotl.len() {
            let (opt, val) = (&axolotl[i], axolotl.get(i + 1));
            let takes_value = val.is_some_and(|v| !v.starts_with('-'));
            let boots_iso = val.is_some_and(|v| {
                ["cd0", "select"]
                    .iter()
                    .any(|d| v.contains(&format!("drive={d}")) || v.contains(&format!("id={d}")))
            });
            if boots_iso {
            } else if takes_value {
                let v = val.unwrap();
                let v = if opt == "-rtc" { format!("base={},{v}", FIXED_RANDOMNESS.1) } else { v.clone() };
                assert!(
                    ours.windows(2).any(|w| &w[0] == opt && w[1] == v),
                    "{opt} {v} missing from {ours:?}"
                );
            } else {
                assert!(ours.contains(opt), "{opt} missing from {ours:?}");
            }
            i += if takes_value { 2 } else { 1 };
        }
    }
}
