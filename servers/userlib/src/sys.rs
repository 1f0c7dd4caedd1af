//! Raw syscalls. See `axolotl_abi` for the register convention; every stub returns the kernel's
//! error code decoded, plus the registers a syscall may return values in.

use axolotl_abi::{Error, Sysno};

/// Registers after a syscall.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ret {
    /// `rax`: 0 or an error code.
    pub code: u64,
    pub rdi: u64,
    pub rsi: u64,
    /// `rdx r10 r8 r9`: message words.
    pub words: [u64; 4],
}

impl Ret {
    #[inline]
    pub fn result(self) -> Result<Ret, Error> {
        if self.code == 0 {
            return Ok(self);
        }
        match Error::from_raw(self.code) {
            None => Ok(self),
            Some(e) => Err(e),
        }
    }
}

/// Any syscall number with any arguments (the hostile test task uses this directly).
#[inline(always)]
pub fn raw(nr: u64, a: [u64; 6]) -> Ret {
    let mut r = Ret::default();
    // SAFETY: `syscall` only clobbers rcx and r11 besides the declared in/out registers; the
    // kernel validates every argument, so no value passed here can harm this task's memory
    // except through buffers the arguments name, which the kernel checks are this task's.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") nr => r.code,
            inlateout("rdi") a[0] => r.rdi,
            inlateout("rsi") a[1] => r.rsi,
            inlateout("rdx") a[2] => r.words[0],
            inlateout("r10") a[3] => r.words[1],
            inlateout("r8") a[4] => r.words[2],
            inlateout("r9") a[5] => r.words[3],
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    r
}

#[inline(always)]
pub fn call(nr: Sysno, a: [u64; 6]) -> Result<Ret, Error> {
    raw(nr as u64, a).result()
}

pub fn yield_now() {
    let _ = call(Sysno::Yield, [0; 6]);
}

/// End this task with `code` and an optional message for the kernel's report.
pub fn exit(code: u64, msg: &str) -> ! {
    let _ = call(Sysno::Exit, [code, msg.as_ptr() as u64, msg.len() as u64, 0, 0, 0]);
    // The kernel never returns from exit; if it did, spinning is the only safe thing left.
    loop {
        core::hint::spin_loop();
    }
}

/// The CPU's time-stamp counter (retired instructions under QEMU `-icount`).
pub fn rdtsc() -> u64 {
    // SAFETY: rdtsc has no side effects and is allowed in ring 3 (CR4.TSD is clear).
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Write a byte to an I/O port. The CPU checks the port against the I/O-permission bitmap the
/// kernel keeps for this task (ports of its enabled I/O-port capabilities): any other port
/// raises #GP and the kernel stops the task. Do not use it on a device that can write memory
/// by DMA; such a driver needs its own, reviewed, access layer.
pub fn outb(port: u16, value: u8) {
    // SAFETY: `out` touches no memory of this task; access control is the CPU's bitmap check.
    unsafe {
        core::arch::asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags))
    };
}

/// Read a byte from an I/O port; checked like [`outb`].
pub fn inb(port: u16) -> u8 {
    let value: u8;
    // SAFETY: as for `outb`.
    unsafe {
        core::arch::asm!("in al, dx", in("dx") port, out("al") value, options(nomem, nostack, preserves_flags))
    };
    value
}

/// This task's I/O ports, for the drivers of the shared `x86` layer (the console server's
/// UART): the same `in`/`out` as [`inb`] and [`outb`], checked by the CPU against the ports the
/// kernel opened to this task.
#[derive(Clone, Copy)]
pub struct Ports;

impl x86::PortIo for Ports {
    fn inb(&self, port: u16) -> u8 {
        inb(port)
    }
    fn outb(&self, port: u16, value: u8) {
        outb(port, value)
    }
}
