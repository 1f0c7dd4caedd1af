//! The persistent disk (a virtio-blk PCI device, `Machine::disk`) on both personalities, and
//! the helpers other suites use to give a test a disk of its own (`common::TestDisk`).

mod common;

use axolotl_images::Personality;
use common::{check, TestDisk};

/// What GRUB prints as it boots each personality's entry.
fn booting(personality: Personality) -> &'static str {
    match personality {
        Personality::Microkernel => "Booting `Axolotl: microkernel personality (CuriOS-style)'",
        Personality::Libos => "Booting `Axolotl: libos personality (Theseus-style)'",
    }
}

/// GRUB reads which personality to boot from a small IDE disk, its `(hd0)`; a virtio disk must
/// not take that place (SeaBIOS numbers hard disks by boot order: see `qemu::machine`). The
/// disk holds an environment block naming the other personality, so that GRUB reading it by
/// mistake would show.
#[test]
fn each_personality_boots_with_a_disk_attached() {
    for p in Personality::ALL {
        let other = if p == Personality::Libos { "microkernel" } else { "libos" };
        let block = format!("# GRUB Environment Block\npersonality={other}\n{}", "#".repeat(1024));
        let disk = TestDisk::with_bytes(&format!("boots-{}", p.id()), &[(0, &block.as_bytes()[..1024])]);
        let t = common::boot_with_disk(p, &disk, &["ps"], 90);
        check(&t, t.ok(), "the session succeeds and powers off");
        check(&t, t.console.contains(booting(p)), &format!("GRUB boots the {} entry", p.id()));
        check(&t, disk.path().exists(), "the disk is there while the test holds it");
    }
}

#[test]
fn a_test_disk_is_fresh_prefilled_and_removed_after() {
    let a = TestDisk::with_bytes("helper", &[(1080, &[0x53, 0xef]), (0, b"boot")]);
    let b = TestDisk::new("helper");
    assert_ne!(a.path(), b.path(), "each test disk is its own");
    assert!(a.path().starts_with(axolotl_images::out_dir()));
    assert!(!a.path().ends_with("disk.img"), "never the user's disk");
    let bytes = a.bytes();
    assert_eq!(bytes.len() as u64, axolotl_images::disk::SIZE);
    assert_eq!((&bytes[..4], &bytes[1080..1082]), (&b"boot"[..], &[0x53, 0xef][..]));
    assert!(b.bytes().iter().all(|&x| x == 0));
    assert_eq!(b.attach(axolotl_images::qemu::Machine::default()).disk, Some(b.path()));
    let path = a.path();
    drop(a);
    assert!(!path.exists(), "removed when the test is done with it");
}

#[test]
fn a_changed_disk_fails_the_check_and_stays_for_inspection() {
    use axolotl_images::qemu::{Outcome, Transcript};
    let t = Transcript {
        console: String::new(),
        outcome: Outcome::PoweredOff,
        failed: Vec::new(),
        boot_time: None,
        tags: Vec::new(),
    };
    let disk = TestDisk::with_bytes("check", &[(4096, b"ext4?")]);
    let before = disk.bytes();
    common::check_disk_unchanged(&t, &disk, &before);
    let kept = std::panic::catch_unwind(|| {
        let disk = TestDisk::new("check-changed");
        let before = disk.bytes();
        std::fs::write(disk.path(), b"scribbled").unwrap();
        let _ = std::panic::catch_unwind(|| common::check_disk_unchanged(&t, &disk, &before))
            .map(|_| panic!("a changed disk passed the check"))
            .map_err(|e| {
                let msg = e.downcast_ref::<String>().cloned().unwrap_or_default();
                assert!(
                    msg.contains(
                        "is unchanged: size 9 bytes, was 67108864; 1 sector(s) of 512 bytes changed (0)"
                    ),
                    "{msg}"
                );
            });
        panic!("{}", disk.path().display()) // as a failing test would: the disk stays
    })
    .expect_err("the closure panics");
    let kept = std::path::PathBuf::from(kept.downcast_ref::<String>().unwrap());
    assert!(kept.exists(), "a failing test's disk is kept");
    std::fs::remove_file(kept).unwrap();
}
