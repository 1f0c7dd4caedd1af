//! `cargo os crashtest --broken`: the guest's file system built the two broken ways (without
//! the flush that makes an operation durable; committing in place with no journal, as before it
//! had one) must fail crash states of a real run. In a test binary of its own: it rebuilds the
//! ISO the other suites boot, and test binaries run one after another (each builds its ISO
//! afresh, and the next one's build puts the journal back).

use axolotl_images::crashtest::{self, Durability};
use axolotl_images::Personality;

#[test]
fn the_crashtest_catches_a_file_system_built_without_its_commit_flush_or_its_journal() {
    for fs in [Durability::NoCommitFlush, Durability::InPlace] {
        let (r, _) = crashtest::run(Personality::Microkernel, 5, 30, fs)
            .unwrap_or_else(|e| panic!("crashtest with the file system built {}: {e}", fs.name()));
        assert_eq!(r.file_system, fs.name());
        assert!(r.states > 100, "{}: a real recording: {} states", fs.name(), r.states);
        assert!(r.failed_count > 0, "{}: every one of {} crash states passed", fs.name(), r.states);
        eprintln!("{}: {} of {} crash states fail", fs.name(), r.failed_count, r.states);
    }
    // The ISO as it should be, for whatever runs next.
    axolotl_images::build::build().expect("the normal build");
}
