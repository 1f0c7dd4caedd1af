//! Host tests of the file system: a RAM block device, the format and the change set, the
//! checker against disks broken on purpose, and (`random`) long random runs against a model.

extern crate std;

use crate::disk::Store;
use crate::layout::*;
use crate::tx::Tx;
use crate::*;
use core::cell::RefCell;
use std::vec::Vec;

mod crash;
mod mount;
mod random;
mod rules;

/// Blocks in RAM; counts the writes made to it.
pub(crate) struct Ram {
    blocks: RefCell<Vec<Block>>,
    pub writes: core::cell::Cell<u32>,
}

impl BlockDevice for Ram {
    fn blocks(&self) -> Option<u32> {
        Some(self.blocks.borrow().len() as u32)
    }
    fn read(&self, b: u32, out: &mut Block) -> bool {
        self.blocks.borrow().get(b as usize).map(|blk| *out = *blk).is_some()
    }
    fn write(&self, b: u32, data: &Block) -> bool {
        self.writes.set(self.writes.get() + 1);
        self.blocks.borrow_mut().get_mut(b as usize).map(|blk| *blk = *data).is_some()
    }
}

/// The same store, lent: a test keeps it to look at after what it lent it to is gone.
impl BlockDevice for &Ram {
    fn blocks(&self) -> Option<u32> {
        (*self).blocks()
    }
    fn read(&self, b: u32, out: &mut Block) -> bool {
        (*self).read(b, out)
    }
    fn write(&self, b: u32, data: &Block) -> bool {
        (*self).write(b, data)
    }
}

impl Ram {
    pub(crate) fn new(blocks: usize) -> Ram {
        Ram::holding(std::vec![[0u8; BLOCK_SIZE]; blocks])
    }

    /// A store holding `blocks`.
    pub(crate) fn holding(blocks: Vec<Block>) -> Ram {
        Ram { blocks: RefCell::new(blocks), writes: Default::default() }
    }

    /// Every block, as it is now.
    pub(crate) fn snapshot(&self) -> Vec<Block> {
        self.blocks.borrow().clone()
    }

    pub(crate) fn poke(&self, b: u32, at: usize, bytes: &[u8]) {
        self.blocks.borrow_mut()[b as usize][at..at + bytes.len()].copy_from_slice(bytes);
    }
}

impl Disk<Ram> {
    pub(crate) fn dev(&self) -> &Ram {
        self.device()
    }
}

/// A freshly formatted file system on `blocks` blocks of RAM.
pub(crate) fn disk_of(blocks: usize) -> Disk<Ram> {
    let (d, fresh) = Disk::mount(Ram::new(blocks)).unwrap();
    assert!(fresh);
    d
}

/// A freshly formatted file system on 512 blocks of RAM.
pub(crate) fn disk() -> Disk<Ram> {
    disk_of(512)
}

/// `fsck` must find nothing.
#[track_caller]
pub(crate) fn assert_clean<D: BlockDevice>(d: &Disk<D>) -> Report {
    let r = fsck(d).unwrap();
    assert!(r.is_clean(), "fsck: {:?}", r.problems().collect::<Vec<_>>());
    r
}

const RW: u8 = mode::READ | mode::WRITE | mode::CREATE;

#[test]
fn attach_finds_a_file_system_and_never_formats_a_store_without_one() {
    assert_eq!(Disk::attach(Ram::new(512)).err(), Some(FsError::Disk), "a blank store is not formatted");
    let d = disk();
    let st = ClientState::fresh();
    st.put(&d, "/kept", b"x", false, Held::unseen).unwrap();
    let again = Disk::attach(d.into_device()).unwrap();
    assert_eq!(
        ClientState::fresh().stat(&again, "/kept").unwrap().1,
        1,
        "the file system is found as it was"
    );
}

#[test]
fn entry_names_are_cut_at_a_character_boundary() {
    let long = "é".repeat(20);
    let e = Entry::new(&long, KIND_FILE, 0);
    assert_eq!(e.name(), "é".repeat(14));
}

