//! The defects that made operations only half happen, each on the smallest disk that shows
//! it, and the rule for what other sessions hold.

use super::{assert_clean, disk, disk_of, Ram};
use crate::layout::{DATA_START, DIRECT, ENTRIES_PER_BLOCK};
use crate::*;
use std::format;

extern crate std;

const RW: u8 = mode::READ | mode::WRITE | mode::CREATE;

/// The other session `other`, as a server that can see it reports it.
fn seen(other: &ClientState) -> impl Fn(u16, &[u8]) -> Held + '_ {
    |ino, path| other.held(ino, path)
}

/// Give `/big` every free block; how many it took.
fn fill(d: &Disk<Ram>, st: &mut ClientState) -> u32 {
    let fd = st.open(d, "/big", RW, Held::unseen).unwrap();
    let mut n = 0;
    while st.write(d, fd, &[7u8; BLOCK_SIZE]).is_ok() {
        n += 1;
    }
    st.close(fd).unwrap();
    n
}

/// Run `op`, which must fail with `err`, and check it changed no block.
#[track_caller]
fn fails_cleanly<T: core::fmt::Debug>(d: &Disk<Ram>, err: FsError, op: impl FnOnce() -> Result<T>) {
    let before = d.dev().snapshot();
    assert_eq!(op().unwrap_err(), err);
    assert!(d.dev().snapshot() == before, "a failed operation changed the disk");
    assert_clean(d);
}

#[test]
fn a_failed_mkdir_leaves_no_inode_behind() {
    // 28 data blocks: the root's entry block and 27 direct blocks of /big, none left (with one
    // left over /big's next block would need two, its indirect table too, and mkdir would fit).
    let d = disk_of(DATA_START as usize + 28);
    let mut st = ClientState::fresh();
    // Fill the root's first entry block, then the disk: a new entry needs a new block.
    for i in 0..ENTRIES_PER_BLOCK - 1 {
        st.mkdir(&d, &format!("/d{i}")).unwrap();
    }
    fill(&d, &mut st);
    // Far more failures than there are inodes.
    for _ in 0..2 * INODES {
        fails_cleanly(&d, FsError::NoSpace, || st.mkdir(&d, "/x"));
    }
    let t = st.open(&d, "/big", mode::WRITE | mode::TRUNCATE, Held::unseen).unwrap();
    st.close(t).unwrap();
    st.mkdir(&d, "/x").unwrap();
    assert_clean(&d);
}

#[test]
fn a_write_that_does_not_fit_leaves_no_block_behind() {
    // The root's entry block, a file's direct blocks, and one block more.
    let d = disk_of(DATA_START as usize + 1 + DIRECT + 1);
    let mut st = ClientState::fresh();
    let fd = st.open(&d, "/f", RW, Held::unseen).unwrap();
    st.write(&d, fd, &[1u8; BLOCK_SIZE * DIRECT]).unwrap();
    // The next byte needs the indirect table and a data block: two, with one free.
    fails_cleanly(&d, FsError::NoSpace, || st.write(&d, fd, b"x"));
    assert_eq!(st.tell(fd).unwrap().0, (BLOCK_SIZE * DIRECT) as u32, "the offset did not move");
    // The free block is still free.
    let g = st.open(&d, "/g", RW, Held::unseen).unwrap();
    st.write(&d, g, b"one block").unwrap();
    assert_clean(&d);
}

#[test]
fn writing_a_new_file_on_a_full_disk_creates_nothing() {
    let d = disk_of(64);
    let mut st = ClientState::fresh();
    st.put(&d, "/old", b"old contents", false, Held::unseen).unwrap();
    fill(&d, &mut st);
    fails_cleanly(&d, FsError::NoSpace, || st.put(&d, "/newfile", b"x\n", false, Held::unseen));
    assert_eq!(st.stat(&d, "/newfile"), Err(FsError::NotFound));
    // A replacement that does not fit keeps the old contents; one that does reuses its blocks.
    let long = [b'y'; 2 * BLOCK_SIZE];
    fails_cleanly(&d, FsError::NoSpace, || st.put(&d, "/old", &long, false, Held::unseen));
    fails_cleanly(&d, FsError::NoSpace, || st.put(&d, "/old", &long, true, Held::unseen));
    st.put(&d, "/old", b"new", false, Held::unseen).unwrap();
    let fd = st.open(&d, "/old", mode::READ, Held::unseen).unwrap();
    let mut out = [0u8; 16];
    assert_eq!(st.read(&d, fd, &mut out).unwrap(), 3);
    assert_eq!(&out[..3], b"new");
    assert_clean(&d);
}

