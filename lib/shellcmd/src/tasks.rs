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

/// The columns of a row, each as wide as its header.
macro_rules! columns {
    () => {
        "{:<16} {:>3} {:>4}  {:<8} {:>8} {:>4} {:>9}"
    };
}

/// Print the table's header line.
pub fn print_task_header(con: &impl Console) {
    con.println(format_args!(columns!(), "NAME", "ID", "GEN", "STATE", "RESTARTS", "PRIO", "SYSCALLS"));
}

/// Print one task's row. (A row borrows its task's name, which the microkernel's task record
/// owns: so rows are printed one at a time, as each record is read.)
pub fn print_task_row(con: &impl Console, t: &TaskRow<'_>) {
    con.println(format_args!(
        columns!(),
        t.name, t.index, t.generation, t.state, t.restarts, t.priority, t.calls
    ));
}
