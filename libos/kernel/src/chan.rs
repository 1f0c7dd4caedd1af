//! Channels between tasks: rendezvous endpoints (call → recv → reply) and asynchronous
//! mailboxes.
//!
//! ```text
//!  client: call(req) ──► queue ──► server: recv() → (Token, req)     copies of `Req`, `Resp`
//!          (blocked)                        ... work ...             (plain `Copy` data: no
//!          ◄── resp written into the caller ── reply(token, resp)     pointers into an arena
//!                                                                     that may die)
//!  server dies while serving: the caller goes back to the front of the queue, and the next
//!  generation receives the same request (once; a second death on it fails that one call;
//!  a server held after a crash loop fails its callers at once).
//! ```
//! Arguments from a cell are read (`black_box` copies) *before* the kernel's critical section:
//! a corrupted pointer argument then faults in the cell's time, not while a kernel table is
//! borrowed. The operations are never inlined into a cell: the kernel's own addresses are then computed
//! inside the kernel's code, not kept in a cell's registers, where a corrupted register would
//! turn a kernel access into a wild one (a register flip in a cell must stay that cell's fault).
//!
//! Endpoints and mailboxes are made while wiring the system at boot and live as long as it
//! does; what a task holds in them (its place in a queue, a request it was serving, its role as
//! receiver) is released when it dies.

use crate::sched::{block_on, wait, Carry, Wait};
use crate::state::{Call, CallError, CallPhase, Checks, EpState, Fault, Kernel, Receiving, State, KERNEL};
use bytemuck::CheckedBitPattern;
use core::cell::UnsafeCell;
use core::hint::black_box;
use core::marker::PhantomData;
use core::mem::MaybeUninit;
use fault::recovery::Redelivery;
use heapless::Deque;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyError {
    /// The caller is gone or the token was already used.
    Stale,
}

/// A rendezvous endpoint carrying `Req` to the server and `Resp` back. Copyable: it is a name.
pub struct Endpoint<Req, Resp> {
    id: usize,
    _types: PhantomData<fn(Req) -> Resp>,
}

impl<Req, Resp> Clone for Endpoint<Req, Resp> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<Req, Resp> Copy for Endpoint<Req, Resp> {}

/// Who asked, which call, for the reply. Not copyable: a request is answered once.
pub struct Token {
    client: usize,
    generation: u32,
    seq: u64,
}

impl Token {
    /// The index of the calling task (for a server's log lines).
    pub fn client(&self) -> usize {
        self.client
    }
}

impl<Req: Copy + Send + 'static, Resp: Copy + Send + 'static> Endpoint<Req, Resp> {
    /// Make an endpoint (while wiring the system).
    pub fn create(name: &'static str) -> Option<Self> {
        Self::create_with(name, None)
    }

    /// Make an endpoint whose messages the kernel checks with `checks` (see [`CheckedEndpoint`]).
    fn create_with(name: &'static str, checks: Option<Checks>) -> Option<Self> {
        // Made while wiring only, as tasks are (see `SpawnError::AfterBoot`).
        if crate::sched::started() {
            return None;
        }
        let (req_size, resp_size) = (size_of::<Req>(), size_of::<Resp>());
        KERNEL.with(|k| {
            let id = k.eps.len();
            let ep = EpState {
                name,
                queue: Deque::new(),
                receiver: None,
                server: None,
                req_size,
                resp_size,
                checks,
            };
            k.eps.push(ep).ok()?;
            Some(Endpoint { id, _types: PhantomData })
        })
    }

    /// Send `req` and wait for the answer.
    ///
    /// Inlined into the caller, so the answer's buffer is a local of the caller's, which the
    /// kernel checks before it writes there; a result returned by value from a kernel function
    /// would instead be written through a pointer the caller passes unchecked (a fault in the
    /// cell that bends it would make the kernel write anywhere).
    #[inline(always)]
    pub fn call(&self, req: &Req) -> Result<Resp, CallError> {
        let mut resp = MaybeUninit::<Resp>::uninit();
        let (req, resp_at) = (req as *const Req as u64, resp.as_mut_ptr() as u64);
        kernel_call(self.id, req, size_of::<Req>(), resp_at, size_of::<Resp>())?;
        // SAFETY: `kernel_call` returns Ok only after a `reply` on this endpoint, whose sizes match
        // ours, wrote a whole `Resp` into `resp`.
        Ok(unsafe { resp.assume_init() })
    }

    /// Wait for the next request. A task whose endpoint value is corrupted panics (and is
    /// restarted): the id is checked before the kernel uses it. Inlined for the reason `call`
    /// is: the request is copied into a checked local of the caller's.
    #[inline(always)]
    pub fn recv(&self) -> (Token, Req) {
        let mut req = MaybeUninit::<Req>::uninit();
        let floor = crate::arch::cpu::stack_pointer();
        let at = req.as_mut_ptr() as u64;
        let (who, seq) = kernel_recv(self.id, at, size_of::<Req>(), floor, (at, size_of::<Req>()));
        let token = Token { client: (who & u32::MAX as u64) as usize, generation: (who >> 32) as u32, seq };
        // SAFETY: `kernel_recv` returns only after copying a whole request of this endpoint's `Req`
        // into `req`.
        (token, unsafe { req.assume_init() })
    }

