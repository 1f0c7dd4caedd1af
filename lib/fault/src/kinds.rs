//! The two vocabularies of faults: why a task stopped ([`FaultKind`]) and what the injector can
//! do to a task from outside ([`InjectKind`]). Both personalities print these names, and the
//! microkernel passes both across its syscall ABI by number.

/// Why a supervised task stopped.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// A CPU exception (the vector says which).
    Exception = 1,
    /// Its panic handler ended it.
    Panic = 2,
    /// It ran, or held a request, past the hang deadline (see [`crate::recovery::Hang`]).
    Hang = 3,
    /// Killed from outside (`kill NAME`, `inject NAME kill`).
    Killed = 4,
    /// It exited, which a server must never do.
    Exited = 5,
    /// It sent a message that is not a valid value of its type (the libos kernel checks the
    /// answers of checked endpoints before delivering them).
    Malformed = 6,
}

impl FaultKind {
    pub const ALL: [FaultKind; 6] = [
        FaultKind::Exception,
        FaultKind::Panic,
        FaultKind::Hang,
        FaultKind::Killed,
        FaultKind::Exited,
        FaultKind::Malformed,
    ];

    pub fn from_raw(raw: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|k| *k as u32 == raw)
    }

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Exception => "exception",
            FaultKind::Panic => "panic",
            FaultKind::Hang => "hang",
            FaultKind::Killed => "killed",
            FaultKind::Exited => "exited",
            FaultKind::Malformed => "malformed message",
        }
    }
}

/// Faults the injector can put into a task, from outside it (the task contains no hooks).
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InjectKind {
    /// Stop it now, as if it had crashed.
    Kill = 1,
    /// Flip one bit of one register, seen at its next run.
    RegFlip = 2,
    /// Flip one bit of a random word of its own writable memory.
    MemFlip = 3,
    /// Overwrite a random word of its own writable memory.
    MemWord = 4,
    /// Skip the instruction it would run next.
    Skip = 5,
    /// Make it spin for ever at its next run.
    Hang = 6,
    /// Corrupt a word of a client's state kept for it (an SSR, or a client-held session).
    Ssr = 7,
}

impl InjectKind {
    /// Every kind, in the order a campaign's seed picks from: the same on both personalities.
    pub const ALL: [InjectKind; 7] = [
        InjectKind::Kill,
        InjectKind::RegFlip,
        InjectKind::MemFlip,
        InjectKind::MemWord,
        InjectKind::Skip,
        InjectKind::Hang,
        InjectKind::Ssr,
    ];

    pub fn from_raw(raw: u64) -> Option<Self> {
        Self::ALL.into_iter().find(|k| *k as u64 == raw)
    }

    pub fn name(self) -> &'static str {
        match self {
            InjectKind::Kill => "kill",
            InjectKind::RegFlip => "regflip",
            InjectKind::MemFlip => "memflip",
            InjectKind::MemWord => "memword",
            InjectKind::Skip => "skip",
            InjectKind::Hang => "hang",
            InjectKind::Ssr => "ssr",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The kinds' names as the shells list them in usage and error lines.
    pub const NAMES: &'static str = "kill regflip memflip memword skip hang ssr";
}

/// A task's panic message as one line of a fault report. Rust's panic message is
/// `panicked at FILE:LINE:COL:` and the text on the next line; a report line must stay one line
/// (a console reader, person or test, takes a line that does not begin with `[` for a program's
/// output), so line breaks are written as ` | `.
pub struct OneLine<'a>(pub &'a str);

impl core::fmt::Display for OneLine<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut lines = self.0.lines().filter(|l| !l.trim().is_empty());
        if let Some(first) = lines.next() {
            f.write_str(first)?;
        }
        for l in lines {
            f.write_str(" | ")?;
            f.write_str(l)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_message_is_reported_on_one_line() {
        extern crate std;
        use std::string::ToString;
        let msg = "panicked at servers/fs/src/main.rs:307:9:\nfails on every request\n";
        assert_eq!(
            OneLine(msg).to_string(),
            "panicked at servers/fs/src/main.rs:307:9: | fails on every request"
        );
        assert_eq!(OneLine("one").to_string(), "one");
        assert_eq!(OneLine("").to_string(), "");
        assert_eq!(OneLine("a\r\n\nb").to_string(), "a | b");
    }

    #[test]
    fn kinds_round_trip_by_number_and_name() {
        for k in InjectKind::ALL {
            assert_eq!(InjectKind::from_raw(k as u64), Some(k));
            assert_eq!(InjectKind::parse(k.name()), Some(k));
        }
        assert_eq!(InjectKind::from_raw(0), None);
        assert_eq!(InjectKind::from_raw(8), None);
        assert_eq!(InjectKind::parse("nope"), None);
        let mut listed = InjectKind::NAMES.split(' ');
        assert!(InjectKind::ALL.into_iter().all(|k| listed.next() == Some(k.name())));
        assert_eq!(listed.next(), None);
        for k in FaultKind::ALL {
            assert_eq!(FaultKind::from_raw(k as u32), Some(k));
        }
        assert_eq!(FaultKind::from_raw(0), None);
        assert_eq!(FaultKind::from_raw(7), None);
    }
}
