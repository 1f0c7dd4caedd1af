//! Progress bars for long work (image builds, benchmarks, campaigns), drawn with `indicatif`
//! on stderr when a person watches, hidden otherwise.
//!
//! Bars are drawn only after the `cargo os` binary called [`enable`] and only if stderr is a
//! terminal; the library alone (the QEMU test suites, CI, a pipe) gets hidden bars. Either way
//! the plain `[os] ...` lines go out through [`note`] and the lines scripts read through
//! [`out`]: printed above a drawn bar, printed as they are when it is hidden.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::fmt::Display;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

static SHOWN: AtomicBool = AtomicBool::new(false);

/// Draw progress bars from now on, if stderr is a terminal.
pub fn enable() {
    SHOWN.store(std::io::stderr().is_terminal(), Ordering::Relaxed);
}

/// Are bars drawn? (If not, a step may show its own output as it did without bars.)
pub fn shown() -> bool {
    SHOWN.load(Ordering::Relaxed)
}

fn start(len: Option<u64>, template: &str, prefix: &str) -> ProgressBar {
    let target = if shown() { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
    let pb = ProgressBar::with_draw_target(len, target);
    pb.set_style(ProgressStyle::with_template(template).expect("a valid template"));
    pb.set_prefix(prefix.to_string());
    if shown() {
        // Redrawn on a timer, so the spinner turns and the time counts while a step is silent.
        pb.enable_steady_tick(Duration::from_millis(120));
    }
    pb
}

/// A spinner for work of unknown length: `⠋ PREFIX message 12s`.
pub fn spinner(prefix: &str) -> ProgressBar {
    start(None, "{spinner:.cyan} {prefix:.bold} {wide_msg} {elapsed:.dim}", prefix)
}

/// A bar of `len` steps: `⠋ PREFIX [#####     ] 12/40 message 12s`.
pub fn bar(len: u64, prefix: &str) -> ProgressBar {
    let template =
        "{spinner:.cyan} {prefix:.bold} [{bar:24.cyan/blue}] {pos}/{len} {wide_msg} {elapsed:.dim}";
    start(Some(len), template, prefix)
}

/// Stop `pb` and leave it on screen as it stands (how far the work got).
pub fn keep(pb: &ProgressBar) {
    pb.abandon();
    if !pb.is_hidden() {
        // indicatif leaves the cursor at the end of the bar: what is printed next starts below.
        eprintln!();
    }
}

/// A line for a person, on stderr, above `pb`.
pub fn note(pb: &ProgressBar, line: impl Display) {
    pb.suspend(|| eprintln!("{line}"));
}

/// A line of results, on stdout, above `pb`: the same whether a bar is drawn or not.
pub fn out(pb: &ProgressBar, line: impl Display) {
    pb.suspend(|| println!("{line}"));
}