    /// Wait for the next request, received in place: see [`Inbox`].
    #[inline(always)]
    pub fn recv_into<'a>(&self, inbox: &'a mut Inbox<Req>) -> (Token, &'a Req)
    where
        Req: Copy,
    {
        self.receive(inbox);
        inbox.take().expect("a request was just received")
    }

    /// Wait for the next request, and leave it and its token in `inbox`, for [`Inbox::take`]
    /// in a function below this one: the frame that waits then holds nothing of a request
    /// (what `audit` checks), not even the token (a `(Token, &Req)` is returned through the
    /// caller's frame).
    #[inline(always)]
    pub fn receive(&self, inbox: &mut Inbox<Req>)
    where
        Req: Copy,
    {
        // Cleared first: a receive a fault skipped leaves zeros, not the previous request.
        // SAFETY: zeroing the bytes of a `MaybeUninit` is always allowed; it stays uninit to us
        // until `kernel_recv` fills it.
        unsafe { core::ptr::write_bytes(inbox.req.as_mut_ptr(), 0, 1) };
        inbox.token = None;
        let floor = crate::arch::cpu::stack_pointer();
        let whole = (inbox as *const Inbox<Req> as u64, size_of::<Inbox<Req>>());
        let (who, seq) = kernel_recv(self.id, inbox.req.as_mut_ptr() as u64, size_of::<Req>(), floor, whole);
        inbox.token =
            Some(Token { client: (who & u32::MAX as u64) as usize, generation: (who >> 32) as u32, seq });
    }

    /// Send `req` and receive the answer in place (see [`Inbox`]): the kernel writes it into
    /// `inbox`, cleared first, and the caller reads it there, with no copy of its own between
    /// the server's bytes and their use (an answer of a large type, taken by value, was moved
    /// several times on the caller's stack). A call a fault skipped leaves zeros, not the
    /// previous answer.
    #[inline(always)]
    pub fn call_into<'a>(&self, req: &Req, inbox: &'a mut Inbox<Resp>) -> Result<&'a Resp, CallError> {
        // SAFETY: zeroing the bytes of a `MaybeUninit` is always allowed; it stays uninit to us
        // until `kernel_call` fills it.
        unsafe { core::ptr::write_bytes(inbox.req.as_mut_ptr(), 0, 1) };
        let (req, resp_at) = (req as *const Req as u64, inbox.req.as_mut_ptr() as u64);
        kernel_call(self.id, req, size_of::<Req>(), resp_at, size_of::<Resp>())?;
        // SAFETY: `kernel_call` returns Ok only after a `reply` on this endpoint, whose sizes match
        // ours, wrote a whole `Resp` into the inbox.
        Ok(unsafe { inbox.req.assume_init_ref() })
    }

    /// Answer the request `token` names.
    #[inline(always)]
    pub fn reply(&self, token: Token, resp: Resp) -> Result<(), ReplyError> {
        self.reply_from(token, &resp)
    }

    /// Answer the request `token` names, then wait for the next request, in one entry into the
    /// kernel (L4's ReplyWait, a server's loop): when the server then waits, the caller gets the
    /// answer at the switch to it. The answer's outcome is that of [`Endpoint::reply`]; the
    /// request is received as by [`Endpoint::recv`] (inlined for the same reason).
    #[inline(always)]
    pub fn reply_recv(&self, token: Token, resp: &Resp) -> (Result<(), ReplyError>, Token, Req) {
        let mut req = MaybeUninit::<Req>::uninit();
        let floor = crate::arch::cpu::stack_pointer();
        let at = req.as_mut_ptr() as u64;
        let answer = Answer {
            client: token.client,
            generation: token.generation,
            seq: token.seq,
            resp: resp as *const Resp as u64,
            len: size_of::<Resp>(),
        };
        let (replied, (who, seq)) =
            kernel_reply_recv(&answer, self.id, at, size_of::<Req>(), floor, (at, size_of::<Req>()));
        let token = Token { client: (who & u32::MAX as u64) as usize, generation: (who >> 32) as u32, seq };
        // SAFETY: `kernel_reply_recv` returns only after copying a whole request of this
        // endpoint's `Req` into `req`.
        (replied, token, unsafe { req.assume_init() })
    }

    /// Answer the request `token` names with `resp` where the server built it (a large answer
    /// passed by value is copied on the way).
    #[inline(always)]
    pub fn reply_from(&self, token: Token, resp: &Resp) -> Result<(), ReplyError> {
        let resp_at = resp as *const Resp as u64;
        kernel_reply(token.client, token.generation, token.seq, resp_at, size_of::<Resp>())
    }
}

