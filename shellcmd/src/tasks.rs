//! The `ps` table both shells print, one row per task; `cargo os` and the tests read its columns.

use crate::personality::Console;

/// One task as `ps` shows it.
pub struct TaskRow<'a> {
    pub name: &'a str,
    pub index: usize,
    pub generation: u32,
    pub state: &'a str,
    pub restarts: u32,
    pub priority: u8,
    /// The SYSCALLS column: system calls made (microkernel) or requests served (libos).
    pub calls: u64,
}

/// Print the header and a row for each task.
pub fn print_tasks<'a>(con: &impl Console, tasks: impl Iterator<Item = TaskRow<'a>>) {
    con.println(format_args!(
        "{:<16} {:>3} {:>4}  {:<8} {:>8} {:>4} {:>9}",
        "NAME", "ID", "GEN", "STATE", "RESTARTS", "PRIO", "SYSCALLS"
    ));
    for t in tasks {
        con.println(format_args!(
            "{:<16} {:>3} {:>4}  {:<8} {:>8} {:>4} {:>9}",
            t.name, t.index, t.generation, t.state, t.restarts, t.priority, t.calls
        ));
    }
}
