//! Building the kernel and servers and packing them into a GRUB ISO.
//!
//! The manifest (`images/microkernel.manifest`) decides which servers go on the image: it is
//! parsed with the kernel's own parser first, so a broken manifest fails here with its line
//! number instead of at boot.

use crate::{fail, out_dir, progress, qemu, tools, workspace_root, Result};
use axolotl_kcore::manifest;
use indicatif::ProgressBar;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const TARGET: &str = "x86_64-unknown-none";
pub const KERNEL_BIN: &str = "axolotl-kernel";
/// The libos personality's single binary (core and cells linked together).
pub const LIBOS_BIN: &str = "axolotl-libos";

/// What a build produced.
pub struct Image {
    pub iso: PathBuf,
    /// The kernel ELF (with symbols, for gdb).
    pub kernel: PathBuf,
    /// The server ELFs on the image.
    pub servers: Vec<PathBuf>,
    /// The libos ELF (with symbols).
    pub libos: PathBuf,
}

/// The bare-metal build's own target directory. Separate from `target/`, so a build started
/// from inside `cargo test` or `cargo run` never waits on the outer cargo's lock.
pub fn cargo_target_dir() -> PathBuf {
    out_dir().join("cargo")
}

/// Directory of the bare-metal release binaries.
pub fn binary_dir() -> PathBuf {
    cargo_target_dir().join(TARGET).join("release")
}

fn manifest_path() -> PathBuf {
    workspace_root().join("images").join("microkernel.manifest")
}

