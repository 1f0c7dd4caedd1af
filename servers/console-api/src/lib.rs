//! The console server's protocol, its client stub, and `print!`/`println!` for every task.
//!
//! A request is a postcard-encoded [`Request`] in the IPC buffer, with label [`LABEL`]; the reply
//! is a postcard-encoded [`Response`]. A request that does not decode gets
//! `Response::Error(ConsoleError::Malformed)`; the server never trusts a length it was sent.
//!
//! ```text
//!   shell ── call(console, Write("ls\n")) ──► console ── out 0x3f8 ──► UART
//!   shell ── call(console, Read{max}) ──────► console: no input yet → saves the reply capability
//!                                              IRQ 4 → notification → drain RX → reply Data(..)
//! ```
#![no_std]
#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};
use userlib::abi::{CapType, Error, IPC_BUFFER_SIZE};
use userlib::cap::{Cap, Endpoint};
use userlib::msg::CallError;

/// Label of every console request and response.
pub const LABEL: u32 = 0xC0_0501;
/// Largest write one request carries: the console records its progress through a write in a
/// byte the UART keeps (its scratch register), so that a write delivered again to a restarted
/// console goes on where the failed one stopped instead of printing its start twice.
pub const MAX_WRITE: usize = 254;
const _: () = assert!(MAX_WRITE + 16 <= IPC_BUFFER_SIZE && MAX_WRITE < u8::MAX as usize);

#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    /// Write these bytes to the terminal (`\n` becomes `\r\n`).
    Write(#[serde(with = "serde_bytes")] &'a [u8]),
    /// Return at least one and at most `max` bytes of input, waiting until there is some.
    Read { max: u16 },
    /// Return at most `max` bytes of input already received, possibly none; never waits (a
    /// shell looks for Ctrl-C this way while a command runs).
    Poll { max: u16 },
    /// How many bytes the console has written and read since it started: version 2 answers
    /// `Counts`, version 1 `Malformed`.
    Counts,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
pub enum Response<'a> {
    Written(u32),
    Data(#[serde(with = "serde_bytes")] &'a [u8]),
    Counts { written: u64, read: u64 },
    Error(ConsoleError),
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsoleError {
    /// The request did not decode, or carried the wrong label.
    Malformed,
    /// Another client is already waiting for input.
    Busy,
    /// The kernel refused the IPC.
    Ipc(u8),
}

impl From<Error> for ConsoleError {
    fn from(e: Error) -> Self {
        ConsoleError::Ipc(e as u8)
    }
}

/// A client of the console server.
#[derive(Clone, Copy)]
pub struct Console {
    ep: Cap<Endpoint>,
}

impl Console {
    pub fn new(ep: Cap<Endpoint>) -> Self {
        Console { ep }
    }

    /// The console of this task's manifest entry (`call console`), if it has one.
    pub fn from_boot() -> Option<Self> {
        userlib::rt::boot_info().find(CapType::Endpoint, "console").map(|s| Console::new(Cap::at(s)))
    }

    fn request<'r>(&self, req: &Request<'_>, reply: &'r mut [u8]) -> Result<Response<'r>, ConsoleError> {
        self.ep.call_encoded(LABEL, req, reply).map_err(|e| match e {
            CallError::Ipc(e) => ConsoleError::Ipc(e as u8),
            CallError::Encode | CallError::Decode => ConsoleError::Malformed,
        })
    }

    /// Write all of `bytes`.
    pub fn write(&self, bytes: &[u8]) -> Result<(), ConsoleError> {
        for chunk in bytes.chunks(MAX_WRITE) {
            let mut reply = [0u8; 16];
            match self.request(&Request::Write(chunk), &mut reply)? {
                Response::Written(_) => {}
                Response::Error(e) => return Err(e),
                _ => return Err(ConsoleError::Malformed),
            }
        }
        Ok(())
    }

    /// Read at least one byte of input into `out`; returns how many.
    pub fn read(&self, out: &mut [u8]) -> Result<usize, ConsoleError> {
        let max = out.len().min(200) as u16;
        self.input(&Request::Read { max }, out)
    }

    /// Read the input already received into `out` without waiting; returns how many bytes
    /// (0 when nothing was typed).
    pub fn poll(&self, out: &mut [u8]) -> Result<usize, ConsoleError> {
        let max = out.len().min(200) as u16;
        self.input(&Request::Poll { max }, out)
    }

    fn input(&self, req: &Request<'_>, out: &mut [u8]) -> Result<usize, ConsoleError> {
        let mut reply = [0u8; 256];
        match self.request(req, &mut reply)? {
            Response::Data(d) => {
                let k = d.len().min(out.len());
                out[..k].copy_from_slice(&d[..k]);
                Ok(k)
            }
            Response::Error(e) => Err(e),
            _ => Err(ConsoleError::Malformed),
        }
    }

    /// The bytes the console has written and read since it started, `(written, read)`
    /// (`Malformed` from version 1, which does not count them).
    pub fn counts(&self) -> Result<(u64, u64), ConsoleError> {
        let mut reply = [0u8; 32];
        match self.request(&Request::Counts, &mut reply)? {
            Response::Counts { written, read } => Ok((written, read)),
            Response::Error(e) => Err(e),
            _ => Err(ConsoleError::Malformed),
        }
    }
}

/// Buffers formatted output and sends it in few, large writes.
struct Out {
    console: Option<Console>,
    buf: heapless::Vec<u8, 512>,
}

impl Out {
    fn flush(&mut self) {
        if let Some(c) = self.console {
            let _ = c.write(&self.buf);
        }
        self.buf.clear();
    }
}

impl core::fmt::Write for Out {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for &b in s.as_bytes() {
            if self.buf.push(b).is_err() {
                self.flush();
                let _ = self.buf.push(b);
            }
        }
        Ok(())
    }
}

#[doc(hidden)]
pub fn _print(args: core::fmt::Arguments<'_>) {
    let mut out = Out { console: Console::from_boot(), buf: heapless::Vec::new() };
    let _ = core::fmt::Write::write_fmt(&mut out, args);
    out.flush();
}

#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::_print(format_args!($($arg)*)) };
}

#[macro_export]
macro_rules! println {
    () => { $crate::_print(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::_print(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `log` records go to the console as `[task] LEVEL message`.
struct ConsoleLogger;

impl log::Log for ConsoleLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let me = userlib::rt::boot_info().name();
            _print(format_args!("[{}] {} {}\n", me, record.level(), record.args()));
        }
    }

    fn flush(&self) {}
}

static LOGGER: ConsoleLogger = ConsoleLogger;

/// Send this task's `log` output to the console, up to `level`.
pub fn init_log(level: log::LevelFilter) {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_garbage_is_rejected() {
        let mut buf = [0u8; 64];
        let n = postcard::to_slice(&Request::Write(b"hi"), &mut buf).unwrap().len();
        assert_eq!(postcard::from_bytes::<Request<'_>>(&buf[..n]).unwrap(), Request::Write(b"hi"));
        assert!(postcard::from_bytes::<Request<'_>>(&[7, 1, 2]).is_err(), "unknown variant");
        assert!(postcard::from_bytes::<Request<'_>>(&[0, 50, b'a']).is_err(), "length beyond the payload");
        assert!(postcard::from_bytes::<Request<'_>>(&[]).is_err());
    }
}
