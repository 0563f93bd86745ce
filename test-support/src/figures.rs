//! The run report's figures read back: every element of a page with a
//! `data-figure` attribute, checked against the summary JSON it names (see
//! `elspeth_runtime::pipeline::html_report`). Used by the report's unit
//! tests on its HTML and by the CLI test on the DOM a real browser built.

/// One figure: its JSON path, its `data-value` when it has one, its text.
pub type Figure = (String, Option<String>, String);

/// The `data-figure` elements of `html`, in page order.
pub fn figures(html: &str) -> Vec<Figure> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find(" data-figure=\"") {
        let tag_start = rest[..at].rfind('<').expect("inside a tag");
        let tag_end = at + rest[at..].find('>').expect("a closed tag");
        let tag = &rest[tag_start..tag_end];
        let attr = |name: &str| {
            let key = format!(" {name}=\"");
            tag.find(&key).map(|i| {
                let v = &tag[i + key.len()..];
                unescape(&v[..v.find('"').expect("a quoted value")])
            })
        };
        let body = &rest[tag_end + 1..];
        let text = unescape(&body[..body.find('<').unwrap_or(body.len())]);
        out.push((
            attr("data-figure").expect("found above"),
            attr("data-value"),
            text,
        ));
        rest = &rest[tag_end..];
    }
    out
}

/// HTML text back to plain text (the entities the report writes).
pub fn unescape(s: &str) -> String {
    s.replace("&nbsp;", "\u{a0}")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The value at a dotted path (`transforms.0.latency_ms.p95`).
pub fn at<'a>(json: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    path.split('.')
        .try_fold(json, |v, key| match key.parse::<usize>() {
            Ok(i) if v.is_array() => v.get(i),
            _ => v.get(key),
        })
}

/// The number a figure's text shows (`$0.000217`, `1,359`, `42.4 ms`) and
/// the rounding its decimals allow.
pub fn shown(text: &str) -> Option<(f64, f64)> {
    let digits: String = text
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '.' || *c == '-')
        .collect();
    let x = digits.parse::<f64>().ok()?;
    let decimals = digits.split_once('.').map_or(0, |(_, f)| f.len());
    Some((x, 0.5 * 10f64.powi(-(decimals as i32)) + 1e-9))
}

/// Checks that every figure of `html` equals the value at its path in
/// `json` (exactly by `data-value`; its text within its rounding; `null`
/// shown as no number) and returns the paths seen. Panics naming the
/// first figure that does not.
pub fn check_figures(html: &str, json: &serde_json::Value) -> Vec<String> {
    let mut paths = Vec::new();
    for (path, value, text) in figures(html) {
        let want = at(json, &path).unwrap_or_else(|| panic!("`{path}` is not in the summary JSON"));
        match value.as_deref() {
            Some("null") => {
                assert!(
                    want.is_null(),
                    "{path}: the page says unknown, the JSON {want}"
                );
                assert!(
                    shown(&text).is_none(),
                    "{path}: an unknown value shown as `{text}`"
                );
            }
            Some(raw) => {
                let got: f64 = raw.parse().unwrap_or_else(|_| panic!("{path}: {raw}"));
                let want = want
                    .as_f64()
                    .unwrap_or_else(|| panic!("{path}: the page says {raw}, the JSON {want}"));
                assert_eq!(got, want, "{path}");
                if !text.trim().is_empty() {
                    let (x, tol) = shown(&text).unwrap_or_else(|| panic!("{path}: `{text}`"));
                    assert!(
                        (x - want).abs() <= tol,
                        "{path}: the page shows `{text}`, the JSON {want}"
                    );
                }
            }
            None => assert_eq!(
                want.as_str(),
                Some(text.as_str()),
                "{path}: the page shows `{text}`"
            ),
        }
        paths.push(path);
    }
    paths
}
