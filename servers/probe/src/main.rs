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
use userlib::cap::{save_reply, ssr_window, Cap, Endpoint, Message};
use userlib::serve::{Answer, Handler};

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

/// Test build `spill` (`update probe /servers/probe-spill`): it also remembers the last word
/// any client put, in this static, and answers the next `PUT` (MR1), whoever makes it, with
/// that word: one client's data handed to another, the state spill that the `audit` of the
/// probe must catch, naming this symbol.
#[cfg(feature = "spill")]
static LAST_WORD: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// The word put before this one (the `spill` build's leak), or 0.
fn remember(word: u64) -> u64 {
    #[cfg(feature = "spill")]
    {
        use core::sync::atomic::Ordering::Relaxed;
        // A load, then a store (not a swap): the audit sees the read of another client's word.
        let last = LAST_WORD.load(Relaxed);
        LAST_WORD.store(word, Relaxed);
        last
    }
    #[cfg(not(feature = "spill"))]
    {
        let _ = word;
        0
    }
}

#[cfg(not(feature = "spill"))]
userlib::version!("probe", 1, []);
#[cfg(feature = "spill")]
userlib::version!("probe", 2, []);
userlib::entry!(main);

/// The probe's handling of a message (`userlib::serve` runs the loop).
struct Probe;

impl Handler for Probe {
    fn handle(&mut self, m: &Message) -> Answer {
        match m.info.label {
            TAKE_CAP => return Answer::words(0, [(m.info.cap == Some(GIFT_SLOT)) as u64, 0, 0, 0]),
            USE_CAP => {
                let console = console_api::Console::new(Cap::at(GIFT_SLOT));
                let ok = console.write(b"probe: printing through a capability it was granted\n").is_ok();
                return Answer::words(0, [ok as u64, 0, 0, 0]);
            }
            _ => {}
        }
        if badge_session(m.badge).is_none() {
            return Answer::words(1, [0; 4]);
        }
        let (value, last) = match m.info.label {
            PUT => {
                word().copy_from_slice(&m.words[0].to_le_bytes());
                (m.words[0], remember(m.words[0]))
            }
            GET => (u64::from_le_bytes(word().try_into().unwrap_or([0; 8])), 0),
            TOUCH_AFTER_REPLY => {
                let value = u64::from_le_bytes(word().try_into().unwrap_or([0; 8]));
                let answered = save_reply(PARK_SLOT).and_then(|r| r.reply(0, [value, 0, 0, 0], &[]));
                if let Err(e) = answered {
                    panic!("probe: cannot answer before touching the window: {e}");
                }
                (touch_after_reply() as u64, 0)
            }
            TOUCH_NEIGHBOUR => (touch_neighbour() as u64, 0),
            _ => (0, 0),
        };
        Answer::words(0, [value, last, 0, 0])
    }

    /// A capability may arrive with any message; the gift slot takes one while it is free.
    fn cap_slot(&mut self) -> Option<u8> {
        userlib::cap::cap_info(GIFT_SLOT).is_err().then_some(GIFT_SLOT)
    }
}

fn main(boot: &'static BootInfo) -> Result<(), Error> {
    let ep = Cap::<Endpoint>::from_boot(boot, "probe").ok_or(Error::EmptySlot)?;
    userlib::serve::serve(ep, Probe)
}
