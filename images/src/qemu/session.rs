//! A QEMU process driven over its serial line: a reader thread collects the console, the
//! driver waits for prompts and types commands, all within time limits.
//!
//! ```text
//!  QEMU stdout ──► reader thread ──► Shared text (+ echo to this terminal)
//!                                        │ Condvar
//!  exec: wait_for(prompt) ◄──────────────┘   type_line(cmd) ──► QEMU stdin
//! ```
//!
//! The prompts believed are those with the session's tag (`shellcmd::prompt`): first the shell
//! is given one, then each command is typed and its tagged prompt awaited.
//!
//! ```text
//!  boot ─► untagged prompt ─► type `prompt T1` ─► axolotl [T1:0]>
//!  type CMD ─┬─► axolotl [T1:N]> ............................... CMD ended with status N
//!            └─► untagged prompt, then 1 s of quiet (a restarted shell, or output that looks
//!                like a prompt) ─► type `prompt T2` ─┬─► [T1:N] first: CMD ended with N; then [T2:0]
//!                                                   └─► [T2:0] first: the shell was restarted
//!                                                       while CMD ran: it failed
//! ```
//! A command's output cannot end it early (it cannot know the tag), and cannot make the session
//! miss a restart of the shell: only the shell that holds T1 can print [T1:N].

use super::machine::{command, Machine, EXIT_PANIC, EXIT_POWEROFF};
use super::text::{find_tagged_mended, find_untagged_mended, fresh_tag, strip_escapes};
use super::transcript::{Failed, Outcome, Transcript, Why};
use crate::{fail, Personality, Result};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// What a driven session shows on this terminal while it runs.
pub enum Echo {
    Everything,
    Nothing,
    /// Every complete line goes to the function, which shows what it wants: the progress lines
    /// of a long run, a progress bar. It runs on the thread that reads the console.
    Lines(Box<dyn FnMut(&str) + Send>),
}

impl Echo {
    /// [`Echo::Lines`] with `on_line`.
    pub fn lines(on_line: impl FnMut(&str) + Send + 'static) -> Echo {
        Echo::Lines(Box::new(on_line))
    }
}

/// Output collected by the reader thread.
struct Shared {
    text: Mutex<(String, bool)>,
    more: Condvar,
}

/// How long a driven session may take.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The whole session, boot included.
    pub total: Duration,
    /// Give up sooner when the console stays silent this long: for long runs that print as they
    /// go (a campaign prints a line per fault), silence means the guest stopped answering.
    pub silence: Option<Duration>,
}

impl From<Duration> for Limits {
    fn from(total: Duration) -> Limits {
        Limits { total, silence: None }
    }
}

/// How long the console must stay quiet after an untagged prompt before the session asks the
/// shell whether it was restarted (by giving it a new tag). Output that merely looks like a
/// prompt is followed by the real one at once.
const RESTART_QUIET: Duration = Duration::from_secs(1);

/// How far before the newest output a session looks for a restarted shell's untagged prompt
/// (log lines may follow it while the session waits for the console to go quiet).
const UNTAGGED_LOOKBACK: usize = 4096;

/// How often a waiting session looks at the console again when nothing arrives.
const POLL: Duration = Duration::from_millis(200);

/// A QEMU process being driven over its serial line; killed when dropped.
struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    shared: Arc<Shared>,
    deadline: Instant,
    silence: Option<Duration>,
    /// The console is shown as it comes: notes about the session go beside it, on stderr.
    loud: bool,
    /// Every line typed at a prompt, in order (see `Transcript::runs`).
    typed: Vec<String>,
}

/// What the shell made of one line typed at its prompt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    Status(u32),
    /// The shell was restarted before it printed the prompt that ends the line.
    ShellRestarted,
}

