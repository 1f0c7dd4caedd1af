//! The protected-call benchmark server. Label [`NULL`]: answer at once. Label [`SSR_WORD`]:
//! read one word of the caller's SSR (through the `ssr` library's checks), write it back
//! incremented, answer with the new value. Clients time the round trips (the shell's `bench`).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use bytemuck::{Pod, Zeroable};
use ssr::Layout;
use userlib::abi::{badge_session, BootInfo, Error, MsgInfo, Sysno};
use userlib::cap::{ssr_window, Cap, Endpoint};

use bench::{NULL, SSR_WORD};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Counter {
    value: u64,
}

impl Layout for Counter {
    const KIND: u16 = 0xBE;
    const VERSION: u16 = 1;
}

userlib::entry!(main);

fn main(boot: &'static BootInfo) -> Result<(), Error> {
    let ep = Cap::<Endpoint>::from_boot(boot, "bench").ok_or(Error::EmptySlot)?;
    let first = ep.recv()?;
    let (mut badge, mut label) = (first.badge, first.info.label);
    // The loop speaks the raw syscall (a label in, a label and one word out, no payload), so
    // what the shell's `bench` measures is the kernel's call path, not message plumbing.
    loop {
        let (answer, value) = match (label, badge_session(badge)) {
            (NULL, _) => (0, 0),
            (SSR_WORD, Some(_)) => match ssr::open::<Counter>(ssr_window()) {
                Ok(mut r) => {
                    r.state().value += 1;
                    (0, r.get().value)
                }
                Err(_) => (2, 0),
            },
            _ => (1, 0),
        };
        let info = MsgInfo::new(answer).encode();
        let r = userlib::sys::call(Sysno::ReplyRecv, [ep.slot(), info, value, 0, 0, 0])?;
        (badge, label) = (r.rdi, r.rsi as u32);
    }
}
