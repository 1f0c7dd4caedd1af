//! What a driven session saw ([`Transcript`]) and how it ended ([`Outcome`]), worded for a
//! person and for the tests.

use super::text::{after_prompt, log_start, shell_spans};
use std::fmt;
use std::sync::OnceLock;
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
    /// Every line the session typed at a prompt, in order: `prompt TAG` lines and commands.
    pub lines_typed: Vec<String>,
    /// `console` without log lines (see [`without_log_lines`]), made the first time it is needed.
    mended: OnceLock<String>,
}

/// `console` with every task's log line taken out, wherever on a line it began: from `[name] `
/// (a task's name: a lowercase letter, then lowercase letters, digits and `-`) up to and
/// including its newline. The console is shared: a server's log line can land in the middle of
/// the shell's echo or of one of its lines, and a line torn that way is whole again here.
/// A line the kernel began on a fresh line leaves the break it made (see [`Transcript::runs`]).
pub fn without_log_lines(console: &str) -> String {
    shell_spans(console).map(|kept| &console[kept]).collect()
}

/// The console's lines in the order they were finished: a log line that began inside another
/// line comes whole, and the line it tore comes whole after it (its two parts joined), where its
/// end was written. For readers that follow both log lines and the shell's (a campaign's fault
/// lines, and the restarts between them).
pub fn lines_mended(console: &str) -> Vec<String> {
    let mut out = Vec::new();
    // The part of a line a log line tore, waiting for its end.
    let mut torn = String::new();
    for line in console.lines() {
        let (mine, log) = match log_start(line) {
            Some(0) => ("", Some(line)),
            Some(at) => (&line[..at], Some(&line[at..])),
            None => (line, None),
        };
        torn.push_str(mine);
        match log {
            Some(log) => out.push(log.to_string()),
            None => out.push(std::mem::take(&mut torn)),
        }
    }
    if !torn.is_empty() {
        out.push(torn);
    }
    out
}

/// A prompt of the session's shell whose echo is not complete yet (see [`Transcript::runs`]).
struct Pending<'a> {
    tagged: bool,
    /// The echo so far.
    shown: String,
    /// The console lines it took: the prompt's, then the echo's.
    lines: Vec<&'a str>,
}

impl<'a> Pending<'a> {
    /// It was no prompt of the session's after all (an untagged "prompt" whose echo did not
    /// become `prompt TAG`): its lines are output of the last run, if that is `open` (a tagged
    /// prompt closed the run before it).
    fn give_back(self, runs: &mut [Run<'a>], open: bool) {
        if let (true, Some(run)) = (open, runs.last_mut()) {
            run.output.extend(self.lines);
        }
    }
}

/// A line typed at a prompt of this session's shell, and what the shell printed until its next
/// prompt (log lines, `[kernel] ...` and the like, left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run<'a> {
    pub typed: &'a str,
    pub output: Vec<&'a str>,
}

impl Transcript {
    pub fn new(
        console: String,
        outcome: Outcome,
        failed: Vec<Failed>,
        boot_time: Option<Duration>,
        tags: Vec<String>,
        lines_typed: Vec<String>,
    ) -> Transcript {
        Transcript { console, outcome, failed, boot_time, tags, lines_typed, mended: OnceLock::new() }
    }

    /// The console as the shell wrote it: without any task's log lines, so that a line one tore
    /// in two is whole again ([`without_log_lines`]).
    pub fn shell_text(&self) -> &str {
        self.mended.get_or_init(|| without_log_lines(&self.console))
    }

    /// Powered off cleanly and every command succeeded.
    pub fn ok(&self) -> bool {
        self.outcome == Outcome::PoweredOff && self.failed.is_empty()
    }

    /// The commands that failed, in order.
    pub fn failed_commands(&self) -> Vec<&str> {
        self.failed.iter().map(|f| f.command.as_str()).collect()
    }

