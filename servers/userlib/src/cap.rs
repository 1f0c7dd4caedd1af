//! Typed capability handles. A `Cap<Endpoint>` can only be used for IPC, a `Cap<Notification>`
//! only to signal or wait; the kernel checks the same again on every use.

use crate::sys::{self, Ret};
use axolotl_abi::{BootInfo, CapType, Error, MsgInfo, Sysno, TaskInfo, IPC_BUFFER, IPC_BUFFER_SIZE};
use core::marker::PhantomData;

/// Which `CapType` a marker stands for.
pub trait Kind {
    const TYPE: CapType;
}

/// A marker type per kind of capability, each naming its `CapType`.
macro_rules! kinds {
    ($($kind:ident),* $(,)?) => {
        $(
            #[doc = concat!("Marks a `Cap` as a capability of kind `", stringify!($kind), "`.")]
            pub struct $kind;
            impl Kind for $kind {
                const TYPE: CapType = CapType::$kind;
            }
        )*
    };
}

kinds!(Endpoint, Reply, Notification, Task, Memory, Interrupt, IoPort, Session, SsrView, Pci);

/// What occupies `slot`: its type and rights, or an error (`EmptySlot`, `InvalidSlot`).
pub fn cap_info(slot: u8) -> Result<(Option<CapType>, u64), Error> {
    sys::call(Sysno::CapInfo, [slot as u64, 0, 0, 0, 0, 0]).map(|r| (CapType::from_raw(r.rdi as u8), r.rsi))
}

/// Delete every capability derived from the one in `slot`, in every task; returns how many.
pub fn cap_revoke(slot: u8) -> Result<u64, Error> {
    sys::call(Sysno::CapRevoke, [slot as u64, 0, 0, 0, 0, 0]).map(|r| r.rdi)
}

/// Empty `slot`.
pub fn cap_delete(slot: u8) -> Result<(), Error> {
    sys::call(Sysno::CapDelete, [slot as u64, 0, 0, 0, 0, 0]).map(|_| ())
}

/// A capability slot known to hold a `K`.
pub struct Cap<K> {
    slot: u8,
    _kind: PhantomData<K>,
}

impl<K> Clone for Cap<K> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K> Copy for Cap<K> {}

impl<K: Kind> Cap<K> {
    /// The capability the manifest gave under `name`.
    pub fn from_boot(boot: &BootInfo, name: &str) -> Option<Self> {
        boot.find(K::TYPE, name).map(Self::at)
    }

    /// Trust that `slot` holds a `K` (the kernel still checks on use).
    pub const fn at(slot: u8) -> Self {
        Cap { slot, _kind: PhantomData }
    }

    pub fn slot(self) -> u64 {
        self.slot as u64
    }
}

/// A received message: who sent it (badge), its label, words and payload length.
#[derive(Clone, Copy, Debug)]
pub struct Message {
    pub badge: u64,
    pub info: MsgInfo,
    pub words: [u64; 4],
}

impl Message {
    pub(crate) fn from_ret(r: Ret) -> Message {
        Message { badge: r.rdi, info: MsgInfo::decode_received(r.rsi).unwrap_or_default(), words: r.words }
    }

    /// Hand `f` a copy of the payload on this stack (as long as the payload, not cleared
    /// first): a server's handler decodes it there and encodes its reply into the IPC buffer.
    pub fn with_payload<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        let len = (self.info.len as usize).min(IPC_BUFFER_SIZE);
        let mut copy = core::mem::MaybeUninit::<[u8; IPC_BUFFER_SIZE]>::uninit();
        let dst = copy.as_mut_ptr().cast::<u8>();
        // SAFETY: `len` is at most the size of both the IPC buffer (mapped for the task's whole
        // life; a received payload stays there until the task's next IPC) and `copy` (on this
        // stack); the two do not overlap. Only the first `len` bytes of `copy`, written here,
        // are viewed.
        let bytes = unsafe {
            core::ptr::copy_nonoverlapping(IPC_BUFFER as *const u8, dst, len);
            core::slice::from_raw_parts(dst.cast_const(), len)
        };
        f(bytes)
    }

    /// The payload, copied out of the IPC buffer into `out`; returns the bytes copied.
    pub fn payload_into(&self, out: &mut [u8]) -> usize {
        let n = (self.info.len as usize).min(out.len());
        out[..n].copy_from_slice(&ipc_buffer()[..n]);
        n
    }
}

