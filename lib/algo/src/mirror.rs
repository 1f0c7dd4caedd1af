//! Blocks kept end to end through a store that may be wrong: two copies of every block, each
//! stored with a tag over (block number, copy, contents) that the *client* computes and checks.
//!
//! The store (a block server that faults) may write a block to the wrong place, write garbage,
//! drop a write and say it did it, or answer a read with another block. None of that may reach
//! the client as data:
//!
//! ```text
//!  write B:  put(0, B, tag0, data), put(1, B, tag1, data), then tags(B) must show [tag0, tag1]
//!            (a copy that does not is put again); a copy that never shows its tag fails the write
//!  read B:   get(0, B) with a tag that checks ─► data
//!            else get(1, B) that checks ─► data, and copy 0 is repaired from it
//!            neither (after retries) ─► false: a clear error, never wrong data
//! ```
//! The read-back is what makes a write durable: a put the store dropped or sent elsewhere
//! leaves B's old contents under their old tag, which check — stale data that no read could
//! tell from current data. It asks for the tags only, in a request of its own (so a block
//! number bent while storing is computed afresh): a right tag over wrong contents is caught by
//! the next read of that copy, and the other copy, stored by a separate request, serves it.
//! A put that landed on block B' leaves B' with a tag for B: B' no longer checks and is read
//! from its other copy. The store starts with every block holding zeros under its true tag
//! ([`fresh`]), so no answer is ever taken on trust, not even "nothing written here yet".

use crate::seal;
use core::ops::Range;

/// Copies of every block.
pub const COPIES: usize = 2;
/// Tries of one write (puts and read-back) or of one read of all copies.
const ATTEMPTS: u32 = 3;
const KEY: u64 = 0x626c_6f63_6b5f_7461;
/// Tells the copies' tags apart: a read of copy 1 answered with copy 0 does not check.
const COPY_SALT: u64 = 0x9e37_79b9_7f4a_7c15;

/// A block store that may be faulty: it answers, but not necessarily truly.
pub trait Store<const N: usize> {
    /// Store `data` and `tag` as copy `copy` of block `block`; true if the store says it did.
    fn put(&self, copy: u32, block: u32, tag: u64, data: &[u8; N]) -> bool;
    /// Copy `copy` of block `block` with its tag, if the store answers.
    fn get(&self, copy: u32, block: u32) -> Option<(u64, [u8; N])>;
    /// The tags stored with every copy of block `block`, if the store answers.
    fn tags(&self, block: u32) -> Option<[u64; COPIES]>;
}

/// Binds a [`Vouched`] block's marks to its number and their place (see [`bind`]).
const MARK_SALT: u64 = 0xd6e8_feb8_6659_fd93;
/// The bytes of a block one mark of a [`Vouched`] block covers ([`Vouched::of_range`]): an
/// inode, and the bench's read.
pub const PIECE: usize = 64;
/// Most pieces of a [`Vouched`] block (blocks of at most 512 bytes).
const MAX_PIECES: usize = 8;

/// The seal key of block `block`'s tags.
#[inline]
fn key(block: u32) -> u64 {
    KEY ^ (u64::from(block) + 1).wrapping_mul(0xff51_afd7_ed55_8ccd)
}

/// The tag of copy `copy` of block `block` holding `data`.
pub fn tag(block: u32, copy: u32, data: &[u8]) -> u64 {
    seal::seal(key(block), data) ^ copy_mix(copy)
}

/// What a block's seal is xored with to make copy `copy`'s tag.
#[inline]
fn copy_mix(copy: u32) -> u64 {
    u64::from(copy).wrapping_mul(COPY_SALT)
}

/// The tags of every copy of block `block` holding `data` ([`tag`] of each), from one pass
/// over `data`: a copy's tag differs only in its last step.
fn tags_of(block: u32, data: &[u8]) -> [u64; COPIES] {
    let sealed = seal::seal(key(block), data);
    core::array::from_fn(|c| sealed ^ copy_mix(c as u32))
}

