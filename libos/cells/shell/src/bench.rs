//! `bench [N]`: what the intralingual design costs, in TSC ticks (retired instructions under
//! QEMU `-icount shift=0`), less the empty timing loop. Rows (parsed by `cargo os bench`):
//!
//! ```text
//!  los.fn_call      a plain call into a cell function (timer::deadline)
//!  los.cell_call    a cell call with client-held state: timer::lap checks, counts and reseals
//!  los.channel_rtt  a rendezvous round trip with the echo task (two task switches)
//!  los.fs_read      a 64-byte read through our fs session (shell → fs → ramdisk and back)
//!  los.fs_write     a 64-byte write and a seek back (durable when answered)
//!  los.fs_seek      a seek; los.fs_open_close: open and close by path; los.fs_stat: stat
//!  los.restart      fs killed → its next incarnation waiting in recv (kernel-measured), n ≤ 50
//!  los.boot         kernel entry → the shell's first prompt: the kernel's boot, the cells'
//!                   start (n = 1; the firmware's and GRUB's part, which varies, is printed apart)
//! ```
//! The timer and serial interrupts are masked while measuring, so runs repeat exactly.
//!
//! `bench disk [N]` (see [`disk`]):
//!
//! ```text
//!  los.blk_read       4 KiB: 8 block reads of the disk's last 4 KiB    shell → virtio-blk ⇄ device
//!  los.blk_write      4 KiB: the same 8 blocks written back unchanged (answered once the device
//!                     has them; no flush)
//!  los.fs_read_disk   64-byte read of an open file on the disk        shell → fs ⇄ virtio-blk ⇄ device
//!                     (fs empties its block cache first, untimed: its inode and data block
//!                     come from the device)
//!  los.update         fs switched to its staged version 2 → its first answer (a stat):
//!                     instructions, the CPU's halted time taken off, n ≤ 20
//!  los.drv_restart    virtio-blk killed → its next incarnation waiting in recv, the device reset
//!                     and set up again (kernel-measured), n ≤ 50
//! ```
//! `bench grow [N]`, how each cost grows with the work (`cargo os bench` charts them as curves):
//!
//! ```text
//!  los.channel_payload_B  a rendezvous round trip carrying B bytes (0, 64, 512, 4096) each way:
//!                         an echo task of `[u8; B]` messages answers with what it received
//!  los.read_B             B bytes (64, 512, 4096, 65536) read from the start of an open file, in
//!                         reads of at most cell_fs::IO_MAX (256) bytes (65536: n ≤ 100)
//!  los.restart_sessions_K fs killed → its next incarnation waiting in recv, with K fs sessions
//!                         open (1, 8, 64: ours and K - 1 more, each with a file open at its own
//!                         offset, which must read right afterwards), n ≤ 50
//! ```
//!
//! Only the disk's line stays open. While a row waits for the device the CPU halts, and under
//! `-icount` with `sleep=off` QEMU moves the clock to the next timer meanwhile: these rows
//! subtract the time halted (`idle_time`), leaving the instructions retired on the way.

use crate::Wiring;
use algo::stats::summarize;
use alloc::vec;
use cell_console::Console;
use cell_fs::{mode, Fs};
use cell_virtio_blk::{Request, Response};
use core::fmt::Write;
use core::hint::black_box;
use fs_core::FsError;
use libos_kernel::{Endpoint, Privilege};
use shellcmd::grow;

/// A 4 KiB transfer in the block protocol's 512-byte blocks.
const RUN_BLOCKS: usize = 4096 / fs_core::BLOCK_SIZE;
type Run = [fs_core::Block; RUN_BLOCKS];

pub type EchoEp = Endpoint<u64, u64>;

/// The echo tasks of `bench grow`: one per message size.
#[derive(Clone, Copy)]
pub struct Echoes {
    e0: Endpoint<[u8; 0], [u8; 0]>,
    e64: Endpoint<[u8; 64], [u8; 64]>,
    e512: Endpoint<[u8; 512], [u8; 512]>,
    e4096: Endpoint<[u8; 4096], [u8; 4096]>,
}

