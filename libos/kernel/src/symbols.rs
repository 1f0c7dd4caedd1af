//! Instruction addresses to function names, from the image's own ELF symbol table.
//!
//! GRUB loads every section of the image, including `.symtab` and `.strtab`, and names them in
//! the Multiboot2 ELF-sections tag; `init` remembers where they are (their frames stay
//! reserved, below the allocator's floor).

use crate::sync::Global;
use fault::kernel_code;

#[derive(Clone, Copy)]
struct Table {
    symtab: u64,
    symtab_len: u64,
    strtab: u64,
    strtab_len: u64,
}

static TABLE: Global<Option<Table>> = Global::new(None);

/// Address ranges of the kernel's own code (its functions, its assembly, and the libraries only
/// the kernel uses), so the injector can keep its faults in cell code: a fault injected into a
/// cell must not strike the kernel code the cell happens to be running (in the microkernel, the
/// kernel is never the target either). Which symbols count is `fault::kernel_code`'s rule, which
/// `cargo os build` checks against the built image.
static KERNEL_CODE: Global<heapless::Vec<(u64, u64), { kernel_code::MAX_RANGES }>> =
    Global::new(heapless::Vec::new());

/// Remember the symbol table (addresses are physical = virtual below 1 GiB).
pub(crate) fn init(symtab: (u64, u64), strtab: (u64, u64)) {
    if symtab.0 != 0 && strtab.0 != 0 {
        TABLE.with(|t| {
            *t =
                Some(Table { symtab: symtab.0, symtab_len: symtab.1, strtab: strtab.0, strtab_len: strtab.1 })
        });
        let Some((syms, strs)) = sections() else { return };
        let mut ranges = heapless::Vec::new();
        for r in kernel_code::ranges(syms, strs) {
            // The build checks the image's ranges fit; a range dropped here would let faults
            // strike kernel code.
            ranges.push(r).expect("the kernel's code has more ranges than its table holds");
        }
        KERNEL_CODE.with(|c| *c = ranges);
    }
}

/// Is `rip` in the kernel's code?
pub(crate) fn in_core(rip: u64) -> bool {
    KERNEL_CODE.with(|c| c.iter().any(|&(s, e)| (s..e).contains(&rip)))
}

/// The symbol table and its string table, as GRUB loaded them.
fn sections() -> Option<(&'static [u8], &'static [u8])> {
    let t = TABLE.with(|t| *t)?;
    // SAFETY: GRUB loaded these sections at these addresses; their frames are never handed out
    // and are mapped read-write (identity) below 1 GiB.
    Some(unsafe {
        (
            core::slice::from_raw_parts(t.symtab as *const u8, t.symtab_len as usize),
            core::slice::from_raw_parts(t.strtab as *const u8, t.strtab_len as usize),
        )
    })
}

fn lookup(addr: u64) -> Option<(&'static [u8], u64)> {
    let (syms, strs) = sections()?;
    kernel_code::symbols(syms, strs)
        .find(|s| s.is_function() && (s.range().0..s.range().1).contains(&addr))
        .map(|s| (s.name, addr - s.value))
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
