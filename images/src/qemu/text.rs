//! Plain-text helpers for the serial console: escape sequences removed, shell prompts found,
//! prompt tags drawn, `--exec` scripts split into commands.
//!
//! The prompt's forms are `shellcmd::prompt`'s, which the shells print: a driven session keeps
//! to the prompts that carry the tag it gave the shell (see `session`).

use shellcmd::prompt::{self, Found};
use std::hash::{BuildHasher, Hasher};

/// The first prompt at or after byte `from` that carries one of `tags`: which tag, the
/// prompt's end and the status it reports. Untagged prompts and prompts with other tags are
/// passed over: a command's output can print those.
pub fn find_tagged(text: &str, from: usize, tags: &[String]) -> Option<(usize, usize, u32)> {
    let mut at = from;
    loop {
        let found = prompt::find(text, at)?;
        if let Some(i) = found.shown.tag.and_then(|t| tags.iter().position(|x| x == t)) {
            return Some((i, found.end, found.shown.status));
        }
        at = found.end;
    }
}

/// [`find_tagged`], also where a log line tore the prompt in two: the kernel prints its lines
/// from traps, at any moment, and one that came in the middle of a prompt (`axolotl [ab12` ⏎
/// `[kernel] ...` ⏎ `cd:0]> `) hid it from the search, and the session waited until it timed
/// out. The text from a little before `from` is searched again without log lines; the offsets
/// returned are the raw text's.
pub fn find_tagged_mended(text: &str, from: usize, tags: &[String]) -> Option<(usize, usize, u32)> {
    find_tagged(text, from, tags).or_else(|| {
        mended_search(text, from, |t, at| find_tagged(t, at, tags).map(|(i, end, status)| ((i, status), end)))
            .map(|((i, status), end)| (i, end, status))
    })
}

/// [`find_untagged`], also where a log line tore the prompt in two (see [`find_tagged_mended`]).
pub fn find_untagged_mended(text: &str, from: usize) -> Option<usize> {
    find_untagged(text, from)
        .or_else(|| mended_search(text, from, |t, at| find_untagged(t, at).map(|e| ((), e))).map(|((), e)| e))
}

/// How far before `from` a prompt a log line tore may have begun.
const MENDED_WINDOW: usize = 4096;

/// Run `find` (which returns something and the end of the match) over the text from the start
/// of a line somewhat before `from`, read without log lines; the first match that ends past
/// `from` in the raw text, with its end as an offset of the raw text.
fn mended_search<T>(
    text: &str,
    from: usize,
    find: impl Fn(&str, usize) -> Option<(T, usize)>,
) -> Option<(T, usize)> {
    let start = text.floor_char_boundary(from.saturating_sub(MENDED_WINDOW));
    let start = text[..start].rfind('\n').map_or(0, |nl| nl + 1);
    let (mended, raw_of) = without_log_lines_mapped(&text[start..]);
    let mut at = 0;
    loop {
        let (found, end) = find(&mended, at)?;
        let raw_end = start + raw_of[end.checked_sub(1)?] + 1;
        if raw_end > from {
            return Some((found, raw_end));
        }
        at = end;
    }
}

/// `text` without log lines (as `transcript::without_log_lines`), and for each of its bytes
/// the offset in `text` of the byte it is.
fn without_log_lines_mapped(text: &str) -> (String, Vec<usize>) {
    let (mut out, mut raw_of) = (String::with_capacity(text.len()), Vec::with_capacity(text.len()));
    for kept in shell_spans(text) {
        out.push_str(&text[kept.clone()]);
        raw_of.extend(kept);
    }
    (out, raw_of)
}

/// The parts of `text` that are not log lines, in order: a log line runs from where it begins
/// ([`log_start`]) up to and including its newline.
pub(crate) fn shell_spans(text: &str) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    let mut at = Some(0);
    std::iter::from_fn(move || {
        let from = at?;
        match log_start(&text[from..]).map(|s| from + s) {
            Some(start) => {
                at = Some(text[start..].find('\n').map_or(text.len(), |nl| start + nl + 1));
                Some(from..start)
            }
            None => {
                at = None;
                Some(from..text.len())
            }
        }
    })
}

