//! The checked workloads: records in a file (fs, and the block store under it) and sleeps
//! measured against the clock (the timer). Each step draws from the campaign's generator, so
//! the order of draws here is part of what a seed means. Every error and wrong answer is
//! printed as a [`crate::note`] with its details.

use crate::note::{Noting, Problem};
use crate::personality::{Clock, Console, Files};
use algo::rng::Rng;
use fs_core::mode;

const RECORDS: usize = 32;
const RECORD: usize = 16;
const PATH: &str = "/campaign/data";

/// What one or more workload steps saw.
#[derive(Default, Clone, Copy)]
pub struct Seen {
    /// Requests that got a clear error.
    pub errors: u32,
    /// Answers that were wrong: data lost, or a sleep that ended early.
    pub wrong: u32,
}

impl Seen {
    pub fn add(&mut self, other: Seen) {
        self.errors += other.errors;
        self.wrong += other.wrong;
    }
}

// One value per campaign, on the stack: microkernel tasks have no heap to box the model into.
#[allow(clippy::large_enum_variant)]
pub enum Work<F, C> {
    File(Records<F>),
    Clock(Sleeps<C>),
}

impl<F: Files, C: Clock> Work<F, C> {
    pub fn step(&mut self, out: &mut Noting<'_, impl Console>, rng: &mut Rng) -> Seen {
        match self {
            Work::File(r) => r.step(out, rng),
            Work::Clock(s) => s.step(out, rng),
        }
    }

    /// Check everything the model knows (at the end).
    pub fn verify_all(&mut self, out: &mut Noting<'_, impl Console>) -> Seen {
        match self {
            Work::File(r) => r.verify_all(out),
            Work::Clock(_) => Seen::default(),
        }
    }
}

/// A record holds a value and its complement, so a torn or shifted record never reads as valid.
fn record(v: u64) -> [u8; RECORD] {
    let mut r = [0u8; RECORD];
    r[..8].copy_from_slice(&v.to_le_bytes());
    r[8..].copy_from_slice(&(!v).to_le_bytes());
    r
}

/// Fixed-size records in one file, and the model of what each should hold.
pub struct Records<F> {
    fs: F,
    path: &'static str,
    fd: u32,
    model: [u64; RECORDS],
    /// Records whose contents the model is sure of. A failed write may or may not have landed,
    /// and a record found wrong has been reported: either is unknown until rewritten.
    known: [bool; RECORDS],
}

impl<F: Files> Records<F> {
    /// Create the file and fill it with the model's first values.
    pub fn create(fs: F) -> Result<Self, F::Error> {
        Self::create_at(fs, PATH)
    }

    /// Like [`create`](Self::create), with the file at `path` (under `/campaign`): two
    /// clients of one server each keep their own.
    pub fn create_at(mut fs: F, path: &'static str) -> Result<Self, F::Error> {
        match fs.mkdir("/campaign") {
            Err(e) if !F::exists(&e) => return Err(e),
            _ => {}
        }
        let fd = fs.open(path, mode::READ | mode::WRITE | mode::CREATE | mode::TRUNCATE)?;
        let mut model = [0u64; RECORDS];
        for (i, m) in model.iter_mut().enumerate() {
            *m = i as u64 * 0x1_0001;
            fs.write(fd, &record(*m))?;
        }
        Ok(Records { fs, path, fd, model, known: [true; RECORDS] })
    }

    /// Rewrite or check one random record.
    pub fn step(&mut self, out: &mut Noting<'_, impl Console>, rng: &mut Rng) -> Seen {
        let i = rng.below(RECORDS as u64) as usize;
        if rng.below(2) == 0 {
            let v = rng.next_u64();
            self.write(out, i, v)
        } else if self.known[i] {
            self.check(out, i)
        } else {
            Seen::default()
        }
    }

    fn write(&mut self, out: &mut Noting<'_, impl Console>, i: usize, v: u64) -> Seen {
        let written =
            self.fs.seek(self.fd, (i * RECORD) as u32).and_then(|_| self.fs.write(self.fd, &record(v)));
        match written {
            Ok(()) => {
                self.model[i] = v;
                self.known[i] = true;
                Seen::default()
            }
            Err(e) => {
                self.known[i] = false;
                out.note(Problem::Error, format_args!("write of record {}: {}", i, e));
                if F::session_reset(&e) {
                    // Our open file went with the session state: open it again.
                    if let Ok(fd) = self.fs.open(self.path, mode::READ | mode::WRITE) {
                        self.fd = fd;
                    }
                }
                Seen { errors: 1, wrong: 0 }
            }
        }
    }

    /// Check record `i` against the model. A record found wrong is counted once: it is then
    /// unknown until rewritten, so one loss is not reported again by every later check.
    fn check(&mut self, out: &mut Noting<'_, impl Console>, i: usize) -> Seen {
        let mut got = [0u8; RECORD];
        let read = self.fs.seek(self.fd, (i * RECORD) as u32).and_then(|_| self.fs.read(self.fd, &mut got));
        match read {
            Ok(RECORD) if got == record(self.model[i]) => Seen::default(),
            Ok(_) => {
                self.known[i] = false;
                out.note(Problem::Lost, format_args!("record {} differs from what was acknowledged", i));
                Seen { errors: 0, wrong: 1 }
            }
            Err(e) => {
                out.note(Problem::Error, format_args!("read of record {}: {}", i, e));
                Seen { errors: 1, wrong: 0 }
            }
        }
    }

    pub fn verify_all(&mut self, out: &mut Noting<'_, impl Console>) -> Seen {
        let mut seen = Seen::default();
        for i in 0..RECORDS {
            if self.known[i] {
                seen.add(self.check(out, i));
            }
        }
        seen
    }
}

/// Short sleeps, each checked against the clock.
pub struct Sleeps<C>(pub C);

impl<C: Clock> Sleeps<C> {
    pub fn step(&mut self, out: &mut Noting<'_, impl Console>, rng: &mut Rng) -> Seen {
        let ms = 1 + rng.below(8) as u32;
        let clock = &mut self.0;
        match (clock.now_ms(), clock.sleep(ms), clock.now_ms()) {
            (Ok(t0), Ok(()), Ok(t1)) if t1 >= t0 + ms as u64 => Seen::default(),
            (Ok(_), Ok(()), Ok(_)) => {
                out.note(Problem::Wrong, format_args!("a {} ms sleep returned early", ms));
                Seen { errors: 0, wrong: 1 }
            }
            (Ok(_), Err(e), _) => {
                out.note(Problem::Error, format_args!("a {} ms sleep: {}", ms, e));
                Seen { errors: 1, wrong: 0 }
            }
            (Err(e), _, _) | (Ok(_), Ok(()), Err(e)) => {
                out.note(Problem::Error, format_args!("reading the clock: {}", e));
                Seen { errors: 1, wrong: 0 }
            }
        }
    }
}
