//! Where the libos kernel's code is, read from the image's ELF symbol table: a fault injected
//! into a cell strikes only outside it (a cell runs kernel code by plain calls, in its own
//! context, and a fault landing there would be the kernel's, not the cell's). The microkernel
//! needs no such table: its kernel is never the code a server runs.
//!
//! The libos kernel builds its table from these functions at boot, and `cargo os build` checks
//! the built image with the same functions ([`uncovered`]), so the two cannot disagree about
//! what counts.
//!
//! ```text
//!  counts as kernel code       a FUNC symbol (st_info & 0xf == 2), its st_size bytes, whose
//!                              name is the kernel's:
//!    Rust functions             mangled under a kernel crate (12libos_kernel, 4algo, 8heapless)
//!    #[no_mangle] functions     named libos_kernel_*        (libos_kernel_switch_between, ...)
//!    assembly                   named los_*                 (los_switch, los_trap_common, ...)
//!  must count                  every symbol in executable code with such a name: a label the
//!                              assembly leaves without `.type @function` and `.size` is NOTYPE
//!                              of size 0, and would not
//! ```
//! Library code the kernel shares with cells (`memcpy`, `core`) cannot count by name: where the
//! kernel runs it for a cell it does so inside a critical section (`sync::critical`), which the
//! injector also respects.

/// Crates only the libos kernel uses, as they appear in a legacy-mangled symbol name.
pub const CRATES: [&[u8]; 3] = [b"12libos_kernel", b"4algo", b"8heapless"];

/// Prefixes of the kernel's unmangled symbols: `#[no_mangle]` functions, and the assembly's
/// labels.
pub const PREFIXES: [&[u8]; 2] = [b"libos_kernel_", b"los_"];

/// How many ranges the kernel's table holds (its capacity, fixed at build time).
pub const MAX_RANGES: usize = 512;

const FUNC: u8 = 2;
const SYMBOL_SIZE: usize = 24;

/// Is `name` a symbol of the libos kernel's own code?
pub fn is_kernel(name: &[u8]) -> bool {
    PREFIXES.iter().any(|p| name.starts_with(p))
        || CRATES.iter().any(|c| name.windows(c.len()).any(|w| w == *c))
}

/// One entry of an ELF64 (little-endian) symbol table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Symbol<'a> {
    pub name: &'a [u8],
    pub value: u64,
    pub size: u64,
    /// `st_info & 0xf`: 2 is FUNC, 0 NOTYPE.
    pub kind: u8,
    /// The index of the section it is defined in.
    pub section: u16,
}

impl Symbol<'_> {
    pub fn is_function(&self) -> bool {
        self.kind == FUNC
    }

    /// The bytes the kernel's table counts for it: `[value, value + size)`, at least one byte.
    pub fn range(&self) -> (u64, u64) {
        (self.value, self.value.saturating_add(self.size.max(1)))
    }
}

/// The symbols of `symtab` (the raw `.symtab` section), named from `strtab` (its `.strtab`).
pub fn symbols<'a>(symtab: &'a [u8], strtab: &'a [u8]) -> impl Iterator<Item = Symbol<'a>> + 'a {
    symtab.chunks_exact(SYMBOL_SIZE).map(move |s| {
        let word = |r: core::ops::Range<usize>| s[r].iter().rev().fold(0u64, |a, &b| a << 8 | b as u64);
        let name = strtab
            .get(word(0..4) as usize..)
            .map_or(&[][..], |rest| &rest[..rest.iter().position(|&b| b == 0).unwrap_or(0)]);
        Symbol { name, value: word(8..16), size: word(16..24), kind: s[4] & 0xf, section: word(6..8) as u16 }
    })
}

/// The address ranges of the kernel's code: every function symbol [`is_kernel`] names.
pub fn ranges<'a>(symtab: &'a [u8], strtab: &'a [u8]) -> impl Iterator<Item = (u64, u64)> + 'a {
    symbols(symtab, strtab).filter(|s| s.is_function() && is_kernel(s.name)).map(|s| s.range())
}

/// What is wrong with an image's table of kernel code, for the build's check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gap<'a> {
    /// A symbol of the kernel's in executable code (`executable(section)`) that no range covers,
    /// or a function of size 0 (its code is not counted past its first byte).
    Uncovered(Symbol<'a>),
    /// More ranges than the kernel's table holds: the rest would be dropped.
    TooMany(usize),
}

