//! The `${VAR}` phase: reference syntax in the fields that expand them,
//! missing variables (with `resolve_env`), literal secrets, and references
//! written in fields that do not expand them.
//!
//! Which fields expand references comes from the schema: the ones typed
//! `EnvString` or `SecretRef` (`#/definitions/EnvString` / `SecretRef`).

use std::ops::Range;
use std::sync::OnceLock;

use serde_json::Value as Json;

use super::locate::{Seg, scalar_range};
use super::nav::{Nav, StrKind, walk};
use super::schema::{field_name, schema};
use super::{Finding, Phase, ValidateOptions};
use crate::config::SecretRef;
use crate::diagnostic::Severity;
use crate::interpolate::{self, InterpolationErrorKind, Segment};
use crate::yaml::{Node, Value};

/// Keys whose values are masked in snippets when the schema position is unknown.
const SECRET_KEYS: [&str; 4] = ["api_key", "secret_key", "connection_string", "password"];

/// Fields whose text is a prompt: `${...}` there is prompt text.
const PROMPT_FIELDS: [&str; 2] = ["prompt_template", "system_prompt"];

/// Field names, read from the schema once, that let the walk skip nodes
/// whose schema cannot lead to a finding.
struct Names {
    /// Fields typed `SecretRef` somewhere, plus [`SECRET_KEYS`].
    secret_fields: Vec<&'static str>,
    /// Maps whose values are `SecretRef` (e.g. `headers`).
    secret_maps: Vec<&'static str>,
    /// Fields typed `EnvString` or `SecretRef` wherever they appear.
    env_only: Vec<&'static str>,
}

fn names() -> &'static Names {
    static NAMES: OnceLock<Names> = OnceLock::new();
    NAMES.get_or_init(|| {
        let mut secret_fields: Vec<&'static str> = SECRET_KEYS.to_vec();
        let mut secret_maps = Vec::new();
        let mut env = Vec::new();
        let mut plain = Vec::new();
        let refers =
            |v: &Json, def: &str| v.to_string().contains(&format!("\"#/definitions/{def}\""));
        let mut stack = vec![schema()];
        while let Some(v) = stack.pop() {
            match v {
                Json::Object(map) => {
                    if let Some(Json::Object(props)) = map.get("properties") {
                        for (name, prop) in props {
                            let name = name.as_str();
                            let map_of_secrets = prop
                                .get("additionalProperties")
                                .is_some_and(|a| refers(a, "SecretRef"));
                            if map_of_secrets {
                                secret_maps.push(name);
                                plain.push(name);
                            } else if refers(prop, "SecretRef") {
                                secret_fields.push(name);
                                env.push(name);
                            } else if refers(prop, "EnvString") {
                                env.push(name);
                            } else {
                                plain.push(name);
                            }
                        }
                    }
                    stack.extend(map.values());
                }
                Json::Array(items) => stack.extend(items),
                _ => {}
            }
        }
        let mut env_only: Vec<&'static str> =
            env.into_iter().filter(|n| !plain.contains(n)).collect();
        for v in [&mut secret_fields, &mut secret_maps, &mut env_only] {
            v.sort_unstable();
            v.dedup();
        }
        Names {
            secret_fields,
            secret_maps,
            env_only,
        }
    })
}

