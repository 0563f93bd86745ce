//! Compile-time behaviour of `#[llm_transform(...)]`: what compiles
//! (`tests/ui/pass`, each also run) and the exact error of every misuse
//! (`tests/ui/fail/*.stderr`). Regenerate snapshots with
//! `TRYBUILD=overwrite cargo test -p elspeth-macros --test ui` and review
//! the diff.
//!
//! `missing_llm_call.stderr` / `missing_llm_job.stderr` (and
//! `field_not_has_tracing.stderr`) include rustc's list of the types that
//! do implement the trait, i.e. the runtime's built-in transforms: adding,
//! renaming or moving one of those changes these snapshots.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
