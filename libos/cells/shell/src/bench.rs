//! `bench [N]`: what the intralingual design costs, in TSC ticks (retired instructions under
//! QEMU `-icount shift=0`), less the empty timing loop. Rows (parsed by `cargo os bench`):
//!
//! ```text
//!  los.fn_call      a plain call into a cell function (timer::deadline)
//!  los.cell_call    a cell call with client-held state: timer::lap checks, counts and reseals
//!  los.channel_rtt  a rendezvous round trip with the echo task (two task switches)
//!  los.fs_read      a 64-byte read through our fs session (shell → fs → ramdisk and back)
//!  los.restart      fs killed → its next incarnation waiting in recv (kernel-measured), n ≤ 50
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
use libos_kernel::{Endpoint, Privilege};

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

/// Why `bench` stopped: the row it was measuring (none while setting up), and what went wrong.
pub struct Failed(Option<&'static str>, &'static str);

impl core::fmt::Display for Failed {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(row) => write!(f, "{}: {}", row, self.1),
            None => f.write_str(self.1),
        }
    }
}

pub fn run(con: &Console, w: &Wiring, privilege: &Privilege, fs: &mut Fs, n: usize) -> Result<(), Failed> {
    // The measurements run with the timer masked: a hang armed in a task they call (echo, fs)
    // would strike there and could never be detected.
    if let Some(task) = libos_kernel::armed() {
        let _ = writeln!(
            &*con,
            "bench: a fault injected into {} has not struck yet; `restart {}` first",
            task, task
        );
        return Err(Failed(None, "a fault is armed (see above)"));
    }
    let setup = |why| Failed(None, why);
    let fs_task = libos_kernel::find_task("fs").ok_or(setup("no fs task"))?;
    match fs.mkdir("/bench") {
        Ok(()) | Err(FsError::Exists) => {}
        Err(_) => return Err(setup("cannot make /bench")),
    }
    let fd = fs
        .open("/bench/data", mode::READ | mode::WRITE | mode::CREATE | mode::TRUNCATE)
        .map_err(|_| setup("cannot open /bench/data"))?;
    fs.write(fd, &[0x5a; 64]).map_err(|_| setup("cannot write /bench/data"))?;
    let restarts = n.min(50);
    let mut samples = vec![0u64; n];
    let mut restart_samples = vec![0u64; restarts];
    con.flush();
    let rows = libos_kernel::without_preemption(privilege, || -> Result<_, Failed> {
        let base = measure(&mut samples, || {})[0];
        let fn_call = measure(&mut samples, || {
            black_box(cell_timer::deadline(black_box(5), black_box(7)));
        });
        let mut lap = cell_timer::Lap::default();
        let cell_call = measure(&mut samples, || {
            lap = cell_timer::lap(black_box(lap)).unwrap_or_default();
        });
        let mut failed = None;
        let rtt = measure(&mut samples, || {
            if let Err(e) = w.echo.call(&1) {
                failed = Some(Failed(Some("los.channel_rtt"), e.describe()));
            }
        });
        // A held echo fails every call at once (`ServerFailed`): say so rather than go on.
        if let Some(f) = failed {
            return Err(f);
        }
        let mut buf = [0u8; 64];
        for s in samples.iter_mut() {
            if fs.seek(fd, 0).is_err() {
                failed = Some(Failed(Some("los.fs_read"), "seek failed"));
            }
            let t0 = libos_kernel::rdtsc();
            let r = fs.read(fd, &mut buf);
            *s = libos_kernel::rdtsc() - t0;
            if r != Ok(64) {
                failed = Some(Failed(Some("los.fs_read"), "fs read failed"));
            }
        }
        let fs_read = summarize(&mut samples);
        if let Some(f) = failed {
            return Err(f);
        }
        // Kills count towards a crash loop unless the incarnation answered a request: one fs
        // request between kills (not timed) keeps every restart immediate, so the row measures
        // restarts, not back-off (which, with the timer masked, would never end).
        libos_kernel::set_quiet(privilege, true);
        let mut killed = Ok(());
        for s in restart_samples.iter_mut() {
            if libos_kernel::kill(privilege, fs_task).is_err() {
                killed = Err(Failed(Some("los.restart"), "cannot kill fs"));
                break;
            }
            *s = libos_kernel::wait_ready(fs_task).unwrap_or(0);
            if fs.stat("/").is_err() {
                killed = Err(Failed(Some("los.restart"), "fs did not answer after its restart"));
                break;
            }
        }
        libos_kernel::set_quiet(privilege, false);
        killed?;
        let restart = summarize(&mut restart_samples);
        Ok((
            base,
            [
                ("los.fn_call", fn_call),
                ("los.cell_call", cell_call),
                ("los.channel_rtt", rtt),
                ("los.fs_read", fs_read),
            ],
            restart,
        ))
    });
    let _ = fs.close(fd);
    let (base, rows, restart) = rows?;
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
