//! The lines a campaign prints about what its workload saw, each saying when it was seen, so
//! the host tool can file it under the fault it belongs to:
//!
//! ```text
//!  campaign: fault 12: ERROR: write of record 5: server failed
//!            ───┬────  ──┬──  ─────────────┬──────────────────
//!              when     what               the details
//! ```
//! *When* is `fault N` (the steps watched after fault N, which decide its verdict), `before
//! fault N` (the steps at a random moment before fault N is injected: late effects of earlier
//! faults, which count for no fault's verdict), or `final check` (the reading of every record
//! at the end). *What* is one of [`Problem`]. [`Note`] writes these lines (through a
//! [`Console`] that adds the prefix) and reads them back in the host tool.

use crate::personality::Console;
use core::fmt;

/// Where in the campaign a workload step ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// At the random moment before fault `.0` is injected.
    Before(u32),
    /// In the window after fault `.0`, which decides its verdict.
    Fault(u32),
    /// The check of everything the model knows, at the end.
    FinalCheck,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Phase::Before(n) => write!(f, "before fault {n}"),
            Phase::Fault(n) => write!(f, "fault {n}"),
            Phase::FinalCheck => f.write_str("final check"),
        }
    }
}

/// What a note reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    /// A request got a clear error (counted in `errors`, once per fault).
    Error,
    /// A record read back differs from what was acknowledged (counted in `lost`).
    Lost,
    /// A sleep ended early (counted in `lost`).
    Wrong,
    /// Tasks other than the target were restarted (faults must stay inside the target).
    Restarts,
}

impl Problem {
    const ALL: [Problem; 4] = [Problem::Error, Problem::Lost, Problem::Wrong, Problem::Restarts];

    pub fn name(self) -> &'static str {
        match self {
            Problem::Error => "ERROR",
            Problem::Lost => "LOST",
            Problem::Wrong => "WRONG",
            Problem::Restarts => "RESTARTS",
        }
    }
}

/// One note, as printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Note<'a> {
    pub phase: Phase,
    pub problem: Problem,
    pub text: &'a str,
}

impl<'a> Note<'a> {
    /// The note `line` is, if it is one.
    pub fn parse(line: &'a str) -> Option<Note<'a>> {
        let rest = line.strip_prefix("campaign: ")?;
        let (phase, rest) = rest.split_once(": ")?;
        let phase = match phase {
            "final check" => Phase::FinalCheck,
            p => match p.strip_prefix("before fault ") {
                Some(n) => Phase::Before(number(n)?),
                None => Phase::Fault(number(p.strip_prefix("fault ")?)?),
            },
        };
        let (problem, text) = rest.split_once(": ")?;
        let problem = Problem::ALL.into_iter().find(|p| p.name() == problem)?;
        Some(Note { phase, problem, text })
    }
}

impl fmt::Display for Note<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "campaign: {}: {}: {}", self.phase, self.problem.name(), self.text)
    }
}

/// Digits only: a printed count never has a sign.
fn number(s: &str) -> Option<u32> {
    s.bytes().all(|b| b.is_ascii_digit()).then(|| s.parse().ok())?
}

/// A console for the workload: each line it prints becomes a note of `phase`.
pub struct Noting<'a, C> {
    pub out: &'a mut C,
    pub phase: Phase,
}

impl<'a, C: Console> Noting<'a, C> {
    /// Print a note of `problem`.
    pub fn note(&mut self, problem: Problem, text: fmt::Arguments<'_>) {
        let phase = self.phase;
        self.out.println(format_args!("campaign: {}: {}: {}", phase, problem.name(), text));
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use std::string::ToString;

    #[test]
    fn notes_round_trip() {
        let notes = [
            (Phase::Fault(12), Problem::Error, "write of record 5: server failed"),
            (Phase::Before(1), Problem::Lost, "record 0 differs from what was acknowledged"),
            (Phase::FinalCheck, Problem::Wrong, "a 3 ms sleep returned early"),
            (Phase::Fault(4_000_000_000), Problem::Restarts, "other tasks restarted 2 times"),
        ];
        for (phase, problem, text) in notes {
            let note = Note { phase, problem, text };
            let line = note.to_string();
            assert_eq!(Note::parse(&line), Some(note), "{line}");
        }
        let line = "campaign: fault 12: ERROR: write of record 5: bad: worse";
        assert_eq!(Note::parse(line).map(|n| n.text), Some("write of record 5: bad: worse"));
    }

    #[test]
    fn other_lines_are_no_notes() {
        for line in [
            "fault 3: kill 0x0 -> recovered",
            "campaign fs: injected=1 manifested=1 recovered=1 errors=0 lost=0 panics=0",
            "campaign fs: 10/100 injected, 4 manifested, 4 recovered",
            "campaign: fault x: ERROR: y",
            "campaign: fault +1: ERROR: y",
            "campaign: after fault 1: ERROR: y",
            "campaign: fault 1: OOPS: y",
            "campaign: fault 1: ERROR",
        ] {
            assert_eq!(Note::parse(line), None, "{line}");
        }
    }
}
