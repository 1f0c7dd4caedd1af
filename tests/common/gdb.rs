//! Faulting a task from outside, through QEMU's gdb stub, for what no shell command can do:
//! the microkernel refuses to inject a fault into the task that asks (`kill shell` answers
//! "would deadlock"), so a test that needs the shell to crash in the middle of a command sets
//! a breakpoint where only the shell runs and, when it is reached, points the shell's `rip` at
//! address 0: the shell takes a page fault, and the reincarnation server restarts it. A libos
//! test bends a cell's registers the same way, in ways the injector's timing cannot promise.
//!
//! ```text
//!  test thread ── Unix socket (Machine::debug_socket) ──► QEMU gdb stub
//!     Z0 ADDR (breakpoint) ─► c ─► stop ─► g (rip, cs): user mode at ADDR?
//!     m ADDR (code there is the shell's?) ─► G (rip = 0) ─► z0 ─► D (detach, run on)
//! ```
//! The gdb remote protocol: packets `$DATA#CS` (CS: the sum of DATA's bytes mod 256, in hex),
//! each acknowledged with `+`. Registers in a `g` packet (x86-64): 16 general ones, then rip
//! at byte 128, eflags (4 bytes), then cs (4 bytes) at byte 140.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

const CS: usize = 140;
/// Offsets of registers in a `g` packet (gdb's order: rax rbx rcx rdx rsi rdi rbp rsp r8 ...).
pub const RCX: usize = 16;
pub const RDX: usize = 24;
pub const RSI: usize = 32;
pub const RDI: usize = 40;
pub const RSP: usize = 56;
pub const RIP: usize = 128;

/// A fresh path for QEMU's gdb stub socket (`Machine::debug_socket`), named after `what` and
/// this process; any stale file there is removed.
pub fn socket(what: &str) -> &'static Path {
    let name = format!("debug-{}-{what}.sock", std::process::id());
    let socket: &'static Path = Box::leak(axolotl_images::out_dir().join(name).into_boxed_path());
    let _ = std::fs::remove_file(socket);
    socket
}

/// The 64-bit register at byte `at` of a `g` packet.
pub fn reg(regs: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(regs[at..at + 8].try_into().expect("8 bytes"))
}

/// The address of the first function in ELF `elf` whose symbol name contains `needle`, and the
/// first 16 bytes of its code as the file holds them.
pub fn function(elf: &Path, needle: &str) -> Result<(u64, Vec<u8>), String> {
    code(elf, needle, 16)
}

/// As [`function`], with the first `len` bytes of its code.
pub fn code(elf: &Path, needle: &str, len: usize) -> Result<(u64, Vec<u8>), String> {
    let f = std::fs::read(elf).map_err(|e| format!("{}: {e}", elf.display()))?;
    let u16_at = |o: usize| u16::from_le_bytes([f[o], f[o + 1]]) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(f[o..o + 4].try_into().expect("4 bytes")) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(f[o..o + 8].try_into().expect("8 bytes"));
    if f.get(..5) != Some(b"\x7fELF\x02") {
        return Err(format!("{} is not a 64-bit ELF", elf.display()));
    }
    // Section headers: the symbol table (type 2) and the string table it links to.
    let (shoff, shentsize, shnum) = (u64_at(0x28) as usize, u16_at(0x3a), u16_at(0x3c));
    let section = |i: usize| shoff + i * shentsize;
    let symtab = (0..shnum).map(section).find(|&s| u32_at(s + 4) == 2).ok_or("no symbol table")?;
    let strtab = u64_at(section(u32_at(symtab + 0x28)) + 0x18) as usize;
    let (syms, size) = (u64_at(symtab + 0x18) as usize, u64_at(symtab + 0x20) as usize);
    let name = |o: usize| {
        let start = strtab + o;
        let end = f[start..].iter().position(|&b| b == 0).map_or(f.len(), |n| start + n);
        String::from_utf8_lossy(&f[start..end]).into_owned()
    };
    let addr = (syms..syms + size)
        .step_by(24)
        .find(|&s| name(u32_at(s)).contains(needle))
        .map(|s| u64_at(s + 8))
        .ok_or_else(|| format!("no symbol with '{needle}' in {}", elf.display()))?;
    // Program headers: the loaded segment (type 1) that holds it.
    let (phoff, phentsize, phnum) = (u64_at(0x20) as usize, u16_at(0x36), u16_at(0x38));
    (0..phnum)
        .map(|i| phoff + i * phentsize)
        .filter(|&p| u32_at(p) == 1)
        .find(|&p| (u64_at(p + 0x10)..u64_at(p + 0x10) + u64_at(p + 0x20)).contains(&addr))
        .map(|p| {
            let at = (addr - u64_at(p + 0x10) + u64_at(p + 8)) as usize;
            (addr, f[at..at + len].to_vec())
        })
        .ok_or_else(|| format!("{addr:#x} is in no loaded segment of {}", elf.display()))
}

