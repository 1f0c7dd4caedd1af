//! The protected-call benchmark server. Label [`NULL`]: answer at once. Label [`SSR_WORD`]:
//! read one word of the caller's SSR (through the `ssr` library's checks), write it back
//! incremented, answer with the new value. Label [`ECHO`]: answer with the request's payload,
//! which the kernel left in this server's IPC buffer (no copy here: the reply's length names it).
//! Clients time the round trips (the shell's `bench`).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use bytemuck::{Pod, Zeroable};
use ssr::Layout;
use userlib::abi::{badge_session, BootInfo, Error, MsgInfo, Sysno};
use userlib::cap::{ssr_window, Cap, Endpoint};

use bench::{ECHO, NULL, SSR_WORD};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Counter {
    value: u64,
}

impl Layout for Counter {
    const KIND: u16 = 0xBE;
    const VERSION: u16 = 1;
}

userlib::version!("bench", 1, [(Counter::KIND, Counter::VERSION)]);
userlib::entry!(main);

fn main(boot: &'static BootInfo) -> Result<(), Error> {
    let ep = Cap::<Endpoint>::from_boot(boot, "bench").ok_or(Error::EmptySlot)?;
    let first = ep.recv()?;
    let (mut badge, mut received) = (first.badge, first.info.encode());
    // The loop speaks the raw syscall (a label in, a label and one word out, no payload), so
    // what the shell's `bench` measures is the kernel's call path, not message plumbing.
    loop {
        let mut reply_len = 0;
        let (answer, value) = match (received as u32, badge_session(badge)) {
            (NULL, _) => (0, 0),
            (ECHO, _) => {
                // The payload's length: bits 32..48 (the kernel checked it against the buffer).
                reply_len = (received >> 32) as u16;
                (0, 0)
            }
            (SSR_WORD, Some(_)) => match ssr::open::<Counter>(ssr_window()) {
                Ok(mut r) => {
                    r.state().value += 1;
                    (0, r.get().value)
                }
                Err(_) => (2, 0),
            },
            _ => (1, 0),
        };
        let info = MsgInfo::with_len(answer, reply_len).encode();
        let r = userlib::sys::call(Sysno::ReplyRecv, [ep.slot(), info, value, 0, 0, 0])?;
        (badge, received) = (r.rdi, r.rsi);
    }
}