/// The task's IPC buffer.
pub(crate) fn ipc_buffer() -> &'static mut [u8; IPC_BUFFER_SIZE] {
    // SAFETY: the kernel maps one writable page at IPC_BUFFER for the task's whole life. A task
    // is single-threaded and the references never outlive the copy (or the encoding of a
    // request or a reply, which makes no IPC) in the functions of this crate, so no two are
    // used at once.
    unsafe { &mut *(IPC_BUFFER as *mut [u8; IPC_BUFFER_SIZE]) }
}

fn stage(payload: &[u8]) -> Result<u16, Error> {
    if payload.len() > IPC_BUFFER_SIZE {
        return Err(Error::TooLong);
    }
    if !payload.is_empty() {
        ipc_buffer()[..payload.len()].copy_from_slice(payload);
    }
    Ok(payload.len() as u16)
}

/// Capabilities that calls can go through: endpoints, and sessions (whose calls bring the
/// client's SSR into the server's window).
pub trait Callable: Kind {}
impl Callable for Endpoint {}
impl Callable for Session {}

impl Cap<Endpoint> {
    /// Open a session with this endpoint's server: the kernel creates the session's Server
    /// State Region (charged to this task's quota) and puts the Session capability in `slot`.
    pub fn connect(self, slot: u8) -> Result<Cap<Session>, Error> {
        self.connect_badge(slot).map(|(cap, _)| cap)
    }

    /// Like [`connect`](Self::connect), also returning the badge the server will see.
    pub fn connect_badge(self, slot: u8) -> Result<(Cap<Session>, u64), Error> {
        sys::call(Sysno::Connect, [self.slot(), slot as u64, 0, 0, 0, 0]).map(|r| (Cap::at(slot), r.rdi))
    }

    /// Wait for a message.
    pub fn recv(self) -> Result<Message, Error> {
        self.recv_into(None)
    }

    /// Wait for a message; a capability sent with it lands in `cap_slot` (which must be empty).
    pub fn recv_into(self, cap_slot: Option<u8>) -> Result<Message, Error> {
        let info = MsgInfo { cap: cap_slot, ..MsgInfo::new(0) };
        sys::call(Sysno::Recv, [self.slot(), info.encode(), 0, 0, 0, 0]).map(Message::from_ret)
    }

    /// Answer the last call (if any) and wait for the next message.
    pub fn reply_recv(self, label: u32, words: [u64; 4], payload: &[u8]) -> Result<Message, Error> {
        self.reply_recv_into(label, words, payload, None)
    }

    /// Like [`reply_recv`](Self::reply_recv); a capability sent with the next message lands in
    /// `cap_slot` (which must be empty), and [`Message::info`]`.cap` then says so.
    pub fn reply_recv_into(
        self,
        label: u32,
        words: [u64; 4],
        payload: &[u8],
        cap_slot: Option<u8>,
    ) -> Result<Message, Error> {
        let info = MsgInfo { cap: cap_slot, ..MsgInfo::with_len(label, stage(payload)?) };
        let [w0, w1, w2, w3] = words;
        sys::call(Sysno::ReplyRecv, [self.slot(), info.encode(), w0, w1, w2, w3]).map(Message::from_ret)
    }

    /// Call, passing a copy of the capability in `cap_slot` along (needs the GRANT right).
    pub fn call_with_cap(self, label: u32, words: [u64; 4], cap_slot: u8) -> Result<Message, Error> {
        let info = MsgInfo { cap: Some(cap_slot), ..MsgInfo::new(label) };
        let [w0, w1, w2, w3] = words;
        sys::call(Sysno::Call, [self.slot(), info.encode(), w0, w1, w2, w3]).map(Message::from_ret)
    }
}

