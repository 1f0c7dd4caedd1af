//! The console's input hook: the bytes COM1 receives go, from the interrupt handler, into a
//! mailbox the console cell reads. The trap dispatcher calls the hook; only this module knows
//! it is a mailbox.

use crate::chan::Sender;
use crate::state::{InputHook, Kernel, KERNEL};

/// Deliver every received byte, wrapped by `wrap`, into the mailbox `tx` (from IRQ 4). A byte
/// that finds the mailbox full is dropped: an interrupt handler cannot wait.
pub fn attach_input<T: Copy + Send + 'static, const N: usize>(tx: Sender<T, N>, wrap: fn(u8) -> T) {
    let hook: InputHook = crate::mem::heap::in_core(|| {
        alloc::boxed::Box::new(move |k: &mut Kernel, b: u8| {
            let _ = tx.send_locked(k, wrap(b), crate::chan::FROM_DEVICE);
        })
    });
    KERNEL.with(|k| k.input = Some(hook));
}
