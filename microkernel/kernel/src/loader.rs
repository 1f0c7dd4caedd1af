//! Starting the system from the boot manifest: one task per manifest entry, each loaded from the
//! Multiboot2 module of the same name, with the capabilities the manifest lists.
//!
//! Every task gets: its ELF segments (checked by `kcore::elf::plan`), a stack with an unmapped
//! guard page below it, an IPC buffer, and a read-only boot-info page naming its capabilities.
//! A task that cannot be loaded is reported and left out; the rest of the system still starts.

use crate::paging::{AddressSpace, NX, W};
use crate::state::{Kernel, Module};
use axolotl_abi::{
    padded, BootCap, BootInfo, CapType, Error, Rights, TaskState, BOOT_CAPS, BOOT_INFO, BOOT_INFO_MAGIC,
    IPC_BUFFER, PAGE_SIZE, SSR_WINDOW, USER_STACK_SIZE, USER_STACK_TOP,
};
use axolotl_kcore::cap::{Capability, Object};
use axolotl_kcore::elf::{self, ElfError};
use axolotl_kcore::manifest::{self, CapSpec, TaskSpec};
use axolotl_kcore::TaskId;
use core::fmt;

pub enum LoadError {
    NoModule,
    Elf(ElfError),
    Kernel(Error),
    TooManyObjects,
}

impl From<Error> for LoadError {
    fn from(e: Error) -> Self {
        LoadError::Kernel(e)
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::NoModule => f.write_str("no boot module of that name"),
            LoadError::Elf(e) => write!(f, "bad ELF image: {e:?}"),
            LoadError::Kernel(e) => write!(f, "{e}"),
            LoadError::TooManyObjects => f.write_str("kernel object table full"),
        }
    }
}

/// An endpoint created for a `serve` line: its name, index and the server's original cap id.
struct Served {
    name: manifest::Name,
    ep: u16,
    cap_id: u64,
}

/// Load every task of the manifest. Returns how many were loaded.
pub fn load_system(k: &mut Kernel, text: &str) -> usize {
    let m = match manifest::parse(text) {
        Ok(m) => m,
        Err(e) => {
            crate::kprintln!("cannot start any task: {e}");
            return 0;
        }
    };
    let mut served: heapless::Vec<Served, { crate::state::MAX_ENDPOINTS }> = heapless::Vec::new();
    for spec in &m.tasks {
        for c in &spec.caps {
            if let CapSpec::Serve(name) = c {
                let Some(ep) = k.endpoints.iter().position(|e| !e.live) else {
                    crate::kprintln!("endpoint table full; {name} not created");
                    continue;
                };
                let e = &mut k.endpoints[ep];
                e.live = true;
                e.name = padded(name);
                let cap_id = k.new_cap_id();
                let _ = served.push(Served { name: name.clone(), ep: ep as u16, cap_id });
            }
        }
    }
    let mut loaded = 0;
    for (i, spec) in m.tasks.iter().enumerate() {
        match load_task(k, i, spec, &served) {
            Ok(()) => loaded += 1,
            Err(e) => crate::kprintln!("task {} not loaded: {}", spec.name, e),
        }
    }
    loaded
}

fn load_task(k: &mut Kernel, index: usize, spec: &TaskSpec, served: &[Served]) -> Result<(), LoadError> {
    let module =
        k.modules[..k.module_count].iter().position(|m| m.name() == spec.name).ok_or(LoadError::NoModule)?;
    let boot_page = k.frames.alloc_zeroed()?;
    let id = TaskId { index: index as u16, generation: 0 };
    {
        let t = &mut k.tasks[index];
        t.id = id;
        t.name = padded(&spec.name);
        t.set_priority(spec.priority);
        t.module = module;
        t.boot_info = boot_page;
        t.ssr_quota = spec.quota;
        t.supervised = spec.supervised;
        t.supervisor = spec.supervisor;
    }
    if let Err(e) = build_image(k, index) {
        k.frames.free(boot_page);
        k.tasks[index] = crate::state::Tcb::EMPTY;
        return Err(e);
    }
    k.tasks[index].state = TaskState::Dormant;

    let mut boot = BootInfo {
        magic: BOOT_INFO_MAGIC,
        task_index: index as u32,
        generation: 0,
        name: padded(&spec.name),
        cap_count: 0,
        _pad: 0,
        boot_tsc: k.boot_tsc,
        tsc_per_ms: k.tsc_per_ms,
        caps: [BootCap::EMPTY; BOOT_CAPS],
    };
    let mut slot = 1u64;
    for c in &spec.caps {
        let given = grant(k, index, id, c, served, &mut slot)?;
        for (s, kind) in given.into_iter().flatten() {
            if let Some(entry) = boot.caps.get_mut(boot.cap_count as usize) {
                *entry = BootCap { slot: s as u8, kind: kind as u8, name: padded(c.name()) };
                boot.cap_count += 1;
            }
        }
    }
    let bytes = bytemuck::bytes_of(&boot);
    // SAFETY: the page is this task's fresh boot-info frame, identity mapped, and BootInfo fits
    // in a page.
    unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), boot_page as *mut u8, bytes.len()) };
    if !spec.dormant {
        k.make_ready(index);
    }
    Ok(())
}

