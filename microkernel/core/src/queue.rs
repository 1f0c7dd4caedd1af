//! Intrusive FIFO queues of tasks, and the priority run queues built from them.
//!
//! A task waits in at most one queue at a time (the run queue, or one endpoint's send or receive
//! queue), so one `next` link per task is enough: [`Links`] holds them, [`Queue`] a head and tail.
//!
//! ```text
//!   Queue { head: 2, tail: 5 }      Links: [_, _, 7, _, _, NONE, _, 5]
//!   2 ──► 7 ──► 5
//! ```

/// Most tasks the kernel runs at once.
pub const MAX_TASKS: usize = 32;
/// Scheduling priorities; higher runs first.
pub const PRIORITIES: usize = 8;

const NONE: u8 = u8::MAX;

/// The priorities above `prio`, as a mask for [`RunQueues::any_in`].
pub const fn above(prio: u8) -> u8 {
    if prio as usize >= PRIORITIES - 1 {
        0
    } else {
        !((2u8 << prio) - 1)
    }
}

/// One `next` link per task, plus a membership flag so misuse is caught, not silently corrupting.
pub struct Links {
    next: [u8; MAX_TASKS],
    queued: [bool; MAX_TASKS],
}

impl Default for Links {
    fn default() -> Self {
        Self::new()
    }
}

impl Links {
    pub const fn new() -> Self {
        Links { next: [NONE; MAX_TASKS], queued: [false; MAX_TASKS] }
    }

    /// Whether task `t` sits in some queue.
    #[inline]
    pub fn is_queued(&self, t: usize) -> bool {
        self.queued[t]
    }
}

/// A FIFO of task indices threaded through [`Links`].
#[derive(Clone, Copy, Debug)]
pub struct Queue {
    head: u8,
    tail: u8,
}

impl Default for Queue {
    fn default() -> Self {
        Self::new()
    }
}

impl Queue {
    pub const fn new() -> Self {
        Queue { head: NONE, tail: NONE }
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.head == NONE
    }

    #[inline]
    pub fn front(&self) -> Option<usize> {
        (self.head != NONE).then_some(self.head as usize)
    }

    /// Append `t`. Returns false (and changes nothing) if `t` already waits in a queue.
    #[inline(always)]
    pub fn push_back(&mut self, links: &mut Links, t: usize) -> bool {
        if links.queued[t] {
            return false;
        }
        links.queued[t] = true;
        links.next[t] = NONE;
        if self.tail == NONE {
            self.head = t as u8;
        } else {
            links.next[self.tail as usize] = t as u8;
        }
        self.tail = t as u8;
        true
    }

    /// Put `t` first (a caller whose request must be delivered again goes before newer ones).
    /// Returns false (and changes nothing) if `t` already waits in a queue.
    pub fn push_front(&mut self, links: &mut Links, t: usize) -> bool {
        if links.queued[t] {
            return false;
        }
        links.queued[t] = true;
        links.next[t] = self.head;
        if self.head == NONE {
            self.tail = t as u8;
        }
        self.head = t as u8;
        true
    }

    #[inline(always)]
    pub fn pop_front(&mut self, links: &mut Links) -> Option<usize> {
        let t = self.front()?;
        self.head = links.next[t];
        if self.head == NONE {
            self.tail = NONE;
        }
        links.next[t] = NONE;
        links.queued[t] = false;
        Some(t)
    }

    /// Take `t` out wherever it stands. Returns whether it was in this queue.
    pub fn remove(&mut self, links: &mut Links, t: usize) -> bool {
        let mut prev = NONE;
        let mut cur = self.head;
        while cur != NONE {
            if cur as usize == t {
                let next = links.next[t];
                if prev == NONE {
                    self.head = next;
                } else {
                    links.next[prev as usize] = next;
                }
                if self.tail == cur {
                    self.tail = prev;
                }
                links.next[t] = NONE;
                links.queued[t] = false;
                return true;
            }
            prev = cur;
            cur = links.next[cur as usize];
        }
        false
    }

    /// Iterate front to back.
    pub fn iter<'a>(&self, links: &'a Links) -> impl Iterator<Item = usize> + 'a {
        let mut cur = self.head;
        core::iter::from_fn(move || {
            if cur == NONE {
                return None;
            }
            let t = cur as usize;
            cur = links.next[t];
            Some(t)
        })
    }
}

/// Timer ticks in a row that tasks of lower priority than the running one may wait, ready,
/// before the first of them gets a slice anyway (see [`RunQueues::tick`]).
pub const STARVE_TICKS: u16 = 10;