/// Byte ranges of secret values found in the raw text, line by line,
/// without the YAML tree: the snippet of any diagnostic masks them even
/// when the file does not parse (an unclosed quote) or the value is not in
/// the tree (the second of two duplicate keys). A value is taken to run
/// from after `<secret field>:` to the end of the line, or to the next
/// `,` / `}` in a flow mapping; a pure `${VAR}` reference is left visible.
/// Masking too much only hides text; masking too little leaks a key.
pub(super) fn lexical_secret_ranges(text: &str) -> Vec<Range<usize>> {
    let names = names();
    let mut out = Vec::new();
    let mut line_start = 0;
    for line in text.split_inclusive('\n') {
        let content = line.trim_end_matches(['\n', '\r']);
        // One pass per line: each `:` is checked for a secret field name
        // right before it (`api_key:`, `"api_key":`), preceded by the start
        // of a key (line start, space, `{`, `,`, `-`).
        for (colon, _) in content.match_indices(':') {
            let before = content[..colon].trim_end_matches(['"', '\'']);
            let key_start = before
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map_or(0, |i| i + 1);
            let key = &before[key_start..];
            if key.is_empty() || names.secret_fields.binary_search(&key).is_err() {
                continue;
            }
            let before_ok = content[..key_start]
                .trim_end_matches(['"', '\''])
                .chars()
                .next_back()
                .is_none_or(|c| matches!(c, ' ' | '\t' | '{' | ',' | '-'));
            if !before_ok {
                continue;
            }
            let after_colon = &content[colon + 1..];
            let value_start = content.len() - after_colon.trim_start().len();
            let value = &content[value_start..];
            let quoted = value.starts_with(['"', '\'']);
            let end = if quoted {
                // To the closing quote; an unclosed one runs to the end.
                let quote = value.as_bytes()[0] as char;
                value[1..].find(quote).map_or(value.len(), |i| i + 2)
            } else {
                value
                    .find([',', '}'])
                    .or_else(|| value.find(" #"))
                    .unwrap_or(value.len())
            };
            let raw = value[..end].trim_end();
            let unquoted = raw.trim_matches(['"', '\'']);
            if raw.is_empty() || !SecretRef::new(unquoted).is_literal() {
                continue;
            }
            let start = line_start + value_start;
            out.push(start..start + raw.len());
        }
        url_credential_ranges(content, line_start, &mut out);
        line_start += line.len();
    }
    out
}

/// The ranges of URL credentials in `line` (offset by `line_start`): the
/// password of a userinfo (or the whole userinfo when it is a lone token)
/// and the value of every query parameter, as
/// [`elspeth_core::redact::url`] masks them in displayed text.
fn url_credential_ranges(line: &str, line_start: usize, out: &mut Vec<Range<usize>>) {
    let mut from = 0;
    while let Some(scheme_end) = line[from..].find("://").map(|i| from + i + 3) {
        let end = line[scheme_end..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | '}' | ']'))
            .map_or(line.len(), |i| scheme_end + i);
        let url = &line[scheme_end..end];
        let authority = url.find(['/', '?', '#']).map_or(url, |i| &url[..i]);
        if let Some(at) = authority.rfind('@') {
            let userinfo = &authority[..at];
            let masked = userinfo.find(':').map_or(0..at, |c| c + 1..at);
            if !masked.is_empty() {
                let base = line_start + scheme_end;
                out.push(base + masked.start..base + masked.end);
            }
        }
        if let Some(q) = url.find('?') {
            let query_end = url[q..].find('#').map_or(url.len(), |i| q + i);
            let mut pair_start = q + 1;
            for pair in url[q + 1..query_end].split('&') {
                let value = pair.find('=').map_or(0..pair.len(), |e| e + 1..pair.len());
                if !value.is_empty() {
                    let base = line_start + scheme_end + pair_start;
                    out.push(base + value.start..base + value.end);
                }
                pair_start += pair.len() + 1;
            }
        }
        from = end.max(scheme_end);
    }
}

