//! A campaign's summary line, the one contract between the guest that prints it and the host
//! tool (`cargo os campaign`) that reads it back:
//!
//! ```text
//!  campaign fs: injected=100 manifested=41 recovered=38 errors=3 lost=0 panics=0
//!           ──  ─────────────────── counts, in this order, one space apart ──────────
//!           the server under test
//! ```
//! [`Summary`] writes it (`Display`) and reads it (`FromStr`), so the two sides cannot drift.
//! It holds the server's name inline ([`SERVER_LEN`] bytes, a task name's size): microkernel
//! tasks have no heap.

use core::fmt;
use core::str::FromStr;

/// The longest server name a summary holds: a task name's size (`axolotl_abi::task::NAME_LEN`).
pub const SERVER_LEN: usize = 16;

/// The counts in the order the line gives them.
const FIELDS: [&str; 6] = ["injected", "manifested", "recovered", "errors", "lost", "panics"];

/// What a campaign did to one server, as its summary line says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    server: heapless::String<SERVER_LEN>,
    /// Faults injected.
    pub injected: u32,
    /// Faults with a visible effect (every verdict but `benign`).
    pub manifested: u32,
    /// Faults the client never noticed although the server crashed or restarted.
    pub recovered: u32,
    /// Faults after which the client got a clear error.
    pub errors: u32,
    /// Wrong answers (records lost, sleeps cut short): one fault can lose several.
    pub lost: u32,
    /// Kernel panics: the guest never prints one (a panic ends the run), the host counts it.
    pub panics: u32,
}

/// Why a line is not a summary line, or a name cannot be a server's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SummaryError {
    /// The line does not start with `campaign NAME: `.
    NotASummary,
    /// The server's name is empty, longer than [`SERVER_LEN`] bytes, or holds a space or `:`.
    BadServer,
    /// The count `.0` is missing or out of its place (other `campaign NAME:` lines stop here).
    MissingField(&'static str),
    /// The count `.0` is not a whole number that fits in 32 bits.
    BadNumber(&'static str),
    /// Something follows the last count.
    TrailingText,
}

impl fmt::Display for SummaryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SummaryError::NotASummary => {
                f.write_str("not a summary line (one starts with 'campaign NAME: ')")
            }
            SummaryError::BadServer => {
                write!(f, "a server name has 1 to {SERVER_LEN} bytes and no space or ':'")
            }
            SummaryError::MissingField(name) => write!(f, "'{name}=' missing or out of order"),
            SummaryError::BadNumber(name) => write!(f, "'{name}=' is not a whole 32-bit number"),
            SummaryError::TrailingText => f.write_str("text after 'panics='"),
        }
    }
}

impl Summary {
    /// An empty summary of a campaign against `server`.
    pub fn new(server: &str) -> Result<Summary, SummaryError> {
        let bad = |c: char| c.is_whitespace() || c.is_control() || c == ':';
        if server.is_empty() || server.contains(bad) {
            return Err(SummaryError::BadServer);
        }
        let server = heapless::String::try_from(server).map_err(|_| SummaryError::BadServer)?;
        Ok(Summary { server, injected: 0, manifested: 0, recovered: 0, errors: 0, lost: 0, panics: 0 })
    }

    /// The server the campaign ran against.
    pub fn server(&self) -> &str {
        &self.server
    }

    fn counts(&self) -> [u32; 6] {
        [self.injected, self.manifested, self.recovered, self.errors, self.lost, self.panics]
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "campaign {}:", self.server)?;
        for (name, count) in FIELDS.iter().zip(self.counts()) {
            write!(f, " {name}={count}")?;
        }
        Ok(())
    }
}

impl FromStr for Summary {
    type Err = SummaryError;

