//! The console server: the 16550 UART (COM1) driven from user space.
//!
//! It holds only what the manifest gives it: the COM1 port range (opened to its `in`/`out`
//! through the I/O-permission bitmap), IRQ 4 with its notification, and the `console` endpoint.
//! Output is written synchronously before the reply, so a client whose `write` returned knows
//! its bytes reached the UART. A write survives a crash of the console without printing twice:
//! the console counts the bytes of the write in progress in the UART's scratch register (the
//! device keeps it across incarnations), and a write the kernel delivers again to the next
//! incarnation (`MsgInfo::redelivered`) resumes after the bytes already sent. Only the one byte
//! in flight at the instant of the crash can go out twice. Input arrives by interrupt into a
//! ring buffer; a `Read` with no input pending is parked (its reply capability saved) until the
//! interrupt brings bytes.
//!
//! Version 2 (feature `v2`, installed with `update console`) counts the bytes it writes and
//! reads and answers `Request::Counts` with them. The console keeps no client state in SSRs
//! (its clients call it without sessions), so neither version has a layout to migrate: what
//! version 2 counts lives in its own memory and starts from zero.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use console_api::{ConsoleError, Request, Response, LABEL};
use userlib::abi::{Error, LABEL_NOTIFICATION};
use userlib::cap::{save_reply, Cap, Endpoint, Interrupt, IoPort, Message, Notification, Reply};
use userlib::serve::Answer;
use userlib::sys::Ports;
use x86::uart::{Config, Uart, COM1};

/// Slot where a parked reader's reply capability waits (the manifest fills the low slots).
const PARKED_SLOT: u8 = 63;

/// COM1, through the ports the kernel opened to this task: the same 16550 driver the kernels
/// use for their own output.
const UART: Uart<Ports, COM1> = Uart::new(Ports);

/// The scratch register's value between writes; during one it holds the bytes sent so far
/// (a write is at most `console_api::MAX_WRITE` < 255 bytes).
const NO_WRITE: u8 = u8::MAX;

/// Write `bytes`, counting them in the scratch register; a redelivered write first skips what
/// its failed predecessor already sent.
fn write_once(bytes: &[u8], redelivered: bool) {
    let sent = match UART.scratch() {
        n if redelivered && n != NO_WRITE => (n as usize).min(bytes.len()),
        _ => 0,
    };
    for (i, &b) in bytes.iter().enumerate().skip(sent) {
        send(i, b);
    }
    UART.set_scratch(NO_WRITE);
}

/// Send byte `i` of a write, `b`, after recording that `i` bytes went out before it. Out of
/// line and with the C calling convention (`i` in rdi, `b` in rsi), so that a test can stop
/// the console at a chosen byte of a chosen write through QEMU's gdb stub.
#[inline(never)]
extern "C" fn send(i: usize, b: u8) {
    UART.set_scratch(i as u8);
    UART.write(&[b]);
}

/// Input received but not yet read.
struct Ring {
    buf: [u8; 512],
    head: usize,
    len: usize,
}

impl Ring {
    fn is_full(&self) -> bool {
        self.len == self.buf.len()
    }

    fn push(&mut self, b: u8) {
        debug_assert!(!self.is_full());
        self.buf[(self.head + self.len) % self.buf.len()] = b;
        self.len += 1;
    }

    fn pop_into(&mut self, out: &mut [u8]) -> usize {
        let n = self.len.min(out.len());
        for o in out.iter_mut().take(n) {
            *o = self.buf[self.head];
            self.head = (self.head + 1) % self.buf.len();
        }
        self.len -= n;
        n
    }
}

/// What version 2 counts of the console's traffic since it started.
#[cfg(feature = "v2")]
struct Tally {
    written: u64,
    read: u64,
}

#[cfg(feature = "v2")]
impl Tally {
    const ZERO: Tally = Tally { written: 0, read: 0 };

    fn wrote(&mut self, n: usize) {
        self.written += n as u64;
    }

    fn was_read(&mut self, n: usize) {
        self.read += n as u64;
    }

    fn answer(&self) -> Response<'static> {
        Response::Counts { written: self.written, read: self.read }
    }
}

/// Version 1 counts nothing, and takes `Counts` for a request it does not know.
#[cfg(not(feature = "v2"))]
struct Tally;

#[cfg(not(feature = "v2"))]
impl Tally {
    const ZERO: Tally = Tally;

    fn wrote(&mut self, _: usize) {}

    fn was_read(&mut self, _: usize) {}

    fn answer(&self) -> Response<'static> {
        Response::Error(ConsoleError::Malformed)
    }
}

struct Server {
    ring: Ring,
    /// The reader waiting for input and how much it wants.
    parked: Option<(Cap<Reply>, u16)>,
    tally: Tally,
}

