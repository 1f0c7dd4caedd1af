//! Finding (and when possible installing) the host tools the build and run steps need.

use crate::{fail, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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
    Tool { program: "objcopy", package: "binutils" },
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
    which("sudo").is_some() && installer(&["sudo", "-n", "true"]).status().is_ok_and(|s| s.success())
}

/// A command that installs or asks about installing (`apt-get`, `sudo`, `rustup`): never
/// interactive, and with no standard input, so that what the user piped into `cargo os run`
/// reaches the guest's shell rather than the package manager.
fn installer(argv: &[&str]) -> Command {
    let mut cmd = Command::new(argv[0]);
    cmd.args(&argv[1..]).env("DEBIAN_FRONTEND", "noninteractive").stdin(Stdio::null());
    cmd
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
        let status = installer(&full).status().map_err(|e| fail!("cannot run {}: {e}", full[0]))?;
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

/// May this user run apt-get to install (root, or password-less sudo)?
pub(crate) fn may_install() -> bool {
    which("apt-get").is_some() && (is_root() || can_sudo())
}

/// `apt-get ARGS`, through `sudo -n` unless root, non-interactive; fails with what it printed.
pub(crate) fn apt_get(args: &[&str]) -> Result<()> {
    let mut argv: Vec<&str> = if is_root() { vec![] } else { vec!["sudo", "-n"] };
    argv.push("apt-get");
    argv.extend(args);
    let status = installer(&argv).status().map_err(|e| fail!("cannot run {}: {e}", argv[0]))?;
    if status.success() {
        Ok(())
    } else {
        Err(fail!("`{}` failed ({status})", argv.join(" ")))
    }
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
    let rustup = rustup.to_string_lossy();
    let ok = installer(&[&rustup, "target", "add", "x86_64-unknown-none"])
        .current_dir(root)
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(())
    } else {
        Err(fail!("cannot install the Rust target; run: rustup target add x86_64-unknown-none"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Run as a child of the test below, with a pipe holding `typed by the user` as its
    /// standard input: an installer command started here must not see it.
    #[test]
    fn installer_child() {
        if std::env::var_os("AXOLOTL_INSTALLER_PROBE").is_none() {
            return;
        }
        // `spawn`, as `status` does, inherits what it is not told (`output` would not).
        let child =
            installer(&["sh", "-c", "cat; echo end"]).stdout(Stdio::piped()).spawn().expect("sh runs");
        let out = child.wait_with_output().expect("sh ends");
        print!("probe:{}", String::from_utf8_lossy(&out.stdout));
    }

    #[test]
    fn an_installer_does_not_read_what_was_piped_in() {
        let mut child = Command::new(std::env::current_exe().expect("the test binary"))
            .args(["--exact", "tools::tests::installer_child", "--nocapture", "--test-threads=1"])
            .env("AXOLOTL_INSTALLER_PROBE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the test binary runs");
        child.stdin.take().expect("piped").write_all(b"typed by the user\n").expect("written");
        let out = child.wait_with_output().expect("it ends");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("probe:end"), "the installer saw an empty input: {text}");
        assert!(!text.contains("typed by the user"), "{text}");
    }
}