/// The tag copy `copy` of block `block` holds before anything was written: that of zeros.
/// A store is filled with these before it serves (by whoever creates it, not by the store).
pub fn fresh<const N: usize>(block: u32, copy: u32) -> u64 {
    tag(block, copy, &[0; N])
}

/// Two tagged copies of every block of a [`Store`], checked by the client.
pub struct Mirror<S>(pub S);

impl<S> Mirror<S> {
    /// Read block `block` into `out`: false if no copy checks (a clear error, never wrong data).
    pub fn read<const N: usize>(&self, block: u32, out: &mut [u8; N]) -> bool
    where
        S: Store<N>,
    {
        let checks = |copy, t, data: &[u8; N]| (t == tag(block, copy, data)).then_some(());
        self.read_checked(block, checks).map(|((), data)| *out = data).is_some()
    }

    /// Block `block` with what its tag was computed from (its marks), or `None` if no copy
    /// checks.
    pub fn read_vouched<const N: usize>(&self, block: u32) -> Option<Vouched<N>>
    where
        S: Store<N>,
    {
        let checks = |copy, t, data: &[u8; N]| {
            let (whole, marks) = marked(block, copy, data);
            (t == whole).then_some(marks)
        };
        self.read_checked(block, checks).map(|(marks, data)| Vouched { block, marks, data })
    }

    /// The first copy of block `block` that `checks` (given the copy, the tag stored with it and
    /// its contents) takes, with what it made of it; `None` if none does.
    #[inline]
    fn read_checked<const N: usize, T>(
        &self,
        block: u32,
        checks: impl Fn(u32, u64, &[u8; N]) -> Option<T>,
    ) -> Option<(T, [u8; N])>
    where
        S: Store<N>,
    {
        for _ in 0..ATTEMPTS {
            for copy in 0..COPIES as u32 {
                let Some((t, data)) = self.0.get(copy, block) else { continue };
                let Some(made) = checks(copy, t, &data) else { continue };
                // Best effort: a copy found broken is rewritten from the good one (a failed
                // repair leaves it broken, which the next read sees again).
                for broken in 0..copy {
                    self.0.put(broken, block, self::tag(block, broken, &data), &data);
                }
                return Some((made, data));
            }
        }
        None
    }

    /// Write `data` to every copy of block `block`, then read the tags back: false if a copy
    /// never showed this write's tag (the block is then unknown to the client, as after any
    /// failed write: a copy may hold the new contents, another the old).
    pub fn write<const N: usize>(&self, block: u32, data: &[u8; N]) -> bool
    where
        S: Store<N>,
    {
        let want = tags_of(block, data);
        let mut pending = [true; COPIES];
        for _ in 0..ATTEMPTS {
            for (copy, _) in pending.iter().enumerate().filter(|(_, p)| **p) {
                self.0.put(copy as u32, block, want[copy], data);
            }
            if let Some(got) = self.0.tags(block) {
                pending = core::array::from_fn(|c| got[c] != want[c]);
            }
            if !pending.contains(&true) {
                return true;
            }
        }
        false
    }
}

/// A [`Vouched`] block's marks: the state of its tag's seal before its first piece and after
/// each piece, each bound to the block's number and its place ([`bind`]).
type Marks = [u64; MAX_PIECES + 1];

/// What mark `at` of block `block` is xored with: one-to-one in both (an odd multiplier), so
/// a mark read for another block, or at another place, is not the state it was taken as.
#[inline]
fn bind(block: u32, at: usize) -> u64 {
    (u64::from(block) << 32 | at as u64).wrapping_mul(MARK_SALT)
}