impl<K: Callable> Cap<K> {
    /// Call with a typed request, and hand the reply's encoded bytes to `f` (to decode, and
    /// keep what it needs). The bytes are a copy of the reply on this stack, as long as the
    /// reply and never cleared first: a caller needs no reply buffer of the largest size, and
    /// `f` may make calls of its own.
    pub fn call_with<Req: serde::Serialize, R>(
        self,
        label: u32,
        req: &Req,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, crate::msg::CallError> {
        let msg = self.call_request(label, req)?;
        let len = (msg.info.len as usize).min(IPC_BUFFER_SIZE);
        let mut copy = core::mem::MaybeUninit::<[u8; IPC_BUFFER_SIZE]>::uninit();
        let dst = copy.as_mut_ptr().cast::<u8>();
        // SAFETY: `len` is at most the size of both the IPC buffer (mapped for the task's whole
        // life, and not written again before the next IPC) and `copy` (on this stack); the
        // two do not overlap. The first `len` bytes of `copy` are written before they are
        // viewed, and only they are.
        let bytes = unsafe {
            core::ptr::copy_nonoverlapping(IPC_BUFFER as *const u8, dst, len);
            core::slice::from_raw_parts(dst.cast_const(), len)
        };
        Ok(f(bytes))
    }

    /// Call with a typed request; decode the typed reply (which may borrow from `reply`).
    pub fn call_encoded<'r, Req: serde::Serialize, Resp: serde::Deserialize<'r>>(
        self,
        label: u32,
        req: &Req,
        reply: &'r mut [u8],
    ) -> Result<Resp, crate::msg::CallError> {
        let msg = self.call_request(label, req)?;
        let got = msg.payload_into(reply);
        crate::msg::decode(&reply[..got])
    }

    /// Call with `req` encoded straight into the IPC buffer: no staging copy, and no 4 KiB
    /// buffer to clear (serializing a request makes no IPC, so nothing else uses the buffer
    /// meanwhile).
    fn call_request<Req: serde::Serialize>(
        self,
        label: u32,
        req: &Req,
    ) -> Result<Message, crate::msg::CallError> {
        let n = crate::msg::encode(req, ipc_buffer())?;
        let info = MsgInfo::with_len(label, n as u16);
        Ok(sys::call(Sysno::Call, [self.slot(), info.encode(), 0, 0, 0, 0]).map(Message::from_ret)?)
    }

    /// Send a request and wait for the reply.
    pub fn call(self, label: u32, words: [u64; 4], payload: &[u8]) -> Result<Message, Error> {
        self.call_then(label, words, payload, |m| *m)
    }

    /// Like [`call`](Self::call), but hand the reply to `f` where it was decoded instead of
    /// returning it: a stub that only looks at the reply moves no copy of it about (a
    /// `Result<Message, _>` is moved field by field: 40 instructions of a file read, traced).
    #[inline(always)]
    pub fn call_then<R>(
        self,
        label: u32,
        words: [u64; 4],
        payload: &[u8],
        f: impl FnOnce(&Message) -> R,
    ) -> Result<R, Error> {
        let info = MsgInfo::with_len(label, stage(payload)?);
        let [w0, w1, w2, w3] = words;
        let r = sys::call(Sysno::Call, [self.slot(), info.encode(), w0, w1, w2, w3])?;
        Ok(f(&Message::from_ret(r)))
    }
}

impl Cap<Session> {
    /// The session as a capability to call its server through with a protocol's client stub
    /// written for an endpoint: `call` takes either (the session's calls carry its badge and
    /// bring its SSR), and a stub only calls.
    pub fn as_endpoint(self) -> Cap<Endpoint> {
        Cap::at(self.slot() as u8)
    }
}

impl Cap<SsrView> {
    /// Copy session `index`'s SSR into `out`; returns the session's badge. `Dead` means no
    /// live session of this endpoint has that index.
    pub fn read(self, index: usize, out: &mut [u8]) -> Result<u64, Error> {
        let args = [self.slot(), index as u64, out.as_mut_ptr() as u64, out.len() as u64, 0, 0];
        sys::call(Sysno::SsrRead, args).map(|r| r.rdi)
    }
}

/// The SSR window of a server: the current request's client state, if it came through a session.
pub fn ssr_window() -> &'static mut [u8; axolotl_abi::SSR_SIZE] {
    // SAFETY: the address is fixed by the ABI; the kernel maps a page there only during a
    // session request (touching it otherwise faults, by design). A server is single-threaded
    // and uses the reference only while handling the current request.
    unsafe { &mut *(axolotl_abi::SSR_WINDOW as *mut [u8; axolotl_abi::SSR_SIZE]) }
}

