//! Server State Regions as a server sees them.
//!
//! A server keeps each client's state in that client's SSR, which the kernel maps at the
//! server's SSR window only while the client's request runs. This crate gives the bytes there a
//! type, and checks them before the server trusts them, in the manner of CuriOS:
//!
//! ```text
//!  SSR page:  +--------+--------+---------+-----+----------+------------------------------+
//!             | magic  | kind   | version | len | checksum | state: T (plain old data,    |
//!             | u32    | u16    | u16     | u32 | u32      |   no pointers, len bytes)    |
//!             +--------+--------+---------+-----+----------+------------------------------+
//! ```
//!
//! [`open`] turns the bytes into a [`Region<T>`]: an all-zero page is a new session and gets
//! `T::fresh()`; anything else must carry the magic, the server's kind and layout version, the
//! right length and a matching checksum, and pass `T::check` (the server's own range checks and
//! per-object magic numbers). When the `Region` is dropped the checksum is updated, so a server
//! that dies half-way through changing a client's state leaves a region the next incarnation
//! recognises as broken. A failed check is a value ([`Broken`]), never a panic: the server
//! reports which client's state it was, resets it, and serves everyone else as before.
#![no_std]
#![forbid(unsafe_code)]

use bytemuck::{Pod, Zeroable};
use core::mem::size_of;
use core::sync::atomic::{compiler_fence as fence, Ordering};

/// First word of every initialised SSR ("SSR1").
pub const MAGIC: u32 = 0x3152_5353;

/// The header at the start of every SSR.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct Header {
    pub magic: u32,
    pub kind: u16,
    pub version: u16,
    pub len: u32,
    pub checksum: u32,
}

pub const HEADER_LEN: usize = size_of::<Header>();

/// Where the backup copy (header and state) of a [`Layout::BACKUP`] region starts: the middle
/// of the page, so one corrupted word never reaches both copies.
pub const BACKUP_OFFSET: usize = 2048;

/// A server's per-client state layout.
pub trait Layout: Pod {
    /// Which server's state this is (each server picks its own number).
    const KIND: u16;
    /// Bumped whenever the layout changes; an old region is then reported, not misread.
    const VERSION: u16;

    /// Keep a second sealed copy of the state at [`BACKUP_OFFSET`]: a region whose primary copy
    /// fails its checks is then repaired from the backup instead of reset (a torn update by a
    /// server that died mid-request, or one corrupted word, loses nothing).
    const BACKUP: bool = false;

    /// The state of a brand-new session.
    fn fresh() -> Self {
        Self::zeroed()
    }

    /// The server's own consistency checks: indices and lengths in range, magic numbers of the
    /// objects inside. Called on every [`open`].
    fn check(&self) -> Result<(), Broken> {
        Ok(())
    }
}

/// Why a region cannot be trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Broken {
    /// The region is smaller than header plus state.
    TooSmall {
        have: usize,
        need: usize,
    },
    BadMagic(u32),
    WrongKind {
        found: u16,
        expected: u16,
    },
    WrongVersion {
        found: u16,
        expected: u16,
    },
    WrongLength {
        found: u32,
        expected: u32,
    },
    BadChecksum {
        stored: u32,
        computed: u32,
    },
    /// A server-specific check failed; says what.
    Inconsistent(&'static str),
    /// The bytes handed in are not aligned for the header and state (a caller's buffer).
    Misaligned,
}

impl core::fmt::Display for Broken {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Broken::TooSmall { have, need } => write!(f, "region too small ({have} < {need} bytes)"),
            Broken::BadMagic(m) => write!(f, "bad magic {m:#x}"),
            Broken::WrongKind { found, expected } => {
                write!(f, "state of server kind {found}, expected {expected}")
            }
            Broken::WrongVersion { found, expected } => {
                write!(f, "layout version {found}, expected {expected}")
            }
            Broken::WrongLength { found, expected } => write!(f, "state length {found}, expected {expected}"),
            Broken::BadChecksum { stored, computed } => {
                write!(f, "checksum {stored:#010x} does not match contents ({computed:#010x})")
            }
            Broken::Inconsistent(what) => write!(f, "inconsistent: {what}"),
            Broken::Misaligned => write!(f, "buffer not aligned for the state's type"),
        }
    }
}

