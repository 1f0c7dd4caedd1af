//! The shell's fs and timer sessions, wrapped so the shared crates can use them: `campaign`'s
//! workloads and `shellcmd`'s commands call them through their traits.

use fs_api::{Fs, FsError};
use timer_api::{Timer, TimerError};

/// A session with the file system.
#[derive(Clone, Copy)]
pub struct Files(pub Fs);
campaign::forward_files!(Files, FsError);
shellcmd::forward_files!(Files, FsError, fs_api::MAX_IO);

/// A session with the timer.
#[derive(Clone, Copy)]
pub struct Clock(pub Timer);
campaign::forward_clock!(Clock, TimerError);
