//! Finding (and when possible installing) the host tools the build and run steps need.

use crate::{fail, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A program the host tool needs, and the Debian package that provides it.
struct Tool {
    program: &'static str,
    package: &'static str,
}

const TOOLS: &[Tool] = &[
    Tool { program: "qemu-system-x86_64", package: "qemu-system-x86" },
    Tool { program: "grub-mkrescue", package: "grub-common" },
    Tool { program: "xorriso", package: "xorriso" },
    Tool { program: "mformat", package: "mtools" },
];

/// GRUB's BIOS platform files: grub-mkrescue silently builds an unbootable image without them.
const GRUB_BIOS_DIR: &str = "/usr/lib/grub/i386-pc";
const GRUB_BIOS_PACKAGE: &str = "grub-pc-bin";

/// The full path of `program` on `PATH`.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(program)).find(|p| p.is_file())
}

fn missing_packages() -> Vec<&'static str> {
    let mut missing: Vec<&'static str> =
        TOOLS.iter().filter(|t| which(t.program).is_none()).map(|t| t.package).collect();
    if !Path::new(GRUB_BIOS_DIR).is_dir() {
        missing.push(GRUB_BIOS_PACKAGE);
    }
    missing.dedup();
    missing
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn can_sudo() -> bool {
    which("sudo").is_some() && Command::new("sudo").args(["-n", "true"]).status().is_ok_and(|s| s.success())
}

/// Make sure QEMU, GRUB and xorriso are installed, installing the Debian packages if this user
/// can; otherwise fail with the exact command to run.
pub fn ensure() -> Result<()> {
    let missing = missing_packages();
    if missing.is_empty() {
        return Ok(());
    }
    let list = missing.join(" ");
    let command = format!("apt-get update && apt-get install -y {list}");
    let prefix: Option<&[&str]> = if is_root() {
        Some(&[])
    } else if can_sudo() {
        Some(&["sudo", "-n"])
    } else {
        None
    };
    let (Some(prefix), true) = (prefix, which("apt-get").is_some()) else {
        return Err(fail!("missing host tools; install them with:\n    sudo {command}"));
    };
    eprintln!("[os] installing missing host packages: {list}");
    for args in
        [vec!["apt-get", "update", "-q"], [vec!["apt-get", "install", "-y", "-q"], missing.clone()].concat()]
    {
        let full: Vec<&str> = prefix.iter().copied().chain(args).collect();
        let status = Command::new(full[0])
            .args(&full[1..])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map_err(|e| fail!("cannot run {}: {e}", full[0]))?;
        if !status.success() {
            return Err(fail!(
                "`{}` failed ({status}); install by hand with:\n    sudo {command}",
                full.join(" ")
            ));
        }
    }
    let still = missing_packages();
    if !still.is_empty() {
        return Err(fail!("still missing after installing: {}", still.join(" ")));
    }
    Ok(())
}

/// Make sure the bare-metal Rust target is installed (rustup normally does it from
/// rust-toolchain.toml; older rustup versions need to be asked).
pub fn ensure_rust_target(root: &Path) -> Result<()> {
    let Some(rustup) = which("rustup") else { return Ok(()) };
    let installed = Command::new(&rustup)
        .args(["target", "list", "--installed"])
        .current_dir(root)
        .output()
        .map_err(|e| fail!("cannot run rustup: {e}"))?;
    if String::from_utf8_lossy(&installed.stdout).lines().any(|l| l.trim() == "x86_64-unknown-none") {
        return Ok(());
    }
    eprintln!("[os] installing the Rust target x86_64-unknown-none");
    let ok = Command::new(rustup)
        .args(["target", "add", "x86_64-unknown-none"])
        .current_dir(root)
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(())
    } else {
        Err(fail!("cannot install the Rust target; run: rustup target add x86_64-unknown-none"))
    }
}
