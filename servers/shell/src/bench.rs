//! `bench [N]` and `bench disk [N]`: what a protected call, a file read, a driver's block I/O and
//! a restart cost, in TSC ticks (retired instructions under QEMU `-icount shift=0`), less the
//! empty timing loop. One `bench: ROW n=.. min=.. median=.. p99=..` line per row, the format
//! `cargo os bench` parses (the libos shell prints the same).
//!
//! ```text
//!  mk.null_call       call to the bench server, empty reply            shell → bench → shell
//!  mk.ssr_call        the same through a session: the server reads a word of our SSR
//!  mk.fs_read         64-byte read of an open file                    shell → fs ⇄ block (RAM)
//!  mk.fs_write        64-byte write of an open file, and a seek back (durable when answered)
//!  mk.fs_seek         seek of an open file (the offset is in our SSR)
//!  mk.fs_open_close   open and close of a file by its path
//!  mk.fs_stat         stat of a file by its path
//!  mk.restart         fs killed → its next incarnation in recv        kernel-measured, n ≤ 50
//!  mk.boot            kernel entry → the shell's first prompt         the kernel's boot, the
//!                     servers' start (n = 1; what the firmware and GRUB took before is
//!                     printed apart: their disk reads complete in real time, so it varies)
//!  mk.blk_read        4 KiB: 8 block reads of the disk's last 4 KiB   shell → virtio-blk ⇄ device
//!  mk.blk_write       4 KiB: the same 8 blocks written back unchanged (answered once the
//!                     device has them; no flush)
//!  mk.fs_read_disk    64-byte read of an open file on the disk        shell → fs ⇄ virtio-blk ⇄ device
//!                     (fs empties its block cache first, untimed: its inode and data block
//!                     come from the device)
//!  mk.drv_restart     virtio-blk killed → its next incarnation in recv, the device reset and
//!                     set up again (kernel-measured), n ≤ 50
//!  mk.update          fs replaced by a new version (/servers/fs-v2) → its first answer (a
//!                     stat): instructions, the CPU's idle time taken off, n ≤ 20
//! ```
//!
//! `bench grow N`, how each cost grows with the work (`cargo os bench` charts them as curves):
//!
//! ```text
//!  mk.call_payload_B   a call to the bench server carrying B bytes (0, 64, 512, 4096), answered
//!                      with the same B bytes: written into our IPC buffer, copied by the kernel
//!                      into the server's and back, copied out of ours
//!  mk.read_B           B bytes (64, 512, 4096, 65536) read from the start of an open file, in
//!                      reads of at most fs_api::MAX_IO (2048) bytes, as a program reading a file
//!                      through the protocol does
//!  mk.restart_sessions_K  fs killed → its next incarnation in recv, with K sessions open with fs
//!                      (1, 8, 64: the shell's own and K - 1 more, each with a file open at its
//!                      own offset, which must read right afterwards), n ≤ 50
//! ```
//!
//! The disk rows wait for the device. Meanwhile the CPU idles (and under `-icount` with
//! `sleep=off` QEMU moves the clock straight to the next timer), or runs tasks the operation
//! does not involve (the timer server's tick, the scribe, whose requests may also be queued
//! at fs or the driver when the shell's arrive). So those rows count only what the kernel
//! billed to the shell: what the shell ran, and what fs and the driver ran while serving its
//! calls (`billed_tsc` of `task_info`, with CPU accounting on for these rows only). What is
//! left is the instructions retired on the way, the kernel's included.

use crate::{Out, Shell};
use algo::stats::summarize;
use block_api::{Block, BlockDevice, BlockError, BLOCK_SIZE};
use console_api::println;
use fs_api::{mode, Fs, FsError};
use shellcmd::{grow, Console as _, Status, BENCH_MAX};
use userlib::abi::{InjectKind, MsgInfo, Sysno, TaskState, TASK_PAUSED};
use userlib::cap::{Cap, Endpoint, Task};

/// Restarting a server takes 50,000 to 75,000 instructions: fewer runs suffice.
const BENCH_RESTARTS: usize = 50;
/// Updates of fs `bench disk` times (each mounts the disk again: ~30 block reads).
const BENCH_UPDATES: usize = 20;
/// The version of fs `bench disk` updates to, again and again (`cargo os bench` puts it on the
/// disk; `cargo os put` does for a user).
const UPDATE_IMAGE: &str = "/servers/fs-v2";
/// A 4 KiB transfer in the block protocol's 512-byte blocks.
const RUN_BLOCKS: usize = 4096 / BLOCK_SIZE;

