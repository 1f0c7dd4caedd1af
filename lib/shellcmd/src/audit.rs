//! The lines `audit NAME` prints, written once for both shells: `cargo os audit` reads them
//! from either personality (`images/src/audit.rs`), so their keys and order are one format.
//!
//! ```text
//!  audit: spill addr=A len=L task=T session=S request=R times=N read=yes|no|unwatched
//!         [reader_task=T reader_session=S reader_request=R] symbol=NAME+0xOFF
//!  audit: declared addr=A len=L changed=C name=NAME
//!  audit NAME: requests=R clients=C switches=W pages=P spill=K spill_bytes=B declared=D
//!         declared_changed=X dropped=K verdict=clean|SPILL
//! ```
//! (Each is one line; a client or reader the personality has no number for prints `-`.)

use core::fmt::{self, Display};

/// One spilled range.
pub struct Spill<'a> {
    pub addr: u64,
    pub len: u64,
    /// The client whose request left it: its task and session (`-` where there is none).
    pub task: &'a dyn Display,
    pub session: &'a dyn Display,
    pub request: u32,
    /// Switches of client at which it was found so.
    pub times: u32,
    /// `yes`, `no` or `unwatched`.
    pub read: &'a str,
    /// Who read it, if another client's request did: task, session, request.
    pub reader: Option<(&'a dyn Display, &'a dyn Display, u32)>,
    /// What it lies in, and its offset there.
    pub symbol: &'a dyn Display,
    pub offset: u64,
}

impl Display for Spill<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "audit: spill addr={:#x} len={} task={} session={} request={} times={} read={}",
            self.addr, self.len, self.task, self.session, self.request, self.times, self.read
        )?;
        if let Some((task, session, request)) = self.reader {
            write!(f, " reader_task={} reader_session={} reader_request={}", task, session, request)?;
        }
        write!(f, " symbol={}+{:#x}", self.symbol, self.offset)
    }
}

/// One range the server declared, and how many of its bytes changed across clients.
pub struct Declared<'a> {
    pub addr: u64,
    pub len: u64,
    pub changed: u64,
    pub name: &'a str,
}

impl Display for Declared<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "audit: declared addr={:#x} len={} changed={} name={}",
            self.addr, self.len, self.changed, self.name
        )
    }
}

/// The audit's last line.
pub struct Summary<'a> {
    pub name: &'a str,
    pub requests: u32,
    pub clients: u32,
    pub switches: u32,
    pub pages: u64,
    pub spill: u64,
    pub spill_bytes: u64,
    pub declared: u64,
    pub declared_changed: u64,
    pub dropped: u64,
    pub clean: bool,
}

impl Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "audit {}: requests={} clients={} switches={} pages={} spill={} spill_bytes={} declared={} declared_changed={} dropped={} verdict={}",
            self.name,
            self.requests,
            self.clients,
            self.switches,
            self.pages,
            self.spill,
            self.spill_bytes,
            self.declared,
            self.declared_changed,
            self.dropped,
            if self.clean { "clean" } else { "SPILL" }
        )
    }
}
