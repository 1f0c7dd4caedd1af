//! The timer server: sleeps and alarms for its clients, driven by the CMOS real-time clock.
//!
//! Time is kept in TSC ticks, which keep counting across restarts of this server; the kernel
//! measures their rate once at boot and hands it, with the TSC at boot, to every task in its
//! boot info. So `now` is milliseconds since boot, as on the libos, and stays so when this
//! server restarts; and a restart needs no calibration of its own. The RTC's periodic interrupt
//! (IRQ 8, [`RATE_HZ`]) wakes the server to answer sleeps and alarms that are due. Each
//! client's sleep and alarm deadlines live in
//! its session's SSR ([`ClientState`]); the server itself only holds the reply capabilities of
//! clients waiting right now, and a table saying which slot waits until when (a description of
//! its own capability slots, which vanish with it anyway).
//!
//! Version 2 (feature `v2`, installed with `update timer`) keeps the state in layout 3: layout 2
//! and a count of the sleeps the session has begun, answered by `Request::Slept`. A session
//! still in layout 2 is migrated on its first request to version 2 ([`migrate`]).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use bytemuck::{Pod, Zeroable};
use ssr::{Broken, Layout};
use timer_api::{Request, Response, TimerError, LABEL, MAX_SLEEP_MS};
use userlib::abi::{badge_client, badge_session, BootInfo, Error, LABEL_NOTIFICATION};
use userlib::cap::{
    cap_info, save_reply, ssr_window, Cap, Endpoint, Interrupt, IoPort, Message, Notification, Reply,
};
use userlib::msg;
use userlib::serve::Answer;
use userlib::sys::{inb, outb, rdtsc};

const RTC_INDEX: u16 = 0x70;
const RTC_DATA: u16 = 0x71;
/// Periodic interrupt rate: 32768 >> (RATE - 1) Hz.
const RATE: u8 = 8;
const RATE_HZ: u64 = 32768 >> (RATE - 1);
/// Capability slots for parked replies (the manifest fills the low ones).
const PARK_FIRST: u8 = 16;
const PARK_SLOTS: usize = 48;

const ALARM_SET: u32 = 1;

/// A client's timer state, in its SSR (layout 2).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct ClientState {
    /// TSC deadline of the sleep in progress (0: none). Kept so that a sleep re-delivered to a
    /// restarted server ends when it was always going to.
    sleep_deadline: u64,
    alarm_deadline: u64,
    alarm_period: u64,
    fired: u32,
    flags: u32,
}

impl Layout for ClientState {
    const KIND: u16 = 0x71;
    const VERSION: u16 = 2;
    const BACKUP: bool = true;

    fn check(&self) -> Result<(), Broken> {
        if self.flags & !ALARM_SET != 0 {
            return Err(Broken::Inconsistent("unknown alarm flags"));
        }
        if self.flags & ALARM_SET == 0 && (self.alarm_deadline != 0 || self.alarm_period != 0) {
            return Err(Broken::Inconsistent("alarm times without an alarm"));
        }
        Ok(())
    }
}

/// Layout 3 (version 2): layout 2 and the sleeps the session has begun since.
#[cfg(feature = "v2")]
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct ClientState3 {
    timer: ClientState,
    /// Milliseconds the counted sleeps asked for, in all.
    slept_ms: u64,
    sleeps: u32,
    /// Zero: a field where there would be padding, which a `Pod` type may not have.
    reserved: u32,
}

#[cfg(feature = "v2")]
impl Layout for ClientState3 {
    const KIND: u16 = ClientState::KIND;
    const VERSION: u16 = 3;
    const BACKUP: bool = true;

    fn check(&self) -> Result<(), Broken> {
        self.timer.check()?;
        if self.reserved != 0 {
            return Err(Broken::Inconsistent("reserved field not zero"));
        }
        if self.sleeps == 0 && self.slept_ms != 0 {
            return Err(Broken::Inconsistent("time slept without a sleep"));
        }
        Ok(())
    }
}

