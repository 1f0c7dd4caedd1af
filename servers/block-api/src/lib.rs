//! The block-store protocol: fixed-size blocks, read and written whole. Any server that serves
//! an endpoint with this protocol can stand under the file system: the RAM disk (`block`), a
//! disk driver (`disk`). A write is answered once the device has it; it is durable (survives a
//! power cut) only once a later `Flush` is answered.
#![no_std]
#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};
use userlib::abi::Error;
use userlib::cap::{Cap, Endpoint, Message};
use userlib::msg::{self, CallError};
use userlib::serve::Answer;

pub const LABEL: u32 = 0xB10C;
pub const BLOCK_SIZE: usize = 512;
pub type Block = [u8; BLOCK_SIZE];

#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    Info,
    Read {
        #[serde(with = "postcard::fixint::le")]
        block: u32,
    },
    Write {
        #[serde(with = "postcard::fixint::le")]
        block: u32,
        #[serde(with = "serde_bytes")]
        data: &'a [u8],
    },
    /// Make every write answered so far durable; `Done` once it is (at once for RAM).
    Flush,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
pub enum Response<'a> {
    Info { blocks: u32 },
    Data(#[serde(with = "serde_bytes")] &'a [u8]),
    Done,
    Error(BlockError),
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockError {
    /// The block number is past the end of the device.
    OutOfRange,
    /// A write did not carry exactly one block.
    BadLength,
    /// The request did not decode.
    Malformed,
    /// The IPC failed (kernel error code).
    Ipc(u8),
    /// The driver found no device: nothing is attached for it to serve.
    NoDevice,
}

userlib::from_call_error!(BlockError);

impl BlockError {
    /// What went wrong, for a message.
    pub fn describe(self) -> &'static str {
        match self {
            BlockError::OutOfRange => "block number past the end of the device",
            BlockError::BadLength => "a write that is not exactly one block",
            BlockError::Malformed => "a malformed block-protocol message",
            BlockError::Ipc(_) => "the block server could not be reached",
            BlockError::NoDevice => "no device attached",
        }
    }
}

/// Serve the protocol on `ep` for ever, as a block store's main loop: each request (or why it
/// did not decode) goes to `answer`, which replies with [`reply`]. It runs below the receive
/// point (`userlib::serve`): what it leaves on its stack is not kept for the next request.
pub fn serve(
    ep: Cap<Endpoint>,
    mut answer: impl FnMut(Result<Request<'_>, CallError>) -> Answer,
) -> Result<(), Error> {
    userlib::serve::serve(ep, |m: &Message| {
        m.with_payload(|payload| {
            answer(if m.info.label == LABEL { msg::decode(payload) } else { Err(CallError::Decode) })
        })
    })
}

/// Reply with `resp`, encoded straight into the IPC buffer (it always fits: a block and its
/// envelope).
#[inline]
pub fn reply(resp: &Response<'_>) -> Answer {
    Answer::encode(LABEL, resp)
}

/// A client of a block store.
#[derive(Clone, Copy)]
pub struct BlockDevice {
    ep: Cap<Endpoint>,
}

impl BlockDevice {
    pub fn new(ep: Cap<Endpoint>) -> Self {
        BlockDevice { ep }
    }

    /// Number of blocks.
    pub fn blocks(&self) -> Result<u32, BlockError> {
        let mut reply = [0u8; 16];
        match self.ep.call_encoded(LABEL, &Request::Info, &mut reply)? {
            Response::Info { blocks } => Ok(blocks),
            Response::Error(e) => Err(e),
            _ => Err(BlockError::Malformed),
        }
    }

    pub fn read(&self, block: u32, out: &mut Block) -> Result<(), BlockError> {
        let answer = |bytes: &[u8]| match msg::decode::<Response<'_>>(bytes) {
            Ok(Response::Data(d)) if d.len() == BLOCK_SIZE => {
                out.copy_from_slice(d);
                Ok(())
            }
            Ok(Response::Error(e)) => Err(e),
            _ => Err(BlockError::Malformed),
        };
        self.ep.call_with(LABEL, &Request::Read { block }, answer)?
    }

    pub fn write(&self, block: u32, data: &Block) -> Result<(), BlockError> {
        self.done(&Request::Write { block, data })
    }

    /// Make every write answered so far durable.
    pub fn flush(&self) -> Result<(), BlockError> {
        self.done(&Request::Flush)
    }

    fn done(&self, req: &Request<'_>) -> Result<(), BlockError> {
        let mut reply = [0u8; 16];
        match self.ep.call_encoded(LABEL, req, &mut reply)? {
            Response::Done => Ok(()),
            Response::Error(e) => Err(e),
            _ => Err(BlockError::Malformed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A block travels as postcard's bytes: a varint length, then the bytes as they are (the
    /// same wire format as a sequence of u8, but encoded with one copy, not byte by byte).
    #[test]
    fn a_block_is_encoded_as_its_length_and_its_bytes() {
        let mut buf = [0u8; BLOCK_SIZE + 16];
        let data = [7u8, 8, 9];
        let n = userlib::msg::encode(&Response::Data(&data), &mut buf).unwrap();
        assert_eq!(&buf[..n], &[1, 3, 7, 8, 9], "variant 1 (Data), length 3, the bytes");
        let block = [0xa5u8; BLOCK_SIZE];
        let n = userlib::msg::encode(&Request::Write { block: 2, data: &block }, &mut buf).unwrap();
        assert_eq!(&buf[..5], &[2, 2, 0x80, 0x04, 0xa5], "Write, block 2, length 512 as a varint");
        assert_eq!(n, 4 + BLOCK_SIZE);
    }

    #[test]
    fn requests_and_errors_round_trip() {
        let mut buf = [0u8; BLOCK_SIZE + 16];
        let data = [7u8; BLOCK_SIZE];
        for req in [
            Request::Info,
            Request::Read { block: 3 },
            Request::Write { block: 9, data: &data },
            Request::Flush,
        ] {
            let n = userlib::msg::encode(&req, &mut buf).unwrap();
            assert_eq!(userlib::msg::decode::<Request<'_>>(&buf[..n]).unwrap(), req);
        }
        for e in [BlockError::OutOfRange, BlockError::Ipc(4), BlockError::NoDevice] {
            let n = userlib::msg::encode(&Response::Error(e), &mut buf).unwrap();
            assert_eq!(userlib::msg::decode::<Response<'_>>(&buf[..n]).unwrap(), Response::Error(e));
        }
    }
}
