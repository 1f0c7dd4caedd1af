//! Fault-injection campaigns, written once for both personalities: a checked workload runs
//! against one server while faults are injected into it at random moments, from outside.
//!
//! The workload keeps its own model of what it was told is written and checks every read
//! against it. After each fault it runs a few more steps and classifies the fault:
//!
//! ```text
//!  benign      no visible effect
//!  recovered   the server crashed, hung or was restarted, and the client saw no error and
//!              no wrong data (its calls were suspended, or retried, and delivered again)
//!  error       the client got a clear error for some request
//!  lost        data the client had been told was written was missing or wrong
//! ```
//! It ends with one line: `campaign NAME: injected=N manifested=M recovered=R errors=E lost=L
//! panics=P` (a kernel panic would have ended the run, so a printed line says 0; the host tool
//! `cargo os campaign` reports a panic itself). [`Summary`] writes that line here and parses it
//! in the host tool, so both read it the same way; so does [`Note`] for the lines that say what
//! the workload saw and when (`campaign: fault 12: ERROR: ...`, see [`note`]). The host also
//! parses the `fault N: KIND WHAT -> VERDICT` lines: keep them as they are.
//!
//! Each shell plugs its personality in through the traits in [`personality`]:
//!
//! ```text
//!   microkernel shell ──┐                      ┌── Console   println
//!                       ├─ campaign::run ──────┼── Target    inject, status, wait_running
//!   libos shell cell ───┘   (this crate)       ├── Files     the fs client the workload uses
//!                                              └── Clock     the timer client
//! ```
//! A seed fixes the whole run: the same seed picks the same moments, kinds and targets of
//! faults on either personality, as long as the workload sees the same answers.
#![no_std]
#![forbid(unsafe_code)]

pub mod note;
pub mod personality;
mod run;
pub mod scribe;
mod summary;
mod workload;

pub use note::{Note, Phase, Problem};
pub use personality::{Clock, Console, Files, Shell, Status, Target};
pub use run::{run, Ended};
/// The checked workloads, for other drivers of a server than a campaign (the shell's `audit`).
pub use workload::{Records, Seen, Sleeps};

/// Most faults one campaign injects (the shell's `campaign` and `cargo os campaign` refuse more).
pub const MAX_FAULTS: u32 = 100_000;
pub use summary::{Summary, SummaryError, SERVER_LEN};

#[cfg(test)]
mod tests;
