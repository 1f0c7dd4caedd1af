//! Mounting and formatting (`volume`): a device that holds anything but this file system or
//! zeros is refused and not written; formatting takes `force` where files would be lost, and
//! leaves every descriptor opened before it stale.

use super::{assert_clean, Ram};
use crate::layout::{MAX_BLOCKS, SUPER_MAGIC};
use crate::*;
use core::cell::Cell;
use std::vec::Vec;

extern crate std;

const RW: u8 = mode::READ | mode::WRITE | mode::CREATE;

/// A device of `blocks` zeros with `bytes` put at byte `at` of block `block`.
fn holding(blocks: usize, block: u32, at: usize, bytes: &[u8]) -> Ram {
    let ram = Ram::new(blocks);
    ram.poke(block, at, bytes);
    ram
}

/// What an ext2 file system's superblock puts on a disk: at byte 1024 (block 2), its counts
/// of inodes and blocks, and its magic number 0xEF53 at offset 56 of the superblock.
fn ext2() -> Ram {
    let ram = holding(1024, 2, 0, &[0x80, 0, 0, 0, 0, 4, 0, 0]);
    ram.poke(2, 56, &0xEF53u16.to_le_bytes());
    ram
}

/// A FAT boot sector in block 0: the jump, the OEM name and the 0x55AA signature.
fn fat() -> Ram {
    let ram = holding(1024, 0, 0, b"\xEB\x3C\x90MSDOS5.0\x00\x02");
    ram.poke(0, 510, &[0x55, 0xAA]);
    ram
}

/// `ram` is refused with `why`, and left exactly as it was.
#[track_caller]
fn refused(ram: &Ram, why: FsError) {
    let before = ram.snapshot();
    let (v, formatted) = Volume::mount(ram).unwrap();
    assert!(!formatted);
    assert_eq!(v.refused(), Some(why));
    assert_eq!(v.disk().err(), Some(why), "every request is answered with the reason");
    assert_eq!(Disk::mount(ram).err(), Some(why));
    assert_eq!(Volume::attach(ram).unwrap().refused(), Some(why), "a restarted server refuses it too");
    assert_eq!(Disk::attach(ram).err(), Some(why));
    assert_eq!(ram.writes.get(), 0, "not one block was written");
    assert!(ram.snapshot() == before);
}

#[test]
fn a_foreign_disk_is_refused_and_not_one_block_written() {
    refused(&ext2(), FsError::Foreign);
    refused(&fat(), FsError::Foreign);
    // One stray byte in the last block the file system would use.
    refused(&holding(512, 511, BLOCK_SIZE - 1, &[1]), FsError::Foreign);
    refused(&holding(MAX_BLOCKS as usize + 8, MAX_BLOCKS - 1, 0, &[1]), FsError::Foreign);
}

#[test]
fn our_magic_with_another_version_or_size_is_refused_as_such() {
    let ram = Ram::new(512);
    Disk::mount(&ram).unwrap();
    let mut image = ram.snapshot();
    // Version 1, before the journal: its data blocks start where version 2 keeps its journal.
    let other_version = Ram::holding(image.clone());
    other_version.poke(0, 4, &1u32.to_le_bytes());
    refused(&other_version, FsError::OtherFormat);
    image.resize(600, [0; BLOCK_SIZE]);
    refused(&Ram::holding(image), FsError::OtherFormat);
    assert_eq!(SUPER_MAGIC.to_le_bytes(), ram.snapshot()[0][..4]);
}

#[test]
fn a_blank_disk_is_formatted_and_a_formatted_one_mounted_with_its_files() {
    let ram = Ram::new(512);
    let (v, formatted) = Volume::mount(&ram).unwrap();
    assert!(formatted && v.refused().is_none());
    assert_eq!((v.blocks(), v.device_blocks()), (512, 512));
    let d = v.disk().unwrap();
    assert_clean(d);
    let st = ClientState::fresh();
    st.mkdir(d, "/d").unwrap();
    st.put(d, "/d/f", b"kept", false, Held::unseen).unwrap();
    let writes = ram.writes.get();
    let (v, formatted) = Volume::mount(&ram).unwrap();
    assert!(!formatted);
    assert_eq!(ram.writes.get(), writes, "mounting wrote nothing");
    assert_eq!(st.stat(v.disk().unwrap(), "/d/f").unwrap(), (KIND_FILE, 4));

    // Only what the file system spans must be blank: a byte past it is not its business.
    let big = holding(MAX_BLOCKS as usize + 8, MAX_BLOCKS, 0, &[1]);
    let (v, formatted) = Volume::mount(&big).unwrap();
    assert!(formatted);
    assert_eq!((v.blocks(), v.device_blocks()), (MAX_BLOCKS, MAX_BLOCKS + 8));
    assert_eq!(big.snapshot()[MAX_BLOCKS as usize][0], 1);
}