#[test]
fn files_grow_read_back_and_truncate() {
    let d = disk();
    let mut st = ClientState::fresh();
    let fd = st.open(&d, "/f", RW, Held::unseen).unwrap();
    let data: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
    st.seek(fd, 100).unwrap();
    st.write(&d, fd, &data).unwrap();
    st.seek(fd, 0).unwrap();
    let mut back = std::vec![0u8; 3200];
    assert_eq!(st.read(&d, fd, &mut back).unwrap(), 3100);
    assert_eq!(&back[100..3100], &data[..]);
    assert!(back[..100].iter().all(|&b| b == 0), "the hole reads as zeros");
    assert_eq!(st.stat(&d, "/f").unwrap(), (KIND_FILE, 3100));
    let t = st.open(&d, "/f", mode::WRITE | mode::TRUNCATE, Held::unseen).unwrap();
    assert_eq!(st.stat(&d, "/f").unwrap(), (KIND_FILE, 0));
    st.close(t).unwrap();
    assert_clean(&d);
}

#[test]
fn remount_keeps_the_format_and_large_files_use_the_indirect_block() {
    let d = disk();
    let mut st = ClientState::fresh();
    let fd = st.open(&d, "/big", RW, Held::unseen).unwrap();
    let big = std::vec![7u8; (DIRECT + 3) * BLOCK_SIZE];
    st.write(&d, fd, &big).unwrap();
    let (ino, _) = d.resolve(&path::Path::new("/", "/big").unwrap()).unwrap();
    assert_ne!(d.inode(ino).unwrap().indirect, 0);
    st.seek(fd, MAX_FILE).unwrap();
    assert_eq!(st.write(&d, fd, b"x"), Err(FsError::FileTooLarge));
    assert_clean(&d);
    let (d2, fresh) = Disk::mount(d.into_device()).unwrap();
    assert!(!fresh);
    assert_eq!(st.stat(&d2, "/big").unwrap(), (KIND_FILE, big.len() as u32));
}

#[test]
fn an_operation_writes_only_what_it_changes() {
    let d = disk();
    let mut st = ClientState::fresh();
    let fd = st.open(&d, "/f", RW, Held::unseen).unwrap();
    st.write(&d, fd, &[1; 100]).unwrap();
    // In place, inside the size: the data block alone (the inode did not change), through the
    // journal: its image in a slot, the journal's header, then the block at home.
    let before = d.dev().writes.get();
    st.seek(fd, 10).unwrap();
    st.write(&d, fd, &[2; 10]).unwrap();
    assert_eq!(d.dev().writes.get() - before, 3);
    // Opening to read, and truncating an empty file, write nothing.
    let before = d.dev().writes.get();
    let e = st.open(&d, "/e", RW, Held::unseen).unwrap();
    let after_create = d.dev().writes.get();
    st.open(&d, "/e", mode::WRITE | mode::TRUNCATE, Held::unseen).unwrap();
    st.open(&d, "/f", mode::READ, Held::unseen).unwrap();
    assert_eq!(d.dev().writes.get(), after_create);
    assert!(after_create > before);
    st.close(e).unwrap();
}

#[test]
fn a_transaction_sees_its_own_changes_and_commits_nothing_when_dropped() {
    let d = disk();
    let before = d.dev().snapshot();
    {
        let mut tx = Tx::new(&d);
        let a = tx.new_inode(KIND_FILE).unwrap();
        let b = tx.new_inode(KIND_FILE).unwrap();
        assert_ne!(a, b, "the second allocation sees the first");
        tx.link(ROOT, b"a", a, KIND_FILE).unwrap();
        assert_eq!(tx.lookup(ROOT, b"a").unwrap().map(|(_, e)| e.inode), Some(a));
    } // dropped, never committed
    assert_eq!(d.dev().snapshot(), before);
    assert_eq!(d.lookup(ROOT, b"a").unwrap().map(|(_, e)| e.inode), None);
}

