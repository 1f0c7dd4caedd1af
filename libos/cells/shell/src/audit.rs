//! `audit NAME [REQUESTS]` on the libos: the kernel watches cell NAME's memory (its closure, heap
//! arena and stack above its receive point, see `libos_kernel::audit_start`) while two clients
//! take turns at it, and the shell prints what one client's requests left changed when the other
//! came: spill, or state the cell declared (`libos_kernel::declare`).
//!
//! The kernel tells clients apart by task, so the two clients are tasks of their own, made at
//! boot ("auditor-a", "auditor-b"): the shell hands each a step at a time, alternately. A step
//! is one turn of the campaign's workload for the cell's protocol (a record rewritten or checked
//! in a file, a checked sleep), or of a block store's (the last block read and written back
//! unchanged), or a line to the console. The scribe and fs's log lines are clients too.
//!
//! ```text
//!  shell ── Job::Begin(target) ──► auditor-a, auditor-b   (sessions opened, files made)
//!        ── audit_start(NAME)
//!        ── Job::Step ──► auditor-a ──► requests to NAME     (REQUESTS steps, alternately)
//!        ── Job::Step ──► auditor-b ──► requests to NAME
//!        ── audit_stop ──► report: spill lines, declared lines, a summary
//!        ── Job::End ──► both
//! ```
//! The lines have the microkernel's keys (`cargo os audit` reads both): `session=-` (a libos
//! client holds its state itself: there is no session number), `read=unwatched` (one address
//! space: no page to hide from one task), and the symbol is the region's name and offset, the
//! closure's by its type.

use crate::clients::{Clock, Files};
use algo::rng::Rng;
use campaign::{Phase, Records, Sleeps};
use cell_console::Console;
use cell_fs::Fs;
use cell_timer::Timer;
use core::fmt::Write;
use libos_kernel::{AuditRegion, AuditReport, Endpoint, Privilege};

/// What an auditor is asked to do.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Job {
    /// Open what the workload for `target` needs.
    Begin(Target),
    /// One step of it.
    Step,
    /// Close it.
    End,
}

/// The cell an audit drives, by its protocol.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Target {
    Fs,
    Timer,
    Ramdisk,
    Disk,
    Console,
}

impl Target {
    pub fn of(name: &str) -> Option<Target> {
        Some(match name {
            "fs" => Target::Fs,
            "timer" => Target::Timer,
            "ramdisk" => Target::Ramdisk,
            n if n == cell_virtio_blk::NAME => Target::Disk,
            "console" => Target::Console,
            _ => return None,
        })
    }
}

/// An auditor's answer: the step went as the workload expected.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Done(pub bool);

pub type AuditorEp = Endpoint<Job, Done>;

/// What the auditors reach.
#[derive(Clone)]
pub struct Reach {
    pub console: Console,
    pub fs: cell_fs::Ep,
    pub timer: cell_timer::Ep,
    pub ramdisk: cell_ramdisk::Ep,
    pub disk: cell_virtio_blk::Ep,
}

/// The two auditors' endpoints.
#[derive(Clone, Copy)]
pub struct Auditors([AuditorEp; 2]);

/// Make the two auditor tasks (while wiring the system).
pub fn start_auditors(reach: Reach) -> Option<Auditors> {
    let mut eps = [None, None];
    for (i, name) in ["auditor-a", "auditor-b"].into_iter().enumerate() {
        let ep = AuditorEp::create(name)?;
        let reach = reach.clone();
        libos_kernel::spawn(name, 5, true, move || serve(ep, &reach, i)).ok()?;
        eps[i] = Some(ep);
    }
    Some(Auditors([eps[0]?, eps[1]?]))
}

/// A workload in progress.
#[allow(clippy::large_enum_variant)]
enum Work {
    Files(Records<Files>),
    Clock(Sleeps<Clock>),
    Ram(cell_ramdisk::Blocks),
    Disk(cell_virtio_blk::Ep),
    Lines(u32),
}

/// Lines a workload has to say (a wrong answer) go to the console.
struct Out<'a>(&'a Console);

impl campaign::Console for Out<'_> {
    fn println(&mut self, line: core::fmt::Arguments<'_>) {
        let _ = writeln!(self.0, "[auditor] {}", line);
    }
}

/// An auditor: one workload at a time, a step per call.
fn serve(ep: AuditorEp, reach: &Reach, me: usize) {
    let mut work: Option<Work> = None;
    let mut rng = Rng(0xa0d1 + me as u64);
    loop {
        let (token, job) = ep.recv();
        let ok = match job {
            Job::Begin(target) => {
                work = begin(reach, target, me);
                work.is_some()
            }
            Job::Step => match work.as_mut() {
                Some(w) => step(w, reach, me, &mut rng),
                None => false,
            },
            Job::End => {
                work = None;
                true
            }
        };
        let _ = ep.reply(token, Done(ok));
    }
}

