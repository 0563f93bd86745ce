//! "Did you mean" suggestions for misspelt names: one algorithm for the
//! config validator and the `#[llm_transform]` macro, so both suggest the
//! same name for the same typo.
//!
//! ```
//! use elspeth_core::suggest::did_you_mean;
//! assert_eq!(did_you_mean("hots", ["host", "tags", "release"]), Some("host"));
//! assert_eq!(did_you_mean("langfus", ["none", "azure_ai", "langfuse"]), Some("langfuse"));
//! assert_eq!(did_you_mean("zzz", ["host", "tags"]), None);
//! ```

/// The candidate closest to `input`, when it is close enough to be a likely
/// typo: a case-insensitive match, or Jaro-Winkler similarity ≥ 0.8, or one
/// contains the other (both at least 3 characters), or at most a third of
/// the candidate's characters (at least one) edited. Ties go to the first
/// candidate.
pub fn did_you_mean<'a, I>(input: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let lower = input.to_ascii_lowercase();
    let mut best: Option<(&'a str, f64)> = None;
    for candidate in candidates {
        if candidate == input {
            continue;
        }
        let c_lower = candidate.to_ascii_lowercase();
        let score = if c_lower == lower {
            2.0
        } else {
            let jw = strsim::jaro_winkler(&lower, &c_lower);
            let contains = lower.len() >= 3
                && c_lower.len() >= 3
                && (c_lower.contains(&lower) || lower.contains(&c_lower));
            // Jaro-Winkler sees no match in a swapped pair of a short name
            // (`jbo` for `job`); a few edits (a third of the name, at least
            // one, a swap counting as one) still make it a likely typo.
            let few_edits = strsim::damerau_levenshtein(&lower, &c_lower)
                <= (c_lower.chars().count() / 3).max(1);
            if contains {
                jw.max(0.85)
            } else if few_edits {
                jw.max(0.8)
            } else {
                jw
            }
        };
        if score >= 0.8 && best.is_none_or(|(_, s)| score > s) {
            best = Some((candidate, score));
        }
    }
    best.map(|(c, _)| c)
}

/// Formats names as a list of code spans: `` `a`, `b` and `c` ``.
pub fn list<S: AsRef<str>>(names: &[S]) -> String {
    join(names, "and")
}

/// Formats names as alternatives: `` `a`, `b` or `c` ``.
pub fn list_or<S: AsRef<str>>(names: &[S]) -> String {
    join(names, "or")
}

fn join<S: AsRef<str>>(names: &[S], conjunction: &str) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{}`", n.as_ref())).collect();
    match quoted.len() {
        0 => String::new(),
        1 => quoted[0].clone(),
        n => format!(
            "{} {conjunction} {}",
            quoted[..n - 1].join(", "),
            quoted[n - 1]
        ),
    }
}

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

    /// The macro's expectations (its arguments, providers and modes), which
    /// its own edit-distance rule met before the two algorithms became one.
    #[test]
    fn macro_arguments() {
        let args = ["tracing", "name", "mode", "crate"];
        assert_eq!(did_you_mean("tracin", args), Some("tracing"));
        assert_eq!(did_you_mean("nmae", args), Some("name"));
        assert_eq!(did_you_mean("frobnicate", args), None);
        assert_eq!(
            did_you_mean("langfus", ["langfuse", "azure_ai"]),
            Some("langfuse")
        );
        assert_eq!(
            did_you_mean("azure", ["langfuse", "azure_ai"]),
            Some("azure_ai")
        );
        assert_eq!(did_you_mean("jbo", ["call", "job"]), Some("job"));
        assert_eq!(did_you_mean("x", ["call", "job"]), None);
    }

    #[test]
    fn lists() {
        assert_eq!(list::<&str>(&[]), "");
        assert_eq!(list(&["a"]), "`a`");
        assert_eq!(list(&["a", "b", "c"]), "`a`, `b` and `c`");
        assert_eq!(list_or(&["a", "b"]), "`a` or `b`");
    }
}
