//! `#[llm_transform(...)]`: injects the tracing lifecycle into an LLM
//! transform. Re-exported as `elspeth::llm_transform`; see its docs there.
//!
//! The crate is split like `serde_derive` and `tracing-attributes`:
//! `parse` reads the attribute's arguments, `validate` checks the item
//! and finds the field holding the tracing config, `expand` writes the
//! impls. Problems are collected (not first-only) by `errors::Errors` and
//! reported next to the unchanged item, so a misuse shows one error and not
//! a cascade.

mod errors;
mod expand;
mod parse;
mod validate;

use proc_macro::TokenStream;

/// Generates the `Transform` lifecycle around an author's `LlmCall` (or, with
/// `mode = job`, `LlmJob`) impl, with Tier 2 tracing.
///
/// ```ignore
/// #[elspeth::llm_transform(tracing, name = "sentiment")]
/// pub struct Sentiment {
///     config: SentimentOptions, // implements elspeth::HasTracing
/// }
/// impl elspeth::LlmCall for Sentiment { /* system, model_label, plan, call */ }
/// ```
///
/// Arguments (comma-separated, each at most once):
/// - `tracing`: the transform is traced; its tracing config is the field
///   marked `#[tracing]`, else the field named `tracing`, else `config`.
///   `tracing(providers = [langfuse, azure_ai])` restricts the providers it
///   accepts (a config naming another one fails `on_start`).
/// - `name = "azure_llm"`: plugin name (traces are `elspeth.<name>`);
///   default: the struct name in snake case.
/// - `mode = job`: a batch-job transform (`LlmJob`): one job span per chunk
///   of rows and one generation per row. Default `mode = call` (`LlmCall`).
/// - `crate = path`: where the elspeth API lives (default `::elspeth`).
#[proc_macro_attribute]
pub fn llm_transform(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::llm_transform(args.into(), item.into()).into()
}