/// Where a server receives its requests in place (or a client its answers,
/// [`Endpoint::call_into`]): the kernel writes each one straight into it, and the task reads it
/// there. [`Endpoint::recv`] returns the request by value, and that
/// move is a copy the server's own code makes: an injected fault that skips it (a `rep movsq`
/// stepped over) leaves the stack slot holding the *previous* request, whole and with a valid
/// digest, and a server that runs each request twice serves that stale one twice and agrees
/// (seen in the libos fs campaign: an old record write replayed over a newer one). Here no
/// copy by the server stands between the client's bytes and their use, and the inbox is
/// cleared before each receive, so a skipped receive shows as an empty request.
///
/// A server's inbox also keeps the token of the request in it, from [`Endpoint::receive`] to
/// [`Inbox::take`].
pub struct Inbox<Req> {
    req: MaybeUninit<Req>,
    token: Option<Token>,
}

impl<Req> Inbox<Req> {
    pub const fn new() -> Self {
        Inbox { req: MaybeUninit::uninit(), token: None }
    }

    /// The request [`Endpoint::receive`] left here, and its token: once (the token answers it).
    pub fn take(&mut self) -> Option<(Token, &Req)> {
        let token = self.token.take()?;
        // SAFETY: a token is put here only after `kernel_recv` copied a whole request of the
        // endpoint's `Req` into `req` (see `receive`).
        Some((token, unsafe { self.req.assume_init_ref() }))
    }
}

impl<Req> Default for Inbox<Req> {
    fn default() -> Self {
        Self::new()
    }
}

/// A rendezvous endpoint whose messages the kernel checks as they cross. A message is copied as
/// its bytes are, and its sender may be faulty: in a type with invalid bit patterns (an enum's
/// discriminant, a `bool`), a corrupted message would be undefined behaviour in its receiver the
/// moment it held it — a `match` on a bad discriminant jumps anywhere. The endpoint's types are
/// `bytemuck::CheckedBitPattern`, and the kernel checks every message with them before it copies
/// it, with checks it recorded when the endpoint was made (not ones a sender passes):
///
/// ```text
///  call:   request not a valid Req   ─► the caller's CallError::Malformed (its own fault)
///  reply:  answer not a valid Resp   ─► not delivered: the server fails ("malformed message")
///                                       and is restarted; its caller's request is delivered
///                                       to the next incarnation, as after any server fault
/// ```
/// The microkernel's servers decode every message (postcard) and have the same rule.
pub struct CheckedEndpoint<Req, Resp>(Endpoint<Req, Resp>);

impl<Req, Resp> Clone for CheckedEndpoint<Req, Resp> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<Req, Resp> Copy for CheckedEndpoint<Req, Resp> {}

impl<Req, Resp> CheckedEndpoint<Req, Resp>
where
    Req: CheckedBitPattern + Copy + Send + 'static,
    Resp: CheckedBitPattern + Copy + Send + 'static,
{
    /// Make an endpoint (while wiring the system).
    pub fn create(name: &'static str) -> Option<Self> {
        let checks = Checks { req: valid_at::<Req>, resp: valid_at::<Resp> };
        Endpoint::create_with(name, Some(checks)).map(CheckedEndpoint)
    }

    /// Send `req` and wait for the answer (checked by the kernel before it reached us).
    #[inline(always)]
    pub fn call(&self, req: &Req) -> Result<Resp, CallError> {
        self.0.call(req)
    }

    /// Wait for the next request (checked by the kernel before it reached us).
    #[inline(always)]
    pub fn recv(&self) -> (Token, Req) {
        self.0.recv()
    }

    /// Wait for the next request, received in place: see [`Inbox`].
    #[inline(always)]
    pub fn recv_into<'a>(&self, inbox: &'a mut Inbox<Req>) -> (Token, &'a Req)
    where
        Req: Copy,
    {
        self.0.recv_into(inbox)
    }

    /// Wait for the next request, left in `inbox` with its token (see [`Endpoint::receive`]).
    #[inline(always)]
    pub fn receive(&self, inbox: &mut Inbox<Req>)
    where
        Req: Copy,
    {
        self.0.receive(inbox)
    }

    /// Answer the request `token` names.
    #[inline(always)]
    pub fn reply(&self, token: Token, resp: Resp) -> Result<(), ReplyError> {
        self.0.reply(token, resp)
    }

    /// Send `req` and receive the answer in place (checked by the kernel before it was written
    /// there): see [`Endpoint::call_into`].
    #[inline(always)]
    pub fn call_into<'a>(&self, req: &Req, inbox: &'a mut Inbox<Resp>) -> Result<&'a Resp, CallError> {
        self.0.call_into(req, inbox)
    }

    /// Answer the request `token` names from where the answer was built: see
    /// [`Endpoint::reply_from`].
    #[inline(always)]
    pub fn reply_from(&self, token: Token, resp: &Resp) -> Result<(), ReplyError> {
        self.0.reply_from(token, resp)
    }

    /// Answer, then wait for the next request: see [`Endpoint::reply_recv`].
    #[inline(always)]
    pub fn reply_recv(&self, token: Token, resp: &Resp) -> (Result<(), ReplyError>, Token, Req) {
        self.0.reply_recv(token, resp)
    }
}