    /// Exactly the line `Display` writes: nothing before or after it, one space between counts.
    fn from_str(line: &str) -> Result<Summary, SummaryError> {
        let rest = line.strip_prefix("campaign ").ok_or(SummaryError::NotASummary)?;
        let (server, mut rest) = rest.split_once(": ").ok_or(SummaryError::NotASummary)?;
        let summary = Summary::new(server)?;
        let mut counts = [0u32; 6];
        for (i, (name, count)) in FIELDS.iter().zip(counts.iter_mut()).enumerate() {
            if i > 0 {
                rest = rest.strip_prefix(' ').ok_or(SummaryError::MissingField(name))?;
            }
            rest = rest
                .strip_prefix(name)
                .and_then(|r| r.strip_prefix('='))
                .ok_or(SummaryError::MissingField(name))?;
            let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            // `u32::from_str` would take a leading '+': a written count never has one.
            *count = match digits {
                0 => return Err(SummaryError::BadNumber(name)),
                n => rest[..n].parse().map_err(|_| SummaryError::BadNumber(name))?,
            };
            rest = &rest[digits..];
        }
        if !rest.is_empty() {
            return Err(SummaryError::TrailingText);
        }
        let [injected, manifested, recovered, errors, lost, panics] = counts;
        Ok(Summary { injected, manifested, recovered, errors, lost, panics, ..summary })
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use std::string::ToString;

    const LINE: &str = "campaign fs: injected=100 manifested=41 recovered=38 errors=3 lost=0 panics=0";

    #[test]
    fn a_line_round_trips() {
        let s: Summary = LINE.parse().unwrap();
        assert_eq!(s.server(), "fs");
        assert_eq!(
            (s.injected, s.manifested, s.recovered, s.errors, s.lost, s.panics),
            (100, 41, 38, 3, 0, 0)
        );
        assert_eq!(s.to_string(), LINE);
    }

    #[test]
    fn a_summary_round_trips() {
        let mut s = Summary::new("ramdisk").unwrap();
        (s.injected, s.lost, s.panics) = (u32::MAX, 7, 1);
        let line = s.to_string();
        assert_eq!(
            line,
            "campaign ramdisk: injected=4294967295 manifested=0 recovered=0 errors=0 lost=7 panics=1"
        );
        assert_eq!(line.parse::<Summary>(), Ok(s));
    }

    #[test]
    fn malformed_lines_say_why() {
        let bad = |line: &str| line.parse::<Summary>().unwrap_err();
        assert_eq!(bad("fault 3: kill 0x0 -> recovered"), SummaryError::NotASummary);
        assert_eq!(bad("campaign fs injected=1"), SummaryError::NotASummary);
        // The campaign's other lines about the same server are not summaries.
        assert_eq!(
            bad("campaign fs: 10/100 injected, 4 manifested, 4 recovered"),
            SummaryError::MissingField("injected")
        );
        assert_eq!(
            bad("campaign fs: other tasks restarted 0 times during the campaign"),
            SummaryError::MissingField("injected")
        );
        assert_eq!(bad(&LINE.replace(" lost=0", "")), SummaryError::MissingField("lost"));
        assert_eq!(
            bad(&LINE.replace("errors=3 lost=0", "lost=0 errors=3")),
            SummaryError::MissingField("errors")
        );
        assert_eq!(bad(&LINE.replace(" errors", "  errors")), SummaryError::MissingField("errors"));
        assert_eq!(bad(&LINE.replace("=41", "=")), SummaryError::BadNumber("manifested"));
        assert_eq!(bad(&LINE.replace("=41", "=+41")), SummaryError::BadNumber("manifested"));
        assert_eq!(bad(&LINE.replace("=100", "=4294967296")), SummaryError::BadNumber("injected"));
        assert_eq!(bad(&std::format!("{LINE} ")), SummaryError::TrailingText);
        assert_eq!(bad(&std::format!("{LINE}x")), SummaryError::TrailingText);
        assert_eq!(bad(&LINE.replace("fs", "")), SummaryError::BadServer);
        assert_eq!(bad(&LINE.replace("fs", "a-name-longer-than-16")), SummaryError::BadServer);
        assert_eq!(bad(&LINE.replace("fs", "f s")), SummaryError::BadServer);
    }

    #[test]
    fn a_server_name_fits_a_task_name() {
        assert_eq!(Summary::new("sixteen-letters!").unwrap().server(), "sixteen-letters!");
        assert_eq!(Summary::new("seventeen-letters"), Err(SummaryError::BadServer));
        assert_eq!(Summary::new("a:b"), Err(SummaryError::BadServer));
        assert!(SummaryError::MissingField("lost").to_string().contains("lost="));
    }
}
