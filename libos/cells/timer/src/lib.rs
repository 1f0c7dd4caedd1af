//! The timer cell: the clock (milliseconds since boot, from the kernel's 1 kHz tick) and sleeps.
//!
//! A sleep is state-spill free: the timer answers at once with the deadline, and the client's
//! stub waits for it in the kernel's scheduler. A timer that dies while a client sleeps loses
//! nothing — it never held the sleeper.
#![no_std]
#![forbid(unsafe_code)]

use algo::clock;
use bytemuck::CheckedBitPattern;
use libos_kernel::{CallError, CheckedEndpoint};

/// Longest sleep accepted (one hour).
pub const MAX_SLEEP_MS: u32 = 3_600_000;

/// How often the client asks again when an answer fails its checks (a timer that faulted
/// while answering is usually right the next time).
const ATTEMPTS: u32 = 3;

// Checked on receipt (`CheckedEndpoint`): a corrupted discriminant is an error, not a jump.
#[derive(Clone, Copy, CheckedBitPattern)]
#[repr(u32)]
pub enum Request {
    Now,
    Sleep { ms: u32 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, CheckedBitPattern)]
#[repr(u32)]
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
    fn from(e: CallError) -> Self {
        match e {
            CallError::Malformed => TimerError::Protocol,
            _ => TimerError::ServerFailed,
        }
    }
}

pub type Ep = CheckedEndpoint<Request, Response>;

pub fn start() -> Option<Ep> {
    let ep = Ep::create("timer")?;
    libos_kernel::spawn("timer", 5, true, move || {
        // Requests are read where the kernel put them: no copy of one is left in this frame.
        let mut inbox = libos_kernel::Inbox::new();
        loop {
            ep.receive(&mut inbox);
            answer(&ep, &mut inbox);
        }
    })
    .ok()?;
    Some(ep)
}

/// Answer one request. Not inlined: its locals lie below the point where the loop waits for the
/// next request, so nothing of this one is left in the loop's frame (`audit timer` checks).
#[inline(never)]
fn answer(ep: &Ep, inbox: &mut libos_kernel::Inbox<Request>) {
    let Some((token, req)) = inbox.take() else { return };
    let now = libos_kernel::ticks();
    let resp = match *req {
        Request::Now => Response::Now(now),
        Request::Sleep { ms } if ms <= MAX_SLEEP_MS => Response::Until(deadline(now, ms)),
        Request::Sleep { .. } => Response::TooLong,
    };
    let _ = ep.reply(token, resp);
}

/// A client of the timer. It shares the clock with the timer (the kernel's tick), so it checks
/// every answer end to end against its own readings before it believes it: a timer that
/// faulted while answering (a flipped register, a skipped add) is asked again, and a sleep
/// never ends before the client's own start + `ms`.
#[derive(Clone, Copy)]
pub struct Timer(pub Ep);

impl Timer {
    /// The time now: an answer between our readings of the clock before and after the call.
    pub fn now_ms(&self) -> Result<u64, TimerError> {
        let mut last = TimerError::Protocol;
        for _ in 0..ATTEMPTS {
            let before = libos_kernel::ticks();
            match self.0.call(&Request::Now) {
                Ok(Response::Now(t)) if clock::plausible_now(before, t, libos_kernel::ticks()) => {
                    return Ok(t)
                }
                Ok(_) => last = TimerError::Protocol,
                Err(e) => last = e.into(),
            }
            if last == TimerError::ServerFailed {
                break;
            }
        }
        Err(last)
    }

    /// Sleep `ms` milliseconds, never fewer.
    pub fn sleep(&self, ms: u32) -> Result<(), TimerError> {
        let mut last = TimerError::Protocol;
        for _ in 0..ATTEMPTS {
            let start = libos_kernel::ticks();
            match self.0.call(&Request::Sleep { ms }) {
                // A deadline later than the latest one a correct timer could give is refused
                // (it must not put us to sleep for ever); one that is early is not slept on
                // alone: we wait at least until our own start + `ms`.
                Ok(Response::Until(deadline)) => {
                    match clock::sleep_end(start, ms, deadline, libos_kernel::ticks()) {
                        Some(end) => {
                            libos_kernel::sleep_until(end);
                            return Ok(());
                        }
                        None => last = TimerError::Protocol,
                    }
                }
                Ok(Response::TooLong) if ms > MAX_SLEEP_MS => return Err(TimerError::TooLong),
                Ok(_) => last = TimerError::Protocol,
                Err(e) => last = e.into(),
            }
            if last == TimerError::ServerFailed {
                break;
            }
        }
        Err(last)
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
        Lap { count: 0, seal: algo::seal::seal_word(LAP_KEY, 0) }
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
    if l.seal != algo::seal::seal_word(LAP_KEY, l.count) {
        return Err(TimerError::Protocol);
    }
    let count = l.count + 1;
    Ok(Lap { count, seal: algo::seal::seal_word(LAP_KEY, count) })
}
