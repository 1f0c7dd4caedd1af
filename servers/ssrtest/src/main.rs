//! Proves that Server State Regions isolate clients, and outlive a faulting server.
//!
//! 1. Two fs sessions (two clients, as far as the file server knows) open the same file and
//!    interleave reads, seeks and writes; each must see only its own offsets.
//! 2. The file cannot be removed while the other session has it open.
//! 3. The probe server (a test build that misbehaves on request) is made to read its SSR window
//!    after replying, and to reach past the current client's SSR: both must be stopped by a
//!    page fault; the reincarnation server restarts it, and both clients' words are intact. The
//!    second request faults every time it is delivered: it is delivered again once, then only
//!    its client gets an error.
//! 4. A word of one fs client's SSR is corrupted from outside: fs repairs it from the region's
//!    backup copy and the client notices nothing. Corrupted in both copies, only that client
//!    gets an error; the other's open file and offset are untouched.
//! 5. Sessions are charged to the client's quota.
//!
//! Prints one line per check and exits 0 only if all passed.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use console_api::println;
use fs_api::{mode, Fs, FsError};
use userlib::abi::{BootInfo, Error};
use userlib::cap::{Cap, Endpoint, Session, Task};

struct Checks {
    failed: u32,
}

impl Checks {
    fn check(&mut self, what: &str, ok: bool) {
        println!("ssrtest: {:<58} {}", what, if ok { "ok" } else { "FAILED" });
        if !ok {
            self.failed += 1;
        }
    }
}

fn read_str<'b>(fs: &Fs, fd: u32, buf: &'b mut [u8]) -> &'b str {
    let n = fs.read(fd, buf).unwrap_or(0);
    core::str::from_utf8(&buf[..n]).unwrap_or("?")
}

fn offsets(c: &mut Checks, a: &Fs, b: &Fs) -> Result<(), FsError> {
    let _ = a.mkdir("/t");
    let w = a.open("/t/shared", mode::WRITE | mode::CREATE | mode::TRUNCATE)?;
    let mut pattern = [0u8; 100];
    for (i, pair) in pattern.chunks_mut(2).enumerate() {
        pair.copy_from_slice(&[b'0' + (i / 10) as u8, b'0' + (i % 10) as u8]);
    }
    a.write(w, &pattern)?;
    a.close(w)?;
    let fa = a.open("/t/shared", mode::READ)?;
    let fb = b.open("/t/shared", mode::READ | mode::WRITE)?;
    c.check("both sessions got the same descriptor number", fa == fb);
    let mut buf = [0u8; 16];
    c.check("A reads 0..10", read_str(a, fa, &mut buf[..10]) == "0001020304");
    b.seek(fb, 50)?;
    c.check("B seeks to 50 and reads 50..60", read_str(b, fb, &mut buf[..10]) == "2526272829");
    c.check("A continues at 10, unaffected by B", read_str(a, fa, &mut buf[..10]) == "0506070809");
    b.write(fb, b"XX")?;
    c.check("A's offset is 20 in A's state", a.tell(fa)? == (20, mode::READ));
    c.check("B's offset is 62 in B's state", b.tell(fb)? == (62, mode::READ | mode::WRITE));
    a.seek(fa, 60)?;
    c.check("A sees B's write at 60", read_str(a, fa, &mut buf[..4]) == "XX31");
    b.close(fb)?;
    c.check("B cannot remove a file A has open", b.remove("/t/shared") == Err(FsError::InUse));
    c.check(
        "B's closed descriptor is gone, A's is not",
        b.tell(fb) == Err(FsError::BadFd) && a.tell(fa).is_ok(),
    );
    // Reads, writes and seeks go in fs-api's fixed layout; their refusals come back as errors.
    c.check(
        "B's read, write and seek of its closed descriptor: BadFd each",
        b.read(fb, &mut buf) == Err(FsError::BadFd)
            && b.write(fb, b"x") == Err(FsError::BadFd)
            && b.seek(fb, 0) == Err(FsError::BadFd),
    );
    c.check(
        "A cannot write through a read-only descriptor: BadMode",
        a.write(fa, b"x") == Err(FsError::BadMode),
    );
    c.check(
        "A cannot seek past the largest file: FileTooLarge",
        a.seek(fa, u32::MAX) == Err(FsError::FileTooLarge),
    );
    c.check(
        "A reads 0 bytes at the end of the file",
        a.seek(fa, 100).is_ok() && a.read(fa, &mut buf) == Ok(0),
    );
    a.close(fa)?;
    c.check("once A closed it, B removes it", b.remove("/t/shared").is_ok());
    big_reads(c, a)
}