#[test]
fn fsck_reports_each_kind_of_damage() {
    let d = disk();
    let mut st = ClientState::fresh();
    st.mkdir(&d, "/d").unwrap();
    let fd = st.open(&d, "/d/f", RW, Held::unseen).unwrap();
    st.write(&d, fd, &[5; 700]).unwrap();
    let r = assert_clean(&d);
    assert_eq!((r.inodes, r.inodes_total), (3, INODES - 1));
    assert_eq!((r.blocks, r.blocks_total), (DATA_START + 4, 512), "root's, d's and f's two blocks");
    let (dir, _) = d.resolve(&path::Path::new("/", "/d").unwrap()).unwrap();
    let (file, _) = d.resolve(&path::Path::new("/", "/d/f").unwrap()).unwrap();
    let file_block = d.inode(file).unwrap().direct[0];
    let problems = |d: &Disk<Ram>| fsck(d).unwrap().problems().collect::<Vec<_>>();

    // A bit cleared in the bitmap: a block in use that is free.
    let snapshot = d.dev().snapshot();
    let mut map = snapshot[BITMAP_BLOCK as usize];
    set_bit(&mut map, file_block as u32, false);
    d.dev().poke(BITMAP_BLOCK, 0, &map);
    assert_eq!(problems(&d), [Problem::MarkedFree { block: file_block }]);
    // One set for nothing: a leaked block.
    set_bit(&mut map, file_block as u32, true);
    set_bit(&mut map, 500, true);
    d.dev().poke(BITMAP_BLOCK, 0, &map);
    assert_eq!(problems(&d), [Problem::LeakedBlock { block: 500 }]);
    d.dev().poke(BITMAP_BLOCK, 0, &snapshot[BITMAP_BLOCK as usize]);

    // An inode no entry names.
    let (b, off) = Inode::place(100);
    d.dev().poke(b, off, &[KIND_FILE]);
    assert_eq!(problems(&d), [Problem::LeakedInode { inode: 100 }]);
    d.dev().poke(b, off, &[0]);

    // The entry for f (slot 0 of d) naming another inode, then a name repeated, then a bad one.
    let d_block = d.inode(dir).unwrap().direct[0] as u32;
    d.dev().poke(d_block, 0, &100u16.to_le_bytes());
    let got = problems(&d);
    assert!(got.contains(&Problem::DanglingEntry { dir, inode: 100 }), "{got:?}");
    assert!(got.contains(&Problem::LeakedInode { inode: file }), "{got:?}");
    d.dev().poke(d_block, 0, &file.to_le_bytes());
    let mut twin = snapshot[d_block as usize];
    twin.copy_within(0..ENTRY, ENTRY);
    d.dev().poke(d_block, 0, &twin[..2 * ENTRY]);
    let (dir_at, dir_off) = Inode::place(dir);
    d.dev().poke(dir_at, dir_off + 4, &(2 * ENTRY as u32).to_le_bytes());
    let got = problems(&d);
    assert!(got.contains(&Problem::DuplicateName { dir, inode: file }), "{got:?}");
    assert!(got.contains(&Problem::NamedTwice { dir, inode: file }), "{got:?}");
    d.dev().poke(d_block, ENTRY, &[0; ENTRY]);
    d.dev().poke(dir_at, dir_off + 4, &(ENTRY as u32).to_le_bytes());
    d.dev().poke(d_block, 3, &[0]);
    assert_eq!(problems(&d), [Problem::BadName { dir, inode: file }]);
    d.dev().poke(d_block, 0, &snapshot[d_block as usize][..ENTRY]);

    // Two files sharing a block, and a pointer outside the data area.
    let (b, off) = Inode::place(file);
    let second = d.inode(file).unwrap().direct[1];
    d.dev().poke(b, off + 8 + 2, &file_block.to_le_bytes());
    let got = problems(&d);
    assert!(got.contains(&Problem::Shared { inode: file, block: file_block }), "{got:?}");
    assert!(got.contains(&Problem::LeakedBlock { block: second }), "{got:?}");
    d.dev().poke(b, off + 8 + 2, &3u16.to_le_bytes());
    assert!(problems(&d).contains(&Problem::OutOfRange { inode: file, block: 3 }));
    d.dev().poke(b, off + 8 + 2, &second.to_le_bytes());
    // A size too small for the blocks, and a directory of part of an entry.
    d.dev().poke(b, off + 4, &10u32.to_le_bytes());
    assert_eq!(problems(&d), [Problem::PastEnd { inode: file, block: second }]);
    d.dev().poke(b, off + 4, &700u32.to_le_bytes());
    d.dev().poke(dir_at, dir_off + 4, &(ENTRY as u32 + 1).to_le_bytes());
    assert_eq!(problems(&d), [Problem::Size { inode: dir }]);
    d.dev().poke(dir_at, dir_off + 4, &(ENTRY as u32).to_le_bytes());
    assert_eq!(d.dev().snapshot(), snapshot);
    assert_clean(&d);

    // The report lists the first few problems and counts them all.
    let mut map = snapshot[BITMAP_BLOCK as usize];
    for blk in 400..400 + 2 * LISTED as u32 {
        set_bit(&mut map, blk, true);
    }
    d.dev().poke(BITMAP_BLOCK, 0, &map);
    let r = fsck(&d).unwrap();
    assert_eq!((r.found, r.problems().count()), (2 * LISTED as u32, LISTED));
}