/// Are the `size_of::<T>()` bytes at `at` a valid `T`? (A misaligned buffer is not.)
fn valid_at<T: CheckedBitPattern>(at: u64) -> bool {
    // SAFETY: the kernel calls this only on a sender's buffer it checked lies in the sender's
    // own mapped memory (or the image) and spans `size_of::<T>()` bytes, with interrupts masked
    // so nothing changes it meanwhile. Padding bytes hold whatever the sender's memory held;
    // any value is a valid `u8`, and the check looks only at discriminants and fields.
    let bytes = unsafe { core::slice::from_raw_parts(at as *const u8, size_of::<T>()) };
    bytemuck::checked::try_from_bytes::<T>(bytes).is_ok()
}

/// Does `[a, a + len)` lie inside one of `ranges`?
fn inside(ranges: &[(u64, u64)], a: u64, len: usize) -> bool {
    ranges.iter().any(|&(s, e)| a >= s && a.checked_add(len as u64).is_some_and(|end| end <= e))
}

/// Is a message a task sends (`len` bytes at `a`) in its own memory (`own`) or in the image (a
/// promoted constant)?
fn sendable(own: &[(u64, u64)], a: u64, len: usize) -> bool {
    inside(own, a, len) || inside(&[crate::mem::paging::image()], a, len)
}

/// [`Endpoint::call`]'s kernel half: `req_len` bytes at `req` go to the server of endpoint
/// `id`, whose answer (`resp_len` bytes) lands at `resp`. One critical section: the call is
/// made, and the caller switches away and back in it (`sched::wait`).
#[inline(never)]
fn kernel_call(id: usize, req: u64, req_len: usize, resp: u64, resp_len: usize) -> Result<(), CallError> {
    let (id, req, req_len, resp, resp_len) = black_box((id, req, req_len, resp, resp_len));
    let mut sent = false;
    wait(State::Call, |k| {
        if !sent {
            sent = true;
            return match send(k, id, req, req_len, resp, resp_len) {
                Ok(carry) => Wait::Block(carry),
                Err(e) => Wait::Done(Err(e)),
            };
        }
        let t = k.cur();
        let done = match t.call.map(|c| c.phase) {
            Some(CallPhase::Replied) => Ok(()),
            Some(CallPhase::Failed(e)) => Err(e),
            _ => return Wait::Block(None),
        };
        t.call = None;
        Wait::Done(done)
    })
}

/// Make the current task's call on endpoint `id`, its arguments checked. A server waiting in
/// `recv` that can run now takes it at once: the request is carried into its buffer at the
/// switch to it (the returned [`Carry`]); else the caller queues, and the server is woken.
fn send(
    k: &mut Kernel,
    id: usize,
    req: u64,
    req_len: usize,
    resp: u64,
    resp_len: usize,
) -> Result<Option<Carry>, CallError> {
    let me = k.current;
    let ep = k.eps.get(id).ok_or(CallError::BadEndpoint)?;
    // A corrupted endpoint value may name another endpoint, of other message types.
    if (ep.req_size, ep.resp_size) != (req_len, resp_len) {
        return Err(CallError::BadEndpoint);
    }
    let halted = ep.server.is_some_and(|s| k.tasks[s].as_ref().is_some_and(|t| t.state == State::Halted));
    if halted {
        return Err(CallError::ServerFailed);
    }
    // Pointers from a cell are allegations: the answer buffer must lie in the caller's own
    // stack or heap; the request there too, or in the image (a promoted constant).
    let own = &k.cur().data_ranges();
    if !sendable(own, req, req_len) || !inside(own, resp, resp_len) {
        return Err(CallError::BadBuffer);
    }
    if k.eps[id].checks.is_some_and(|c| !(c.req)(req)) {
        return Err(CallError::Malformed);
    }
    let seq = k.next_seq;
    k.next_seq += 1;
    let mut call =
        Call { ep: id, req, resp, seq, phase: CallPhase::Queued, delivered_again: false, served_at: 0 };
    let receiver = k.eps[id].receiver.take();
    if let Some(r) = receiver {
        if k.eps[id].queue.is_empty() {
            if let Some(carry) = hand(k, r, &mut call) {
                k.cur().call = Some(call);
                return Ok(Some(carry));
            }
        }
    }
    k.eps[id].queue.push_back(me).map_err(|_| CallError::QueueFull)?;
    k.cur().call = Some(call);
    if let Some(r) = receiver {
        k.wake(r);
        k.handoff = Some(r);
    }
    Ok(None)
}

