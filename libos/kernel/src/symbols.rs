//! Instruction addresses to function names, from the image's own ELF symbol table.
//!
//! GRUB loads every section of the image, including `.symtab` and `.strtab`, and names them in
//! the Multiboot2 ELF-sections tag; `init` remembers where they are (their frames stay
//! reserved, below the allocator's floor).

use crate::sync::Global;

#[derive(Clone, Copy)]
struct Table {
    symtab: u64,
    symtab_len: u64,
    strtab: u64,
    strtab_len: u64,
}

static TABLE: Global<Option<Table>> = Global::new(None);

/// Address ranges of the kernel's own functions (and the libraries only the kernel uses), so the
/// injector can keep its faults in cell code: a fault injected into a cell must not strike the
/// kernel code the cell happens to be running (in the microkernel, the kernel is never the target
/// either).
static KERNEL_CODE: Global<heapless::Vec<(u64, u64), 512>> = Global::new(heapless::Vec::new());

const KERNEL_CRATES: [&[u8]; 3] = [b"12libos_kernel", b"4algo", b"8heapless"];

/// Remember the symbol table (addresses are physical = virtual below 1 GiB).
pub(crate) fn init(symtab: (u64, u64), strtab: (u64, u64)) {
    if symtab.0 != 0 && strtab.0 != 0 {
        TABLE.with(|t| {
            *t =
                Some(Table { symtab: symtab.0, symtab_len: symtab.1, strtab: strtab.0, strtab_len: strtab.1 })
        });
        let mut ranges = heapless::Vec::new();
        for_each_function(|name, start, end| {
            if KERNEL_CRATES.iter().any(|c| name.windows(c.len()).any(|w| w == *c)) {
                let _ = ranges.push((start, end));
            }
        });
        KERNEL_CODE.with(|c| *c = ranges);
    }
}

/// Is `rip` in the kernel's code?
pub(crate) fn in_core(rip: u64) -> bool {
    KERNEL_CODE.with(|c| c.iter().any(|&(s, e)| (s..e).contains(&rip)))
}

/// Every function symbol: name, start, end.
fn for_each_function(mut f: impl FnMut(&[u8], u64, u64)) {
    let Some(t) = TABLE.with(|t| *t) else { return };
    // SAFETY: as in `lookup`.
    let (syms, strs) = unsafe {
        (
            core::slice::from_raw_parts(t.symtab as *const u8, t.symtab_len as usize),
            core::slice::from_raw_parts(t.strtab as *const u8, t.strtab_len as usize),
        )
    };
    for s in syms.chunks_exact(24) {
        let word = |r: core::ops::Range<usize>| s[r].iter().rev().fold(0u64, |a, &b| a << 8 | b as u64);
        if s[4] & 0xf != 2 {
            continue;
        }
        let (name, value, size) = (word(0..4) as usize, word(8..16), word(16..24));
        let Some(rest) = strs.get(name..) else { continue };
        let end = rest.iter().position(|&b| b == 0).unwrap_or(0);
        f(&rest[..end], value, value + size.max(1));
    }
}

fn lookup(addr: u64) -> Option<(&'static [u8], u64)> {
    let t = TABLE.with(|t| *t)?;
    // SAFETY: GRUB loaded these sections at these addresses; their frames are never handed out
    // and are mapped read-write (identity) below 1 GiB.
    let (syms, strs) = unsafe {
        (
            core::slice::from_raw_parts(t.symtab as *const u8, t.symtab_len as usize),
            core::slice::from_raw_parts(t.strtab as *const u8, t.strtab_len as usize),
        )
    };
    for s in syms.chunks_exact(24) {
        let info = s[4];
        let value = u64::from_le_bytes(s[8..16].try_into().ok()?);
        let size = u64::from_le_bytes(s[16..24].try_into().ok()?);
        if info & 0xf == 2 && value <= addr && addr < value + size.max(1) {
            let name = u32::from_le_bytes(s[0..4].try_into().ok()?) as usize;
            let rest = strs.get(name..)?;
            let end = rest.iter().position(|&b| b == 0)?;
            return Some((&rest[..end], addr - value));
        }
    }
    None
}

/// Displays as `<function+0xoffset>`, or `<unknown>`.
pub struct Symbol(pub u64);

impl core::fmt::Display for Symbol {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match lookup(self.0).and_then(|(n, off)| Some((core::str::from_utf8(n).ok()?, off))) {
            Some((name, off)) => write!(f, "<{:#}+{:#x}>", rustc_demangle::demangle(name), off),
            None => f.write_str("<unknown>"),
        }
    }
}
