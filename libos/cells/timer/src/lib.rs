//! The timer cell: the clock (milliseconds since boot, from the kernel's 1 kHz tick) and sleeps.
//!
//! A sleep is state-spill free: the timer answers at once with the deadline, and the client's
//! stub waits for it in the kernel's scheduler. A timer that dies while a client sleeps loses
//! nothing — it never held the sleeper.
#![no_std]
#![forbid(unsafe_code)]

use libos_kernel::{CallError, Endpoint};

/// Longest sleep accepted (one hour).
pub const MAX_SLEEP_MS: u32 = 3_600_000;

#[derive(Clone, Copy)]
pub enum Request {
    Now,
    Sleep { ms: u32 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Response {
    Now(u64),
    Until(u64),
    TooLong,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerError {
    TooLong,
    ServerFailed,
    Protocol,
}

impl core::fmt::Display for TimerError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            TimerError::TooLong => "longer than one hour (3600000 ms)",
            TimerError::ServerFailed => "timer server failed",
            TimerError::Protocol => "unexpected answer",
        })
    }
}

impl From<CallError> for TimerError {
    fn from(_: CallError) -> Self {
        TimerError::ServerFailed
    }
}

pub type Ep = Endpoint<Request, Response>;

pub fn start() -> Option<Ep> {
    let ep = Ep::create("timer")?;
    libos_kernel::spawn("timer", 5, true, move || loop {
        let (token, req) = ep.recv();
        let now = libos_kernel::ticks();
        let resp = match req {
            Request::Now => Response::Now(now),
            Request::Sleep { ms } if ms <= MAX_SLEEP_MS => Response::Until(deadline(now, ms)),
            Request::Sleep { .. } => Response::TooLong,
        };
        let _ = ep.reply(token, resp);
    })
    .ok()?;
    Some(ep)
}

/// A client of the timer.
#[derive(Clone, Copy)]
pub struct Timer(pub Ep);

impl Timer {
    pub fn now_ms(&self) -> Result<u64, TimerError> {
        match self.0.call(&Request::Now)? {
            Response::Now(t) => Ok(t),
            _ => Err(TimerError::Protocol),
        }
    }

    pub fn sleep(&self, ms: u32) -> Result<(), TimerError> {
        match self.0.call(&Request::Sleep { ms })? {
            // The answer is checked before we wait on it: a timer that computed a wrong deadline
            // must not put its client to sleep for ever.
            Response::Until(deadline) if deadline <= libos_kernel::ticks() + ms as u64 => {
                libos_kernel::sleep_until(deadline);
                Ok(())
            }
            Response::Until(_) => Err(TimerError::Protocol),
            Response::TooLong => Err(TimerError::TooLong),
            Response::Now(_) => Err(TimerError::Protocol),
        }
    }
}

/// The tick at which a sleep of `ms` started at `now` ends (a plain cell function).
#[inline(never)]
pub fn deadline(now: u64, ms: u32) -> u64 {
    now + ms as u64
}

const LAP_KEY: u64 = 0x7469_6d65_725f_6c61;

/// A lap counter the client holds and the timer cell checks and advances: a cell call with
/// client-held state, without a task switch.
#[derive(Clone, Copy, Debug)]
pub struct Lap {
    count: u64,
    seal: u64,
}

impl Default for Lap {
    fn default() -> Self {
        Lap { count: 0, seal: algo::seal::seal(LAP_KEY, &0u64.to_le_bytes()) }
    }
}

impl Lap {
    pub fn count(&self) -> u64 {
        self.count
    }
}

/// Check the lap's seal, count one more, seal again.
#[inline(never)]
pub fn lap(l: Lap) -> Result<Lap, TimerError> {
    if l.seal != algo::seal::seal(LAP_KEY, &l.count.to_le_bytes()) {
        return Err(TimerError::Protocol);
    }
    let count = l.count + 1;
    Ok(Lap { count, seal: algo::seal::seal(LAP_KEY, &count.to_le_bytes()) })
}