/// Build task `t`'s address space from its pristine boot module: ELF segments, stack, IPC
/// buffer, the SSR window's page table, and its boot-info page (kept across restarts, with the
/// generation updated). Sets a fresh register context. Used at boot and by `task_restart`.
pub fn build_image(k: &mut Kernel, t: usize) -> Result<(), LoadError> {
    let image = k.modules[k.tasks[t].module];
    let plan = elf::plan(image.bytes()).map_err(LoadError::Elf)?;
    let space = AddressSpace::new(&mut k.frames)?;
    let built = map_image(k, &space, &image, &plan).and_then(|ipc| {
        let boot = k.tasks[t].boot_info;
        space.map(&mut k.frames, BOOT_INFO, boot, NX)?;
        let pte = space.leaf_entry(&mut k.frames, SSR_WINDOW)?;
        Ok((ipc, pte))
    });
    let (ipc, ssr_pte) = match built {
        Ok(v) => v,
        Err(e) => {
            space.destroy(&mut k.frames);
            return Err(e);
        }
    };
    let task = &mut k.tasks[t];
    // SAFETY: the boot-info frame is this task's, identity mapped; `generation` is a u32 field of
    // the repr(C) BootInfo at its start.
    unsafe {
        let info = task.boot_info as *mut BootInfo;
        core::ptr::addr_of_mut!((*info).generation).write(task.id.generation);
    }
    task.ctx = crate::arch::trap::user_frame(plan.entry, USER_STACK_TOP - 8, BOOT_INFO);
    // What the last incarnation declared, this one declares again if it wants to.
    k.declared[t] = [crate::state::Declared::NONE; axolotl_abi::MAX_DECLARED];
    let task = &mut k.tasks[t];
    task.space = Some(space);
    task.ipc_buffer = ipc;
    task.ssr_pte = ssr_pte;
    Ok(())
}

/// Map the ELF segments, the stack and the IPC buffer. Returns the IPC buffer's frame.
fn map_image(
    k: &mut Kernel,
    space: &AddressSpace,
    image: &Module,
    plan: &elf::LoadPlan,
) -> Result<u64, LoadError> {
    let bytes = image.bytes();
    for seg in &plan.segments {
        let flags = if seg.writable { W } else { 0 } | if seg.executable { 0 } else { NX };
        let (start, end) = seg.pages();
        for page in (start..end).step_by(PAGE_SIZE as usize) {
            // The file's bytes in this page (none in a page of pure bss), at their offset.
            let (at, range) = seg.file_bytes_in(page);
            let src = bytes.get(range).ok_or(LoadError::Kernel(Error::InvalidArgument))?;
            space.map_filled(&mut k.frames, page, flags, at, src)?;
        }
    }
    for page in (USER_STACK_TOP - USER_STACK_SIZE..USER_STACK_TOP).step_by(PAGE_SIZE as usize) {
        space.map_new(&mut k.frames, page, W | NX)?;
    }
    Ok(space.map_new(&mut k.frames, IPC_BUFFER, W | NX)?)
}