type Stats = Result<[u64; 3], &'static str>;

/// Payload sizes of `bench grow`'s calls, and their rows.
const PAYLOADS: [(usize, &str); 4] = [
    (0, "mk.call_payload_0"),
    (64, "mk.call_payload_64"),
    (512, "mk.call_payload_512"),
    (4096, "mk.call_payload_4096"),
];
/// Read sizes of `bench grow`'s file reads, and their rows.
const READS: [(usize, &str); 4] =
    [(64, "mk.read_64"), (512, "mk.read_512"), (4096, "mk.read_4096"), (65536, "mk.read_65536")];
/// Sessions open with fs for `bench grow`'s restart rows, and their rows.
const SESSIONS: [(usize, &str); 3] =
    [(1, "mk.restart_sessions_1"), (8, "mk.restart_sessions_8"), (64, "mk.restart_sessions_64")];
/// The first capability slot of the sessions `bench grow` opens (the manifest's capabilities
/// and the shell's own sessions lie below).
const GROW_SLOT: u8 = 64;
/// The file `bench grow` reads (`shellcmd::grow`: 64 KiB, byte `i` is `grow::byte(i)`).
const GROW_PATH: &str = "/.bench-grow";
/// The file whose write is the journal's last operation before each restart of fs
/// ([`journal_last`]).
const JOURNAL_LAST: &str = "/.bench-journal";

/// The samples of the row being measured (32 KiB: in the shell's data, not on its 64 KiB stack).
static SAMPLES: spin::Mutex<[u64; BENCH_MAX]> = spin::Mutex::new([0; BENCH_MAX]);

/// Prints rows less the timing loop's own cost, and remembers whether one failed.
struct Report {
    base: u64,
    status: Status,
}

impl Report {
    fn start(samples: &mut [u64]) -> Report {
        let n = samples.len();
        let base = measure(samples, || Ok::<(), ()>(())).map(|b| b[0]).unwrap_or(0);
        println!("bench: {} runs per row; TSC ticks per operation, less the {}-tick timing loop", n, base);
        println!("bench: under QEMU -icount shift=0 one TSC tick is one retired instruction");
        Report { base, status: 0 }
    }

    fn row(&mut self, row: &str, runs: usize, stats: Stats) {
        match stats {
            Ok(v) => {
                let [min, median, p99] = v.map(|x| x.saturating_sub(self.base));
                println!("bench: {} n={} min={} median={} p99={}", row, runs, min, median, p99);
            }
            Err(e) => self.status |= Out.fail(format_args!("bench: {}: {}", row, e)),
        }
    }

    /// A row the kernel measured itself (restart latency): nothing to take off.
    fn measured(&mut self, row: &str, runs: usize, stats: Stats) {
        let base = core::mem::replace(&mut self.base, 0);
        self.row(row, runs, stats);
        self.base = base;
    }
}

/// `bench N`: protected calls, a file read on the RAM disk, fs's restart.
pub fn calls(shell: &mut Shell, n: usize) -> Status {
    let (Some((ep, session)), Some(crate::Files(fs))) = (shell.bench, shell.fs) else {
        return Out.fail(format_args!("bench needs the bench and fs servers"));
    };
    let null = MsgInfo::new(bench::NULL).encode();
    let word = MsgInfo::new(bench::SSR_WORD).encode();
    let call = |slot: u64, info: u64| {
        userlib::sys::call(Sysno::Call, [slot, info, 0, 0, 0, 0]).map(|_| ()).map_err(|e| e.describe())
    };
    let mut buf = SAMPLES.lock();
    let samples = &mut buf[..n];
    let mut r = Report::start(samples);
    r.row("mk.null_call", n, measure(samples, || call(ep.slot(), null)));
    r.row("mk.ssr_call", n, measure(samples, || call(session.slot(), word)));
    r.row("mk.fs_read", n, fs_read(fs, samples, None));
    file_rows(fs, &mut r, samples);
    let restarts = n.min(BENCH_RESTARTS);
    let answers = || fs.stat("/").is_ok();
    let last = || journal_last(fs);
    r.measured("mk.restart", restarts, restart(shell, "fs", &mut samples[..restarts], last, answers));
    let _ = fs.remove(JOURNAL_LAST);
    let booted = shell.booted.ok_or("this shell is a later incarnation: it did not see the boot");
    let entered = shell.boot_tsc;
    r.measured("mk.boot", 1, booted.map(|t| [t - entered; 3]));
    println!("bench: before the kernel (firmware, GRUB): {} TSC ticks", entered);
    r.status
}

