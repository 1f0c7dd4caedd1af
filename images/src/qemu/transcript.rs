//! What a driven session saw ([`Transcript`]) and how it ended ([`Outcome`]), worded for a
//! person and for the tests.

use super::text::after_prompt;
use std::fmt;
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
    /// The shell refused the prompt tag (`prompt TAG` failed with this status): a shell that
    /// cannot be driven safely.
    NoTag(u32),
}

/// Why a command failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// Its prompt reported this status.
    Status(u32),
    /// The shell was restarted while it ran: it never reported a status.
    ShellRestarted,
}

/// A command that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    pub command: String,
    pub why: Why,
}

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.why {
            Why::Status(status) => write!(f, "command '{}' FAILED with status {status}", self.command),
            Why::ShellRestarted => {
                write!(f, "command '{}' FAILED: the shell was restarted while it ran", self.command)
            }
        }
    }
}

/// Everything a driven session saw.
#[derive(Debug, Clone)]
pub struct Transcript {
    /// The serial console, with `\r` removed.
    pub console: String,
    pub outcome: Outcome,
    /// Commands that failed, in order.
    pub failed: Vec<Failed>,
    /// Wall time from QEMU start to the first shell prompt.
    pub boot_time: Option<Duration>,
    /// The prompt tags the shell was given, in order: one at the start, one more each time the
    /// shell had been restarted (or seemed to be).
    pub tags: Vec<String>,
}

impl Transcript {
    /// Powered off cleanly and every command succeeded.
    pub fn ok(&self) -> bool {
        self.outcome == Outcome::PoweredOff && self.failed.is_empty()
    }

    /// The commands that failed, in order.
    pub fn failed_commands(&self) -> Vec<&str> {
        self.failed.iter().map(|f| f.command.as_str()).collect()
    }

    /// If `line` starts with a prompt of this session's shell, the line typed there. Only
    /// prompts with one of the session's tags count, and the untagged prompts where the session
    /// gave the shell its tag: output that looks like a prompt does not.
    pub fn typed<'a>(&self, line: &'a str) -> Option<&'a str> {
        let (found, typed) = after_prompt(line)?;
        let known = |t: &str| self.tags.iter().any(|x| x == t);
        match found.shown.tag {
            Some(tag) if known(tag) => Some(typed),
            None if typed.strip_prefix("prompt ").is_some_and(known) => Some(typed),
            _ => None,
        }
    }

    /// A one-paragraph verdict for a person.
    pub fn summary(&self) -> String {
        let mut s = match &self.outcome {
            Outcome::PoweredOff => "powered off cleanly".to_string(),
            Outcome::Panicked => "the kernel PANICKED".to_string(),
            Outcome::TimedOut(what) => format!("TIMED OUT {what}"),
            Outcome::Exited(code) => format!("QEMU exited unexpectedly (status {code:?})"),
            Outcome::NoTag(status) => {
                format!("the shell REFUSED the prompt tag (status {status}); no command was typed")
            }
        };
        for f in &self.failed {
            s.push_str(&format!("; {f}"));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn transcript(console: &str, failed: Vec<Failed>) -> Transcript {
        let tags = vec!["aa11".to_string(), "bb22".to_string()];
        Transcript { console: console.into(), outcome: Outcome::PoweredOff, failed, boot_time: None, tags }
    }

    #[test]
    fn lines_typed_at_the_sessions_prompts() {
        let t = transcript("", vec![]);
        assert_eq!(t.typed("axolotl> prompt aa11"), Some("prompt aa11"));
        assert_eq!(t.typed("axolotl [aa11:0]> echo axolotl [3]> x"), Some("echo axolotl [3]> x"));
        assert_eq!(t.typed("axolotl [bb22:1]> ps"), Some("ps"));
        assert_eq!(t.typed("axolotl [3]> x"), None, "output that looks like a prompt");
        assert_eq!(t.typed("axolotl> echo hi"), None, "an untagged prompt the session typed nothing at");
        assert_eq!(t.typed("axolotl [cc33:0]> ps"), None, "another tag");
        assert!(t.ok());
    }

    #[test]
    fn a_restart_of_the_shell_is_a_failure_and_says_so() {
        let failed = vec![
            Failed { command: "frobnicate".into(), why: Why::Status(1) },
            Failed { command: "kill shell".into(), why: Why::ShellRestarted },
        ];
        let t = transcript("", failed);
        assert!(!t.ok());
        assert_eq!(t.failed_commands(), ["frobnicate", "kill shell"]);
        assert_eq!(
            t.summary(),
            "powered off cleanly; command 'frobnicate' FAILED with status 1; \
             command 'kill shell' FAILED: the shell was restarted while it ran"
        );
    }
}
