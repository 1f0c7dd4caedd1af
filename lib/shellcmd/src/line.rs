//! Editing the line typed at the prompt, for both shells: printable keys are kept and echoed,
//! Backspace and Ctrl-U erase, Ctrl-C abandons the line, and ANSI escape sequences (the arrow
//! keys) are swallowed. The shell feeds keys one at a time, from wherever its console gives
//! them, and gets told when the line is complete.

/// What one key did to the line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edit {
    /// The line goes on: read the next key.
    More,
    /// Enter: the line is complete.
    Enter,
    /// Ctrl-C: the line was abandoned (and is empty).
    Cancel,
}

/// Where the editor is in an escape sequence, between keys.
#[derive(Clone, Copy, Debug, Default)]
pub struct LineEditor {
    /// 0: not in one; 1: after ESC; 2: after `ESC [`, until the final byte.
    escape: u8,
}

impl LineEditor {
    /// Apply key `b` to `line`, echoing through `echo` what the terminal should show.
    pub fn key<const N: usize>(
        &mut self,
        line: &mut heapless::String<N>,
        b: u8,
        mut echo: impl FnMut(&[u8]),
    ) -> Edit {
        match self.escape {
            1 => {
                self.escape = if b == b'[' { 2 } else { 0 };
                return Edit::More;
            }
            2 => {
                if (0x40..=0x7e).contains(&b) {
                    self.escape = 0;
                }
                return Edit::More;
            }
            _ => {}
        }
        match b {
            b'\r' | b'\n' => {
                echo(b"\n");
                return Edit::Enter;
            }
            0x1b => self.escape = 1,
            0x08 | 0x7f if line.pop().is_some() => echo(b"\x08 \x08"),
            0x15 => {
                for _ in 0..line.len() {
                    echo(b"\x08 \x08");
                }
                line.clear();
            }
            0x03 => {
                echo(b"^C\n");
                line.clear();
                return Edit::Cancel;
            }
            0x20..=0x7e if line.push(b as char).is_ok() => echo(&[b]),
            _ => {}
        }
        Edit::More
    }
}
