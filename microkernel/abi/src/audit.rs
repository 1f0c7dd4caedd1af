//! The state-spill audit's records, as the `audit` syscall writes them for the shell.
//!
//! ```text
//!  audit(task, index, Start)      snapshot frames taken, the server's endpoints leave the fastpath
//!    ... clients call the server; at each request delivered the kernel compares ...
//!  audit(task, index, Summary)    AuditSummary at `out`
//!  audit(task, index, Record, n)  AuditRecord n at `out`: spills first, then declared ranges
//!  audit(task, index, Stop)       frames freed, pages as they were; the records stay readable
//! ```

/// Most ranges one task may declare ([`crate::Sysno::Declare`]).
pub const MAX_DECLARED: usize = 8;
/// Bytes of a declared range's name (UTF-8, NUL-padded).
pub const DECLARED_NAME_LEN: usize = 24;
/// Bytes of a record's symbol or name (UTF-8, NUL-padded, cut at a character boundary).
pub const AUDIT_NAME_LEN: usize = 96;

/// What the `audit` syscall does (its third argument).
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditOp {
    Start = 0,
    Stop = 1,
    Summary = 2,
    Record = 3,
}

impl AuditOp {
    pub fn from_raw(raw: u64) -> Option<AuditOp> {
        Some(match raw {
            0 => AuditOp::Start,
            1 => AuditOp::Stop,
            2 => AuditOp::Summary,
            3 => AuditOp::Record,
            _ => return None,
        })
    }
}

/// [`AuditRecord::kind`]: a range a client's request changed and left changed when another
/// client's request arrived.
pub const RECORD_SPILL: u8 = 1;
/// [`AuditRecord::kind`]: a range the server declared (`declare`).
pub const RECORD_DECLARED: u8 = 2;

/// [`AuditRecord::read`]: no later request of another client read it (while watched).
pub const READ_NO: u8 = 0;
/// A later request of another client read it (`reader_*` say which).
pub const READ_YES: u8 = 1;
/// Not watched: it lies on the stack, where every request reads and writes (see `audit.rs`).
pub const READ_UNWATCHED: u8 = 2;

/// One range of an audit's report.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct AuditRecord {
    /// [`RECORD_SPILL`] or [`RECORD_DECLARED`].
    pub kind: u8,
    /// A spill: [`READ_NO`], [`READ_YES`] or [`READ_UNWATCHED`].
    pub read: u8,
    /// `name` is a symbol of the server's ELF (1), the stack (2), or nothing known (0); for a
    /// declared range, the name it was declared with (3).
    pub name_kind: u8,
    pub _pad: u8,
    /// Bytes in the range (a spill), or declared (a declared range).
    pub len: u32,
    pub addr: u64,
    /// Offset of `addr` in the symbol `name`.
    pub offset: u64,
    /// A spill: the badge of the client whose request caused it, that client's task and the
    /// request's number in the audit (from 1). A declared range: 0.
    pub badge: u64,
    pub client: u32,
    pub request: u32,
    /// A spill: how many times a client switch found it (the same range again).
    /// A declared range: bytes of it that changed across clients.
    pub count: u32,
    /// The reading request's number and its client's task.
    pub reader_request: u32,
    pub reader_badge: u64,
    pub reader_client: u32,
    pub _pad2: u32,
    pub name: [u8; AUDIT_NAME_LEN],
}

impl Default for AuditRecord {
    fn default() -> Self {
        bytemuck::Zeroable::zeroed()
    }
}

impl AuditRecord {
    pub fn name(&self) -> &str {
        crate::str_from_padded(&self.name)
    }
}

/// An audit as a whole.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct AuditSummary {
    /// Requests of clients delivered to the server while audited.
    pub requests: u32,
    /// Distinct clients (badges) among them.
    pub clients: u32,
    /// Client switches: a request of a client other than the previous one's.
    pub switches: u32,
    /// Pages of private memory audited (writable image pages and stack pages).
    pub pages: u32,
    /// Spill records, and the bytes they span.
    pub spills: u32,
    pub spill_bytes: u32,
    /// Spilled ranges that did not fit the kernel's table (counted, not recorded).
    pub dropped: u32,
    /// Declared ranges, and their bytes that changed across clients.
    pub declared: u32,
    pub declared_bytes: u32,
    /// 1 while the audit runs.
    pub active: u32,
    /// Why it ended early, or 0 ([`AUDIT_TARGET_GONE`]).
    pub ended: u32,
    pub _pad: u32,
}

/// [`AuditSummary::ended`]: the server stopped or was restarted during the audit.
pub const AUDIT_TARGET_GONE: u32 = 1;
