//! The timer server's protocol and client stub: sleeps, and one alarm per session, whose
//! state lives in the session's Server State Region.
#![no_std]
#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};
use userlib::cap::{Cap, Endpoint, Session};

pub const LABEL: u32 = 0x71;

/// Longest sleep, alarm delay or alarm period the server accepts: one hour, as the libos timer
/// cell (`cell_timer::MAX_SLEEP_MS`). Longer ones get [`TimerError::TooLong`].
pub const MAX_SLEEP_MS: u32 = 3_600_000;

#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
pub enum Request {
    /// Milliseconds since the timer server first started.
    Now,
    /// Return after `ms` milliseconds.
    Sleep {
        ms: u32,
    },
    /// Arm this session's alarm `ms` from now, repeating every `period_ms` (0: once).
    SetAlarm {
        ms: u32,
        period_ms: u32,
    },
    /// Wait for the alarm; returns how many times it has fired so far.
    WaitAlarm,
    CancelAlarm,
    /// The sleeps this session has begun and the milliseconds they asked for, counted since
    /// the timer's version 2 first served the session; version 1 answers `Malformed`.
    Slept,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
pub enum Response {
    Now { ms: u64 },
    Done,
    Alarm { fired: u32 },
    Slept { sleeps: u32, ms: u64 },
    Error(TimerError),
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerError {
    NoAlarm,
    /// Too many clients are waiting at once.
    Busy,
    NoSession,
    /// This session's state failed its checks and was reset.
    StateReset,
    Malformed,
    Ipc(u8),
    /// A sleep or alarm longer than [`MAX_SLEEP_MS`].
    TooLong,
}

userlib::from_call_error!(TimerError);

impl core::fmt::Display for TimerError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            TimerError::NoAlarm => "no alarm set",
            TimerError::Busy => "too many waiting clients",
            TimerError::NoSession => "not called through a session",
            TimerError::StateReset => "session state was broken and has been reset",
            TimerError::Malformed => "malformed message",
            TimerError::Ipc(_) => "IPC failed",
            TimerError::TooLong => "longer than one hour (3600000 ms)",
        })
    }
}

/// A session with the timer server.
#[derive(Clone, Copy)]
pub struct Timer {
    session: Cap<Session>,
}

impl Timer {
    pub fn connect(ep: Cap<Endpoint>, slot: u8) -> Result<Self, TimerError> {
        ep.connect(slot).map(|session| Timer { session }).map_err(|e| TimerError::Ipc(e as u8))
    }

    fn call(&self, req: &Request) -> Result<Response, TimerError> {
        let mut reply = [0u8; 32];
        match self.session.call_encoded(LABEL, req, &mut reply)? {
            Response::Error(e) => Err(e),
            other => Ok(other),
        }
    }

    pub fn now_ms(&self) -> Result<u64, TimerError> {
        match self.call(&Request::Now)? {
            Response::Now { ms } => Ok(ms),
            _ => Err(TimerError::Malformed),
        }
    }

    pub fn sleep(&self, ms: u32) -> Result<(), TimerError> {
        self.call(&Request::Sleep { ms }).map(|_| ())
    }

    pub fn set_alarm(&self, ms: u32, period_ms: u32) -> Result<(), TimerError> {
        self.call(&Request::SetAlarm { ms, period_ms }).map(|_| ())
    }

    pub fn wait_alarm(&self) -> Result<u32, TimerError> {
        match self.call(&Request::WaitAlarm)? {
            Response::Alarm { fired } => Ok(fired),
            _ => Err(TimerError::Malformed),
        }
    }

    pub fn cancel_alarm(&self) -> Result<(), TimerError> {
        self.call(&Request::CancelAlarm).map(|_| ())
    }

    /// How many sleeps this session has begun and how many milliseconds they asked for in
    /// all, since the timer's version 2 first served it (`Malformed` from version 1).
    pub fn slept(&self) -> Result<(u32, u64), TimerError> {
        match self.call(&Request::Slept)? {
            Response::Slept { sleeps, ms } => Ok((sleeps, ms)),
            _ => Err(TimerError::Malformed),
        }
    }
}