/// Ready tasks by priority, round robin within a priority.
///
/// Priorities are strict, with one exception against starvation: when tasks of lower priority
/// have been ready for [`STARVE_TICKS`] ticks in a row while higher ones kept the CPU, the first
/// of the highest of them runs for a slice ([`RunQueues::tick`]), so a background task (the
/// scribe, below the shell) still makes progress while the shell is busy.
pub struct RunQueues {
    queues: [Queue; PRIORITIES],
    /// Bit p set when `queues[p]` is non-empty, so picking is one instruction, not a scan.
    nonempty: u8,
    /// Ticks in a row in which a task of lower priority than the running one was ready.
    starved: u16,
}

impl Default for RunQueues {
    fn default() -> Self {
        Self::new()
    }
}

impl RunQueues {
    pub const fn new() -> Self {
        RunQueues { queues: [Queue::new(); PRIORITIES], nonempty: 0, starved: 0 }
    }

    /// Make `t` ready at priority `prio` (clamped to the highest). False if already queued.
    pub fn enqueue(&mut self, links: &mut Links, t: usize, prio: u8) -> bool {
        let p = (prio as usize).min(PRIORITIES - 1);
        let ok = self.queues[p].push_back(links, t);
        if ok {
            self.nonempty |= 1 << p;
        }
        ok
    }

    /// Take the first task of the highest non-empty priority.
    pub fn pick(&mut self, links: &mut Links) -> Option<usize> {
        if self.nonempty == 0 {
            return None;
        }
        let p = 7 - self.nonempty.leading_zeros() as usize;
        let t = self.queues[p].pop_front(links);
        if self.queues[p].is_empty() {
            self.nonempty &= !(1 << p);
        }
        t
    }

    /// A timer tick passed while a task of priority `running` ran. If tasks of lower priority
    /// have now been ready for [`STARVE_TICKS`] ticks in a row, the first of the highest of
    /// them (left in its queue): the caller lets it run for a slice ahead of its priority.
    pub fn tick(&mut self, running: u8) -> Option<usize> {
        let below = (1u16 << running.min(PRIORITIES as u8 - 1)) as u8 - 1;
        let waiting = self.nonempty & below;
        if waiting == 0 {
            self.starved = 0;
            return None;
        }
        self.starved += 1;
        if self.starved < STARVE_TICKS {
            return None;
        }
        self.starved = 0;
        let p = 7 - waiting.leading_zeros() as usize;
        let head = self.queues[p].head;
        (head != NONE).then_some(head as usize)
    }

    /// Highest priority with a ready task.
    #[inline]
    pub fn top_priority(&self) -> Option<u8> {
        (self.nonempty != 0).then(|| 7 - self.nonempty.leading_zeros() as u8)
    }

    /// Whether some task is ready at one of the priorities in `mask` (from [`above`]). One
    /// test, the same instructions whatever the queues hold: the IPC fastpath asks on every call,
    /// and its cost must not depend on which other tasks happen to be ready (benchmarks compare
    /// runs).
    #[inline(always)]
    pub fn any_in(&self, mask: u8) -> bool {
        self.nonempty & mask != 0
    }