/// The layout this version writes.
#[cfg(not(feature = "v2"))]
type SsrState = ClientState;
#[cfg(feature = "v2")]
type SsrState = ClientState3;

/// The timer state in a client's SSR, whichever the layout.
trait Timers {
    fn timers(&mut self) -> &mut ClientState;
    /// Count a sleep of `ms` that begins, if the layout keeps a count.
    fn count_sleep(&mut self, _ms: u32) {}
    /// The sleeps counted and the milliseconds they asked for, if the layout keeps them.
    fn slept(&self) -> Option<(u32, u64)> {
        None
    }
}

impl Timers for ClientState {
    fn timers(&mut self) -> &mut ClientState {
        self
    }
}

#[cfg(feature = "v2")]
impl Timers for ClientState3 {
    fn timers(&mut self) -> &mut ClientState {
        &mut self.timer
    }
    fn count_sleep(&mut self, ms: u32) {
        self.sleeps = self.sleeps.saturating_add(1);
        self.slept_ms += ms as u64;
    }
    fn slept(&self) -> Option<(u32, u64)> {
        Some((self.sleeps, self.slept_ms))
    }
}

#[derive(Clone, Copy)]
struct Parked {
    deadline: u64,
    reply: Cap<Reply>,
    /// The answer to send at the deadline.
    fired: Option<u32>,
}

/// What to do after a request: answer now, or park the caller until a deadline. Parking
/// happens only after the client's SSR is sealed, because saving the reply unmaps the SSR.
enum Action {
    Reply(Response),
    Park { deadline: u64, fired: Option<u32> },
}

struct Server {
    tsc_per_ms: u64,
    epoch: u64,
    parked: Parking,
}

/// Which of its own reply slots waits until when, and a checksum of that, taken whenever the
/// timer changes it and checked before each use: a table a fault bent behind its back (a
/// campaign's `memflip` of it once did) would leave its callers parked for ever, with
/// nothing to time out.
#[derive(Clone, Copy)]
struct Parking {
    entries: [Option<Parked>; PARK_SLOTS],
    seal: u64,
}

fn rtc_read(reg: u8) -> u8 {
    outb(RTC_INDEX, 0x80 | reg); // bit 7 keeps NMIs off while we talk to the RTC
    inb(RTC_DATA)
}

fn rtc_write(reg: u8, value: u8) {
    outb(RTC_INDEX, 0x80 | reg);
    outb(RTC_DATA, value);
}

/// Start the RTC's periodic interrupt.
fn rtc_start() {
    let a = rtc_read(0x0a);
    rtc_write(0x0a, (a & 0xf0) | RATE);
    let b = rtc_read(0x0b);
    rtc_write(0x0b, b | 0x40);
    rtc_read(0x0c);
}

/// Acknowledge one periodic interrupt at the RTC (reading register C re-arms it).
fn rtc_ack() {
    rtc_read(0x0c);
}

impl Server {
    fn now(&self) -> u64 {
        rdtsc()
    }

    fn ms_to_tsc(&self, ms: u32) -> u64 {
        ms as u64 * self.tsc_per_ms
    }

    /// Keep `reply` waiting until `deadline`.
    fn park(&mut self, deadline: u64, fired: Option<u32>) -> Result<(), TimerError> {
        let i = self.parked.entries.iter().position(Option::is_none).ok_or(TimerError::Busy)?;
        let slot = PARK_FIRST + i as u8;
        if cap_info(slot).is_ok() {
            // A reply left from a client that was answered some other way: drop it.
            let _ = userlib::cap::cap_delete(slot);
        }
        let reply = save_reply(slot).map_err(|e| TimerError::Ipc(e as u8))?;
        self.parked.entries[i] = Some(Parked { deadline, reply, fired });
        self.parked.seal = self.seal_parked();
        Ok(())
    }

    /// The checksum of the parked table: each entry's deadline, slot and answer.
    fn seal_parked(&self) -> u64 {
        self.parked.entries.iter().fold(0x7a11_5eed, |acc, p| {
            let (deadline, rest) =
                p.map_or((0, 0), |w| (w.deadline, w.reply.slot() << 40 | w.fired.map_or(1 << 32, u64::from)));
            algo::seal::seal_word(algo::seal::seal_word(acc, deadline), rest)
        })
    }

