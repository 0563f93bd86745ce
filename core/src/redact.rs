//! Secrets out of what is shown: the one place that masks a URL before it
//! reaches a dry run, a summary, a log line or an error.
//!
//! A URL can carry credentials in two places: its userinfo
//! (`https://user:password@host`, or a token as the user name) and its query
//! (`?sig=...` of an Azure SAS URL, `?api-key=...`, `?token=...`). Both are
//! masked, whatever the parameter is called; the scheme, host, port and path
//! stay, so the reader can still tell which service is meant.
//!
//! ```
//! use elspeth_core::redact::url;
//! assert_eq!(url("https://acct.blob.core.windows.net/c/x?sv=2024&sig=abc"),
//!            "https://acct.blob.core.windows.net/c/x?sv=***&sig=***");
//! assert_eq!(url("https://user:hunter2@langfuse.example/"), "https://user:***@langfuse.example/");
//! assert_eq!(url("https://res.openai.azure.com"), "https://res.openai.azure.com");
//! ```

use std::borrow::Cow;

/// `text` with every URL in it (a run of non-blank characters holding
/// `://`) masked as [`url`] does: for messages of other libraries that
/// quote the URL they were given.
pub fn urls_in(text: &str) -> Cow<'_, str> {
    if !text.contains("://") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(|c: char| !c.is_whitespace()) {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let word = &rest[..end];
        if word.contains("://") {
            out.push_str(&url(word));
        } else {
            out.push_str(word);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// What replaces a masked value.
pub const MASK: &str = "***";

/// `raw` with the password (or a lone user name, which is often a token)
/// of its userinfo and the value of every query parameter replaced by
/// [`MASK`]. Text that is not a URL is returned as it is, apart from a
/// query part, which is masked wherever a `?` appears.
pub fn url(raw: &str) -> Cow<'_, str> {
    let (before_fragment, fragment) = match raw.find('#') {
        Some(i) => raw.split_at(i),
        None => (raw, ""),
    };
    let (base, query) = match before_fragment.find('?') {
        Some(i) => (&before_fragment[..i], Some(&before_fragment[i + 1..])),
        None => (before_fragment, None),
    };
    let base = mask_userinfo(base);
    if query.is_none() && matches!(base, Cow::Borrowed(_)) {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    out.push_str(&base);
    if let Some(query) = query {
        out.push('?');
        for (i, pair) in query.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            match pair.split_once('=') {
                Some((key, _)) => {
                    out.push_str(key);
                    out.push('=');
                    out.push_str(MASK);
                }
                None if pair.is_empty() => {}
                None => out.push_str(MASK),
            }
        }
    }
    out.push_str(fragment);
    Cow::Owned(out)
}

/// `scheme://user:***@host...`, or `scheme://***@host...` for a lone user.
fn mask_userinfo(base: &str) -> Cow<'_, str> {
    let Some(start) = base.find("://").map(|i| i + 3) else {
        return Cow::Borrowed(base);
    };
    let authority_end = base[start..].find('/').map_or(base.len(), |i| start + i);
    let Some(at) = base[start..authority_end].rfind('@').map(|i| start + i) else {
        return Cow::Borrowed(base);
    };
    let userinfo = &base[start..at];
    let masked = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:{MASK}"),
        None => MASK.to_string(),
    };
    Cow::Owned(format!("{}{masked}{}", &base[..start], &base[at..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_masked_and_the_rest_kept() {
        let cases = [
            (
                "https://res.openai.azure.com/",
                "https://res.openai.azure.com/",
            ),
            (
                "http://127.0.0.1:4318/v1/traces",
                "http://127.0.0.1:4318/v1/traces",
            ),
            ("https://u:p@h:8443/x", "https://u:***@h:8443/x"),
            ("https://tok3n@h/x", "https://***@h/x"),
            ("https://u:p@ss@h/x", "https://u:***@h/x"),
            ("https://h/x?sig=abc", "https://h/x?sig=***"),
            ("https://h/x?a=1&b=&c", "https://h/x?a=***&b=***&***"),
            ("https://h/x?", "https://h/x?"),
            ("https://h/x?sig=abc#frag", "https://h/x?sig=***#frag"),
            ("https://u:p@h/x?k=v", "https://u:***@h/x?k=***"),
            ("https://h/a@b", "https://h/a@b"),
            ("not a url", "not a url"),
            ("", ""),
        ];
        for (raw, shown) in cases {
            assert_eq!(url(raw), shown, "{raw}");
        }
    }

    #[test]
    fn an_unchanged_url_is_not_copied() {
        assert!(matches!(url("https://h/x"), Cow::Borrowed(_)));
        assert!(matches!(url("https://h/x?s=1"), Cow::Owned(_)));
    }
}