/// The tag of copy `copy` of block `block` holding `data` ([`tag`]), and the block's marks,
/// taken in one pass over `data`: the marks are the states of that very computation, so they
/// exist only for bytes the tag covers, as they were when the tag was computed. A byte bent
/// before the pass makes the tag wrong (and the block is refused); one bent after it, or a mark
/// bent, makes the marks around it disagree with the bytes ([`Vouched::of_range`]).
fn marked<const N: usize>(block: u32, copy: u32, data: &[u8; N]) -> (u64, Marks) {
    const { assert!(N <= PIECE * MAX_PIECES, "a vouched block has at most MAX_PIECES pieces") };
    let key = key(block);
    let mut marks = [0; MAX_PIECES + 1];
    let mut h = seal::start(key);
    marks[0] = h ^ bind(block, 0);
    let (whole, rest) = data.as_chunks::<PIECE>();
    for (at, (piece, mark)) in whole.iter().zip(&mut marks[1..]).enumerate() {
        h = seal::absorb(h, piece);
        *mark = h ^ bind(block, at + 1);
    }
    if !rest.is_empty() {
        h = seal::absorb(h, rest);
        marks[whole.len() + 1] = h ^ bind(block, whole.len() + 1);
    }
    (seal::finish(key, h, N) ^ copy_mix(copy), marks)
}

/// The pieces of [`PIECE`] bytes that bytes `range` of a block lie in (none for an empty
/// range): what a ranged check looks at (here, and in `fs_core::cache`).
#[inline]
pub fn pieces(range: &Range<usize>) -> Range<usize> {
    if range.is_empty() {
        return 0..0;
    }
    range.start / PIECE..(range.end - 1) / PIECE + 1
}

/// A block as the mirror read it, with what its tag was computed from: a holder can check it
/// again later without asking the store, all of it or only the pieces it looks at, and a copy
/// of it bent since (or filed under another block number) does not check.
///
/// Its marks are the states of the seal of the tag that vouched for it, at every piece's
/// boundary ([`marked`]: taken in the same pass as that tag). A piece checks if the seal,
/// started from the mark before it, absorbs its bytes into the mark after it; each mark is
/// bound to the block's number and its place ([`bind`]). A single flipped bit of a piece, or of
/// either mark, always shows there ([`seal::absorb`] is one-to-one); a flipped bit of the number,
/// or a mark or piece from another block or place, with all but negligible odds.
#[derive(Clone, Copy)]
pub struct Vouched<const N: usize> {
    block: u32,
    marks: Marks,
    data: [u8; N],
}

impl<const N: usize> Vouched<N> {
    /// Block `block` whose contents `data` a client checked by other means than the mirror (a
    /// store with one plain copy: see the libos disk cell's `Blocks`); marked from now on, so a
    /// copy bent while it is kept is still caught by [`Vouched::of`].
    pub fn new(block: u32, data: [u8; N]) -> Vouched<N> {
        Vouched { block, marks: marked(block, 0, &data).1, data }
    }

    /// Block `block` holding `data`, if `check` takes the tag of copy `copy` of it ([`tag`]),
    /// computed in the same pass as its marks (see [`marked`]): for a client that checks
    /// `data` against a tag it keeps itself (the libos disk cell's tags of this boot).
    pub fn checked(
        block: u32,
        copy: u32,
        data: [u8; N],
        check: impl FnOnce(u64) -> bool,
    ) -> Option<Vouched<N>> {
        let (whole, marks) = marked(block, copy, &data);
        check(whole).then_some(Vouched { block, marks, data })
    }

    /// The number of the block it was filed as: where a cache looks for it, never a reason to
    /// believe it (only [`Vouched::of`] and [`Vouched::of_range`] check it).
    pub fn number(&self) -> u32 {
        self.block
    }

    /// The contents as the mirror checked them when it read them (for a value kept since, use
    /// [`Vouched::of`]).
    pub fn contents(&self) -> &[u8; N] {
        &self.data
    }

    /// The contents, if this is block `block` and every piece still checks.
    pub fn of(&self, block: u32) -> Option<&[u8; N]> {
        self.holds(block, 0..N.div_ceil(PIECE)).then_some(&self.data)
    }

