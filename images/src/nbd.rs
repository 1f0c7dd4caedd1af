//! A small NBD server that serves a disk image from memory and records every write and flush,
//! in order: the disk `cargo os crashtest` gives QEMU (`-drive file=nbd://127.0.0.1:PORT`).
//! Unrecorded and answering each request after a fixed delay, it is the disk of `cargo os
//! bench`'s disk rows (`bench::DEVICE_LATENCY`).
//!
//! ```text
//!  handshake  "NBDMAGIC" IHAVEOPT, flags: fixed newstyle, no zeroes
//!  options    EXPORT_NAME ─► size, flags, transmission
//!             GO / INFO   ─► INFO(export: size, flags), ACK (GO: transmission)
//!             others      ─► ERR_UNSUP (QEMU then does without: structured replies, contexts)
//!  commands   READ, WRITE (recorded), FLUSH (recorded), DISC; others ─► EINVAL
//! ```
//! Protocol: <https://github.com/NetworkBlockDevice/nbd/blob/master/doc/proto.md>. Only
//! 512-byte-aligned writes are expected (virtio-blk requests of whole sectors); any other is
//! recorded as the sectors it changes.

use crate::{fail, Result};
use fs_core::crash::Event;
use fs_core::{Block, BLOCK_SIZE};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NBDMAGIC: u64 = 0x4e42_444d_4147_4943;
const IHAVEOPT: u64 = 0x4948_4156_454f_5054;
const REPLY_MAGIC: u64 = 0x0003_e889_0455_65a9;
const REQUEST_MAGIC: u32 = 0x2560_9513;
const SIMPLE_REPLY_MAGIC: u32 = 0x6744_6698;

const FLAG_FIXED_NEWSTYLE: u16 = 1;
const FLAG_NO_ZEROES: u16 = 2;
const OPT_EXPORT_NAME: u32 = 1;
const OPT_ABORT: u32 = 2;
const OPT_INFO: u32 = 6;
const OPT_GO: u32 = 7;
const REP_ACK: u32 = 1;
const REP_INFO: u32 = 3;
const REP_ERR_UNSUP: u32 = (1 << 31) + 1;
const INFO_EXPORT: u16 = 0;
const TX_HAS_FLAGS: u16 = 1;
const TX_SEND_FLUSH: u16 = 4;
const CMD_READ: u16 = 0;
const CMD_WRITE: u16 = 1;
const CMD_DISC: u16 = 2;
const CMD_FLUSH: u16 = 3;
const EINVAL: u32 = 22;

/// The disk as the server holds it, and what was done to it.
pub struct Recorder {
    pub image: Vec<u8>,
    pub log: Vec<Event>,
}

/// A server for one client, listening on a loopback port.
pub struct Server {
    pub port: u16,
    pub disk: Arc<Mutex<Recorder>>,
    thread: std::thread::JoinHandle<Result<()>>,
}

impl Server {
    /// Listen on 127.0.0.1 (a free port) and serve `image` to the first client that connects,
    /// until it disconnects.
    pub fn start(image: Vec<u8>) -> Result<Server> {
        Server::start_with(image, Duration::ZERO, true)
    }

    /// Like [`Server::start`], answering each request only once `latency` (real time) has
    /// passed since it arrived, as a device that takes that long would, and keeping a log of
    /// the writes only if `record`.
    pub fn start_with(image: Vec<u8>, latency: Duration, record: bool) -> Result<Server> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| fail!("nbd: cannot listen: {e}"))?;
        let port = listener.local_addr().map_err(|e| fail!("nbd: {e}"))?.port();
        let disk = Arc::new(Mutex::new(Recorder { image, log: Vec::new() }));
        let shared = disk.clone();
        let thread = std::thread::spawn(move || {
            let (stream, _) = listener.accept().map_err(|e| fail!("nbd: accept: {e}"))?;
            let _ = stream.set_nodelay(true);
            serve(stream, &shared, latency, record)
        });
        Ok(Server { port, disk, thread })
    }

    /// How many events so far.
    pub fn events(&self) -> usize {
        self.disk.lock().expect("nbd lock").log.len()
    }

    /// Wait for the client to go (QEMU exited), and say how the session ended.
    pub fn finish(self) -> Result<Recorder> {
        let ended = self.thread.join().map_err(|_| fail!("nbd: the server thread panicked"))?;
        let disk = Arc::try_unwrap(self.disk).map_err(|_| fail!("nbd: the disk is still shared"))?;
        let rec = disk.into_inner().map_err(|_| fail!("nbd: lock poisoned"))?;
        // A client that vanished mid-request (QEMU killed) is an ending like any other here; a
        // session that never got going is not.
        match ended {
            Err(e) if rec.log.is_empty() => Err(e),
            _ => Ok(rec),
        }
    }
}

fn io(e: std::io::Error) -> crate::Failure {
    fail!("nbd: {e}")
}

fn read_u16(s: &mut TcpStream) -> Result<u16> {
    let mut b = [0; 2];
    s.read_exact(&mut b).map_err(io)?;
    Ok(u16::from_be_bytes(b))
}

fn read_u32(s: &mut TcpStream) -> Result<u32> {
    let mut b = [0; 4];
    s.read_exact(&mut b).map_err(io)?;
    Ok(u32::from_be_bytes(b))
}

