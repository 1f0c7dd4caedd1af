//! How a client checks a clock server's answers against the clock it reads itself (the libos
//! timer cell and its clients read the same tick counter). A timer that faulted while answering
//! — a flipped register, a skipped add — must not make a client believe a wrong time, nor end
//! a sleep early, nor put it to sleep for ever:
//!
//! ```text
//!  now:    before = tick; t = timer's answer; after = tick      t in [before, after], or ask again
//!  sleep:  start = tick; deadline = timer's answer; now = tick   deadline <= now + ms, or ask again;
//!                                                                 sleep until max(deadline, start + ms)
//! ```

/// Is `t` a time the clock server could have read between our readings `before` and `after`?
pub fn plausible_now(before: u64, t: u64, after: u64) -> bool {
    (before..=after).contains(&t)
}

/// When a sleep of `ms` begun at our reading `start` may end, given the server's `deadline`
/// and our reading `now` after its answer: never before `start + ms`, whatever the server said;
/// `None` for a deadline later than any a correct server could give (it would keep us asleep).
pub fn sleep_end(start: u64, ms: u32, deadline: u64, now: u64) -> Option<u64> {
    (deadline <= now.saturating_add(u64::from(ms))).then(|| deadline.max(start.saturating_add(u64::from(ms))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_outside_our_own_readings_is_refused() {
        assert!(plausible_now(100, 100, 103) && plausible_now(100, 103, 103));
        assert!(!plausible_now(100, 99, 103), "in the past");
        assert!(!plausible_now(100, 104, 103), "in the future");
        assert!(!plausible_now(100, 100 | 1 << 40, 103), "a flipped high bit");
    }

    #[test]
    fn a_sleep_never_ends_before_start_plus_ms_whatever_the_deadline() {
        // A timer that skipped its add answers with `now` itself, or something older.
        assert_eq!(sleep_end(100, 5, 100, 101), Some(105), "deadline = now: slept to 105 anyway");
        assert_eq!(sleep_end(100, 5, 0, 101), Some(105));
        assert_eq!(sleep_end(100, 5, 103, 101), Some(105));
        assert_eq!(sleep_end(100, 5, 106, 101), Some(106), "a correct deadline, the answer came late");
        for deadline in 0..=106 {
            assert!(sleep_end(100, 5, deadline, 101).is_some_and(|end| end >= 105));
        }
    }

    #[test]
    fn a_deadline_no_correct_timer_could_give_is_refused() {
        assert_eq!(sleep_end(100, 5, 107, 101), None);
        assert_eq!(sleep_end(100, 5, u64::MAX, 101), None);
        assert_eq!(sleep_end(u64::MAX - 1, 5, u64::MAX, u64::MAX - 1), Some(u64::MAX), "no overflow");
    }
}