/// Every symbol with a kernel name in executable code must lie in a range of [`ranges`], and
/// every such function must have a size; the ranges must fit the kernel's table. Returns the
/// first gap found.
pub fn uncovered<'a>(
    symtab: &'a [u8],
    strtab: &'a [u8],
    executable: impl Fn(u16) -> bool,
) -> Option<Gap<'a>> {
    let n = ranges(symtab, strtab).count();
    if n > MAX_RANGES {
        return Some(Gap::TooMany(n));
    }
    symbols(symtab, strtab)
        .filter(|s| executable(s.section) && is_kernel(s.name))
        .find(|s| {
            (s.is_function() && s.size == 0)
                || !ranges(symtab, strtab).any(|(a, b)| (a..b).contains(&s.value))
        })
        .map(Gap::Uncovered)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    /// A symbol table and its string table, from (name, value, size, kind, section).
    fn table(syms: &[(&str, u64, u64, u8, u16)]) -> (Vec<u8>, Vec<u8>) {
        let (mut symtab, mut strtab) = (std::vec![0u8; SYMBOL_SIZE], std::vec![0u8]);
        for &(name, value, size, kind, section) in syms {
            let at = strtab.len() as u32;
            strtab.extend_from_slice(name.as_bytes());
            strtab.push(0);
            symtab.extend_from_slice(&at.to_le_bytes());
            symtab.push(kind);
            symtab.push(0);
            symtab.extend_from_slice(&section.to_le_bytes());
            symtab.extend_from_slice(&value.to_le_bytes());
            symtab.extend_from_slice(&size.to_le_bytes());
        }
        (symtab, strtab)
    }

    const TEXT: u16 = 2;
    const BSS: u16 = 6;

    #[test]
    fn the_kernel_is_named_by_crate_or_by_prefix() {
        assert!(is_kernel(b"_ZN12libos_kernel5sched5block17h0123456789abcdefE"));
        assert!(is_kernel(b"_ZN8heapless3vec9Vec$LT$T$C$_$GT$4push17h0123456789abcdefE"));
        assert!(is_kernel(b"libos_kernel_switch_between"));
        assert!(is_kernel(b"los_switch_resume"));
        assert!(!is_kernel(b"_ZN7cell_fs4main17h0123456789abcdefE"));
        assert!(!is_kernel(b"memcpy"));
        assert!(!is_kernel(b"_ZN4core3ptr13drop_in_place17h0123456789abcdefE"));
        assert!(!is_kernel(b"xlos_switch"), "a prefix, not a substring");
    }

    #[test]
    fn symbols_are_read_field_by_field() {
        let (symtab, strtab) = table(&[("los_switch", 0x13bd20, 0x36, FUNC, TEXT)]);
        let all: Vec<_> = symbols(&symtab, &strtab).collect();
        assert_eq!(all.len(), 2, "the null symbol first");
        assert_eq!(
            all[1],
            Symbol { name: b"los_switch", value: 0x13bd20, size: 0x36, kind: FUNC, section: TEXT }
        );
        assert_eq!(all[1].range(), (0x13bd20, 0x13bd56));
    }

    #[test]
    fn only_kernel_functions_make_ranges() {
        let (symtab, strtab) = table(&[
            ("los_switch", 0x100, 0x30, FUNC, TEXT),
            ("los_trap_common", 0x200, 0, 0, TEXT),
            ("_ZN7cell_fs4main17h0123456789abcdefE", 0x300, 0x40, FUNC, TEXT),
            ("libos_kernel_switch_between", 0x400, 0x80, FUNC, TEXT),
        ]);
        let all: Vec<_> = ranges(&symtab, &strtab).collect();
        assert_eq!(all, [(0x100, 0x130), (0x400, 0x480)]);
    }

    #[test]
    fn a_label_without_a_type_or_a_size_is_a_gap() {
        let exec = |s: u16| s == TEXT;
        // As the switch's assembly was: untyped labels, size 0.
        let (symtab, strtab) = table(&[
            ("libos_kernel_switch_between", 0x400, 0x80, FUNC, TEXT),
            ("los_switch", 0x100, 0, 0, TEXT),
        ]);
        assert!(
            matches!(uncovered(&symtab, &strtab, exec), Some(Gap::Uncovered(s)) if s.name == b"los_switch")
        );
        // Typed but sized 0: only its first byte would count.
        let (symtab, strtab) = table(&[("los_switch", 0x100, 0, FUNC, TEXT)]);
        assert!(
            matches!(uncovered(&symtab, &strtab, exec), Some(Gap::Uncovered(s)) if s.name == b"los_switch")
        );
        // A label inside a sized function (los_switch_resume inside los_switch) is covered, and
        // data named like the kernel (the switch stack) is not code.
        let (symtab, strtab) = table(&[
            ("los_switch", 0x100, 0x36, FUNC, TEXT),
            ("los_switch_resume", 0x125, 0, 0, TEXT),
            ("los_switch_stack", 0x9000, 0, 0, BSS),
            ("memcpy", 0x800, 0x40, FUNC, TEXT),
        ]);
        assert_eq!(uncovered(&symtab, &strtab, exec), None);
    }

    #[test]
    fn more_ranges_than_the_table_holds_is_a_gap() {
        let names: Vec<std::string::String> = (0..=MAX_RANGES).map(|i| std::format!("los_f{i}")).collect();
        let syms: Vec<_> =
            names.iter().enumerate().map(|(i, n)| (n.as_str(), 16 * i as u64, 8, FUNC, TEXT)).collect();
        let (symtab, strtab) = table(&syms);
        assert_eq!(uncovered(&symtab, &strtab, |s| s == TEXT), Some(Gap::TooMany(MAX_RANGES + 1)));
        let (symtab, strtab) = table(&syms[..MAX_RANGES]);
        assert_eq!(uncovered(&symtab, &strtab, |s| s == TEXT), None);
    }
}
