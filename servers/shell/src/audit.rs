//! `audit NAME [REQUESTS]`: the state-spill audit of a server, driven from here.
//!
//! The kernel watches the server's private memory (`audit` syscall); this drives it with the
//! requests of at least two clients taking turns, each a session of this shell (a session's
//! badge is a client of its own to the server), with a workload of the server's protocol:
//!
//! ```text
//!  fs                  two clients, each the campaign's file records in a file of its own
//!  timer               two clients, each the campaign's checked sleeps
//!  ramdisk, virtio-blk two block-store clients reading and rewriting the store's last block
//!                      unchanged, and fs (the campaign's records through an fs session)
//!  console             two clients writing a character each
//!  probe               two clients putting and getting their word
//! ```
//! then prints one line per spilled range and per declared range, and the summary:
//! `audit NAME: requests=R clients=C switches=S pages=P spill=N spill_bytes=B declared=D
//! declared_changed=X dropped=K verdict=clean|SPILL` (`cargo os audit` parses these lines).

use crate::clients::{Clock, Files};
use crate::Out;
use algo::rng::Rng;
use block_api::{BlockDevice, BLOCK_SIZE};
use campaign::{Phase, Records, Sleeps};
use console_api::{println, Console};
use fs_api::Fs;
use shellcmd::{Console as _, Status};
use timer_api::Timer;
use userlib::abi::{badge_client, badge_session, AuditRecord, Error, READ_UNWATCHED, READ_YES, RECORD_SPILL};
use userlib::cap::{cap_delete, Cap, Endpoint, Task};

/// Requests an audit drives when REQUESTS is not given, and the most it may.
pub const DEFAULT_REQUESTS: u32 = 200;
pub const MAX_REQUESTS: u32 = 5000;
/// Where the audit's sessions live while it runs.
const SLOTS: [u8; 3] = [45, 46, 47];
/// The servers `audit` has a workload for.
pub const SERVERS: &str = "fs, timer, ramdisk, virtio-blk, console, probe";

/// One client of the audited server and its workload (on the stack: no heap to box into).
#[allow(clippy::large_enum_variant)]
enum Client {
    Files(Records<Files>),
    Clock(Sleeps<Clock>),
    Block(BlockDevice, u32),
    Text(Console, u8),
    Probe(Cap<Endpoint>, u64),
}

struct Printer;

impl campaign::Console for Printer {
    fn println(&mut self, line: core::fmt::Arguments<'_>) {
        println!("{}", line);
    }
}

impl Client {
    /// One step of the workload: true if every answer was right.
    fn step(&mut self, rng: &mut Rng) -> bool {
        let mut printer = Printer;
        let mut out = campaign::note::Noting { out: &mut printer, phase: Phase::FinalCheck };
        match self {
            Client::Files(r) => r.step(&mut out, rng).errors == 0,
            Client::Clock(s) => {
                let seen = s.step(&mut out, rng);
                seen.errors == 0 && seen.wrong == 0
            }
            Client::Block(dev, last) => {
                let mut block = [0u8; BLOCK_SIZE];
                dev.read(*last, &mut block).and_then(|()| dev.write(*last, &block)).is_ok()
            }
            Client::Text(console, c) => console.write(&[*c]).is_ok(),
            Client::Probe(ep, word) => {
                let put = ep.call(probe::PUT, [*word, 0, 0, 0], &[]).is_ok();
                put && ep.call(probe::GET, [0; 4], &[]).is_ok_and(|m| m.words[0] == *word)
            }
        }
    }
}

/// A session with the endpoint named `name` in the boot info, at audit slot `i`.
fn session(name: &str, i: usize) -> Result<Cap<Endpoint>, &'static str> {
    endpoint(name)?.connect(SLOTS[i]).map(Cap::as_endpoint).map_err(|e| e.describe())
}

/// A block-store client at slot `i`, and the store's last block.
fn block(name: &str, i: usize) -> Result<Client, &'static str> {
    let dev = BlockDevice::new(session(name, i)?);
    match dev.blocks() {
        Ok(n) if n > 0 => Ok(Client::Block(dev, n - 1)),
        Ok(_) => Err("the block store is empty"),
        Err(e) => Err(e.describe()),
    }
}

fn endpoint(name: &str) -> Result<Cap<Endpoint>, &'static str> {
    Cap::<Endpoint>::from_boot(userlib::rt::boot_info(), name).ok_or("this shell cannot call it")
}

fn files(i: usize, path: &'static str) -> Result<Client, &'static str> {
    let fs = Fs::connect(endpoint("fs")?, SLOTS[i]).map_err(|e| e.describe())?;
    Records::create_at(Files(fs), path).map(Client::Files).map_err(|e| e.describe())
}

/// The clients of server `name`'s workload.
fn clients(name: &str) -> Result<heapless::Vec<Client, 3>, &'static str> {
    let mut c = heapless::Vec::new();
    let mut add = |client: Client| {
        let _ = c.push(client);
    };
    match name {
        "fs" => {
            add(files(0, "/campaign/audit-a")?);
            add(files(1, "/campaign/audit-b")?);
        }
        "timer" => {
            for slot in &SLOTS[..2] {
                let timer =
                    Timer::connect(endpoint("timer")?, *slot).map_err(|_| "cannot open a timer session")?;
                add(Client::Clock(Sleeps(Clock(timer))));
            }
        }
        "ramdisk" | "virtio-blk" => {
            let ep = if name == "ramdisk" { "block" } else { "disk" };
            add(block(ep, 0)?);
            add(block(ep, 1)?);
            // fs calls the store it mounted; the other store hears nothing from it.
            add(files(2, "/campaign/audit-c")?);
        }
        "console" => {
            for (i, ch) in [b'a', b'b'].into_iter().enumerate() {
                add(Client::Text(Console::new(session("console", i)?), ch));
            }
        }
        "probe" => {
            for (i, word) in [0x1111_1111, 0x2222_2222].into_iter().enumerate() {
                add(Client::Probe(session("probe", i)?, word));
            }
        }
        _ => return Err("no workload for it"),
    }
    Ok(c)
}

