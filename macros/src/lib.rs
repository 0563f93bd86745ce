//! `#[llm_transform(...)]`: injects the tracing lifecycle into an LLM transform.

use proc_macro::TokenStream;

/// Placeholder: see the issue tracker.
#[proc_macro_attribute]
pub fn llm_transform(_args: TokenStream, item: TokenStream) -> TokenStream {
    item
}
