//! The built-in transforms against the mock backends (real HTTP on
//! 127.0.0.1): replies, retries, failures and the traces they record.

#[path = "../common/mod.rs"]
mod common;

mod azure_batch;
mod per_call;
mod tracing;