/// `task N session S` for a session badge, `task N` for a task's own endpoint badge.
struct ClientName(u64, u32);

impl ClientName {
    fn task(&self) -> u32 {
        match badge_session(self.0) {
            Some(_) => badge_client(self.0) as u32,
            None => self.1,
        }
    }

    /// The session's number, or `-` for a call without one.
    fn session(&self) -> impl core::fmt::Display {
        struct Session(Option<u16>);
        impl core::fmt::Display for Session {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                match self.0 {
                    Some(s) => write!(f, "{}", s),
                    None => f.write_str("-"),
                }
            }
        }
        Session(badge_session(self.0))
    }
}

fn print_record(r: &AuditRecord) {
    if r.kind != RECORD_SPILL {
        let (addr, len, changed, name) = (r.addr, u64::from(r.len), u64::from(r.count), r.name());
        println!("{}", shellcmd::audit::Declared { addr, len, changed, name });
        return;
    }
    let read = match r.read {
        READ_YES => "yes",
        READ_UNWATCHED => "unwatched",
        _ => "no",
    };
    let symbol = match r.name_kind {
        1 | 2 => r.name(),
        _ => "?",
    };
    let (client, reader) = (ClientName(r.badge, r.client), ClientName(r.reader_badge, r.reader_client));
    let (task, session, reader_task, reader_session) =
        (client.task(), client.session(), reader.task(), reader.session());
    let line = shellcmd::audit::Spill {
        addr: r.addr,
        len: u64::from(r.len),
        task: &task,
        session: &session,
        request: r.request,
        times: r.count,
        read,
        reader: (r.read == READ_YES).then_some((&reader_task as _, &reader_session as _, r.reader_request)),
        symbol: &symbol,
        offset: r.offset,
    };
    println!("{}", line);
}

/// Run the audit of server `name` for `requests` requests.
pub fn run(tasks: Cap<Task>, name: &str, requests: u32, interrupted: &mut dyn FnMut() -> bool) -> Status {
    let Some(index) = tasks.find(name) else {
        return Out.fail(format_args!("audit: no task named {}", name));
    };
    let mut clients = match clients(name) {
        Ok(c) => c,
        Err(why) => {
            close();
            return Out.fail(format_args!("audit {}: cannot drive it: {} (audits: {})", name, why, SERVERS));
        }
    };
    let status = match tasks.audit_start(index) {
        Ok(pages) => {
            println!(
                "audit {}: {} pages of private memory watched; {} clients take turns",
                name,
                pages,
                clients.len()
            );
            drive(tasks, index, name, &mut clients, requests, interrupted)
        }
        Err(Error::NotAServer) => {
            Out.fail(format_args!("audit {}: it serves no endpoint: nothing to audit", name))
        }
        Err(Error::Busy) => Out.fail(format_args!("audit {}: another audit is running", name)),
        Err(e) => Out.fail(format_args!("audit {}: cannot start: {}", name, e)),
    };
    drop(clients);
    close();
    status
}

fn close() {
    for s in SLOTS {
        let _ = cap_delete(s);
    }
}

fn drive(
    tasks: Cap<Task>,
    index: usize,
    name: &str,
    clients: &mut [Client],
    requests: u32,
    interrupted: &mut dyn FnMut() -> bool,
) -> Status {
    let mut rng = Rng(0xA0D1);
    let mut wrong = 0u32;
    let mut stopped = None;
    'drive: for turn in 0.. {
        for c in clients.iter_mut() {
            if !c.step(&mut rng) {
                wrong += 1;
            }
            match tasks.audit_summary(index) {
                Ok(s) if s.active == 0 => {
                    stopped = Some("the server stopped during the audit");
                    break 'drive;
                }
                Ok(s) if s.requests >= requests => break 'drive,
                Ok(_) => {}
                Err(e) => {
                    stopped = Some(e.describe());
                    break 'drive;
                }
            }
            if interrupted() {
                stopped = Some("interrupted");
                break 'drive;
            }
        }
        if turn > requests {
            stopped = Some("the server hears none of the workload's requests");
            break;
        }
    }
    let _ = tasks.audit_stop(index);
    let summary = match tasks.audit_summary(index) {
        Ok(s) => s,
        Err(e) => return Out.fail(format_args!("audit {}: no summary: {}", name, e)),
    };
    for n in 0.. {
        match tasks.audit_record(index, n) {
            Ok(r) => print_record(&r),
            Err(_) => break,
        }
    }
    let clean = summary.spills == 0 && summary.dropped == 0;
    let line = shellcmd::audit::Summary {
        name,
        requests: summary.requests,
        clients: summary.clients,
        switches: summary.switches,
        pages: u64::from(summary.pages),
        spill: u64::from(summary.spills),
        spill_bytes: u64::from(summary.spill_bytes),
        declared: u64::from(summary.declared),
        declared_changed: u64::from(summary.declared_bytes),
        dropped: u64::from(summary.dropped),
        clean,
    };
    println!("{}", line);
    if wrong > 0 {
        println!("audit {}: {} workload steps got a wrong answer or an error", name, wrong);
    }
    if let Some(why) = stopped {
        return Out.fail(format_args!("audit {}: ended early: {}", name, why));
    }
    if summary.switches == 0 {
        return Out
            .fail(format_args!("audit {}: no two clients' requests took turns: nothing was checked", name));
    }
    if clean && wrong == 0 {
        0
    } else {
        1
    }
}
