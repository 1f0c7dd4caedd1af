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
//! disk's checked client), and sees its own held writes. A block read from the store is kept
//! in the cell's cache ([`Cache`], `fs_core::cache::Shelf`), for the other run and for later
//! requests: with the tag the store vouched for it with, checked again at each use
//! (`algo::mirror::Vouched`), so a copy a fault bent in the meantime, or filed under another
//! block, is a miss — the store is asked instead. A use that looks at part of a block (an
//! inode, a file read: `BlockDevice::read_range`) checks only the 64-byte pieces it is lent,
//! against the states of that same tag's seal at the pieces' bounds, taken in the pass that
//! computed the tag compared with the store's. A block an operation writes is kept again only
//! as the read-back after the store found it; what the cache holds for every written block is
//! checked against the *other* run's blocks before the answer leaves (a skipped forget would
//! leave the block's old contents, under a tag that still checks).
//!
//! What this cannot catch: a fault that bends both runs alike (a word of the cell's long-lived
//! state, such as the disk's geometry), or one that bends a block number between the
//! comparison and the store's own read-back (the block meant is read back and found missing;
//! the block hit instead, stored under tags that check there, is not).

use crate::server::handle;
use crate::store::Store;
use crate::{same_result, Answer, Outcome, Request, Response};
use algo::bytes::same;
use core::cell::RefCell;
use fs_core::cache::Shelf;
use fs_core::{Block, BlockDevice, Disk, FsError, BLOCK_SIZE};

/// What the other sessions hold of a file (see `server::held_by_others`).
type Others<'a> = &'a dyn Fn(u16, &[u8]) -> fs_core::Held;

/// Most steps one operation makes: up to five data blocks written straight to new blocks and a
/// flush, then through the journal (`fs_core::journal`) up to twelve images into its slots,
/// its header, a flush, the twelve home blocks and a flush; one that would make more fails
/// with `Disk` in both runs.
const HELD: usize = 40;

/// Steps the held writes make room for at the first write or flush (see [`room`]).
const FIRST: usize = 8;

/// What an operation does to the store, in order.
// Nearly every step is a write: boxing the block would only add an allocation to each.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
enum Step {
    Write(u32, Block),
    Flush,
}

/// On the task's heap: up to 40 blocks for each of up to three runs would not fit its stack.
type Writes = alloc::vec::Vec<Step>;

/// The cell's block cache: blocks as the store vouched for them, kept between requests by
/// this incarnation (see the module comment and `server::start`).
pub(crate) type Cache<'s> = RefCell<Shelf<'s>>;

/// A device that reads through the cache to the store but holds every write back.
struct Held<'a, 's> {
    store: Store<'a>,
    writes: RefCell<Writes>,
    cache: &'a Cache<'s>,
}

impl BlockDevice for Held<'_, '_> {
    fn blocks(&self) -> Option<u32> {
        self.store.blocks()
    }

    fn read(&self, block: u32, out: &mut Block) -> bool {
        self.read_with(block, &mut |data| *out = *data)
    }

    /// The run's own held write of `block`, else the cache's copy (checked), else the store's
    /// (then cached), where it lies. `f` runs with the held writes or the cache borrowed:
    /// fs-core's readers only look at the block.
    fn read_with(&self, block: u32, f: &mut dyn FnMut(&Block)) -> bool {
        {
            let writes = self.writes.borrow();
            let held = writes.iter().rev().find_map(|s| match s {
                Step::Write(b, data) if *b == block => Some(data),
                _ => None,
            });
            if let Some(data) = held {
                f(data);
                return true;
            }
        }
        if let Some(data) = self.cache.borrow().get(block) {
            f(data);
            return true;
        }
        let Some(v) = self.store.read_vouched(block) else { return false };
        f(v.contents());
        if let Ok(mut cache) = self.cache.try_borrow_mut() {
            cache.keep(block, v);
        }
        true
    }

    /// As [`read_with`](Self::read_with), for bytes `range` of the block: a cache hit checks
    /// only the pieces they lie in (`Shelf::get_range`), against the store's tag; a miss reads
    /// the whole block from the store (checked), keeps it and lends the range.
    fn read_range(&self, block: u32, range: core::ops::Range<usize>, f: &mut dyn FnMut(&[u8])) -> bool {
        if range.start > range.end || range.end > BLOCK_SIZE {
            return false;
        }
        {
            let writes = self.writes.borrow();
            let held = writes.iter().rev().find_map(|s| match s {
                Step::Write(b, data) if *b == block => Some(data),
                _ => None,
            });
            if let Some(data) = held {
                f(&data[range]);
                return true;
            }
        }
        if let Some(bytes) = self.cache.borrow().get_range(block, range.clone()) {
            f(bytes);
            return true;
        }
        let Some(v) = self.store.read_vouched(block) else { return false };
        f(&v.contents()[range]);
        if let Ok(mut cache) = self.cache.try_borrow_mut() {
            cache.keep(block, v);
        }
        true
    }

    /// Every write and flush is kept in order (a block written twice, twice): the store gets
    /// them as the file system made them, which is what makes an operation whole or absent
    /// after a power cut (`fs_core::journal`: the journal durable before any block goes home).
    fn write(&self, block: u32, data: &Block) -> bool {
        let mut w = self.writes.borrow_mut();
        room(&mut w) && {
            // Built in place: a step made first and then pushed was one more copy of the block.
            w.push(Step::Write(block, *data));
            true
        }
    }

    fn flush(&self) -> bool {
        let mut w = self.writes.borrow_mut();
        room(&mut w) && {
            w.push(Step::Flush);
            true
        }
    }
}

