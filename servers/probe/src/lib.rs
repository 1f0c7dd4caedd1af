//! The probe server's protocol (labels; the word travels in MR0).
#![no_std]
#![forbid(unsafe_code)]

/// Store MR0 in the caller's SSR (the `spill` build answers with the last word put, in MR1).
pub const PUT: u32 = 1;
/// Answer with the word in the caller's SSR.
pub const GET: u32 = 2;
/// Answer, then read the SSR window outside any request (must fault).
pub const TOUCH_AFTER_REPLY: u32 = 3;
/// Read past the current client's SSR during its request (must fault).
pub const TOUCH_NEIGHBOUR: u32 = 4;
/// Take the endpoint capability sent with this message (a console) and keep it.
pub const TAKE_CAP: u32 = 5;
/// Print through the capability taken with `TAKE_CAP`; MR0 of the answer is 1 on success,
/// 0 if the capability is gone (e.g. revoked by its giver).
pub const USE_CAP: u32 = 6;