#[test]
fn format_takes_a_refused_disk_and_force_to_erase_files() {
    let ram = ext2();
    let (mut v, _) = Volume::mount(&ram).unwrap();
    v.format(false).unwrap();
    assert!(v.refused().is_none());
    let st = ClientState::fresh();
    st.put(v.disk().unwrap(), "/a", b"x", false, Held::unseen).unwrap();
    assert_clean(v.disk().unwrap());
    assert!(!Volume::mount(&ram).unwrap().1, "formatted: mounted from now on");

    let writes = ram.writes.get();
    assert_eq!(v.format(false), Err(FsError::HoldsFiles));
    assert_eq!(ram.writes.get(), writes, "a refused format writes nothing");
    assert_eq!(st.stat(v.disk().unwrap(), "/a").unwrap(), (KIND_FILE, 1));
    v.format(true).unwrap();
    let d = v.disk().unwrap();
    assert_eq!(st.stat(d, "/a"), Err(FsError::NotFound));
    let r = assert_clean(d);
    assert_eq!((r.inodes, r.blocks), (1, 35), "the root alone, and the metadata blocks (journal included)");
    // Nothing to lose: no force needed.
    v.format(false).unwrap();
}

#[test]
fn a_descriptor_opened_before_a_format_never_reaches_a_later_file() {
    let ram = Ram::new(512);
    let (mut v, _) = Volume::mount(&ram).unwrap();
    let mut a = ClientState::fresh();
    let fd = a.open(v.disk().unwrap(), "/mine", RW, Held::unseen).unwrap();
    a.write(v.disk().unwrap(), fd, b"mine").unwrap();
    for _ in 0..3 {
        v.format(true).unwrap();
        // The first file made takes the same inode as `/mine` did.
        let d = v.disk().unwrap();
        ClientState::fresh().put(d, "/theirs", b"someone else's", false, Held::unseen).unwrap();
        a.seek(fd, 0).unwrap();
        let mut out = [0u8; 16];
        assert_eq!(a.read(d, fd, &mut out), Err(FsError::BadFd));
        assert_eq!(a.write(d, fd, b"over"), Err(FsError::BadFd));
        assert_eq!(ClientState::fresh().stat(d, "/theirs").unwrap(), (KIND_FILE, 14));
    }
}

/// A device that fails every write after the first `left`.
struct Cut<'r> {
    ram: &'r Ram,
    left: Cell<u32>,
}

impl BlockDevice for Cut<'_> {
    fn blocks(&self) -> Option<u32> {
        self.ram.blocks()
    }
    fn read(&self, b: u32, out: &mut Block) -> bool {
        self.ram.read(b, out)
    }
    fn write(&self, b: u32, data: &Block) -> bool {
        let ok = self.left.get() > 0;
        self.left.set(self.left.get().saturating_sub(1));
        ok && self.ram.write(b, data)
    }
}

#[test]
fn a_format_cut_short_is_refused_next_time_never_mounted_half_made() {
    let ram = Ram::new(256);
    let (v, _) = Volume::mount(&ram).unwrap();
    let st = ClientState::fresh();
    st.mkdir(v.disk().unwrap(), "/d").unwrap();
    st.put(v.disk().unwrap(), "/d/f", &[9; 1500], false, Held::unseen).unwrap();
    let image = ram.snapshot();
    let mut outcomes = Vec::new();
    for left in 0..30 {
        let ram = Ram::holding(image.clone());
        let (mut v, _) = Volume::mount(Cut { ram: &ram, left: Cell::new(left) }).unwrap();
        let done = v.format(true).is_ok();
        let (after, _) = Volume::mount(&ram).unwrap();
        match after.disk() {
            Ok(d) => {
                let files = st.stat(d, "/d/f").is_ok();
                assert_eq!(files, left == 0, "old files only if nothing was written ({left})");
                assert_eq!(done, !files);
                assert_clean(d);
            }
            Err(why) => {
                assert!(!done && why == FsError::Foreign, "cut after {left} writes: {why:?}");
            }
        }
        outcomes.push((done, after.refused().is_some()));
    }
    assert!(outcomes.contains(&(false, true)) && outcomes.contains(&(true, false)));
}
