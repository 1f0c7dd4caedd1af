//! What a driven session saw ([`Transcript`]) and how it ended ([`Outcome`]), worded for a
//! person and for the tests.

use std::time::Duration;

/// How a driven session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The guest powered off cleanly.
    PoweredOff,
    /// The kernel panicked.
    Panicked,
    /// Nothing happened in time; says what the session was waiting for.
    TimedOut(String),
    /// QEMU ended some other way (triple fault, killed, ...).
    Exited(Option<i32>),
}

/// Everything a driven session saw.
#[derive(Debug, Clone)]
pub struct Transcript {
    /// The serial console, with `\r` removed.
    pub console: String,
    pub outcome: Outcome,
    /// Commands whose prompt reported a failure, with their status.
    pub failed: Vec<(String, u32)>,
    /// Wall time from QEMU start to the first shell prompt.
    pub boot_time: Option<Duration>,
}

impl Transcript {
    /// Powered off cleanly and every command succeeded.
    pub fn ok(&self) -> bool {
        self.outcome == Outcome::PoweredOff && self.failed.is_empty()
    }

    /// A one-paragraph verdict for a person.
    pub fn summary(&self) -> String {
        let mut s = match &self.outcome {
            Outcome::PoweredOff => "powered off cleanly".to_string(),
            Outcome::Panicked => "the kernel PANICKED".to_string(),
            Outcome::TimedOut(what) => format!("TIMED OUT {what}"),
            Outcome::Exited(code) => format!("QEMU exited unexpectedly (status {code:?})"),
        };
        for (cmd, status) in &self.failed {
            s.push_str(&format!("; command '{cmd}' FAILED with status {status}"));
        }
        if let Some(t) = self.boot_time {
            s.push_str(&format!("; boot to prompt {:.2} s", t.as_secs_f64()));
        }
        s
    }

    /// The last `lines` lines of the console, for failure messages.
    pub fn tail(&self, lines: usize) -> String {
        let all: Vec<&str> = self.console.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}
