//! The recovery rules both personalities follow when a server fails.
//!
//! ```text
//!  a request the server had taken  ── first failure on it ──► delivered again to the next
//!                                                            incarnation (the caller waits)
//!                                  ── it fails again ───────► only that caller: ServerFailed
//!
//!  fault k of a server that answered nothing since its last restart (k = 1 otherwise):
//!     k = 1          restart at once
//!     k = 2, 3, 4    restart after 50, 100, 200 ms (back-off)
//!     k = 5          crash loop: hold it; its callers fail at once; `restart NAME` by hand
//!
//!  hung: running more than 1 s without a syscall (or without blocking, on the libos), or
//!        holding a request more than 2 s while not waiting for another server
//! ```
//! The microkernel's kernel applies the first rule and the hang predicate, its reincarnation
//! server the crash-loop rule; the libos kernel applies all three.

/// What becomes of a request its server had taken when the server failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Redelivery {
    /// Put the caller back at the front of the queue: the next incarnation gets the request.
    Again,
    /// Fail this call with `ServerFailed`.
    Fail,
}

impl Redelivery {
    /// `restarting`: the server will come back (it is supervised and someone restarts it);
    /// `delivered_again`: this request already went to a new incarnation once, and failed it.
    pub fn decide(restarting: bool, delivered_again: bool) -> Redelivery {
        if restarting && !delivered_again {
            Redelivery::Again
        } else {
            Redelivery::Fail
        }
    }
}

/// Faults in a row without a single answered request that make a crash loop: the next one
/// holds the server.
pub const LOOP_LIMIT: u32 = 4;
/// The first back-off; it doubles with each further fault in a row.
pub const BACKOFF_MS: u64 = 50;

/// What to do with a server that just failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Start the next incarnation after `delay_ms` (0: at once). `streak` is how many faults in
    /// a row this one makes.
    Restart { delay_ms: u64, streak: u32 },
    /// A crash loop: stop it for good (until restarted by hand) after `streak` faults in a row.
    Hold { streak: u32 },
}

/// A server's recent faults: the policy history behind [`Verdict`]. The supervisor keeps one
/// per server; it is rebuilt from nothing if the supervisor itself restarts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CrashLoop {
    streak: u32,
}

impl CrashLoop {
    pub const fn new() -> Self {
        CrashLoop { streak: 0 }
    }

    /// The server failed; `answered` says whether the incarnation that failed answered at least
    /// one request. A fault after an answer starts a new streak.
    pub fn fault(&mut self, answered: bool) -> Verdict {
        self.streak = if !answered && self.streak > 0 { self.streak + 1 } else { 1 };
        match self.streak {
            s if s > LOOP_LIMIT => Verdict::Hold { streak: s },
            1 => Verdict::Restart { delay_ms: 0, streak: 1 },
            s => Verdict::Restart { delay_ms: BACKOFF_MS << (s - 2), streak: s },
        }
    }

    /// Restarted by hand (or answered a request): the next fault starts a new streak.
    pub fn reset(&mut self) {
        self.streak = 0;
    }

    pub fn streak(&self) -> u32 {
        self.streak
    }
}

/// The line a supervisor prints for its decision, in the same words on both personalities:
///
/// ```text
/// fs gen 3: page fault (#PF) at 0x40001234; restarting as gen 4 after 50 ms; 1 caller(s) suspended, 0 failed
/// bench gen 4: killed; 5 faults in a row without answering a request: crash loop, holding bench
/// ```
/// `what` is the fault in the personality's words (the exception and where, `killed`, ...).
pub struct Decision<'a, W: core::fmt::Display> {
    pub server: &'a str,
    /// The generation that failed.
    pub generation: u32,
    pub what: W,
    pub verdict: Verdict,
    /// Callers whose request goes to the next incarnation, and callers that got `ServerFailed`.
    pub suspended: u32,
    pub failed: u32,
}

impl<W: core::fmt::Display> core::fmt::Display for Decision<'_, W> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} gen {}: {}; ", self.server, self.generation, self.what)?;
        match self.verdict {
            Verdict::Restart { delay_ms, .. } => {
                write!(f, "restarting as gen {}", self.generation + 1)?;
                if delay_ms > 0 {
                    write!(f, " after {delay_ms} ms")?;
                }
                write!(f, "; {} caller(s) suspended, {} failed", self.suspended, self.failed)
            }
            Verdict::Hold { streak } => write!(
                f,
                "{streak} faults in a row without answering a request: crash loop, holding {}",
                self.server
            ),
        }
    }
}

