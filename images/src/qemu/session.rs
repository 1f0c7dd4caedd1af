//! A QEMU process driven over its serial line: a reader thread collects the console, the
//! driver waits for prompts and types commands, all within time limits.
//!
//! ```text
//!  QEMU stdout ──► reader thread ──► Shared text (+ echo to this terminal)
//!                                        │ Condvar
//!  exec: wait_for(prompt) ◄──────────────┘   type_line(cmd) ──► QEMU stdin
//! ```

use super::machine::{command, Machine, EXIT_PANIC, EXIT_POWEROFF};
use super::text::{find_prompt, strip_escapes};
use super::transcript::{Outcome, Transcript};
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

/// A QEMU process being driven over its serial line; killed when dropped.
struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    shared: Arc<Shared>,
    deadline: Instant,
    silence: Option<Duration>,
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
        Ok(Session { child, stdin, shared, deadline: Instant::now() + limits.total, silence: limits.silence })
    }

    /// Wait until `find` matches the output (returns its answer), the output ends, or time is up.
    ///
    /// `find` gets the whole output and the offset where it may start looking: everything
    /// before that was searched already (a little overlap covers a match split between two
    /// chunks). Searching only new output keeps long runs (campaigns print megabytes) linear.
    fn wait_for<T>(
        &self,
        what: &str,
        mut find: impl FnMut(&str, usize) -> Option<T>,
    ) -> std::result::Result<T, Outcome> {
        const OVERLAP: usize = 64;
        let mut guard = self.shared.text.lock().expect("reader lock");
        let mut searched: usize = 0;
        let mut last_output = Instant::now();
        loop {
            let text = &guard.0;
            let mut from = searched.saturating_sub(OVERLAP);
            while !text.is_char_boundary(from) {
                from -= 1;
            }
            if let Some(found) = find(text, from) {
                return Ok(found);
            }
            if text[from..].contains("KERNEL PANIC") {
                return Err(Outcome::Panicked);
            }
            let now = Instant::now();
            if text.len() > searched {
                last_output = now;
            }
            searched = text.len();
            if guard.1 {
                return Err(Outcome::Exited(None));
            }
            if now >= self.deadline {
                return Err(Outcome::TimedOut(format!("waiting for {what}")));
            }
            let mut until = self.deadline;
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

    fn len(&self) -> usize {
        self.shared.text.lock().expect("reader lock").0.len()
    }

    fn type_line(&mut self, line: &str) {
        if let Some(stdin) = self.stdin.as_mut() {
            let _ = stdin.write_all(format!("{line}\r").as_bytes());
            let _ = stdin.flush();
        }
    }

    /// Wait for QEMU to exit and classify its status.
    fn finish(&mut self) -> Outcome {
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    // Let the reader drain the last output.
                    let _ = self.wait_for("the end of output", |_, _| None::<()>);
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
    let started = Instant::now();
    let mut s = Session::start(iso, personality, machine, limits.into(), echo)?;
    let mut failed = Vec::new();
    let mut boot_time = None;
    let outcome = (|| {
        let (mut pos, _) = s.wait_for("the first shell prompt", find_prompt)?;
        boot_time = Some(started.elapsed());
        let mut powered_off = false;
        for cmd in commands {
            let from = s.len().max(pos);
            s.type_line(cmd);
            if cmd.split_whitespace().next() == Some("poweroff") {
                powered_off = true;
                break;
            }
            let (end, status) =
                s.wait_for(&format!("'{cmd}' to finish"), |t, at| find_prompt(t, at.max(from)))?;
            if status != 0 {
                failed.push((cmd.clone(), status));
            }
            pos = end;
        }
        if !powered_off {
            s.type_line("poweroff");
        }
        Ok(s.finish())
    })()
    .unwrap_or_else(|o: Outcome| o);
    let console = s.console();
    Ok(Transcript { console, outcome, failed, boot_time })
}