/// A Fletcher checksum over 64-bit words (a trailing partial word is zero-padded), folded to
/// 32 bits: `a` sums the words, `b` sums `a` after each, so a word's value and its place
/// both count.
#[inline] // callers pass a state of constant size: inlined, the loop folds to straight code
pub fn checksum(bytes: &[u8]) -> u32 {
    // Whole words straight from the slice (this runs twice on every SSR request: over u32
    // words it was a quarter of `mk.fs_read`); the tail, if any, zero-padded. Plain locals, so
    // the two sums stay in registers.
    let (words, tail) = bytes.as_chunks::<8>();
    let (mut a, mut b) = (0x5eed_u64, 0u64);
    // Two additions a word (a rotation of `b` in each step, as it was, cost a third more of
    // what opening and sealing a region spend, and the fold below already mixes the bits).
    for w in words {
        a = a.wrapping_add(u64::from_le_bytes(*w));
        b = b.wrapping_add(a);
    }
    if !tail.is_empty() {
        let mut w = [0u8; 8];
        w[..tail.len()].copy_from_slice(tail);
        a = a.wrapping_add(u64::from_le_bytes(w));
        b = b.wrapping_add(a);
    }
    // `b` turned half-way round, so that its top bits reach the low half before the
    // multiplication (which carries bits only upwards: without it, a flip in a word's top
    // bits cancelled out), and folded so that no single flipped bit cancels out (the test
    // below flips each one).
    let h = (a ^ b.rotate_left(32)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h ^ (h >> 32)) as u32
}

/// Whether a region was just created or already held state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Fresh,
    Existing,
    /// The primary copy was broken (why) and was restored from the backup copy.
    Repaired(Broken),
}

/// A checked, typed view of an SSR. Dropping it seals the region (updates the checksum, then
/// the backup copy if the layout keeps one).
pub struct Region<'a, T: Layout> {
    header: &'a mut Header,
    state: &'a mut T,
    backup: Option<&'a mut [u8]>,
    pub origin: Origin,
}

impl<T: Layout> Region<'_, T> {
    pub fn state(&mut self) -> &mut T {
        self.state
    }

    pub fn get(&self) -> &T {
        self.state
    }
}

impl<T: Layout> Region<'_, T> {
    /// Seal the primary copy (its checksum), then copy it to the backup. A server dying
    /// between the two leaves a good primary (the newer state); dying before, a good backup
    /// (the state before the request). The fences keep the compiler from moving the stores
    /// across that order: a fault can stop the server at any instruction.
    fn seal(&mut self) {
        fence(Ordering::SeqCst);
        self.header.checksum = checksum(bytemuck::bytes_of(self.state));
        fence(Ordering::SeqCst);
        if let Some(backup) = self.backup.as_deref_mut() {
            backup[..HEADER_LEN].copy_from_slice(bytemuck::bytes_of(self.header));
            backup[HEADER_LEN..].copy_from_slice(bytemuck::bytes_of(self.state));
        }
    }
}

impl<T: Layout> Drop for Region<'_, T> {
    fn drop(&mut self) {
        self.seal();
    }
}

/// The primary copy, and the backup's bytes (header and state) if `T` keeps one.
type Parts<'a, T> = (&'a mut Header, &'a mut T, Option<&'a mut [u8]>);

fn split<T: Layout>(bytes: &mut [u8]) -> Result<Parts<'_, T>, Broken> {
    const { assert!(!T::BACKUP || HEADER_LEN + size_of::<T>() <= BACKUP_OFFSET, "state too big for a backup") };
    let len = HEADER_LEN + size_of::<T>();
    let need = if T::BACKUP { BACKUP_OFFSET + len } else { len };
    if bytes.len() < need {
        return Err(Broken::TooSmall { have: bytes.len(), need });
    }
    let (primary, rest) = bytes.split_at_mut(len);
    let backup = T::BACKUP.then(|| &mut rest[BACKUP_OFFSET - len..][..len]);
    let (h, state) = primary.split_at_mut(HEADER_LEN);
    let header = bytemuck::try_from_bytes_mut(h).map_err(|_| Broken::Misaligned)?;
    let state = bytemuck::try_from_bytes_mut(state).map_err(|_| Broken::Misaligned)?;
    Ok((header, state, backup))
}