/// A connection to QEMU's gdb stub.
struct Stub {
    socket: UnixStream,
    pending: Vec<u8>,
}

impl Stub {
    fn send(&mut self, data: &str) -> Result<(), String> {
        let sum = data.bytes().fold(0u8, u8::wrapping_add);
        self.socket.write_all(format!("${data}#{sum:02x}").as_bytes()).map_err(|e| format!("gdb stub: {e}"))
    }

    /// The next packet's data (acknowledged); `Err` on a timeout or a closed connection.
    fn packet(&mut self, timeout: Duration) -> Result<String, String> {
        self.socket.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
        loop {
            if let Some(start) = self.pending.iter().position(|&b| b == b'$') {
                if let Some(hash) = self.pending[start..].iter().position(|&b| b == b'#') {
                    let end = start + hash;
                    if self.pending.len() >= end + 3 {
                        let data = String::from_utf8_lossy(&self.pending[start + 1..end]).into_owned();
                        self.pending.drain(..end + 3);
                        self.socket.write_all(b"+").map_err(|e| format!("gdb stub: {e}"))?;
                        return Ok(data);
                    }
                }
            }
            let mut buf = [0u8; 4096];
            match self.socket.read(&mut buf) {
                Ok(0) => return Err("the gdb stub closed the connection".into()),
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) => return Err(format!("gdb stub: {e}")),
            }
        }
    }

    fn command(&mut self, data: &str) -> Result<String, String> {
        self.send(data)?;
        self.packet(Duration::from_secs(10))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len() / 2).filter_map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()).collect()
}

/// Start a thread that connects to the gdb stub at `socket` (once QEMU has made it), and the
/// first time user code runs `addr` in an address space whose code there is `code`, makes that
/// task fault (rip 0). Gives up after `patience`. The thread's result says what it did.
pub fn fault_at(
    socket: &'static Path,
    addr: u64,
    code: Vec<u8>,
    patience: Duration,
) -> std::thread::JoinHandle<Result<(), String>> {
    fault_when(socket, addr, code, |_| true, patience)
}

/// As [`fault_at`], at the first arrival at `addr` whose registers (a `g` packet, see [`reg`])
/// `when` accepts.
pub fn fault_when(
    socket: &'static Path,
    addr: u64,
    code: Vec<u8>,
    when: impl Fn(&[u8]) -> bool + Send + 'static,
    patience: Duration,
) -> std::thread::JoinHandle<Result<(), String>> {
    fault_when_seeing(socket, addr, code, move |regs, _| when(regs), patience)
}

/// The stopped machine's memory, as the current address space maps it, for a predicate or
/// an edit at a breakpoint.
pub struct Access<'a> {
    stub: &'a mut Stub,
}

impl Access<'_> {
    /// `len` bytes at `at` (none if the stub could not read them).
    pub fn read(&mut self, at: u64, len: usize) -> Vec<u8> {
        self.stub.command(&format!("m{at:x},{len:x}")).map(|s| unhex(&s)).unwrap_or_default()
    }

    /// Write `bytes` at `at`; whether the stub did.
    pub fn write(&mut self, at: u64, bytes: &[u8]) -> bool {
        self.stub.command(&format!("M{at:x},{:x}:{}", bytes.len(), hex(bytes))).is_ok_and(|r| r == "OK")
    }
}

