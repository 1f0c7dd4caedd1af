//! The boot manifest: which tasks start and which capabilities each one receives.
//!
//! It is a text file (GRUB loads it as the module named `manifest`), one directive a line:
//!
//! ```text
//! task console prio 6          # a task, from the module of the same name
//!     serve console            # endpoint "console": receive, send, grant
//! task fs prio 5 quota 8       # may hold 8 pages of Server State Regions as a client
//!     serve fs
//!     ssr-view fs              # read every session's SSR of "fs" (only its server may)
//!     ioport com1 0x3f8 8      # I/O ports 0x3f8..0x400
//!     irq com1 4               # IRQ 4, and a notification it signals
//! task shell prio 4
//!     call console             # send right to "console", badged with the task's index + 1
//!     task all                 # control over every task (ps, start, wait)
//! task hostile prio 1 dormant  # loaded, but started only by `task_start`
//!     task self
//!     memory scratch 4         # a 4-page memory object
//! task disk prio 5
//!     pci disk 1af4:1042,1af4:1001  # the first such PCI function not yet given to a task:
//!                              # its configuration space, BARs and interrupt (three slots)
//!     dma queues 32            # 32 physically contiguous pages a device may read and write
//! ```
//!
//! Capabilities take slots 1, 2, 3, ... in the order listed (slot 0 stays empty, so a forgotten
//! slot number fails loudly). Errors name the line.

use heapless::{String, Vec};

/// Most tasks a manifest may start.
pub const MAX_TASKS: usize = 16;
/// Most capabilities one task may receive from the manifest.
pub const MAX_CAPS: usize = 16;
/// Longest name of a task or capability.
pub const NAME_MAX: usize = 16;

pub type Name = String<NAME_MAX>;

/// SSR pages a task may hold when the manifest does not say.
pub const DEFAULT_QUOTA: u16 = 4;
/// Most SSR pages one task may be given.
pub const MAX_QUOTA: u16 = 128;
/// Most vendor:device ids one `pci` line may list.
pub const MAX_PCI_IDS: usize = 4;
/// Most pages of one `dma` region.
pub const MAX_DMA_PAGES: u64 = 64;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CapSpec {
    /// Receive (and send) on the named endpoint; the task serves it.
    Serve(Name),
    /// Send to the named endpoint.
    Call(Name),
    /// Task control over every task.
    TaskAll,
    /// Task control over this task only.
    TaskSelf,
    IoPort {
        name: Name,
        base: u16,
        len: u16,
    },
    Irq {
        name: Name,
        line: u8,
    },
    Memory {
        name: Name,
        pages: u16,
    },
    /// Read every SSR of the named endpoint (which this task must serve).
    SsrView(Name),
    /// A fresh notification (signal and wait).
    Notification(Name),
    /// The first PCI function with one of these vendor:device ids that no task has yet: its
    /// configuration space, its memory BARs, and its interrupt line with a notification.
    Pci {
        name: Name,
        ids: Vec<(u16, u16), MAX_PCI_IDS>,
    },
    /// Physically contiguous memory for a device's DMA.
    Dma {
        name: Name,
        pages: u16,
    },
}

impl CapSpec {
    pub fn name(&self) -> &str {
        match self {
            CapSpec::Serve(n) | CapSpec::Call(n) | CapSpec::SsrView(n) | CapSpec::Notification(n) => n,
            CapSpec::TaskAll => "all",
            CapSpec::TaskSelf => "self",
            CapSpec::IoPort { name, .. }
            | CapSpec::Irq { name, .. }
            | CapSpec::Memory { name, .. }
            | CapSpec::Pci { name, .. }
            | CapSpec::Dma { name, .. } => name,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskSpec {
    pub name: Name,
    pub priority: u8,
    /// Loaded but not started until someone calls `task_start`.
    pub dormant: bool,
    /// Pages of Server State Regions this task may hold as a client.
    pub quota: u16,
    /// Faults of this task go to the supervisor (the reincarnation server), which restarts it;
    /// its callers are suspended meanwhile instead of failed.
    pub supervised: bool,
    /// This task is the supervisor; if it faults, the kernel itself restarts it.
    pub supervisor: bool,
    pub caps: Vec<CapSpec, MAX_CAPS>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    pub tasks: Vec<TaskSpec, MAX_TASKS>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    UnknownDirective,
    CapabilityBeforeTask,
    MissingArgument,
    ExtraArgument,
    BadNumber,
    NameTooLong,
    TooManyTasks,
    TooManyCaps,
    DuplicateTask,
    /// `call` names an endpoint no task serves.
    NobodyServes,
    /// Two tasks serve the same endpoint.
    ServedTwice,
    BadPriority,
    /// An I/O range or IRQ line outside what hardware has.
    OutOfRange,
    /// `ssr-view` names an endpoint this task does not serve.
    NotTheServer,
}

/// A manifest error with its 1-based line number (0 for whole-file checks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ManifestError {
    pub line: usize,
    pub kind: ErrorKind,
}

impl core::fmt::Display for ManifestError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "manifest line {}: {:?}", self.line, self.kind)
    }
}

