//! [`Kept`]: state a server hands its client to keep (opaque exportation), registered so the
//! fault injector can reach it from outside (the `ssr` fault kind) and so that it dies with
//! its owner.
//!
//! The value lives in the client's heap; the server never keeps it. The registry records only
//! where it is, whose it is and which server it belongs to: nothing in a server refers to it.

use crate::state::{KeptEntry, KERNEL};
use alloc::boxed::Box;

/// A value of type `T` the current task keeps on behalf of `server`.
///
/// Reads and writes are volatile: the injector may change the value behind the holder's back,
/// exactly as a stray write would.
pub struct Kept<T: Copy + 'static> {
    value: *mut T,
}

// SAFETY: `Kept` owns its allocation like a Box does; T is plain data.
unsafe impl<T: Copy + Send + 'static> Send for Kept<T> {}

impl<T: Copy + 'static> Kept<T> {
    /// Keep `value` for `server` (a task name). Unregistered if the registry is full (then the
    /// injector just cannot reach it).
    pub fn new(server: &'static str, value: T) -> Self {
        let value = Box::into_raw(Box::new(value));
        let entry = KeptEntry { addr: value as u64, len: core::mem::size_of::<T>(), owner: 0, server };
        KERNEL.with(|k| {
            let owner = k.current;
            let _ = k.kept.push(KeptEntry { owner, ..entry });
        });
        Kept { value }
    }

    /// Inlined into the holder: a value returned from a kernel function would be written
    /// through a result pointer the caller passes unchecked (see `chan`'s `Endpoint::call`).
    #[inline(always)]
    pub fn get(&self) -> T {
        if core::mem::align_of::<T>() < 8 {
            // SAFETY: `value` came from `Box::into_raw` and is freed only by `drop`.
            return unsafe { self.value.read_volatile() };
        }
        // A volatile read of a whole `T` is compiled to one load per byte (1,192 instructions
        // for the fs cell's 416-byte session, traced): read it a word at a time instead, each
        // word still volatile, then the bytes of a last partial word.
        let mut out = core::mem::MaybeUninit::<T>::uninit();
        let (words, bytes) = (core::mem::size_of::<T>() / 8, core::mem::size_of::<T>() % 8);
        let (src, dst) = (self.value as *const u8, out.as_mut_ptr() as *mut u8);
        // SAFETY: `value` came from `Box::into_raw` and is freed only by `drop`; it is aligned
        // to 8 (checked above), so each of its `words` 8-byte words is an aligned, in-bounds
        // read; `dst` is `out`, as large. Every byte of `out` is written before `assume_init`,
        // with the bytes of the `T` it copies, as `read_volatile` of the whole would.
        unsafe {
            for i in 0..words {
                let w = (src as *const u64).add(i).read_volatile();
                (dst as *mut u64).add(i).write(w);
            }
            for i in words * 8..words * 8 + bytes {
                dst.add(i).write(src.add(i).read_volatile());
            }
            out.assume_init()
        }
    }

    /// Which kept value this is: a client sends it with its request so that [`others`] can
    /// leave its own value out.
    pub fn id(&self) -> u64 {
        self.value as u64
    }

    pub fn set(&mut self, v: T) {
        // SAFETY: as for `get`; `&mut self` excludes other users in this task.
        unsafe { self.value.write_volatile(v) }
    }
}

impl<T: Copy + 'static> Drop for Kept<T> {
    fn drop(&mut self) {
        let addr = self.value as u64;
        KERNEL.with(|k| k.kept.retain(|h| h.addr != addr));
        // SAFETY: from `Box::into_raw` in `new`, freed once, here.
        drop(unsafe { Box::from_raw(self.value) });
    }
}

/// Call `f` with a copy of every value of type `T` kept for `server`, except the one whose
/// [`Kept::id`] is `except`: how a server whose rules depend on what its *other* clients hold
/// (the fs cell: a file another session has open) sees their states without keeping any.
///
/// Each copy is taken with the kernel locked, so its holder can neither die nor free it
/// meanwhile. A holder between receiving an answer and storing it is seen with its state from
/// before that request.
pub fn others<T: Copy + 'static>(server: &str, except: u64, mut f: impl FnMut(T)) {
    let size = core::mem::size_of::<T>();
    for n in 0.. {
        let next = KERNEL.with(|k| {
            let e =
                k.kept.iter().filter(|e| e.server == server && e.addr != except && e.len == size).nth(n)?;
            // SAFETY: a registered entry is the live allocation of a `Kept` of `len` bytes: a
            // `Kept` leaves the registry before its allocation is freed (`drop`), and a dead
            // owner's entries leave it with its memory, both under this lock. `T` is plain data
            // of that size, read as `Kept::get` reads it.
            Some(unsafe { (e.addr as *const T).read_volatile() })
        });
        match next {
            Some(v) => f(v),
            None => break,
        }
    }
}