/// What a wait for a command's prompt found.
enum Event {
    /// The prompt with tag number `.0`: its end and status.
    Prompt(usize, usize, u32),
    /// An untagged prompt, then quiet.
    Untagged,
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Session {
    fn start(
        iso: &Path,
        personality: Personality,
        machine: Machine,
        limits: Limits,
        mut echo: Echo,
    ) -> Result<Session> {
        let loud = matches!(echo, Echo::Everything);
        let deadline = Instant::now()
            .checked_add(limits.total)
            .ok_or_else(|| fail!("a time limit of {} s is too far in the future", limits.total.as_secs()))?;
        let mut child = command(iso, personality, false, machine)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| fail!("cannot start qemu-system-x86_64: {e}"))?;
        let mut out = child.stdout.take().expect("stdout was piped");
        let stdin = child.stdin.take();
        let shared = Arc::new(Shared { text: Mutex::new((String::new(), false)), more: Condvar::new() });
        let reader = shared.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                let n = out.read(&mut buf).unwrap_or(0);
                let mut guard = reader.text.lock().expect("reader lock");
                if n == 0 {
                    guard.1 = true;
                    reader.more.notify_all();
                    return;
                }
                let chunk = strip_escapes(&String::from_utf8_lossy(&buf[..n]).replace('\r', ""));
                match &mut echo {
                    Echo::Everything => {
                        print!("{chunk}");
                        let _ = std::io::stdout().flush();
                    }
                    Echo::Lines(on_line) => {
                        // Complete lines only: the partial one at the end waits for the next chunk.
                        let text = &guard.0;
                        let from = text.rfind('\n').map_or(0, |i| i + 1);
                        let joined = format!("{}{}", &text[from..], chunk);
                        let mut lines: Vec<&str> = joined.split('\n').collect();
                        lines.pop();
                        for line in lines {
                            on_line(line);
                        }
                    }
                    Echo::Nothing => {}
                }
                guard.0.push_str(&chunk);
                reader.more.notify_all();
            }
        });
        Ok(Session { child, stdin, shared, deadline, silence: limits.silence, loud, typed: Vec::new() })
    }

    /// Wait until `find` matches the output (returns its answer), the output ends, or time is up.
    ///
    /// `find` gets the whole output, the offset where it may start looking (everything before
    /// was searched already; a little overlap covers a match split between two chunks) and how
    /// long the console has been quiet; it is asked again at least every [`POLL`]. Searching
    /// only new output keeps long runs (campaigns print megabytes) linear.
    fn wait_for<T>(
        &self,
        what: &str,
        mut find: impl FnMut(&str, usize, Duration) -> Option<T>,
    ) -> std::result::Result<T, Outcome> {
        const OVERLAP: usize = 64;
        let mut guard = self.shared.text.lock().expect("reader lock");
        let mut searched: usize = 0;
        let mut last_output = Instant::now();
        loop {
            let now = Instant::now();
            let text = &guard.0;
            if text.len() > searched {
                last_output = now;
            }
            let from = text.floor_char_boundary(searched.saturating_sub(OVERLAP));
            if let Some(found) = find(text, from, now - last_output) {
                return Ok(found);
            }
            if text[from..].contains("KERNEL PANIC") {
                return Err(Outcome::Panicked);
            }
            searched = text.len();
            if guard.1 {
                return Err(Outcome::Exited(None));
            }
            if now >= self.deadline {
                return Err(Outcome::TimedOut(format!("waiting for {what}")));
            }
            let mut until = self.deadline.min(now + POLL);
            if let Some(quiet) = self.silence {
                if now >= last_output + quiet {
                    return Err(Outcome::TimedOut(format!(
                        "waiting for {what}: the console was silent for {} s",
                        quiet.as_secs()
                    )));
                }
                until = until.min(last_output + quiet);
            }
            guard = self.shared.more.wait_timeout(guard, until - now).expect("reader lock").0;
        }
    }

    /// Wait for the prompt that ends `line`, typed when the console stood at `at` and the tag
    /// in force was the last of `tags`. Returns that prompt's end and what the shell answered;
    /// if the shell had to be given a new tag, it is pushed on `tags`.
    fn answer(
        &mut self,
        line: &str,
        tags: &mut Vec<String>,
        at: usize,
    ) -> std::result::Result<(usize, Answer), Outcome> {
        let what = format!("'{line}' to finish");
        let first = tags.len() - 1;
        // Prompts before `seen` are accounted for; an untagged one in the output after `watch`
        // raises the question whether the shell was restarted.
        let (mut seen, mut watch) = (at, at);
        let mut answer = None;
        loop {
            let event = self.wait_for(&what, |text, from, quiet| {
                if let Some((i, end, status)) = find_tagged_mended(text, from.max(seen), &tags[first..]) {
                    return Some(Event::Prompt(i, end, status));
                }
                // After the echo of what was typed, which is on the line of the prompt. Looked
                // for again some way back, not only in what arrived since the last look: the
                // prompt must then stay quiet for a while, and a log line printed right after
                // it (the kernel's "shell gen 1 ready", longer than the look's overlap) had
                // moved it out of the look before the quiet came, and the session waited for
                // ever.
                let output = watch + text.get(watch..)?.find('\n')?;
                let start = text.floor_char_boundary(output.max(from.saturating_sub(UNTAGGED_LOOKBACK)));
                find_untagged_mended(text, start).filter(|_| quiet >= RESTART_QUIET).map(|_| Event::Untagged)
            })?;
            match event {
                Event::Prompt(i, end, status) => {
                    // The line's own prompt can only come before those of the tags given later.
                    answer.get_or_insert(if i == 0 {
                        Answer::Status(status)
                    } else {
                        Answer::ShellRestarted
                    });
                    seen = end;
                    if first + i + 1 == tags.len() {
                        return Ok((end, answer.unwrap_or(Answer::ShellRestarted)));
                    }
                }
                Event::Untagged => {
                    let tag = fresh_tag();
                    watch = self.len();
                    self.type_line(&format!("{} {tag}", shellcmd::prompt::COMMAND));
                    tags.push(tag);
                }
            }
        }
    }

    fn len(&self) -> usize {
        self.shared.text.lock().expect("reader lock").0.len()
    }

    fn type_line(&mut self, line: &str) {
        self.typed.push(line.to_string());
        self.type_keys(&format!("{line}\r"));
    }

    fn type_keys(&mut self, keys: &str) {
        if let Some(stdin) = self.stdin.as_mut() {
            let _ = stdin.write_all(keys.as_bytes());
            let _ = stdin.flush();
        }
    }

    /// Wait for QEMU to exit and classify its status.
    fn finish(&mut self) -> Outcome {
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    // Let the reader drain the last output.
                    let _ = self.wait_for("the end of output", |_, _, _| None::<()>);
                    return match status.code() {
                        Some(EXIT_POWEROFF) => Outcome::PoweredOff,
                        Some(EXIT_PANIC) => Outcome::Panicked,
                        code => Outcome::Exited(code),
                    };
                }
                Ok(None) if Instant::now() < self.deadline => std::thread::sleep(Duration::from_millis(20)),
                _ => return Outcome::TimedOut("waiting for QEMU to power off".into()),
            }
        }
    }

    fn console(&self) -> String {
        self.shared.text.lock().expect("reader lock").0.clone()
    }
}

