//! The file system checker: reads the whole disk and reports every way it breaks the format's
//! rules. It changes nothing.
//!
//! What a consistent disk looks like: the superblock describes the device; the root is a
//! directory; walking from it reaches every live inode exactly once (the directories form a
//! tree: no hard links, no cycles) and every entry names a live inode of the kind the entry
//! says, under a valid name that is unique in its directory; every block an inode points at
//! lies in the data area, within the file's size, and belongs to that inode alone; the bitmap
//! marks exactly the metadata blocks and the blocks reached; a free inode holds nothing.

use crate::disk::{Disk, Load, Store};
use crate::layout::*;
use crate::{BlockDevice, Result};
use bytemuck::{Pod, Zeroable};
use core::fmt;

/// How many problems a [`Report`] lists; it counts them all.
pub const LISTED: usize = 8;

/// One way the disk breaks the format's rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The superblock does not describe this device.
    Superblock,
    /// The root inode is not a directory.
    Root,
    /// An inode's kind is neither free, file nor directory.
    Kind { inode: u16 },
    /// A size past the largest file, or a directory's size that is not whole entries.
    Size { inode: u16 },
    /// A block pointer outside the data area.
    OutOfRange { inode: u16, block: u16 },
    /// A block mapped past the end of the file.
    PastEnd { inode: u16, block: u16 },
    /// A block `inode` points at that something else points at too.
    Shared { inode: u16, block: u16 },
    /// A block in use that the bitmap calls free.
    MarkedFree { block: u16 },
    /// A block the bitmap calls used that nothing reaches.
    LeakedBlock { block: u16 },
    /// A live inode that no entry names.
    LeakedInode { inode: u16 },
    /// A free inode that still has a size or blocks.
    FreeNotEmpty { inode: u16 },
    /// An entry of `dir` naming an inode that is free or does not exist.
    DanglingEntry { dir: u16, inode: u16 },
    /// An entry of `dir` whose kind is not its inode's.
    WrongKind { dir: u16, inode: u16 },
    /// An inode named by a second entry (in `dir`), or a directory inside itself.
    NamedTwice { dir: u16, inode: u16 },
    /// An entry of `dir` with an empty, over-long, `.`, `..`, non-UTF-8 or `/`-holding name.
    BadName { dir: u16, inode: u16 },
    /// Two entries of `dir` with the same name (`inode` is the second's).
    DuplicateName { dir: u16, inode: u16 },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Problem::*;
        match *self {
            Superblock => write!(f, "the superblock does not describe this disk"),
            Root => write!(f, "the root is not a directory"),
            Kind { inode } => write!(f, "inode {inode}: unknown kind"),
            Size { inode } => write!(f, "inode {inode}: impossible size"),
            OutOfRange { inode, block } => write!(f, "inode {inode}: block {block} is outside the data area"),
            PastEnd { inode, block } => write!(f, "inode {inode}: block {block} is mapped past the end"),
            Shared { inode, block } => write!(f, "inode {inode}: block {block} is also used elsewhere"),
            MarkedFree { block } => write!(f, "block {block}: in use but free in the bitmap"),
            LeakedBlock { block } => write!(f, "block {block}: used in the bitmap but unreachable (leaked)"),
            LeakedInode { inode } => write!(f, "inode {inode}: in use but in no directory (leaked)"),
            FreeNotEmpty { inode } => write!(f, "inode {inode}: free but holds blocks or a size"),
            DanglingEntry { dir, inode } => write!(f, "directory {dir}: entry names free inode {inode}"),
            WrongKind { dir, inode } => {
                write!(f, "directory {dir}: entry for inode {inode} has the wrong kind")
            }
            NamedTwice { dir, inode } => {
                write!(f, "directory {dir}: inode {inode} is already named elsewhere")
            }
            BadName { dir, inode } => write!(f, "directory {dir}: entry for inode {inode} has a bad name"),
            DuplicateName { dir, inode } => {
                write!(f, "directory {dir}: entry for inode {inode} repeats another's name")
            }
        }
    }
}