/// The task names the manifest starts (each is a server binary of the same name).
pub fn manifest_tasks() -> Result<Vec<String>> {
    let path = manifest_path();
    let text = std::fs::read_to_string(&path).map_err(|e| fail!("cannot read {}: {e}", path.display()))?;
    let m = manifest::parse(&text).map_err(|e| fail!("{}: {e}", path.display()))?;
    Ok(m.tasks.iter().map(|t| t.name.to_string()).collect())
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Build everything and write `target/os/axolotl.iso`.
pub fn build() -> Result<Image> {
    build_with(fs_core::Durability::Journal)
}

/// [`build`], with the guest's file system committing operations the way `fs` says: the
/// journal, or one of the broken ways `cargo os crashtest --broken` must catch. (Cargo rebuilds
/// what depends on the choice when it changes.)
pub fn build_with(fs: fs_core::Durability) -> Result<Image> {
    let root = workspace_root();
    tools::ensure()?;
    tools::ensure_rust_target(&root)?;
    let servers = manifest_tasks()?;
    let pb = progress::spinner("build");
    progress::note(
        &pb,
        format!("[os] building the kernel, {} servers and the libos for {TARGET}", servers.len()),
    );
    pb.set_message("cargo build --release");
    let mut cmd = Command::new(cargo());
    cmd.current_dir(&root).args(["build", "--release", "--target", TARGET, "-p", KERNEL_BIN]);
    cmd.args(["-p", LIBOS_BIN]);
    cmd.arg("--target-dir").arg(cargo_target_dir());
    for s in &servers {
        cmd.args(["-p", s]);
    }
    // Inherited from `cargo test`/`cargo run`, these would point the inner build elsewhere.
    cmd.env_remove("CARGO_TARGET_DIR").env_remove("RUSTFLAGS").env_remove("CARGO_ENCODED_RUSTFLAGS");
    // Always set, so that one in the caller's environment cannot choose for it.
    cmd.env("AXOLOTL_FS_DURABILITY", fs.name());
    let result = if progress::shown() { cargo_under(&pb, cmd) } else { cargo_plain(cmd) };
    if let Err(e) = result {
        pb.finish_and_clear();
        return Err(e);
    }
    let bins = binary_dir();
    // The libos kernel's fault injector must know every byte of its code (see `kernel_code`).
    if let Err(e) = crate::kernel_code::check(&bins.join(LIBOS_BIN)) {
        pb.finish_and_clear();
        return Err(e);
    }
    if let Err(e) = build_updates(&pb, fs) {
        pb.finish_and_clear();
        return Err(e);
    }
    pb.set_message("grub-mkrescue: writing the ISO");
    let iso = write_iso(&pb, &bins, &servers);
    pb.finish_and_clear();
    Ok(Image {
        iso: iso?,
        kernel: bins.join(KERNEL_BIN),
        servers: servers.iter().map(|s| bins.join(s)).collect(),
        libos: bins.join(LIBOS_BIN),
    })
}

/// Run the inner cargo with its output on this terminal, as a build without a spinner shows it.
/// The builds of servers that `update` can install (`cargo os put` writes one into a disk
/// image): (package, its cargo feature, the image's name under [`updates_dir`]).
pub const UPDATES: [(&str, Option<&str>, &str); 6] = [
    // Version 2: client state in layout 4 (a count of each session's requests), migrated from
    // layout 3; answers the new request `Requests` (the shell's `requests`).
    ("fs", Some("v2"), "fs-v2"),
    // Migrates a client's state, then panics: an update to it rolls back.
    ("fs", Some("faulty"), "fs-faulty"),
    // Version 1, as booted: it reads layout 3 only, so going back to it once clients' states
    // are in layout 4 is refused.
    ("fs", None, "fs-v1"),
    // Version 2: client state in layout 3 (a count of each session's sleeps), migrated from
    // layout 2; answers the new request `Slept` (the shell's `slept`).
    ("timer", Some("v2"), "timer-v2"),
    // Version 2: counts the bytes it writes and reads, answered by the new request `Counts`
    // (the shell's `tty`). The console keeps no client state in SSRs: nothing to migrate.
    ("console", Some("v2"), "console-v2"),
    // Test build: remembers the last client's word in a static, a state spill that `audit
    // probe` catches and names (its symbol table is kept: it fits a file with it).
    ("probe", Some("spill"), "probe-spill"),
];

/// Where the update images are written: `target/os/updates/`.
pub fn updates_dir() -> PathBuf {
    out_dir().join("updates")
}

/// Build each of [`UPDATES`] with its feature, strip it into [`updates_dir`], then build the
/// package once more as the boot image has it (cargo keeps each feature set's artifacts, so
/// after the first time these are links, not compilations).
fn build_updates(pb: &ProgressBar, fs: fs_core::Durability) -> Result<()> {
    let dir = updates_dir();
    std::fs::create_dir_all(&dir).map_err(|e| fail!("cannot create {}: {e}", dir.display()))?;
    let build = |package: &str, feature: Option<&str>| {
        pb.set_message(format!(
            "cargo build -p {package} {}",
            feature.map_or(String::new(), |f| format!("--features {f}"))
        ));
        let mut cmd = Command::new(cargo());
        cmd.current_dir(workspace_root()).args(["build", "--release", "--target", TARGET, "-p", package]);
        if let Some(f) = feature {
            cmd.args(["--features", f]);
        }
        cmd.arg("--target-dir").arg(cargo_target_dir());
        cmd.env_remove("CARGO_TARGET_DIR").env_remove("RUSTFLAGS").env_remove("CARGO_ENCODED_RUSTFLAGS");
        cmd.env("AXOLOTL_FS_DURABILITY", fs.name());
        if progress::shown() {
            cargo_under(pb, cmd)
        } else {
            cargo_plain(cmd)
        }
    };
    for (package, feature, name) in UPDATES {
        build(package, feature)?;
        // An image must fit in one file of fs-core's (at most `fs_core::MAX_FILE`, 141.5 KiB):
        // without its debug information it keeps its symbol table (a fault or an audit in the
        // updated server is reported with symbols) if it still fits, as the probe does; fs
        // no longer does, and loses its symbols too (its faults are reported by address).
        let size = || std::fs::metadata(dir.join(name)).map(|m| m.len());
        objcopy("--strip-debug", &binary_dir().join(package), &dir.join(name))?;
        if size().map_err(|e| fail!("{name}: {e}"))? > fs_core::MAX_FILE as u64 {
            objcopy("--strip-all", &binary_dir().join(package), &dir.join(name))?;
        }
        let len = size().map_err(|e| fail!("{name}: {e}"))?;
        if len > fs_core::MAX_FILE as u64 {
            return Err(fail!(
                "{name} is {len} bytes: more than a file can hold ({} bytes), so `update` could not read it",
                fs_core::MAX_FILE
            ));
        }
    }
    for package in UPDATES.map(|u| u.0).iter().collect::<std::collections::BTreeSet<_>>() {
        build(package, None)?;
    }
    Ok(())
}

fn cargo_plain(mut cmd: Command) -> Result<()> {
    let status = cmd.status().map_err(|e| fail!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(fail!("building the kernel and servers failed ({status})"));
    }
    Ok(())
}

/// Run the inner cargo under the spinner: each line it prints (`Compiling fs v0.1.0`) becomes
/// the spinner's message, and the whole output is shown only if the build fails.
fn cargo_under(pb: &ProgressBar, mut cmd: Command) -> Result<()> {
    let mut child = cmd
        .arg("--color=always")
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail!("cannot run cargo: {e}"))?;
    let mut said = Vec::new();
    let stderr = child.stderr.take().expect("stderr was piped");
    for line in BufReader::new(stderr).split(b'\n').map_while(std::io::Result::ok) {
        let line = String::from_utf8_lossy(&line).into_owned();
        pb.set_message(qemu::strip_escapes(&line).trim().to_string());
        said.push(line);
    }
    let status = child.wait().map_err(|e| fail!("cannot run cargo: {e}"))?;
    if !status.success() {
        progress::note(pb, said.join("\n"));
        return Err(fail!("building the kernel and servers failed ({status})"));
    }
    Ok(())
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| fail!("cannot copy {} to {}: {e}", from.display(), to.display()))
}