pub(super) fn check(phase: &mut Phase<'_>, opts: &ValidateOptions) {
    let nav = Nav::new(schema());
    let root = phase.root;
    let index = phase.index;
    let mut findings = Vec::new();
    let mut redact = Vec::new();
    let names = names();
    // Only strings with a `$`, and values of secret fields, need their
    // schema; a well-formed reference in a field that expands references
    // everywhere is fine (unless it must be resolved).
    let interesting = |node: &Node, key: Option<&str>, parent: Option<&str>| {
        let secret = key.is_some_and(|k| names.secret_fields.contains(&k))
            || parent.is_some_and(|p| names.secret_maps.contains(&p));
        match &node.value {
            Value::String(s) if s.contains('$') => {
                let expanding = key.is_some_and(|k| names.env_only.contains(&k));
                !(expanding
                    && !opts.resolve_env
                    && interpolate::parse(s).is_ok_and(|segments| {
                        !secret || !segments.iter().any(|s| matches!(s, Segment::Literal(_)))
                    }))
            }
            Value::Seq(_) | Value::Map(_) => false,
            _ => secret,
        }
    };
    walk(&nav, root, &interesting, &mut |node, path, at| {
        // Mask secrets in snippets: any literal in a secret field (even of
        // the wrong type), and values under secret-looking keys where the
        // schema does not say (e.g. under an unknown plugin).
        let secret_field = match at {
            Some(at) => at.kind == StrKind::Secret,
            None => matches!(path.last(), Some(Seg::Key(k)) if SECRET_KEYS.contains(&k.as_str())),
        };
        if secret_field {
            match &node.value {
                Value::String(text)
                    if at.is_none() && !SecretRef::new(text.as_str()).is_literal() => {}
                Value::String(_) if at.is_some() => {} // handled below
                Value::Seq(_) | Value::Map(_) | Value::Null => {}
                _ => redact.push(node.span.range()),
            }
        }
        let Value::String(text) = &node.value else {
            return;
        };
        if !text.contains('$') && at.is_none_or(|a| a.kind != StrKind::Secret) {
            return;
        }
        // Where the schema does not describe the node (e.g. under an
        // unknown plugin), nothing is known about the field.
        let Some(at) = at else { return };
        let field = field_name(path);
        match at.kind {
            StrKind::Plain => {
                if in_prompt(path) || !text.contains("${") {
                    return;
                }
                if let Ok(segments) = interpolate::parse(text)
                    && let Some(r) = segments.iter().find_map(|s| match s {
                        Segment::Reference(r) => Some(r),
                        Segment::Literal(_) => None,
                    })
                {
                    let span = scalar_range(index, node, r.span.clone());
                    let mut f = Finding::new(
                        span,
                        Severity::Warning,
                        format!(
                            "{field} does not expand `${{{}}}`; the text is used as written",
                            r.name
                        ),
                    );
                    f.help = Some(
                        "only connection settings (endpoints, keys, hosts) expand `${VAR}` references"
                            .into(),
                    );
                    findings.push(f);
                }
            }
            kind @ (StrKind::Env | StrKind::Secret) => match interpolate::parse(text) {
                Err(errors) => {
                    for e in errors {
                        let span = scalar_range(index, node, e.span.clone());
                        let message = match &e.kind {
                            InterpolationErrorKind::Unclosed => {
                                format!("unclosed `${{` in {field}")
                            }
                            InterpolationErrorKind::EmptyName => {
                                format!("empty variable name `${{}}` in {field}")
                            }
                            InterpolationErrorKind::InvalidName(n) => {
                                format!("invalid environment variable name `{n}` in {field}")
                            }
                            InterpolationErrorKind::Missing(n) => {
                                format!("environment variable `{n}` is not set")
                            }
                        };
                        let mut f = Finding::new(span, Severity::Error, message);
                        f.help = Some(e.help());
                        findings.push(f);
                    }
                }
                Ok(segments) => {
                    if opts.resolve_env {
                        for s in &segments {
                            if let Segment::Reference(r) = s
                                && r.default.is_none()
                                && opts.env.var(r.name).is_none()
                            {
                                let span = scalar_range(index, node, r.span.clone());
                                // Tracing and telemetry degrade gracefully at
                                // run time (a warning, then no tracing); the
                                // rows never depend on them.
                                let (severity, consequence) = match observability(path) {
                                    Some(what) => (Severity::Warning, format!("; {what}")),
                                    None => (Severity::Error, String::new()),
                                };
                                let mut f = Finding::new(
                                    span,
                                    severity,
                                    format!(
                                        "environment variable `{}` is not set{consequence}",
                                        r.name
                                    ),
                                );
                                f.help = Some(format!(
                                    "set it (`export {0}=...`) or give a default: `${{{0}:-default}}`",
                                    r.name
                                ));
                                f.notes.push(format!("{field} refers to it"));
                                findings.push(f);
                            }
                        }
                    }
                    if kind == StrKind::Secret && SecretRef::new(text.as_str()).is_literal() {
                        redact.push(node.span.range());
                        let var = suggested_var(at.description);
                        let mut f = Finding::new(
                            node.span,
                            Severity::Warning,
                            format!("{field} holds a literal secret; use {var}"),
                        );
                        f.help = Some(format!(
                            "secrets written in the file end up in version control and logs; set the variable and write `{}: {var}`",
                            last_key(path)
                        ));
                        findings.push(f);
                    }
                }
            },
        }
    });
    phase.findings.extend(findings);
    phase.redact.extend(redact);
}

