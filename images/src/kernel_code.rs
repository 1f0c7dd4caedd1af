//! The build's check of the libos kernel's table of its own code.
//!
//! The libos's fault injector strikes a cell only outside the kernel's code, which the kernel
//! reads from its image's ELF symbol table at boot (`fault::kernel_code`). Code the table misses
//! is code a fault may strike on a cell's behalf: an assembly label left without a type and a
//! size (NOTYPE, size 0) is such a gap, and was one — the voluntary switch's `los_switch` and
//! the trap path's `los_trap_common`. After every build, the libos image is read here with the
//! kernel's own functions, and the build fails on a gap.

use crate::{fail, Result};
use fault::kernel_code::{self, Gap};
use std::path::Path;

/// Symbols the task switch needs counted; a rename that drops the kernel's prefix (or the
/// switch itself) must come here, not pass unnoticed.
pub const SWITCH: [&str; 4] =
    ["los_switch", "los_switch_resume", "libos_kernel_switch_between", "los_trap_return"];

/// Check the libos image at `elf`: every symbol of the kernel's in executable code is covered by
/// its table, the table fits, and the switch's symbols are there.
pub fn check(elf: &Path) -> Result<()> {
    let bytes = std::fs::read(elf).map_err(|e| fail!("cannot read {}: {e}", elf.display()))?;
    let t = Symbols::read(&bytes).ok_or_else(|| fail!("{}: no ELF64 symbol table", elf.display()))?;
    let exec = |i: u16| t.executable.get(i as usize).copied().unwrap_or(false);
    match kernel_code::uncovered(t.symtab, t.strtab, exec) {
        None => {}
        Some(Gap::Uncovered(s)) => {
            return Err(fail!(
                "{}: `{}` at {:#x} is the libos kernel's code, but no sized function symbol covers it \
                 (type {}, size {}): the fault injector could strike inside it on a cell's behalf. \
                 An assembly label needs `.type {name}, @function` and `.size {name}, . - {name}`.",
                elf.display(),
                String::from_utf8_lossy(s.name),
                s.value,
                s.kind,
                s.size,
                name = String::from_utf8_lossy(s.name),
            ))
        }
        Some(Gap::TooMany(n)) => {
            return Err(fail!(
                "{}: the libos kernel's code is {n} function symbols, more than its table holds \
                 (fault::kernel_code::MAX_RANGES = {})",
                elf.display(),
                kernel_code::MAX_RANGES
            ))
        }
    }
    for name in SWITCH {
        let found = kernel_code::symbols(t.symtab, t.strtab)
            .any(|s| s.name == name.as_bytes() && exec(s.section) && kernel_code::is_kernel(s.name));
        if !found {
            return Err(fail!(
                "{}: no `{name}` in the libos kernel's code (images/src/kernel_code.rs names the \
                 task switch's symbols, which must count as kernel code)",
                elf.display()
            ));
        }
    }
    Ok(())
}

/// An ELF64 little-endian file's symbol table, its string table, and which sections hold code.
struct Symbols<'a> {
    symtab: &'a [u8],
    strtab: &'a [u8],
    /// By section index: is it executable (SHF_EXECINSTR)?
    executable: Vec<bool>,
}

impl<'a> Symbols<'a> {
    fn read(b: &'a [u8]) -> Option<Self> {
        const SHT_SYMTAB: u32 = 2;
        const SHF_EXECINSTR: u64 = 4;
        if b.get(..6)? != b"\x7fELF\x02\x01" {
            return None;
        }
        let u16_at = |at: usize| Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?));
        let u32_at = |at: usize| Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?));
        let u64_at = |at: usize| Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?));
        let (shoff, shentsize, shnum) =
            (u64_at(0x28)? as usize, u16_at(0x3a)? as usize, u16_at(0x3c)? as usize);
        let header = |i: usize| shoff + i * shentsize;
        let data = |i: usize| {
            let (off, size) = (u64_at(header(i) + 24)? as usize, u64_at(header(i) + 32)? as usize);
            b.get(off..off.checked_add(size)?)
        };
        let executable =
            (0..shnum).map(|i| u64_at(header(i) + 8).is_some_and(|f| f & SHF_EXECINSTR != 0)).collect();
        let symtab = (0..shnum).find(|&i| u32_at(header(i) + 4) == Some(SHT_SYMTAB))?;
        let strtab = u32_at(header(symtab) + 40)? as usize;
        Some(Symbols { symtab: data(symtab)?, strtab: data(strtab)?, executable })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This test's own executable is an ELF64 file with a symbol table (a host build): the reader
    /// finds its functions, in code.
    #[test]
    fn reads_a_real_symbol_table() {
        let bytes = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let t = Symbols::read(&bytes).expect("an ELF64 symbol table");
        let exec = |i: u16| t.executable.get(i as usize).copied().unwrap_or(false);
        let functions: Vec<_> =
            kernel_code::symbols(t.symtab, t.strtab).filter(|s| s.is_function() && exec(s.section)).collect();
        assert!(functions.iter().any(|s| s.name == b"main"), "main is a function in code");
        assert!(
            functions.iter().any(|s| String::from_utf8_lossy(s.name).contains("reads_a_real_symbol_table")),
            "so is this test"
        );
        assert!(!kernel_code::symbols(t.symtab, t.strtab).any(|s| s.name == b"main" && !exec(s.section)));
        assert!(Symbols::read(b"\x7fELF\x01\x01").is_none(), "not ELF64");
    }
}