/// As [`fault_when`], with a predicate that may also read the task's memory (say, the buffer
/// an argument register points to).
pub fn fault_when_seeing(
    socket: &'static Path,
    addr: u64,
    code: Vec<u8>,
    mut when: impl FnMut(&[u8], &mut Access<'_>) -> bool + Send + 'static,
    patience: Duration,
) -> std::thread::JoinHandle<Result<(), String>> {
    let user_and_when = move |regs: &[u8], memory: &mut Access<'_>| regs[CS] & 3 == 3 && when(regs, memory);
    edit_at(
        socket,
        addr,
        code,
        user_and_when,
        |_, regs, _| {
            regs[RIP..RIP + 8].fill(0);
            true
        },
        patience,
    )
}

/// Start a thread that connects to the gdb stub at `socket` (once QEMU has made it) and, at
/// each arrival at `addr` where the code is `code` and whose registers (a `g` packet, see
/// [`reg`]; both may also use the machine's memory through [`Access`]) `accept` takes, lets `edit`
/// change them: `edit(n, regs)` for the n-th such arrival
/// (from 0) returns true when it was the last one wanted. Then the machine runs on alone.
/// Gives up after `patience`. The thread's result says whether every edit was made.
pub fn edit_at(
    socket: &'static Path,
    addr: u64,
    code: Vec<u8>,
    mut accept: impl FnMut(&[u8], &mut Access<'_>) -> bool + Send + 'static,
    mut edit: impl FnMut(usize, &mut [u8], &mut Access<'_>) -> bool + Send + 'static,
    patience: Duration,
) -> std::thread::JoinHandle<Result<(), String>> {
    std::thread::spawn(move || {
        let until = Instant::now() + patience;
        let socket = loop {
            match UnixStream::connect(socket) {
                Ok(s) => break s,
                Err(_) if Instant::now() < until => std::thread::sleep(Duration::from_millis(50)),
                Err(e) => return Err(format!("cannot connect to {}: {e}", socket.display())),
            }
        };
        let mut stub = Stub { socket, pending: Vec::new() };
        // Connecting stopped the machine; QEMU may report that more than once.
        stub.send("?")?;
        while stub.packet(Duration::from_secs(1)).is_ok() {}
        let at = format!("{addr:x},1");
        if stub.command(&format!("Z0,{at}"))? != "OK" {
            return Err("QEMU refused the breakpoint".into());
        }
        let mut arrival = 0;
        loop {
            stub.send("c")?;
            let left = until.saturating_duration_since(Instant::now());
            let stop = stub.packet(left.max(Duration::from_millis(1)))?;
            if !stop.starts_with('T') && !stop.starts_with('S') {
                return Err(format!("the machine stopped for another reason: {stop}"));
            }
            let mut regs = unhex(&stub.command("g")?);
            if regs.len() < CS + 4 {
                return Err("a short register packet".into());
            }
            let rip = reg(&regs, RIP);
            let here = unhex(&stub.command(&format!("m{addr:x},{:x}", code.len()))?);
            let chosen = rip == addr && here == code && accept(&regs, &mut Access { stub: &mut stub });
            if !chosen {
                // Not this arrival: step over the breakpoint (a `c` from it would stop at it
                // again at once), then set it again.
                stub.command(&format!("z0,{at}"))?;
                stub.command("s")?;
                if stub.command(&format!("Z0,{at}"))? != "OK" {
                    return Err("QEMU refused the breakpoint again".into());
                }
                continue;
            }
            let last = edit(arrival, &mut regs, &mut Access { stub: &mut stub });
            arrival += 1;
            if stub.command(&format!("G{}", hex(&regs)))? != "OK" {
                return Err("QEMU refused the registers".into());
            }
            if reg(&regs, RIP) == addr {
                // Left where it was: step over the breakpoint, as above.
                stub.command(&format!("z0,{at}"))?;
                stub.command("s")?;
                if !last && stub.command(&format!("Z0,{at}"))? != "OK" {
                    return Err("QEMU refused the breakpoint again".into());
                }
            } else if last {
                stub.command(&format!("z0,{at}"))?;
            }
            if last {
                stub.send("D")?;
                return Ok(());
            }
        }
    })
}
