//! Booting the ISO in QEMU, interactively or driven through the serial line.
//!
//! A driven session (`--exec`) reads the serial console as it arrives, waits for the shell's
//! prompt, gives the shell a prompt tag no command can know (`prompt TAG`), types one command,
//! waits for the next prompt with that tag (`axolotl [TAG:N]> `: the command's status N), and
//! so on; it ends by typing `poweroff`. QEMU's
//! `isa-debug-exit` device turns the guest's power-off into QEMU's exit status: 33 for a clean
//! power-off, 35 for a kernel panic.
//!
//! ```text
//!  machine     the QEMU command line (machine options, the personality's GRUB selection disk,
//!              the persistent virtio-blk disk); an interactive boot
//!  session     a QEMU process driven over its serial line: prompts, commands, time limits
//!  transcript  what a driven session saw and how it ended
//!  text        plain-text helpers: escape sequences, prompts and their tags, `--exec` scripts
//! ```

mod machine;
mod session;
mod text;
mod transcript;

pub(crate) use machine::{attach_disk, end_with_parent, hardware, headless};
pub use machine::{command, interactive, Machine, EXIT_PANIC, EXIT_POWEROFF};
pub use session::{exec, Echo, Limits};
pub use text::{after_prompt, find_tagged, find_untagged, fresh_tag, split_commands, strip_escapes};
pub use transcript::{lines_mended, without_log_lines, Failed, Outcome, Run, Transcript, Why};
