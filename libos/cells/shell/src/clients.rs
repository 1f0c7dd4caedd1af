//! The shell's fs and timer sessions, wrapped so the shared crates can use them: `campaign`'s
//! workloads and `shellcmd`'s commands call them through their traits.

use cell_fs::Fs;
use cell_timer::{Timer, TimerError};
use fs_core::FsError;

/// A session with the file system.
pub struct Files(pub Fs);
campaign::forward_files!(Files, FsError);
shellcmd::forward_files!(Files, FsError, cell_fs::PUT_MAX);

/// A session with the timer.
pub struct Clock(pub Timer);
campaign::forward_clock!(Clock, TimerError);
