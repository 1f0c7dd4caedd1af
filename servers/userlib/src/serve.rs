//! A server's receive loop, built so that nothing of one request stays in the server's memory
//! while it waits for the next: the state-spill audit's rule for the stack, kept by
//! construction rather than by each server clearing its own buffers.
//!
//! ```text
//!   main's frame        the server's own state (declared, or unchanged by requests)
//!   serve's frame       the endpoint, the handler's address, and an Exchange:
//!                         the message received, then the reply prepared for it;
//!                         zeroed before the syscall that waits  ◄── rsp while waiting
//!   ─────────────────── (below: scratch the audit does not count, nor does the next request)
//!   dispatch's frame    the handler: payload copied out of the IPC buffer, the request
//!                       decoded, served, its reply encoded straight into the IPC buffer
//! ```
//!
//! The kernel takes the stack pointer a server waits with as the floor of its private memory
//! (see the kernel's `audit.rs`): what lies below it is the scratch of the request just served,
//! overwritten by the next. So the handler runs in a frame of its own below the receive point
//! (`dispatch` is never inlined), and `serve` keeps only an [`Exchange`] in its frame, which it
//! reads into the syscall's registers and zeroes before the syscall.

use crate::cap::{Cap, Endpoint, Message};
use crate::sys;
use axolotl_abi::{Error, MsgInfo, Sysno, IPC_BUFFER_SIZE};

/// What a handler answers a message with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Answer {
    /// Reply to the caller with `label`, `words` and the first `len` bytes of the IPC buffer
    /// (which the handler encoded there: [`Answer::encode`]).
    Reply { label: u32, words: [u64; 4], len: u16 },
    /// No reply now: the message was a notification, or the caller was parked (its reply
    /// capability saved, to be answered later).
    #[default]
    Wait,
}

impl Answer {
    /// Reply with `value` encoded (postcard) straight into the IPC buffer; an empty reply
    /// (which the client takes as malformed) if it does not fit.
    pub fn encode<T: serde::Serialize>(label: u32, value: &T) -> Answer {
        let len = crate::msg::encode(value, crate::cap::ipc_buffer()).unwrap_or(0);
        Answer::Reply { label, words: [0; 4], len: len as u16 }
    }

    /// Reply with `label` and `words` only.
    pub fn words(label: u32, words: [u64; 4]) -> Answer {
        Answer::Reply { label, words, len: 0 }
    }

    /// Reply with `label` and `bytes` (at most the IPC buffer's size: the rest is cut) as the
    /// payload, copied into the IPC buffer as they are. (A handler cannot make its answer in
    /// the IPC buffer itself: serving a request may call another server, which reuses it.)
    pub fn bytes(label: u32, bytes: &[u8]) -> Answer {
        let len = bytes.len().min(IPC_BUFFER_SIZE);
        crate::cap::ipc_buffer()[..len].copy_from_slice(&bytes[..len]);
        Answer::Reply { label, words: [0; 4], len: len as u16 }
    }
}

/// A server's handling of one message.
pub trait Handler {
    /// Answer `msg` (its payload, if any, is in the IPC buffer: `Message::payload_into`).
    fn handle(&mut self, msg: &Message) -> Answer;

    /// Where a capability sent with the next message lands (an empty slot), if one may come.
    fn cap_slot(&mut self) -> Option<u8> {
        None
    }
}

impl<F: FnMut(&Message) -> Answer> Handler for F {
    fn handle(&mut self, msg: &Message) -> Answer {
        self(msg)
    }
}

/// All that `serve`'s frame holds of a request: the registers it arrived in, then the syscall
/// that answers it. Words only: no padding, and all zeros is a value.
#[derive(Clone, Copy, Default)]
#[repr(C)]
struct Exchange {
    received: sys::Ret,
    sysno: u64,
    info: u64,
    words: [u64; 4],
}

impl Exchange {
    /// Zero every byte of it, padding included, with writes the compiler keeps although
    /// nothing reads them before the syscall overwrites the message: while the server waits,
    /// its frame holds nothing of the request it answered.
    #[inline(always)]
    fn zero(&mut self) {
        const WORDS: usize = size_of::<Exchange>() / 8;
        const _: () = assert!(size_of::<Exchange>().is_multiple_of(8) && align_of::<Exchange>() >= 8);
        let words = (self as *mut Exchange).cast::<u64>();
        for i in 0..WORDS {
            // SAFETY: `self` is an exclusive reference to WORDS aligned words (checked above),
            // and all zeros is a valid Exchange (every field is a u64).
            unsafe { core::ptr::write_volatile(words.add(i), 0) };
        }
    }
}

/// Serve `ep` for ever: wait for a message, hand it to `handler`, answer as it says, wait for
/// the next. Returns only if the kernel refuses a receive (the endpoint is gone).
#[inline(never)]
pub fn serve<H: Handler>(ep: Cap<Endpoint>, mut handler: H) -> Result<(), Error> {
    let first = MsgInfo { cap: handler.cap_slot(), ..MsgInfo::new(0) }.encode();
    // Where `x` lies, the start-up code's frames left their bytes: zeroed before the first wait,
    // as after every request, or the first request would seem to change them for good.
    let mut x = Exchange::default();
    x.zero();
    x.received = sys::call(Sysno::Recv, [ep.slot(), first, 0, 0, 0, 0])?;
    loop {
        dispatch(&mut handler, &mut x);
        let Exchange { sysno, info, words: [w0, w1, w2, w3], .. } = x;
        x.zero();
        x.received = sys::raw(sysno, [ep.slot(), info, w0, w1, w2, w3]).result()?;
    }
}

/// Run the handler on the message received and prepare the syscall that answers it and waits for the next,
/// in a frame below `serve`'s: everything the handler leaves on the stack is below the stack
/// pointer `serve` waits with.
#[inline(never)]
fn dispatch<H: Handler>(handler: &mut H, x: &mut Exchange) {
    let answer = handler.handle(&Message::from_ret(x.received));
    let cap = handler.cap_slot();
    (x.sysno, x.info, x.words) = match answer {
        Answer::Reply { label, words, len } => {
            let len = len.min(IPC_BUFFER_SIZE as u16);
            (Sysno::ReplyRecv as u64, MsgInfo { cap, ..MsgInfo::with_len(label, len) }.encode(), words)
        }
        Answer::Wait => (Sysno::Recv as u64, MsgInfo { cap, ..MsgInfo::new(0) }.encode(), [0; 4]),
    };
}