#[test]
fn running_out_of_inodes_is_not_running_out_of_blocks() {
    let d = disk();
    let st = ClientState::fresh();
    // Inode 0 is never used and the root has inode 1.
    for i in 0..INODES - 2 {
        st.put(&d, &format!("/f{i}"), b"", false, Held::unseen).unwrap();
    }
    fails_cleanly(&d, FsError::NoInodes, || st.put(&d, "/one-more", b"", false, Held::unseen));
    fails_cleanly(&d, FsError::NoInodes, || st.mkdir(&d, "/one-more"));
    assert_ne!(FsError::NoInodes.describe(), FsError::NoSpace.describe());
    let r = assert_clean(&d);
    assert_eq!(r.inodes, r.inodes_total);
}

#[test]
fn a_current_directory_is_not_removed() {
    let d = disk();
    let (mut a, mut b) = (ClientState::fresh(), ClientState::fresh());
    a.mkdir(&d, "/d").unwrap();
    a.mkdir(&d, "/d/e").unwrap();
    a.chdir(&d, "/d/e").unwrap();
    fails_cleanly(&d, FsError::CurrentDirectory, || a.remove(&d, ".", Held::unseen));
    fails_cleanly(&d, FsError::CurrentDirectory, || b.remove(&d, "/d/e", seen(&a)));
    fails_cleanly(&d, FsError::NotEmpty, || b.remove(&d, "/d", seen(&a)));
    // `/d` is not `/d/e`'s prefix by bytes alone: `/d/e2` is no current directory of `/d/e`'s.
    b.mkdir(&d, "/d/e2").unwrap();
    b.remove(&d, "/d/e2", seen(&a)).unwrap();
    a.chdir(&d, "/").unwrap();
    b.chdir(&d, "/d").unwrap();
    b.remove(&d, "/d/e", seen(&a)).unwrap();
    fails_cleanly(&d, FsError::CurrentDirectory, || a.remove(&d, "/d", seen(&b)));
    assert_clean(&d);
}

#[test]
fn a_file_has_one_writing_session_and_loses_nothing_to_another() {
    let d = disk();
    let (mut a, mut b) = (ClientState::fresh(), ClientState::fresh());
    let log = a.open(&d, "/log", RW | mode::APPEND, seen(&b)).unwrap();
    a.write(&d, log, b"record 0\n").unwrap();
    // While A writes it, B may read it but not change it in any way.
    let r = b.open(&d, "/log", mode::READ, seen(&a)).unwrap();
    for m in [mode::WRITE, mode::APPEND, mode::READ | mode::TRUNCATE] {
        fails_cleanly(&d, FsError::InUse, || b.open(&d, "/log", m, seen(&a)));
    }
    fails_cleanly(&d, FsError::InUse, || b.put(&d, "/log", b"X", false, seen(&a)));
    fails_cleanly(&d, FsError::InUse, || b.put(&d, "/log", b"X", true, seen(&a)));
    fails_cleanly(&d, FsError::InUse, || b.remove(&d, "/log", seen(&a)));
    // A's own descriptors do not stop A, except from removing what it has open.
    let again = a.open(&d, "/log", mode::WRITE | mode::TRUNCATE, seen(&b)).unwrap_err();
    assert_eq!(again, FsError::InUse, "B reads it: truncating would take B's data");
    b.close(r).unwrap();
    let t = a.open(&d, "/log", mode::WRITE | mode::TRUNCATE, seen(&b)).unwrap();
    a.close(t).unwrap();
    fails_cleanly(&d, FsError::InUse, || a.remove(&d, "/log", seen(&b)));
    // A reader does not stop another session from writing in place (two readers, one writer).
    a.close(log).unwrap();
    let r = a.open(&d, "/log", mode::READ, seen(&b)).unwrap();
    let w = b.open(&d, "/log", mode::READ | mode::WRITE, seen(&a)).unwrap();
    b.write(&d, w, b"XX").unwrap();
    let mut out = [0u8; 2];
    a.read(&d, r, &mut out).unwrap();
    assert_eq!(&out, b"XX");
    fails_cleanly(&d, FsError::InUse, || b.remove(&d, "/log", seen(&a)));
    a.close(r).unwrap();
    b.close(w).unwrap();
    b.remove(&d, "/log", seen(&a)).unwrap();
    assert_clean(&d);
}

#[test]
fn a_descriptor_of_a_removed_file_never_reaches_its_successor() {
    // What the libos cell guarantees without seeing the other session.
    let d = disk();
    let (mut a, b) = (ClientState::fresh(), ClientState::fresh());
    let fd = a.open(&d, "/f", RW, Held::unseen).unwrap();
    a.write(&d, fd, b"mine").unwrap();
    b.remove(&d, "/f", Held::unseen).unwrap();
    b.put(&d, "/g", b"someone else's", false, Held::unseen).unwrap();
    a.seek(fd, 0).unwrap();
    let mut out = [0u8; 16];
    assert_eq!(a.read(&d, fd, &mut out), Err(FsError::BadFd));
    assert_eq!(a.write(&d, fd, b"over"), Err(FsError::BadFd));
    assert_eq!(b.stat(&d, "/g").unwrap(), (KIND_FILE, 14));
    assert_clean(&d);
}