impl Problem {
    /// As three numbers: which problem (its place in the list above), then its inode or
    /// directory and its inode or block, 0 where it has none.
    pub fn raw(self) -> [u16; 3] {
        use Problem::*;
        match self {
            Superblock => [0, 0, 0],
            Root => [1, 0, 0],
            Kind { inode } => [2, inode, 0],
            Size { inode } => [3, inode, 0],
            OutOfRange { inode, block } => [4, inode, block],
            PastEnd { inode, block } => [5, inode, block],
            Shared { inode, block } => [6, inode, block],
            MarkedFree { block } => [7, block, 0],
            LeakedBlock { block } => [8, block, 0],
            LeakedInode { inode } => [9, inode, 0],
            FreeNotEmpty { inode } => [10, inode, 0],
            DanglingEntry { dir, inode } => [11, dir, inode],
            WrongKind { dir, inode } => [12, dir, inode],
            NamedTwice { dir, inode } => [13, dir, inode],
            BadName { dir, inode } => [14, dir, inode],
            DuplicateName { dir, inode } => [15, dir, inode],
        }
    }

    /// The problem [`raw`](Self::raw) gave these numbers, if any did.
    fn from_raw([kind, a, b]: [u16; 3]) -> Option<Problem> {
        use Problem::*;
        Some(match kind {
            0 => Superblock,
            1 => Root,
            2 => Kind { inode: a },
            3 => Size { inode: a },
            4 => OutOfRange { inode: a, block: b },
            5 => PastEnd { inode: a, block: b },
            6 => Shared { inode: a, block: b },
            7 => MarkedFree { block: a },
            8 => LeakedBlock { block: a },
            9 => LeakedInode { inode: a },
            10 => FreeNotEmpty { inode: a },
            11 => DanglingEntry { dir: a, inode: b },
            12 => WrongKind { dir: a, inode: b },
            13 => NamedTwice { dir: a, inode: b },
            14 => BadName { dir: a, inode: b },
            15 => DuplicateName { dir: a, inode: b },
            _ => return None,
        })
    }
}

/// What [`fsck`] found: the problems (the first [`LISTED`] of them, and how many in all) and
/// what is in use. Plain numbers (each problem as [`Problem::raw`] gives it), so that it
/// crosses the microkernel's wire as its bytes: the derived encoding of a list of enums cost
/// the file server 1.5 KB of code, which every restart loads again.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct Report {
    /// Inodes in use (the root included), of `inodes_total` (inode 0 is never used).
    pub inodes: u16,
    pub inodes_total: u16,
    /// Blocks the bitmap marks in use (metadata included), of `blocks_total`.
    pub blocks: u32,
    pub blocks_total: u32,
    /// Problems found in all.
    pub found: u32,
    listed: [[u16; 3]; LISTED],
}

impl Report {
    /// A report with no problems (yet).
    pub fn new(inodes: u16, inodes_total: u16, blocks: u32, blocks_total: u32) -> Report {
        Report { inodes, inodes_total, blocks, blocks_total, found: 0, listed: [[0; 3]; LISTED] }
    }

    /// Count a problem; list it if there is room.
    pub fn add(&mut self, p: Problem) {
        if let Some(slot) = self.listed.get_mut(self.found as usize) {
            *slot = p.raw();
        }
        self.found += 1;
    }

    pub fn is_clean(&self) -> bool {
        self.found == 0
    }

    /// The problems listed, in the order they were found.
    pub fn problems(&self) -> impl Iterator<Item = Problem> + '_ {
        self.listed[..(self.found as usize).min(LISTED)].iter().filter_map(|&raw| Problem::from_raw(raw))
    }

    /// Whether every problem listed is one [`Problem`] knows (a report from elsewhere).
    pub fn is_valid(&self) -> bool {
        self.listed[..(self.found as usize).min(LISTED)].iter().all(|&raw| Problem::from_raw(raw).is_some())
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Report {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.serialize_bytes(bytemuck::bytes_of(self))
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Report {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> core::result::Result<Report, D::Error> {
        struct Bytes;
        impl serde::de::Visitor<'_> for Bytes {
            type Value = Report;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "the {} bytes of an fsck report", core::mem::size_of::<Report>())
            }

            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> core::result::Result<Report, E> {
                if v.len() != core::mem::size_of::<Report>() {
                    return Err(E::invalid_length(v.len(), &self));
                }
                let r: Report = bytemuck::pod_read_unaligned(v);
                r.is_valid().then_some(r).ok_or_else(|| E::custom("unknown fsck problem"))
            }
        }
        d.deserialize_bytes(Bytes)
    }
}

/// A bit set over `N` bytes.
struct Bits<const N: usize>([u8; N]);

impl<const N: usize> Bits<N> {
    /// Set bit `i`; whether it was set already.
    fn mark(&mut self, i: usize) -> bool {
        let was = self.get(i);
        self.0[i / 8] |= 1 << (i % 8);
        was
    }

    fn get(&self, i: usize) -> bool {
        self.0[i / 8] & (1 << (i % 8)) != 0
    }
}