/// `bench disk N`: the disk driver's block I/O, a file read that reaches the disk, the driver's
/// restart. It reads the disk's last 4 KiB and writes the same bytes back (fs's file system
/// lies at the disk's start, and the data never changes).
pub fn disk(shell: &mut Shell, n: usize) -> Status {
    let (Some(disk), Some(crate::Files(fs))) = (shell.disk, shell.fs) else {
        return Out.fail(format_args!("bench disk needs the disk driver and fs servers"));
    };
    let first = match disk.blocks() {
        Ok(blocks) if blocks as usize >= RUN_BLOCKS => blocks - RUN_BLOCKS as u32,
        Ok(_) => return Out.fail(format_args!("bench disk: the disk is smaller than 4 KiB")),
        Err(BlockError::NoDevice) => {
            return Out.fail(format_args!("bench disk: no disk attached (cargo os run --disk IMAGE)"))
        }
        Err(e) => return Out.fail(format_args!("bench disk: the disk driver: {}", e.describe())),
    };
    let Some(tasks) = shell.tasks else {
        return Out
            .fail(format_args!("bench disk needs the task capability (to leave out other tasks' time)"));
    };
    let (Some(me), Some(driver)) = (tasks.find("shell"), tasks.find("virtio-blk")) else {
        return Out.fail(format_args!("bench disk: no task named shell or virtio-blk"));
    };
    // The scribe's requests would queue at fs and the driver between the shell's: each then
    // takes the kernel's slower paths (a queued call instead of a direct hand-off), and the
    // rows would vary with how often the scribe's timer fires. It waits meanwhile.
    let scribe = tasks.find("scribe").filter(|&s| tasks.info(s).is_ok_and(|t| t.flags & TASK_PAUSED == 0));
    if let Some(s) = scribe {
        if let Err(e) = tasks.pause(s, true) {
            return Out.fail(format_args!("bench disk: cannot pause the scribe: {}", e));
        }
        println!("bench: the scribe is paused while the disk rows run");
    }
    let status = match tasks.accounting(true) {
        Ok(_) => disk_rows(shell, n, disk, fs, first, Billed { tasks, me, driver }),
        Err(e) => Out.fail(format_args!("bench disk: cannot turn CPU accounting on: {}", e)),
    };
    let _ = tasks.accounting(false);
    if let Some(s) = scribe {
        if let Err(e) = tasks.pause(s, false) {
            return Out.fail(format_args!("bench disk: cannot resume the scribe: {}", e));
        }
        println!("bench: the scribe is resumed");
    }
    status
}

fn disk_rows(shell: &Shell, n: usize, disk: BlockDevice, fs: Fs, first: u32, billed: Billed) -> Status {
    let mut run = [[0u8; BLOCK_SIZE]; RUN_BLOCKS];
    if let Err(e) = read_run(disk, first, &mut run) {
        return Out.fail(format_args!("bench disk: cannot read the disk's last 4 KiB: {}", e));
    }
    let mut buf = SAMPLES.lock();
    let samples = &mut buf[..n];
    let mut r = Report::start(samples);
    let mut scratch = [[0u8; BLOCK_SIZE]; RUN_BLOCKS];
    r.row("mk.blk_read", n, measure_io(&billed, samples, || read_run(disk, first, &mut scratch)));
    r.row("mk.blk_write", n, measure_io(&billed, samples, || write_run(disk, first, &run)));
    if scratch != run {
        r.status |= Out.fail(format_args!("bench disk: the blocks read back differ from those written"));
    }
    r.row("mk.fs_read_disk", n, fs_read(fs, samples, Some(&billed)));
    let restarts = n.min(BENCH_RESTARTS);
    let answers = || disk.blocks().is_ok();
    let stats = restart(shell, "virtio-blk", &mut samples[..restarts], || Ok(()), answers);
    r.measured("mk.drv_restart", restarts, stats);
    let updates = n.min(BENCH_UPDATES);
    r.measured("mk.update", updates, update(shell, fs, &billed, &mut samples[..updates]));
    // What a restarted driver reads must be what was there.
    match read_run(disk, first, &mut scratch) {
        Ok(()) if scratch == run => {}
        Ok(()) => r.status |= Out.fail(format_args!("bench disk: the last 4 KiB changed across restarts")),
        Err(e) => r.status |= Out.fail(format_args!("bench disk: cannot read back after restarts: {}", e)),
    }
    r.status
}

