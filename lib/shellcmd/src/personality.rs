//! What a personality provides to run the shared commands. Each shell implements these over its
//! own clients (IPC stubs on the microkernel, cell clients on the libos); the commands and every
//! line they print stay in this crate.
//!
//! The file and timer sessions extend the `campaign` crate's [`campaign::Files`] and use its
//! [`campaign::Clock`] as it is, so one wrapper per client serves both the campaign workloads
//! and these commands. The console is a trait of its own: the commands print partial lines
//! (`cat`) and print while they hold the file session (`ls`), so it takes `&self` and lives
//! beside the sessions, where the campaign's console takes `&mut self`.

use core::fmt;
use fs_core::PATH_MAX;
pub use fs_core::{Entry, Report};

/// A shell's own lines of `help`, in the shared layout (two spaces, the command in 18 columns,
/// what it does); `help` prints the title, then the shared `help` and `echo` lines, `tasks`, the
/// shared fault and file commands, `sessions`, and the shared `poweroff` and editing lines.
#[derive(Clone, Copy, Debug)]
pub struct Help {
    /// The first line, naming the shell.
    pub title: &'static str,
    /// The personality's task commands (`ps`, `kill`, ...).
    pub tasks: &'static str,
    /// `cd PATH, pwd`, `sleep MS` and `bench [N]`: where this personality keeps the session and
    /// what it measures.
    pub sessions: &'static str,
}

/// How a command ended: 0 = success; the prompt shows any other value.
pub type Status = u32;

/// Where the shell's output goes.
pub trait Console {
    /// Print `text` as it is (no newline added).
    fn print(&self, text: fmt::Arguments<'_>);

    /// Print one line.
    fn println(&self, line: fmt::Arguments<'_>) {
        self.print(format_args!("{}\n", line));
    }

    /// Report a failed command as `error: MSG`; returns its status, 1.
    fn fail(&self, msg: fmt::Arguments<'_>) -> Status {
        self.println(format_args!("error: {}", msg));
        1
    }
}

/// The file system session the file commands use: the campaign's operations and the rest.
pub trait Files: campaign::Files {
    /// The error `ls` gives for a path that is not a directory.
    const NOT_A_DIRECTORY: Self::Error;
    /// Most bytes one [`put`](Self::put) carries: what the client sends in one request.
    const PUT_MAX: usize;

    /// Did `open` fail because the path (or a directory on it) does not exist?
    fn not_found(e: &Self::Error) -> bool;
    /// Kind (`fs_core::KIND_*`) and size of `path`.
    fn stat(&mut self, path: &str) -> Result<(u8, u32), Self::Error>;
    /// The `index`-th entry of directory `path`, or `None` past the last.
    fn entry(&mut self, path: &str, index: u32) -> Result<Option<Entry>, Self::Error>;
    fn remove(&mut self, path: &str) -> Result<(), Self::Error>;
    fn chdir(&mut self, path: &str) -> Result<(), Self::Error>;
    /// The session's current directory, copied into `out`.
    fn cwd<'o>(&mut self, out: &'o mut [u8; PATH_MAX]) -> Result<&'o str, Self::Error>;
    /// Make `data` (at most [`PUT_MAX`](Self::PUT_MAX) bytes) the contents of the file at
    /// `path` (with `append`, add it at the end), creating the file if it is missing, in one
    /// request: all of it, or on error nothing.
    fn put(&mut self, path: &str, data: &[u8], append: bool) -> Result<(), Self::Error>;
    /// Have the file server check its disk.
    fn fsck(&mut self) -> Result<Report, Self::Error>;
    /// Have the file server write an empty file system over its disk: one it refused, or with
    /// `force` one that holds files.
    fn format(&mut self, force: bool) -> Result<(), Self::Error>;
    /// Did `format` refuse because the disk holds files (and `force` was not given)?
    fn holds_files(e: &Self::Error) -> bool;
}

