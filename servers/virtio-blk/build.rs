//! Links this user task at the user image base with the shared user linker script.
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rustc-link-arg-bins=-T{dir}/../userlib/user.ld");
    println!("cargo:rerun-if-changed=../userlib/user.ld");
}