/// Give `call` (the current task's, not queued) straight to task `r`, waiting in `recv` on its
/// endpoint, if `r` runs next: it is then served by `r`, which finds who asked in its
/// `receiving` record and the request in its buffer (the carry, copied at the switch).
fn hand(k: &mut Kernel, r: usize, call: &mut Call) -> Option<Carry> {
    let me = k.current;
    let now = k.ticks;
    let generation = k.cur().generation;
    let t = k.task(r)?;
    let rc = t.receiving.as_mut()?;
    if t.state != State::Recv || t.paused || rc.ep != call.ep || rc.handed.is_some() {
        return None;
    }
    rc.handed = Some((me as u64 | (generation as u64) << 32, call.seq));
    let (out, len, floor, inbox) = (rc.out, rc.len, rc.floor, rc.inbox);
    t.state = State::Ready;
    call.phase = CallPhase::Served(r);
    call.served_at = now;
    k.handoff = Some(r);
    crate::audit::taken(k, r, me, floor, inbox);
    Some(Carry { to: r, from: call.req, into: out, len })
}

/// [`Endpoint::recv`]'s kernel half: wait for a request on endpoint `id` and copy it (`len`
/// bytes) to `out`; `floor` is the caller's stack pointer, where it waits (the audit's line
/// between the frames that last and the scratch below them, see `audit`), and `inbox` the
/// whole buffer the request and its token go to (a message, not state, to the audit). Returns who asked (client index | generation << 32) and the call's
/// sequence number: two words, in registers.
#[inline(never)]
fn kernel_recv(id: usize, out: u64, len: usize, floor: u64, inbox: (u64, usize)) -> (u64, u64) {
    let (id, out, len) = black_box((id, out, len));
    let at = Receiving { ep: id, out, len, floor, inbox, handed: None };
    let r = wait(State::Recv, |k| receive(k, &at).map_or(Wait::Block(None), Wait::Done));
    match r {
        Some(incoming) => incoming,
        None => {
            panic!("recv on endpoint {}, which does not exist, is another task's, or into a bad buffer", id)
        }
    }
}

/// The current task receives on `at.ep` into `at.out`: the request a caller handed it, or the
/// first one queued (copied now), or none (it is recorded as the receiver: block). `Some(None)`:
/// the endpoint or the buffer is not the task's to receive with.
fn receive(k: &mut Kernel, at: &Receiving) -> Option<Option<(u64, u64)>> {
    let me = k.current;
    let now = k.ticks;
    // Handed by a call while we waited: the request is in our buffer (carried at the switch).
    if let Some(handed) = k.cur().receiving.take().and_then(|r| r.handed) {
        return Some(Some(handed));
    }
    let (id, out, len) = (at.ep, at.out, at.len);
    if k.eps.get(id).is_none_or(|ep| ep.req_size != len) || !inside(&k.cur().data_ranges(), out, len) {
        return Some(None);
    }
    // One server per endpoint: a task that tries to serve another's endpoint holds a
    // corrupted endpoint value (its clients would wait for ever).
    if let Some(s) = k.eps[id].server {
        if s != me && k.tasks[s].as_ref().is_some_and(|t| t.state != State::Dead) {
            return Some(None);
        }
    }
    let waiting = k.eps[id].queue.len();
    first_wait(k, waiting);
    k.eps[id].server = Some(me);
    while let Some(c) = k.eps[id].queue.pop_front() {
        let Some(t) = k.task(c) else { continue };
        let Some(call) = t.call.as_mut() else { continue };
        if call.ep != id || call.phase != CallPhase::Queued {
            continue;
        }
        call.phase = CallPhase::Served(me);
        call.served_at = now;
        let (generation, seq, req) = (t.generation, call.seq, call.req);
        crate::audit::taken(k, me, c, at.floor, at.inbox);
        // SAFETY: the caller is blocked in `call` on this endpoint, so `req` points at its
        // live request of this endpoint's size, in its own memory or the image (checked in
        // `call`); `out` lies in our own stack or heap (checked above); they do not overlap.
        unsafe { core::ptr::copy_nonoverlapping(req as *const u8, out as *mut u8, len) };
        return Some(Some((c as u64 | (generation as u64) << 32, seq)));
    }
    k.eps[id].receiver = Some(me);
    k.cur().receiving = Some(*at);
    None
}

/// [`Endpoint::reply`]'s kernel half: the answer (`len` bytes at `resp`) to the call `client`
/// (of `generation`) made as number `seq`, which we are serving. An answer that fails the
/// endpoint's checks is not delivered, and we fail (see [`CheckedEndpoint`]).
#[inline(never)]
fn kernel_reply(client: usize, generation: u32, seq: u64, resp: u64, len: usize) -> Result<(), ReplyError> {
    let (client, generation, seq, resp, len) = black_box((client, generation, seq, resp, len));
    let sent = KERNEL.with(|k| {
        let carry = answer(k, client, generation, seq, resp, len)?;
        carry.as_ref().inspect(|c| c.deliver());
        Ok(carry.is_some())
    })?;
    if !sent {
        // Our answer is not a value of its type: we are faulty. The caller's request goes to
        // our next incarnation (`lifecycle::fail`).
        crate::arch::cpu::die_now();
    }
    Ok(())
}