    /// Answer every waiting client whose deadline has passed. A table that changed behind the
    /// timer's back is not trusted: the timer fails, and its callers are delivered again to the
    /// next incarnation, which parks them anew from their SSRs.
    fn expire(&mut self) {
        if self.parked.seal != self.seal_parked() {
            panic!("the table of parked callers changed behind the timer's back");
        }
        let now = self.now();
        let mut answered = false;
        for p in self.parked.entries.iter_mut() {
            if let Some(w) = p.filter(|w| w.deadline <= now) {
                let resp = match w.fired {
                    Some(fired) => Response::Alarm { fired },
                    None => Response::Done,
                };
                let mut out = [0u8; 16];
                let len = msg::encode(&resp, &mut out).unwrap_or(0);
                // A client that died meanwhile cannot be answered; that is fine.
                let _ = w.reply.reply(LABEL, [0; 4], &out[..len]);
                *p = None;
                answered = true;
            }
        }
        // Most ticks answer no one: the table, checked above, is then sealed as it is.
        if answered {
            self.parked.seal = self.seal_parked();
        }
    }

    /// Serve one request.
    fn handle(&mut self, state: &mut impl Timers, req: Request) -> Action {
        let now = self.now();
        match req {
            Request::Slept => {
                return Action::Reply(state.slept().map_or(
                    Response::Error(TimerError::Malformed),
                    |(sleeps, ms)| Response::Slept { sleeps, ms },
                ))
            }
            // Counted when it begins: a sleep delivered again after a restart, whose deadline
            // is still ahead, was counted the first time.
            Request::Sleep { ms } if ms <= MAX_SLEEP_MS && state.timers().sleep_deadline <= now => {
                state.count_sleep(ms)
            }
            _ => {}
        }
        let st = state.timers();
        let result = match req {
            Request::Sleep { ms } | Request::SetAlarm { ms, period_ms: _ } if ms > MAX_SLEEP_MS => {
                Err(TimerError::TooLong)
            }
            Request::SetAlarm { period_ms, .. } if period_ms > MAX_SLEEP_MS => Err(TimerError::TooLong),
            Request::Now => Ok(Response::Now { ms: (now - self.epoch) / self.tsc_per_ms.max(1) }),
            Request::Sleep { ms } => {
                if st.sleep_deadline <= now {
                    st.sleep_deadline = now + self.ms_to_tsc(ms);
                }
                return Action::Park { deadline: st.sleep_deadline, fired: None };
            }
            Request::SetAlarm { ms, period_ms } => {
                st.alarm_deadline = now + self.ms_to_tsc(ms);
                st.alarm_period = self.ms_to_tsc(period_ms);
                st.fired = 0;
                st.flags = ALARM_SET;
                Ok(Response::Done)
            }
            Request::CancelAlarm => {
                *st = ClientState { sleep_deadline: st.sleep_deadline, ..ClientState::zeroed() };
                Ok(Response::Done)
            }
            Request::WaitAlarm => {
                if st.flags & ALARM_SET == 0 {
                    return Action::Reply(Response::Error(TimerError::NoAlarm));
                }
                // Commit the firing now; the reply only delivers it (at the deadline).
                let deadline = st.alarm_deadline;
                st.fired += 1;
                if st.alarm_period == 0 {
                    let fired = st.fired;
                    *st = ClientState { sleep_deadline: st.sleep_deadline, fired, ..ClientState::zeroed() };
                } else {
                    st.alarm_deadline += st.alarm_period;
                }
                if deadline <= now {
                    Ok(Response::Alarm { fired: st.fired })
                } else {
                    return Action::Park { deadline, fired: Some(st.fired) };
                }
            }
            Request::Slept => Err(TimerError::Malformed), // served above
        };
        Action::Reply(result.unwrap_or_else(Response::Error))
    }
}

