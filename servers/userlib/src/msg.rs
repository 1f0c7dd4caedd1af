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
