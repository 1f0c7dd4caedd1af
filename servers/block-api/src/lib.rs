//! The block-store protocol: fixed-size blocks, read and written whole. Any server that serves
//! it can stand under the file system: the RAM disk (endpoint `block`) and the virtio-blk
//! driver (endpoint `disk`). A write is answered once the store has it; `Flush` is answered
//! once everything written before it is durable.
#![no_std]
#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};
use userlib::cap::{Cap, Endpoint};

pub const LABEL: u32 = 0xB10C;
pub const BLOCK_SIZE: usize = 512;
pub type Block = [u8; BLOCK_SIZE];

#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    Info,
    Read {
        block: u32,
    },
    Write {
        block: u32,
        data: &'a [u8],
    },
    /// Make every write answered before this one durable.
    Flush,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
pub enum Response<'a> {
    Info { blocks: u32 },
    Data(&'a [u8]),
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
    /// No device stands behind this store (no disk attached).
    NoDevice,
    /// The device reported the request failed.
    Io,
}

userlib::from_call_error!(BlockError);

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
        let mut reply = [0u8; BLOCK_SIZE + 16];
        match self.ep.call_encoded(LABEL, &Request::Read { block }, &mut reply)? {
            Response::Data(d) if d.len() == BLOCK_SIZE => {
                out.copy_from_slice(d);
                Ok(())
            }
            Response::Error(e) => Err(e),
            _ => Err(BlockError::Malformed),
        }
    }

    /// Make everything written so far durable.
    pub fn flush(&self) -> Result<(), BlockError> {
        let mut reply = [0u8; 16];
        match self.ep.call_encoded(LABEL, &Request::Flush, &mut reply)? {
            Response::Done => Ok(()),
            Response::Error(e) => Err(e),
            _ => Err(BlockError::Malformed),
        }
    }

    pub fn write(&self, block: u32, data: &Block) -> Result<(), BlockError> {
        let mut reply = [0u8; 16];
        match self.ep.call_encoded(LABEL, &Request::Write { block, data }, &mut reply)? {
            Response::Done => Ok(()),
            Response::Error(e) => Err(e),
            _ => Err(BlockError::Malformed),
        }
    }
}