/// The GRUB configuration: output on the serial console, no menu delay, one entry per
/// personality. GRUB takes no input from the serial line, so keys typed there while the
/// machine boots wait in the UART for the shell instead of being eaten by GRUB. Which
/// entry boots is read from a GRUB environment block on the first disk (`personality=libos`),
/// which `qemu::command` attaches (ahead of any virtio disk in boot order, so it stays BIOS
/// disk 0x80, `(hd0)`); without it GRUB boots the microkernel.
fn grub_cfg(servers: &[String]) -> String {
    let mut modules = String::from("    module2 /boot/manifest manifest\n");
    for s in servers {
        modules.push_str(&format!("    module2 /boot/{s} {s}\n"));
    }
    format!(
        "# Generated by `cargo os build`.\n\
         serial --unit=0 --speed=115200\n\
         terminal_input console\n\
         terminal_output serial console\n\
         set timeout=0\n\
         set default=microkernel\n\
         if load_env --skip-sig --file (hd0)0+2 personality; then set default=\"$personality\"; fi\n\n\
         menuentry \"Axolotl: microkernel personality (CuriOS-style)\" --id microkernel {{\n\
         \x20   multiboot2 /boot/{KERNEL_BIN}\n{modules}    boot\n}}\n\n\
         menuentry \"Axolotl: libos personality (Theseus-style)\" --id libos {{\n\
         \x20   multiboot2 /boot/{LIBOS_BIN}\n    boot\n}}\n"
    )
}

/// Copy ELF `from` to `to` without its debugging information (`objcopy --strip-debug`): the
/// firmware reads every module through the BIOS, and DWARF was over 90 % of what it read
/// (17.6 MB of ELFs, 1.5 MB stripped, at 57d96ee). The
/// symbol table stays (the kernels name the function a fault hit from it); the full ELFs stay
/// in the build directory for gdb (`Image`).
fn strip_into(from: &Path, to: &Path) -> Result<()> {
    objcopy("--strip-debug", from, to)
}

fn objcopy(how: &str, from: &Path, to: &Path) -> Result<()> {
    let out = Command::new("objcopy")
        .arg(how)
        .arg(from)
        .arg(to)
        .output()
        .map_err(|e| fail!("cannot run objcopy (Debian package binutils): {e}"))?;
    if !out.status.success() {
        return Err(fail!(
            "objcopy {how} {} failed:\n{}",
            from.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

fn write_iso(pb: &ProgressBar, bins: &Path, servers: &[String]) -> Result<PathBuf> {
    let out = out_dir();
    // Per-process staging and an atomic rename: a QEMU already running from the old ISO (another
    // `cargo os` or test) keeps reading the old file, untouched.
    let stage = out.join(format!("iso-stage-{}", std::process::id()));
    let boot = stage.join("boot");
    let _ = std::fs::remove_dir_all(&stage);
    std::fs::create_dir_all(boot.join("grub")).map_err(|e| fail!("cannot create {}: {e}", boot.display()))?;
    strip_into(&bins.join(KERNEL_BIN), &boot.join(KERNEL_BIN))?;
    strip_into(&bins.join(LIBOS_BIN), &boot.join(LIBOS_BIN))?;
    copy(&manifest_path(), &boot.join("manifest"))?;
    for s in servers {
        strip_into(&bins.join(s), &boot.join(s))?;
    }
    std::fs::write(boot.join("grub").join("grub.cfg"), grub_cfg(servers))
        .map_err(|e| fail!("cannot write grub.cfg: {e}"))?;
    let iso = out.join("axolotl.iso");
    let tmp = out.join(format!("axolotl.iso.{}", std::process::id()));
    progress::note(pb, format!("[os] writing {}", iso.display()));
    let output = Command::new("grub-mkrescue")
        .arg("-o")
        .arg(&tmp)
        .arg(&stage)
        .output()
        .map_err(|e| fail!("cannot run grub-mkrescue: {e}"))?;
    let _ = std::fs::remove_dir_all(&stage);
    if !output.status.success() {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail!("grub-mkrescue failed:\n{}", String::from_utf8_lossy(&output.stderr)));
    }
    std::fs::rename(&tmp, &iso).map_err(|e| fail!("cannot move the ISO into place: {e}"))?;
    Ok(iso)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_manifest_parses_and_names_the_servers() {
        let tasks = manifest_tasks().unwrap();
        assert_eq!(tasks.first().map(String::as_str), Some("reincarnation"), "the supervisor starts first");
        assert!(tasks.iter().any(|t| t == "hostile") && tasks.iter().any(|t| t == "fs"));
    }

    #[test]
    fn grub_cfg_lists_every_module_and_the_personality() {
        let cfg = grub_cfg(&["console".into(), "shell".into()]);
        assert!(cfg.contains("--id microkernel") && cfg.contains("--id libos"));
        assert!(cfg.contains("multiboot2 /boot/axolotl-libos"));
        assert!(cfg.contains("multiboot2 /boot/axolotl-kernel"));
        assert!(cfg.contains("module2 /boot/manifest manifest"));
        assert!(cfg.contains("module2 /boot/shell shell"));
    }
}
