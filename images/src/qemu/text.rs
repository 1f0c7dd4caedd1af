//! Plain-text helpers for the serial console: escape sequences removed, shell prompts found,
//! `--exec` scripts split into commands.

/// Find the next shell prompt at or after byte `from`: its end and the status it reports.
pub fn find_prompt(text: &str, from: usize) -> Option<(usize, u32)> {
    let mut at = from;
    while let Some(i) = text.get(at..)?.find("axolotl") {
        let start = at + i + "axolotl".len();
        let rest = &text[start..];
        if let Some(r) = rest.strip_prefix("> ") {
            return Some((text.len() - r.len(), 0));
        }
        if let Some(inner) = rest.strip_prefix(" [") {
            if let Some(close) = inner.find("]> ") {
                if let Ok(status) = inner[..close].parse() {
                    return Some((start + 2 + close + 3, status));
                }
            }
        }
        at = start;
    }
    None
}

/// Remove ANSI escape sequences (GRUB clears the screen on the serial line), so the transcript
/// is plain text and echoing it does not wipe the user's terminal.
pub fn strip_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'[') {
            chars.next();
            // Parameters and intermediates, then one final byte in '@'..='~'.
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        } else {
            chars.next();
        }
    }
    out
}

/// Split `--exec "a; b; c"` into commands.
pub fn split_commands(script: &str) -> Vec<String> {
    script.split(';').map(str::trim).filter(|c| !c.is_empty()).map(String::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_with_and_without_status() {
        let t = "boot\naxolotl> ps\nNAME\naxolotl [1]> x";
        let (end, status) = find_prompt(t, 0).unwrap();
        assert_eq!((&t[end..end + 2], status), ("ps", 0));
        let (end, status) = find_prompt(t, end).unwrap();
        assert_eq!((&t[end..], status), ("x", 1));
        assert_eq!(find_prompt(t, end), None);
        assert_eq!(find_prompt("axolotl [x]> axolotl [", 0), None);
        assert_eq!(find_prompt("axolotl", 0), None);
    }

    #[test]
    fn escapes_are_stripped() {
        assert_eq!(strip_escapes("\x1b[H\x1b[J\x1b[1;1H  Booting"), "  Booting");
        assert_eq!(strip_escapes("a\x1bcb"), "ab");
        assert_eq!(strip_escapes("plain"), "plain");
    }

    #[test]
    fn commands_split_on_semicolons() {
        assert_eq!(split_commands(" ps; echo hi ;; poweroff "), ["ps", "echo hi", "poweroff"]);
        assert!(split_commands(" ; ").is_empty());
    }
}