/// [`Endpoint::reply_recv`]'s kernel half: [`kernel_reply`], then [`kernel_recv`] on endpoint
/// `id`, in one critical section. When the server then waits, the answer is carried into the
/// caller's buffer at the switch to it (no protection lifted).
#[inline(never)]
fn kernel_reply_recv(
    answer_to: &Answer,
    id: usize,
    out: u64,
    len: usize,
    floor: u64,
    inbox: (u64, usize),
) -> (Result<(), ReplyError>, (u64, u64)) {
    let (a, id, out, len) = black_box((*answer_to, id, out, len));
    let at = Receiving { ep: id, out, len, floor, inbox, handed: None };
    let mut replied = None;
    let r = wait(State::Recv, |k| {
        let mut carry = None;
        if replied.is_none() {
            let r = answer(k, a.client, a.generation, a.seq, a.resp, a.len);
            replied = Some(r.as_ref().map(|c| c.is_some()).map_err(|e| *e));
            carry = r.ok().flatten();
            if replied == Some(Ok(false)) {
                return Wait::Done(None);
            }
        }
        match receive(k, &at) {
            Some(incoming) => {
                carry.as_ref().inspect(|c| c.deliver());
                Wait::Done(incoming)
            }
            None => Wait::Block(carry),
        }
    });
    let replied = replied.unwrap_or(Err(ReplyError::Stale));
    if replied == Ok(false) {
        // As in `kernel_reply`: a malformed answer.
        crate::arch::cpu::die_now();
    }
    match r {
        Some(incoming) => (replied.map(|_| ()), incoming),
        None => {
            panic!("recv on endpoint {}, which does not exist, is another task's, or into a bad buffer", id)
        }
    }
}

/// An answer for [`kernel_reply_recv`]: the token's fields, and the answer's buffer.
#[derive(Clone, Copy)]
struct Answer {
    client: usize,
    generation: u32,
    seq: u64,
    resp: u64,
    len: usize,
}

/// The current task answers the call `client` (of `generation`) made as number `seq` with the
/// `len` bytes at `resp`: checked, the call marked answered and its caller woken (to run next).
/// Returns the answer's copy, for the caller to carry (`None`: the answer is not a value of its
/// type, and we are marked dying).
fn answer(
    k: &mut Kernel,
    client: usize,
    generation: u32,
    seq: u64,
    resp: u64,
    len: usize,
) -> Result<Option<Carry>, ReplyError> {
    let me = k.current;
    let call = serving(k, client, generation, seq)?;
    // The answer must have the size the caller's buffer has, and come from our own memory
    // (or the image); a bent token or endpoint value is refused, not written.
    let (resp_size, checks) = k.eps.get(call.ep).map_or((0, None), |ep| (ep.resp_size, ep.checks));
    let mine = k.cur().data_ranges();
    if len != resp_size || !sendable(&mine, resp, len) {
        return Err(ReplyError::Stale);
    }
    if checks.is_some_and(|c| !(c.resp)(resp)) {
        k.cur().dying = Some(Fault::MALFORMED);
        return Ok(None);
    }
    // The caller is blocked in `call` with phase Served by us, so `call.resp` is its answer
    // buffer of `len` bytes (checked in `call`), which nothing else writes; `resp` lies in our
    // own memory or the image, so they do not overlap.
    let carry = Carry { to: client, from: resp, into: call.resp, len };
    if let Some(c) = k.task(client).and_then(|t| t.call.as_mut()) {
        c.phase = CallPhase::Replied;
    }
    k.wake(client);
    k.handoff = Some(client);
    crate::audit::replied(k, me, resp, len);
    let me = k.cur();
    me.served += 1;
    me.answered = true;
    Ok(Some(carry))
}

/// The call `client` (of `generation`) made as number `seq`, if the current task is serving
/// it (a token may be stale, or bent by a fault).
fn serving(k: &mut Kernel, client: usize, generation: u32, seq: u64) -> Result<Call, ReplyError> {
    let me = k.current;
    let t = k.task(client).ok_or(ReplyError::Stale)?;
    let call = t.call.ok_or(ReplyError::Stale)?;
    if t.generation != generation || call.seq != seq || call.phase != CallPhase::Served(me) {
        return Err(ReplyError::Stale);
    }
    Ok(call)
}