/// Move the pending reply into `slot`, to answer later with [`Cap::<Reply>::reply`].
pub fn save_reply(slot: u8) -> Result<Cap<Reply>, Error> {
    sys::call(Sysno::SaveReply, [slot as u64, 0, 0, 0, 0, 0]).map(|_| Cap::at(slot))
}

impl Cap<Reply> {
    /// Answer the saved call; the capability is used up.
    pub fn reply(self, label: u32, words: [u64; 4], payload: &[u8]) -> Result<(), Error> {
        let info = MsgInfo::with_len(label, stage(payload)?);
        let [w0, w1, w2, w3] = words;
        sys::call(Sysno::Send, [self.slot(), info.encode(), w0, w1, w2, w3]).map(|_| ())
    }
}

impl Cap<Notification> {
    pub fn bind(self) -> Result<(), Error> {
        sys::call(Sysno::BindNotification, [self.slot(), 0, 0, 0, 0, 0]).map(|_| ())
    }
    pub fn signal(self, bits: u64) -> Result<(), Error> {
        sys::call(Sysno::Signal, [self.slot(), bits, 0, 0, 0, 0]).map(|_| ())
    }
    pub fn wait(self) -> Result<u64, Error> {
        sys::call(Sysno::Wait, [self.slot(), 0, 0, 0, 0, 0]).map(|r| r.rdi)
    }
}

impl Cap<Interrupt> {
    pub fn ack(self) -> Result<(), Error> {
        sys::call(Sysno::IrqAck, [self.slot(), 0, 0, 0, 0, 0]).map(|_| ())
    }
}

impl Cap<IoPort> {
    /// Open the port range to this task's `in`/`out` instructions.
    pub fn enable(self) -> Result<(), Error> {
        sys::call(Sysno::IoPortEnable, [self.slot(), 0, 0, 0, 0, 0]).map(|_| ())
    }
}

impl Cap<Task> {
    /// What the kernel reports about task `index` (its `frames` left 0).
    pub fn info(self, index: usize) -> Result<TaskInfo, Error> {
        self.info_counting(index, false)
    }

    /// [`info`](Self::info) with the frames the task owns counted (a walk of its page tables).
    pub fn info_with_frames(self, index: usize) -> Result<TaskInfo, Error> {
        self.info_counting(index, true)
    }

    fn info_counting(self, index: usize, frames: bool) -> Result<TaskInfo, Error> {
        let mut out = TaskInfo::default();
        let ptr = &mut out as *mut TaskInfo as u64;
        sys::call(Sysno::TaskInfo, [self.slot(), index as u64, ptr, frames as u64, 0, 0])?;
        Ok(out)
    }
    pub fn start(self, index: usize) -> Result<(), Error> {
        sys::call(Sysno::TaskStart, [self.slot(), index as u64, 0, 0, 0, 0]).map(|_| ())
    }
    /// Replace task `index` with a new incarnation from its pristine image; returns the new
    /// generation.
    pub fn restart(self, index: usize) -> Result<u32, Error> {
        self.restart_after(index, 0)
    }

    /// Like [`restart`](Self::restart), with the new incarnation starting `delay_ms`
    /// milliseconds from now (at most 10 s; the kernel rounds down to its 10 ms tick).
    pub fn restart_after(self, index: usize, delay_ms: u64) -> Result<u32, Error> {
        sys::call(Sysno::TaskRestart, [self.slot(), index as u64, delay_ms, 0, 0, 0]).map(|r| r.rdi as u32)
    }

    /// Stop task `index` for good (a crash loop); its callers get `ServerFailed`.
    pub fn hold(self, index: usize) -> Result<(), Error> {
        sys::call(Sysno::TaskHold, [self.slot(), index as u64, 0, 0, 0, 0]).map(|_| ())
    }

    /// Pause task `index` (`on`) or resume it: a paused task is not scheduled. See
    /// `Sysno::TaskPause`.
    pub fn pause(self, index: usize, on: bool) -> Result<(), Error> {
        sys::call(Sysno::TaskPause, [self.slot(), index as u64, on as u64, 0, 0, 0]).map(|_| ())
    }

