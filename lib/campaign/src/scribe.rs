//! The scribe: a background client that keeps the file and timer servers busy and checks them,
//! written once for both personalities (the microkernel's `scribe` task, the libos's `scribe`
//! task in the shell cell).
//!
//! Every [`PERIOD_MS`] it appends a numbered record to `/scribe/log`, reads it back, and every
//! tenth record re-reads the whole log against its own model of what it wrote. Its status line
//! is in `/scribe/status` (`cat /scribe/status`); it prints to the console only when a check
//! fails, so a person at the shell is not disturbed. When the log reaches [`ROTATE_AT`] records
//! it starts a new one. It holds `/scribe/log` open for writing all the time, so it is also the
//! standing example of the file system's rule for files another session has open.

use crate::personality::{Clock, Console, Files};
use core::fmt::Write;
use fs_core::mode;

/// Between two records.
pub const PERIOD_MS: u32 = 300;
/// Records in the log before it starts a new one.
pub const ROTATE_AT: u32 = 4000;
pub(crate) const RECORD: usize = 16;
/// Between two tries to open the files at start-up.
const RETRY_MS: u32 = 1000;

/// Record `n`: "scribe 00000042\n" (always 16 bytes).
pub fn record(n: u32) -> [u8; RECORD] {
    let mut r = *b"scribe 00000000\n";
    let mut v = n;
    for i in (7..15).rev() {
        r[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    r
}

/// The scribe's files and its model of what it wrote.
pub struct Scribe<F> {
    fs: F,
    log: u32,
    reader: u32,
    status: u32,
    pub written: u32,
    pub verified: u32,
    pub errors: u32,
    pub rotations: u32,
    /// Its files are gone and a fresh log could not be started yet: it keeps trying at every
    /// step without saying so again.
    lost: bool,
}

impl<F: Files> Scribe<F> {
    /// Start a fresh log.
    pub fn open(mut fs: F) -> Result<Self, (F, F::Error)> {
        match Self::fresh(&mut fs) {
            Ok((log, reader, status)) => Ok(Scribe {
                fs,
                log,
                reader,
                status,
                written: 0,
                verified: 0,
                errors: 0,
                rotations: 0,
                lost: false,
            }),
            Err(e) => Err((fs, e)),
        }
    }

    /// `/scribe` (made if missing) and its files, emptied.
    fn fresh(fs: &mut F) -> Result<(u32, u32, u32), F::Error> {
        match fs.mkdir("/scribe") {
            Err(e) if !F::exists(&e) => return Err(e),
            _ => {}
        }
        Self::open_files(fs, mode::TRUNCATE)
    }

    /// The log for appending, a reader on it, the status file; `truncate` (`mode::TRUNCATE` on
    /// a fresh start, 0 to keep them) empties the log and the status.
    fn open_files(fs: &mut F, truncate: u8) -> Result<(u32, u32, u32), F::Error> {
        let log = fs.open("/scribe/log", mode::WRITE | mode::APPEND | mode::CREATE | truncate)?;
        let reader = fs.open("/scribe/log", mode::READ)?;
        let status = fs.open("/scribe/status", mode::WRITE | mode::CREATE | truncate)?;
        Ok((log, reader, status))
    }

    /// Our session state was reset (its checks failed): open the files again, keeping the log
    /// and the model.
    fn reopen(&mut self) -> Result<(), F::Error> {
        (self.log, self.reader, self.status) = Self::open_files(&mut self.fs, 0)?;
        Ok(())
    }

    fn fail(&mut self, con: &mut impl Console, what: &str, n: u32) {
        self.errors += 1;
        con.println(format_args!("\n[scribe] ERROR at record {}: {}", n, what));
    }

    /// Read record `n` back from the log and compare with the model.
    fn verify(&mut self, n: u32) -> Result<bool, F::Error> {
        self.fs.seek(self.reader, n * RECORD as u32)?;
        let mut got = [0u8; RECORD];
        let len = self.fs.read(self.reader, &mut got)?;
        Ok(len == RECORD && got == record(n))
    }

    /// Append one record, check it (and every tenth time the whole log), update the status.
    pub fn step(&mut self, con: &mut impl Console) -> Result<(), F::Error> {
        let n = self.written;
        self.fs.write(self.log, &record(n))?;
        self.written += 1;
        if self.verify(n)? {
            self.verified += 1;
        } else {
            self.fail(con, "record read back differs", n);
        }
        if self.written.is_multiple_of(10) {
            for i in 0..self.written {
                if !self.verify(i)? {
                    self.fail(con, "earlier record changed", i);
                    break;
                }
            }
        }
        let mut line: heapless::String<96> = heapless::String::new();
        let _ = writeln!(
            line,
            "scribe: {:>6} records written, {:>6} verified, {} errors, {} rotations",
            self.written, self.verified, self.errors, self.rotations
        );
        self.fs.seek(self.status, 0)?;
        self.fs.write(self.status, line.as_bytes())?;
        if self.written == ROTATE_AT {
            let fresh = self.fs.open("/scribe/log", mode::WRITE | mode::TRUNCATE)?;
            self.fs.close(fresh)?;
            self.written = 0;
            self.rotations += 1;
        }
        Ok(())
    }

    /// One step, and what to do about an error: count it, say it, reopen the files if the
    /// session was reset. Files that are gone (the disk was formatted) are replaced by a fresh
    /// log, said once: a scribe that cannot write does not fill the console, it retries
    /// quietly and says when it writes again.
    pub fn step_or_report(&mut self, con: &mut impl Console) {
        match self.step(con) {
            Ok(()) if self.lost => {
                self.lost = false;
                con.println(format_args!("\n[scribe] writing again, in a fresh log"));
            }
            Ok(()) => {}
            Err(e) => {
                if !self.lost {
                    self.errors += 1;
                    con.println(format_args!("\n[scribe] ERROR: {}", e));
                }
                if self.lost || F::session_reset(&e) {
                    self.recover(con);
                }
            }
        }
    }

    /// The session was reset: open the files again; if they are gone, start a fresh log (the
    /// records it had written are gone with them: its model starts again too).
    fn recover(&mut self, con: &mut impl Console) {
        let gone = match self.reopen() {
            Ok(()) => return,
            Err(e) => e,
        };
        match Self::fresh(&mut self.fs) {
            Ok(files) => {
                (self.log, self.reader, self.status) = files;
                (self.written, self.verified) = (0, 0);
                con.println(format_args!("\n[scribe] its files are gone ({}); started a fresh log", gone));
                self.lost = false;
            }
            Err(e) if !self.lost => {
                con.println(format_args!(
                    "scribe: its files are gone ({}) and a fresh log cannot be started ({}); \
                     retrying quietly",
                    gone, e
                ));
                self.lost = true;
            }
            Err(_) => {}
        }
    }
}

/// The scribe's life: open its files (retrying each second until the file system lets it),
/// then a step every [`PERIOD_MS`], for ever.
pub fn run<F: Files, C: Clock>(mut fs: F, mut clock: C, con: &mut impl Console) -> ! {
    let mut said = false;
    let mut s = loop {
        match Scribe::open(fs) {
            Ok(s) => break s,
            Err((back, e)) => {
                // Said once: a disk that is refused stays refused until someone formats it.
                if !said {
                    con.println(format_args!("\n[scribe] cannot open its files ({}); retrying quietly", e));
                    said = true;
                }
                fs = back;
                let _ = clock.sleep(RETRY_MS);
            }
        }
    };
    if said {
        con.println(format_args!("\n[scribe] its files are open; writing"));
    }
    loop {
        s.step_or_report(con);
        if let Err(e) = clock.sleep(PERIOD_MS) {
            con.println(format_args!("\n[scribe] ERROR: sleep failed: {}", e));
        }
    }
}