/// Create the capability (for `irq` two, for `pci` three) a manifest line gives, at the next
/// slots.
fn grant(
    k: &mut Kernel,
    task: usize,
    id: TaskId,
    spec: &CapSpec,
    served: &[Served],
    slot: &mut u64,
) -> Result<[Option<(u64, CapType)>; 3], LoadError> {
    let ep_of = |name: &str| served.iter().find(|s| s.name == name).ok_or(LoadError::Kernel(Error::Dead));
    let mut caps: [Option<Capability>; 3] = [None, None, None];
    match spec {
        CapSpec::Serve(name) => {
            let s = ep_of(name)?;
            caps[0] = Some(Capability::original(Object::Endpoint(s.ep), Rights::ALL, 0, s.cap_id));
        }
        CapSpec::Call(name) => {
            let s = ep_of(name)?;
            let cap = Capability {
                object: Object::Endpoint(s.ep),
                rights: Rights::WRITE.union(Rights::GRANT),
                badge: task as u64 + 1,
                id: k.new_cap_id(),
                parent: s.cap_id,
            };
            caps[0] = Some(cap);
        }
        CapSpec::SsrView(name) => {
            let s = ep_of(name)?;
            caps[0] = Some(Capability::original(Object::SsrView(s.ep), Rights::READ, 0, k.new_cap_id()));
        }
        CapSpec::Notification(_) => {
            let n = k.notifications.iter().position(|n| !n.live).ok_or(LoadError::TooManyObjects)?;
            k.notifications[n].live = true;
            let ntfn = Object::Notification(n as u16);
            caps[0] = Some(Capability::original(ntfn, Rights::READ.union(Rights::WRITE), 0, k.new_cap_id()));
        }
        CapSpec::TaskAll => {
            caps[0] = Some(Capability::original(Object::Task(None), Rights::ALL, 0, k.new_cap_id()))
        }
        CapSpec::TaskSelf => {
            caps[0] = Some(Capability::original(Object::Task(Some(id)), Rights::ALL, 0, k.new_cap_id()))
        }
        CapSpec::IoPort { base, len, .. } => {
            let obj = Object::IoPort { base: *base, len: *len };
            caps[0] = Some(Capability::original(obj, Rights::ALL, 0, k.new_cap_id()));
        }
        CapSpec::Irq { line, .. } => {
            let [irq, ntfn] = interrupt(k, *line)?;
            (caps[0], caps[1]) = (Some(irq), Some(ntfn));
        }
        CapSpec::Memory { pages, .. } => {
            let m = create_memory(k, *pages, None)?;
            caps[0] = Some(Capability::original(Object::Memory(m), Rights::ALL, 0, k.new_cap_id()));
        }
        CapSpec::Dma { pages, .. } => {
            let m = create_memory(k, *pages, Some(task))?;
            caps[0] = Some(Capability::original(Object::Memory(m), Rights::ALL, 0, k.new_cap_id()));
        }
        CapSpec::Pci { name, ids } => {
            // An absent device is no error: the slots stay empty and the driver says so.
            let Some(dev) = crate::pci::claim(k, task, ids) else {
                crate::kprintln!(
                    "{}: no free PCI device for '{}' ({} id(s) asked)",
                    spec_task(k, task),
                    name,
                    ids.len()
                );
                return Ok([None, None, None]);
            };
            caps[0] = Some(Capability::original(Object::Pci(dev), Rights::ALL, 0, k.new_cap_id()));
            match crate::pci::interrupt_line(k, dev).filter(|&l| k.irqs[l as usize].is_none()) {
                Some(line) => {
                    let [irq, ntfn] = interrupt(k, line)?;
                    (caps[1], caps[2]) = (Some(irq), Some(ntfn));
                }
                None => {
                    crate::kprintln!("{}: '{}' has no interrupt line of its own", spec_task(k, task), name)
                }
            }
        }
    }
    let mut given = [None, None, None];
    for (i, cap) in caps.into_iter().enumerate() {
        if let Some(cap) = cap {
            k.cspaces[task].insert(*slot, cap)?;
            given[i] = Some((*slot, cap.object.cap_type()));
            *slot += 1;
        }
    }
    Ok(given)
}

fn spec_task(k: &Kernel, t: usize) -> &str {
    k.tasks[t].name()
}

/// An Interrupt capability for `line` and the notification it signals.
fn interrupt(k: &mut Kernel, line: u8) -> Result<[Capability; 2], LoadError> {
    let n = k.notifications.iter().position(|n| !n.live).ok_or(LoadError::TooManyObjects)?;
    k.notifications[n].live = true;
    k.irqs[line as usize] = Some(n as u16);
    let irq = Capability::original(Object::Interrupt(line), Rights::ALL, 0, k.new_cap_id());
    let ntfn = Object::Notification(n as u16);
    Ok([irq, Capability::original(ntfn, Rights::READ.union(Rights::WRITE), 0, k.new_cap_id())])
}

/// A memory object of `pages` zeroed pages; for a DMA region (`dma_of`: the task it is given
/// to), physically contiguous. Its frames are never freed (see `pci`: a device may still
/// write a DMA region after its driver stopped).
fn create_memory(k: &mut Kernel, pages: u16, dma_of: Option<usize>) -> Result<u16, LoadError> {
    let m = k.memory.iter().position(|m| !m.live).ok_or(LoadError::TooManyObjects)?;
    let list = k.frames.alloc_zeroed()?;
    let dma = match dma_of {
        Some(t) => {
            let base = k.frames.contiguous_zeroed(pages as usize)?;
            Some((base, t as u16))
        }
        None => None,
    };
    for p in 0..pages as usize {
        let frame = match dma {
            Some((base, _)) => base + p as u64 * PAGE_SIZE,
            None => k.frames.alloc_zeroed()?,
        };
        // SAFETY: `list` is a fresh frame; `pages <= 256` entries of 8 bytes fit in it.
        unsafe { *(list as *mut u64).add(p) = frame };
    }
    let obj = &mut k.memory[m];
    obj.live = true;
    obj.page_list = list;
    obj.pages = pages;
    obj.dma = dma;
    Ok(m as u16)
}