    /// Replace server `index` with the version whose ELF image is the first `len` bytes of
    /// `image`, keeping the old one to roll back to until the new one has answered `window`
    /// requests; returns the new generation. See `Sysno::TaskUpdate`.
    pub fn update(self, index: usize, image: Cap<Memory>, len: usize, window: u32) -> Result<u32, Error> {
        let args = [self.slot(), index as u64, image.slot(), len as u64, window as u64, 0];
        sys::call(Sysno::TaskUpdate, args).map(|r| r.rdi as u32)
    }

    /// Inject a fault into task `index`; returns what was hit (register/bit, address, ...).
    pub fn inject(self, index: usize, kind: axolotl_abi::InjectKind, seed: u64) -> Result<u64, Error> {
        sys::call(Sysno::Inject, [self.slot(), index as u64, kind as u64, seed, 0, 0]).map(|r| r.rdi)
    }

    /// Start the state-spill audit of server `index`; returns the pages it covers. See
    /// `Sysno::Audit`.
    pub fn audit_start(self, index: usize) -> Result<u64, Error> {
        let op = axolotl_abi::AuditOp::Start as u64;
        sys::call(Sysno::Audit, [self.slot(), index as u64, op, 0, 0, 0]).map(|r| r.rdi)
    }

    /// Stop the audit of server `index` (its records stay readable).
    pub fn audit_stop(self, index: usize) -> Result<(), Error> {
        let op = axolotl_abi::AuditOp::Stop as u64;
        sys::call(Sysno::Audit, [self.slot(), index as u64, op, 0, 0, 0]).map(|_| ())
    }

    /// The last audit's summary (of server `index`).
    pub fn audit_summary(self, index: usize) -> Result<axolotl_abi::AuditSummary, Error> {
        let mut out = axolotl_abi::AuditSummary::default();
        let ptr = &mut out as *mut axolotl_abi::AuditSummary as u64;
        let op = axolotl_abi::AuditOp::Summary as u64;
        sys::call(Sysno::Audit, [self.slot(), index as u64, op, 0, ptr, 0]).map(|_| out)
    }

    /// Record `n` of the last audit (of server `index`): `Dead` past the last.
    pub fn audit_record(self, index: usize, n: usize) -> Result<axolotl_abi::AuditRecord, Error> {
        let mut out = axolotl_abi::AuditRecord::default();
        let ptr = &mut out as *mut axolotl_abi::AuditRecord as u64;
        let op = axolotl_abi::AuditOp::Record as u64;
        sys::call(Sysno::Audit, [self.slot(), index as u64, op, n as u64, ptr, 0]).map(|_| out)
    }

    /// Become the supervisor: faults of supervised tasks are recorded and `faults` signalled.
    pub fn supervise(self, faults: Cap<Notification>) -> Result<u64, Error> {
        sys::call(Sysno::Supervise, [self.slot(), faults.slot(), 0, 0, 0, 0]).map(|r| r.rdi)
    }

    /// The oldest fault not yet taken, if any.
    pub fn next_fault(self) -> Option<axolotl_abi::FaultRecord> {
        let mut out = axolotl_abi::FaultRecord::default();
        let ptr = &mut out as *mut axolotl_abi::FaultRecord as u64;
        sys::call(Sysno::FaultNext, [self.slot(), ptr, 0, 0, 0, 0]).ok().map(|_| out)
    }

    /// Print `line` on the kernel's log (needs this capability to be over all tasks).
    pub fn log(self, line: &str) -> Result<(), Error> {
        sys::call(Sysno::Log, [self.slot(), line.as_ptr() as u64, line.len() as u64, 0, 0, 0]).map(|_| ())
    }

    /// Turn the kernel's CPU accounting on or off (needs this capability to be over all tasks);
    /// returns the TSC ticks charged to idle so far. See `Sysno::Accounting`.
    pub fn accounting(self, on: bool) -> Result<u64, Error> {
        sys::call(Sysno::Accounting, [self.slot(), on as u64, 0, 0, 0, 0]).map(|r| r.rdi)
    }

