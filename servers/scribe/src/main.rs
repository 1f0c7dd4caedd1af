//! The scribe: a background client that keeps the file and timer servers busy and checks them.
//!
//! Every [`PERIOD_MS`] it appends a numbered record to `/scribe/log`, reads it back, and every
//! tenth record re-reads the whole log against its own model of what it wrote. Its status line
//! is in `/scribe/status` (`cat /scribe/status`); it prints to the console only when a check
//! fails, so a person at the shell is not disturbed. When the log reaches [`ROTATE_AT`] records
//! it starts a new one.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use console_api::println;
use core::fmt::Write;
use fs_api::{mode, Fs, FsError};
use timer_api::Timer;
use userlib::abi::{BootInfo, Error};
use userlib::cap::{Cap, Endpoint};

const PERIOD_MS: u32 = 300;
const RECORD: usize = 16;
const ROTATE_AT: u32 = 4000;

/// Record `n`: "scribe 00000042\n" (always 16 bytes).
fn record(n: u32) -> [u8; RECORD] {
    let mut r = *b"scribe 00000000\n";
    let mut v = n;
    for i in (7..15).rev() {
        r[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    r
}

struct Scribe {
    fs: Fs,
    log: u32,
    reader: u32,
    status: u32,
    written: u32,
    verified: u32,
    errors: u32,
    rotations: u32,
}

impl Scribe {
    fn open(fs: Fs) -> Result<Self, FsError> {
        match fs.mkdir("/scribe") {
            Ok(()) | Err(FsError::Exists) => {}
            Err(e) => return Err(e),
        }
        let log = fs.open("/scribe/log", mode::WRITE | mode::APPEND | mode::CREATE | mode::TRUNCATE)?;
        let reader = fs.open("/scribe/log", mode::READ)?;
        let status = fs.open("/scribe/status", mode::WRITE | mode::CREATE | mode::TRUNCATE)?;
        Ok(Scribe { fs, log, reader, status, written: 0, verified: 0, errors: 0, rotations: 0 })
    }

    /// Our session state in fs was reset (its checks failed): open the files again, keeping
    /// the log and the model.
    fn reopen(&mut self) -> Result<(), FsError> {
        self.log = self.fs.open("/scribe/log", mode::WRITE | mode::APPEND | mode::CREATE)?;
        self.reader = self.fs.open("/scribe/log", mode::READ)?;
        self.status = self.fs.open("/scribe/status", mode::WRITE | mode::CREATE)?;
        Ok(())
    }

    fn fail(&mut self, what: &str, n: u32) {
        self.errors += 1;
        println!("scribe: ERROR at record {}: {}", n, what);
    }

    /// Read record `n` back from the log and compare with the model.
    fn verify(&mut self, n: u32) -> Result<bool, FsError> {
        self.fs.seek(self.reader, n * RECORD as u32)?;
        let mut got = [0u8; RECORD];
        let len = self.fs.read(self.reader, &mut got)?;
        Ok(len == RECORD && got == record(n))
    }

    fn step(&mut self) -> Result<(), FsError> {
        let n = self.written;
        self.fs.write(self.log, &record(n))?;
        self.written += 1;
        if self.verify(n)? {
            self.verified += 1;
        } else {
            self.fail("record read back differs", n);
        }
        if self.written.is_multiple_of(10) {
            for i in 0..self.written {
                if !self.verify(i)? {
                    self.fail("earlier record changed", i);
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
}

userlib::entry!(main);

fn main(boot: &'static BootInfo) -> Result<(), Error> {
    let fs_ep = Cap::<Endpoint>::from_boot(boot, "fs").ok_or(Error::EmptySlot)?;
    let timer_ep = Cap::<Endpoint>::from_boot(boot, "timer").ok_or(Error::EmptySlot)?;
    let fs = Fs::connect(fs_ep, 20).map_err(|_| Error::Dead)?;
    let timer = Timer::connect(timer_ep, 21).map_err(|_| Error::Dead)?;
    let mut s = loop {
        match Scribe::open(fs) {
            Ok(s) => break s,
            Err(e) => {
                println!("scribe: cannot open its files ({}); retrying", e);
                let _ = timer.sleep(1000);
            }
        }
    };
    loop {
        if let Err(e) = s.step() {
            s.errors += 1;
            println!("scribe: ERROR: {}", e);
            if matches!(e, FsError::StateReset | FsError::BadFd) {
                if let Err(e) = s.reopen() {
                    println!("scribe: ERROR: reopening its files: {}", e);
                }
            }
        }
        if let Err(e) = timer.sleep(PERIOD_MS) {
            println!("scribe: ERROR: sleep failed: {}", e);
        }
    }
}