#[cfg(not(feature = "v2"))]
userlib::version!("timer", 1, [(ClientState::KIND, ClientState::VERSION)]);
#[cfg(feature = "v2")]
userlib::version!(
    "timer",
    2,
    [(ClientState::KIND, ClientState::VERSION), (ClientState3::KIND, ClientState3::VERSION)]
);
userlib::entry!(main);

/// A client state in layout 2 becomes layout 3 on the session's first request to version 2,
/// with nothing counted yet.
#[cfg(feature = "v2")]
fn migrate(client: u16, session: u16) {
    let window = ssr_window();
    if ssr::layout_of(window, ClientState::KIND) != Some(ClientState::VERSION) {
        return;
    }
    let to_3 = |old: &ClientState| ClientState3 { timer: *old, slept_ms: 0, sleeps: 0, reserved: 0 };
    match ssr::migrate::<ClientState, ClientState3>(window, to_3) {
        Ok(()) => log::info!("client task {client} (session {session}): state migrated from layout 2 to 3"),
        // Left as it is: opening it in layout 3 then fails and resets it, as any broken state.
        Err(e) => log::warn!("client task {client} (session {session}): cannot migrate its state: {e}"),
    }
}

#[cfg(not(feature = "v2"))]
fn migrate(_client: u16, _session: u16) {}

fn main(boot: &'static BootInfo) -> Result<(), Error> {
    console_api::init_log(log::LevelFilter::Info);
    let ports = Cap::<IoPort>::from_boot(boot, "rtc").ok_or(Error::EmptySlot)?;
    let irq = Cap::<Interrupt>::from_boot(boot, "rtc").ok_or(Error::EmptySlot)?;
    let ticks = Cap::<Notification>::from_boot(boot, "rtc").ok_or(Error::EmptySlot)?;
    let ep = Cap::<Endpoint>::from_boot(boot, "timer").ok_or(Error::EmptySlot)?;
    ports.enable()?;
    rtc_start();
    irq.ack()?;
    let tsc_per_ms = boot.tsc_per_ms.max(1);
    if boot.generation == 0 {
        log::info!("RTC at {} Hz; {} TSC ticks per ms (the kernel's measure)", RATE_HZ, tsc_per_ms);
    }
    ticks.bind()?;
    let parked = Parking { entries: [None; PARK_SLOTS], seal: 0 };
    let mut server = Server { tsc_per_ms, epoch: boot.boot_tsc, parked };
    server.parked.seal = server.seal_parked();
    // Server-global by design: which of its own reply slots waits until when. It describes
    // capabilities that vanish with this incarnation; the next rebuilds it from the clients'
    // SSRs as their calls are delivered again.
    userlib::declare(&server.parked, "parked callers")?;
    userlib::serve::serve(ep, |m: &Message| {
        if m.info.label == LABEL_NOTIFICATION {
            rtc_ack();
            if let Err(e) = irq.ack() {
                panic!("timer: cannot acknowledge the RTC's interrupt: {e}");
            }
            server.expire();
            return Answer::Wait;
        }
        let action =
            m.with_payload(|payload| match (badge_session(m.badge), msg::decode::<Request>(payload)) {
                (None, _) => Action::Reply(Response::Error(TimerError::NoSession)),
                (_, Err(_)) => Action::Reply(Response::Error(TimerError::Malformed)),
                _ if m.info.label != LABEL => Action::Reply(Response::Error(TimerError::Malformed)),
                // The region is sealed when it goes out of scope, before any parking below.
                (Some(session), Ok(req)) => {
                    let client = badge_client(m.badge);
                    migrate(client, session);
                    match ssr::open_reporting::<SsrState>(ssr_window(), client, session) {
                        Ok(mut region) => server.handle(region.state(), req),
                        Err(_) => Action::Reply(Response::Error(TimerError::StateReset)),
                    }
                }
            });
        match action {
            Action::Park { deadline, fired } => match server.park(deadline, fired) {
                Ok(()) => Answer::Wait,
                Err(e) => Answer::encode(LABEL, &Response::Error(e)),
            },
            Action::Reply(resp) => Answer::encode(LABEL, &resp),
        }
    })
}
