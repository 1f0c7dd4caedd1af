//! Hardware-free algorithms the libos core is built from, unit-tested on the host: the bitmap
//! run allocator behind frames, virtual slots and task heaps; the seeded generators; the keyed
//! seal that makes client-held state tamper-evident; the checked mirror that keeps blocks end
//! to end through a store that may be wrong; the checks a client makes of a clock server's
//! answers; byte strings compared a word at a time; and the benchmark statistics.
#![no_std]
#![forbid(unsafe_code)]

pub mod bitmap;
pub mod bytes;
pub mod clock;
pub mod mirror;
pub mod rng;
pub mod seal;
pub mod stats;
