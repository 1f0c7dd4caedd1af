//! The prompt both shells print, and the tag that makes it unforgeable for a program driving
//! the serial line. Written here and read back here (the host tool calls [`find`]), so the two
//! sides cannot drift.
//!
//! ```text
//!  axolotl> ...................... the last command succeeded       (a person at the console)
//!  axolotl [N]> .................. it failed with status N
//!  axolotl [TAG:N]> .............. after `prompt TAG`: every prompt carries TAG and the status
//! ```
//! Without a tag a command's output can pass for a prompt (`echo axolotl [3]> x`). So
//! `cargo os run --exec` first types `prompt TAG` with a TAG drawn at random for the session and
//! believes only prompts that carry it: no command of its script can know it. A shell that was
//! restarted meanwhile has forgotten the tag, and prints the untagged prompt until it is given
//! one again. `prompt` alone goes back to the untagged form.

use crate::personality::{Console, Shell, Status};
use core::fmt;

/// The command that sets the tag.
pub const COMMAND: &str = "prompt";
/// The longest tag: letters and digits, so a tag never holds the prompt's own `:` or `]`.
pub const TAG_MAX: usize = 32;
/// What every prompt starts with.
const START: &str = "axolotl";

/// The shell's prompt: the tag, if it was given one (the status is the main loop's).
#[derive(Clone, Debug, Default)]
pub struct Prompt {
    tag: heapless::String<TAG_MAX>,
}

impl Prompt {
    /// The tag, if there is one.
    pub fn tag(&self) -> Option<&str> {
        Some(self.tag.as_str()).filter(|t| !t.is_empty())
    }

    /// Print the prompt after a command that ended with `status`.
    pub fn print(&self, con: &impl Console, status: Status) {
        con.print(format_args!("{}", Shown { tag: self.tag(), status }));
    }

    /// What to do with a line as the editor returned it: a complete line through
    /// [`Prompt::run`], one that Ctrl-C abandoned or that was too long as [`crate::run_line`]
    /// says.
    pub fn run_line<S: Shell>(&mut self, shell: &mut S, edit: crate::Edit, line: &str) -> Status {
        match edit {
            crate::Edit::Enter | crate::Edit::More => self.run(shell, line),
            refused => crate::run_line(shell, refused, line),
        }
    }

    /// Run one command line: `prompt [TAG]` here, any other through [`crate::run`].
    pub fn run<S: Shell>(&mut self, shell: &mut S, line: &str) -> Status {
        match self.command(shell.console(), line) {
            Some(status) => status,
            None => crate::run(shell, line),
        }
    }

    /// `prompt TAG` sets the tag, `prompt` clears it; `None` if `line` is another command.
    pub fn command(&mut self, con: &impl Console, line: &str) -> Option<Status> {
        let mut words = line.split_whitespace();
        if words.next() != Some(COMMAND) {
            return None;
        }
        Some(match (words.next(), words.next()) {
            (None, _) => {
                self.tag.clear();
                0
            }
            (Some(tag), None) if valid_tag(tag) => {
                self.tag.clear();
                let _ = self.tag.push_str(tag);
                0
            }
            _ => con.fail(format_args!("usage: prompt [TAG] (TAG: 1 to {} letters or digits)", TAG_MAX)),
        })
    }
}

/// Can `tag` be a prompt's tag?
pub fn valid_tag(tag: &str) -> bool {
    (1..=TAG_MAX).contains(&tag.len()) && tag.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A prompt as it is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shown<'a> {
    pub tag: Option<&'a str>,
    pub status: Status,
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.tag, self.status) {
            (Some(tag), status) => write!(f, "{START} [{tag}:{status}]> "),
            (None, 0) => write!(f, "{START}> "),
            (None, status) => write!(f, "{START} [{status}]> "),
        }
    }
}

/// A prompt found in a console's text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found<'a> {
    /// Where it starts and ends (the end is where the echo of the next line begins).
    pub start: usize,
    pub end: usize,
    pub shown: Shown<'a>,
}

/// The first prompt in `text` that starts at or after byte `from`, in any of the three forms.
/// A reader that must not be fooled by output keeps to the prompts with its tag.
pub fn find(text: &str, from: usize) -> Option<Found<'_>> {
    let mut at = from;
    while let Some(i) = text.get(at..)?.find(START) {
        let start = at + i;
        if let Some((len, shown)) = parse(&text[start + START.len()..]) {
            return Some(Found { start, end: start + START.len() + len, shown });
        }
        at = start + START.len();
    }
    None
}

