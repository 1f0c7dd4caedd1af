//! A deliberately misbehaving SSR server — a test build that exists to be stopped.
//!
//! It keeps one word per client in the client's SSR ([`PUT`], [`GET`]) like any well-behaved
//! server, but on request it also does what the kernel must prevent: [`TOUCH_AFTER_REPLY`]
//! answers and then reads the SSR window outside any request; [`TOUCH_NEIGHBOUR`] reaches past
//! the current client's SSR, where another client's state would be if SSRs were not isolated.
//! Both must end in a page fault, and every client's word must survive (see `ssrtest`).
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use userlib::abi::{badge_session, BootInfo, Error, SSR_SIZE, SSR_WINDOW};
use userlib::cap::{save_reply, ssr_window, Cap, Endpoint};

userlib::entry!(main);

use probe::{GET, PUT, TOUCH_AFTER_REPLY, TOUCH_NEIGHBOUR};
const PARK_SLOT: u8 = 20;

fn word() -> &'static mut [u8] {
    &mut ssr_window()[..8]
}

/// Read the byte just past the SSR window.
#[inline(never)]
#[allow(unsafe_code)]
fn touch_neighbour() -> u8 {
    // SAFETY: none, on purpose: the page after the window is never mapped; this must fault.
    unsafe { core::ptr::read_volatile((SSR_WINDOW + SSR_SIZE as u64) as *const u8) }
}

/// Read the SSR window when no request is running.
#[inline(never)]
fn touch_after_reply() -> u8 {
    core::hint::black_box(ssr_window()[0])
}

fn main(boot: &'static BootInfo) -> Result<(), Error> {
    let ep = Cap::<Endpoint>::from_boot(boot, "probe").ok_or(Error::EmptySlot)?;
    let mut m = ep.recv()?;
    loop {
        if badge_session(m.badge).is_none() {
            m = ep.reply_recv(1, [0; 4], &[])?;
            continue;
        }
        let value = match m.info.label {
            PUT => {
                word().copy_from_slice(&m.words[0].to_le_bytes());
                m.words[0]
            }
            GET => u64::from_le_bytes(word().try_into().unwrap_or([0; 8])),
            TOUCH_AFTER_REPLY => {
                let value = u64::from_le_bytes(word().try_into().unwrap_or([0; 8]));
                save_reply(PARK_SLOT)?.reply(0, [value, 0, 0, 0], &[])?;
                touch_after_reply() as u64
            }
            TOUCH_NEIGHBOUR => touch_neighbour() as u64,
            _ => 0,
        };
        m = ep.reply_recv(0, [value, 0, 0, 0], &[])?;
    }
}