/// A shell: its console and sessions, and the commands only its personality can run.
pub trait Shell {
    type Console: Console;
    type Files: Files;
    type Clock: campaign::Clock<Error: fmt::Display>;

    /// This shell's own lines of `help`; the shared ones go around them.
    const HELP: Help;
    /// The longest sleep its timer accepts (both personalities: one hour); `sleep` refuses a
    /// longer one before it starts.
    const SLEEP_MAX_MS: u32;

    fn console(&self) -> &Self::Console;
    /// The console together with the file system session (opened now if there is none yet):
    /// `ls` and `cat` print while they read. `Err` says why there is no session.
    fn files(&mut self) -> (&Self::Console, Result<&mut Self::Files, &'static str>);
    /// The timer session; `None` if there is none.
    fn clock(&mut self) -> Option<&mut Self::Clock>;
    /// A seed for `inject NAME KIND` without one (the time stamp counter).
    fn seed(&self) -> u64;

    /// Was Ctrl-C typed since the command began (or since the last time this said so)? Looks
    /// at the console without waiting and keeps every other key for the next prompt (see
    /// [`crate::Typeahead::interrupt`]). A command that can run for long asks between steps.
    fn interrupted(&mut self) -> bool;

    /// `inject NAME KIND SEED`, and `kill NAME` as `inject NAME kill 0`.
    fn inject(&mut self, name: &str, kind: &str, seed: u64) -> Status;
    /// `campaign NAME COUNT SEED`, its arguments checked.
    fn campaign(&mut self, name: &str, count: u32, seed: u64) -> Status;
    /// `bench [disk] RUNS`, with `10 <= RUNS <= BENCH_MAX`.
    fn bench(&mut self, rows: crate::BenchRows, runs: usize) -> Status;
    /// One of the personality's own commands, `cmd` with the rest of the line `args`;
    /// `None` if it has no command `cmd`.
    fn command(&mut self, cmd: &str, args: &str) -> Option<Status>;
}

/// Implement [`Files`] for `$wrapper`, a newtype over a file system client that already
/// implements `campaign::Files` (see `campaign::forward_files!`, which this completes). Both
/// personalities' clients make these calls with the same signatures (entries are
/// `fs_core::Entry`), and an error enum `$error` with `NotFound`, `NotADirectory` and
/// `HoldsFiles`;
/// `$put_max` is the most one of the client's `put` requests carries.
#[macro_export]
macro_rules! forward_files {
    ($wrapper:ty, $error:ident, $put_max:expr) => {
        impl $crate::Files for $wrapper {
            const NOT_A_DIRECTORY: $error = $error::NotADirectory;
            const PUT_MAX: usize = $put_max;

            fn not_found(e: &$error) -> bool {
                matches!(e, $error::NotFound)
            }
            fn stat(&mut self, path: &str) -> core::result::Result<(u8, u32), $error> {
                self.0.stat(path)
            }
            fn entry(
                &mut self,
                path: &str,
                index: u32,
            ) -> core::result::Result<Option<$crate::Entry>, $error> {
                self.0.entry(path, index)
            }
            fn remove(&mut self, path: &str) -> core::result::Result<(), $error> {
                self.0.remove(path)
            }
            fn chdir(&mut self, path: &str) -> core::result::Result<(), $error> {
                self.0.chdir(path)
            }
            fn cwd<'o>(
                &mut self,
                out: &'o mut [u8; $crate::PATH_MAX],
            ) -> core::result::Result<&'o str, $error> {
                self.0.cwd(out)
            }
            fn put(&mut self, path: &str, data: &[u8], append: bool) -> core::result::Result<(), $error> {
                self.0.put(path, data, append)
            }
            fn fsck(&mut self) -> core::result::Result<$crate::personality::Report, $error> {
                self.0.fsck()
            }
            fn format(&mut self, force: bool) -> core::result::Result<(), $error> {
                self.0.format(force)
            }
            fn holds_files(e: &$error) -> bool {
                matches!(e, $error::HoldsFiles)
            }
        }
    };
}
