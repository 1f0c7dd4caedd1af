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
    /// The VERSION column: the version its image declares (0: none declared, shown as `-`),
    /// and the requests still to answer in an update's rollback window (0: none).
    pub version: u32,
    pub window_left: u32,
}

/// The columns of a row, each as wide as its header.
macro_rules! columns {
    () => {
        "{:<16} {:>3} {:>4}  {:<8} {:>8} {:>4} {:>9}  {}"
    };
}

/// Print the table's header line.
pub fn print_task_header(con: &impl Console) {
    con.println(format_args!(
        columns!(),
        "NAME", "ID", "GEN", "STATE", "RESTARTS", "PRIO", "SYSCALLS", "VERSION"
    ));
}

/// Print one task's row. (A row borrows its task's name, which the microkernel's task record
/// owns: so rows are printed one at a time, as each record is read.)
pub fn print_task_row(con: &impl Console, t: &TaskRow<'_>) {
    let version = Version(t.version, t.window_left);
    con.println(format_args!(
        columns!(),
        t.name, t.index, t.generation, t.state, t.restarts, t.priority, t.calls, version
    ));
}

/// The VERSION column: `2`, `2 (updating: 5 requests to go)`, or `-` when none is declared.
struct Version(u32, u32);

impl core::fmt::Display for Version {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Version(0, _) => f.write_str("-"),
            Version(v, 0) => write!(f, "{}", v),
            Version(v, left) => write!(f, "{} (updating: {} requests to go)", v, left),
        }
    }
}

/// The words of `update NAME IMAGE [WINDOW]`, both shells' (IMAGE: a file holding the new
/// version on the microkernel, a version staged in the image on the libos).
#[derive(Debug, PartialEq, Eq)]
pub struct UpdateArgs<'a> {
    pub name: &'a str,
    pub image: &'a str,
    /// Requests the new version answers before the update is kept (rolled back if it fails
    /// first): `fault::update::DEFAULT_WINDOW` unless given, at most `MAX_WINDOW`.
    pub window: u32,
}

/// The line a malformed `update` gets.
pub const UPDATE_USAGE: &str =
    "usage: update NAME IMAGE [WINDOW], WINDOW 1 to 1000 (requests before the update is kept)";
const _: () = assert!(fault::update::MAX_WINDOW == 1000, "UPDATE_USAGE names it");

/// Read `update`'s arguments; `None` for anything else than two or three words with a window
/// in range.
pub fn update_args(args: &str) -> Option<UpdateArgs<'_>> {
    let mut words = args.split_whitespace();
    let (name, image) = (words.next()?, words.next()?);
    let window = match words.next() {
        None => fault::update::DEFAULT_WINDOW,
        Some(w) => w.parse().ok().filter(|w| (1..=fault::update::MAX_WINDOW).contains(w))?,
    };
    words.next().is_none().then_some(UpdateArgs { name, image, window })
}