/// A file of several blocks read in 1 KiB pieces with fs's cache emptied first: every piece
/// misses and fs fetches its blocks from the block store while it serves the read (whose
/// answer must not be bent by those calls), then again from the cache.
fn big_reads(c: &mut Checks, a: &Fs) -> Result<(), FsError> {
    let byte = |i: usize| (i * 7 + i / 512) as u8;
    let w = a.open("/t/big", mode::WRITE | mode::CREATE | mode::TRUNCATE)?;
    let mut chunk = [0u8; 1024];
    for k in 0..6 {
        chunk.iter_mut().enumerate().for_each(|(i, b)| *b = byte(k * 1024 + i));
        a.write(w, &chunk)?;
    }
    a.close(w)?;
    for (what, drop) in [
        ("6 KiB read in 1 KiB pieces, fs's cache emptied first: every byte", true),
        ("the same again, from fs's cache: every byte", false),
    ] {
        if drop {
            a.drop_caches()?;
        }
        let r = a.open("/t/big", mode::READ)?;
        let mut good = true;
        for k in 0..6 {
            let n = a.read(r, &mut chunk)?;
            good &= n == 1024 && chunk.iter().enumerate().all(|(i, &b)| b == byte(k * 1024 + i));
        }
        good &= a.read(r, &mut chunk)? == 0;
        a.close(r)?;
        c.check(what, good);
    }
    a.remove("/t/big")
}

fn call(s: Cap<Session>, label: u32, word: u64) -> Result<u64, Error> {
    s.call(label, [word, 0, 0, 0], &[]).map(|m| m.words[0])
}

/// Wait until the reincarnation server has brought task `index` back at `generation` or later.
fn wait_generation(tasks: Cap<Task>, index: usize, generation: u32) -> bool {
    for _ in 0..5_000_000u32 {
        if let Ok(t) = tasks.info(index) {
            if t.generation >= generation && t.state().is_some_and(|s| !s.is_stopped()) {
                return true;
            }
        }
        userlib::sys::yield_now();
    }
    false
}

fn probe(c: &mut Checks, boot: &BootInfo) -> Result<(), Error> {
    let ep = Cap::<Endpoint>::from_boot(boot, "probe").ok_or(Error::EmptySlot)?;
    let tasks = Cap::<Task>::from_boot(boot, "all").ok_or(Error::EmptySlot)?;
    let index = tasks.find("probe").ok_or(Error::Dead)?;
    let generation = |t: Cap<Task>| t.info(index).map(|i| i.generation).unwrap_or(0);
    let (a, b) = (ep.connect(32)?, ep.connect(33)?);
    call(a, probe::PUT, 111)?;
    call(b, probe::PUT, 222)?;
    c.check(
        "probe keeps A's and B's words apart",
        call(a, probe::GET, 0)? == 111 && call(b, probe::GET, 0)? == 222,
    );

    let g = generation(tasks);
    let answer = call(a, probe::TOUCH_AFTER_REPLY, 0);
    c.check("probe answered A before misbehaving", answer == Ok(111));
    c.check(
        "touching the window after the reply faulted; probe came back",
        wait_generation(tasks, index, g + 1),
    );
    c.check(
        "after the restart A's and B's words are intact",
        call(a, probe::GET, 0)? == 111 && call(b, probe::GET, 0)? == 222,
    );

    // This request faults the server every time: delivered again once to the next incarnation,
    // then only B gets an error.
    let g = generation(tasks);
    let answer = call(b, probe::TOUCH_NEIGHBOUR, 0);
    c.check("reaching past B's SSR faulted twice; only B got an error", answer == Err(Error::ServerFailed));
    c.check("probe came back after both faults", wait_generation(tasks, index, g + 2));
    c.check(
        "after the restarts A's and B's words are intact",
        call(a, probe::GET, 0)? == 111 && call(b, probe::GET, 0)? == 222,
    );
    Ok(())
}

/// Capabilities travel in messages and are revoked everywhere: a copy of this task's console
/// capability is granted to the probe, which prints through it; revoking ours removes its copy.
fn grant_and_revoke(c: &mut Checks, boot: &BootInfo) -> Result<(), Error> {
    let ep = Cap::<Endpoint>::from_boot(boot, "probe").ok_or(Error::EmptySlot)?;
    let console = boot.find(userlib::abi::CapType::Endpoint, "console").ok_or(Error::EmptySlot)?;
    // A private copy to grant from, so revoking it leaves our own console capability alone.
    userlib::sys::call(userlib::abi::Sysno::CapCopy, [console as u64, 50, 7, 0, 0, 0])?;
    let taken = ep.call_with_cap(probe::TAKE_CAP, [0; 4], 50)?.words[0];
    c.check("the probe received a copy of our console capability", taken == 1);
    let used = ep.call(probe::USE_CAP, [0; 4], &[])?.words[0];
    c.check("the probe printed through it", used == 1);
    let revoked = userlib::cap::cap_revoke(50)?;
    c.check("revoking our copy removed the probe's", revoked == 1);
    let used = ep.call(probe::USE_CAP, [0; 4], &[])?.words[0];
    c.check("the probe can no longer use it", used == 0);
    userlib::cap::cap_delete(50)?;
    Ok(())
}