    /// Accounting on, and every interrupt line closed but those of task `keep` (the kernel's
    /// timer's too), or (`None`) the lines as their drivers left them again. See
    /// `Sysno::Accounting`.
    pub fn quiet(self, keep: Option<usize>) -> Result<u64, Error> {
        let (quiet, keep) = keep.map_or((2, 0), |k| (1, k as u64));
        sys::call(Sysno::Accounting, [self.slot(), 1, quiet, keep, 0, 0]).map(|r| r.rdi)
    }

    /// The index of the task named `name`.
    pub fn find(self, name: &str) -> Option<usize> {
        (0..32).find(|&i| {
            self.info(i).is_ok_and(|t| {
                t.state().is_some_and(|s| s != axolotl_abi::TaskState::Free) && t.name() == name
            })
        })
    }

    /// Block until task `index` stops; returns its exit code (or fault vector) and state.
    pub fn wait(self, index: usize) -> Result<(u64, u64), Error> {
        sys::call(Sysno::TaskWait, [self.slot(), index as u64, 0, 0, 0, 0]).map(|r| (r.rdi, r.rsi))
    }
}

impl Cap<Memory> {
    /// Map the whole memory object at `vaddr` (page aligned, at or above `MAP_BASE`) and hand
    /// out its bytes. The kernel refuses ranges that overlap anything mapped already, so the
    /// slice aliases nothing; it stays valid until [`Mapping::unmap`] consumes it.
    pub fn map(self, vaddr: u64, writable: bool) -> Result<Mapping, Error> {
        let rights = if writable { 3 } else { 1 };
        let r = sys::call(Sysno::MemMap, [self.slot(), vaddr, rights, 0, 0, 0])?;
        let len = r.rdi as usize * axolotl_abi::PAGE_SIZE as usize;
        // SAFETY: the kernel just mapped `len` bytes at `vaddr` into this task, in a range that
        // held no mapping before (so no other reference points there), and keeps them mapped
        // until `Mapping::unmap`, which takes the slice back.
        let bytes = unsafe { core::slice::from_raw_parts_mut(vaddr as *mut u8, len) };
        Ok(Mapping { cap: self, bytes, phys: r.rsi })
    }
}

/// A mapped memory object; owns the only reference to its bytes.
pub struct Mapping {
    cap: Cap<Memory>,
    pub bytes: &'static mut [u8],
    /// For a DMA region (physically contiguous): the physical address of its first byte, which
    /// a device is told; 0 for any other memory object.
    pub phys: u64,
}

/// A memory BAR mapped uncached into this task: device registers, to be accessed with volatile
/// reads and writes only (so no slice of them is handed out).
#[derive(Clone, Copy, Debug)]
pub struct DeviceWindow {
    pub vaddr: u64,
    pub size: u64,
    /// The BAR's physical address, as the device's registers name it.
    pub phys: u64,
}

impl Cap<Pci> {
    /// The configuration-space dword at `offset` (a multiple of 4, below 256), as the kernel's
    /// guard shows it.
    pub fn read(self, offset: u8) -> Result<u32, Error> {
        sys::call(Sysno::PciRead, [self.slot(), offset as u64, 0, 0, 0, 0]).map(|r| r.rdi as u32)
    }

    /// Write a configuration-space dword; `InvalidArgument` where the guard does not allow it.
    pub fn write(self, offset: u8, value: u32) -> Result<(), Error> {
        sys::call(Sysno::PciWrite, [self.slot(), offset as u64, value as u64, 0, 0, 0]).map(|_| ())
    }

    /// Map memory BAR `bar` uncached at `vaddr` (page aligned, at or above `MAP_BASE`).
    pub fn map_bar(self, bar: u8, vaddr: u64) -> Result<DeviceWindow, Error> {
        let r = sys::call(Sysno::PciMap, [self.slot(), bar as u64, vaddr, 0, 0, 0])?;
        Ok(DeviceWindow { vaddr, size: r.rdi, phys: r.rsi })
    }
}

impl Mapping {
    pub fn unmap(self) -> Result<(), Error> {
        sys::call(Sysno::MemUnmap, [self.cap.slot(), 0, 0, 0, 0, 0]).map(|_| ())
    }
}