/// Whether an operation that has made `w` may make one more step (at most `HELD`).
fn room(w: &mut Writes) -> bool {
    if w.capacity() == 0 {
        // Room for a write inside one block (two images, the header, a flush, two home blocks,
        // a flush) at once: grown from four steps to eight, the vector was allocated twice in
        // each run and its first four blocks copied (`los.fs_write` 50,801 → 48,218). Not all
        // `HELD` steps: the heap's first fit searches longer for a bigger run (one run of 40
        // made the row dearer than no reservation at all).
        w.reserve_exact(FIRST);
    }
    w.len() < HELD
}

/// One request, as every run of it sees it.
struct Job<'a, 't, 's> {
    disk: &'a Disk<Store<'t>>,
    cache: &'a Cache<'s>,
    req: &'a Request,
    others: Others<'a>,
}

impl Job<'_, '_, '_> {
    /// One run, building its answer in `into` (the client's state after it, and the result,
    /// and which request it answers); returns what it would write.
    fn run(&self, into: &mut Answer) -> Writes {
        let store = *self.disk.device();
        let held = self.disk.on(Held { store, writes: RefCell::new(Writes::new()), cache: self.cache });
        into.echo = self.req.echo();
        into.session.state = self.req.session.state;
        handle(&held, &mut into.session.state, &self.req.op, self.others, &mut into.result);
        held.into_device().writes.into_inner()
    }
}

/// Do two runs agree: on the answer (result and state) and on every block they would write?
fn agree((a, a_writes): (&Answer, &Writes), (b, b_writes): (&Answer, &Writes)) -> bool {
    same_result(&a.result, &b.result)
        && same(bytemuck::bytes_of(&a.session.state), bytemuck::bytes_of(&b.session.state))
        && a_writes.len() == b_writes.len()
        && a_writes.iter().zip(b_writes).all(|steps| match steps {
            (Step::Write(m, x), Step::Write(n, y)) => m == n && same(x, y),
            (Step::Flush, Step::Flush) => true,
            _ => false,
        })
}

/// Serve `req` (its session checked) into `out`: each answer's state and result from one of two
/// runs that agree, once the blocks they write are stored and read back (and the cache holds
/// them as read back, or not at all). The sessions are sealed by the caller.
pub(crate) fn serve(
    disk: &Disk<Store<'_>>,
    cache: &Cache<'_>,
    req: &Request,
    others: Others,
    intact: &dyn Fn() -> bool,
    out: &mut Response,
) {
    let store = *disk.device();
    let job = Job { disk, cache, req, others };
    let [one, two] = out.answers();
    let mut writes = [job.run(one), job.run(two)];
    if !agree((one, &writes[0]), (two, &writes[1])) {
        // One run met a fault: in this cell, or in the store under it (a read that failed
        // once, which is no fault of ours and must not restart us). A third run decides.
        let mut third = *one;
        let third_writes = job.run(&mut third);
        let third_run = (&third, &third_writes);
        match (agree(third_run, (one, &writes[0])), agree(third_run, (two, &writes[1]))) {
            (true, _) => (*two, writes[1]) = (third, third_writes),
            (_, true) => (*one, writes[0]) = (third, third_writes),
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
    // An operation that writes nothing (a read, a seek, a stat) has nothing to store. Both runs
    // are asked: a length bent to 0 after the comparison must still meet the other run's
    // blocks in the read-back, not skip it.
    let nothing = writes[0].is_empty() && writes[1].is_empty();
    let stored = nothing || store_all(&store, cache, &writes[0], &writes[1]);
    if !stored {
        one.result = Outcome::Err(FsError::Disk);
        two.result = Outcome::Err(FsError::Disk);
    }
}

/// Store one run's steps (`stored_from`) in order, flushes included (the operation's own last
/// flush makes what is answered as done survive a power-off: a disk's write cache); read each
/// block back and keep it in the cache as read back, checking both against the *other* run's
/// blocks (`expected`). Whether the store took every step. Apart from `serve`, and only for
/// operations that write: inlined, it made every read dearer.
#[inline(never)]
fn store_all(store: &Store<'_>, cache: &Cache<'_>, stored_from: &Writes, expected: &Writes) -> bool {
    let stored = stored_from.iter().all(|s| match s {
        Step::Write(block, data) => store.write(*block, data),
        Step::Flush => store.flush(),
    });
    // A block written twice holds its last write.
    fn written(s: &Step) -> Option<(u32, &Block)> {
        match s {
            Step::Write(b, data) => Some((*b, data)),
            Step::Flush => None,
        }
    }
    let last = |i: usize, block: u32| !expected[i + 1..].iter().filter_map(written).any(|(b, _)| b == block);
    let lasts = || {
        let checked = expected.iter().enumerate().filter_map(|(i, s)| written(s).map(|w| (i, w)));
        checked.filter(|&(i, (b, _))| last(i, b)).map(|(_, w)| w)
    };
    // Read back, and cached as read back: a block the store did not give back as written, or
    // was not asked for (the store failed), is not kept.
    for (block, data) in lasts() {
        match stored.then(|| store.read_vouched(block)).flatten() {
            Some(back) if same(back.contents(), data) => cache.borrow_mut().keep(block, back),
            Some(_) => panic!("block {} did not hold what was stored", block),
            None => cache.borrow_mut().forget(block),
        }
    }
    // What the cache holds of every block written is what was written (compared with the
    // other run's blocks): a forget or keep a fault skipped or misfiled would leave the block's
    // old contents there, which check as the store once vouched for them.
    for (block, data) in lasts() {
        if cache.borrow().stale(block, data) {
            panic!("the cache held block {} as it was before it was written", block);
        }
    }
    stored
}
