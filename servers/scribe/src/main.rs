//! The scribe task: a background client that keeps the file and timer servers busy and checks
//! them (`campaign::scribe`, which the libos runs too). It appends a numbered record to
//! `/scribe/log` every 300 ms, verifies them, keeps its status in `/scribe/status`, and prints
//! only when a check fails.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use fs_api::{Fs, FsError};
use timer_api::{Timer, TimerError};
use userlib::abi::{BootInfo, Error};
use userlib::cap::{Cap, Endpoint};

/// The file system client as the scribe uses it.
struct Files(Fs);
campaign::forward_files!(Files, FsError);

/// The timer client as the scribe uses it.
struct Clock(Timer);
campaign::forward_clock!(Clock, TimerError);

/// Lines go to the console server.
struct Console;

impl campaign::Console for Console {
    fn println(&mut self, line: core::fmt::Arguments<'_>) {
        console_api::println!("{}", line);
    }
}

userlib::entry!(main);

fn main(boot: &'static BootInfo) -> Result<(), Error> {
    let fs_ep = Cap::<Endpoint>::from_boot(boot, "fs").ok_or(Error::EmptySlot)?;
    let timer_ep = Cap::<Endpoint>::from_boot(boot, "timer").ok_or(Error::EmptySlot)?;
    let fs = Fs::connect(fs_ep, 20).map_err(|_| Error::Dead)?;
    let timer = Timer::connect(timer_ep, 21).map_err(|_| Error::Dead)?;
    campaign::scribe::run(Files(fs), Clock(timer), &mut Console)
}