impl Server {
    /// Handle one request: its reply, or `Wait` when the reader was parked.
    fn request(&mut self, msg: &Message) -> Answer {
        let reply = |resp: &Response<'_>| Answer::encode(LABEL, resp);
        msg.with_payload(|payload| {
            let req = match (msg.info.label, userlib::msg::decode::<Request<'_>>(payload)) {
                (LABEL, Ok(req)) => req,
                _ => return reply(&Response::Error(ConsoleError::Malformed)),
            };
            match req {
                Request::Write(bytes) => {
                    write_once(bytes, msg.info.redelivered);
                    self.tally.wrote(bytes.len());
                    reply(&Response::Written(bytes.len() as u32))
                }
                Request::Poll { max } => {
                    let mut data = [0u8; 256];
                    let want = (max as usize).min(data.len());
                    let k = self.take(&mut data[..want]);
                    reply(&Response::Data(&data[..k]))
                }
                Request::Counts => reply(&self.tally.answer()),
                Request::Read { max } => {
                    let mut data = [0u8; 256];
                    let want = (max as usize).clamp(1, data.len());
                    if self.ring.len > 0 {
                        let k = self.take(&mut data[..want]);
                        return reply(&Response::Data(&data[..k]));
                    }
                    if self.parked.is_some() {
                        return reply(&Response::Error(ConsoleError::Busy));
                    }
                    match save_reply(PARKED_SLOT) {
                        Ok(parked) => {
                            self.parked = Some((parked, want as u16));
                            Answer::Wait
                        }
                        Err(e) => reply(&Response::Error(e.into())),
                    }
                }
            }
        })
    }

    /// Take up to `out.len()` bytes of input from the ring (refilled from the UART after);
    /// how many.
    fn take(&mut self, out: &mut [u8]) -> usize {
        let k = self.ring.pop_into(out);
        self.fill();
        self.tally.was_read(k);
        k
    }

    /// Move waiting bytes from the UART into the ring. When the ring is full the rest stay in
    /// the UART with its interrupt off: the serial line backs up (QEMU holds the host's bytes)
    /// and nothing typed is dropped; a `Read` that makes room calls this again.
    fn fill(&mut self) {
        while !self.ring.is_full() {
            match UART.try_get() {
                Some(b) => self.ring.push(b),
                None => break,
            }
        }
        UART.set_rx_interrupt(!self.ring.is_full());
    }

    /// The UART interrupt fired: drain input, answer a parked reader.
    fn input(&mut self) {
        self.fill();
        if self.ring.len > 0 {
            if let Some((reply, want)) = self.parked.take() {
                let mut data = [0u8; 256];
                let k = self.take(&mut data[..want as usize]);
                let mut out = [0u8; 300];
                let n = userlib::msg::encode(&Response::Data(&data[..k]), &mut out).unwrap_or(0);
                // A reader that died meanwhile cannot be answered; its input stays consumed.
                let _ = reply.reply(LABEL, [0; 4], &out[..n]);
            }
        }
    }
}

// No client state in SSRs: any version reads what there is, and there is no layout to migrate.
#[cfg(not(feature = "v2"))]
userlib::version!("console", 1, []);
#[cfg(feature = "v2")]
userlib::version!("console", 2, []);
userlib::entry!(main);

fn main(boot: &'static userlib::abi::BootInfo) -> Result<(), Error> {
    let ports = Cap::<IoPort>::from_boot(boot, "com1").ok_or(Error::EmptySlot)?;
    let irq = Cap::<Interrupt>::from_boot(boot, "com1").ok_or(Error::EmptySlot)?;
    let irq_note = Cap::<Notification>::from_boot(boot, "com1").ok_or(Error::EmptySlot)?;
    let ep = Cap::<Endpoint>::from_boot(boot, "console").ok_or(Error::EmptySlot)?;
    ports.enable()?;
    irq_note.bind()?;
    // Interrupt on received data, raised at a FIFO level of 14 bytes or after a short pause.
    UART.init(Config { rx_interrupt: true, rx_every_byte: false });
    irq.ack()?;
    let mut server =
        Server { ring: Ring { buf: [0; 512], head: 0, len: 0 }, parked: None, tally: Tally::ZERO };
    // Server-global by design: the keys typed and not yet read (the device's input, read by
    // whoever reads the console), the one reader waiting for them, and version 2's counts of
    // all clients' traffic.
    userlib::declare(&server, "input, reader, counts")?;
    userlib::serve::serve(ep, |msg: &Message| {
        if msg.info.label != LABEL_NOTIFICATION {
            return server.request(msg);
        }
        server.input();
        if let Err(e) = irq.ack() {
            panic!("console: cannot acknowledge the UART's interrupt: {e}");
        }
        Answer::Wait
    })
}