    /// What was typed at each prompt of this session's shell, and its output, in order. Only
    /// prompts with one of the session's tags count, and the untagged prompts where the session
    /// gave the shell its tag: output that looks like a prompt does not.
    ///
    /// It reads [`Transcript::shell_text`]: log lines are left out wherever they began, and a
    /// line one tore is whole. A kernel begins its reports on a fresh line (it prints them from
    /// traps, at any moment), so an echo a report came into goes on on the line after it:
    ///
    /// ```text
    ///  axolotl [T:0]> cat            prompt, and the echo so far ("cat": a prefix of a typed line)
    ///  [kernel] FAULT in ramdisk ...  a log line: left out
    ///   /x                           the echo goes on: "cat /x" was typed, its run begins
    ///  hello                         its output
    ///  axolotl [T:0]>                the next prompt ends it
    /// ```
    pub fn runs(&self) -> Vec<Run<'_>> {
        let known = |t: &str| self.tags.iter().any(|x| x == t);
        // Only `prompt TAG` is typed at an untagged prompt, and only commands at a tagged one:
        // the line typed there if `shown` is all of it, and whether `shown` begins one.
        let typed_at = |tagged: bool, shown: &str| {
            let here = move |l: &&String| l.strip_prefix("prompt ").is_some_and(known) != tagged;
            let exact = self.lines_typed.iter().filter(here).find(|l| *l == shown);
            let begun = self.lines_typed.iter().filter(here).any(|l| l.starts_with(shown));
            (exact.map(String::as_str), begun)
        };
        let mut runs: Vec<Run<'_>> = Vec::new();
        // Whether the last run still takes output.
        let mut open = false;
        let mut pending: Option<Pending<'_>> = None;
        for line in self.shell_text().lines() {
            let prompt = after_prompt(line).and_then(|(found, rest)| match found.shown.tag {
                Some(tag) if known(tag) => Some((true, rest)),
                Some(_) => None,
                None => typed_at(false, rest).1.then_some((false, rest)),
            });
            let p = match (prompt, pending.take()) {
                (Some((tagged, rest)), before) => {
                    if let Some(before) = before {
                        before.give_back(&mut runs, open);
                    }
                    open &= !tagged;
                    Pending { tagged, shown: rest.to_string(), lines: vec![line] }
                }
                (None, Some(mut p)) => {
                    p.shown.push_str(line);
                    p.lines.push(line);
                    p
                }
                (None, None) => {
                    if let (true, Some(run)) = (open, runs.last_mut()) {
                        run.output.push(line);
                    }
                    continue;
                }
            };
            match typed_at(p.tagged, &p.shown) {
                (Some(typed), _) => {
                    runs.push(Run { typed, output: Vec::new() });
                    open = true;
                }
                (None, true) => pending = Some(p),
                (None, false) => p.give_back(&mut runs, open),
            }
        }
        if let Some(p) = pending {
            p.give_back(&mut runs, open);
        }
        runs
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
        let lines_typed = ["prompt aa11", "echo axolotl [3]> x", "ps", "cat /x", "prompt bb22", "cat /x"];
        let lines_typed = lines_typed.map(String::from).to_vec();
        Transcript::new(console.into(), Outcome::PoweredOff, failed, None, tags, lines_typed)
    }

    fn runs(console: &str) -> Vec<(String, Vec<String>)> {
        let t = transcript(console, vec![]);
        t.runs()
            .iter()
            .map(|r| (r.typed.to_string(), r.output.iter().map(|l| l.to_string()).collect()))
            .collect()
    }

    fn run(typed: &str, output: &[&str]) -> (String, Vec<String>) {
        (typed.to_string(), output.iter().map(|l| l.to_string()).collect())
    }

    #[test]
    fn lines_typed_at_the_sessions_prompts() {
        let console = "Axolotl shell.\naxolotl> prompt aa11\naxolotl [aa11:0]> echo axolotl [3]> x\n\
                       axolotl [3]> x\naxolotl> echo hi\naxolotl [cc33:0]> ps\naxolotl [aa11:0]> ps\n\
                       [kernel] a log line\nNAME\naxolotl [aa11:0]> ";
        assert_eq!(
            runs(console),
            [
                run("prompt aa11", &[]),
                run(
                    "echo axolotl [3]> x",
                    &["axolotl [3]> x", "axolotl> echo hi", "axolotl [cc33:0]> ps"][..],
                ),
                run("ps", &["NAME"]),
            ],
            "output that looks like a prompt, or has another tag, is output; log lines are not"
        );
        assert!(transcript(console, vec![]).ok());
    }

    #[test]
    fn an_echo_pushed_below_log_lines_still_starts_its_run() {
        // A kernel report came right after the prompt, then in the middle of an echo.
        let console = "axolotl [aa11:0]> \n[kernel] FAULT in ramdisk\n[kernel]   rip 0x1\ncat /x\nhello\n\
                       axolotl [aa11:0]> cat\n[kernel] FAULT in ramdisk\n /x\nhello\naxolotl [aa11:0]> ps\n\
                       NAME\naxolotl [aa11:0]> ";
        assert_eq!(
            runs(console),
            [run("cat /x", &["hello"]), run("cat /x", &["hello"]), run("ps", &["NAME"])]
        );
    }

    #[test]
    fn a_log_line_begun_on_the_prompts_line_is_left_out() {
        let console = "axolotl [aa11:0]> [fs] INFO a client's state migrated\n[kernel] FAULT in fs\n\
                       cat /x\nhello\naxolotl [aa11:0]> ps\nNAME\naxolotl [aa11:0]> ";
        assert_eq!(runs(console), [run("cat /x", &["hello"]), run("ps", &["NAME"])]);
    }

    #[test]
    fn a_log_line_begun_inside_an_echo_is_left_out_and_the_echo_mended() {
        // As seen in CI: fs logged its mount while the console echoed a command.
        let console = "axolotl [aa11:0]> ca[fs] INFO mounted the disk\nt /x\nhello\naxolotl [aa11:0]> ";
        assert_eq!(runs(console), [run("cat /x", &["hello"])]);
    }

    #[test]
    fn without_log_lines_mends_a_torn_line_and_keeps_brackets_that_are_not_logs() {
        let torn = "campaign fs: inj[scribe] ERROR: reset\nected=25 lost=0\n[kernel] x\nfault 1: kill\n\
                    [a b] c\n  format [--force]  d\naxolotl [aa11:0]> [auditor-a] line 1\nps\n[x]";
        assert_eq!(
            without_log_lines(torn),
            "campaign fs: injected=25 lost=0\nfault 1: kill\n[a b] c\n  format [--force]  d\naxolotl [aa11:0]> ps\n[x]"
        );
    }

    #[test]
    fn lines_mended_put_a_torn_line_back_together_after_what_tore_it() {
        let console =
            "fault 9: kill 0x0 -> rec[kernel] shell gen 0: killed\n[fs] INFO x\novered\n[a b] c\nend";
        assert_eq!(
            lines_mended(console),
            [
                "[kernel] shell gen 0: killed",
                "[fs] INFO x",
                "fault 9: kill 0x0 -> recovered",
                "[a b] c",
                "end"
            ]
        );
    }

    #[test]
    fn an_untagged_prompt_whose_echo_never_comes_is_output() {
        // `echo axolotl>` prints what looks like the prompt at which a tag is given: it is not
        // one, since no `prompt TAG` follows.
        let console = "axolotl [aa11:0]> ps\naxolotl> \n[kernel] late\nNAME\naxolotl> prompt bb22\n\
                       axolotl [bb22:0]> ";
        assert_eq!(runs(console), [run("ps", &["axolotl> ", "NAME"]), run("prompt bb22", &[])]);
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
