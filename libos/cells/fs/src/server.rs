//! The fs task: checks the client's session, serves one operation (twice, see `twice`),
//! reseals the session. The operations themselves are `fs_core`'s, the same the microkernel's
//! file server runs.

use crate::store::Store;
use crate::twice::Cache;
use crate::{Answer, Build, Entry, FsError, Op, Out, Outcome, PathBuf, Request, Response, Session, IO_MAX};
use crate::{LAYOUT_COUNTED, LAYOUT_PLAIN};
use cell_console::Console;
use cell_virtio_blk::Probe;
use core::cell::RefCell;
use core::fmt::Write;
use fs_core::cache::{Index, Shelf};
use fs_core::{BlockDevice, Disk, Held, SmallClientState, Volume};

/// Blocks the cell keeps between requests (`twice::Cache`): half a KiB each, in the task's
/// 128 KiB heap, with their index (4 KiB).
const CACHED_BLOCKS: usize = fs_core::cache::MAX_SLOTS;

type Result<T> = core::result::Result<T, FsError>;

/// Give the session an answer holds the layout `build` writes (and `requests`, its count in
/// layout 4), and seal it, where it lies.
fn seal_in(key: u64, build: Build, requests: u32, answer: &mut Answer) {
    let s = &mut answer.session;
    s.layout = build.version().writes;
    s.requests = if s.layout == LAYOUT_COUNTED { requests } else { 0 };
    s.seal = s.sealed_as(key);
}

/// Build `answer` to `req` with a fresh session and `result`.
fn fresh(key: u64, build: Build, req: &Request, answer: &mut Answer, result: Result<Out>) {
    answer.echo = req.echo();
    answer.session.state = SmallClientState::fresh();
    answer.result = result.into();
    seal_in(key, build, 0, answer);
}

/// The seal and every range the operations rely on. A session that fails is checked once more
/// before it is refused: one check is one computation a fault in this cell can bend (a skipped
/// instruction in the seal's loop), and a refusal costs its client the session, in both copies
/// of the answer (a campaign, fs seed 7, lost sessions to `skip`s that way).
///
/// A session in a layout this version does not read is refused the same way (the version that
/// wrote it is gone: an update rolled back, and its client keeps the state from before).
fn check(key: u64, build: Build, s: &Session) -> Result<()> {
    // `black_box`: the second check is computed again, not taken from the first.
    check_once(key, build, s).or_else(|_| check_once(key, build, core::hint::black_box(s)))
}

fn check_once(key: u64, build: Build, s: &Session) -> Result<()> {
    if s.seal != s.sealed_as(key) || !build.reads(s.layout) || s.state.check().is_err() {
        return Err(FsError::StateReset);
    }
    Ok(())
}

