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

use probe::{GET, PUT, TAKE_CAP, TOUCH_AFTER_REPLY, TOUCH_NEIGHBOUR, USE_CAP};
const PARK_SLOT: u8 = 20;
/// Where a granted capability lands.
const GIFT_SLOT: u8 = 21;

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

userlib::entry!(main);

fn main(boot: &'static BootInfo) -> Result<(), Error> {
    let ep = Cap::<Endpoint>::from_boot(boot, "probe").ok_or(Error::EmptySlot)?;
    let mut m = ep.recv_into(Some(GIFT_SLOT))?;
    loop {
        // A capability may arrive with any message; keep the gift slot free until one does.
        let gift_free = userlib::cap::cap_info(GIFT_SLOT).is_err();
        let recv_slot = gift_free.then_some(GIFT_SLOT);
        match m.info.label {
            TAKE_CAP => {
                let ok = m.info.cap == Some(GIFT_SLOT);
                m = ep.reply_recv_into(0, [ok as u64, 0, 0, 0], &[], if ok { None } else { recv_slot })?;
                continue;
            }
            USE_CAP => {
                let console = console_api::Console::new(Cap::at(GIFT_SLOT));
                let ok = console.write(b"probe: printing through a capability it was granted\n").is_ok();
                m = ep.reply_recv_into(0, [ok as u64, 0, 0, 0], &[], recv_slot)?;
                continue;
            }
            _ => {}
        }
        if badge_session(m.badge).is_none() {
            m = ep.reply_recv_into(1, [0; 4], &[], recv_slot)?;
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
        m = ep.reply_recv_into(0, [value, 0, 0, 0], &[], recv_slot)?;
    }
}