/// The current task waits for work for the first time since it was restarted: it is ready to
/// serve. Record (and report) the restart latency.
fn first_wait(k: &mut Kernel, waiting: usize) {
    let quiet = k.quiet;
    let t = k.cur();
    if t.fault_tsc == 0 {
        return;
    }
    let latency = crate::arch::cpu::rdtsc() - t.fault_tsc;
    t.fault_tsc = 0;
    t.last_latency = Some(latency);
    if !quiet {
        crate::serial::kprintln!(
            "{} gen {} ready: {} TSC ticks from its predecessor's fault to its first recv; {} caller(s) waiting",
            t.name,
            t.generation,
            latency,
            waiting
        );
    }
}

/// The current task took a message from its mailbox: for a task that serves a mailbox (the
/// console, the shell) that is what answering a request is for an endpoint's server, so its
/// next fault does not continue a crash loop.
fn took_work(k: &mut Kernel) {
    k.cur().answered = true;
}

/// Server `dead` died: each call it was serving goes back to the front of its queue for the
/// next incarnation, or fails (`fault::recovery::Redelivery`: once only, and only if the
/// server is `restarting`). Returns (suspended, failed).
pub(crate) fn server_died(k: &mut Kernel, dead: usize, restarting: bool) -> (usize, usize) {
    let (mut suspended, mut failed) = (0, 0);
    for c in 0..k.tasks.len() {
        let Some(t) = k.tasks[c].as_mut() else { continue };
        let Some(call) = t.call.as_mut() else { continue };
        if call.phase != CallPhase::Served(dead) {
            continue;
        }
        match Redelivery::decide(restarting, call.delivered_again) {
            Redelivery::Fail => {
                call.phase = CallPhase::Failed(CallError::ServerFailed);
                failed += 1;
                k.wake(c);
            }
            Redelivery::Again => {
                call.delivered_again = true;
                call.phase = CallPhase::Queued;
                let ep = call.ep;
                if k.eps[ep].queue.push_front(c).is_err() {
                    if let Some(call) = k.tasks[c].as_mut().and_then(|t| t.call.as_mut()) {
                        call.phase = CallPhase::Failed(CallError::QueueFull);
                    }
                    k.wake(c);
                    failed += 1;
                } else {
                    suspended += 1;
                }
            }
        }
    }
    (suspended, failed)
}

/// Server `held` is halted: everyone queued on its endpoints fails now.
pub(crate) fn server_halted(k: &mut Kernel, held: usize) -> usize {
    let mut failed = 0;
    for ep in 0..k.eps.len() {
        if k.eps[ep].server != Some(held) {
            continue;
        }
        while let Some(c) = k.eps[ep].queue.pop_front() {
            if let Some(call) = k.tasks[c].as_mut().and_then(|t| t.call.as_mut()) {
                if call.ep == ep && call.phase == CallPhase::Queued {
                    call.phase = CallPhase::Failed(CallError::ServerFailed);
                    failed += 1;
                    k.wake(c);
                }
            }
        }
    }
    failed
}

/// Storage that only the holder of the task table may touch (the `&mut Kernel` is the proof).
struct KCell<T>(UnsafeCell<T>);

// SAFETY: accessed only through `get`, which needs `&mut Kernel`, i.e. inside `KERNEL.with`.
unsafe impl<T: Send> Sync for KCell<T> {}

impl<T> KCell<T> {
    fn get<'a>(&'a self, _k: &'a mut Kernel) -> &'a mut T {
        // SAFETY: the exclusive borrow of the task table serialises every access.
        unsafe { &mut *self.0.get() }
    }
}

struct MailboxState<T, const N: usize> {
    /// Each message and who sent it (a task's index, or [`FROM_DEVICE`]).
    queue: Deque<(T, usize), N>,
    receiver: Option<usize>,
}

struct MailboxInner<T, const N: usize> {
    state: KCell<MailboxState<T, N>>,
}

/// The sending end of an asynchronous channel: `send` never waits for the receiver.
pub struct Sender<T: 'static, const N: usize> {
    inner: &'static MailboxInner<T, N>,
}

impl<T, const N: usize> Clone for Sender<T, N> {
    fn clone(&self) -> Self {
        Sender { inner: self.inner }
    }
}

/// The receiving end of an asynchronous channel.
pub struct Receiver<T: 'static, const N: usize> {
    inner: &'static MailboxInner<T, N>,
}

impl<T, const N: usize> Clone for Receiver<T, N> {
    fn clone(&self) -> Self {
        Receiver { inner: self.inner }
    }
}

/// Make an asynchronous channel of capacity `N` (while wiring the system).
pub fn mailbox<T: Copy + Send + 'static, const N: usize>() -> (Sender<T, N>, Receiver<T, N>) {
    let inner: &'static MailboxInner<T, N> = crate::mem::heap::in_core(|| {
        alloc::boxed::Box::leak(alloc::boxed::Box::new(MailboxInner {
            state: KCell(UnsafeCell::new(MailboxState { queue: Deque::new(), receiver: None })),
        }))
    });
    let registered = KERNEL.with(|k| k.mailboxes.push(inner as *const _ as u64).is_ok());
    assert!(registered, "too many mailboxes");
    (Sender { inner }, Receiver { inner })
}

