//! The ramdisk cell: a block store of 512-byte blocks behind a rendezvous endpoint, and the
//! client the file system reads and writes it through.
//!
//! The blocks live in [`MappedPages`] captured by the task's closure, which the task table
//! owns: a restarted ramdisk serves the same blocks. It keeps no client state at all.
//!
//! The store is not trusted with the data (a faulty ramdisk can write a block to the wrong
//! place, drop a write, or answer with another block): it keeps two copies of every block,
//! each with a tag the *client* computed over (block number, copy, contents), and the client
//! checks every answer end to end (`algo::mirror`): a write is confirmed by reading the tags
//! back, a block that does not check is read from the other copy and repaired, and one that
//! checks in no copy is an error, never wrong data. The store starts as zeros under their true
//! tags, written by [`start`] (the wiring) before the task runs, so no answer is taken on trust.
//!
//! ```text
//!  fs ── Blocks (client: tags, read-back, mirror) ── Request ──► ramdisk task
//!                                                                 copy 0: [block | tag] x 2048
//!                                                                 copy 1: [block | tag] x 2048
//! ```
#![no_std]
#![forbid(unsafe_code)]

use algo::mirror::{Mirror, Store, Vouched, COPIES};
use bytemuck::CheckedBitPattern;
use fs_core::{Block, BLOCK_SIZE};
use libos_kernel::{CheckedEndpoint, MappedPages};

/// Blocks in the store (every copy holds all of them).
pub const BLOCKS: u32 = 2048;
/// One stored block: its contents, then its tag.
const RECORD: usize = BLOCK_SIZE + 8;
const PAGE: usize = 4096;

// Messages are plain values copied between tasks; boxing a variant would put a pointer into an
// arena that dies with its task. Checked on receipt (`CheckedEndpoint`): a corrupted
// discriminant is an error, not a jump.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, CheckedBitPattern)]
#[repr(u32)]
pub enum Request {
    Info,
    Read {
        copy: u32,
        block: u32,
    },
    Write {
        copy: u32,
        block: u32,
        tag: u64,
        data: Block,
    },
    /// The tags of every copy of `block` (the client's read-back after a write).
    Tags {
        block: u32,
    },
}

#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, CheckedBitPattern)]
#[repr(u32)]
pub enum Response {
    Info { blocks: u32 },
    Data { tag: u64, data: Block },
    Tags([u64; COPIES]),
    Done,
    OutOfRange,
}

pub type Ep = CheckedEndpoint<Request, Response>;

/// Where block `block` of a copy lies, if it is one.
fn record(block: u32) -> Option<usize> {
    (block < BLOCKS).then_some(block as usize * RECORD)
}

/// Spawn the ramdisk; returns its endpoint.
pub fn start() -> Option<Ep> {
    let ep = Ep::create("ramdisk")?;
    let pages = (BLOCKS as usize * RECORD).div_ceil(PAGE);
    let copies: [MappedPages; COPIES] =
        [MappedPages::alloc(pages, false).ok()?, MappedPages::alloc(pages, false).ok()?];
    for (copy, store) in copies.iter().enumerate() {
        for block in 0..BLOCKS {
            let tag = algo::mirror::fresh::<BLOCK_SIZE>(block, copy as u32);
            store.write(record(block)? + BLOCK_SIZE, &tag.to_le_bytes()).then_some(())?;
        }
    }
    libos_kernel::spawn("ramdisk", 5, true, move || {
        // Requests are read where the kernel put them, and answered below this frame: it
        // keeps nothing of one request for the next (`audit ramdisk` checks).
        let mut inbox = libos_kernel::Inbox::new();
        loop {
            ep.receive(&mut inbox);
            answer(&ep, &copies, &mut inbox);
        }
    })
    .ok()?;
    Some(ep)
}

/// Answer the request in `inbox` from the two copies' records.
#[inline(never)]
fn answer(ep: &Ep, copies: &[MappedPages; COPIES], inbox: &mut libos_kernel::Inbox<Request>) {
    let Some((token, req)) = inbox.take() else { return };
    let resp = match *req {
        Request::Info => Response::Info { blocks: BLOCKS },
        Request::Read { copy, block } => {
            let mut rec = [0u8; RECORD];
            match (copies.get(copy as usize), record(block)) {
                (Some(store), Some(at)) if store.read(at, &mut rec) => {
                    let (data, tag) = rec.split_at(BLOCK_SIZE);
                    let tag = u64::from_le_bytes(tag.try_into().unwrap_or_default());
                    Response::Data { tag, data: data.try_into().unwrap_or([0; BLOCK_SIZE]) }
                }
                _ => Response::OutOfRange,
            }
        }
        Request::Tags { block } => {
            let mut tags = [0; COPIES];
            let read = |(store, tag): (&MappedPages, &mut u64)| {
                let mut bytes = [0u8; 8];
                let ok = record(block).is_some_and(|at| store.read(at + BLOCK_SIZE, &mut bytes));
                *tag = u64::from_le_bytes(bytes);
                ok
            };
            if copies.iter().zip(tags.iter_mut()).all(read) {
                Response::Tags(tags)
            } else {
                Response::OutOfRange
            }
        }
        Request::Write { copy, block, tag, data } => {
            let mut rec = [0u8; RECORD];
            rec[..BLOCK_SIZE].copy_from_slice(&data);
            rec[BLOCK_SIZE..].copy_from_slice(&tag.to_le_bytes());
            match (copies.get(copy as usize), record(block)) {
                (Some(store), Some(at)) if store.write(at, &rec) => Response::Done,
                _ => Response::OutOfRange,
            }
        }
    };
    let _ = ep.reply(token, resp);
}

/// A client of the block store, for `fs_core::Disk`: every block goes through the checked
/// mirror, so what it hands the file system is what the file system wrote, or an error.
#[derive(Clone, Copy)]
pub struct Blocks(pub Ep);

/// The ramdisk as `algo::mirror` sees it: answers it will check.
impl Store<BLOCK_SIZE> for Blocks {
    fn put(&self, copy: u32, block: u32, tag: u64, data: &Block) -> bool {
        matches!(self.0.call(&Request::Write { copy, block, tag, data: *data }), Ok(Response::Done))
    }

    fn get(&self, copy: u32, block: u32) -> Option<(u64, Block)> {
        match self.0.call(&Request::Read { copy, block }) {
            Ok(Response::Data { tag, data }) => Some((tag, data)),
            _ => None,
        }
    }

    fn tags(&self, block: u32) -> Option<[u64; COPIES]> {
        match self.0.call(&Request::Tags { block }) {
            Ok(Response::Tags(tags)) => Some(tags),
            _ => None,
        }
    }
}

impl Blocks {
    /// Block `block` with the tag that vouched for it (see `algo::mirror::Vouched`).
    pub fn read_vouched(&self, block: u32) -> Option<Vouched<BLOCK_SIZE>> {
        Mirror(*self).read_vouched(block)
    }
}

impl fs_core::BlockDevice for Blocks {
    /// The store's size is this crate's constant: an answer that disagrees (a corrupted one)
    /// must not make the file system think the disk is another, and format it.
    fn blocks(&self) -> Option<u32> {
        (0..3).find_map(|_| match self.0.call(&Request::Info) {
            Ok(Response::Info { blocks: BLOCKS }) => Some(BLOCKS),
            _ => None,
        })
    }

    fn read(&self, block: u32, out: &mut Block) -> bool {
        Mirror(*self).read(block, out)
    }

    fn write(&self, block: u32, data: &Block) -> bool {
        Mirror(*self).write(block, data)
    }
}
