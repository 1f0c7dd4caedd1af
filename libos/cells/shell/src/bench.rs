//! `bench [N]`: what the intralingual design costs, in TSC ticks (retired instructions under
//! QEMU `-icount shift=0`), less the empty timing loop. Rows (parsed by `cargo os bench`):
//!
//! ```text
//!  los.fn_call      a plain call into a cell function (timer::deadline)
//!  los.cell_call    a cell call with client-held state: timer::lap checks, counts and reseals
//!  los.channel_rtt  a rendezvous round trip with the echo task (two task switches)
//!  los.fs_read      a 64-byte read through our fs session (shell → fs → ramdisk and back)
//!  los.restart      fs killed → its next incarnation waiting in recv (core-measured), n ≤ 50
//! ```
//! The timer and serial interrupts are masked while measuring, so runs repeat exactly.

use crate::Wiring;
use algo::stats::summarize;
use alloc::vec;
use cell_console::Console;
use cell_fs::{mode, Fs};
use core::fmt::Write;
use core::hint::black_box;
use fs_core::FsError;
use libos_kernel::chan::Endpoint;

pub type EchoEp = Endpoint<u64, u64>;

/// Spawn the echo task the channel benchmark talks to.
pub fn start_echo() -> Option<EchoEp> {
    let ep = EchoEp::create("echo")?;
    libos_kernel::spawn("echo", 5, true, move || loop {
        let (token, v) = ep.recv();
        let _ = ep.reply(token, v.wrapping_add(1));
    })
    .ok()?;
    Some(ep)
}

fn measure(samples: &mut [u64], mut f: impl FnMut()) -> [u64; 3] {
    for s in samples.iter_mut() {
        let t0 = libos_kernel::rdtsc();
        f();
        *s = libos_kernel::rdtsc() - t0;
    }
    summarize(samples)
}

pub fn run(con: &Console, w: &Wiring, fs: &mut Fs, n: usize) -> Result<(), &'static str> {
    // The measurements run with the timer masked: a hang armed in a task they call (echo, fs)
    // would strike there and could never be detected.
    if let Some(task) = libos_kernel::inject::armed() {
        let _ = writeln!(
            &*con,
            "bench: a fault injected into {} has not struck yet; `restart {}` first",
            task, task
        );
        return Err("a fault is armed (see above)");
    }
    let fsname = "fs";
    let fs_task = libos_kernel::task::find(fsname).ok_or("no fs task")?;
    match fs.mkdir("/bench") {
        Ok(()) | Err(FsError::Exists) => {}
        Err(_) => return Err("cannot make /bench"),
    }
    let fd = fs
        .open("/bench/data", mode::READ | mode::WRITE | mode::CREATE | mode::TRUNCATE)
        .map_err(|_| "cannot open /bench/data")?;
    fs.write(fd, &[0x5a; 64]).map_err(|_| "cannot write /bench/data")?;
    let restarts = n.min(50);
    let mut samples = vec![0u64; n];
    let mut restart_samples = vec![0u64; restarts];
    con.flush();
    let mut failed = None;
    let rows = libos_kernel::sched::without_preemption(|| {
        let base = measure(&mut samples, || {})[0];
        let fn_call = measure(&mut samples, || {
            black_box(cell_timer::deadline(black_box(5), black_box(7)));
        });
        let mut lap = cell_timer::Lap::default();
        let cell_call = measure(&mut samples, || {
            lap = cell_timer::lap(black_box(lap)).unwrap_or_default();
        });
        let rtt = measure(&mut samples, || {
            if w.echo.call(&1).is_err() {
                failed = Some("echo call failed");
            }
        });
        let mut buf = [0u8; 64];
        for s in samples.iter_mut() {
            if fs.seek(fd, 0).is_err() {
                failed = Some("seek failed");
            }
            let t0 = libos_kernel::rdtsc();
            let r = fs.read(fd, &mut buf);
            *s = libos_kernel::rdtsc() - t0;
            if r != Ok(64) {
                failed = Some("fs read failed");
            }
        }
        let fs_read = summarize(&mut samples);
        libos_kernel::task::set_quiet(true);
        for s in restart_samples.iter_mut() {
            if libos_kernel::task::kill(fs_task).is_err() {
                failed = Some("cannot kill fs");
            }
            *s = libos_kernel::task::wait_ready(fs_task).unwrap_or(0);
        }
        libos_kernel::task::set_quiet(false);
        let restart = summarize(&mut restart_samples);
        (
            base,
            [
                ("los.fn_call", fn_call),
                ("los.cell_call", cell_call),
                ("los.channel_rtt", rtt),
                ("los.fs_read", fs_read),
            ],
            restart,
        )
    });
    let _ = fs.close(fd);
    if let Some(e) = failed {
        return Err(e);
    }
    let (base, rows, restart) = rows;
    let _ = writeln!(
        &*con,
        "bench: libos, {} iterations each; TSC ticks less the {}-tick timing loop (one tick = one instruction under -icount)",
        n, base
    );
    for (name, v) in rows {
        let [min, median, p99] = v.map(|x| x.saturating_sub(base));
        let _ = writeln!(&*con, "bench: {} n={} min={} median={} p99={}", name, n, min, median, p99);
    }
    let [min, median, p99] = restart;
    let _ = writeln!(&*con, "bench: los.restart n={} min={} median={} p99={}", restarts, min, median, p99);
    Ok(())
}