/// Is `inner` a mailbox the kernel made? (A handle from a cell may be corrupted.)
fn valid<T, const N: usize>(k: &Kernel, inner: &MailboxInner<T, N>) -> bool {
    k.mailboxes.contains(&(inner as *const _ as u64))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full;

/// The sender of a message a device's interrupt queued (the keyboard's bytes).
pub const FROM_DEVICE: usize = usize::MAX;

impl<T: Copy + Send + 'static, const N: usize> Sender<T, N> {
    /// Queue `v` from task `from` (or [`FROM_DEVICE`]), the kernel locked.
    pub(crate) fn send_locked(&self, k: &mut Kernel, v: T, from: usize) -> Result<(), Full> {
        if !valid(k, self.inner) {
            return Err(Full);
        }
        let s = self.inner.state.get(k);
        s.queue.push_back((v, from)).map_err(|_| Full)?;
        if let Some(r) = s.receiver.take() {
            k.wake(r);
        }
        Ok(())
    }

    /// Queue `v`; `Err(Full)` if the queue is full. A handle the kernel never made (a
    /// corrupted one) panics, as `Receiver::recv` does: the task is restarted, where treating
    /// it as "full" would make `send` yield for ever, silently (a task whose stack a wild
    /// write had zeroed did exactly that, and the whole console with it).
    #[inline(never)]
    pub fn try_send(&self, v: T) -> Result<(), Full> {
        let this = Sender { inner: black_box(self.inner) };
        let v = black_box(v);
        let sent = KERNEL.with(|k| valid(k, this.inner).then(|| this.send_locked(k, v, k.current)));
        match sent {
            Some(sent) => sent,
            None => panic!(
                "send on a mailbox handle the kernel never made ({:#x})",
                this.inner as *const _ as u64
            ),
        }
    }

    /// Queue `v`, yielding while the queue is full.
    pub fn send(&self, v: T) {
        while self.try_send(v).is_err() {
            crate::sched::yield_now();
        }
    }

    /// Wait until the receiver took everything and is waiting again.
    #[inline(never)]
    pub fn drain(&self) {
        let inner = black_box(self.inner);
        loop {
            let done = KERNEL.with(|k| {
                if !valid(k, inner) {
                    return true;
                }
                let s = inner.state.get(k);
                s.queue.is_empty() && s.receiver.is_some()
            });
            if done {
                return;
            }
            crate::sched::yield_now();
        }
    }
}

impl<T: Copy + Send + 'static, const N: usize> Receiver<T, N> {
    /// Wait for the next message. Inlined for the reason [`Endpoint::call`] is: the kernel
    /// writes the message only into a local of the caller's that it checked.
    #[inline(always)]
    pub fn recv(&self) -> T {
        let mut out = MaybeUninit::<T>::uninit();
        let floor = crate::arch::cpu::stack_pointer();
        self.recv_into(out.as_mut_ptr(), floor);
        // SAFETY: `recv_into` returns only after writing a whole `T` there.
        unsafe { out.assume_init() }
    }

    #[inline(never)]
    fn recv_into(&self, out: *mut T, floor: u64) {
        let (inner, out) = black_box((self.inner, out));
        let r = block_on(State::Wait, |k| {
            let me = k.current;
            if !valid(k, inner) || !inside(&k.cur().data_ranges(), out as u64, size_of::<T>()) {
                return Some(false);
            }
            first_wait(k, 0);
            let popped = inner.state.get(k).queue.pop_front();
            match popped {
                Some((v, from)) => {
                    crate::audit::taken(k, me, from, floor, (out as u64, size_of::<T>()));
                    took_work(k);
                    // SAFETY: `out` lies in the caller's own stack or heap (checked above).
                    unsafe { out.write(v) };
                    Some(true)
                }
                None => {
                    inner.state.get(k).receiver = Some(me);
                    None
                }
            }
        });
        assert!(r, "recv on a mailbox handle the kernel never made, or into a bad buffer");
    }

    /// The next message, if one is waiting.
    #[inline(always)]
    pub fn try_recv(&self) -> Option<T> {
        let mut out = MaybeUninit::<T>::uninit();
        // SAFETY: `try_recv_into` returns true only after writing a whole `T` there.
        self.try_recv_into(out.as_mut_ptr()).then(|| unsafe { out.assume_init() })
    }

    #[inline(never)]
    fn try_recv_into(&self, out: *mut T) -> bool {
        let (inner, out) = black_box((self.inner, out));
        KERNEL.with(|k| {
            if !valid(k, inner) || !inside(&k.cur().data_ranges(), out as u64, size_of::<T>()) {
                return false;
            }
            let Some((v, _)) = inner.state.get(k).queue.pop_front() else { return false };
            took_work(k);
            // SAFETY: `out` lies in the caller's own stack or heap (checked above).
            unsafe { out.write(v) };
            true
        })
    }
}