/// An echo task of `[u8; N]` messages: it answers with what it received.
fn sized_echo<const N: usize>(name: &'static str) -> Option<Endpoint<[u8; N], [u8; N]>> {
    let ep = Endpoint::create(name)?;
    libos_kernel::spawn(name, 5, true, move || {
        let mut inbox = libos_kernel::Inbox::default();
        loop {
            let (token, v) = ep.recv_into(&mut inbox);
            let _ = ep.reply(token, *v);
        }
    })
    .ok()?;
    Some(ep)
}

/// Spawn `bench grow`'s echo tasks.
pub fn start_echoes() -> Option<Echoes> {
    Some(Echoes {
        e0: sized_echo("echo-0")?,
        e64: sized_echo("echo-64")?,
        e512: sized_echo("echo-512")?,
        e4096: sized_echo("echo-4096")?,
    })
}

/// Spawn the echo task the channel benchmark talks to.
pub fn start_echo() -> Option<EchoEp> {
    let ep = EchoEp::create("echo")?;
    libos_kernel::spawn("echo", 5, true, move || {
        let (mut token, mut v) = ep.recv();
        loop {
            (_, token, v) = ep.reply_recv(token, &v.wrapping_add(1));
        }
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

/// Refuse to measure while an injected fault waits in some task (the measurements run with the
/// timer masked: a hang armed in a task they call would strike there and never be detected),
/// and open `/bench/data` holding 64 bytes, for the file-read rows.
fn prepare(con: &Console, fs: &mut Fs) -> Result<u32, Failed> {
    if let Some(task) = libos_kernel::armed() {
        let _ = writeln!(
            &*con,
            "bench: a fault injected into {} has not struck yet; `restart {}` first",
            task, task
        );
        return Err(Failed(None, "a fault is armed (see above)"));
    }
    let setup = |why| Failed(None, why);
    match fs.mkdir("/bench") {
        Ok(()) | Err(FsError::Exists) => {}
        Err(_) => return Err(setup("cannot make /bench")),
    }
    let fd = fs
        .open("/bench/data", mode::READ | mode::WRITE | mode::CREATE | mode::TRUNCATE)
        .map_err(|_| setup("cannot open /bench/data"))?;
    fs.write(fd, &[0x5a; 64]).map_err(|_| setup("cannot write /bench/data"))?;
    Ok(fd)
}

pub fn run(
    con: &Console,
    w: &Wiring,
    privilege: &Privilege,
    fs: &mut Fs,
    n: usize,
    booted: Option<u64>,
) -> Result<(), Failed> {
    let setup = |why| Failed(None, why);
    let fs_task = libos_kernel::find_task("fs").ok_or(setup("no fs task"))?;
    let fd = prepare(con, fs)?;
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
        // One call untimed first: the echo task waits for its first request in `recv` and for
        // every later one in `reply_recv`, whose way back differs; every timed sample then
        // takes the same path (the first one was 21 instructions shorter than the rest).
        let mut failed = w.echo.call(&0).err().map(|e| Failed(Some("los.channel_rtt"), e.describe()));
        let rtt = measure(&mut samples, || {
            if let Err(e) = w.echo.call(&1) {
                failed = Some(Failed(Some("los.channel_rtt"), e.describe()));
            }
        });
        // A held echo fails every call at once (`ServerFailed`): say so rather than go on.
        if let Some(f) = failed {
            return Err(f);
        }
        let fs_read = time_reads(fs, fd, &mut samples, "los.fs_read", false)?;
        let [write, seek, open_close, stat] = file_rows(fs, fd, &mut samples)?;
        let why = ("cannot kill fs", "fs did not answer after its restart");
        let restart = restart_times(privilege, fs_task, &mut restart_samples, "los.restart", why, || {
            fs.stat("/").is_ok()
        })?;
        Ok((
            base,
            [
                ("los.fn_call", fn_call),
                ("los.cell_call", cell_call),
                ("los.channel_rtt", rtt),
                ("los.fs_read", fs_read),
                ("los.fs_write", write),
                ("los.fs_seek", seek),
                ("los.fs_open_close", open_close),
                ("los.fs_stat", stat),
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
    match booted {
        Some(at) => {
            let entered = libos_kernel::entry_tsc();
            let t = at - entered;
            let _ = writeln!(&*con, "bench: los.boot n=1 min={t} median={t} p99={t}");
            let _ = writeln!(&*con, "bench: before the kernel (firmware, GRUB): {entered} TSC ticks");
        }
        None => {
            let _ = writeln!(
                &*con,
                "error: bench: los.boot: this shell is a later incarnation: it did not see the boot"
            );
        }
    }
    Ok(())
}

/// The other file operations of Linux's rows (`linux.write_64`, `seek`, `open_close`, `stat`),
/// as the microkernel's shell measures them: a 64-byte write of `fd` and a seek back (durable
/// when answered), a seek, open and close of `/bench/data` by its path, its stat.
fn file_rows(fs: &mut Fs, fd: u32, samples: &mut [u64]) -> Result<[[u64; 3]; 4], Failed> {
    let mut failed = None;
    let data = [0x5au8; 64];
    let mut check = |row: &'static str, r: Result<(), FsError>| {
        if r.is_err() {
            failed = Some(Failed(Some(row), "the file operation failed"));
        }
    };
    let write = measure(samples, || {
        let r = fs.write(fd, &data).and_then(|()| fs.seek(fd, 0));
        check("los.fs_write", r);
    });
    let seek = measure(samples, || check("los.fs_seek", fs.seek(fd, 0)));
    let open_close = measure(samples, || {
        let r = fs.open("/bench/data", mode::READ).and_then(|f| fs.close(f));
        check("los.fs_open_close", r);
    });
    let stat = measure(samples, || check("los.fs_stat", fs.stat("/bench/data").map(|_| ())));
    match failed {
        Some(f) => Err(f),
        None => Ok([write, seek, open_close, stat]),
    }
}

/// Timed 64-byte reads of `fd` from its start (the seek back is not timed); `on_disk`: fs's
/// block cache emptied before each (untimed), and less the time the CPU was halted waiting for
/// the device.
fn time_reads(
    fs: &mut Fs,
    fd: u32,
    samples: &mut [u64],
    row: &'static str,
    on_disk: bool,
) -> Result<[u64; 3], Failed> {
    let mut buf = [0u8; 64];
    let mut failed = None;
    for s in samples.iter_mut() {
        if fs.seek(fd, 0).is_err() {
            failed = Some(Failed(Some(row), "seek failed"));
        }
        // On the disk, the read is to reach the device: fs forgets its cached blocks first
        // (untimed), as the microkernel's `mk.fs_read_disk` does.
        if on_disk && fs.drop_caches().is_err() {
            failed = Some(Failed(Some(row), "drop_caches failed"));
        }
        let idle0 = if on_disk { libos_kernel::idle_time() } else { 0 };
        let t0 = libos_kernel::rdtsc();
        let r = fs.read(fd, &mut buf);
        let t1 = libos_kernel::rdtsc();
        let halted = if on_disk { libos_kernel::idle_time() - idle0 } else { 0 };
        *s = (t1 - t0).saturating_sub(halted);
        if r != Ok(64) {
            failed = Some(Failed(Some(row), "fs read failed"));
        }
    }
    match failed {
        Some(f) => Err(f),
        None => Ok(summarize(samples)),
    }
}

/// Kill `task` once per sample; each is the kernel's measure of its recovery (fault to the
/// next incarnation waiting in recv). Kills count towards a crash loop unless the incarnation
/// answered a request: one request between kills (`answers`, not timed) keeps every restart
/// immediate, so the row measures restarts, not back-off (which, with the timer masked, would
/// never end).
fn restart_times(
    privilege: &Privilege,
    task: usize,
    samples: &mut [u64],
    row: &'static str,
    (cannot_kill, no_answer): (&'static str, &'static str),
    mut answers: impl FnMut() -> bool,
) -> Result<[u64; 3], Failed> {
    libos_kernel::set_quiet(privilege, true);
    let mut killed = Ok(());
    for s in samples.iter_mut() {
        if libos_kernel::kill(privilege, task).is_err() {
            killed = Err(Failed(Some(row), cannot_kill));
            break;
        }
        *s = libos_kernel::wait_ready(task).unwrap_or(0);
        if !answers() {
            killed = Err(Failed(Some(row), no_answer));
            break;
        }
    }
    libos_kernel::set_quiet(privilege, false);
    killed.map(|()| summarize(samples))
}

/// [`measure`], less the time the CPU was halted waiting for the device.
fn measure_io(samples: &mut [u64], mut f: impl FnMut()) -> [u64; 3] {
    for s in samples.iter_mut() {
        let idle0 = libos_kernel::idle_time();
        let t0 = libos_kernel::rdtsc();
        f();
        let t1 = libos_kernel::rdtsc();
        *s = (t1 - t0).saturating_sub(libos_kernel::idle_time() - idle0);
    }
    summarize(samples)
}

fn read_run(disk: &cell_virtio_blk::Ep, first: u32, run: &mut Run) -> Result<(), &'static str> {
    for (i, block) in run.iter_mut().enumerate() {
        match disk.call(&Request::Read { block: first + i as u32 }) {
            Ok(Response::Data(data)) => *block = data,
            Ok(_) => return Err("the disk cell refused a read"),
            Err(e) => return Err(e.describe()),
        }
    }
    Ok(())
}

fn write_run(disk: &cell_virtio_blk::Ep, first: u32, run: &Run) -> Result<(), &'static str> {
    for (i, data) in run.iter().enumerate() {
        match disk.call(&Request::Write { block: first + i as u32, data: *data }) {
            Ok(Response::Done) => {}
            Ok(_) => return Err("the disk cell refused a write"),
            Err(e) => return Err(e.describe()),
        }
    }
    Ok(())
}

/// `bench disk N`: the disk cell's block I/O, a file read that reaches the disk, the cell's
/// restart. It reads the disk's last 4 KiB and writes the same bytes back (the file system
/// lies at the disk's start, and the data never changes).
pub fn disk(con: &Console, w: &Wiring, privilege: &Privilege, fs: &mut Fs, n: usize) -> Result<(), Failed> {
    let setup = |why| Failed(None, why);
    let driver = libos_kernel::find_task(cell_virtio_blk::NAME).ok_or(setup("no virtio-blk task"))?;
    let first = match w.disk.call(&Request::Info) {
        Ok(Response::Info { blocks }) if blocks as usize >= RUN_BLOCKS => blocks - RUN_BLOCKS as u32,
        Ok(Response::Info { .. }) => return Err(setup("the disk is smaller than 4 KiB")),
        Ok(Response::NoDevice) => return Err(setup("no disk attached (cargo os run --disk IMAGE)")),
        Ok(_) => return Err(setup("the disk cell gave a wrong answer")),
        Err(e) => return Err(Failed(None, e.describe())),
    };
    let mut run: Run = [[0; fs_core::BLOCK_SIZE]; RUN_BLOCKS];
    read_run(&w.disk, first, &mut run).map_err(setup)?;
    let fd = prepare(con, fs)?;
    let restarts = n.min(50);
    let mut samples = vec![0u64; n];
    let mut restart_samples = vec![0u64; restarts];
    con.flush();
    let rows = libos_kernel::without_preemption(privilege, || -> Result<_, Failed> {
        let base = measure(&mut samples, || {})[0];
        let mut failed = None;
        let mut scratch = run;
        let mut fail = |row, r: Result<(), &'static str>| {
            if let Err(e) = r {
                failed.get_or_insert(Failed(Some(row), e));
            }
        };
        let blk_read =
            measure_io(&mut samples, || fail("los.blk_read", read_run(&w.disk, first, &mut scratch)));
        let blk_write = measure_io(&mut samples, || fail("los.blk_write", write_run(&w.disk, first, &run)));
        if let Some(f) = failed {
            return Err(f);
        }
        let fs_read = time_reads(fs, fd, &mut samples, "los.fs_read_disk", true)?;
        if scratch != run {
            return Err(Failed(Some("los.blk_read"), "the blocks read back differ from those written"));
        }
        Ok((base, [("los.blk_read", blk_read), ("los.blk_write", blk_write), ("los.fs_read_disk", fs_read)]))
    });
    let _ = fs.close(fd);
    let (base, rows) = rows?;
    let restarted = (|| -> Result<[u64; 3], Failed> {
        let mut scratch = run;
        let answers = || matches!(w.disk.call(&Request::Info), Ok(Response::Info { .. }));
        let why = ("cannot kill virtio-blk", "virtio-blk did not answer after its restart");
        let restart =
            restart_times(privilege, driver, &mut restart_samples, "los.drv_restart", why, answers)?;
        read_run(&w.disk, first, &mut scratch).map_err(|e| Failed(Some("los.drv_restart"), e))?;
        if scratch != run {
            return Err(Failed(Some("los.drv_restart"), "the last 4 KiB changed across restarts"));
        }
        Ok(restart)
    })();
    let _ = writeln!(
        &*con,
        "bench: libos disk, {} iterations each; TSC ticks less the {}-tick timing loop and the time halted waiting for the device",
        n, base
    );
    for (name, v) in rows {
        let [min, median, p99] = v.map(|x| x.saturating_sub(base));
        let _ = writeln!(&*con, "bench: {} n={} min={} median={} p99={}", name, n, min, median, p99);
    }
    let [min, median, p99] = restarted?;
    let _ =
        writeln!(&*con, "bench: los.drv_restart n={} min={} median={} p99={}", restarts, min, median, p99);
    let updates = n.min(20);
    let [min, median, p99] = update_times(privilege, fs, &mut restart_samples[..updates])?;
    let _ = writeln!(&*con, "bench: los.update n={} min={} median={} p99={}", updates, min, median, p99);
    Ok(())
}

/// The version `los.update` switches fs to, again and again (version 2 reads what it writes).
const UPDATE_TO: &str = "fs-v2";
/// The file `los.update` writes before it measures (see there).
const JOURNAL_LAST: &str = "/bench/update";

/// `los.update`: fs switched to its version staged as [`UPDATE_TO`], from the `update` call to
/// the new version's first answer (a `stat`, which waits at fs's endpoint meanwhile, as any
/// client's call would), less the time the CPU was halted (the new incarnation's mount waits
/// for the disk): the microkernel's `mk.update`, but nothing to load. Each sample is the
/// kernel's update (client sessions copied aside), the new incarnation's start and mount, the
/// driver's work for it, and the `stat`, which also closes the update's one-request window.
fn update_times(privilege: &Privilege, fs: &mut Fs, samples: &mut [u64]) -> Result<[u64; 3], Failed> {
    let row = Some("los.update");
    let task = libos_kernel::find_task("fs").ok_or(Failed(row, "no fs task"))?;
    libos_kernel::set_quiet(privilege, true);
    // Unpreempted, as the other rows: the scribe, which wakes on the timer, does not come in
    // with its requests (their disk writes would be billed to the update).
    let timed = libos_kernel::without_preemption(privilege, || {
        // Each new incarnation's mount reads what the journal's last operation left (its
        // images, and their home blocks when the header checks): make that operation one that
        // journals the same blocks in every run, not whichever of the scribe's came last (an
        // append into a fresh block is written straight to it, one into a block in use goes
        // through the journal: two runs' rows differed by 12,323). The second write of these
        // overwrites a block in use and leaves the file's size: one image, its data block.
        let last = |fs: &mut Fs| -> Result<(), FsError> {
            let fd = fs.open(JOURNAL_LAST, mode::READ | mode::WRITE | mode::CREATE)?;
            for _ in 0..2 {
                fs.seek(fd, 0)?;
                fs.write(fd, &[0x4a; 64])?;
            }
            fs.close(fd)
        };
        last(fs).map_err(|e| Failed(row, e.describe()))?;
        for s in samples.iter_mut() {
            let (idle0, t0) = loop {
                let (idle0, t0) = (libos_kernel::idle_time(), libos_kernel::rdtsc());
                match libos_kernel::update(privilege, task, UPDATE_TO, 1) {
                    Ok(_) => break (idle0, t0),
                    // The scribe's request in service: not this row's cost.
                    Err(libos_kernel::UpdateError::Busy) => libos_kernel::yield_now(),
                    Err(_) => return Err(Failed(row, "fs refused the update")),
                }
            };
            let answered = fs.stat("/");
            let t1 = libos_kernel::rdtsc();
            *s = (t1 - t0).saturating_sub(libos_kernel::idle_time() - idle0);
            answered.map_err(|e| Failed(row, e.describe()))?;
        }
        Ok(summarize(samples))
    });
    libos_kernel::set_quiet(privilege, false);
    timed
}

/// Sizes of `bench grow`'s file reads, and their rows.
const READS: [(usize, &str); 4] =
    [(64, "los.read_64"), (512, "los.read_512"), (4096, "los.read_4096"), (65536, "los.read_65536")];
/// Sessions open with fs for `bench grow`'s restart rows, and their rows.
const SESSIONS: [(usize, &str); 3] =
    [(1, "los.restart_sessions_1"), (8, "los.restart_sessions_8"), (64, "los.restart_sessions_64")];
/// The file `bench grow` reads (`shellcmd::grow`: 64 KiB, byte `i` is `grow::byte(i)`).
const GROW_PATH: &str = "/bench/grow";

/// One timed echo of `[u8; N]` through `ep` per sample; the answer must be the message.
fn echo_row<const N: usize>(
    ep: Endpoint<[u8; N], [u8; N]>,
    row: &'static str,
    samples: &mut [u64],
) -> Result<(&'static str, [u64; 3]), Failed> {
    let mut msg = [0u8; N];
    for (i, b) in msg.iter_mut().enumerate() {
        *b = grow::byte(i);
    }
    let mut failed = None;
    let stats = measure(samples, || match ep.call(&msg) {
        Ok(back) if back == msg => {}
        Ok(_) => failed = Some(Failed(Some(row), "the echo differs")),
        Err(e) => failed = Some(Failed(Some(row), e.describe())),
    });
    match failed {
        Some(f) => Err(f),
        None => Ok((row, stats)),
    }
}

/// Write [`GROW_PATH`] (`grow::FILE_SIZE` bytes of `grow::byte`) and open it for reading.
fn make_grow_file(fs: &mut Fs) -> Result<u32, Failed> {
    let setup = |why| Failed(None, why);
    match fs.mkdir("/bench") {
        Ok(()) | Err(FsError::Exists) => {}
        Err(_) => return Err(setup("cannot make /bench")),
    }
    let fd = fs
        .open(GROW_PATH, mode::READ | mode::WRITE | mode::CREATE | mode::TRUNCATE)
        .map_err(|_| setup("cannot open /bench/grow"))?;
    let mut piece = [0u8; cell_fs::IO_MAX];
    for at in (0..grow::FILE_SIZE).step_by(piece.len()) {
        for (i, b) in piece.iter_mut().enumerate() {
            *b = grow::byte(at + i);
        }
        if fs.write(fd, &piece).is_err() {
            let _ = fs.close(fd);
            return Err(setup("cannot write /bench/grow"));
        }
    }
    Ok(fd)
}

/// `grow::read_exactly` through our fs session's file `fd`.
fn read_exactly(
    fs: &mut Fs,
    fd: u32,
    size: usize,
    chunk: &mut [u8],
    check: bool,
) -> Result<bool, &'static str> {
    grow::read_exactly(size, chunk, check, |buf| fs.read(fd, buf).map_err(|_| "fs read failed"))
}

/// A row's name, runs and min, median, p99.
type SizedRow = (&'static str, usize, [u64; 3]);

/// The read rows: `size` bytes from the file's start per sample (the seek back untimed).
fn read_rows(fs: &mut Fs, fd: u32, samples: &mut [u64]) -> Result<heapless::Vec<SizedRow, 4>, Failed> {
    let mut rows = heapless::Vec::new();
    let mut chunk = [0u8; 4096];
    for (size, row) in READS {
        let fail = |why| Failed(Some(row), why);
        // Once untimed: the bytes read are the file's.
        fs.seek(fd, 0).map_err(|_| fail("seek failed"))?;
        if !read_exactly(fs, fd, size, &mut chunk, true).map_err(fail)? {
            return Err(fail("the file read back wrong bytes"));
        }
        let runs = if size > 4096 { samples.len().min(100) } else { samples.len() };
        for s in samples[..runs].iter_mut() {
            fs.seek(fd, 0).map_err(|_| fail("seek failed"))?;
            let t0 = libos_kernel::rdtsc();
            let r = read_exactly(fs, fd, size, &mut chunk, false);
            *s = libos_kernel::rdtsc() - t0;
            r.map_err(fail)?;
        }
        let _ = rows.push((row, runs, summarize(&mut samples[..runs])));
    }
    Ok(rows)
}

/// `bench grow N`: how the cost of a channel round trip grows with its message, of a file read
/// with its size, and of fs's restart with the sessions open with it.
pub fn grow(con: &Console, w: &Wiring, privilege: &Privilege, fs: &mut Fs, n: usize) -> Result<(), Failed> {
    let setup = |why| Failed(None, why);
    if libos_kernel::armed().is_some() {
        return Err(setup("a fault is armed: `restart` its task first"));
    }
    let fs_task = libos_kernel::find_task("fs").ok_or(setup("no fs task"))?;
    let fd = make_grow_file(fs)?;
    // The sessions of the restart rows, each with the file open at its own offset.
    let mut sessions: alloc::vec::Vec<(Fs, u32)> = alloc::vec::Vec::new();
    let restarts = n.min(50);
    let mut samples = vec![0u64; n];
    con.flush();
    let e = w.echoes;
    let rows = libos_kernel::without_preemption(privilege, || -> Result<_, Failed> {
        let base = measure(&mut samples, || {})[0];
        let calls = [
            echo_row(e.e0, "los.channel_payload_0", &mut samples)?,
            echo_row(e.e64, "los.channel_payload_64", &mut samples)?,
            echo_row(e.e512, "los.channel_payload_512", &mut samples)?,
            echo_row(e.e4096, "los.channel_payload_4096", &mut samples)?,
        ];
        let reads = read_rows(fs, fd, &mut samples)?;
        let mut restart = [[0u64; 3]; 3];
        for (r, (k, row)) in restart.iter_mut().zip(SESSIONS) {
            while sessions.len() < k - 1 {
                let i = sessions.len();
                let fail = |why| Failed(Some(row), why);
                let mut s = Fs::connect(w.fs).map_err(|_| fail("cannot open another fs session"))?;
                let f = s
                    .open(GROW_PATH, mode::READ)
                    .map_err(|_| fail("another session cannot open the file"))?;
                s.seek(f, grow::offset(i) as u32).map_err(|_| fail("another session cannot seek"))?;
                sessions.push((s, f));
            }
            let why = ("cannot kill fs", "fs did not answer after its restart");
            *r = restart_times(privilege, fs_task, &mut samples[..restarts], row, why, || {
                fs.stat("/").is_ok()
            })?;
            for (i, (s, f)) in sessions.iter_mut().enumerate() {
                let mut got = [0u8; 64];
                match s.read(*f, &mut got) {
                    Ok(64) if grow::is_at(&got, grow::offset(i)) => {}
                    _ => return Err(Failed(Some(row), "a session's file read wrong after the restarts")),
                }
                let _ = s.seek(*f, grow::offset(i) as u32);
            }
        }
        Ok((base, calls, reads, restart))
    });
    for (s, f) in sessions.iter_mut() {
        let _ = s.close(*f);
    }
    let _ = fs.close(fd);
    let _ = fs.remove(GROW_PATH);
    let (base, calls, reads, restart) = rows?;
    let _ = writeln!(
        &*con,
        "bench: libos grow, {} iterations each; TSC ticks less the {}-tick timing loop",
        n, base
    );
    let print = |name: &str, runs: usize, v: [u64; 3]| {
        let [min, median, p99] = v.map(|x| x.saturating_sub(base));
        let _ = writeln!(&*con, "bench: {} n={} min={} median={} p99={}", name, runs, min, median, p99);
    };
    for (name, v) in calls {
        print(name, n, v);
    }
    for (name, runs, v) in reads {
        print(name, runs, v);
    }
    for (v, (_, name)) in restart.into_iter().zip(SESSIONS) {
        let [min, median, p99] = v;
        let _ = writeln!(&*con, "bench: {} n={} min={} median={} p99={}", name, restarts, min, median, p99);
    }
    Ok(())
}
