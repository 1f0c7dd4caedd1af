//! Live update, written once for both personalities: when an update may roll back, which
//! versions may follow which, and the kernel's words for what happened.
//!
//! ```text
//!  update NAME IMAGE [WINDOW]
//!     server waits for a request, no update of it in its window ─► else Busy
//!     the new version reads every layout its clients' states may be in ─► else Incompatible
//!     client states copied aside ─► new version starts behind the same endpoint ─► Updated
//!  the new version fails (fault, panic, hang, exit) before it answered WINDOW requests
//!     ─► states put back, old version starts again, the failed request delivered to it ─► RolledBack
//!  it answered WINDOW requests ─► the copies and the old version are dropped ─► KeptVersion
//! ```
//! The microkernel loads the new version from an ELF image a client hands it; the libos
//! switches its task to a version staged in its image. Both print these lines.

/// Requests a new version answers before its update is kept, unless the command says.
pub const DEFAULT_WINDOW: u32 = 8;
/// The largest window a command may ask for.
pub const MAX_WINDOW: u32 = 1000;
/// How long a shell retries an update refused as busy before it gives up.
pub const BUSY_DEADLINE_MS: u64 = 2000;

/// The rollback window of one update: it began when the server had answered `base` requests
/// (counted by the kernel, over every incarnation or per incarnation: the caller's count, the
/// same both times) and lasts `requests` answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub base: u64,
    pub requests: u32,
}

impl Window {
    /// Answers still to give before the update is kept (0: it is).
    pub fn left(&self, answered: u64) -> u32 {
        (self.requests as u64).saturating_sub(answered.saturating_sub(self.base)) as u32
    }

    /// The new version has answered every request of the window: keep it.
    pub fn passed(&self, answered: u64) -> bool {
        self.left(answered) == 0
    }
}

/// Whether a version that reads `reads` (layouts, in the personality's numbering) can take over
/// client states that may be in any of `present`: the first layout of `present` it cannot read.
pub fn unreadable(reads: &[u32], present: impl IntoIterator<Item = u32>) -> Option<u32> {
    present.into_iter().find(|l| !reads.contains(l))
}

/// `fs (task 4) updated: version 1 -> 2 as generation 1; 2 client state(s) kept aside until it
/// has answered 8 request(s)`
pub struct Updated<'a> {
    pub server: &'a str,
    pub task: usize,
    pub from: u32,
    pub to: u32,
    pub generation: u32,
    pub states: usize,
    pub window: u32,
}

impl core::fmt::Display for Updated<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{} (task {}) updated: version {} -> {} as generation {}; {} client state(s) kept aside until it has answered {} request(s)",
            self.server, self.task, self.from, self.to, self.generation, self.states, self.window
        )
    }
}

/// `fs (task 4): the update to version 3 failed (panic) 49240672 TSC ticks after it; rolled back
/// to version 1 as generation 2: 1 of 2 client state(s) restored as they were, 1 request(s) to
/// deliver again`
pub struct RolledBack<'a> {
    pub server: &'a str,
    pub task: usize,
    /// The version that failed, and how.
    pub failed: u32,
    pub kind: crate::FaultKind,
    pub tsc: u64,
    /// The version back in service, as this generation.
    pub back_to: u32,
    pub generation: u32,
    /// Client states put back, of those copied aside.
    pub restored: usize,
    pub states: usize,
    pub redeliver: u32,
}

impl core::fmt::Display for RolledBack<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{} (task {}): the update to version {} failed ({}) {} TSC ticks after it; rolled back to version {} as generation {}: {} of {} client state(s) restored as they were, {} request(s) to deliver again",
            self.server,
            self.task,
            self.failed,
            self.kind.name(),
            self.tsc,
            self.back_to,
            self.generation,
            self.restored,
            self.states,
            self.redeliver
        )
    }
}

/// `fs (task 4): version 2 kept: it answered 8 request(s) in its update's window`
pub struct KeptVersion<'a> {
    pub server: &'a str,
    pub task: usize,
    pub version: u32,
    pub answered: u64,
}

impl core::fmt::Display for KeptVersion<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{} (task {}): version {} kept: it answered {} request(s) in its update's window",
            self.server, self.task, self.version, self.answered
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::string::ToString;

    #[test]
    fn a_window_counts_answers_from_its_start() {
        let w = Window { base: 100, requests: 8 };
        assert_eq!(w.left(100), 8);
        assert_eq!(w.left(107), 1);
        assert!(!w.passed(107));
        assert!(w.passed(108));
        assert!(w.passed(500));
        // A count that went back (a per-incarnation count after a restart) is a window not begun.
        assert_eq!(w.left(3), 8);
    }

    #[test]
    fn a_version_must_read_every_layout_present() {
        assert_eq!(unreadable(&[3, 4], [3, 4]), None);
        assert_eq!(unreadable(&[3], [3, 4]), Some(4));
        assert_eq!(unreadable(&[], []), None);
    }

    #[test]
    fn the_lines_read_the_same_on_both_personalities() {
        let u = Updated { server: "fs", task: 4, from: 1, to: 2, generation: 1, states: 2, window: 8 };
        assert_eq!(
            u.to_string(),
            "fs (task 4) updated: version 1 -> 2 as generation 1; 2 client state(s) kept aside until it has answered 8 request(s)"
        );
        let r = RolledBack {
            server: "fs",
            task: 4,
            failed: 3,
            kind: crate::FaultKind::Panic,
            tsc: 5,
            back_to: 1,
            generation: 2,
            restored: 1,
            states: 2,
            redeliver: 1,
        };
        assert_eq!(
            r.to_string(),
            "fs (task 4): the update to version 3 failed (panic) 5 TSC ticks after it; rolled back to version 1 as generation 2: 1 of 2 client state(s) restored as they were, 1 request(s) to deliver again"
        );
        let k = KeptVersion { server: "fs", task: 4, version: 2, answered: 8 };
        assert_eq!(
            k.to_string(),
            "fs (task 4): version 2 kept: it answered 8 request(s) in its update's window"
        );
    }
}
