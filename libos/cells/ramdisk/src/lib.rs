//! The ramdisk cell: a block store of 512-byte blocks behind a rendezvous endpoint.
//!
//! The blocks live in a [`MappedPages`] captured by the task's closure, which the task table
//! owns: a restarted ramdisk serves the same blocks. It keeps no client state at all.
#![no_std]
#![forbid(unsafe_code)]

use fs_core::{Block, BLOCK_SIZE};
use libos_kernel::{Endpoint, MappedPages};

/// 1 MiB: one slot.
const PAGES: usize = 256;

// Messages are plain values copied between tasks; boxing a variant would put a pointer into an
// arena that dies with its task.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy)]
pub enum Request {
    Info,
    Read { block: u32 },
    Write { block: u32, data: Block },
}

// Messages are plain values copied between tasks; boxing a variant would put a pointer into an
// arena that dies with its task.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy)]
pub enum Response {
    Info { blocks: u32 },
    Data(Block),
    Done,
    OutOfRange,
}

pub type Ep = Endpoint<Request, Response>;

/// Spawn the ramdisk; returns its endpoint.
pub fn start() -> Option<Ep> {
    let ep = Ep::create("ramdisk")?;
    let store = MappedPages::alloc(PAGES, false).ok()?;
    libos_kernel::spawn("ramdisk", 5, true, move || {
        let blocks = (store.len() / BLOCK_SIZE) as u32;
        loop {
            let (token, req) = ep.recv();
            let resp = match req {
                Request::Info => Response::Info { blocks },
                Request::Read { block } => {
                    let mut out = [0u8; BLOCK_SIZE];
                    if store.read(block as usize * BLOCK_SIZE, &mut out) {
                        Response::Data(out)
                    } else {
                        Response::OutOfRange
                    }
                }
                Request::Write { block, data } => {
                    if store.write(block as usize * BLOCK_SIZE, &data) {
                        Response::Done
                    } else {
                        Response::OutOfRange
                    }
                }
            };
            let _ = ep.reply(token, resp);
        }
    })
    .ok()?;
    Some(ep)
}

/// A client of the block store, for `fs_core::Disk`.
#[derive(Clone, Copy)]
pub struct Blocks(pub Ep);

impl fs_core::BlockDevice for Blocks {
    fn blocks(&self) -> Option<u32> {
        match self.0.call(&Request::Info) {
            Ok(Response::Info { blocks }) => Some(blocks),
            _ => None,
        }
    }

    fn read(&self, block: u32, out: &mut Block) -> bool {
        match self.0.call(&Request::Read { block }) {
            Ok(Response::Data(d)) => {
                *out = d;
                true
            }
            _ => false,
        }
    }

    fn write(&self, block: u32, data: &Block) -> bool {
        matches!(self.0.call(&Request::Write { block, data: *data }), Ok(Response::Done))
    }
}
