//! Booting the ISO in QEMU, interactively or driven through the serial line.
//!
//! A driven session (`--exec`) reads the serial console as it arrives, waits for the shell's
//! prompt, types one command, waits for the next prompt (whose form says whether the command
//! failed: `axolotl> ` or `axolotl [N]> `), and so on; it ends by typing `poweroff`. QEMU's
//! `isa-debug-exit` device turns the guest's power-off into QEMU's exit status: 33 for a clean
//! power-off, 35 for a kernel panic.

use crate::{fail, Personality, Result};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// QEMU's exit status after the guest wrote `DEBUG_EXIT_POWEROFF` to the debug-exit port.
pub const EXIT_POWEROFF: i32 = ((axolotl_abi::DEBUG_EXIT_POWEROFF as i32) << 1) | 1;
/// ... and after a kernel panic wrote `DEBUG_EXIT_PANIC`.
pub const EXIT_PANIC: i32 = ((axolotl_abi::DEBUG_EXIT_PANIC as i32) << 1) | 1;

/// How QEMU is to run the guest.
#[derive(Clone, Copy, Debug, Default)]
pub struct Machine {
    /// Count instructions: with `-icount shift=0,align=off,sleep=off` the guest's TSC advances by
    /// exactly one per retired instruction, so timings are instruction counts, repeatable.
    pub icount: bool,
    /// Start halted, waiting for gdb on localhost:1234.
    pub gdb: bool,
}

/// The QEMU command line for booting `iso`.
pub fn command(iso: &Path, personality: Personality, interactive: bool, machine: Machine) -> Command {
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.arg("-cdrom").arg(iso);
    cmd.args(["-m", "256M", "-no-reboot", "-accel", "tcg", "-cpu", "max"]);
    cmd.args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
    if interactive {
        cmd.arg("-nographic");
    } else {
        cmd.args(["-display", "none", "-serial", "stdio", "-monitor", "none"]);
    }
    if machine.gdb {
        cmd.args(["-s", "-S"]);
    }
    if machine.icount {
        cmd.args(["-icount", "shift=0,align=off,sleep=off", "-rtc", "clock=vm"]);
    }
    // GRUB reads the personality to boot from a GRUB environment block on a small raw disk
    // (see `build::grub_cfg`); `snapshot=on` keeps the file untouched, `-boot d` boots the ISO.
    match selection_disk(personality) {
        Ok(disk) => {
            cmd.arg("-drive").arg(format!("file={},format=raw,if=ide,index=0,snapshot=on", disk.display()));
        }
        Err(e) => eprintln!("[os] warning: {e}; GRUB boots its default entry (microkernel)"),
    }
    cmd.args(["-boot", "d"]);
    end_with_parent(&mut cmd);
    cmd
}

/// QEMU must not outlive `cargo os`: killed by a signal, a timeout or a test harness, it would
/// leave QEMU running (and spinning a core). Linux delivers SIGTERM to the child when the
/// thread that started it ends.
#[cfg(target_os = "linux")]
fn end_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    extern "C" {
        fn prctl(option: i32, ...) -> i32;
        fn getppid() -> i32;
    }
    const PR_SET_PDEATHSIG: i32 = 1;
    const SIGTERM: u64 = 15;
    let parent = std::process::id() as i32;
    // SAFETY: the closure runs in the forked child before exec; it only makes two system calls
    // that are async-signal-safe (prctl, getppid) and touches no memory shared with the parent.
    unsafe {
        cmd.pre_exec(move || {
            if prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have ended between fork and prctl: then nobody would be told.
            if getppid() != parent {
                return Err(std::io::Error::other("cargo os ended while starting QEMU"));
            }
            Ok(())
        })
    };
}

#[cfg(not(target_os = "linux"))]
fn end_with_parent(_: &mut Command) {}

/// The GRUB environment block that names `personality`, written once under `target/os/`.
fn selection_disk(personality: Personality) -> Result<std::path::PathBuf> {
    let path = crate::out_dir().join(format!("select-{}.img", personality.id()));
    let block = environment_block(personality);
    if std::fs::read(&path).ok().as_deref() != Some(&block[..]) {
        // Written beside and renamed, so a QEMU reading the old file never sees half of one.
        let tmp = path.with_extension(format!("img.{}", std::process::id()));
        std::fs::create_dir_all(crate::out_dir())
            .and_then(|_| std::fs::write(&tmp, &block))
            .and_then(|_| std::fs::rename(&tmp, &path))
            .map_err(|e| fail!("cannot write {}: {e}", path.display()))?;
    }
    Ok(path)
}

/// GRUB's environment block format: a header line, `name=value` lines, `#` padding to 1 KiB.
fn environment_block(personality: Personality) -> Vec<u8> {
    let mut block = format!("# GRUB Environment Block\npersonality={}\n", personality.id()).into_bytes();
    block.resize(1024, b'#');
    block
}

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

/// What a driven session shows on this terminal while it runs.
#[derive(Clone, Copy)]
pub enum Echo {
    Everything,
    Nothing,
    /// Only complete lines for which the function says yes (progress of long runs).
    Lines(fn(&str) -> bool),
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

impl Session {
    fn start(
        iso: &Path,
        personality: Personality,
        machine: Machine,
        limits: Limits,
        echo: Echo,
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
                match echo {
                    Echo::Everything => {
                        print!("{chunk}");
                        let _ = std::io::stdout().flush();
                    }
                    Echo::Lines(wanted) => {
                        // Complete lines only: the partial one at the end waits for the next chunk.
                        let text = &guard.0;
                        let from = text.rfind('\n').map_or(0, |i| i + 1);
                        let joined = format!("{}{}", &text[from..], chunk);
                        let mut lines: Vec<&str> = joined.split('\n').collect();
                        lines.pop();
                        for line in lines.into_iter().filter(|l| wanted(l)) {
                            println!("{line}");
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

/// Boot `iso` with the serial console on this terminal. Returns QEMU's exit status.
pub fn interactive(iso: &Path, personality: Personality, machine: Machine) -> Result<i32> {
    eprintln!("[os] booting in QEMU; quit with Ctrl-A X (or type 'poweroff' in the shell)");
    let status =
        command(iso, personality, true, machine).status().map_err(|e| fail!("cannot start QEMU: {e}"))?;
    Ok(status.code().unwrap_or(-1))
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

    #[test]
    fn debug_exit_statuses() {
        assert_eq!(EXIT_POWEROFF, 33);
        assert_eq!(EXIT_PANIC, 35);
    }
}
