//! "Did you mean" suggestions for misspelt names: the one algorithm of
//! `elspeth-core`, shared with the `#[llm_transform]` macro so both suggest
//! the same name for the same typo.
//!
//! ```
//! use elspeth_schema::suggest::did_you_mean;
//! assert_eq!(did_you_mean("hots", ["host", "tags", "release"]), Some("host"));
//! assert_eq!(did_you_mean("langfus", ["none", "azure_ai", "langfuse"]), Some("langfuse"));
//! assert_eq!(did_you_mean("zzz", ["host", "tags"]), None);
//! ```

pub use elspeth_core::suggest::{did_you_mean, list, list_or};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let fields = [
            "provider",
            "public_key",
            "secret_key",
            "host",
            "enable_content_recording",
            "sample_rate",
        ];
        let cases = [
            ("hots", Some("host")),
            ("publickey", Some("public_key")),
            ("secret", Some("secret_key")),
            ("samplerate", Some("sample_rate")),
            ("enable_content", Some("enable_content_recording")),
            ("Provider", Some("provider")),
            ("xyz", None),
            ("host", None),
        ];
        for (input, want) in cases {
            assert_eq!(did_you_mean(input, fields), want, "{input}");
        }
        let plugins = ["azure_llm", "azure_multi_query_llm", "openrouter_llm"];
        assert_eq!(did_you_mean("azure_lm", plugins), Some("azure_llm"));
        assert_eq!(
            did_you_mean("open_router_llm", plugins),
            Some("openrouter_llm")
        );
    }

    #[test]
    fn lists() {
        assert_eq!(list::<&str>(&[]), "");
        assert_eq!(list(&["a"]), "`a`");
        assert_eq!(list(&["a", "b", "c"]), "`a`, `b` and `c`");
        assert_eq!(list_or(&["a", "b"]), "`a` or `b`");
    }
}
