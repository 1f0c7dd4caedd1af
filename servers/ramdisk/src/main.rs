//! The RAM disk: serves the `block` endpoint from a memory object.
//!
//! The blocks are not in this task's own memory: they are the pages of the kernel memory
//! object the manifest names `disk`, which this task maps at start. The object belongs to the
//! kernel, so when this server (or anything else) is restarted, the next incarnation maps the
//! same pages and every block written before is still there. The server keeps no client state.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use block_api::{BlockError, Request, Response, BLOCK_SIZE};
use userlib::abi::{Error, MAP_BASE};
use userlib::cap::{Cap, Endpoint, Memory};
use userlib::msg;

fn handle<'a>(disk: &'a mut [u8], req: Result<Request<'_>, msg::CallError>) -> Response<'a> {
    let blocks = (disk.len() / BLOCK_SIZE) as u32;
    match req {
        Err(_) => Response::Error(BlockError::Malformed),
        Ok(Request::Info) => Response::Info { blocks },
        // RAM holds a write as soon as it is made; there is nothing more durable to make it.
        Ok(Request::Flush) => Response::Done,
        Ok(Request::Read { block }) if block < blocks => {
            let at = block as usize * BLOCK_SIZE;
            Response::Data(&disk[at..at + BLOCK_SIZE])
        }
        Ok(Request::Write { block, data }) if block < blocks => {
            if data.len() != BLOCK_SIZE {
                return Response::Error(BlockError::BadLength);
            }
            let at = block as usize * BLOCK_SIZE;
            disk[at..at + BLOCK_SIZE].copy_from_slice(data);
            Response::Done
        }
        Ok(Request::Read { .. } | Request::Write { .. }) => Response::Error(BlockError::OutOfRange),
    }
}

// No client state in SSRs: any version reads what there is.
userlib::version!("ramdisk", 1, []);
userlib::entry!(main);

fn main(boot: &'static userlib::abi::BootInfo) -> Result<(), Error> {
    let ep = Cap::<Endpoint>::from_boot(boot, "block").ok_or(Error::EmptySlot)?;
    let mem = Cap::<Memory>::from_boot(boot, "disk").ok_or(Error::EmptySlot)?;
    let disk = mem.map(MAP_BASE, true)?.bytes;
    block_api::serve(ep, |req| block_api::reply(&handle(disk, req)))
}
