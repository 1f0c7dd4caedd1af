//! The shell commands both personalities share, written once: the command line's dispatch and
//! argument checks, the file commands (`ls cat write append mkdir rm cd pwd fsck format`),
//! `echo`, `help`, `sleep`, the `ps` table's layout and the prompt's line editing, with every
//! line they print and every error they give.
//!
//! The tests in `tests/` and the host tool parse these lines: keep them as they are.
//!
//! Each shell plugs its personality in through the traits in [`personality`] and keeps what is
//! really its own (task control from its kernel, fault injection, benchmarks, power-off):
//!
//! ```text
//!   microkernel shell ──┐                      ┌── Console   print (errors: `error: ...`)
//!                       ├─ shellcmd::run ──────┼── Files     the fs session (campaign::Files and more)
//!   libos shell cell ───┘   (this crate)       ├── Clock     campaign::Clock, for sleep
//!                                              └── Shell     help text, inject, campaign, bench,
//!                                                            and the personality's own commands
//! ```
#![no_std]
#![forbid(unsafe_code)]

pub mod audit;
mod commands;
mod files;
pub mod grow;
mod line;
pub mod personality;
pub mod prompt;
mod tasks;

pub use commands::{interrupted, run, run_line, BenchRows, BENCH_MAX, INTERRUPTED, LINE_MAX};
/// The longest path, which sizes [`Files::cwd`]'s buffer.
pub use fs_core::PATH_MAX;
pub use line::{Edit, LineEditor, Typeahead, CTRL_C};
pub use personality::{Console, Entry, Files, Help, Shell, Status};
pub use prompt::Prompt;
pub use tasks::{print_task_header, print_task_row, update_args, TaskRow, UpdateArgs, UPDATE_USAGE};

#[cfg(test)]
mod tests;