/// What follows `axolotl` in a prompt: its length and what it says.
fn parse(rest: &str) -> Option<(usize, Shown<'_>)> {
    if rest.starts_with("> ") {
        return Some((2, Shown { tag: None, status: 0 }));
    }
    let inner = rest.strip_prefix(" [")?;
    let close = inner.find("]> ")?;
    let (tag, status) = match inner[..close].split_once(':') {
        Some((tag, status)) if valid_tag(tag) => (Some(tag), status),
        Some(_) => return None,
        None => (None, &inner[..close]),
    };
    // `Status::from_str` would take a leading '+': a printed status never has one.
    if status.is_empty() || !status.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((2 + close + 3, Shown { tag, status: status.parse().ok()? }))
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use core::cell::RefCell;
    use std::string::{String, ToString};

    #[derive(Default)]
    struct Screen(RefCell<String>);

    impl Console for Screen {
        fn print(&self, text: fmt::Arguments<'_>) {
            self.0.borrow_mut().push_str(&text.to_string());
        }
    }

    fn shown(prompt: &Prompt, status: Status) -> String {
        let screen = Screen::default();
        prompt.print(&screen, status);
        screen.0.into_inner()
    }

    #[test]
    fn untagged_prompts_look_as_they_always_did() {
        let p = Prompt::default();
        assert_eq!(p.tag(), None);
        assert_eq!(shown(&p, 0), "axolotl> ");
        assert_eq!(shown(&p, 1), "axolotl [1]> ");
        assert_eq!(shown(&p, 130), "axolotl [130]> ");
    }

    #[test]
    fn a_tag_is_set_shown_with_every_status_and_cleared() {
        let (mut p, screen) = (Prompt::default(), Screen::default());
        assert_eq!(p.command(&screen, "prompt 5e0c7a91d2b3"), Some(0));
        assert_eq!(p.tag(), Some("5e0c7a91d2b3"));
        assert_eq!(shown(&p, 0), "axolotl [5e0c7a91d2b3:0]> ");
        assert_eq!(shown(&p, 3), "axolotl [5e0c7a91d2b3:3]> ");
        assert_eq!(p.command(&screen, "  prompt   other1 "), Some(0), "spaces do not matter");
        assert_eq!(p.tag(), Some("other1"));
        assert_eq!(p.command(&screen, "prompt"), Some(0));
        assert_eq!(shown(&p, 0), "axolotl> ");
        assert_eq!(screen.0.into_inner(), "", "setting a tag prints nothing");
    }

    #[test]
    fn a_bad_tag_is_refused_and_the_old_one_kept() {
        let (mut p, screen) = (Prompt::default(), Screen::default());
        p.command(&screen, "prompt good");
        for bad in
            ["prompt a:b", "prompt a]b", "prompt two words", &std::format!("prompt {}", "x".repeat(33))]
        {
            assert_eq!(p.command(&screen, bad), Some(1), "{bad}");
        }
        assert_eq!(p.tag(), Some("good"));
        assert_eq!(p.command(&screen, "promptx a"), None, "another command");
        assert_eq!(p.command(&screen, "echo prompt a"), None);
        assert_eq!(p.command(&screen, ""), None);
        let said = screen.0.into_inner();
        assert!(said.starts_with("error: usage: prompt [TAG] (TAG: 1 to 32 letters or digits)\n"));
        assert_eq!(said.lines().count(), 4, "one error per bad tag, nothing for other commands");
    }

    #[test]
    fn what_is_printed_is_found_again() {
        let tags = [None, Some("k"), Some("5e0c7a91d2b3"), Some("ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ")];
        for tag in tags {
            for status in [0, 1, 130, u32::MAX] {
                let text = std::format!("ps\n{}echo", Shown { tag, status });
                let found = find(&text, 0).unwrap();
                assert_eq!(found.shown, Shown { tag, status });
                assert_eq!((found.start, &text[found.end..]), (3, "echo"));
            }
        }
    }

    #[test]
    fn only_well_formed_prompts_are_found() {
        let text = "axolotl [x]> axolotl [] axolotl [+1]> axolotl [a:b:1]> axolotl [:1]> axolotl";
        assert_eq!(find(text, 0), None);
        assert_eq!(find("Axolotl> ", 0), None);
        let text = "axolotl [a:b:1]> axolotl [t:2]> ";
        let found = find(text, 0).unwrap();
        assert_eq!((found.start, found.shown), (17, Shown { tag: Some("t"), status: 2 }));
        assert_eq!(find(text, found.end), None);
        assert_eq!(find("axolotl> ", 1), None, "from is where the prompt may start");
    }
}