/// The checker's state: the inode table, and what the walk has reached so far.
struct Check<'d, D: BlockDevice> {
    disk: &'d Disk<D>,
    table: [Inode; INODES as usize],
    inodes: Bits<{ INODES as usize / 8 }>,
    blocks: Bits<{ MAX_BLOCKS as usize / 8 }>,
    report: Report,
}

/// Check the whole disk.
pub fn fsck<D: BlockDevice>(disk: &Disk<D>) -> Result<Report> {
    let total = disk.blocks();
    let mut c = Check {
        disk,
        table: [Inode::default(); INODES as usize],
        inodes: Bits([0; INODES as usize / 8]),
        blocks: Bits([0; MAX_BLOCKS as usize / 8]),
        report: Report::new(0, INODES - 1, 0, total),
    };
    let mut block = [0u8; BLOCK_SIZE];
    disk.load(0, &mut block)?;
    let sb: Super = bytemuck::pod_read_unaligned(&block[..16]);
    if sb.magic != SUPER_MAGIC || sb.version != VERSION || sb.blocks != total || sb.inodes != INODES as u32 {
        c.report.add(Problem::Superblock);
    }
    for t in 0..INODE_BLOCKS {
        disk.load(INODE_START + t, &mut block)?;
        for k in 0..INODES_PER_BLOCK {
            let i = t as usize * INODES_PER_BLOCK + k;
            c.table[i] = Inode::from_block(&block, i as u16);
        }
    }
    for b in 0..DATA_START {
        c.blocks.mark(b as usize);
    }
    c.walk()?;
    c.inodes_alone();
    let mut bitmap = [0u8; BLOCK_SIZE];
    disk.load(BITMAP_BLOCK, &mut bitmap)?;
    for b in 0..total {
        let (used, reached) = (bit(&bitmap, b), c.blocks.get(b as usize));
        if used {
            c.report.blocks += 1;
        }
        match (used, reached) {
            (true, false) => c.report.add(Problem::LeakedBlock { block: b as u16 }),
            (false, true) => c.report.add(Problem::MarkedFree { block: b as u16 }),
            _ => {}
        }
    }
    Ok(c.report)
}