fn name(word: Option<&str>) -> Result<Name, ErrorKind> {
    let w = word.ok_or(ErrorKind::MissingArgument)?;
    Name::try_from(w).map_err(|_| ErrorKind::NameTooLong)
}

fn number(word: Option<&str>) -> Result<u64, ErrorKind> {
    let w = word.ok_or(ErrorKind::MissingArgument)?;
    let parsed = match w.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => w.parse(),
    };
    parsed.map_err(|_| ErrorKind::BadNumber)
}

fn parse_task(words: &mut core::str::SplitWhitespace<'_>) -> Result<TaskSpec, ErrorKind> {
    let mut spec = TaskSpec {
        name: name(words.next())?,
        priority: 1,
        dormant: false,
        quota: DEFAULT_QUOTA,
        supervised: false,
        supervisor: false,
        caps: Vec::new(),
    };
    while let Some(w) = words.next() {
        match w {
            "prio" => {
                let p = number(words.next())?;
                if p >= crate::queue::PRIORITIES as u64 {
                    return Err(ErrorKind::BadPriority);
                }
                spec.priority = p as u8;
            }
            "dormant" => spec.dormant = true,
            "supervised" => spec.supervised = true,
            "supervisor" => spec.supervisor = true,
            "quota" => {
                let q = number(words.next())?;
                if q > MAX_QUOTA as u64 {
                    return Err(ErrorKind::OutOfRange);
                }
                spec.quota = q as u16;
            }
            _ => return Err(ErrorKind::ExtraArgument),
        }
    }
    Ok(spec)
}

fn parse_cap(directive: &str, words: &mut core::str::SplitWhitespace<'_>) -> Result<CapSpec, ErrorKind> {
    Ok(match directive {
        "serve" => CapSpec::Serve(name(words.next())?),
        "call" => CapSpec::Call(name(words.next())?),
        "ssr-view" => CapSpec::SsrView(name(words.next())?),
        "notification" => CapSpec::Notification(name(words.next())?),
        "task" => unreachable!("handled by the caller"),
        "ioport" => {
            let name = name(words.next())?;
            let base = number(words.next())?;
            let len = number(words.next())?;
            if len == 0 || base + len > 0x1_0000 {
                return Err(ErrorKind::OutOfRange);
            }
            CapSpec::IoPort { name, base: base as u16, len: len as u16 }
        }
        "irq" => {
            let name = name(words.next())?;
            let line = number(words.next())?;
            // Line 0 is the scheduler's timer; 2 is the cascade of the second PIC.
            if line >= 16 || line == 0 || line == 2 {
                return Err(ErrorKind::OutOfRange);
            }
            CapSpec::Irq { name, line: line as u8 }
        }
        "memory" => {
            let name = name(words.next())?;
            let pages = number(words.next())?;
            if pages == 0 || pages > 256 {
                return Err(ErrorKind::OutOfRange);
            }
            CapSpec::Memory { name, pages: pages as u16 }
        }
        "pci" => {
            let name = name(words.next())?;
            let list = words.next().ok_or(ErrorKind::MissingArgument)?;
            let mut ids = Vec::new();
            for pair in list.split(',') {
                let (v, d) = pair.split_once(':').ok_or(ErrorKind::BadNumber)?;
                let hex = |w: &str| u16::from_str_radix(w, 16).map_err(|_| ErrorKind::BadNumber);
                ids.push((hex(v)?, hex(d)?)).map_err(|_| ErrorKind::OutOfRange)?;
            }
            CapSpec::Pci { name, ids }
        }
        "dma" => {
            let name = name(words.next())?;
            let pages = number(words.next())?;
            if pages == 0 || pages > MAX_DMA_PAGES {
                return Err(ErrorKind::OutOfRange);
            }
            CapSpec::Dma { name, pages: pages as u16 }
        }
        _ => return Err(ErrorKind::UnknownDirective),
    })
}