fn read_run(disk: BlockDevice, first: u32, run: &mut [Block; RUN_BLOCKS]) -> Result<(), &'static str> {
    for (i, block) in run.iter_mut().enumerate() {
        disk.read(first + i as u32, block).map_err(BlockError::describe)?;
    }
    Ok(())
}

fn write_run(disk: BlockDevice, first: u32, run: &[Block; RUN_BLOCKS]) -> Result<(), &'static str> {
    for (i, block) in run.iter().enumerate() {
        disk.write(first + i as u32, block).map_err(BlockError::describe)?;
    }
    Ok(())
}

/// Time `n` runs of `f` with the TSC; min, median and 99th percentile.
fn measure<E>(samples: &mut [u64], mut f: impl FnMut() -> Result<(), E>) -> Result<[u64; 3], E> {
    for s in samples.iter_mut() {
        *s = measure_span(&mut f)?;
    }
    Ok(summarize(samples))
}

/// Like [`measure`], counting only the time billed to the shell.
fn measure_io<E>(
    billed: &Billed,
    samples: &mut [u64],
    mut f: impl FnMut() -> Result<(), E>,
) -> Result<[u64; 3], E> {
    billed.quietly(|| {
        // One run untimed: an interrupt that came before the quiet, and the scribe's last
        // request, are dealt with outside the samples.
        f()?;
        for s in samples.iter_mut() {
            *s = measure_io_span(billed, &mut f)?;
        }
        Ok(summarize(samples))
    })
}

/// The kernel's bill for the shell's work: what the shell ran and what servers ran serving its
/// calls (`billed_tsc`), the kernel's work for both included.
struct Billed {
    tasks: Cap<Task>,
    me: usize,
    /// The disk driver, whose interrupt alone may come while a row runs.
    driver: usize,
}

impl Billed {
    /// Run `f` with every interrupt line closed but the disk's (`Cap::<Task>::quiet`): the
    /// kernel's tick, the timer server's clock and the console's line wait until it is done.
    /// Without this, which task ran before the driver woke (idle, or the timer server on a
    /// tick QEMU's clock jumped to while the CPU waited) changed the switch's cost by a few
    /// instructions per block (opening and closing that task's I/O ports), and the rows by
    /// up to ~200.
    fn quietly<T>(&self, f: impl FnOnce() -> T) -> T {
        let _ = self.tasks.quiet(Some(self.driver));
        let r = f();
        let _ = self.tasks.quiet(None);
        r
    }

    /// The TSC ticks charged so far to idle and billed to every task but the shell. While the
    /// shell runs these are complete (the kernel charges a task when it switches away from it,
    /// and the shell's own bill lags until then).
    fn elsewhere(&self) -> u64 {
        let others = (0..crate::MAX_TASKS).filter(|&i| i != self.me);
        let others: u64 = others.filter_map(|i| self.tasks.info(i).ok()).map(|t| t.billed_tsc).sum();
        others + self.tasks.accounting(true).unwrap_or(0)
    }
}

/// One timed run of `f`.
#[inline(always)]
fn measure_span<E>(f: &mut impl FnMut() -> Result<(), E>) -> Result<u64, E> {
    let t0 = userlib::sys::rdtsc();
    let r = f();
    let t1 = userlib::sys::rdtsc();
    r.map(|()| t1 - t0)
}

/// One timed run of `f`, less the time not billed to the shell meanwhile. That is read
/// outside the span: the shell runs from each reading to its timestamp, so nothing is charged
/// elsewhere in between (unless an interrupt wakes a task of higher priority: a rare outlier).
#[inline(always)]
fn measure_io_span<E>(billed: &Billed, f: &mut impl FnMut() -> Result<(), E>) -> Result<u64, E> {
    let away0 = billed.elsewhere();
    let t0 = userlib::sys::rdtsc();
    let r = f();
    let t1 = userlib::sys::rdtsc();
    let away1 = billed.elsewhere();
    r.map(|()| (t1 - t0).saturating_sub(away1 - away0))
}

