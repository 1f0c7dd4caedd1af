//! The runtime every Axolotl user task links: syscall stubs ([`sys`]), typed capability handles
//! and IPC ([`cap`]), a server's receive loop ([`serve`]), the task entry point, boot info and
//! panic handler ([`rt`]). Console output
//! (`println!`) lives with the console protocol in `console-api`.
//!
//! A task is a `#![no_std] #![no_main]` binary that names its main function with [`entry!`]:
//!
//! ```ignore
//! userlib::entry!(main);
//! fn main(boot: &'static userlib::abi::BootInfo) -> Result<(), userlib::abi::Error> { Ok(()) }
//! ```
#![no_std]
#![forbid(unsafe_op_in_unsafe_fn)]
// The syscall stubs, the IPC buffer and SSR window views, and the entry point are this crate's
// unsafe work, so that the servers above it need none.
#![allow(unsafe_code)]

pub mod cap;
pub mod msg;
pub mod rt;
pub mod serve;
pub mod sys;

pub use axolotl_abi as abi;

/// Declare this server's version for `task_update` (the shell's `update NAME PATH`): which
/// server it is, its version, and the client-state layouts (`ssr::Layout` kind and version) it
/// reads. The declaration lands in the image's `.axolotl.version` section, where the kernel
/// finds it; an image without one cannot replace a running server.
///
/// ```ignore
/// userlib::version!("fs", 2, [(SsrState::KIND, 3), (SsrState::KIND, 4)]);
/// ```
#[macro_export]
macro_rules! version {
    ($name:expr, $version:expr, [$(($kind:expr, $layout:expr)),* $(,)?]) => {
        #[used]
        #[link_section = ".axolotl.version"]
        static AXOLOTL_VERSION: $crate::abi::ServerVersion =
            $crate::abi::ServerVersion::new($name, $version, &[$(($kind, $layout)),*]);
    };
}

/// Declare `value` (a static, or a value of `main`'s frame that lives as long as the task) as
/// server-global state: memory that is meant to change across clients' requests (a cache, a
/// statistics counter, the table of parked callers), which the state-spill audit then reports
/// as declared, not as spill. This is the one way a server declares such state, so
/// `grep -rn 'userlib::declare' servers/` lists all of it; call it at start, before serving.
/// At most `abi::MAX_DECLARED` per incarnation; `name` at most `abi::DECLARED_NAME_LEN` bytes.
pub fn declare<T: ?Sized>(value: &T, name: &str) -> Result<(), abi::Error> {
    let (addr, len) = (value as *const T as *const u8 as u64, core::mem::size_of_val(value) as u64);
    let args = [addr, len, name.as_ptr() as u64, name.len() as u64, 0, 0];
    sys::call(abi::Sysno::Declare, args).map(|_| ())
}

/// Define the task's entry point: `main(&BootInfo) -> Result<(), Error>`. An `Err` ends the task
/// with the error's code; a panic ends it as a fault with the panic message.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[no_mangle]
        extern "C" fn _start() -> ! {
            $crate::rt::start($main)
        }
    };
}
