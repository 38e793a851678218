//! Compile-time guarantees of the macros: each `tests/ui/<case>.rs` must fail
//! to compile with exactly the message in `tests/ui/<case>.stderr`.
//!
//! After a deliberate change to a message, regenerate the expectations with
//! `TRYBUILD=overwrite cargo test --test compiletest` and read the diff.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