    /// Bytes `range` of the contents, if this is block `block` and the pieces they lie in
    /// still check (and only those: a bent byte elsewhere is caught by the read that looks at
    /// it); `None` for a range past the block.
    #[inline]
    pub fn of_range(&self, block: u32, range: Range<usize>) -> Option<&[u8]> {
        let pieces = pieces(&range);
        let bytes = self.data.get(range)?;
        self.holds(block, pieces).then_some(bytes)
    }

    /// Is this block `block`, with pieces `pieces` as their tag's seal absorbed them?
    #[inline]
    fn holds(&self, block: u32, pieces: Range<usize>) -> bool {
        if self.block != block {
            return false;
        }
        let Some(mut h) = self.marks.get(pieces.start).map(|m| m ^ bind(block, pieces.start)) else {
            return false;
        };
        let (whole, rest) = self.data.as_chunks::<PIECE>();
        for at in pieces {
            // A whole piece as an array: its words are absorbed without a loop's checks.
            h = match whole.get(at) {
                Some(piece) => seal::absorb(h, piece),
                None if at == whole.len() && !rest.is_empty() => seal::absorb(h, rest),
                None => return false,
            };
            if self.marks.get(at + 1).is_none_or(|mark| h ^ bind(block, at + 1) != *mark) {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use core::cell::{Cell, RefCell};

    const N: usize = 16;
    const BLOCKS: usize = 8;

    /// What a faulty store does wrong, once, at its next operation of that kind.
    #[derive(Clone, Copy, Debug)]
    enum Fault {
        /// A put lands on this (copy, block) instead.
        Misplace(u32, u32),
        /// A put is dropped and reported done.
        Drop,
        /// A put stores its data with this byte flipped (under the right tag).
        FlipPut(usize),
        /// A get flips this byte of what it answers.
        FlipGet(usize),
        /// A get, or a tags answer, gives (copy, block)'s instead.
        Misread(u32, u32),
        /// The operation fails.
        Fail,
    }

    /// Every copy of every block: its tag and contents.
    type Records = [[(u64, [u8; N]); BLOCKS]; COPIES];

    /// A store that does what it is told, except for the faults armed in it.
    struct Faulty {
        copies: RefCell<Records>,
        put_fault: Cell<Option<Fault>>,
        get_fault: Cell<Option<Fault>>,
        /// Every get of this block fails (the store lost it for good).
        dead: Cell<Option<u32>>,
    }

    impl Faulty {
        /// A store as its creator hands it over: zeros under their true tags.
        fn new() -> Faulty {
            let copies =
                core::array::from_fn(|c| core::array::from_fn(|b| (fresh::<N>(b as u32, c as u32), [0; N])));
            Faulty {
                copies: RefCell::new(copies),
                put_fault: Cell::new(None),
                get_fault: Cell::new(None),
                dead: Cell::new(None),
            }
        }

        fn at(&self, copy: u32, block: u32) -> (u64, [u8; N]) {
            self.copies.borrow()[copy as usize][block as usize]
        }
    }

    impl Store<N> for Faulty {
        fn put(&self, copy: u32, block: u32, tag: u64, data: &[u8; N]) -> bool {
            let (mut copy, mut block, mut data) = (copy, block, *data);
            match self.put_fault.take() {
                Some(Fault::Drop) => return true,
                Some(Fault::Fail) => return false,
                Some(Fault::Misplace(c, b)) => (copy, block) = (c, b),
                Some(Fault::FlipPut(i)) => data[i] ^= 0x10,
                _ => {}
            }
            self.copies.borrow_mut()[copy as usize][block as usize] = (tag, data);
            true
        }

        fn get(&self, copy: u32, block: u32) -> Option<(u64, [u8; N])> {
            if self.dead.get() == Some(block) {
                return None;
            }
            match self.get_fault.take() {
                Some(Fault::Fail) => None,
                Some(Fault::Misread(c, b)) => Some(self.at(c, b)),
                Some(Fault::FlipGet(i)) => {
                    let (t, mut d) = self.at(copy, block);
                    d[i] ^= 1;
                    Some((t, d))
                }
                _ => Some(self.at(copy, block)),
            }
        }

        fn tags(&self, block: u32) -> Option<[u64; COPIES]> {
            match self.get_fault.take() {
                Some(Fault::Fail) => None,
                Some(Fault::Misread(_, b)) => Some(core::array::from_fn(|c| self.at(c as u32, b).0)),
                _ => Some(core::array::from_fn(|c| self.at(c as u32, block).0)),
            }
        }
    }

    fn block(v: u8) -> [u8; N] {
        [v; N]
    }

    fn read(m: &Mirror<Faulty>, b: u32) -> Option<[u8; N]> {
        let mut out = [0xee; N];
        m.read(b, &mut out).then_some(out)
    }

    #[test]
    fn one_pass_gives_every_copys_tag() {
        for (b, v) in [(0, 0), (3, 7), (u32::MAX, 0xff)] {
            let data = block(v);
            let want: [u64; COPIES] = core::array::from_fn(|c| tag(b, c as u32, &data));
            assert_eq!(tags_of(b, &data), want);
            assert_ne!(want[0], want[1], "the copies' tags differ");
        }
    }

    #[test]
    fn written_blocks_read_back_and_fresh_ones_read_as_zeros() {
        let m = Mirror(Faulty::new());
        assert!(m.write(3, &block(7)));
        assert_eq!(read(&m, 3), Some(block(7)));
        assert_eq!(read(&m, 4), Some([0; N]), "never written");
    }

    #[test]
    fn a_read_answered_with_a_block_never_written_is_not_taken_for_zeros() {
        let m = Mirror(Faulty::new());
        assert!(m.write(2, &block(2)));
        m.0.get_fault.set(Some(Fault::Misread(0, 6)));
        assert_eq!(read(&m, 2), Some(block(2)), "block 6's zeros are refused for block 2");
        m.0.copies.borrow_mut()[0][6] = (0, [0; N]);
        assert_eq!(read(&m, 6), Some([0; N]), "zeros under no tag are refused, and copy 1 serves");
        assert_eq!(m.0.at(0, 6).0, fresh::<N>(6, 0), "and copy 0 is repaired");
    }

    #[test]
    fn a_misplaced_write_is_redone_and_its_victim_recovered_from_the_other_copy() {
        let m = Mirror(Faulty::new());
        assert!(m.write(5, &block(5)));
        m.0.put_fault.set(Some(Fault::Misplace(0, 5)));
        assert!(
            m.write(2, &block(2)),
            "the put that landed on block 5 is read back, found missing, done again"
        );
        assert_eq!(read(&m, 2), Some(block(2)));
        assert_eq!(m.0.at(0, 5).1, block(2), "copy 0 of block 5 holds block 2's data");
        assert_eq!(read(&m, 5), Some(block(5)), "block 5 comes from copy 1, never as block 2's data");
        assert_eq!(m.0.at(0, 5).1, block(5), "and copy 0 is repaired");
    }

    #[test]
    fn a_write_put_into_the_other_copy_is_refused_there() {
        let m = Mirror(Faulty::new());
        assert!(m.write(1, &block(1)));
        m.0.put_fault.set(Some(Fault::Misplace(1, 1)));
        assert!(m.write(1, &block(9)));
        m.0.copies.borrow_mut()[0][1].1[3] ^= 1;
        assert_eq!(read(&m, 1), Some(block(9)));
    }

    #[test]
    fn a_dropped_write_is_seen_and_done_again() {
        let m = Mirror(Faulty::new());
        assert!(m.write(1, &block(1)));
        m.0.put_fault.set(Some(Fault::Drop));
        assert!(m.write(1, &block(9)));
        assert_eq!(read(&m, 1), Some(block(9)), "not the stale contents with their valid old tag");
        m.0.copies.borrow_mut()[0][1].1[0] ^= 1;
        assert_eq!(read(&m, 1), Some(block(9)), "nor from copy 1");
    }

    #[test]
    fn contents_stored_wrong_under_the_right_tag_are_refused_at_the_read() {
        let m = Mirror(Faulty::new());
        m.0.put_fault.set(Some(Fault::FlipPut(4)));
        assert!(m.write(3, &block(3)), "the tags read back are right");
        assert_eq!(read(&m, 3), Some(block(3)), "copy 0's contents do not check: copy 1 serves");
        assert_eq!(m.0.at(0, 3).1, block(3), "and copy 0 is repaired");
    }

    #[test]
    fn a_corrupted_or_misdirected_read_is_never_returned() {
        let m = Mirror(Faulty::new());
        assert!(m.write(6, &block(6)) && m.write(7, &block(7)));
        m.0.get_fault.set(Some(Fault::FlipGet(0)));
        assert_eq!(read(&m, 6), Some(block(6)));
        m.0.get_fault.set(Some(Fault::Misread(0, 7)));
        assert_eq!(read(&m, 6), Some(block(6)), "block 7's copy, valid for block 7, is refused for 6");
        m.0.get_fault.set(Some(Fault::Misread(1, 6)));
        assert_eq!(read(&m, 6), Some(block(6)), "copy 1 offered as copy 0 is refused");
    }

    #[test]
    fn a_block_lost_in_both_copies_is_an_error_not_data() {
        let m = Mirror(Faulty::new());
        assert!(m.write(3, &block(3)));
        m.0.dead.set(Some(3));
        assert_eq!(read(&m, 3), None);
        m.0.dead.set(None);
        m.0.copies.borrow_mut()[0][3].1[1] ^= 4;
        m.0.copies.borrow_mut()[1][3].1[2] ^= 4;
        assert_eq!(read(&m, 3), None, "both copies damaged: refused");
    }

    #[test]
    fn a_store_that_keeps_failing_fails_the_write_clearly() {
        struct Deaf;
        impl Store<N> for Deaf {
            fn put(&self, _: u32, _: u32, _: u64, _: &[u8; N]) -> bool {
                true
            }
            fn get(&self, _: u32, _: u32) -> Option<(u64, [u8; N])> {
                None
            }
            fn tags(&self, _: u32) -> Option<[u64; COPIES]> {
                Some([0; COPIES])
            }
        }
        assert!(!Mirror(Deaf).write(0, &block(1)));
        assert!(!Mirror(Deaf).read(0, &mut [0; N]));
    }

    /// Thousands of writes and reads through a store that does something wrong at two
    /// operations in five: every read gives a value the block may hold (the last one written
    /// and acknowledged, or one a failed write since tried to put there) or an error; never
    /// anything else.
    #[test]
    fn random_faults_never_give_wrong_data() {
        let m = Mirror(Faulty::new());
        let mut rng = Rng(12);
        // What each block may hold, as far as a client that saw every answer knows: a bit per
        // value (blocks of one repeated byte).
        let mut may = [[false; 256]; BLOCKS];
        for b in may.iter_mut() {
            b[0] = true;
        }
        let (mut errors, mut reads) = (0, 0);
        for _ in 0..20_000 {
            let (c, b, i) = (
                rng.below(COPIES as u64) as u32,
                rng.below(BLOCKS as u64) as u32,
                rng.below(N as u64) as usize,
            );
            if rng.below(5) == 0 {
                let faults = [Fault::Misplace(c, b), Fault::Drop, Fault::FlipPut(i), Fault::Fail];
                m.0.put_fault.set(Some(faults[rng.below(4) as usize]));
            }
            if rng.below(5) == 0 {
                let faults = [Fault::Misread(c, b), Fault::FlipGet(i), Fault::Fail];
                m.0.get_fault.set(Some(faults[rng.below(3) as usize]));
            }
            let b = rng.below(BLOCKS as u64) as usize;
            if rng.below(2) == 0 {
                let v = rng.below(256) as usize;
                if m.write(b as u32, &block(v as u8)) {
                    may[b] = [false; 256];
                }
                may[b][v] = true;
            } else {
                reads += 1;
                match read(&m, b as u32) {
                    Some(d) => assert!(d == block(d[0]) && may[b][d[0] as usize], "block {b} read as {d:?}"),
                    None => errors += 1,
                }
            }
        }
        assert!(errors < reads / 50, "{errors} errors in {reads} reads: the copies mask almost every fault");
    }

    #[test]
    fn a_vouched_block_checks_again_only_unchanged_and_under_its_own_number() {
        let m = Mirror(Faulty::new());
        assert!(m.write(4, &block(4)));
        let v = m.read_vouched(4).expect("block 4 reads");
        assert_eq!(v.of(4), Some(&block(4)));
        assert_eq!(v.of(5), None, "filed under another block");
        assert_eq!(v.of_range(4, 2..9), Some(&block(4)[2..9]));
        let mut bent = v;
        bent.data[7] ^= 2;
        assert_eq!(bent.of(4), None, "bent since it was read");
        assert_eq!(bent.of_range(4, 2..9), None);
    }

    /// A block of 512 bytes (eight pieces), none alike.
    fn big() -> [u8; 512] {
        core::array::from_fn(|i| (i * 7 + i / 256 + 1) as u8)
    }

    /// A kept block with bit `bit` flipped: of its number (bits 0..32), its marks (32..608),
    /// its contents (608..).
    fn flipped(good: Vouched<512>, bit: usize) -> Vouched<512> {
        let mut bent = good;
        match bit {
            b if b < 32 => bent.block ^= 1 << b,
            b if b < 32 + 64 * (MAX_PIECES + 1) => bent.marks[(b - 32) / 64] ^= 1 << ((b - 32) % 64),
            b => {
                let b = b - 32 - 64 * (MAX_PIECES + 1);
                bent.data[b / 8] ^= 1 << (b % 8)
            }
        }
        bent
    }

    /// The pieces a flipped bit of a kept block reaches (see [`flipped`]).
    fn reached(bit: usize) -> Range<usize> {
        match bit {
            b if b < 32 => 0..MAX_PIECES,
            b if b < 32 + 64 * (MAX_PIECES + 1) => {
                let m = (b - 32) / 64;
                m.saturating_sub(1)..(m + 1).min(MAX_PIECES)
            }
            b => {
                let p = (b - 32 - 64 * (MAX_PIECES + 1)) / 8 / PIECE;
                p..p + 1
            }
        }
    }

    /// What a fault in a holder's memory does to a kept block (the libos fs cell's cache,
    /// `fs_core::cache::Shelf`): every single bit flipped in it — its number, its marks, any
    /// byte of its contents — makes it not check, whole or in any range that lends a piece the
    /// bit reaches.
    #[test]
    fn every_flipped_bit_in_a_vouched_block_is_caught() {
        let data = big();
        let good = Vouched::new(6, data);
        assert_eq!(good.of(6), Some(&data));
        for p in 0..MAX_PIECES {
            assert_eq!(good.of_range(6, p * PIECE..p * PIECE + PIECE), Some(&data[p * PIECE..][..PIECE]));
        }
        for bit in 0..32 + 64 * (MAX_PIECES + 1) + 512 * 8 {
            let bent = flipped(good, bit);
            assert_eq!(bent.of(6), None, "bit {bit}: whole");
            for p in reached(bit) {
                // The piece alone, a byte of it, and a range from the piece before it.
                for range in
                    [p * PIECE..p * PIECE + PIECE, p * PIECE + 5..p * PIECE + 6, p * PIECE / 2..p * PIECE + 1]
                {
                    assert_eq!(bent.of_range(6, range.clone()), None, "bit {bit}: range {range:?}");
                }
            }
        }
        // A short block (one short piece) is covered the same way.
        let small: [u8; N] = core::array::from_fn(|i| (i * 7 + 1) as u8);
        let good = Vouched::new(6, small);
        for bit in 0..32 + 64 * 2 + N * 8 {
            let mut bent = good;
            match bit {
                b if b < 32 => bent.block ^= 1 << b,
                b if b < 160 => bent.marks[(b - 32) / 64] ^= 1 << ((b - 32) % 64),
                b => bent.data[(b - 160) / 8] ^= 1 << ((b - 160) % 8),
            }
            assert_eq!(bent.of(6), None, "bit {bit}");
            assert_eq!(bent.of_range(6, 3..4), None, "bit {bit}");
        }
    }

    /// A ranged check looks at the pieces it lends and only those: a bent byte in another piece
    /// does not make the bytes lent wrong (they are the block's own), nor is it lent.
    #[test]
    fn a_bent_byte_outside_the_range_lent_leaves_the_range_right() {
        let data = big();
        let good = Vouched::new(3, data);
        for bent_at in (0..512).step_by(29) {
            let mut bent = good;
            bent.data[bent_at] ^= 0x40;
            let hit = bent_at / PIECE;
            for (start, end) in [(0, 64), (64, 200), (130, 131), (448, 512), (0, 512), (200, 200), (63, 65)] {
                let got = bent.of_range(3, start..end);
                if pieces(&(start..end)).contains(&hit) {
                    assert_eq!(got, None, "byte {bent_at} bent, {start}..{end} lent");
                } else {
                    assert_eq!(got, Some(&data[start..end]), "byte {bent_at} bent, {start}..{end} lent");
                }
            }
        }
        assert_eq!(good.of_range(3, 500..513), None, "past the block");
        assert_eq!(good.of_range(4, 0..64), None, "another block's");
        assert_eq!(good.of_range(3, 9..9), Some(&[][..]), "an empty range checks nothing");
    }

    /// The marks are taken in the pass that computes the tag the store's is compared with: the
    /// tag is the mirror's own, and contents bent before the pass (between the store's answer
    /// and the check) give a tag the store's does not match, so no marks are kept for them.
    #[test]
    fn the_pass_that_marks_a_block_refuses_bent_contents() {
        let data = big();
        for (block, copy) in [(0, 0), (6, 1), (2047, 0)] {
            let t = tag(block, copy, &data);
            assert_eq!(marked(block, copy, &data).0, t, "the same tag as the mirror's");
            let v = Vouched::checked(block, copy, data, |got| got == t).expect("the right contents check");
            assert_eq!(v.of(block), Some(&data));
            assert_eq!(v.of_range(block, 64..128), Some(&data[64..128]));
            for bit in 0..512 * 8 {
                let mut bent = data;
                bent[bit / 8] ^= 1 << (bit % 8);
                assert!(Vouched::checked(block, copy, bent, |got| got == t).is_none(), "bit {bit}");
            }
        }
        let small = [5u8; N];
        assert_eq!(marked(4, 1, &small).0, tag(4, 1, &small));
        let m = Mirror(Faulty::new());
        assert!(m.write(4, &small));
        m.0.get_fault.set(Some(Fault::FlipGet(3)));
        let v = m.read_vouched(4).expect("copy 1 serves");
        assert_eq!(v.of_range(4, 0..N), Some(&small[..]));
    }

    #[test]
    fn tags_depend_on_block_copy_and_every_bit() {
        let d = [0x5au8; 512];
        let t = tag(9, 0, &d);
        assert_ne!(tag(10, 0, &d), t);
        assert_ne!(tag(9, 1, &d), t);
        for byte in 0..d.len() {
            let mut e = d;
            e[byte] ^= 0x80;
            assert_ne!(tag(9, 0, &e), t, "flip in byte {byte} went unseen");
        }
    }
}
