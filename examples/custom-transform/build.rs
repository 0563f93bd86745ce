//! Validates every pipeline YAML in `pipelines/` and generates typed Rust
//! for it (`$OUT_DIR/elspeth_pipelines.rs`, brought in by
//! `elspeth::include_pipelines!()`). An invalid file fails `cargo build`
//! with rustc-style errors pointing at the line to fix.

fn main() {
    elspeth_codegen::Build::new()
        .pipelines("pipelines")
        .compile();
}
