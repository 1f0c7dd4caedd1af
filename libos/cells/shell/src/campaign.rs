//! Fault-injection campaigns: a checked workload against one cell while faults are injected
//! into its task at random moments, from outside, through the core's injector. The same
//! classification and output lines as the microkernel shell's campaign:
//!
//! ```text
//!  benign      no visible effect
//!  recovered   the task crashed, hung or was restarted, and the client saw no error and
//!              no wrong data (its calls were retried against the next generation)
//!  error       the client got a clear error for some request
//!  lost        data the client had been told was written was missing or wrong
//! ```
//! It ends with `campaign NAME: injected=N manifested=M recovered=R errors=E lost=L panics=P`
//! (a core panic stops the machine before this line, so a printed line says 0; the host tool
//! reports a panic itself).

use crate::Wiring;
use cell_console::Console;
use cell_fs::{mode, Fs};
use cell_timer::Timer;
use core::fmt::Write;
use fs_core::FsError;
use libos_core::inject::Kind;
use libos_core::task::{self, State, MAX_TASKS};
use libos_logic::rng::Rng;

const RECORDS: usize = 32;
const RECORD: usize = 16;
/// Workload steps watched after each fault.
const WINDOW: u32 = 4;

#[derive(Default, Clone, Copy)]
struct Seen {
    errors: u32,
    wrong: u32,
}

// One value per campaign, on the stack.
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
    fn file(mut fs: Fs) -> Result<Work, FsError> {
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

    /// Check record `i` against the model. A record found wrong is counted once: it is then
    /// unknown until rewritten, so one loss is not reported again by every later check.
    fn check(con: &Console, fs: &mut Fs, fd: u32, i: usize, want: u64, known: &mut bool, seen: &mut Seen) {
        let mut got = [0u8; RECORD];
        let read = fs.seek(fd, (i * RECORD) as u32).and_then(|_| fs.read(fd, &mut got));
        match read {
            Ok(RECORD) if got == record(want) => {}
            Ok(_) => {
                seen.wrong += 1;
                *known = false;
                let _ = writeln!(&*con, "campaign: LOST: record {} differs from what was acknowledged", i);
            }
            Err(_) => seen.errors += 1,
        }
    }

    fn step(&mut self, con: &Console, rng: &mut Rng) -> Seen {
        let mut seen = Seen::default();
        match self {
            Work::File { fs, fd, model, known } => {
                let i = rng.below(RECORDS as u64) as usize;
                if rng.below(2) == 0 {
                    let v = rng.next_u64();
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
                                if let Ok(new) = fs.open("/campaign/data", mode::READ | mode::WRITE) {
                                    *fd = new;
                                }
                            }
                        }
                    }
                } else if known[i] {
                    Self::check(con, fs, *fd, i, model[i], &mut known[i], &mut seen);
                }
            }
            Work::Clock { timer } => {
                let ms = 1 + rng.below(8) as u32;
                match (timer.now_ms(), timer.sleep(ms), timer.now_ms()) {
                    (Ok(t0), Ok(()), Ok(t1)) if t1 >= t0 + ms as u64 => {}
                    (Ok(_), Ok(()), Ok(_)) => {
                        seen.wrong += 1;
                        let _ = writeln!(&*con, "campaign: WRONG: a {} ms sleep returned early", ms);
                    }
                    _ => seen.errors += 1,
                }
            }
        }
        seen
    }

    fn verify_all(&mut self, con: &Console) -> Seen {
        let mut seen = Seen::default();
        if let Work::File { fs, fd, model, known } = self {
            for i in 0..RECORDS {
                if known[i] {
                    Self::check(con, fs, *fd, i, model[i], &mut known[i], &mut seen);
                }
            }
        }
        seen
    }
}

fn state(index: usize) -> (Option<State>, u32) {
    task::info(index).map(|t| (Some(t.state), t.restarts)).unwrap_or((None, 0))
}

/// Wait until the target can serve again. False if it is halted or gone.
fn wait_running(index: usize) -> bool {
    task::wait_ready(index).is_some()
        || !matches!(state(index).0, Some(State::Halted) | Some(State::Dead) | None)
}

fn restarts_of_others(index: usize) -> u32 {
    (0..MAX_TASKS).filter(|&i| i != index).filter_map(task::info).map(|t| t.restarts).sum()
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
pub fn run(con: &Console, w: &Wiring, name: &str, count: u32, seed: u64) -> bool {
    let Some(index) = task::find(name) else {
        let _ = writeln!(&*con, "error: campaign: no task named '{}'", name);
        return false;
    };
    let work = match name {
        "fs" | "ramdisk" => match Fs::connect(w.fs).and_then(Work::file) {
            Ok(work) => work,
            Err(e) => {
                let _ = writeln!(&*con, "error: campaign: setting up the file workload: {}", e);
                return false;
            }
        },
        "timer" => Work::Clock { timer: Timer(w.timer) },
        _ => {
            let _ = writeln!(
                &*con,
                "error: campaign: no checked workload for '{}' (try fs, ramdisk or timer)",
                name
            );
            return false;
        }
    };
    let mut work = work;
    let _ = writeln!(
        &*con,
        "campaign {}: {} faults, seed {}, {} workload steps watched after each",
        name, count, seed, WINDOW
    );
    let others_before = restarts_of_others(index);
    let mut rng = Rng(seed);
    let mut t = Tally::default();
    let progress = (count / 10).max(1);
    let mut attempts = 0;
    while t.injected < count && attempts < count * 4 {
        attempts += 1;
        for _ in 0..rng.below(3) {
            work.step(con, &mut rng);
        }
        if !wait_running(index) {
            let _ = writeln!(&*con, "campaign {}: {} is halted; stopping early", name, name);
            break;
        }
        let kind = Kind::ALL[rng.below(Kind::ALL.len() as u64) as usize];
        let (_, restarts_before) = state(index);
        con.flush();
        let what = match libos_core::inject::inject(index, kind, rng.next_u64()) {
            Ok(w) => w,
            // Nothing to hit (e.g. no client-held state for this cell): pick again.
            Err(_) => continue,
        };
        t.injected += 1;
        let mut seen = Seen::default();
        for _ in 0..WINDOW {
            let s = work.step(con, &mut rng);
            seen.errors += s.errors;
            seen.wrong += s.wrong;
        }
        let (st, restarts_after) = state(index);
        let crashed =
            restarts_after > restarts_before || matches!(st, Some(State::Halted) | Some(State::Dead));
        wait_running(index);
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
        let _ = writeln!(&*con, "fault {}: {} {:#x} -> {}", t.injected, kind.name(), what, verdict);
        if t.injected % progress == 0 {
            let _ = writeln!(
                &*con,
                "campaign {}: {}/{} injected, {} manifested, {} recovered",
                name, t.injected, count, t.manifested, t.recovered
            );
        }
    }
    let end = work.verify_all(con);
    let others = restarts_of_others(index).saturating_sub(others_before);
    let _ = writeln!(&*con, "campaign {}: other tasks restarted {} times during the campaign", name, others);
    t.lost += end.wrong;
    let _ = writeln!(
        &*con,
        "campaign {}: injected={} manifested={} recovered={} errors={} lost={} panics=0",
        name, t.injected, t.manifested, t.recovered, t.errors, t.lost
    );
    true
}
