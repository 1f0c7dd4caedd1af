//! Editing the line typed at the prompt, for both shells: printable keys are kept and echoed,
//! Backspace and Ctrl-U erase, Ctrl-C abandons the line, and terminal escape sequences are
//! swallowed whole. The shell feeds keys one at a time, from wherever its console gives them,
//! and gets told when the line is complete.
//!
//! ```text
//!  ESC [ params final            CSI (arrow keys, ...)     ends at a byte 0x40..=0x7e
//!  ESC O x                       SS3 (keypad, F1-F4)       ends after one byte
//!  ESC ] / P / X / ^ / _ text    OSC, DCS, SOS, PM, APC    end at BEL or ESC \
//!  ESC x                         any other two-byte escape
//! ```
//! Enter and Ctrl-C are never swallowed: inside a sequence they end it and act as usual, so a
//! half-typed or garbled sequence cannot eat the line. A line longer than the editor holds is
//! not cut: it is refused whole when Enter comes ([`Edit::TooLong`]), so a command never runs
//! on the front part of what was typed.

/// What one key did to the line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edit {
    /// The line goes on: read the next key.
    More,
    /// Enter: the line is complete.
    Enter,
    /// Ctrl-C: the line was abandoned (and is empty).
    Cancel,
    /// Enter after more keys than the line holds: the whole line is refused (and is empty).
    TooLong,
}

/// Where the editor is in an escape sequence.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Escape {
    #[default]
    None,
    /// After ESC.
    Start,
    /// After `ESC [`, until the final byte.
    Csi,
    /// After `ESC O`: one more byte.
    Ss3,
    /// Inside a string sequence (OSC, DCS, ...), until BEL or ESC `\`.
    Text,
    /// ESC inside a string sequence: `\` ends it.
    TextEsc,
}

/// The editor's state between keys.
#[derive(Clone, Copy, Debug, Default)]
pub struct LineEditor {
    escape: Escape,
    /// Keys were dropped because the line was full: Enter refuses it.
    overflow: bool,
}

const ESC: u8 = 0x1b;
const BEL: u8 = 0x07;
/// The key that abandons a line at the prompt and interrupts a running command.
pub const CTRL_C: u8 = 0x03;

impl LineEditor {
    /// Apply key `b` to `line`, echoing through `echo` what the terminal should show.
    pub fn key<const N: usize>(
        &mut self,
        line: &mut heapless::String<N>,
        b: u8,
        mut echo: impl FnMut(&[u8]),
    ) -> Edit {
        let ends_line = matches!(b, b'\r' | b'\n' | CTRL_C);
        if self.escape != Escape::None && !ends_line {
            self.escape = match (self.escape, b) {
                (Escape::Start, b'[') => Escape::Csi,
                (Escape::Start, b'O') => Escape::Ss3,
                (Escape::Start, b']' | b'P' | b'X' | b'^' | b'_') => Escape::Text,
                (Escape::Csi, 0x40..=0x7e) => Escape::None,
                (Escape::Csi, _) => Escape::Csi,
                (Escape::Text, BEL) => Escape::None,
                (Escape::Text | Escape::TextEsc, ESC) => Escape::TextEsc,
                (Escape::TextEsc, b'\\') => Escape::None,
                (Escape::Text | Escape::TextEsc, _) => Escape::Text,
                (Escape::Start | Escape::Ss3, _) | (Escape::None, _) => Escape::None,
            };
            return Edit::More;
        }
        self.escape = Escape::None;
        match b {
            b'\r' | b'\n' => {
                echo(b"\n");
                if core::mem::take(&mut self.overflow) {
                    line.clear();
                    return Edit::TooLong;
                }
                return Edit::Enter;
            }
            ESC => self.escape = Escape::Start,
            0x08 | 0x7f if !self.overflow && line.pop().is_some() => echo(b"\x08 \x08"),
            0x15 => {
                for _ in 0..line.len() {
                    echo(b"\x08 \x08");
                }
                line.clear();
                self.overflow = false;
            }
            CTRL_C => {
                echo(b"^C\n");
                line.clear();
                self.overflow = false;
                return Edit::Cancel;
            }
            0x20..=0x7e => {
                // Past the capacity the keys are still echoed, so the user sees what the shell
                // refuses; nothing of them is kept.
                if line.push(b as char).is_err() {
                    self.overflow = true;
                }
                echo(&[b]);
            }
            _ => {}
        }
        Edit::More
    }
}

/// Keys read from the console and not yet used: the rest of a pasted burst, or what was typed
/// while a command ran. A command that can run for long asks [`Typeahead::interrupt`] between
/// its steps whether Ctrl-C came; the keys typed before that Ctrl-C go with it (a terminal
/// flushes its input on an interrupt), the keys after it wait for the next prompt.
pub struct Typeahead<const N: usize> {
    keys: heapless::Deque<u8, N>,
}

impl<const N: usize> Default for Typeahead<N> {
    fn default() -> Self {
        Typeahead { keys: heapless::Deque::new() }
    }
}

impl<const N: usize> Typeahead<N> {
    /// How many more keys fit; a shell reads at most this many from its console.
    pub fn room(&self) -> usize {
        N - self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Keep keys read at the prompt, for the line editor (Ctrl-C among them is a key there).
    /// Keys beyond [`Typeahead::room`] are dropped.
    pub fn push(&mut self, keys: &[u8]) {
        for &k in keys {
            let _ = self.keys.push_back(k);
        }
    }

    /// The next key for the line editor.
    pub fn pop(&mut self) -> Option<u8> {
        self.keys.pop_front()
    }

    /// Keys read while a command runs: is there a Ctrl-C, here or among the keys kept? If so,
    /// it and every key before it are dropped.
    pub fn interrupt(&mut self, keys: &[u8]) -> bool {
        self.push(keys);
        let Some(at) = self.keys.iter().rposition(|&k| k == CTRL_C) else {
            return false;
        };
        for _ in 0..=at {
            self.keys.pop_front();
        }
        true
    }
}
