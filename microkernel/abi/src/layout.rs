//! The fixed virtual address layout every user task sees.
//!
//! ```text
//!  0               1 GiB          2 GiB  +4K     +8K    +12K       +16K   +20K       4 GiB
//!  | kernel (super- | ELF image,    | guard | IPC    | guard | boot    | guard | SSR     | .. | mem_map
//!  | visor only)    | stack below   |       | buffer |       | info(ro)|       | window  |    | area
//!  |                | USER_STACK_TOP|       |        |       |         |       |         |    |
//! ```
//!
//! The kernel lives in the first GiB of every address space, mapped supervisor-only; user
//! programs are linked at [`USER_BASE`]. Everything a task may touch lies in
//! `[USER_BASE, USER_END)`, which is one entry of the top-level page table.

/// Lowest user address; user ELF images are linked here.
pub const USER_BASE: u64 = 0x4000_0000;
/// One past the highest user address.
pub const USER_END: u64 = 0x80_0000_0000;
/// Top of the user stack (exclusive). The stack grows down from here.
pub const USER_STACK_TOP: u64 = 0x8000_0000;
/// Size of the user stack; the page below it is left unmapped as a guard.
pub const USER_STACK_SIZE: u64 = 64 * 1024;
/// The task's IPC buffer: long message payloads are copied from and to here.
pub const IPC_BUFFER: u64 = 0x8000_1000;
/// Size of the IPC buffer and the longest message payload.
pub const IPC_BUFFER_SIZE: usize = 4096;
/// The read-only page where the kernel leaves a [`crate::BootInfo`] for the task.
pub const BOOT_INFO: u64 = 0x8000_3000;
/// The Server State Region window: while a server handles a request that came through a
/// session, the kernel maps that session's SSR here (the same address for every client);
/// otherwise nothing is mapped here and a touch faults.
pub const SSR_WINDOW: u64 = 0x8000_5000;
/// The first word of an initialised SSR ("SSR1"), as the `ssr` library writes it: a header of
/// this magic (u32), the state's kind (u16) and its layout version (u16), then its length and
/// checksum; a backup copy may start at [`SSR_BACKUP_OFFSET`]. The kernel reads the kind and
/// version to refuse an update whose new version cannot read a client's state.
pub const SSR_MAGIC: u32 = 0x3152_5353;
/// Where an SSR's backup copy starts (the `ssr` library's `BACKUP_OFFSET`).
pub const SSR_BACKUP_OFFSET: usize = 2048;
/// Size of one Server State Region (CuriOS: one protected page per client).
pub const SSR_SIZE: usize = 4096;
/// Lowest address `mem_map` accepts (keeps memory objects clear of image, stack and buffers).
pub const MAP_BASE: u64 = 0x1_0000_0000;
/// Page size.
pub const PAGE_SIZE: u64 = 4096;

/// Sessions open at once, system-wide (each holds one SSR page); session indices are below it.
pub const MAX_SESSIONS: usize = 128;

/// Number of capability slots of a task (enough for a client to hold a hundred sessions: `bench
/// grow` opens 64 with fs).
pub const CAP_SLOTS: usize = 128;