fn read_u64(s: &mut TcpStream) -> Result<u64> {
    let mut b = [0; 8];
    s.read_exact(&mut b).map_err(io)?;
    Ok(u64::from_be_bytes(b))
}

fn option_reply(s: &mut TcpStream, option: u32, kind: u32, data: &[u8]) -> Result<()> {
    let mut out = Vec::with_capacity(20 + data.len());
    out.extend(REPLY_MAGIC.to_be_bytes());
    out.extend(option.to_be_bytes());
    out.extend(kind.to_be_bytes());
    out.extend((data.len() as u32).to_be_bytes());
    out.extend(data);
    s.write_all(&out).map_err(io)
}

fn serve(mut s: TcpStream, disk: &Mutex<Recorder>, latency: Duration, record: bool) -> Result<()> {
    let size = disk.lock().expect("nbd lock").image.len() as u64;
    let tx_flags = TX_HAS_FLAGS | TX_SEND_FLUSH;
    let mut hello = Vec::new();
    hello.extend(NBDMAGIC.to_be_bytes());
    hello.extend(IHAVEOPT.to_be_bytes());
    hello.extend((FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES).to_be_bytes());
    s.write_all(&hello).map_err(io)?;
    let client_flags = read_u32(&mut s)?;
    // Options until one starts the transmission.
    loop {
        if read_u64(&mut s)? != IHAVEOPT {
            return Err(fail!("nbd: bad option magic"));
        }
        let option = read_u32(&mut s)?;
        let len = read_u32(&mut s)? as usize;
        if len > 4096 {
            return Err(fail!("nbd: option of {len} bytes"));
        }
        let mut data = vec![0; len];
        s.read_exact(&mut data).map_err(io)?;
        match option {
            OPT_EXPORT_NAME => {
                let mut out = Vec::new();
                out.extend(size.to_be_bytes());
                out.extend(tx_flags.to_be_bytes());
                if client_flags & FLAG_NO_ZEROES as u32 == 0 {
                    out.extend([0u8; 124]);
                }
                s.write_all(&out).map_err(io)?;
                break;
            }
            OPT_INFO | OPT_GO => {
                let mut info = Vec::new();
                info.extend(INFO_EXPORT.to_be_bytes());
                info.extend(size.to_be_bytes());
                info.extend(tx_flags.to_be_bytes());
                option_reply(&mut s, option, REP_INFO, &info)?;
                option_reply(&mut s, option, REP_ACK, &[])?;
                if option == OPT_GO {
                    break;
                }
            }
            OPT_ABORT => {
                option_reply(&mut s, option, REP_ACK, &[])?;
                return Ok(());
            }
            _ => option_reply(&mut s, option, REP_ERR_UNSUP, &[])?,
        }
    }
    // Transmission.
    loop {
        let magic = match read_u32(&mut s) {
            Ok(m) => m,
            Err(_) => return Ok(()), // the client went away
        };
        if magic != REQUEST_MAGIC {
            return Err(fail!("nbd: bad request magic {magic:#x}"));
        }
        let _flags = read_u16(&mut s)?;
        let kind = read_u16(&mut s)?;
        let handle = read_u64(&mut s)?;
        let offset = read_u64(&mut s)?;
        let len = read_u32(&mut s)? as usize;
        let arrived = Instant::now();
        let reply = |s: &mut TcpStream, error: u32, data: &[u8]| -> Result<()> {
            if let Some(left) = latency.checked_sub(arrived.elapsed()) {
                std::thread::sleep(left);
            }
            let mut out = Vec::with_capacity(16 + data.len());
            out.extend(SIMPLE_REPLY_MAGIC.to_be_bytes());
            out.extend(error.to_be_bytes());
            out.extend(handle.to_be_bytes());
            out.extend(data);
            s.write_all(&out).map_err(io)
        };
        let in_range = offset.checked_add(len as u64).is_some_and(|end| end <= size);
        match kind {
            CMD_READ if in_range => {
                let data =
                    disk.lock().expect("nbd lock").image[offset as usize..offset as usize + len].to_vec();
                reply(&mut s, 0, &data)?;
            }
            CMD_WRITE => {
                let mut data = vec![0; len];
                s.read_exact(&mut data).map_err(io)?;
                if !in_range {
                    reply(&mut s, EINVAL, &[])?;
                    continue;
                }
                {
                    let mut d = disk.lock().expect("nbd lock");
                    d.image[offset as usize..offset as usize + len].copy_from_slice(&data);
                    if !record {
                        drop(d);
                        reply(&mut s, 0, &[])?;
                        continue;
                    }
                    let first = offset as usize / BLOCK_SIZE;
                    let last = (offset as usize + len).div_ceil(BLOCK_SIZE);
                    for b in first..last {
                        let mut block: Block = [0; BLOCK_SIZE];
                        block.copy_from_slice(&d.image[b * BLOCK_SIZE..(b + 1) * BLOCK_SIZE]);
                        d.log.push(Event::Write(b as u32, block));
                    }
                }
                reply(&mut s, 0, &[])?;
            }
            CMD_FLUSH => {
                if record {
                    disk.lock().expect("nbd lock").log.push(Event::Flush);
                }
                reply(&mut s, 0, &[])?;
            }
            CMD_DISC => return Ok(()),
            _ => reply(&mut s, EINVAL, &[])?,
        }
    }
}