    /// Remove `t`, queued at `prio`. Returns whether it was there.
    pub fn remove(&mut self, links: &mut Links, t: usize, prio: u8) -> bool {
        let p = (prio as usize).min(PRIORITIES - 1);
        let found = self.queues[p].remove(links, t);
        if self.queues[p].is_empty() {
            self.nonempty &= !(1 << p);
        }
        found
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    #[test]
    fn any_in_above_agrees_with_top_priority() {
        let mut l = Links::new();
        let mut r = RunQueues::new();
        for prio in 0..PRIORITIES as u8 {
            assert!(!r.any_in(above(prio)));
        }
        r.enqueue(&mut l, 1, 3);
        r.enqueue(&mut l, 2, 5);
        for prio in 0..PRIORITIES as u8 {
            assert_eq!(r.any_in(above(prio)), r.top_priority().is_some_and(|top| top > prio), "prio {prio}");
        }
        assert_eq!(above(u8::MAX), 0, "no priority is above the highest");
    }

    #[test]
    fn a_starved_lower_priority_gets_a_slice_and_the_wait_starts_over() {
        let mut l = Links::new();
        let mut r = RunQueues::new();
        r.enqueue(&mut l, 1, 1);
        r.enqueue(&mut l, 3, 3);
        r.enqueue(&mut l, 9, 3);
        r.enqueue(&mut l, 6, 6);
        for _ in 1..STARVE_TICKS {
            assert_eq!(r.tick(4), None, "strict priority until the limit");
        }
        assert_eq!(r.tick(4), Some(3), "then the first of the highest starved priority");
        assert!(l.is_queued(3), "it stays queued: the caller takes it when it runs");
        assert!(r.remove(&mut l, 3, 3));
        for _ in 1..STARVE_TICKS {
            assert_eq!(r.tick(4), None, "the count starts over");
        }
        assert_eq!(r.tick(4), Some(9));
        assert!(r.remove(&mut l, 9, 3));
        assert_eq!(r.tick(1), None, "nothing waits below priority 1");
        for _ in 1..STARVE_TICKS {
            assert_eq!(r.tick(7), None);
        }
        assert_eq!(r.tick(255), Some(6), "a priority past the top counts as the top");
    }

    #[test]
    fn a_gap_in_the_wait_resets_the_count() {
        let mut l = Links::new();
        let mut r = RunQueues::new();
        r.enqueue(&mut l, 2, 2);
        for _ in 1..STARVE_TICKS {
            assert_eq!(r.tick(5), None);
        }
        assert_eq!(r.tick(2), None, "a tick with no lower task waiting");
        assert_eq!(r.tick(5), None, "so the count starts again");
    }

    #[test]
    fn fifo_order_and_membership() {
        let mut l = Links::new();
        let mut q = Queue::new();
        assert!(q.push_back(&mut l, 3));
        assert!(q.push_back(&mut l, 1));
        assert!(!q.push_back(&mut l, 3), "a task cannot wait twice");
        assert_eq!(q.iter(&l).count(), 2);
        assert_eq!(q.iter(&l).collect::<Vec<_>>(), [3, 1]);
        assert_eq!(q.pop_front(&mut l), Some(3));
        assert!(!l.is_queued(3));
        assert_eq!(q.pop_front(&mut l), Some(1));
        assert_eq!(q.pop_front(&mut l), None);
        assert!(q.is_empty());
    }

    #[test]
    fn push_front_goes_first_and_keeps_the_tail() {
        let mut l = Links::new();
        let mut q = Queue::new();
        assert!(q.push_front(&mut l, 4));
        q.push_back(&mut l, 5);
        assert!(q.push_front(&mut l, 6));
        assert!(!q.push_front(&mut l, 5));
        assert_eq!(q.iter(&l).collect::<Vec<_>>(), [6, 4, 5]);
        q.push_back(&mut l, 7);
        assert_eq!(q.iter(&l).collect::<Vec<_>>(), [6, 4, 5, 7]);
        assert_eq!(q.iter(&l).count(), 4);
    }

    #[test]
    fn a_task_in_one_queue_cannot_join_another() {
        let mut l = Links::new();
        let (mut a, mut b) = (Queue::new(), Queue::new());
        assert!(a.push_back(&mut l, 5));
        assert!(!b.push_back(&mut l, 5));
        assert!(b.is_empty());
    }

    #[test]
    fn remove_head_middle_tail_and_absent() {
        let mut l = Links::new();
        let mut q = Queue::new();
        for t in [0, 1, 2, 3] {
            q.push_back(&mut l, t);
        }
        assert!(q.remove(&mut l, 2));
        assert!(q.remove(&mut l, 0));
        assert!(q.remove(&mut l, 3));
        assert!(!q.remove(&mut l, 3));
        assert_eq!(q.iter(&l).collect::<Vec<_>>(), [1]);
        // The tail was fixed up: appending still works.
        q.push_back(&mut l, 7);
        assert_eq!(q.iter(&l).collect::<Vec<_>>(), [1, 7]);
        assert_eq!(q.iter(&l).count(), 2);
    }

    #[test]
    fn run_queues_pick_highest_priority_round_robin() {
        let mut l = Links::new();
        let mut r = RunQueues::new();
        r.enqueue(&mut l, 1, 2);
        r.enqueue(&mut l, 2, 5);
        r.enqueue(&mut l, 3, 5);
        r.enqueue(&mut l, 4, 200); // clamped to the top priority
        assert_eq!(r.top_priority(), Some(7));
        assert_eq!(r.pick(&mut l), Some(4));
        assert_eq!(r.pick(&mut l), Some(2));
        r.enqueue(&mut l, 2, 5);
        assert_eq!(r.pick(&mut l), Some(3));
        assert_eq!(r.pick(&mut l), Some(2));
        assert_eq!(r.pick(&mut l), Some(1));
        assert_eq!(r.pick(&mut l), None);
        assert_eq!(r.top_priority(), None);
    }

    #[test]
    fn a_refused_enqueue_leaves_no_priority_bit() {
        let (mut l, mut r, mut ep) = (Links::new(), RunQueues::new(), Queue::new());
        assert!(ep.push_back(&mut l, 4), "task 4 waits on an endpoint");
        assert!(!r.enqueue(&mut l, 4, 6), "so it cannot be made ready twice");
        assert_eq!(r.top_priority(), None, "and priority 6 does not look busy");
        assert_eq!(r.pick(&mut l), None);
    }

    #[test]
    fn run_queue_remove_clears_priority_bit() {
        let mut l = Links::new();
        let mut r = RunQueues::new();
        r.enqueue(&mut l, 9, 3);
        assert!(r.remove(&mut l, 9, 3));
        assert_eq!(r.top_priority(), None);
        assert!(!r.remove(&mut l, 9, 3));
    }
}
