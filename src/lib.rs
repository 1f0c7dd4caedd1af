//! The root package of the Axolotl workspace. It has no code of its own: it carries the
//! integration tests in `tests/`, which build the real ISO and boot it in QEMU.