/// Where the first log line in `text` begins (`[name] `, see `transcript::without_log_lines`), if any.
pub(crate) fn log_start(text: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = text[from..].find('[').map(|i| from + i) {
        let name = text[at + 1..].find("] ").map(|end| &text[at + 1..at + 1 + end]);
        let is_log = name.is_some_and(|n| {
            n.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
                && n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
        if is_log {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// The first untagged prompt at or after byte `from`: its end. What a restarted shell prints,
/// and also what any output that looks like a prompt is.
pub fn find_untagged(text: &str, from: usize) -> Option<usize> {
    let mut at = from;
    loop {
        let found = prompt::find(text, at)?;
        if found.shown.tag.is_none() {
            return Some(found.end);
        }
        at = found.end;
    }
}

/// If `line` starts with a prompt of any form, what follows it (the echo of the line typed
/// there), with the prompt. For progress displays: output can look like a prompt too.
pub fn after_prompt(line: &str) -> Option<(Found<'_>, &str)> {
    prompt::find(line, 0).filter(|f| f.start == 0).map(|f| (f, &line[f.end..]))
}

/// A fresh prompt tag: 12 hex digits no script can know in advance. (`RandomState` is seeded
/// from the operating system's random source once per thread, and differs for each call.)
pub fn fresh_tag() -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    format!("{:012x}", h.finish() & 0xffff_ffff_ffff)
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
    fn only_prompts_with_a_known_tag_count() {
        let tags = ["t1".to_string(), "t2".to_string()];
        let t = "axolotl> prompt t1\naxolotl [t1:0]> echo axolotl [3]> x\naxolotl [3]> x\n\
                 axolotl [zz:4]> \naxolotl [t1:0]> ps\naxolotl [t2:7]> ";
        let (i, end, status) = find_tagged(t, 0, &tags).unwrap();
        assert_eq!((i, &t[end..end + 4], status), (0, "echo", 0));
        let (i, end, status) = find_tagged(t, end, &tags).unwrap();
        assert_eq!(
            (i, &t[end..end + 2], status),
            (0, "ps", 0),
            "the echoed and printed fakes are passed over"
        );
        let (i, end, status) = find_tagged(t, end, &tags).unwrap();
        assert_eq!((i, end, status), (1, t.len(), 7));
        assert_eq!(find_tagged(t, end, &tags), None);
        assert_eq!(find_tagged(t, 0, &[]), None);
    }

    #[test]
    fn untagged_prompts_are_found_past_tagged_ones() {
        let t = "axolotl [t1:0]> echo hi\nhi\naxolotl [t1:0]> \nAxolotl shell.\naxolotl> ";
        assert_eq!(find_untagged(t, 0), Some(t.len()));
        assert_eq!(find_untagged("axolotl [3]> x", 0), Some(13));
        assert_eq!(find_untagged("axolotl [t:3]> x", 0), None);
    }

    #[test]
    fn a_prompt_a_log_line_tore_is_found_with_its_raw_end() {
        // As seen in `tests/audit.rs`: the kernel kept an update in the middle of the prompt.
        let tags = ["acdbd436222f".to_string()];
        let before = "axolotl [acdbd436222f:0]> audit probe 40\naudit probe: done\n";
        let torn = "axolotl [acdbd436[kernel] probe (task 9): version 2 kept\n222f:1]> ";
        let t = format!("{before}{torn}");
        let seen = before.len();
        assert_eq!(find_tagged(&t, seen, &tags), None, "the plain search misses it");
        assert_eq!(find_tagged_mended(&t, seen, &tags), Some((0, t.len(), 1)));
        // From a later point too (the prompt began before `from`), and not found twice.
        assert_eq!(find_tagged_mended(&t, t.len() - 3, &tags), Some((0, t.len(), 1)));
        assert_eq!(find_tagged_mended(&t, t.len(), &tags), None);
        let first = "boot\naxol[virtio-blk] INFO found\notl> ";
        assert_eq!(find_untagged_mended(first, 0), Some(first.len()));
        assert_eq!(find_untagged_mended(first, first.len()), None);
        // A prompt already seen is not found again through the mended text.
        assert_eq!(find_tagged_mended(before, 30, &tags), None);
    }

    #[test]
    fn a_line_typed_at_a_prompt() {
        let (found, typed) = after_prompt("axolotl [ab:0]> campaign fs 3").unwrap();
        assert_eq!((found.shown.tag, typed), (Some("ab"), "campaign fs 3"));
        assert_eq!(after_prompt("axolotl> ").map(|(_, t)| t), Some(""));
        assert!(after_prompt("campaign fs: axolotl> ").is_none(), "a prompt starts the line");
    }

    #[test]
    fn tags_are_fresh_and_valid() {
        let (a, b) = (fresh_tag(), fresh_tag());
        assert_ne!(a, b);
        assert!(a.len() == 12 && shellcmd::prompt::valid_tag(&a), "{a}");
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
