//! The libos image: the kernel plus the cells, wired together at boot.
//!
//! ```text
//!  console ◄── mailbox ── shell ── endpoint ──► fs ──► virtio-blk ──► PCI disk (if attached:
//!     ▲  IRQ 4 bytes        │                     │      Device: guard, DMA, BARs, INTx)
//!     └── (kernel)          │                     └───► ramdisk (if not; MappedPages)
//!                           ├──── endpoint ──► timer
//!                           ├──── endpoint ──► echo (benchmark partner)
//!                           └──── endpoints ─► echo-0, -64, -512, -4096 (`bench grow`'s partners)
//!  scribe (fs and timer sessions of its own; records in /scribe/log)
//!  auditor-a, auditor-b (the two clients `audit` drives a cell with: fs, timer, ramdisk,
//!                        virtio-blk, console)
//! ```
//! This is the composition root: it holds no state of its own after boot. The kernel hands it
//! the one [`libos_kernel::Privilege`] token; it gives it to the shell, and to no other cell.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

libos_kernel::entry!(wire);

fn wire(privilege: libos_kernel::Privilege) {
    let serial = libos_kernel::Serial::take().expect("the serial device is taken once, here");
    let console = cell_console::start(serial).expect("console");
    let ramdisk = cell_ramdisk::start().expect("ramdisk");
    let device = libos_kernel::Device::take(&cell_virtio_blk::IDS, cell_virtio_blk::DMA_PAGES);
    let disk = cell_virtio_blk::start(device, console.clone()).expect("virtio-blk");
    // The fs cell's sealing key: chosen now, kept by its task across incarnations.
    let key = libos_kernel::rdtsc().rotate_left(17) ^ 0x5eed_f00d_cafe_d00d;
    let fs = cell_fs::start(ramdisk, disk, key, console.clone()).expect("fs");
    let timer = cell_timer::start().expect("timer");
    let echo = cell_shell::start_echo().expect("echo");
    let echoes = cell_shell::start_echoes().expect("echoes");
    cell_shell::start_scribe(console.clone(), fs, timer).expect("scribe");
    let reach = cell_shell::AuditReach { console: console.clone(), fs, timer, ramdisk, disk };
    let auditors = cell_shell::start_auditors(reach).expect("auditors");
    cell_shell::start(cell_shell::Wiring { console, fs, timer, echo, echoes, disk, auditors }, privilege)
        .expect("shell");
}
