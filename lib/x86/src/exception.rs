//! The CPU's exceptions in words: their names, the page-fault error code, and which addresses
//! the CPU can fetch from at all. Every fault report of both kernels, the reincarnation
//! server's and the shell's read them from here.

use core::fmt;

const NAMES: [&str; 32] = [
    "divide error (#DE)",
    "debug (#DB)",
    "non-maskable interrupt",
    "breakpoint (#BP)",
    "overflow (#OF)",
    "bound range exceeded (#BR)",
    "invalid opcode (#UD)",
    "device not available (#NM)",
    "double fault (#DF)",
    "coprocessor segment overrun",
    "invalid TSS (#TS)",
    "segment not present (#NP)",
    "stack-segment fault (#SS)",
    "general protection (#GP)",
    "page fault (#PF)",
    "reserved vector 15",
    "x87 floating point (#MF)",
    "alignment check (#AC)",
    "machine check (#MC)",
    "SIMD floating point (#XM)",
    "virtualization (#VE)",
    "control protection (#CP)",
    "reserved vector 22",
    "reserved vector 23",
    "reserved vector 24",
    "reserved vector 25",
    "reserved vector 26",
    "reserved vector 27",
    "hypervisor injection (#HV)",
    "VMM communication (#VC)",
    "security exception (#SX)",
    "reserved vector 31",
];

pub const DEBUG: u64 = 1;
pub const DOUBLE_FAULT: u64 = 8;
pub const GENERAL_PROTECTION: u64 = 13;
pub const PAGE_FAULT: u64 = 14;

/// The exception's name with its mnemonic, e.g. `page fault (#PF)`.
pub fn name(vector: u64) -> &'static str {
    NAMES.get(vector as usize).copied().unwrap_or("unknown vector")
}

/// A page-fault error code in words: `user write, page not present`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageFault(pub u64);

impl PageFault {
    pub fn user(self) -> bool {
        self.0 & 4 != 0
    }
    pub fn write(self) -> bool {
        self.0 & 2 != 0
    }
    pub fn fetch(self) -> bool {
        self.0 & 16 != 0
    }
    /// The page was present: a protection violation (not an unmapped page).
    pub fn present(self) -> bool {
        self.0 & 1 != 0
    }
}

impl fmt::Display for PageFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = if self.user() { "user" } else { "kernel" };
        let what = if self.fetch() {
            "instruction fetch"
        } else if self.write() {
            "write"
        } else {
            "read"
        };
        let why = if self.present() { "protection violation" } else { "page not present" };
        write!(f, "{who} {what}, {why}")
    }
}

/// An exception as a report's first line names it: `page fault (#PF), error 0x6 (user write,
/// page not present)`; the error code is decoded for page faults only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exception {
    pub vector: u64,
    pub error: u64,
}

impl fmt::Display for Exception {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, error {:#x}", name(self.vector), self.error)?;
        if self.vector == PAGE_FAULT {
            write!(f, " ({})", PageFault(self.error))?;
        }
        Ok(())
    }
}

/// An address the CPU can fetch from: bits 63..47 all equal.
#[inline]
pub const fn is_canonical(addr: u64) -> bool {
    let top = addr >> 47;
    top == 0 || top == (1 << 17) - 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;

    #[test]
    fn exceptions_are_named_with_their_mnemonic() {
        assert_eq!(name(14), "page fault (#PF)");
        assert_eq!(name(13), "general protection (#GP)");
        assert_eq!(name(99), "unknown vector");
        assert_eq!(format!("{}", Exception { vector: 13, error: 0 }), "general protection (#GP), error 0x0");
    }

    #[test]
    fn page_fault_codes_read_as_words() {
        assert_eq!(format!("{}", PageFault(0x6)), "user write, page not present");
        assert_eq!(format!("{}", PageFault(0x7)), "user write, protection violation");
        assert_eq!(format!("{}", PageFault(0x15)), "user instruction fetch, protection violation");
        assert_eq!(format!("{}", PageFault(0x0)), "kernel read, page not present");
        assert_eq!(
            format!("{}", Exception { vector: 14, error: 2 }),
            "page fault (#PF), error 0x2 (kernel write, page not present)"
        );
    }

    #[test]
    fn canonical_addresses() {
        assert!(is_canonical(0x4000_0000) && is_canonical(0xffff_8000_0000_0000));
        assert!(!is_canonical(1 << 47) && !is_canonical(0x0004_0000_0000_0000));
    }
}
