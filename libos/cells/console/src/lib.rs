//! The console cell: one task that drives COM1. Clients send output chunks through an
//! asynchronous mailbox (a print never waits for the UART); the kernel's IRQ 4 handler drops
//! received bytes into the same mailbox, and the console forwards them to the keyboard mailbox
//! the shell reads. The console keeps no client state: a restarted console just carries on with
//! the mailbox, which belongs to the kernel.
#![no_std]
#![forbid(unsafe_code)]

use libos_kernel::{mailbox, Receiver, Sender, Serial};

const CHUNK: usize = 64;
const INBOX: usize = 128;
const KEYS: usize = 256;

// Messages are plain values copied between tasks; boxing a variant would put a pointer into an
// arena that dies with its task.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy)]
pub enum Msg {
    Output { len: u8, bytes: [u8; CHUNK] },
    Input(u8),
}

/// A client's handle: print and read keys.
#[derive(Clone)]
pub struct Console {
    out: Sender<Msg, INBOX>,
    keys: Receiver<u8, KEYS>,
}

impl Console {
    pub fn write(&self, bytes: &[u8]) {
        for chunk in bytes.chunks(CHUNK) {
            let mut b = [0u8; CHUNK];
            b[..chunk.len()].copy_from_slice(chunk);
            self.out.send(Msg::Output { len: chunk.len() as u8, bytes: b });
        }
    }

    /// The next key (waits).
    pub fn read_key(&self) -> u8 {
        self.keys.recv()
    }

    /// The next key if one was typed (never waits).
    pub fn try_key(&self) -> Option<u8> {
        self.keys.try_recv()
    }

    /// Wait until everything printed so far is on the wire.
    pub fn flush(&self) {
        self.out.drain();
    }
}

impl core::fmt::Write for &Console {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.write(s.as_bytes());
        Ok(())
    }
}

/// Spawn the console task on `serial`; returns the client handle.
pub fn start(serial: Serial) -> Result<Console, libos_kernel::SpawnError> {
    let (out, inbox) = mailbox::<Msg, INBOX>();
    let (keys_tx, keys) = mailbox::<u8, KEYS>();
    libos_kernel::attach_input(out.clone(), Msg::Input);
    libos_kernel::spawn("console", 5, true, move || loop {
        match inbox.recv() {
            Msg::Output { len, bytes } => serial.write(&bytes[..(len as usize).min(CHUNK)]),
            Msg::Input(b) => {
                let _ = keys_tx.try_send(b);
            }
        }
    })?;
    Ok(Console { out, keys })
}
