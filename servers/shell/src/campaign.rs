//! Fault-injection campaigns: a checked workload against one server while faults are injected
//! into it at random moments, from outside, through the shell's Task capability.
//!
//! The workload keeps its own model of what it was told is written and checks every read
//! against it. After each fault it runs a few more steps and classifies the fault:
//!
//! ```text
//!  benign      no visible effect
//!  recovered   the server crashed, hung or was restarted, and the client saw no error and
//!              no wrong data (its calls were suspended and delivered again)
//!  error       the client got a clear error for some request
//!  lost        data the client had been told was written was missing or wrong
//! ```
//! It ends with one line: `campaign NAME: injected=N manifested=M recovered=R errors=E lost=L
//! panics=P` (a kernel panic would have ended the run, so a printed line says 0; the host tool
//! reports a panic itself).

use console_api::println;
use fs_api::{mode, Fs, FsError};
use timer_api::Timer;
use userlib::abi::{InjectKind, TaskState};
use userlib::cap::{cap_delete, Cap, Endpoint, Task};

const RECORDS: usize = 32;
const RECORD: usize = 16;
/// Workload steps watched after each fault.
const WINDOW: u32 = 4;
const FS_SLOT: u8 = 43;
const TIMER_SLOT: u8 = 44;

pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        // splitmix64: every seed, including 0, gives a good sequence.
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// What one workload step saw.
#[derive(Default, Clone, Copy)]
struct Seen {
    errors: u32,
    wrong: u32,
}

// One value per campaign, on the stack; tasks have no heap to box the model into.
#[allow(clippy::large_enum_variant)]
enum Work {
    /// Records in a file: exercises fs, and the block store under it.
    File { fs: Fs, fd: u32, model: [u64; RECORDS], known: [bool; RECORDS] },
    /// Sleeps measured against the clock: exercises the timer.
    Clock { timer: Timer },
}

fn record(v: u64) -> [u8; RECORD] {
    let mut r = [0u8; RECORD];
    r[..8].copy_from_slice(&v.to_le_bytes());
    r[8..].copy_from_slice(&(!v).to_le_bytes());
    r
}

impl Work {
    fn file(fs: Fs) -> Result<Work, FsError> {
        match fs.mkdir("/campaign") {
            Ok(()) | Err(FsError::Exists) => {}
            Err(e) => return Err(e),
        }
        let fd = fs.open("/campaign/data", mode::READ | mode::WRITE | mode::CREATE | mode::TRUNCATE)?;
        let mut model = [0u64; RECORDS];
        for (i, m) in model.iter_mut().enumerate() {
            *m = i as u64 * 0x1_0001;
            fs.write(fd, &record(*m))?;
        }
        Ok(Work::File { fs, fd, model, known: [true; RECORDS] })
    }

    /// Check record `i` against the model.
    fn check(fs: &Fs, fd: u32, i: usize, want: u64, seen: &mut Seen) {
        let mut got = [0u8; RECORD];
        let read = fs.seek(fd, (i * RECORD) as u32).and_then(|_| fs.read(fd, &mut got));
        match read {
            Ok(RECORD) if got == record(want) => {}
            Ok(_) => {
                seen.wrong += 1;
                println!("campaign: LOST: record {} differs from what was acknowledged", i);
            }
            Err(_) => seen.errors += 1,
        }
    }

    fn step(&mut self, rng: &mut Rng) -> Seen {
        let mut seen = Seen::default();
        match self {
            Work::File { fs, fd, model, known } => {
                let i = rng.below(RECORDS as u64) as usize;
                if rng.below(2) == 0 {
                    let v = rng.next();
                    let written = fs.seek(*fd, (i * RECORD) as u32).and_then(|_| fs.write(*fd, &record(v)));
                    match written {
                        Ok(()) => {
                            model[i] = v;
                            known[i] = true;
                        }
                        Err(e) => {
                            // Maybe written, maybe not: stop checking it until rewritten.
                            known[i] = false;
                            seen.errors += 1;
                            if e == FsError::StateReset || e == FsError::BadFd {
                                // Our session state was reset: open the file again.
                                if let Ok(new) = fs.open("/campaign/data", mode::READ | mode::WRITE) {
                                    *fd = new;
                                }
                            }
                        }
                    }
                } else if known[i] {
                    Self::check(fs, *fd, i, model[i], &mut seen);
                }
            }
            Work::Clock { timer } => {
                let ms = 1 + rng.below(8) as u32;
                match (timer.now_ms(), timer.sleep(ms), timer.now_ms()) {
                    (Ok(t0), Ok(()), Ok(t1)) if t1 >= t0 + ms as u64 => {}
                    (Ok(_), Ok(()), Ok(_)) => {
                        seen.wrong += 1;
                        println!("campaign: WRONG: a {} ms sleep returned early", ms);
                    }
                    _ => seen.errors += 1,
                }
            }
        }
        seen
    }

    /// Check everything the model knows (at the end).
    fn verify_all(&mut self) -> Seen {
        let mut seen = Seen::default();
        if let Work::File { fs, fd, model, known } = self {
            for i in (0..RECORDS).filter(|&i| known[i]) {
                Self::check(fs, *fd, i, model[i], &mut seen);
            }
        }
        seen
    }
}