/// Timed 64-byte reads through an open fs session, each of the first 64 bytes of a scratch
/// file (the offset is set back outside the timed part), as the libos shell measures it.
/// With `billed`, only the time billed to the shell (the file is on the disk).
fn fs_read(fs: Fs, samples: &mut [u64], billed: Option<&Billed>) -> Stats {
    const PATH: &str = "/.bench-read";
    let fail = |e: FsError| e.describe();
    let fd = fs.open(PATH, mode::READ | mode::WRITE | mode::CREATE | mode::TRUNCATE).map_err(fail)?;
    let result = (|| {
        fs.write(fd, &[0x5a; 64]).map_err(fail)?;
        let mut buf = [0u8; 64];
        let mut run = || -> Stats {
            // One read untimed, as for the block rows.
            fs.seek(fd, 0).map_err(fail)?;
            fs.read(fd, &mut buf).map_err(fail)?;
            for s in samples.iter_mut() {
                fs.seek(fd, 0).map_err(fail)?;
                // On the disk, the read is to reach the device: fs forgets its cached blocks
                // first (untimed).
                if billed.is_some() {
                    fs.drop_caches().map_err(fail)?;
                }
                let mut read = || match fs.read(fd, &mut buf) {
                    Ok(64) => Ok(()),
                    Ok(_) => Err("a short read"),
                    Err(e) => Err(e.describe()),
                };
                *s = match billed {
                    Some(billed) => measure_io_span(billed, &mut read)?,
                    None => measure_span(&mut read)?,
                };
            }
            Ok(summarize(samples))
        };
        match billed {
            Some(billed) => billed.quietly(run),
            None => run(),
        }
    })();
    let _ = fs.close(fd);
    let _ = fs.remove(PATH);
    result
}

/// The other file operations of Linux's rows (`linux.write_64`, `seek`, `open_close`, `stat`),
/// on a 64-byte scratch file on the RAM disk. A write here is durable when answered (the
/// journal's commit and its flushes), where Linux's lands in the page cache.
fn file_rows(fs: Fs, r: &mut Report, samples: &mut [u64]) {
    const PATH: &str = "/.bench-ops";
    let n = samples.len();
    let fail = |e: FsError| e.describe();
    let fd = match fs.open(PATH, mode::READ | mode::WRITE | mode::CREATE | mode::TRUNCATE) {
        Ok(fd) => fd,
        Err(e) => {
            r.status |= Out.fail(format_args!("bench: cannot open {}: {}", PATH, e.describe()));
            return;
        }
    };
    let data = [0x5au8; 64];
    let write = fs.write(fd, &data).map_err(fail).and_then(|()| {
        measure(samples, || {
            fs.write(fd, &data)?;
            fs.seek(fd, 0)
        })
        .map_err(fail)
    });
    r.row("mk.fs_write", n, write);
    r.row("mk.fs_seek", n, measure(samples, || fs.seek(fd, 0)).map_err(fail));
    let open_close = measure(samples, || {
        let f = fs.open(PATH, mode::READ)?;
        fs.close(f)
    });
    r.row("mk.fs_open_close", n, open_close.map_err(fail));
    r.row("mk.fs_stat", n, measure(samples, || fs.stat(PATH).map(|_| ())).map_err(fail));
    let _ = fs.close(fd);
    let _ = fs.remove(PATH);
}

/// Kill task `name` once per sample; each sample is the kernel's measure of that recovery (fault
/// to the new incarnation's first `recv`). A request between kills (`answers`) keeps it out of
/// crash-loop back-off, as a client's would.
/// `prepare` runs before each kill, untimed.
fn restart(
    shell: &Shell,
    name: &str,
    samples: &mut [u64],
    mut prepare: impl FnMut() -> Result<(), &'static str>,
    mut answers: impl FnMut() -> bool,
) -> Stats {
    let tasks = shell.tasks.ok_or("no task capability")?;
    let index = tasks.find(name).ok_or("no such task")?;
    for s in samples.iter_mut() {
        prepare()?;
        let before = tasks.info(index).map_err(|e| e.describe())?.generation;
        tasks.inject(index, InjectKind::Kill, 0).map_err(|e| e.describe())?;
        let info = loop {
            let info = tasks.info(index).map_err(|e| e.describe())?;
            if info.generation != before && info.state() == Some(TaskState::Receiving) {
                break info;
            }
            if info.state() == Some(TaskState::Halted) {
                return Err("it was held by the supervisor");
            }
            userlib::sys::yield_now();
        };
        if !answers() {
            return Err("it did not answer after its restart");
        }
        *s = info.recovery_tsc;
    }
    Ok(summarize(samples))
}

