//! What a personality provides to run a campaign. Each shell implements these over its own
//! clients (IPC stubs on the microkernel, cell clients on the libos); the campaign logic and
//! every line it prints stay in this crate.

use core::fmt;

/// Where the campaign's lines go.
pub trait Console {
    /// Print one line (the implementation adds the newline).
    fn println(&mut self, line: fmt::Arguments<'_>);
}

/// The shell running the campaign: its console, the tasks it can inject into, and sessions
/// with the servers the workloads use.
pub trait Shell: Console {
    type Target: Target;
    type Files: Files;
    type Clock: Clock;

    /// The task called `name`, or `None` if there is none.
    fn target(&mut self, name: &str) -> Option<Self::Target>;
    /// A fresh session with the file system; `None` if none can be opened.
    fn files(&mut self) -> Option<Self::Files>;
    /// A session with the timer; `None` if none can be opened.
    fn clock(&mut self) -> Option<Self::Clock>;
    /// Did the person at the console ask to stop (Ctrl-C)? Asked between faults; must not wait.
    fn interrupted(&mut self) -> bool;
}

/// What the campaign sees of the task under test.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// Incarnations so far: a rise means the task crashed and was restarted.
    pub restarts: u32,
    /// Not serving now (crashed and not yet back, or halted): a fault that manifested even if
    /// the restart count has not moved yet.
    pub down: bool,
}

/// The task faults are injected into.
pub trait Target {
    /// A kind of fault the personality's injector knows.
    type Kind: Copy + 'static;
    /// Every kind, in the order a seed picks from: both personalities list them in the same
    /// order, so a seed picks the same kinds on both.
    const KINDS: &'static [Self::Kind];

    /// The kind's name as printed in `fault N: KIND ...` lines.
    fn kind_name(kind: Self::Kind) -> &'static str;
    /// Inject one fault; returns what was hit (register and bit, address, ...) as a number to
    /// print, or `None` if there was nothing to hit (not an injected fault).
    fn inject(&mut self, kind: Self::Kind, seed: u64) -> Option<u64>;
    /// The task's state now (a default `Status` if it cannot be read).
    fn status(&mut self) -> Status;
    /// Wait until the task serves again after a fault. False if it is halted or gone.
    fn wait_running(&mut self) -> bool;
    /// Restarts of every other task, added up: faults must stay inside the target.
    fn restarts_of_others(&mut self) -> u32;
}

/// The file system client operations the file workload uses (a session holds its open files).
pub trait Files {
    type Error: fmt::Display;

    fn mkdir(&mut self, path: &str) -> Result<(), Self::Error>;
    /// Open `path` with `fs_core::mode` bits; returns the file descriptor.
    fn open(&mut self, path: &str, mode: u8) -> Result<u32, Self::Error>;
    fn seek(&mut self, fd: u32, pos: u32) -> Result<(), Self::Error>;
    /// Read up to `out.len()` bytes; returns how many were read.
    fn read(&mut self, fd: u32, out: &mut [u8]) -> Result<usize, Self::Error>;
    fn write(&mut self, fd: u32, data: &[u8]) -> Result<(), Self::Error>;
    fn close(&mut self, fd: u32) -> Result<(), Self::Error>;
    /// Did `mkdir` fail only because the directory is there already?
    fn exists(e: &Self::Error) -> bool;
    /// Was the session's state (its open files) reset, so the file must be opened again?
    fn session_reset(e: &Self::Error) -> bool;
}

/// The timer client operations the clock workload uses.
pub trait Clock {
    type Error: fmt::Display;

    /// Milliseconds since boot.
    fn now_ms(&mut self) -> Result<u64, Self::Error>;
    fn sleep(&mut self, ms: u32) -> Result<(), Self::Error>;
}

/// Implement [`Files`] for `$wrapper`, a newtype over a file system client. Both personalities'
/// clients (`fs_api::Fs` over IPC, `cell_fs::Fs` over a cell call) make the same calls with the
/// same signatures and have an error enum `$error` with `Exists`, `StateReset` and `BadFd`; but
/// neither client crate may depend on this one, so each shell wraps its client and forwards.
#[macro_export]
macro_rules! forward_files {
    ($wrapper:ty, $error:ident) => {
        impl $crate::Files for $wrapper {
            type Error = $error;

            fn mkdir(&mut self, path: &str) -> core::result::Result<(), $error> {
                self.0.mkdir(path)
            }
            fn open(&mut self, path: &str, mode: u8) -> core::result::Result<u32, $error> {
                self.0.open(path, mode)
            }
            fn seek(&mut self, fd: u32, pos: u32) -> core::result::Result<(), $error> {
                self.0.seek(fd, pos)
            }
            fn read(&mut self, fd: u32, out: &mut [u8]) -> core::result::Result<usize, $error> {
                self.0.read(fd, out)
            }
            fn write(&mut self, fd: u32, data: &[u8]) -> core::result::Result<(), $error> {
                self.0.write(fd, data)
            }
            fn close(&mut self, fd: u32) -> core::result::Result<(), $error> {
                self.0.close(fd)
            }
            fn exists(e: &$error) -> bool {
                matches!(e, $error::Exists)
            }
            fn session_reset(e: &$error) -> bool {
                matches!(e, $error::StateReset | $error::BadFd)
            }
        }
    };
}

/// Implement [`Clock`] for `$wrapper`, a newtype over a timer client (`timer_api::Timer`,
/// `cell_timer::Timer`) whose calls fail with `$error`; see [`forward_files!`] for why.
#[macro_export]
macro_rules! forward_clock {
    ($wrapper:ty, $error:ident) => {
        impl $crate::Clock for $wrapper {
            type Error = $error;

            fn now_ms(&mut self) -> core::result::Result<u64, $error> {
                self.0.now_ms()
            }
            fn sleep(&mut self, ms: u32) -> core::result::Result<(), $error> {
                self.0.sleep(ms)
            }
        }
    };
}
