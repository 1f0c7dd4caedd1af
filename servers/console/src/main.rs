//! The console server: the 16550 UART (COM1) driven from user space.
//!
//! It holds only what the manifest gives it: the COM1 port range (opened to its `in`/`out`
//! through the I/O-permission bitmap), IRQ 4 with its notification, and the `console` endpoint.
//! Output is written synchronously before the reply, so a client whose `write` returned knows
//! its bytes reached the UART. Input arrives by interrupt into a ring buffer; a `Read` with no
//! input pending is parked (its reply capability saved) until the interrupt brings bytes.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use console_api::{ConsoleError, Request, Response, LABEL};
use userlib::abi::{Error, LABEL_NOTIFICATION};
use userlib::cap::{save_reply, Cap, Endpoint, Interrupt, IoPort, Message, Notification, Reply};

userlib::entry!(main);

/// Slot where a parked reader's reply capability waits (the manifest fills the low slots).
const PARKED_SLOT: u8 = 63;
const COM1: u16 = 0x3f8;

mod uart {
    //! The 16550 registers this server uses. Port access is allowed by the task's I/O bitmap.
    use userlib::sys::{inb as inp, outb as out};

    /// 115200 8N1, FIFOs on, interrupt on received data, OUT2 so the IRQ reaches the PIC.
    pub fn init(base: u16) {
        out(base + 1, 0x00);
        out(base + 3, 0x80);
        out(base, 0x01);
        out(base + 1, 0x00);
        out(base + 3, 0x03);
        out(base + 2, 0xc7);
        out(base + 4, 0x0b);
        out(base + 1, 0x01);
    }

    pub fn put(base: u16, b: u8) {
        while inp(base + 5) & 0x20 == 0 {
            core::hint::spin_loop();
        }
        out(base, b);
    }

    /// A received byte, if any.
    pub fn get(base: u16) -> Option<u8> {
        (inp(base + 5) & 1 != 0).then(|| inp(base))
    }
}

/// Input received but not yet read.
struct Ring {
    buf: [u8; 512],
    head: usize,
    len: usize,
}

impl Ring {
    fn push(&mut self, b: u8) {
        if self.len < self.buf.len() {
            self.buf[(self.head + self.len) % self.buf.len()] = b;
            self.len += 1;
        }
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

struct Server {
    ring: Ring,
    /// The reader waiting for input and how much it wants.
    parked: Option<(Cap<Reply>, u16)>,
}

/// Encode a response (every response fits the reply buffers used here).
fn encode(resp: &Response<'_>, out: &mut [u8]) -> usize {
    userlib::msg::encode(resp, out).unwrap_or(0)
}

impl Server {
    /// Handle one request; returns the reply to send (length in `out`), or `None` when the
    /// request was parked.
    fn request(&mut self, msg: &Message, out: &mut [u8]) -> Option<usize> {
        let mut payload = [0u8; userlib::abi::IPC_BUFFER_SIZE];
        let n = msg.payload_into(&mut payload);
        let req = match (msg.info.label, userlib::msg::decode::<Request<'_>>(&payload[..n])) {
            (LABEL, Ok(req)) => req,
            _ => return Some(encode(&Response::Error(ConsoleError::Malformed), out)),
        };
        match req {
            Request::Write(bytes) => {
                for &b in bytes {
                    if b == b'\n' {
                        uart::put(COM1, b'\r');
                    }
                    uart::put(COM1, b);
                }
                Some(encode(&Response::Written(bytes.len() as u32), out))
            }
            Request::Read { max } => {
                let mut data = [0u8; 256];
                let want = (max as usize).clamp(1, data.len());
                if self.ring.len > 0 {
                    let k = self.ring.pop_into(&mut data[..want]);
                    return Some(encode(&Response::Data(&data[..k]), out));
                }
                if self.parked.is_some() {
                    return Some(encode(&Response::Error(ConsoleError::Busy), out));
                }
                match save_reply(PARKED_SLOT) {
                    Ok(reply) => {
                        self.parked = Some((reply, want as u16));
                        None
                    }
                    Err(e) => Some(encode(&Response::Error(e.into()), out)),
                }
            }
        }
    }

    /// The UART interrupt fired: drain input, answer a parked reader.
    fn input(&mut self) {
        while let Some(b) = uart::get(COM1) {
            self.ring.push(b);
        }
        if self.ring.len > 0 {
            if let Some((reply, want)) = self.parked.take() {
                let mut data = [0u8; 256];
                let k = self.ring.pop_into(&mut data[..want as usize]);
                let mut out = [0u8; 300];
                let n = encode(&Response::Data(&data[..k]), &mut out);
                // A reader that died meanwhile cannot be answered; its input stays consumed.
                let _ = reply.reply(LABEL, [0; 4], &out[..n]);
            }
        }
    }
}

fn main(boot: &'static userlib::abi::BootInfo) -> Result<(), Error> {
    let ports = Cap::<IoPort>::from_boot(boot, "com1").ok_or(Error::EmptySlot)?;
    let irq = Cap::<Interrupt>::from_boot(boot, "com1").ok_or(Error::EmptySlot)?;
    let irq_note = Cap::<Notification>::from_boot(boot, "com1").ok_or(Error::EmptySlot)?;
    let ep = Cap::<Endpoint>::from_boot(boot, "console").ok_or(Error::EmptySlot)?;
    ports.enable()?;
    irq_note.bind()?;
    uart::init(COM1);
    irq.ack()?;
    let mut server = Server { ring: Ring { buf: [0; 512], head: 0, len: 0 }, parked: None };
    let mut out = [0u8; 300];
    let mut msg = ep.recv()?;
    loop {
        let reply = if msg.info.label == LABEL_NOTIFICATION {
            server.input();
            irq.ack()?;
            None
        } else {
            server.request(&msg, &mut out)
        };
        msg = match reply {
            Some(n) => ep.reply_recv(LABEL, [0; 4], &out[..n])?,
            None => ep.recv()?,
        };
    }
}