/// Parse and check a manifest.
pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
    let mut m = Manifest::default();
    for (i, raw) in text.lines().enumerate() {
        let err = |kind| ManifestError { line: i + 1, kind };
        let line = raw.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let Some(directive) = words.next() else { continue };
        // `task all` / `task self` are capabilities; `task NAME ...` at the start of a block is a task.
        let is_task_cap =
            directive == "task" && matches!(line.split_whitespace().nth(1), Some("all" | "self"));
        if directive == "task" && !is_task_cap {
            let spec = parse_task(&mut words).map_err(err)?;
            if m.tasks.iter().any(|t| t.name == spec.name) {
                return Err(err(ErrorKind::DuplicateTask));
            }
            m.tasks.push(spec).map_err(|_| err(ErrorKind::TooManyTasks))?;
            continue;
        }
        let cap = if is_task_cap {
            match words.next() {
                Some("all") => CapSpec::TaskAll,
                _ => CapSpec::TaskSelf,
            }
        } else {
            parse_cap(directive, &mut words).map_err(err)?
        };
        if words.next().is_some() {
            return Err(err(ErrorKind::ExtraArgument));
        }
        let task = m.tasks.last_mut().ok_or(err(ErrorKind::CapabilityBeforeTask))?;
        task.caps.push(cap).map_err(|_| err(ErrorKind::TooManyCaps))?;
    }
    check_endpoints(&m)?;
    Ok(m)
}

fn check_endpoints(m: &Manifest) -> Result<(), ManifestError> {
    let whole = |kind| ManifestError { line: 0, kind };
    for (i, t) in m.tasks.iter().enumerate() {
        for c in &t.caps {
            match c {
                CapSpec::Call(ep) if m.server_of(ep).is_none() => return Err(whole(ErrorKind::NobodyServes)),
                CapSpec::Serve(ep) if m.server_of(ep) != Some(i) => {
                    return Err(whole(ErrorKind::ServedTwice))
                }
                CapSpec::SsrView(ep) if m.server_of(ep) != Some(i) => {
                    return Err(whole(ErrorKind::NotTheServer))
                }
                _ => {}
            }
        }
    }
    Ok(())
}