/// What goes without when a variable under `path` is missing, for the
/// fields that only feed tracing or telemetry (`None` for everything else).
fn observability(path: &[Seg]) -> Option<String> {
    match path {
        [Seg::Key(k), ..] if k == "telemetry" => {
            Some("the pipeline will run without Tier 1 telemetry".into())
        }
        [Seg::Key(t), Seg::Index(i), rest @ ..]
            if t == "transforms"
                && rest
                    .iter()
                    .any(|s| matches!(s, Seg::Key(k) if k == "tracing")) =>
        {
            Some(format!("transforms[{i}] will run untraced"))
        }
        _ => None,
    }
}

fn in_prompt(path: &[Seg]) -> bool {
    path.iter().any(|s| match s {
        Seg::Key(k) => PROMPT_FIELDS.contains(&k.as_str()) || k == "queries",
        Seg::Index(_) => false,
    })
}

fn last_key(path: &[Seg]) -> String {
    match path.last() {
        Some(Seg::Key(k)) => k.clone(),
        _ => "value".into(),
    }
}

/// The `${NAME}` a field's description recommends, e.g.
/// `${AZURE_OPENAI_KEY}`; `a ${VAR} reference` when it names none.
fn suggested_var(description: Option<&str>) -> String {
    let found = description.and_then(|d| {
        interpolate::references(d).ok().and_then(|refs| {
            refs.into_iter()
                .find(|r| r.name != "VAR")
                .map(|r| format!("${{{}}}", r.name))
        })
    });
    found.unwrap_or_else(|| "a `${VAR}` reference".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `text` with the ranges replaced by `*`, as a snippet shows it.
    fn masked(text: &str) -> String {
        let mut bytes = text.as_bytes().to_vec();
        for r in lexical_secret_ranges(text) {
            bytes[r].fill(b'*');
        }
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn secret_values_and_url_credentials_are_found_without_parsing() {
        let cases = [
            ("api_key: sk-live-1\n", "api_key: *********\n"),
            ("  api_key: \"sk-live-1\n", "  api_key: **********\n"),
            (
                "opts: {api_key: sk-1, pool_size: x}\n",
                "opts: {api_key: ****, pool_size: x}\n",
            ),
            (
                "secret_key: 'sk-lf-9' # old\n",
                "secret_key: ********* # old\n",
            ),
            (
                "api_key: ${OPENROUTER_API_KEY}\n",
                "api_key: ${OPENROUTER_API_KEY}\n",
            ),
            ("my_api_key: visible\n", "my_api_key: visible\n"),
            (
                "endpoint: https://u:pw@h/x?sig=abc&sv=1\n",
                "endpoint: https://u:**@h/x?sig=***&sv=*\n",
            ),
            ("host: \"https://tok@h\"\n", "host: \"https://***@h\"\n"),
            ("endpoint: https://h/x\n", "endpoint: https://h/x\n"),
        ];
        for (text, shown) in cases {
            assert_eq!(masked(text), shown, "{text}");
        }
    }
}