/// Boot `iso`, run `commands` in its shell one after another, power off. `echo` says what of
/// the console to stream to stdout while it runs. Never hangs longer than `limits` allow (a
/// plain `Duration` limits only the whole session).
pub fn exec(
    iso: &Path,
    personality: Personality,
    machine: Machine,
    commands: &[String],
    limits: impl Into<Limits>,
    echo: Echo,
) -> Result<Transcript> {
    if let Some(c) = commands.iter().find(|c| c.split_whitespace().next() == Some(shellcmd::prompt::COMMAND))
    {
        return Err(fail!("'{c}': a driven session gives the shell its prompt tag itself"));
    }
    let started = Instant::now();
    let mut s = Session::start(iso, personality, machine, limits.into(), echo)?;
    let mut failed = Vec::new();
    let mut boot_time = None;
    let mut tags: Vec<String> = Vec::new();
    let outcome = (|| {
        if let Some(keys) = machine.early_keys {
            s.wait_for("the kernel's first line", |text, _, _| text.contains("[kernel]").then_some(()))?;
            s.type_keys(keys);
        }
        let mut pos =
            s.wait_for("the first shell prompt", |text, from, _| find_untagged_mended(text, from))?;
        boot_time = Some(started.elapsed());
        tags.push(fresh_tag());
        let arm = format!("{} {}", shellcmd::prompt::COMMAND, tags[0]);
        s.type_line(&arm);
        let (end, answer) = s.answer(&arm, &mut tags, pos)?;
        if let Answer::Status(status @ 1..) = answer {
            return Err(Outcome::NoTag(status));
        }
        pos = end;
        let mut powered_off = false;
        for cmd in commands {
            let at = s.len().max(pos);
            s.type_line(cmd);
            if cmd.split_whitespace().next() == Some("poweroff") {
                powered_off = true;
                break;
            }
            let (end, answer) = s.answer(cmd, &mut tags, at)?;
            pos = end;
            let why = match answer {
                Answer::Status(0) => continue,
                Answer::Status(status) => Why::Status(status),
                Answer::ShellRestarted => Why::ShellRestarted,
            };
            let f = Failed { command: cmd.clone(), why };
            if s.loud && why == Why::ShellRestarted {
                eprintln!("\n[os] {f}; the new shell has been given a prompt tag again");
            }
            failed.push(f);
        }
        if !powered_off {
            s.type_line("poweroff");
        }
        Ok(s.finish())
    })()
    .unwrap_or_else(|o: Outcome| o);
    let console = s.console();
    let lines_typed = std::mem::take(&mut s.typed);
    Ok(Transcript::new(console, outcome, failed, boot_time, tags, lines_typed))
}