/// Is task `index` running (not stopped, restarting or halted)?
fn state(tasks: Cap<Task>, index: usize) -> (Option<TaskState>, u32) {
    tasks.info(index).map(|t| (t.state(), t.restarts)).unwrap_or((None, 0))
}

/// Wait until the target runs again (restarts happen on timer ticks). False if it is halted.
fn wait_running(tasks: Cap<Task>, index: usize) -> bool {
    for _ in 0..5_000_000u32 {
        match state(tasks, index).0 {
            Some(TaskState::Halted) | None => return false,
            Some(s) if !s.is_stopped() => return true,
            _ => userlib::sys::yield_now(),
        }
    }
    false
}

/// Restarts of every task but `index`, added up.
fn restarts_of_others(tasks: Cap<Task>, index: usize) -> u32 {
    (0..32).filter(|&i| i != index).filter_map(|i| tasks.info(i).ok()).map(|t| t.restarts).sum()
}

#[derive(Default)]
struct Tally {
    injected: u32,
    manifested: u32,
    recovered: u32,
    errors: u32,
    lost: u32,
}

/// Run a campaign of `count` faults against task `name`. Returns false if it could not run.
pub fn run(
    tasks: Cap<Task>,
    fs_ep: Option<Cap<Endpoint>>,
    timer_ep: Option<Cap<Endpoint>>,
    name: &str,
    count: u32,
    seed: u64,
) -> bool {
    let Some(index) = tasks.find(name) else {
        println!("error: campaign: no task named '{}'", name);
        return false;
    };
    let work = match name {
        "fs" | "ramdisk" => fs_ep.and_then(|ep| Fs::connect(ep, FS_SLOT).ok()).map(|fs| {
            Work::file(fs).map_err(|e| println!("error: campaign: setting up the file workload: {}", e))
        }),
        "timer" => {
            timer_ep.and_then(|ep| Timer::connect(ep, TIMER_SLOT).ok()).map(|timer| Ok(Work::Clock { timer }))
        }
        _ => {
            println!("error: campaign: no checked workload for '{}' (try fs, ramdisk or timer)", name);
            return false;
        }
    };
    let Some(Ok(mut work)) = work else {
        println!("error: campaign: cannot open a session with the server under test");
        let _ = (cap_delete(FS_SLOT), cap_delete(TIMER_SLOT));
        return false;
    };
    println!(
        "campaign {}: {} faults, seed {}, {} workload steps watched after each",
        name, count, seed, WINDOW
    );
    let others_before = restarts_of_others(tasks, index);
    let mut rng = Rng(seed);
    let mut t = Tally::default();
    let progress = (count / 10).max(1);
    let mut attempts = 0;
    while t.injected < count && attempts < count * 4 {
        attempts += 1;
        // A random moment: a few workload steps first (their effects count for the last fault).
        for _ in 0..rng.below(3) {
            work.step(&mut rng);
        }
        if !wait_running(tasks, index) {
            println!("campaign {}: {} is halted; stopping early", name, name);
            break;
        }
        let kind = InjectKind::ALL[rng.below(InjectKind::ALL.len() as u64) as usize];
        let (_, restarts_before) = state(tasks, index);
        let what = match tasks.inject(index, kind, rng.next()) {
            Ok(w) => w,
            // Nothing to hit (e.g. no session to corrupt): not an injected fault; pick again.
            Err(_) => continue,
        };
        t.injected += 1;
        let mut seen = Seen::default();
        for _ in 0..WINDOW {
            let s = work.step(&mut rng);
            seen.errors += s.errors;
            seen.wrong += s.wrong;
        }
        let (st, restarts_after) = state(tasks, index);
        let crashed = restarts_after > restarts_before || st.is_some_and(|s| s.is_stopped());
        wait_running(tasks, index);
        let verdict = if seen.wrong > 0 {
            "lost"
        } else if seen.errors > 0 {
            "error"
        } else if crashed {
            "recovered"
        } else {
            "benign"
        };
        if crashed || seen.errors > 0 || seen.wrong > 0 {
            t.manifested += 1;
            if seen.errors == 0 && seen.wrong == 0 {
                t.recovered += 1;
            }
        }
        if seen.errors > 0 {
            t.errors += 1;
        }
        t.lost += seen.wrong;
        println!("fault {}: {} {:#x} -> {}", t.injected, kind.name(), what, verdict);
        if t.injected % progress == 0 {
            println!(
                "campaign {}: {}/{} injected, {} manifested, {} recovered",
                name, t.injected, count, t.manifested, t.recovered
            );
        }
    }
    let end = work.verify_all();
    // Faults must stay inside the server they were injected into.
    let others = restarts_of_others(tasks, index).saturating_sub(others_before);
    println!("campaign {}: other tasks restarted {} times during the campaign", name, others);
    t.lost += end.wrong;
    let _ = (cap_delete(FS_SLOT), cap_delete(TIMER_SLOT));
    println!(
        "campaign {}: injected={} manifested={} recovered={} errors={} lost={} panics=0",
        name, t.injected, t.manifested, t.recovered, t.errors, t.lost
    );
    true
}
