//! The message-info word that describes an IPC message.
//!
//! ```text
//!  63      58 57  56   55     48 47            32 31                 0
//! +---------+---+----+---------+----------------+--------------------+
//! | 0       |mov|cap | cap slot| payload length | label              |
//! +---------+---+----+---------+----------------+--------------------+
//! ```
//!
//! On send, `cap` asks the kernel to transfer the capability in `cap slot` to the receiver (which
//! needs GRANT on the endpoint); `mov` moves it instead of copying. On receive, the receiver's own
//! info word names the slot where an incoming capability may land (`cap` set = willing).
//! `label` is free for the protocol; the kernel only reserves [`LABEL_NOTIFICATION`].

use crate::{Error, CAP_SLOTS, IPC_BUFFER_SIZE};

/// Label of a message that is really a bound notification: MR0 carries the bits.
pub const LABEL_NOTIFICATION: u32 = 0xFFFF_FFFF;

/// A decoded message-info word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct MsgInfo {
    pub label: u32,
    /// Payload bytes in the IPC buffer.
    pub len: u16,
    /// A capability slot to send from (sender) or receive into (receiver).
    pub cap: Option<u8>,
    /// Move the capability instead of copying it.
    pub move_cap: bool,
    /// Set by the kernel only, on a request delivered to a server's new incarnation because its
    /// predecessor failed while serving it: the request may have been partly carried out. A
    /// server whose requests are not idempotent (the console's writes) looks at it.
    pub redelivered: bool,
}

const CAP_FLAG: u64 = 1 << 56;
const MOVE_FLAG: u64 = 1 << 57;
/// Only in words the kernel delivers; a sender's word with it is refused as reserved.
const REDELIVERED_FLAG: u64 = 1 << 58;
const RESERVED: u64 = !((1 << 58) - 1);

impl MsgInfo {
    /// A message with a label and no payload.
    pub const fn new(label: u32) -> Self {
        MsgInfo { label, len: 0, cap: None, move_cap: false, redelivered: false }
    }

    /// A message with a label and `len` payload bytes.
    pub const fn with_len(label: u32, len: u16) -> Self {
        MsgInfo { label, len, cap: None, move_cap: false, redelivered: false }
    }

    pub const fn encode(self) -> u64 {
        let mut raw = self.label as u64 | (self.len as u64) << 32;
        if let Some(slot) = self.cap {
            raw |= CAP_FLAG | (slot as u64) << 48;
        }
        if self.move_cap {
            raw |= MOVE_FLAG;
        }
        if self.redelivered {
            raw |= REDELIVERED_FLAG;
        }
        raw
    }

    /// Decode a word the kernel delivered to this task: as [`MsgInfo::decode`], and the
    /// redelivery flag, which only the kernel sets.
    #[inline]
    pub fn decode_received(raw: u64) -> Result<Self, Error> {
        Self::decode_allowing(raw, RESERVED & !REDELIVERED_FLAG)
    }

    /// Decode and validate a raw word: reserved bits clear, payload fits the IPC buffer, the
    /// capability slot exists.
    #[inline]
    pub fn decode(raw: u64) -> Result<Self, Error> {
        Self::decode_allowing(raw, RESERVED)
    }

    /// One pass for both (a received word is decoded on every message a task takes, so it is
    /// kept to a few instructions): the bits in `reserved` must be clear.
    #[inline(always)]
    fn decode_allowing(raw: u64, reserved: u64) -> Result<Self, Error> {
        if raw & reserved != 0 {
            return Err(Error::InvalidArgument);
        }
        let len = (raw >> 32) as u16;
        if len as usize > IPC_BUFFER_SIZE {
            return Err(Error::TooLong);
        }
        let cap = if raw & CAP_FLAG != 0 {
            let slot = (raw >> 48) as u8;
            if slot as usize >= CAP_SLOTS {
                return Err(Error::InvalidSlot);
            }
            Some(slot)
        } else {
            None
        };
        Ok(MsgInfo {
            label: raw as u32,
            len,
            cap,
            move_cap: raw & MOVE_FLAG != 0,
            redelivered: raw & REDELIVERED_FLAG != 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for info in [
            MsgInfo::new(0),
            MsgInfo::with_len(7, 4096),
            MsgInfo { label: u32::MAX, len: 12, cap: Some(63), move_cap: true, redelivered: false },
            MsgInfo { label: 3, len: 0, cap: Some(0), move_cap: false, redelivered: false },
        ] {
            assert_eq!(MsgInfo::decode(info.encode()), Ok(info));
            assert_eq!(MsgInfo::decode_received(info.encode()), Ok(info));
        }
    }

    #[test]
    fn only_the_kernel_says_redelivered() {
        let again = MsgInfo { redelivered: true, ..MsgInfo::with_len(9, 3) };
        assert_eq!(MsgInfo::decode_received(again.encode()), Ok(again), "a receiver reads the flag");
        assert_eq!(MsgInfo::decode(again.encode()), Err(Error::InvalidArgument), "a sender cannot set it");
    }

    #[test]
    fn rejects_malformed_words() {
        assert_eq!(MsgInfo::decode(1 << 63), Err(Error::InvalidArgument));
        assert_eq!(MsgInfo::decode(4097 << 32), Err(Error::TooLong));
        assert_eq!(MsgInfo::decode(CAP_FLAG | (CAP_SLOTS as u64) << 48), Err(Error::InvalidSlot));
        assert_eq!(
            MsgInfo::decode(CAP_FLAG | (CAP_SLOTS as u64 - 1) << 48).unwrap().cap,
            Some(CAP_SLOTS as u8 - 1)
        );
        // A slot number without the flag is ignored rather than misread.
        assert_eq!(MsgInfo::decode(200 << 48).unwrap().cap, None);
    }
}