impl<D: BlockDevice> Check<'_, D> {
    /// Walk the tree from the root, breadth first (a queue, not recursion: a deep tree must not
    /// need a deep stack), checking each inode's blocks once and each directory's entries.
    fn walk(&mut self) -> Result<()> {
        if self.table[ROOT as usize].kind != KIND_DIR {
            self.report.add(Problem::Root);
            return Ok(());
        }
        let mut queue = [0u16; INODES as usize];
        let (mut head, mut tail) = (0, 1);
        queue[0] = ROOT;
        self.inodes.mark(ROOT as usize);
        self.blocks_of(ROOT)?;
        while head < tail {
            let dir = queue[head];
            head += 1;
            let inode = self.table[dir as usize];
            let mut block = [0u8; BLOCK_SIZE];
            let slots = inode.size as usize / ENTRY;
            // A filter of the names seen in this directory: only a name whose bit is set
            // already is compared with the earlier entries, which means reading them again.
            let mut names = Bits([0u8; BLOCK_SIZE]);
            for slot in 0..slots {
                if slot % ENTRIES_PER_BLOCK == 0 {
                    self.dir_block(&inode, slot / ENTRIES_PER_BLOCK, &mut block)?;
                }
                let e = DirEntry::from_block(&block, slot % ENTRIES_PER_BLOCK);
                if e.inode == 0 {
                    continue;
                }
                if !valid_name(&e) {
                    self.report.add(Problem::BadName { dir, inode: e.inode });
                }
                if names.mark(name_hash(e.name()) % (BLOCK_SIZE * 8))
                    && self.named_before(&inode, slot, &e, &block)?
                {
                    self.report.add(Problem::DuplicateName { dir, inode: e.inode });
                }
                let kind = self.table.get(e.inode as usize).map_or(0, |i| i.kind);
                if e.inode >= INODES || kind == 0 {
                    self.report.add(Problem::DanglingEntry { dir, inode: e.inode });
                    continue;
                }
                if e.kind != kind {
                    self.report.add(Problem::WrongKind { dir, inode: e.inode });
                }
                if self.inodes.mark(e.inode as usize) {
                    self.report.add(Problem::NamedTwice { dir, inode: e.inode });
                    continue;
                }
                self.blocks_of(e.inode)?;
                if kind == KIND_DIR {
                    queue[tail] = e.inode;
                    tail += 1;
                }
            }
        }
        Ok(())
    }

    /// Block `idx` of directory `dir` into `out` (zeros for a hole).
    fn dir_block(&self, dir: &Inode, idx: usize, out: &mut Block) -> Result<()> {
        match self.disk.block_of(dir, idx)? {
            Some(b) if (DATA_START..self.disk.blocks()).contains(&(b as u32)) => {
                self.disk.load(b as u32, out)
            }
            _ => {
                out.fill(0);
                Ok(())
            }
        }
    }

    /// Whether an entry before `slot` in directory `dir` has `e`'s name. `block` holds the
    /// slot's own block; earlier blocks are read again (directories are small).
    fn named_before(&self, dir: &Inode, slot: usize, e: &DirEntry, block: &Block) -> Result<bool> {
        let first = slot - slot % ENTRIES_PER_BLOCK;
        let same = |other: &DirEntry| other.inode != 0 && other.name() == e.name();
        if (first..slot).any(|s| same(&DirEntry::from_block(block, s - first))) {
            return Ok(true);
        }
        let mut earlier = [0u8; BLOCK_SIZE];
        for idx in 0..first / ENTRIES_PER_BLOCK {
            self.dir_block(dir, idx, &mut earlier)?;
            if (0..ENTRIES_PER_BLOCK).any(|s| same(&DirEntry::from_block(&earlier, s))) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Mark the blocks of inode `ino` reached, checking each pointer.
    fn blocks_of(&mut self, ino: u16) -> Result<()> {
        let inode = self.table[ino as usize];
        let limit = if inode.kind == KIND_DIR { MAX_FILE - MAX_FILE % ENTRY as u32 } else { MAX_FILE };
        if inode.size > limit || (inode.kind == KIND_DIR && !(inode.size as usize).is_multiple_of(ENTRY)) {
            self.report.add(Problem::Size { inode: ino });
        }
        let end = (inode.size as usize).div_ceil(BLOCK_SIZE);
        for (idx, &b) in inode.direct.iter().enumerate() {
            self.pointer(ino, b, idx >= end);
        }
        if inode.indirect == 0 {
            return Ok(());
        }
        if !self.pointer(ino, inode.indirect, end <= DIRECT) {
            return Ok(()); // not a table we may read
        }
        let mut table = [0u8; BLOCK_SIZE];
        self.disk.load(inode.indirect as u32, &mut table)?;
        for (k, pair) in table.chunks(2).enumerate() {
            self.pointer(ino, u16::from_le_bytes([pair[0], pair[1]]), DIRECT + k >= end);
        }
        Ok(())
    }

    /// Check one block pointer of `ino` (0 is none); whether it is a usable data block.
    fn pointer(&mut self, ino: u16, b: u16, past_end: bool) -> bool {
        if b == 0 {
            return false;
        }
        if !(DATA_START..self.disk.blocks()).contains(&(b as u32)) {
            self.report.add(Problem::OutOfRange { inode: ino, block: b });
            return false;
        }
        if past_end {
            self.report.add(Problem::PastEnd { inode: ino, block: b });
        }
        if self.blocks.mark(b as usize) {
            self.report.add(Problem::Shared { inode: ino, block: b });
        }
        true
    }

    /// Every inode the walk did not reach must be free and empty.
    fn inodes_alone(&mut self) {
        for i in 1..INODES {
            let inode = self.table[i as usize];
            if inode.kind != 0 {
                self.report.inodes += 1;
            }
            if self.inodes.get(i as usize) {
                continue;
            }
            match inode.kind {
                0 if inode.size != 0 || inode.indirect != 0 || inode.direct.iter().any(|&b| b != 0) => {
                    self.report.add(Problem::FreeNotEmpty { inode: i })
                }
                0 => {}
                KIND_FILE | KIND_DIR => self.report.add(Problem::LeakedInode { inode: i }),
                _ => self.report.add(Problem::Kind { inode: i }),
            }
        }
    }
}

/// FNV-1a, for the filter of names seen.
fn name_hash(name: &[u8]) -> usize {
    name.iter().fold(0x811c_9dc5u32, |h, &b| (h ^ b as u32).wrapping_mul(0x0100_0193)) as usize
}

/// A name a path can reach: 1 to `NAME_MAX` bytes of UTF-8, not `.` or `..`, no `/`.
fn valid_name(e: &DirEntry) -> bool {
    let len = e.name_len as usize;
    let name = &e.name[..len.min(NAME_MAX)];
    (1..=NAME_MAX).contains(&len)
        && name != b"."
        && name != b".."
        && !name.contains(&b'/')
        && core::str::from_utf8(name).is_ok()
}