/// `bench grow N`: how the cost of a call grows with its payload, of a file read with its size,
/// and of fs's restart with the sessions open with it.
pub fn grow(shell: &mut Shell, n: usize) -> Status {
    let (Some((ep, _)), Some(crate::Files(fs)), Some(fs_ep)) = (shell.bench, shell.fs, shell.fs_ep) else {
        return Out.fail(format_args!("bench grow needs the bench and fs servers"));
    };
    let mut buf = SAMPLES.lock();
    let samples = &mut buf[..n];
    let mut r = Report::start(samples);
    let mut payload = [0u8; 4096];
    for (i, b) in payload.iter_mut().enumerate() {
        *b = grow::byte(i);
    }
    let mut back = [0u8; 4096];
    for (size, row) in PAYLOADS {
        let stats = measure(samples, || echo(ep, &payload[..size], &mut back[..size]));
        let stats =
            stats.and_then(|s| if back[..size] == payload[..size] { Ok(s) } else { Err("the echo differs") });
        r.row(row, n, stats);
    }
    let fail = |e: FsError| e.describe();
    let fd = match make_grow_file(fs) {
        Ok(fd) => fd,
        Err(e) => return r.status | Out.fail(format_args!("bench grow: {}: {}", GROW_PATH, e.describe())),
    };
    let mut chunk = [0u8; 4096];
    for (size, row) in READS {
        let mut stats = || -> Stats {
            // Once untimed: the bytes read are the file's.
            fs.seek(fd, 0).map_err(fail)?;
            if !read_exactly(fs, fd, size, &mut chunk, true)? {
                return Err("the file read back wrong bytes");
            }
            for s in samples.iter_mut() {
                fs.seek(fd, 0).map_err(fail)?;
                *s = measure_span(&mut || read_exactly(fs, fd, size, &mut chunk, false).map(|_| ()))?;
            }
            Ok(summarize(samples))
        };
        r.row(row, n, stats());
    }
    let restarts = n.min(BENCH_RESTARTS);
    for (k, row) in SESSIONS {
        let stats = with_sessions(fs_ep, k - 1, |sessions| {
            let answers = || fs.stat("/").is_ok();
            let stats = restart(shell, "fs", &mut samples[..restarts], || journal_last(fs), answers)?;
            // Every session's state came through: its file reads on at its own offset.
            for (i, (s, sfd)) in sessions.iter().enumerate() {
                let mut got = [0u8; 64];
                match s.read(*sfd, &mut got) {
                    Ok(64) if grow::is_at(&got, grow::offset(i)) => {}
                    Ok(_) => return Err("a session's file read wrong bytes after the restarts"),
                    Err(e) => return Err(e.describe()),
                }
            }
            Ok(stats)
        });
        r.measured(row, restarts, stats);
    }
    let _ = fs.close(fd);
    let _ = fs.remove(GROW_PATH);
    let _ = fs.remove(JOURNAL_LAST);
    r.status
}

/// Make the journal's last operation the same before every restart of fs: a new incarnation's
/// mount reads what that operation left (its images, and their home blocks when the header
/// checks), and otherwise it was whichever of the scribe's appends came last (a record into a
/// fresh block is written straight to it, one into a block in use goes through the journal), so
/// two runs' `mk.restart_sessions_*` differed by 3,984. The second write overwrites a block in
/// use and leaves the size: one image, its data block (`los.update` does the same).
fn journal_last(fs: Fs) -> Result<(), &'static str> {
    let write = || -> Result<(), FsError> {
        let fd = fs.open(JOURNAL_LAST, mode::READ | mode::WRITE | mode::CREATE)?;
        let wrote = (0..2).try_for_each(|_| {
            fs.seek(fd, 0)?;
            fs.write(fd, &[0x4a; 64])
        });
        let closed = fs.close(fd);
        wrote.and(closed)
    };
    write().map_err(FsError::describe)
}

/// A call to the bench server carrying `payload`, answered with the same bytes, copied to `back`.
fn echo(ep: Cap<Endpoint>, payload: &[u8], back: &mut [u8]) -> Result<(), &'static str> {
    let msg = ep.call(bench::ECHO, [0; 4], payload).map_err(|e| e.describe())?;
    if msg.info.label != 0 || msg.payload_into(back) != payload.len() {
        return Err("the bench server's answer is not the echo");
    }
    Ok(())
}

