//! Boot Linux under the bench's QEMU flags and print its rows (`axolotl_images::linux`):
//!
//! ```text
//! cargo run -p axolotl-images --example linux_bench -- [RUNS]    # RUNS: 1000 unless given
//! ```

use std::process::ExitCode;

fn main() -> ExitCode {
    axolotl_images::progress::enable();
    let runs = match std::env::args().nth(1).map(|a| a.parse::<usize>()) {
        None => 1000,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("linux_bench: RUNS: {e}");
            return ExitCode::FAILURE;
        }
    };
    match axolotl_images::linux::measure(runs) {
        Ok(rows) => {
            print!("{}", axolotl_images::bench::to_markdown(&rows));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("linux_bench: {e}");
            ExitCode::FAILURE
        }
    }
}
