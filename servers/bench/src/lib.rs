//! The benchmark server's protocol: labels of the measured calls.
#![no_std]
#![forbid(unsafe_code)]

/// Answer at once, touching nothing.
pub const NULL: u32 = 1;
/// Read and write one word of the caller's SSR, answer with the new value in MR0.
pub const SSR_WORD: u32 = 2;
/// Answer with the request's payload: the kernel copies it from the caller's IPC buffer into the
/// server's and back (`bench grow`: what a call costs per byte of payload).
pub const ECHO: u32 = 3;
