//! Every operation runs twice and is believed only if both runs agree: a fault in this cell (a
//! flipped register, a skipped instruction, a wrong branch) strikes one run, not both, so what
//! it bent — an answer, a session, a block about to be written — never leaves the cell.
//!
//! ```text
//!  request ─► run 1: handle() over Held(disk) ─► (result, session, blocks it would write)
//!         └─► run 2: handle() over Held(disk) ─► (result, session, blocks it would write)
//!             equal?  no ─► run 3 decides; no two alike ─► panic: the cell is restarted
//!                            and the request delivered again
//!                     yes ─► write the held blocks (each read back), then answer with both
//!                            runs' results, each sealed apart; the client compares the two
//! ```
//! Each run reads through the checked store (`store::Store`: the RAM disk's mirror or the
//! disk's checked client), and sees its own held
//! writes. A block one run read is not fetched again by the other: it is kept with the tag that
//! vouched for it and checked again at each use (`algo::mirror::Vouched`), so a copy a fault
//! bent in between is not used — the store is asked instead.
//!
//! What this cannot catch: a fault that bends both runs alike (a word of the cell's long-lived
//! state, such as the disk's geometry), or one that bends a block number between the
//! comparison and the store's own read-back (the block meant is read back and found missing;
//! the block hit instead, stored under tags that check there, is not).

use crate::server::handle;
use crate::store::Store;
use crate::{Op, Out};
use algo::mirror::Vouched;
use core::cell::RefCell;
use fs_core::{Block, BlockDevice, Disk, FsError, SmallClientState, BLOCK_SIZE};

/// What the other sessions hold of a file (see `server::held_by_others`).
type Others<'a> = &'a dyn Fn(u16, &[u8]) -> fs_core::Held;
use heapless::Vec;

/// Most steps one operation makes: up to five data blocks written straight to new blocks and a
/// flush, then through the journal (`fs_core::journal`) up to twelve images into its slots,
/// its header, a flush, the twelve home blocks and a flush; one that would make more fails
/// with `Disk` in both runs.
const HELD: usize = 40;

/// What an operation does to the store, in order.
// Nearly every step is a write: boxing the block would only add an allocation to each.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, PartialEq, Eq)]
enum Step {
    Write(u32, Block),
    Flush,
}

/// On the task's heap: up to 40 blocks for each of up to three runs would not fit its stack.
type Writes = alloc::vec::Vec<Step>;

/// Blocks read for one request, kept for both runs (more are read from the store each time).
const SEEN: usize = 8;

type Seen = RefCell<Vec<Vouched<BLOCK_SIZE>, SEEN>>;

/// A device that reads through to the store but holds every write back.
struct Held<'a> {
    store: Store<'a>,
    writes: RefCell<Writes>,
    seen: &'a Seen,
}

impl BlockDevice for Held<'_> {
    fn blocks(&self) -> Option<u32> {
        self.store.blocks()
    }

    fn read(&self, block: u32, out: &mut Block) -> bool {
        let held = self.writes.borrow().iter().rev().find_map(|s| match s {
            Step::Write(b, data) if *b == block => Some(*data),
            _ => None,
        });
        match held {
            Some(data) => {
                *out = data;
                true
            }
            None => {
                if let Some(data) = self.seen.borrow().iter().find_map(|v| v.of(block)) {
                    *out = *data;
                    return true;
                }
                let Some(v) = self.store.read_vouched(block) else { return false };
                *out = *v.contents();
                let _ = self.seen.borrow_mut().push(v);
                true
            }
        }
    }

    /// Every write and flush is kept in order (a block written twice, twice): the store gets
    /// them as the file system made them, which is what makes an operation whole or absent
    /// after a power cut (`fs_core::journal`: the journal durable before any block goes home).
    fn write(&self, block: u32, data: &Block) -> bool {
        let mut w = self.writes.borrow_mut();
        w.len() < HELD && {
            w.push(Step::Write(block, *data));
            true
        }
    }

    fn flush(&self) -> bool {
        let mut w = self.writes.borrow_mut();
        w.len() < HELD && {
            w.push(Step::Flush);
            true
        }
    }
}

/// What one run of an operation would do.
struct Run {
    result: Result<Out, FsError>,
    state: SmallClientState,
    writes: Writes,
}

impl Run {
    fn of(
        disk: &Disk<Store<'_>>,
        store: Store<'_>,
        seen: &Seen,
        st: &SmallClientState,
        op: &Op,
        others: Others,
    ) -> Run {
        let held = disk.on(Held { store, writes: RefCell::new(Writes::new()), seen });
        let mut state = *st;
        let result = handle(&held, &mut state, op, others);
        Run { result, state, writes: held.into_device().writes.into_inner() }
    }

    fn agrees(&self, other: &Run) -> bool {
        self.result == other.result
            && bytemuck::bytes_of(&self.state) == bytemuck::bytes_of(&other.state)
            && self.writes == other.writes
    }
}

/// Serve `op` for the client whose (checked) state is `st`: its new state and the result, from
/// each of two runs that agree, once the blocks they write are stored and read back.
pub(crate) fn serve(
    disk: &Disk<Store<'_>>,
    store: Store<'_>,
    st: &SmallClientState,
    op: &Op,
    others: Others,
    intact: &dyn Fn() -> bool,
) -> [(SmallClientState, Result<Out, FsError>); 2] {
    let seen = RefCell::new(Vec::new());
    let mut runs = [Run::of(disk, store, &seen, st, op, others), Run::of(disk, store, &seen, st, op, others)];
    if !runs[0].agrees(&runs[1]) {
        // One run met a fault: in this cell, or in the store under it (a read that failed
        // once, which is no fault of ours and must not restart us). A third run decides.
        let third = Run::of(disk, store, &seen, st, op, others);
        match (third.agrees(&runs[0]), third.agrees(&runs[1])) {
            (true, _) => runs[1] = third,
            (_, true) => runs[0] = third,
            _ => panic!("three runs of one request disagree"),
        }
    }
    // One run's blocks are stored, the *other* run's are what the read-back must find: the
    // two agreed, so a block number or a byte of contents bent after the comparison (a word of
    // this stack flipped while a block waits to be stored: a `memflip` of fs lost a record that
    // way) is in one copy only, and shows.
    // The runs agreed on the request as it is now: it must still be the one the client sent.
    if !intact() {
        panic!("the request changed in fs's memory while it was served");
    }
    let (stored_from, expected) = (&runs[0].writes, &runs[1].writes);
    // In order, flushes included: the operation's own last flush makes what is answered as
    // done survive a power-off (a disk's write cache).
    let stored = stored_from.iter().all(|s| match s {
        Step::Write(block, data) => store.write(*block, data),
        Step::Flush => store.flush(),
    });
    // A block written twice holds its last write.
    let written = |s: &Step| match s {
        Step::Write(b, data) => Some((*b, *data)),
        Step::Flush => None,
    };
    let last = |i: usize, block: u32| !expected[i + 1..].iter().filter_map(written).any(|(b, _)| b == block);
    let checked = expected.iter().enumerate().filter_map(|(i, s)| written(s).map(|w| (i, w)));
    for (_, (block, data)) in checked.filter(|&(i, (b, _))| stored && last(i, b)) {
        let mut back = [0u8; BLOCK_SIZE];
        if store.read(block, &mut back) && back != data {
            panic!("block {} did not hold what was stored", block);
        }
    }
    runs.map(|run| (run.state, if stored { run.result } else { Err(FsError::Disk) }))
}