const FILES: [&str; 2] = ["/campaign/audit-a", "/campaign/audit-b"];

fn begin(reach: &Reach, target: Target, me: usize) -> Option<Work> {
    Some(match target {
        Target::Fs => Work::Files(Records::create_at(Files(Fs::connect(reach.fs).ok()?), FILES[me]).ok()?),
        Target::Timer => Work::Clock(Sleeps(Clock(Timer(reach.timer)))),
        Target::Ramdisk => Work::Ram(cell_ramdisk::Blocks(reach.ramdisk)),
        Target::Disk => Work::Disk(reach.disk),
        Target::Console => Work::Lines(0),
    })
}

/// One step; whether it went as expected.
fn step(work: &mut Work, reach: &Reach, me: usize, rng: &mut Rng) -> bool {
    let mut out = Out(&reach.console);
    let mut noting = campaign::note::Noting { out: &mut out, phase: Phase::FinalCheck };
    match work {
        Work::Files(r) => r.step(&mut noting, rng).errors == 0,
        Work::Clock(s) => {
            let seen = s.step(&mut noting, rng);
            seen.errors == 0 && seen.wrong == 0
        }
        // The store's last block, read and written back unchanged (fs does not use it).
        Work::Ram(blocks) => {
            use fs_core::BlockDevice;
            let last = cell_ramdisk::BLOCKS - 1 - me as u32;
            let mut data = [0u8; fs_core::BLOCK_SIZE];
            blocks.read(last, &mut data) && blocks.write(last, &data)
        }
        Work::Disk(disk) => {
            use cell_virtio_blk::{Request, Response};
            let Ok(Response::Info { blocks }) = disk.call(&Request::Info) else { return false };
            let last = blocks.saturating_sub(1 + me as u32);
            match disk.call(&Request::Read { block: last }) {
                Ok(Response::Data(data)) => {
                    matches!(disk.call(&Request::Write { block: last, data }), Ok(Response::Done))
                }
                _ => false,
            }
        }
        Work::Lines(n) => {
            *n += 1;
            writeln!(&reach.console, "[auditor-{}] line {}", ['a', 'b'][me], n).is_ok()
        }
    }
}

/// Most requests an audit follows, and the fewest (two clients, a turn each): the
/// microkernel's bounds.
pub const MAX_REQUESTS: u32 = 5000;
pub const MIN_REQUESTS: u32 = 2;
/// Requests without REQUESTS.
pub const DEFAULT_REQUESTS: u32 = 200;

/// Why an audit did not run.
pub enum Failed {
    NoSuchTarget,
    Setup(&'static str),
}

/// Run the audit of task `index` (cell `name`) until it has taken `requests` requests; the
/// report.
/// `settle` runs before the audit stops: the console's clients' lines are in its mailbox
/// until it takes them.
pub fn run(
    privilege: &Privilege,
    auditors: &Auditors,
    (index, target): (usize, Target),
    requests: u32,
    settle: impl Fn(),
) -> Result<(AuditReport, u32), Failed> {
    for a in &auditors.0 {
        if a.call(&Job::Begin(target)) != Ok(Done(true)) {
            let _ = auditors.0.map(|a| a.call(&Job::End));
            return Err(Failed::Setup("an auditor could not open its workload"));
        }
    }
    let started = libos_kernel::audit_start(privilege, index);
    let mut wrong = 0;
    if started.is_ok() {
        // Steps until the cell has taken `requests` requests (a step may make several, and
        // the scribe's count too), as the microkernel's audit counts them; at most 4 per.
        for i in 0..requests.saturating_mul(4) {
            if libos_kernel::audit_requests(privilege).is_none_or(|n| n >= requests) {
                break;
            }
            if auditors.0[(i % 2) as usize].call(&Job::Step) != Ok(Done(true)) {
                wrong += 1;
            }
        }
    }
    settle();
    let report = libos_kernel::audit_stop(privilege);
    let _ = auditors.0.map(|a| a.call(&Job::End));
    match (started, report) {
        (Ok(()), Some(r)) => Ok((r, wrong)),
        (Err(libos_kernel::AuditError::Busy), _) => Err(Failed::Setup("another audit runs")),
        (Err(libos_kernel::AuditError::NoSuchTask), _) => Err(Failed::NoSuchTarget),
        (Err(libos_kernel::AuditError::NotAuditable), _) => Err(Failed::Setup("it is not running")),
        (Err(libos_kernel::AuditError::OutOfMemory), _) => {
            Err(Failed::Setup("the kernel heap has no room for the audit's copies"))
        }
        (Ok(()), None) => Err(Failed::Setup("the audit ended before it was read")),
    }
}

/// What a range lies in: its region's name, the closure's by its type.
pub fn symbol(report: &AuditReport, region: AuditRegion) -> &'static str {
    match region {
        AuditRegion::Closure => report.closure,
        r => r.name(),
    }
}
