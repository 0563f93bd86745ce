//! Local mock backends for elspeth, bound on 127.0.0.1 and speaking the real
//! protocols: Azure OpenAI (chat + batch), OpenRouter, the Langfuse OTLP
//! endpoint (decodes protobuf), Application Insights `/v2.1/track` (parses
//! envelopes) and an OTLP collector.
//!
//! Every mock has a [`server::FaultPlan`]: latency, scripted 429 / 500 / 401
//! / 413 answers, slow answers, dropped connections.

pub mod all;
pub mod appinsights;
pub mod azure;
pub mod chat;
mod kept;
pub mod langfuse;
pub mod openrouter;
pub mod otlp;
pub mod server;
pub mod structured;

pub use server::{Fault, FaultPlan, MockServer};
