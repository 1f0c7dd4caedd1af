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
const RECORD: usize = 16;
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
}

impl<F: Files> Scribe<F> {
    /// Start a fresh log.
    pub fn open(mut fs: F) -> Result<Self, (F, F::Error)> {
        let dir = match fs.mkdir("/scribe") {
            Err(e) if !F::exists(&e) => Err(e),
            _ => Ok(()),
        };
        match dir.and_then(|()| Self::open_files(&mut fs, mode::TRUNCATE)) {
            Ok((log, reader, status)) => {
                Ok(Scribe { fs, log, reader, status, written: 0, verified: 0, errors: 0, rotations: 0 })
            }
            Err(e) => Err((fs, e)),
        }
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
        con.println(format_args!("scribe: ERROR at record {}: {}", n, what));
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
    /// session was reset.
    pub fn step_or_report(&mut self, con: &mut impl Console) {
        if let Err(e) = self.step(con) {
            self.errors += 1;
            con.println(format_args!("scribe: ERROR: {}", e));
            if F::session_reset(&e) {
                if let Err(e) = self.reopen() {
                    con.println(format_args!("scribe: ERROR: reopening its files: {}", e));
                }
            }
        }
    }
}

/// The scribe's life: open its files (retrying each second until the file system lets it),
/// then a step every [`PERIOD_MS`], for ever.
pub fn run<F: Files, C: Clock>(mut fs: F, mut clock: C, con: &mut impl Console) -> ! {
    let mut s = loop {
        match Scribe::open(fs) {
            Ok(s) => break s,
            Err((back, e)) => {
                con.println(format_args!("scribe: cannot open its files ({}); retrying", e));
                fs = back;
                let _ = clock.sleep(RETRY_MS);
            }
        }
    };
    loop {
        s.step_or_report(con);
        if let Err(e) = clock.sleep(PERIOD_MS) {
            con.println(format_args!("scribe: ERROR: sleep failed: {}", e));
        }
    }
}
