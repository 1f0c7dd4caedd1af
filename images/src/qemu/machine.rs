//! The QEMU command line: the machine Axolotl runs on, how QEMU's exit status reads, the small
//! disk that tells GRUB which personality to boot, and booting with the console on this terminal.

use crate::{fail, Personality, Result};
use std::path::Path;
use std::process::Command;

/// QEMU's exit status after the guest wrote `DEBUG_EXIT_POWEROFF` to the debug-exit port.
pub const EXIT_POWEROFF: i32 = ((x86::qemu::DEBUG_EXIT_POWEROFF as i32) << 1) | 1;
/// ... and after a kernel panic wrote `DEBUG_EXIT_PANIC`.
pub const EXIT_PANIC: i32 = ((x86::qemu::DEBUG_EXIT_PANIC as i32) << 1) | 1;

/// How QEMU is to run the guest.
#[derive(Clone, Copy, Debug, Default)]
pub struct Machine {
    /// Count instructions: with `-icount shift=0,align=off,sleep=off` the guest's TSC advances by
    /// exactly one per retired instruction, so timings are instruction counts, repeatable.
    pub icount: bool,
    /// Start halted, waiting for gdb on localhost:1234.
    pub gdb: bool,
    /// Serve the gdb remote protocol on this Unix socket, without halting: for tests that
    /// fault the guest from outside, in ways no command can.
    pub debug_socket: Option<&'static Path>,
    /// Keys a driven session types as soon as the kernel's first line appears, long before the
    /// shell's first prompt (as a person typing while the machine boots).
    pub early_keys: Option<&'static str>,
}

/// The QEMU command line for booting `iso`.
pub fn command(iso: &Path, personality: Personality, interactive: bool, machine: Machine) -> Command {
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.arg("-cdrom").arg(iso);
    cmd.args(["-m", "256M", "-no-reboot", "-accel", "tcg", "-cpu", "max"]);
    cmd.args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
    if interactive {
        // The serial line and QEMU's monitor share this terminal (Ctrl-A X quits, Ctrl-A C
        // switches); Ctrl-C goes to the guest. Not `-nographic`: it also makes the firmware
        // read the serial line, which ate the keys typed while the machine booted.
        cmd.args(["-display", "none", "-chardev", "stdio,id=con,mux=on,signal=off"]);
        cmd.args(["-mon", "chardev=con,mode=readline", "-serial", "chardev:con"]);
    } else {
        cmd.args(["-display", "none", "-serial", "stdio", "-monitor", "none"]);
    }
    if machine.gdb {
        cmd.args(["-s", "-S"]);
    }
    if let Some(socket) = machine.debug_socket {
        cmd.arg("-chardev").arg(format!("socket,id=debug,path={},server=on,wait=off", socket.display()));
        cmd.args(["-gdb", "chardev:debug"]);
    }
    if machine.icount {
        cmd.args(["-icount", "shift=0,align=off,sleep=off", "-rtc", "clock=vm"]);
    }
    // GRUB reads the personality to boot from a GRUB environment block on a small raw disk
    // (see `build::grub_cfg`); `snapshot=on` keeps the file untouched, `-boot d` boots the ISO.
    match selection_disk(personality) {
        Ok(disk) => {
            cmd.arg("-drive").arg(format!("file={},format=raw,if=ide,index=0,snapshot=on", disk.display()));
        }
        Err(e) => eprintln!("[os] warning: {e}; GRUB boots its default entry (microkernel)"),
    }
    cmd.args(["-boot", "d"]);
    end_with_parent(&mut cmd);
    cmd
}

/// QEMU must not outlive `cargo os`: killed by a signal, a timeout or a test harness, it would
/// leave QEMU running (and spinning a core). Linux delivers SIGTERM to the child when the
/// thread that started it ends.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)] // the host tool's one unsafe block: `pre_exec` and two libc calls
fn end_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    extern "C" {
        fn prctl(option: i32, ...) -> i32;
        fn getppid() -> i32;
    }
    const PR_SET_PDEATHSIG: i32 = 1;
    const SIGTERM: u64 = 15;
    let parent = std::process::id() as i32;
    // SAFETY: the closure runs in the forked child before exec; it only makes two system calls
    // that are async-signal-safe (prctl, getppid) and touches no memory shared with the parent.
    unsafe {
        cmd.pre_exec(move || {
            if prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have ended between fork and prctl: then nobody would be told.
            if getppid() != parent {
                return Err(std::io::Error::other("cargo os ended while starting QEMU"));
            }
            Ok(())
        })
    };
}

#[cfg(not(target_os = "linux"))]
fn end_with_parent(_: &mut Command) {}

/// The GRUB environment block that names `personality`, written once under `target/os/`.
fn selection_disk(personality: Personality) -> Result<std::path::PathBuf> {
    let path = crate::out_dir().join(format!("select-{}.img", personality.id()));
    let block = environment_block(personality);
    if std::fs::read(&path).ok().as_deref() != Some(&block[..]) {
        // Written beside and renamed, so a QEMU reading the old file never sees half of one.
        let tmp = path.with_extension(format!("img.{}", std::process::id()));
        std::fs::create_dir_all(crate::out_dir())
            .and_then(|_| std::fs::write(&tmp, &block))
            .and_then(|_| std::fs::rename(&tmp, &path))
            .map_err(|e| fail!("cannot write {}: {e}", path.display()))?;
    }
    Ok(path)
}

/// GRUB's environment block format: a header line, `name=value` lines, `#` padding to 1 KiB.
fn environment_block(personality: Personality) -> Vec<u8> {
    let mut block = format!("# GRUB Environment Block\npersonality={}\n", personality.id()).into_bytes();
    block.resize(1024, b'#');
    block
}

/// Boot `iso` with the serial console on this terminal. Returns QEMU's exit status.
pub fn interactive(iso: &Path, personality: Personality, machine: Machine) -> Result<i32> {
    eprintln!("[os] booting in QEMU; quit with Ctrl-A X (or type 'poweroff' in the shell)");
    let status =
        command(iso, personality, true, machine).status().map_err(|e| fail!("cannot start QEMU: {e}"))?;
    Ok(status.code().unwrap_or(-1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_exit_statuses() {
        assert_eq!(EXIT_POWEROFF, 33);
        assert_eq!(EXIT_PANIC, 35);
    }
}