/// Serve `op` against the client's state `st`, into `out` (the answer, where it is sent from: a
/// read's bytes are read there). What the other sessions hold (fs-core's rule for files in use)
/// comes from `others`: the server keeps no list of clients; it reads the other clients'
/// sessions where they keep them ([`held_by_others`]).
///
/// Not inlined into the task's loop: the operations' locals (a change set, `fsck`'s tables)
/// then take stack only while one runs.
#[inline(never)]
pub(crate) fn handle<D: BlockDevice>(
    disk: &Disk<D>,
    st: &mut SmallClientState,
    op: &Op,
    others: &dyn Fn(u16, &[u8]) -> Held,
    out: &mut Outcome,
) {
    if let Op::Read { fd, len } = *op {
        // The answer where it lies is likely a read's already (the previous one's, perhaps
        // another session's bytes): its bytes are read over, and those past what was read
        // cleared, so none of the earlier ones leave with this answer. Each run builds its own
        // copy, in its own place: a run whose read a fault skipped answers the bytes that were
        // there, which the other run's copy, read for this request, contradicts.
        // (An answer that was not a read's is made one all zeros, and needs no more clearing.)
        let cleared = !matches!(out, Outcome::Ok(Out::Data { .. }));
        if cleared {
            *out = Outcome::Ok(Out::Data { len: 0, bytes: [0; IO_MAX] });
        }
        if let Outcome::Ok(Out::Data { len: got, bytes }) = out {
            let want = (len as usize).min(IO_MAX);
            match st.read(disk, fd, &mut bytes[..want]) {
                Ok(n) => {
                    *got = n as u32;
                    if !cleared {
                        bytes[n.min(IO_MAX)..].fill(0);
                    }
                }
                Err(e) => *out = Outcome::Err(e),
            }
        }
        return;
    }
    let result = match op {
        Op::Connect => Ok(Out::Done),
        Op::Open { path, mode } => st.open(disk, path.as_str(), *mode, others).map(Out::Fd),
        Op::Read { .. } => Err(FsError::Malformed), // read into `out` above
        Op::Write { fd, len, data } => {
            let n = (*len as usize).min(IO_MAX);
            st.write(disk, *fd, &data[..n]).map(Out::Count)
        }
        Op::Seek { fd, pos } => st.seek(*fd, *pos).map(|_| Out::Done),
        Op::Close { fd } => st.close(*fd).map(|_| Out::Done),
        Op::Stat { path } => st.stat(disk, path.as_str()).map(|(kind, size)| Out::Stat { kind, size }),
        Op::Mkdir { path } => st.mkdir(disk, path.as_str()).map(|_| Out::Done),
        Op::Remove { path } => st.remove(disk, path.as_str(), others).map(|_| Out::Done),
        Op::Put { path, append, len, data } => {
            let n = (*len as usize).min(data.len());
            st.put(disk, path.as_str(), &data[..n], *append, others).map(|_| Out::Done)
        }
        Op::Fsck => fs_core::fsck(disk).map(Out::Report),
        // Served apart, once (see `serve`), or answered from the session's count (see `run`).
        Op::Format { .. } | Op::DropCaches | Op::Requests => Err(FsError::Malformed),
        Op::Chdir { path } => st.chdir(disk, path.as_str()).map(|_| Out::Done),
        Op::Cwd => PathBuf::new(st.cwd()).map(Out::Path),
        Op::List { path, index } => st.entry(disk, path.as_str(), *index).map(|entry| match entry {
            Some((e, size)) => {
                let name = core::str::from_utf8(e.name()).unwrap_or("?");
                Out::Entry(Entry::new(name, e.kind, size))
            }
            None => Out::End,
        }),
    };
    *out = result.into();
}

/// What the sessions other than the caller's (kept at `holder`) hold of inode `ino` at `path`:
/// read where their clients keep them (`libos_kernel::kept_by_others`); a session whose seal
/// or ranges fail holds nothing (its client will be told `StateReset` on its next request).
fn held_by_others(key: u64, build: Build, holder: u64, ino: u16, path: &[u8]) -> Held {
    let mut held = Held::default();
    // A client keeps two copies of its session (`Fs`); the first that checks is its state.
    libos_kernel::kept_by_others::<[Session; 2]>("fs", holder, |copies| {
        if let Some(s) = copies.iter().find(|s| check(key, build, s).is_ok()) {
            held = held.or(s.state.held(ino, path));
        }
    });
    held
}

/// Print one line to the console as `[fs] LINE`.
fn log(console: &Console, line: core::fmt::Arguments<'_>) {
    let mut out = console;
    let _ = writeln!(out, "[fs] {}", line);
}

/// How much of the store the file system spans, for the log.
fn span(v: &Volume<Store<'_>>) -> (u32, u32) {
    (v.blocks(), v.device_blocks())
}

/// What an incarnation holds: the file system, and the blocks it keeps between requests.
struct Mounted<'t, 's> {
    volume: Volume<Store<'t>>,
    cache: Cache<'s>,
    /// What the log calls the store.
    name: &'static str,
}

