//! The host side of Axolotl: build the bootable ISO and run it in QEMU.
//!
//! The `cargo os` binary is a thin command line over this library; the integration tests in the
//! workspace's `tests/` call the same functions, so what a test checks is what a user runs.
//!
//! ```text
//!  cargo os build ──► tools::ensure ──► cargo build (x86_64-unknown-none) ──► grub-mkrescue
//!                                       kernel_code::check (the libos image)     target/os/axolotl.iso
//!  cargo os run --exec "ps; echo hi" ──► qemu::Session: boot, wait for the prompt, give the
//!                                        shell a prompt tag, type each command, read its tagged
//!                                        prompt, power off, report the outcome
//!  cargo os run ──► disk::prepare(target/os/disk.img or --disk PATH) ──► virtio-blk in QEMU
//! ```
//! Long steps (the build, a benchmark, a campaign) show `indicatif` progress bars when the
//! binary runs on a terminal, and plain lines otherwise (see [`progress`]).

pub mod audit;
pub mod bench;
pub mod build;
pub mod campaign;
pub mod crashtest;
pub mod disk;
pub mod kernel_code;
pub mod linux;
pub mod nbd;
pub mod progress;
pub mod qemu;
pub mod tools;

use std::path::PathBuf;

/// The workspace root (this crate lives in `<root>/images`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("images/ has a parent").to_path_buf()
}

/// Where `cargo os` writes its products: `<root>/target/os`.
pub fn out_dir() -> PathBuf {
    workspace_root().join("target").join("os")
}

/// A failure of the host tool, already worded for a person.
#[derive(Debug)]
pub struct Failure(pub String);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}

pub type Result<T> = std::result::Result<T, Failure>;

/// Shorthand for a `Failure` with a formatted message.
#[macro_export]
macro_rules! fail {
    ($($arg:tt)*) => { $crate::Failure(format!($($arg)*)) };
}

/// The personalities the ISO can boot. On the command line: `microkernel` (or `mk`), `libos`
/// (or `los`); the doc lines below are what `--help` says of each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Personality {
    /// The capability microkernel with user-space servers (CuriOS-style)
    #[value(alias = "mk")]
    Microkernel,
    /// The single-address-space library OS of cells (Theseus-style)
    #[value(alias = "los")]
    Libos,
}

impl Personality {
    pub const ALL: [Personality; 2] = [Personality::Microkernel, Personality::Libos];

    /// The GRUB menu entry id.
    pub fn id(self) -> &'static str {
        match self {
            Personality::Microkernel => "microkernel",
            Personality::Libos => "libos",
        }
    }

    /// The prefix of this personality's benchmark rows (`mk.null_call`, `los.fs_read`).
    pub fn short(self) -> &'static str {
        match self {
            Personality::Microkernel => "mk",
            Personality::Libos => "los",
        }
    }
}
