//! Typed messages: requests and replies are serde types, postcard-encoded into the IPC buffer.
//!
//! A client calls [`call`](crate::cap::Cap::call_encoded) with a request value and gets a reply
//! value back; a server decodes with [`decode`] and answers with [`encode`]. Decoding never
//! trusts the sender: a payload that does not decode is an error value, not a crash.

use axolotl_abi::{Error, IPC_BUFFER_SIZE};
use serde::{Deserialize, Serialize};

/// Why a typed call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallError {
    /// The kernel refused the IPC.
    Ipc(Error),
    /// The request did not fit the IPC buffer.
    Encode,
    /// The reply did not decode as the expected type.
    Decode,
}

/// Implement `From<CallError>` for a protocol's error enum that has a `Malformed` variant and
/// an `Ipc(u8)` one (the kernel's error code): what a client stub's `?` needs.
#[macro_export]
macro_rules! from_call_error {
    ($error:ident) => {
        impl From<$crate::msg::CallError> for $error {
            fn from(e: $crate::msg::CallError) -> Self {
                match e {
                    $crate::msg::CallError::Ipc(e) => $error::Ipc(e as u8),
                    $crate::msg::CallError::Encode | $crate::msg::CallError::Decode => $error::Malformed,
                }
            }
        }
    };
}

impl From<Error> for CallError {
    fn from(e: Error) -> Self {
        CallError::Ipc(e)
    }
}

/// Encode `value` into `out`; returns the bytes used.
pub fn encode<T: Serialize>(value: &T, out: &mut [u8]) -> Result<usize, CallError> {
    postcard::to_slice(value, out).map(|s| s.len()).map_err(|_| CallError::Encode)
}

/// Decode a `T` from `bytes` (which it may borrow from).
pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, CallError> {
    postcard::from_bytes(bytes).map_err(|_| CallError::Decode)
}

/// A buffer as large as the IPC buffer, for staging encoded messages.
pub type Buffer = [u8; IPC_BUFFER_SIZE];