/// Both copies of the answer to `req`: `result`, with the session as the client sent it.
fn unchanged(out: &mut Response, req: &Request, result: Result<Out>) {
    for answer in out.answers() {
        answer.echo = req.echo();
        answer.session.state = req.session.state;
        answer.result = result.into();
    }
}

/// Serve `req` (its session checked) into `out`, each answer's state and result: against the
/// disk, twice (`twice`), or `Format` once and straight to the store (it writes more blocks
/// than a run holds back), or `DropCaches` (the cache only). On a refused disk every other
/// operation is answered with why.
fn serve(
    Mounted { volume, cache, name }: &mut Mounted<'_, '_>,
    console: &Console,
    req: &Request,
    others: &dyn Fn(u16, &[u8]) -> Held,
    intact: &dyn Fn() -> bool,
    out: &mut Response,
) {
    let empty = |cache: &Cache<'_>| {
        cache.borrow_mut().clear();
        if !cache.borrow().is_empty() {
            panic!("the cache kept blocks it was told to forget");
        }
    };
    if let Op::Requests = req.op {
        // Only a version that counts (`run` answers it there) knows the answer.
        return unchanged(out, req, Err(FsError::Malformed));
    }
    if let Op::DropCaches = req.op {
        empty(cache);
        return unchanged(out, req, Ok(Out::Done));
    }
    if let Op::Format { force } = req.op {
        let result = volume.format(force).map(|()| Out::Done);
        // Written straight to the store, past the cache: nothing it held may be used again.
        empty(cache);
        if result.is_ok() {
            let (fs, device) = span(volume);
            log(console, format_args!("formatted {name}: the file system spans {fs} of its {device} blocks"));
        }
        return unchanged(out, req, result);
    }
    match volume.disk() {
        Ok(disk) => crate::twice::serve(disk, cache, req, others, intact, out),
        Err(why) => unchanged(out, req, Err(why)),
    }
}

/// How many times a restarted fs asks the disk cell whether it has a disk before it gives up
/// (the driver may be restarting or held).
const PROBES: u32 = 20;

/// The store this incarnation uses: the disk when the disk cell drives one, the RAM disk when
/// it says there is none. A driver that does not answer is asked again (it may be restarting):
/// falling back to the RAM disk then would serve an empty file system in place of the disk's.
fn choose<'t>(
    ram: cell_ramdisk::Ep,
    disk: cell_virtio_blk::Blocks<'t>,
    console: &Console,
    first: bool,
) -> Store<'t> {
    for _ in 0..PROBES {
        match disk.probe() {
            Probe::Disk { .. } => return Store::Disk(disk),
            Probe::NoDevice => {
                if first {
                    log(
                        console,
                        format_args!(
                            "no disk attached: files live on the RAM disk and are lost at power-off"
                        ),
                    );
                }
                return Store::Ram(cell_ramdisk::Blocks(ram));
            }
            Probe::NoAnswer => libos_kernel::sleep_until(libos_kernel::ticks() + 50),
        }
    }
    panic!("the disk cell did not say whether it has a disk ({PROBES} tries)");
}

/// What every version of the fs task holds, given at boot and kept across incarnations and
/// updates: sealed (read-only once the system runs), as the staged versions' closures are.
struct Parts {
    ep: crate::Ep,
    ram: cell_ramdisk::Ep,
    disk: cell_virtio_blk::Ep,
    /// The tags of the disk's blocks seen this boot (see `cell_virtio_blk::Blocks`).
    tags: cell_virtio_blk::Tags,
    /// Seals sessions (chosen at boot).
    key: u64,
    console: Console,
}