/// How long a server may run without a syscall (microkernel) or without blocking or yielding
/// (libos) before it is hung.
pub const SPIN_LIMIT_MS: u64 = 1000;
/// How long a server may hold a request it took without answering it, while it waits for
/// nothing but new work (so the answer was lost), before it is hung.
pub const REQUEST_LIMIT_MS: u64 = 2000;

/// Why a server counts as hung.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hang {
    /// It ran this long without a syscall (or without blocking).
    Spinning { ms: u64 },
    /// It held a request this long without answering it or passing it on.
    Request { ms: u64 },
}

impl Hang {
    /// `ran_ms`: time it has run since its last syscall (or since it last blocked).
    pub fn spinning(ran_ms: u64) -> Option<Hang> {
        (ran_ms > SPIN_LIMIT_MS).then_some(Hang::Spinning { ms: ran_ms })
    }

    /// `held_ms`: how long ago it took the request it must answer now; `waiting_on_server`:
    /// it waits for another server's answer (which takes the blame if anyone does).
    pub fn request(held_ms: u64, waiting_on_server: bool) -> Option<Hang> {
        (held_ms > REQUEST_LIMIT_MS && !waiting_on_server).then_some(Hang::Request { ms: held_ms })
    }
}

impl core::fmt::Display for Hang {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Hang::Spinning { ms } => write!(f, "ran {ms} ms without a syscall or blocking"),
            Hang::Request { ms } => {
                write!(f, "held a request {ms} ms without answering it or waiting on another server")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_delivered_again_once() {
        assert_eq!(Redelivery::decide(true, false), Redelivery::Again);
        assert_eq!(Redelivery::decide(true, true), Redelivery::Fail);
        assert_eq!(Redelivery::decide(false, false), Redelivery::Fail, "nobody will serve it");
    }

    #[test]
    fn a_crash_loop_backs_off_then_holds() {
        let mut c = CrashLoop::new();
        let delays: [Verdict; 5] = core::array::from_fn(|_| c.fault(false));
        assert_eq!(
            delays,
            [
                Verdict::Restart { delay_ms: 0, streak: 1 },
                Verdict::Restart { delay_ms: 50, streak: 2 },
                Verdict::Restart { delay_ms: 100, streak: 3 },
                Verdict::Restart { delay_ms: 200, streak: 4 },
                Verdict::Hold { streak: 5 },
            ]
        );
    }

    #[test]
    fn an_answer_or_a_reset_ends_the_streak() {
        let mut c = CrashLoop::new();
        c.fault(false);
        c.fault(false);
        assert_eq!(c.fault(true), Verdict::Restart { delay_ms: 0, streak: 1 }, "it answered");
        c.fault(false);
        c.reset();
        assert_eq!(c.fault(false), Verdict::Restart { delay_ms: 0, streak: 1 }, "restarted by hand");
        // A first fault without answers is not a loop yet.
        assert_eq!(CrashLoop::new().fault(false), Verdict::Restart { delay_ms: 0, streak: 1 });
    }

    #[test]
    fn decisions_read_the_same_on_both_personalities() {
        extern crate std;
        use std::string::ToString;
        let d = |verdict| Decision {
            server: "fs",
            generation: 3,
            what: "killed",
            verdict,
            suspended: 1,
            failed: 0,
        };
        assert_eq!(
            d(Verdict::Restart { delay_ms: 0, streak: 1 }).to_string(),
            "fs gen 3: killed; restarting as gen 4; 1 caller(s) suspended, 0 failed"
        );
        assert_eq!(
            d(Verdict::Restart { delay_ms: 50, streak: 2 }).to_string(),
            "fs gen 3: killed; restarting as gen 4 after 50 ms; 1 caller(s) suspended, 0 failed"
        );
        assert_eq!(
            d(Verdict::Hold { streak: 5 }).to_string(),
            "fs gen 3: killed; 5 faults in a row without answering a request: crash loop, holding fs"
        );
    }

    #[test]
    fn hangs_need_the_limit_passed() {
        assert_eq!(Hang::spinning(SPIN_LIMIT_MS), None);
        assert_eq!(Hang::spinning(SPIN_LIMIT_MS + 1), Some(Hang::Spinning { ms: SPIN_LIMIT_MS + 1 }));
        assert_eq!(Hang::request(REQUEST_LIMIT_MS + 5, true), None, "another server has it");
        assert_eq!(Hang::request(REQUEST_LIMIT_MS, false), None);
        assert!(Hang::request(REQUEST_LIMIT_MS + 1, false).is_some());
    }
}
