//! The benchmark server's protocol: labels of the two measured calls.
#![no_std]
#![forbid(unsafe_code)]

/// Answer at once, touching nothing.
pub const NULL: u32 = 1;
/// Read and write one word of the caller's SSR, answer with the new value in MR0.
pub const SSR_WORD: u32 = 2;