impl Manifest {
    /// Index of the task that serves endpoint `ep`.
    pub fn server_of(&self, ep: &str) -> Option<usize> {
        self.tasks.iter().position(|t| t.caps.iter().any(|c| matches!(c, CapSpec::Serve(n) if n == ep)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "
# the default system
task console prio 6
    serve console
    ioport com1 0x3f8 8
    irq com1 4
task shell prio 4     # the user's shell
    call console
    task all
task hostile prio 1 dormant
    call console
    task self
    memory scratch 4
";

    #[test]
    fn parses_tasks_caps_and_flags_in_order() {
        let m = parse(GOOD).unwrap();
        assert_eq!(m.tasks.len(), 3);
        let console = &m.tasks[0];
        assert_eq!((console.name.as_str(), console.priority, console.dormant), ("console", 6, false));
        assert_eq!(
            console.caps[1],
            CapSpec::IoPort { name: Name::try_from("com1").unwrap(), base: 0x3f8, len: 8 }
        );
        assert_eq!(console.caps[2], CapSpec::Irq { name: Name::try_from("com1").unwrap(), line: 4 });
        assert_eq!(m.tasks[1].caps[1], CapSpec::TaskAll);
        assert!(m.tasks[2].dormant);
        assert_eq!(m.tasks[2].caps[1], CapSpec::TaskSelf);
        assert_eq!(m.tasks[2].caps[2].name(), "scratch");
        assert_eq!(m.server_of("console"), Some(0));
    }

    fn error(text: &str) -> ManifestError {
        parse(text).unwrap_err()
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(error("serve x"), ManifestError { line: 1, kind: ErrorKind::CapabilityBeforeTask });
        assert_eq!(
            error("task a\n  frobnicate"),
            ManifestError { line: 2, kind: ErrorKind::UnknownDirective }
        );
        assert_eq!(error("task a prio 9").kind, ErrorKind::BadPriority);
        assert_eq!(error("task a prio x").kind, ErrorKind::BadNumber);
        assert_eq!(error("task a prio").kind, ErrorKind::MissingArgument);
        assert_eq!(error("task a loud").kind, ErrorKind::ExtraArgument);
        assert_eq!(error("task a\ntask a").kind, ErrorKind::DuplicateTask);
        assert_eq!(error("task averyveryverylongname").kind, ErrorKind::NameTooLong);
        assert_eq!(error("task a\n serve x y").kind, ErrorKind::ExtraArgument);
        assert_eq!(error("task a\n ioport p 0xfff0 0x20").kind, ErrorKind::OutOfRange);
        assert_eq!(error("task a\n ioport p 0x10 0").kind, ErrorKind::OutOfRange);
        assert_eq!(error("task a\n irq t 0").kind, ErrorKind::OutOfRange);
        assert_eq!(error("task a\n irq t 16").kind, ErrorKind::OutOfRange);
        assert_eq!(error("task a\n memory m 0").kind, ErrorKind::OutOfRange);
    }

    #[test]
    fn supervision_flags() {
        let m = parse("task rs supervisor\ntask fs supervised dormant").unwrap();
        assert!(m.tasks[0].supervisor && !m.tasks[0].supervised);
        assert!(m.tasks[1].supervised && m.tasks[1].dormant);
        let m = parse("task rs\n notification faults").unwrap();
        assert_eq!(m.tasks[0].caps[0], CapSpec::Notification(Name::try_from("faults").unwrap()));
    }

    #[test]
    fn quotas_and_ssr_views() {
        let m = parse("task fs quota 9\n serve fs\n ssr-view fs\ntask c\n call fs").unwrap();
        assert_eq!((m.tasks[0].quota, m.tasks[1].quota), (9, DEFAULT_QUOTA));
        assert_eq!(m.tasks[0].caps[1], CapSpec::SsrView(Name::try_from("fs").unwrap()));
        assert_eq!(error("task a quota 129").kind, ErrorKind::OutOfRange);
        assert_eq!(error("task fs\n serve fs\ntask b\n ssr-view fs").kind, ErrorKind::NotTheServer);
    }

    #[test]
    fn endpoints_need_exactly_one_server() {
        assert_eq!(error("task a\n call nobody"), ManifestError { line: 0, kind: ErrorKind::NobodyServes });
        assert_eq!(error("task a\n serve e\ntask b\n serve e").kind, ErrorKind::ServedTwice);
    }

    #[test]
    fn limits_are_enforced() {
        let mut text = std::string::String::new();
        for i in 0..=MAX_TASKS {
            text.push_str(&std::format!("task t{i}\n"));
        }
        assert_eq!(error(&text).kind, ErrorKind::TooManyTasks);
        let mut text = std::string::String::from("task a\n");
        for _ in 0..=MAX_CAPS {
            text.push_str("task self\n");
        }
        assert_eq!(error(&text).kind, ErrorKind::TooManyCaps);
    }

    #[test]
    fn pci_devices_and_dma_regions() {
        let m = parse("task d\n pci disk 1af4:1042,1AF4:1001\n dma queues 32").unwrap();
        let ids = Vec::from_slice(&[(0x1af4, 0x1042), (0x1af4, 0x1001)]).unwrap();
        assert_eq!(m.tasks[0].caps[0], CapSpec::Pci { name: Name::try_from("disk").unwrap(), ids });
        assert_eq!(m.tasks[0].caps[1], CapSpec::Dma { name: Name::try_from("queues").unwrap(), pages: 32 });
        assert_eq!(error("task d\n pci disk").kind, ErrorKind::MissingArgument);
        assert_eq!(error("task d\n pci disk 1af4").kind, ErrorKind::BadNumber);
        assert_eq!(error("task d\n pci disk 1af4:10000").kind, ErrorKind::BadNumber);
        assert_eq!(error("task d\n pci disk 1:1,1:2,1:3,1:4,1:5").kind, ErrorKind::OutOfRange);
        assert_eq!(error("task d\n dma q 0").kind, ErrorKind::OutOfRange);
        assert_eq!(error("task d\n dma q 65").kind, ErrorKind::OutOfRange);
    }

    extern crate std;
}