/// Write [`GROW_PATH`] (`grow::FILE_SIZE` bytes of `grow::byte`) and open it for reading.
fn make_grow_file(fs: Fs) -> Result<u32, FsError> {
    let fd = fs.open(GROW_PATH, mode::READ | mode::WRITE | mode::CREATE | mode::TRUNCATE)?;
    let mut piece = [0u8; 4096];
    for at in (0..grow::FILE_SIZE).step_by(piece.len()) {
        for (i, b) in piece.iter_mut().enumerate() {
            *b = grow::byte(at + i);
        }
        if let Err(e) = fs.write(fd, &piece) {
            let _ = fs.close(fd);
            return Err(e);
        }
    }
    Ok(fd)
}

/// `grow::read_exactly` through fs session `fs`'s file `fd`.
fn read_exactly(fs: Fs, fd: u32, size: usize, chunk: &mut [u8], check: bool) -> Result<bool, &'static str> {
    grow::read_exactly(size, chunk, check, |buf| fs.read(fd, buf).map_err(FsError::describe))
}

/// Run `f` with `extra` more sessions open with fs, each with [`GROW_PATH`] open at
/// `grow::offset`; they are closed afterwards, whatever `f` found.
fn with_sessions(ep: Cap<Endpoint>, extra: usize, f: impl FnOnce(&[(Fs, u32)]) -> Stats) -> Stats {
    let mut open: heapless::Vec<(Fs, u32), 64> = heapless::Vec::new();
    let mut result = Ok(());
    for i in 0..extra {
        let slot = GROW_SLOT + i as u8;
        let session = match Fs::connect(ep, slot) {
            Ok(s) => s,
            Err(e) => {
                result = Err(e.describe());
                break;
            }
        };
        let fd = session
            .open(GROW_PATH, mode::READ)
            .and_then(|fd| session.seek(fd, grow::offset(i) as u32).map(|()| fd));
        match fd {
            Ok(fd) if open.push((session, fd)).is_ok() => {}
            Ok(_) => result = Err("too many sessions"),
            Err(e) => result = Err(e.describe()),
        }
        if result.is_err() {
            let _ = userlib::cap::cap_delete(slot);
            break;
        }
    }
    let stats = result.and_then(|()| f(&open));
    for (i, (session, fd)) in open.iter().enumerate() {
        let _ = session.close(*fd);
        let _ = userlib::cap::cap_delete(GROW_SLOT + i as u8);
    }
    stats
}

/// `mk.update`: fs replaced by [`UPDATE_IMAGE`] (read into the staging memory once), from the
/// `task_update` call to the new version's first answer (a `stat`, which waits at fs's
/// endpoint meanwhile, as any client's call would), less the time the CPU idled (the new
/// incarnation's mount waits for the disk). Each sample is the instructions of the kernel's
/// update, the new incarnation's start and mount, the driver's work for it and the `stat`;
/// that request also closes the update's one-request window.
fn update(shell: &Shell, fs: Fs, billed: &Billed, samples: &mut [u64]) -> Stats {
    let (tasks, staging) = (billed.tasks, shell.staging.ok_or("no staging memory")?);
    let index = tasks.find("fs").ok_or("no task named fs")?;
    let len = crate::read_image(fs, staging, UPDATE_IMAGE).map_err(|_| {
        "no /servers/fs-v2 to update to (cargo os put target/os/updates/fs-v2 /servers/fs-v2)"
    })?;
    billed.quietly(|| {
        for s in samples.iter_mut() {
            let idle0 = tasks.accounting(true).map_err(|e| e.describe())?;
            let t0 = userlib::sys::rdtsc();
            let generation = tasks.update(index, staging, len, 1).map_err(|e| e.describe())?;
            let answered = fs.stat("/");
            let t1 = userlib::sys::rdtsc();
            let idle1 = tasks.accounting(true).map_err(|e| e.describe())?;
            answered.map_err(FsError::describe)?;
            if tasks.info(index).map_err(|e| e.describe())?.generation != generation {
                return Err("the new version failed");
            }
            *s = (t1 - t0).saturating_sub(idle1 - idle0);
        }
        Ok(summarize(samples))
    })
}