/// Copy a backup that passes every check over the primary; whether there was one.
fn restore<T: Layout>(header: &mut Header, state: &mut T, backup: Option<&[u8]>) -> bool {
    match backup.and_then(|b| verify_copy::<T>(b).ok()) {
        Some((h, s)) => {
            (*header, *state) = (*h, *s);
            true
        }
        None => false,
    }
}

/// A copy (header and state bytes) that passes every check.
fn verify_copy<T: Layout>(bytes: &[u8]) -> Result<(&Header, &T), Broken> {
    let (h, state) = bytes.split_at(HEADER_LEN);
    let header: &Header = bytemuck::try_from_bytes(h).map_err(|_| Broken::Misaligned)?;
    let state: &T = bytemuck::try_from_bytes(state).map_err(|_| Broken::Misaligned)?;
    verify_parts(header, state).map(|_| (header, state))
}

fn verify_parts<T: Layout>(header: &Header, state: &T) -> Result<(), Broken> {
    if header.magic != MAGIC {
        return Err(Broken::BadMagic(header.magic));
    }
    if header.kind != T::KIND {
        return Err(Broken::WrongKind { found: header.kind, expected: T::KIND });
    }
    if header.version != T::VERSION {
        return Err(Broken::WrongVersion { found: header.version, expected: T::VERSION });
    }
    if header.len != size_of::<T>() as u32 {
        return Err(Broken::WrongLength { found: header.len, expected: size_of::<T>() as u32 });
    }
    let computed = checksum(bytemuck::bytes_of(state));
    if computed != header.checksum {
        return Err(Broken::BadChecksum { stored: header.checksum, computed });
    }
    state.check()
}

/// Open an SSR (the bytes at the SSR window, page aligned) as state of type `T`.
pub fn open<T: Layout>(bytes: &mut [u8]) -> Result<Region<'_, T>, Broken> {
    open_inner(bytes, false)
}

/// Like [`open`], but a region that fails its checks is also wiped, so the client's next
/// request starts afresh; the caller tells the client (and a person) why from the `Broken`.
pub fn open_or_reset<T: Layout>(bytes: &mut [u8]) -> Result<Region<'_, T>, Broken> {
    open_inner(bytes, true)
}

fn open_inner<T: Layout>(bytes: &mut [u8], reset_broken: bool) -> Result<Region<'_, T>, Broken> {
    let (header, state, backup) = split::<T>(bytes)?;
    // A sealed region (the common case) has its magic set: skip the all-zero scan then. One
    // corrupted word cannot zero a sealed primary, so an all-zero primary was never sealed —
    // unless a good backup says otherwise.
    if header.magic == 0 && *header == Header::zeroed() && bytemuck::bytes_of(state).iter().all(|&b| b == 0) {
        if restore(header, state, backup.as_deref()) {
            return Ok(Region { header, state, backup, origin: Origin::Repaired(Broken::BadMagic(0)) });
        }
        *state = T::fresh();
        *header = Header {
            magic: MAGIC,
            kind: T::KIND,
            version: T::VERSION,
            len: size_of::<T>() as u32,
            checksum: 0,
        };
        // Sealed at once (the backup too), so a server that dies during a session's very
        // first request leaves a region that opens as this fresh state.
        let mut region = Region { header, state, backup, origin: Origin::Fresh };
        region.seal();
        return Ok(region);
    }
    let Err(broken) = verify_parts(header, state) else {
        return Ok(Region { header, state, backup, origin: Origin::Existing });
    };
    if restore(header, state, backup.as_deref()) {
        return Ok(Region { header, state, backup, origin: Origin::Repaired(broken) });
    }
    if reset_broken {
        *header = Header::zeroed();
        *state = T::zeroed();
        if let Some(b) = backup {
            b.fill(0);
        }
    }
    Err(broken)
}