/// Stage each version of the fs task ([`Build`]) over the disk (`disk`, the disk cell) or, when
/// that has no device, the RAM disk (`ram`), and start version 1; `key` seals sessions; what
/// it has to say goes to `console`. Returns the endpoint.
pub fn start(
    ram: cell_ramdisk::Ep,
    disk: cell_virtio_blk::Ep,
    key: u64,
    console: Console,
) -> Option<crate::Ep> {
    let ep = crate::Ep::create("fs")?;
    let tags = cell_virtio_blk::Tags::new()?;
    // Read-only once the system runs, with the closures that capture it (see `sealed`).
    let parts: &'static Parts = libos_kernel::sealed(Parts { ep, ram, disk, tags, key, console })?;
    for build in Build::ALL {
        libos_kernel::stage("fs", build.name(), build.version(), move || run(parts, build)).ok()?;
    }
    libos_kernel::spawn_staged("fs", Build::V1.name(), 5).ok()?;
    Some(ep)
}

/// The count a version that counts (layout 4) gives the session of `req`, this request
/// included; whether it migrated the session from layout 3 to do so.
fn count(build: Build, req: &Request) -> (u32, bool) {
    if build.version().writes != LAYOUT_COUNTED {
        return (0, false);
    }
    match req.session.layout {
        LAYOUT_PLAIN => (1, true),
        _ => (req.session.requests.saturating_add(1), false),
    }
}

/// One incarnation of version `build` of the fs task.
fn run(parts: &Parts, build: Build) {
    // Only the spilling build keeps anything of a request: here, in the frame of its serving
    // loop, which lasts as long as the incarnation. (Its closure cannot: recipes are read-only
    // once the system runs, see `libos_kernel`'s `mem::recipes`.)
    let last = core::sync::atomic::AtomicU64::new(0);
    let last = &last;
    let Parts { ep, ram, disk, ref tags, key, ref console } = *parts;
    // Only the first incarnation may format a blank store: a later one that does not find the
    // file system (a fault bent its reads) must not erase it. A store that holds something
    // else is refused by every incarnation alike.
    let first =
        libos_kernel::find_task("fs").and_then(libos_kernel::task_info).is_none_or(|t| t.generation == 0);
    let store = choose(ram, cell_virtio_blk::Blocks { ep: disk, tags }, console, first);
    let name = store.name();
    let opened = if first { Volume::mount(store) } else { Volume::attach(store).map(|v| (v, false)) };
    let volume = match opened {
        Ok((v, formatted)) => {
            let (fs, device) = span(&v);
            match v.refused() {
                Some(why) => log(console, format_args!("not mounting {name}: {why}")),
                None if formatted => log(
                    console,
                    format_args!(
                        "formatted {name} (it was blank): the file system spans {fs} of its {device} blocks"
                    ),
                ),
                None if first => log(
                    console,
                    format_args!("mounted {name}: the file system spans {fs} of its {device} blocks"),
                ),
                None => {}
            }
            if let Some((seq, r)) = v.redone() {
                log(
                    console,
                    format_args!("{name}: redid operation {seq} from the journal (the machine stopped while writing it)"),
                );
                if r.is_clean() {
                    let (used, total) = (r.blocks, r.blocks_total);
                    log(
                        console,
                        format_args!(
                            "{name}: fsck after the recovery: clean: {used} of {total} blocks in use"
                        ),
                    );
                } else {
                    let found = r.found;
                    log(
                        console,
                        format_args!("{name}: fsck after the recovery found {found} problem(s): run `fsck`"),
                    );
                }
            }
            v
        }
        Err(e) => panic!("cannot mount {}: {}", name, e),
    };
    // This incarnation's block cache, in its own heap: it dies with the incarnation, and the
    // next one starts empty (as it would after the store changed under it).
    let mut places = alloc::vec![None; CACHED_BLOCKS];
    let mut index = alloc::boxed::Box::new(Index::new());
    // Kept across requests on purpose (`audit fs` reports them as declared): the next
    // incarnation starts them empty.
    libos_kernel::declare("block cache", &places[..]);
    libos_kernel::declare("block cache index", &*index);
    let cache = RefCell::new(Shelf::new(&mut places, &mut index));
    let mut mounted = Mounted { volume, cache, name };
    // Requests are read where the kernel put them (see `Inbox`), and answered from where they
    // were built: each copy of the answer by itself, by its own run, sealed on its own (see
    // `Response`).
    let mut inbox = libos_kernel::Inbox::new();
    let blank = Session::blank();
    let empty = Answer { echo: 0, session: blank, result: Outcome::Err(FsError::Malformed) };
    let mut outbox = Response { one: empty, two: empty };
    // The answers go from `outbox`, which keeps the last one (see `Answer::echo`): a message,
    // which the audit leaves out as it leaves the inbox out.
    loop {
        ep.receive(&mut inbox);
        answer(Serving { ep, key, build, console, last }, &mut mounted, &mut inbox, &mut outbox);
    }
}

