//! Compile-time behaviour of `#[llm_transform(...)]`: what compiles
//! (`tests/ui/pass`, each also run) and the exact error of every misuse
//! (`tests/ui/fail/*.stderr`). Regenerate snapshots with
//! `TRYBUILD=overwrite cargo test --test ui` and review the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
