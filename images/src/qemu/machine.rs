//! The QEMU command line: the machine Axolotl runs on, how QEMU's exit status reads, the small
//! disk that tells GRUB which personality to boot, and booting with the console on this terminal.
//!
//! ```text
//!  IDE primary master    select-PERSONALITY.img, snapshot   bootindex 1   BIOS disk 0x80: GRUB's (hd0)
//!  IDE secondary master  axolotl.iso (CD-ROM)               bootindex 0   booted
//!  virtio-blk PCI        Machine::disk, if any, written     bootindex 2   BIOS disk 0x81
//! ```
//! SeaBIOS numbers the hard disks in boot order, so the boot indexes (not the order of the
//! options, nor which controller the firmware happens to probe first) keep the selection disk
//! GRUB's `(hd0)` whether a virtio disk is attached or not.

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
    /// A raw disk image (see [`crate::disk`]) attached as a virtio-blk PCI device (1af4:1001):
    /// the guest's writes reach the file. `None`: no such device; the guest keeps its files
    /// in its RAM disk.
    pub disk: Option<&'static Path>,
    /// A disk served over NBD on this loopback port (`crate::nbd`), attached where `disk`
    /// would be: `cargo os crashtest` records what the guest writes.
    pub nbd: Option<u16>,
}

/// The QEMU command line for booting `iso`.
pub fn command(iso: &Path, personality: Personality, interactive: bool, machine: Machine) -> Command {
    let mut cmd = Command::new("qemu-system-x86_64");
    // Where each disk sits and boots: see the table at the top.
    cmd.arg("-drive").arg(format!("file={},if=none,id=cd0,media=cdrom,readonly=on,format=raw", escape(iso)));
    cmd.args(["-device", "ide-cd,drive=cd0,bus=ide.1,unit=0,bootindex=0"]);
    hardware(&mut cmd, &machine, None);
    if interactive {
        // The serial line and QEMU's monitor share this terminal (Ctrl-A X quits, Ctrl-A C
        // switches); Ctrl-C goes to the guest. Not `-nographic`: it also makes the firmware
        // read the serial line, which ate the keys typed while the machine booted.
        cmd.args(["-display", "none", "-chardev", "stdio,id=con,mux=on,signal=off"]);
        cmd.args(["-mon", "chardev=con,mode=readline", "-serial", "chardev:con"]);
    } else {
        headless(&mut cmd);
    }
    if machine.gdb {
        cmd.args(["-s", "-S"]);
    }
    if let Some(socket) = machine.debug_socket {
        cmd.arg("-chardev").arg(format!("socket,id=debug,path={},server=on,wait=off", socket.display()));
        cmd.args(["-gdb", "chardev:debug"]);
    }
    // GRUB reads the personality to boot from a GRUB environment block on a small raw disk
    // (see `build::grub_cfg`); `snapshot=on` keeps the file untouched.
    match selection_disk(personality) {
        Ok(disk) => {
            cmd.arg("-drive").arg(format!("file={},if=none,id=select,format=raw,snapshot=on", escape(&disk)));
            cmd.args(["-device", "ide-hd,drive=select,bus=ide.0,unit=0,bootindex=1"]);
        }
        Err(e) => eprintln!("[os] warning: {e}; GRUB boots its default entry (microkernel)"),
    }
    attach_disk(&mut cmd, &machine);
    end_with_parent(&mut cmd);
    cmd
}

/// The machine every boot runs on, Axolotl's and the bench's Linux (`crate::linux`): memory,
/// CPU, accelerator, no reboot, the debug-exit device, and with `machine.icount` the clock that
/// counts instructions, with the RTC on it (from `rtc_base`, a date, if given).
pub(crate) fn hardware(cmd: &mut Command, machine: &Machine, rtc_base: Option<&str>) {
    cmd.args(["-m", "256M", "-no-reboot", "-accel", "tcg", "-cpu", "max"]);
    cmd.args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
    let base = rtc_base.map(|b| format!("base={b}"));
    if machine.icount {
        cmd.args(["-icount", "shift=0,align=off,sleep=off"]);
        cmd.arg("-rtc").arg(base.map_or("clock=vm".to_string(), |b| format!("{b},clock=vm")));
    } else if let Some(base) = base {
        cmd.arg("-rtc").arg(base);
    }
}

/// No display; the serial line on standard output; no monitor.
pub(crate) fn headless(cmd: &mut Command) {
    cmd.args(["-display", "none", "-serial", "stdio", "-monitor", "none"]);
}

/// The machine's disk, if it has one (an image file, or an NBD server's), as a virtio-blk PCI
/// device.
pub(crate) fn attach_disk(cmd: &mut Command, machine: &Machine) {
    if let Some(disk) = machine.disk {
        // Not snapshot: the guest's writes are the point.
        cmd.arg("-drive").arg(format!("file={},if=none,id=disk0,format=raw", escape(disk)));
    } else if let Some(port) = machine.nbd {
        cmd.arg("-drive").arg(format!("file=nbd://127.0.0.1:{port},format=raw,if=none,id=disk0"));
    } else {
        return;
    }
    cmd.args(["-device", "virtio-blk-pci,drive=disk0,bootindex=2"]);
}

/// A path as the value of a QEMU option: commas doubled, or QEMU would read what follows one as
/// another option.
fn escape(path: &Path) -> String {
    path.display().to_string().replace(',', ",,")
}

/// QEMU must not outlive `cargo os`: killed by a signal, a timeout or a test harness, it would
/// leave QEMU running (and spinning a core). Linux delivers SIGTERM to the child when the
/// thread that started it ends.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)] // the host tool's one unsafe block: `pre_exec` and two libc calls
pub(crate) fn end_with_parent(cmd: &mut Command) {
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
pub(crate) fn end_with_parent(_: &mut Command) {}

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

    fn args(machine: Machine) -> Vec<String> {
        let cmd = command(Path::new("/x/a,b.iso"), Personality::Libos, false, machine);
        cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect()
    }

    /// The value after each `-device` (or `-drive`).
    fn values<'a>(args: &'a [String], option: &str) -> Vec<&'a str> {
        args.windows(2).filter(|w| w[0] == option).map(|w| w[1].as_str()).collect()
    }

    #[test]
    fn the_selection_disk_boots_after_the_cd_and_before_the_virtio_disk() {
        let without = args(Machine::default());
        let devices = values(&without, "-device");
        assert!(devices.contains(&"ide-cd,drive=cd0,bus=ide.1,unit=0,bootindex=0"), "{devices:?}");
        assert!(devices.contains(&"ide-hd,drive=select,bus=ide.0,unit=0,bootindex=1"), "{devices:?}");
        assert!(!devices.iter().any(|d| d.starts_with("virtio-blk")), "no disk by default");
        assert!(values(&without, "-drive")[0].starts_with("file=/x/a,,b.iso,if=none,id=cd0,"));
        // `-boot` would fight the boot indexes (QEMU: not both).
        assert!(!without.iter().any(|a| a == "-boot" || a == "-cdrom"));

        let with = args(Machine { disk: Some(Path::new("/d/my,disk.img")), ..Machine::default() });
        let drives = values(&with, "-drive");
        assert!(drives.contains(&"file=/d/my,,disk.img,if=none,id=disk0,format=raw"), "{drives:?}");
        assert!(!drives.last().unwrap().contains("snapshot"), "the guest's writes reach the file");
        assert!(values(&with, "-device").contains(&"virtio-blk-pci,drive=disk0,bootindex=2"));
    }
}