/// Check a region without changing it (for copies read through an SsrView capability).
pub fn verify<T: Layout>(bytes: &[u8]) -> Result<&T, Broken> {
    let need = HEADER_LEN + size_of::<T>();
    if bytes.len() < need {
        return Err(Broken::TooSmall { have: bytes.len(), need });
    }
    match verify_copy::<T>(&bytes[..need]) {
        Ok((_, state)) => Ok(state),
        // The backup copy, when the caller read that far.
        Err(broken) => match bytes.get(BACKUP_OFFSET..BACKUP_OFFSET + need) {
            Some(copy) if T::BACKUP => verify_copy::<T>(copy).map(|(_, state)| state).map_err(|_| broken),
            _ => Err(broken),
        },
    }
}

/// [`open_or_reset`] for a server serving session `session` of client task `client`: a region
/// repaired from its backup or reset is reported (a warning naming the client and why), so
/// every server words it the same way. On `Err` the region was reset; the server tells that
/// client so.
pub fn open_reporting<T: Layout>(
    bytes: &mut [u8],
    client: u16,
    session: u16,
) -> Result<Region<'_, T>, Broken> {
    let region = open_or_reset::<T>(bytes);
    match &region {
        Ok(Region { origin: Origin::Repaired(broken), .. }) => log::warn!(
            "state of client task {client} (session {session}) was broken: {broken}; repaired from its backup copy"
        ),
        Ok(_) => {}
        Err(broken) => {
            log::warn!("state of client task {client} (session {session}) is broken: {broken}; resetting it")
        }
    }
    region
}

/// The layout version a region's header (or, if the primary is broken, its backup's) says it
/// holds, if it is sealed state of `kind`: how a new version of a server tells a client state it
/// must migrate ([`migrate`]) from one in its own layout.
pub fn layout_of(bytes: &[u8], kind: u16) -> Option<u16> {
    [0, BACKUP_OFFSET].into_iter().find_map(|at| {
        let h: Header = bytemuck::pod_read_unaligned(bytes.get(at..at + HEADER_LEN)?);
        (h.magic == MAGIC && h.kind == kind).then_some(h.version)
    })
}

/// Rewrite a region holding `Old` (its primary, or its backup if the primary fails its checks)
/// as `New`, made by `f` from it: a new version of a server reading a client's state in the
/// layout of the version before. The backup copy is written first, then the primary: a fault
/// in between leaves an old primary beside a new backup, and the next [`open`] as `New` takes
/// the backup; a fault before leaves the old state whole, migrated again next time. `Err` if no
/// copy of `Old` passes its checks (nothing is written then).
pub fn migrate<Old: Layout, New: Layout>(
    bytes: &mut [u8],
    f: impl FnOnce(&Old) -> New,
) -> Result<(), Broken> {
    const { assert!(Old::KIND == New::KIND, "a migration keeps the state's kind") };
    let new = f(verify::<Old>(bytes)?);
    let header = Header {
        magic: MAGIC,
        kind: New::KIND,
        version: New::VERSION,
        len: size_of::<New>() as u32,
        checksum: checksum(bytemuck::bytes_of(&new)),
    };
    let len = HEADER_LEN + size_of::<New>();
    let need = if New::BACKUP { BACKUP_OFFSET + len } else { len };
    if bytes.len() < need {
        return Err(Broken::TooSmall { have: bytes.len(), need });
    }
    let mut copy = |at: usize| {
        bytes[at..at + HEADER_LEN].copy_from_slice(bytemuck::bytes_of(&header));
        bytes[at + HEADER_LEN..at + len].copy_from_slice(bytemuck::bytes_of(&new));
        fence(Ordering::SeqCst);
    };
    if New::BACKUP {
        copy(BACKUP_OFFSET);
    }
    copy(0);
    Ok(())
}