/// What every request of an incarnation is served with.
#[derive(Clone, Copy)]
struct Serving<'c> {
    ep: crate::Ep,
    key: u64,
    build: Build,
    console: &'c Console,
    /// The spilling build's memory of the last path named (see `Build::Spill`).
    last: &'c core::sync::atomic::AtomicU64,
}

/// Answer the request in `inbox` into `outbox`, and send it. Not inlined: its locals lie below
/// the point where the loop waits for the next request, so nothing of this one is left in the
/// loop's frame (`audit fs` checks).
#[inline(never)]
fn answer(
    Serving { ep, key, build, console, last }: Serving<'_>,
    mounted: &mut Mounted<'_, '_>,
    inbox: &mut libos_kernel::Inbox<Request>,
    outbox: &mut Response,
) {
    let Some((token, req)) = inbox.take() else { return };
    let [one, two] = outbox.answers();
    // A fresh session, whatever the request carried, only if it says `Connect` twice over: a
    // bent branch here would silently reset its client's session.
    if matches!(req.op, Op::Connect) && matches!(core::hint::black_box(&req.op), Op::Connect) {
        fresh(key, build, req, one, Ok(Out::Done));
        fresh(key, build, req, two, Ok(Out::Done));
    } else if let Err(e) = check(key, build, &req.session) {
        fresh(key, build, req, one, Err(e));
        fresh(key, build, req, two, Err(e));
    } else {
        let (requests, migrated) = count(build, req);
        if migrated {
            let client = token.client();
            log(console, format_args!("client task {client}: session migrated from layout 3 to 4"));
        }
        if build == Build::Faulty && !migrated {
            panic!(
                "the faulty build of fs fails a session's second request, after migrating it on the first"
            );
        }
        let others = |ino: u16, path: &[u8]| held_by_others(key, build, req.holder, ino, path);
        if req.op.digest() != req.digest {
            panic!("the request changed in fs's memory before it was served");
        }
        if build == Build::Spill {
            // What it names, or else the whole operation's digest.
            let what = req.op.path().map_or(req.digest, |p| algo::seal::seal(0, p.as_bytes()));
            last.store(what, core::sync::atomic::Ordering::Relaxed);
        }
        // After the runs: the operation and the session they served are still those the client
        // sent. Both runs start from the session where it was received, so a word of it bent
        // after its check (a `memflip` of fs's stack) would be served by both alike and sealed
        // again: the client would keep a session it never had.
        // The session's seal alone answers whether it is the one checked: it covers every byte
        // of the state, its layout and count, and a session whose ranges held when its seal
        // did holds them while the seal still does (a bent word changes the seal).
        let intact = || req.op.digest() == req.digest && req.session.seal == req.session.sealed_as(key);
        if matches!(req.op, Op::Requests) && requests > 0 {
            unchanged(outbox, req, Ok(Out::Count(requests)));
        } else {
            serve(mounted, console, req, &others, &intact, outbox);
        }
        let [one, two] = outbox.answers();
        seal_in(key, build, requests, one);
        seal_in(key, build, requests, two);
    }
    let _ = ep.reply_from(token, outbox);
}