/// One corrupted word is repaired from the backup copy; a region corrupted in both copies
/// affects only its own client: the server notices, resets that region, and tells that client;
/// the other client's state and files are untouched.
fn corrupted(c: &mut Checks, boot: &BootInfo) -> Result<(), FsError> {
    let ep = Cap::<Endpoint>::from_boot(boot, "fs").ok_or(FsError::NoSession)?;
    let tasks = Cap::<Task>::from_boot(boot, "all").ok_or(FsError::NoSession)?;
    let fs_index = tasks.find("fs").ok_or(FsError::NoSession)?;
    let (a, badge_a) = Fs::connect_badge(ep, 34)?;
    let b = Fs::connect(ep, 35)?;
    let _ = a.mkdir("/t");
    let w = a.open("/t/c", mode::WRITE | mode::CREATE | mode::TRUNCATE)?;
    a.write(w, b"0123456789")?;
    let fb = b.open("/t/c", mode::READ)?;
    b.seek(fb, 4)?;
    // The word the kernel picks follows the seed; bits 32..62 of a badge vary it.
    let inject = |i: u64| tasks.inject(fs_index, userlib::abi::InjectKind::Ssr, badge_a | i << 32);
    // One word at a time, each followed by a request (which reseals both copies): every one
    // is repaired from the other copy, or lands where nothing is read.
    let single = (0..8).all(|i| inject(i).is_ok() && a.tell(w).is_ok_and(|(at, _)| at == 10));
    c.check("8 single corrupted words: A's next request answered as before", single);
    // Enough words, at random in both copies, to break both (a miss has odds below 1 in 10^6).
    let all = (8..56).all(|i| inject(i).is_ok());
    c.check("injected corrupt words into both copies of A's SSR", all);
    c.check("A's next request: a clear StateReset error", a.tell(w) == Err(FsError::StateReset));
    c.check(
        "A's reset state is fresh and usable",
        a.tell(w) == Err(FsError::BadFd) && a.stat("/t/c").is_ok(),
    );
    let mut buf = [0u8; 8];
    c.check(
        "B's offset and file are untouched",
        b.tell(fb)? == (4, mode::READ) && read_str(&b, fb, &mut buf[..3]) == "456",
    );
    b.close(fb)?;
    let _ = (userlib::cap::cap_delete(34), userlib::cap::cap_delete(35));
    Ok(())
}

/// Sessions are charged to the client: past its quota, `connect` says so, and closing a session
/// gives the page back.
fn quota(c: &mut Checks, boot: &BootInfo) -> Result<(), Error> {
    let ep = Cap::<Endpoint>::from_boot(boot, "fs").ok_or(Error::EmptySlot)?;
    let mut opened = 0u8;
    let result = loop {
        match ep.connect(40 + opened) {
            Ok(_) => opened += 1,
            Err(e) => break e,
        }
        if opened == 20 {
            break Error::InvalidArgument;
        }
    };
    // 4 sessions are open already (2 fs, 2 probe); the manifest gives this task a quota of 8.
    c.check("connect past the quota fails with QuotaExceeded", result == Error::QuotaExceeded && opened == 4);
    for i in 0..opened {
        userlib::cap::cap_delete(40 + i)?;
    }
    let again = ep.connect(40);
    c.check("closing sessions gives the quota back", again.is_ok());
    userlib::cap::cap_delete(40)?;
    Ok(())
}

userlib::entry!(main);

fn main(boot: &'static BootInfo) -> Result<(), Error> {
    let mut c = Checks { failed: 0 };
    let fs_ep = Cap::<Endpoint>::from_boot(boot, "fs").ok_or(Error::EmptySlot)?;
    let (a, b) = (Fs::connect(fs_ep, 30), Fs::connect(fs_ep, 31));
    match (a, b) {
        (Ok(a), Ok(b)) => {
            if let Err(e) = offsets(&mut c, &a, &b) {
                c.check(&heapless_msg("file operations failed: ", e.describe()), false);
            }
        }
        _ => c.check("connect two fs sessions", false),
    }
    if let Err(e) = probe(&mut c, boot) {
        c.check(&heapless_msg("probe sequence failed: ", e.describe()), false);
    }
    if let Err(e) = grant_and_revoke(&mut c, boot) {
        c.check(&heapless_msg("capability transfer failed: ", e.describe()), false);
    }
    if let Err(e) = corrupted(&mut c, boot) {
        c.check(&heapless_msg("corruption sequence failed: ", e.describe()), false);
    }
    if let Err(e) = quota(&mut c, boot) {
        c.check(&heapless_msg("quota sequence failed: ", e.describe()), false);
    }
    println!("ssrtest: {} checks failed", c.failed);
    if c.failed == 0 {
        Ok(())
    } else {
        Err(Error::InvalidArgument)
    }
}

fn heapless_msg(a: &str, b: &str) -> heapless::String<96> {
    let mut s = heapless::String::new();
    let _ = s.push_str(a);
    let _ = s.push_str(b);
    s
}