/// Throw a broken region away and start the session afresh.
pub fn reset<T: Layout>(bytes: &mut [u8]) -> Result<Region<'_, T>, Broken> {
    let (header, state, backup) = split::<T>(bytes)?;
    *header = Header::zeroed();
    *state = T::zeroed();
    if let Some(b) = backup {
        b.fill(0);
    }
    open(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[repr(C)]
    #[derive(Clone, Copy, Pod, Zeroable, Debug, PartialEq)]
    struct V1 {
        a: u64,
    }
    impl Layout for V1 {
        const KIND: u16 = 0x33;
        const VERSION: u16 = 1;
        const BACKUP: bool = true;
    }
    #[repr(C)]
    #[derive(Clone, Copy, Pod, Zeroable, Debug, PartialEq)]
    struct V2 {
        a: u64,
        b: u64,
    }
    impl Layout for V2 {
        const KIND: u16 = 0x33;
        const VERSION: u16 = 2;
        const BACKUP: bool = true;
    }

    #[test]
    fn a_migration_rewrites_both_copies_and_survives_a_stop_between_them() {
        let mut page = Page([0; 4096]);
        open::<V1>(&mut page.0).unwrap().state().a = 41;
        assert_eq!(layout_of(&page.0, 0x33), Some(1));
        assert!(matches!(
            open::<V2>(&mut page.0.clone()),
            Err(Broken::WrongVersion { found: 1, expected: 2 })
        ));
        let before = page.0;
        migrate::<V1, V2>(&mut page.0, |old| V2 { a: old.a + 1, b: 7 }).unwrap();
        assert_eq!(layout_of(&page.0, 0x33), Some(2));
        assert_eq!(*open::<V2>(&mut page.0).unwrap().get(), V2 { a: 42, b: 7 });
        // Stopped after the backup, before the primary: the new state is found in the backup.
        let mut half = before;
        half[BACKUP_OFFSET..BACKUP_OFFSET + 4096 - BACKUP_OFFSET].copy_from_slice(&page.0[BACKUP_OFFSET..]);
        let mut half = Page(half);
        let r = open::<V2>(&mut half.0).unwrap();
        assert_eq!(*r.get(), V2 { a: 42, b: 7 });
        // Nothing of the old layout that checks: nothing written.
        let mut blank = Page([0; 4096]);
        assert!(migrate::<V1, V2>(&mut blank.0, |old| V2 { a: old.a, b: 0 }).is_err());
        assert!(blank.0.iter().all(|&b| b == 0));
    }

    /// The kernel reads a client state's kind and layout version where this library writes
    /// them, to refuse an update that cannot read it (`task_update`).
    #[test]
    fn the_kernel_finds_kind_and_version_where_they_are() {
        assert_eq!(MAGIC, axolotl_abi::SSR_MAGIC);
        assert_eq!(BACKUP_OFFSET, axolotl_abi::SSR_BACKUP_OFFSET);
        let h = Header { magic: MAGIC, kind: 0x1234, version: 7, len: 0, checksum: 0 };
        let b = bytemuck::bytes_of(&h);
        assert_eq!(
            (
                u32::from_le_bytes(b[0..4].try_into().unwrap()),
                u16::from_le_bytes([b[4], b[5]]),
                u16::from_le_bytes([b[6], b[7]])
            ),
            (MAGIC, 0x1234, 7)
        );
    }

    #[repr(C)]
    #[derive(Clone, Copy, Pod, Zeroable, Debug, PartialEq)]
    struct Files {
        count: u32,
        offsets: [u32; 3],
    }

    impl Layout for Files {
        const KIND: u16 = 7;
        const VERSION: u16 = 2;
        fn fresh() -> Self {
            Files { count: 0, offsets: [0; 3] }
        }
        fn check(&self) -> Result<(), Broken> {
            if self.count > 3 {
                return Err(Broken::Inconsistent("open-file count beyond the table"));
            }
            Ok(())
        }
    }

    #[repr(C)]
    #[derive(Clone, Copy, Pod, Zeroable)]
    struct Other {
        x: u64,
    }
    impl Layout for Other {
        const KIND: u16 = 8;
        const VERSION: u16 = 1;
    }

    /// `Files` with a backup copy.
    #[repr(C)]
    #[derive(Clone, Copy, Pod, Zeroable, Debug, PartialEq)]
    struct Kept(Files);
    impl Layout for Kept {
        const KIND: u16 = 9;
        const VERSION: u16 = 1;
        const BACKUP: bool = true;
    }

    #[test]
    fn a_broken_primary_is_repaired_from_the_backup() {
        let mut p = page();
        open::<Kept>(&mut p.0).unwrap().state().0.offsets = [1, 2, 3];
        // Corrupt one word of the primary state: the backup brings it back.
        p.0[HEADER_LEN + 4] ^= 0x40;
        let r = open_or_reset::<Kept>(&mut p.0).unwrap();
        assert!(matches!(r.origin, Origin::Repaired(Broken::BadChecksum { .. })));
        assert_eq!(r.get().0.offsets, [1, 2, 3]);
        drop(r);
        // Repaired and resealed: the primary is good again.
        assert_eq!(open::<Kept>(&mut p.0).unwrap().origin, Origin::Existing);
        // A broken backup alone changes nothing, and is rewritten by the next seal.
        p.0[BACKUP_OFFSET + HEADER_LEN] ^= 1;
        assert_eq!(open::<Kept>(&mut p.0).unwrap().get().0.offsets, [1, 2, 3]);
        assert!(verify_copy::<Kept>(&p.0[BACKUP_OFFSET..BACKUP_OFFSET + HEADER_LEN + 16]).is_ok());
    }

    #[test]
    fn a_server_dying_in_a_sessions_first_request_leaves_it_fresh() {
        let mut p = page();
        let mut r = open::<Kept>(&mut p.0).unwrap();
        assert_eq!(r.origin, Origin::Fresh);
        r.state().0.count = 2;
        core::mem::forget(r); // torn: the server died before sealing
        let r = open_or_reset::<Kept>(&mut p.0).unwrap();
        assert!(matches!(r.origin, Origin::Repaired(_)), "restored to the fresh state");
        assert_eq!(r.get().0.count, 0);
    }

    #[test]
    fn a_corrupted_word_in_an_unused_pages_backup_is_still_a_fresh_session() {
        let mut p = page();
        p.0[BACKUP_OFFSET..BACKUP_OFFSET + 8].copy_from_slice(&0x1234_5678_9abc_def0u64.to_le_bytes());
        assert_eq!(open_or_reset::<Kept>(&mut p.0).unwrap().origin, Origin::Fresh);
    }

    #[test]
    fn a_misaligned_buffer_is_an_error_not_a_panic() {
        let mut p = page();
        written(&mut p);
        assert_eq!(verify::<Files>(&p.0[1..64]).err(), Some(Broken::Misaligned));
        assert_eq!(open::<Files>(&mut p.0[2..]).err(), Some(Broken::Misaligned));
    }

    #[test]
    fn both_copies_broken_is_a_reset() {
        let mut p = page();
        open::<Kept>(&mut p.0).unwrap().state().0.count = 1;
        p.0[0] ^= 1;
        p.0[BACKUP_OFFSET] ^= 1;
        assert_eq!(open_or_reset::<Kept>(&mut p.0).err(), Some(Broken::BadMagic(MAGIC ^ 1)));
        assert!(p.0.iter().all(|&b| b == 0), "both copies wiped");
        assert_eq!(open::<Kept>(&mut p.0).unwrap().origin, Origin::Fresh);
    }

    #[test]
    fn a_view_reads_the_backup_when_the_primary_is_broken() {
        let mut p = page();
        open::<Kept>(&mut p.0).unwrap().state().0.count = 3;
        p.0[HEADER_LEN] ^= 0x10;
        assert_eq!(verify::<Kept>(&p.0).map(|k| k.0.count), Ok(3));
        assert!(verify::<Kept>(&p.0[..HEADER_LEN + 16]).is_err(), "without the backup in reach");
    }

    #[repr(C, align(4096))]
    struct Page([u8; 4096]);

    fn page() -> Page {
        Page([0; 4096])
    }

    fn written(p: &mut Page) {
        let mut r = open::<Files>(&mut p.0).unwrap();
        assert_eq!(r.origin, Origin::Fresh);
        r.state().count = 2;
        r.state().offsets = [10, 20, 0];
    }

    #[test]
    fn fresh_then_existing_with_state_kept() {
        let mut p = page();
        written(&mut p);
        let r = open::<Files>(&mut p.0).unwrap();
        assert_eq!(r.origin, Origin::Existing);
        assert_eq!(r.get().offsets, [10, 20, 0]);
        drop(r);
        assert_eq!(verify::<Files>(&p.0).unwrap().count, 2);
    }

    #[test]
    fn a_flipped_bit_in_the_state_is_caught_by_the_checksum() {
        let mut p = page();
        written(&mut p);
        p.0[HEADER_LEN + 5] ^= 0x10;
        assert!(matches!(open::<Files>(&mut p.0), Err(Broken::BadChecksum { .. })));
    }

    #[test]
    fn header_corruption_is_named() {
        let mut p = page();
        written(&mut p);
        p.0[0] ^= 1;
        assert_eq!(open::<Files>(&mut p.0).err(), Some(Broken::BadMagic(MAGIC ^ 1)));
        p.0[0] ^= 1;
        assert_eq!(open::<Other>(&mut p.0).err(), Some(Broken::WrongKind { found: 7, expected: 8 }));
        p.0[6] = 9;
        assert_eq!(open::<Files>(&mut p.0).err(), Some(Broken::WrongVersion { found: 9, expected: 2 }));
        p.0[6] = 2;
        p.0[8] = 99;
        assert_eq!(open::<Files>(&mut p.0).err(), Some(Broken::WrongLength { found: 99, expected: 16 }));
    }

    #[test]
    fn server_checks_run_and_a_fresh_region_never_fails_them() {
        let mut p = page();
        {
            let mut r = open::<Files>(&mut p.0).unwrap();
            // A server bug writes an impossible count; the seal makes the checksum match it,
            // so only the server's own range check can catch it.
            r.state().count = 99;
        }
        assert_eq!(
            open::<Files>(&mut p.0).err(),
            Some(Broken::Inconsistent("open-file count beyond the table"))
        );
        assert_eq!(
            verify::<Files>(&p.0).err(),
            Some(Broken::Inconsistent("open-file count beyond the table"))
        );
        let r = reset::<Files>(&mut p.0).unwrap();
        assert_eq!((r.origin, r.get().count), (Origin::Fresh, 0));
    }

    #[test]
    fn open_or_reset_wipes_a_broken_region_and_keeps_a_good_one() {
        let mut p = page();
        written(&mut p);
        assert_eq!(open_or_reset::<Files>(&mut p.0).unwrap().get().count, 2);
        p.0[HEADER_LEN + 5] ^= 0x10;
        assert!(matches!(open_or_reset::<Files>(&mut p.0), Err(Broken::BadChecksum { .. })));
        let r = open::<Files>(&mut p.0).unwrap();
        assert_eq!((r.origin, r.get().count), (Origin::Fresh, 0), "the next open starts afresh");
    }

    #[test]
    fn too_small_regions_and_garbage() {
        let mut small = [0u8; 8];
        assert_eq!(open::<Files>(&mut small).err(), Some(Broken::TooSmall { have: 8, need: 32 }));
        let mut p = page();
        p.0[HEADER_LEN + 1] = 1; // zero header, non-zero state: not a fresh region
        assert_eq!(open::<Files>(&mut p.0).err(), Some(Broken::BadMagic(0)));
    }

    /// Every single flipped bit of a state the size of fs's (296 bytes), and of its length's
    /// tail, changes the sum: 64-bit words folded to 32 bits lose none.
    #[test]
    fn checksum_sees_every_single_bit_flip() {
        let fills: [fn(usize) -> u8; 3] = [|i| (i * 73 + 5) as u8, |_| 0, |_| 0xFF];
        for (len, fill) in [296usize, 300].into_iter().flat_map(|len| fills.map(|f| (len, f))) {
            let data: [u8; 300] = core::array::from_fn(fill);
            let sum = checksum(&data[..len]);
            for bit in 0..len * 8 {
                let mut d = data;
                d[bit / 8] ^= 1 << (bit % 8);
                assert_ne!(checksum(&d[..len]), sum, "length {len}, bit {bit}");
            }
        }
    }

    #[test]
    fn checksum_sees_order_and_position() {
        assert_ne!(checksum(&[1, 0, 0, 0, 2, 0, 0, 0]), checksum(&[2, 0, 0, 0, 1, 0, 0, 0]));
        let (x, y): ([u8; 16], [u8; 16]) = (
            [1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0],
            [2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0],
        );
        assert_ne!(checksum(&x), checksum(&y), "two words swapped");
        assert_ne!(checksum(&[0; 8]), checksum(&[0; 12]));
        assert_eq!(checksum(b"abc"), checksum(b"abc\0"));
    }
}
