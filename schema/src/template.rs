//! Static analysis of prompt templates (Handlebars): which row fields a
//! template reads, and which constructs it uses that a prompt template may
//! not (partials, decorators, arbitrary helpers, `../` paths, `this`,
//! `@index`).
//!
//! A prompt template may use `{{ field }}`, `{{{ field }}}`, comments, and
//! `{{#if field}}` / `{{#unless field}}` blocks (with `{{else}}`).
//!
//! ```
//! use elspeth_schema::template::analyze;
//! let a = analyze("Classify: {{ text }} {{#if lang}}in {{ lang }}{{/if}}");
//! assert!(a.issues.is_empty());
//! let names: Vec<_> = a.fields.iter().map(|f| f.name.as_str()).collect();
//! assert_eq!(names, ["text", "lang", "lang"]);
//! let bad = analyze("{{#each items}}{{this}}{{/each}}");
//! assert_eq!(bad.issues[0].message, "unsupported helper `each`");
//! ```

use std::ops::Range;

use handlebars::template::{HelperTemplate, Parameter, TemplateElement};
use handlebars::{Path, PathSeg, Template};

/// Block helpers a prompt template may use.
pub const ALLOWED_BLOCK_HELPERS: [&str; 2] = ["if", "unless"];

/// A field reference: `{{ text }}` or `{{ criterion.name }}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRef {
    /// As written, e.g. `criterion.name`.
    pub name: String,
    /// The dotted parts, e.g. `["criterion", "name"]`.
    pub segments: Vec<String>,
    /// Byte range of the whole `{{ ... }}` in the template.
    pub range: Range<usize>,
}

/// Something wrong with a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateIssue {
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
    /// Byte range in the template.
    pub range: Range<usize>,
}

/// The result of [`analyze`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Analysis {
    /// Field references with plain (dot-separated, named) paths, in order.
    pub fields: Vec<FieldRef>,
    /// Problems; when the template does not parse, the syntax error only.
    pub issues: Vec<TemplateIssue>,
}

const SUPPORTED: &str = "prompt templates support `{{ field }}`, `{{{ field }}}`, `{{! comments }}` and `{{#if field}}` / `{{#unless field}}` blocks";

/// Parses `template` and lists its field references and problems.
pub fn analyze(template: &str) -> Analysis {
    if let Some(simple) = analyze_simple(template) {
        return simple;
    }
    let mut out = Analysis::default();
    if let Some(range) = unclosed_braces(template) {
        out.issues.push(TemplateIssue {
            message: "unclosed `{{`".into(),
            help: Some("close it with `}}`, or write `\\{{` for literal braces".into()),
            range,
        });
        return out;
    }
    match Template::compile(template) {
        Ok(t) => walk(template, &t, &mut out),
        Err(e) => {
            let offset = e
                .pos()
                .map_or(0, |(line, col)| offset_of(template, line, col));
            let reason = e.reason().to_string();
            let reason = reason
                .strip_prefix("invalid handlebars syntax: ")
                .map_or(reason.clone(), |r| format!("invalid template syntax ({r})"));
            out.issues.push(TemplateIssue {
                message: reason,
                help: Some(SUPPORTED.into()),
                range: offset..(offset + 1).min(template.len()).max(offset),
            });
        }
    }
    out
}

/// Fast path for the common case: every tag is a plain `{{ name }}` or
/// `{{ a.b }}` (no escapes, blocks, helpers or whitespace control). Gives
/// exactly what the Handlebars parser would; `None` when the template needs
/// the full parser.
fn analyze_simple(template: &str) -> Option<Analysis> {
    if template.contains('\\') {
        return None;
    }
    let mut fields = Vec::new();
    let mut rest = 0;
    while let Some(open) = template[rest..].find("{{").map(|i| rest + i) {
        let inner_start = open + 2;
        let close = template[inner_start..]
            .find("}}")
            .map(|i| inner_start + i)?;
        let inner = &template[inner_start..close];
        if inner.contains('{') || inner.contains('}') {
            return None;
        }
        let name = inner.trim_matches(|c: char| c == ' ' || c == '\t');
        let segments: Vec<&str> = name.split('.').collect();
        let plain = segments.iter().all(|seg| {
            let mut chars = seg.chars();
            matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
        if !plain
            || matches!(
                segments[0],
                "this" | "else" | "true" | "false" | "null" | "undefined"
            )
        {
            return None;
        }
        fields.push(FieldRef {
            name: name.to_string(),
            segments: segments.into_iter().map(str::to_string).collect(),
            range: open..close + 2,
        });
        rest = close + 2;
    }
    // A stray `}}` outside a tag is fine for Handlebars (raw text).
    Some(Analysis {
        fields,
        issues: Vec::new(),
    })
}

/// The first `{{` (not escaped) that has no `}}` before the next `{{`.
fn unclosed_braces(t: &str) -> Option<Range<usize>> {
    let b = t.as_bytes();
    let mut pos = 0;
    while let Some(rel) = t[pos..].find("{{") {
        let open = pos + rel;
        if open > 0 && b[open - 1] == b'\\' {
            pos = open + 2;
            continue;
        }
        let mut inner = open + 2;
        while inner < b.len() && b[inner] == b'{' {
            inner += 1;
        }
        let close = t[inner..].find("}}").map(|c| inner + c);
        let next_open = t[inner..].find("{{").map(|c| inner + c);
        match close {
            Some(c) if next_open.is_none_or(|n| n > c) => pos = c + 2,
            _ => return Some(open..open + 2),
        }
    }
    None
}

/// Byte offset of 1-based `line` and character `col` in `text`.
fn offset_of(text: &str, line: usize, col: usize) -> usize {
    let line_start = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum::<usize>();
    let rest = &text[line_start.min(text.len())..];
    line_start
        + rest
            .char_indices()
            .nth(col.saturating_sub(1))
            .map_or(rest.len(), |(b, _)| b)
}

/// The byte range of the tag starting at `start` (`{{` ... `}}`).
fn tag_range(template: &str, start: usize) -> Range<usize> {
    let end = template[start..]
        .find("}}")
        .map_or(template.len(), |e| start + e + 2);
    let end = if template[end..].starts_with('}') && template[start..].starts_with("{{{") {
        end + 1
    } else {
        end
    };
    start..end
}

fn walk(source: &str, template: &Template, out: &mut Analysis) {
    for (i, element) in template.elements.iter().enumerate() {
        let start = template
            .mapping
            .get(i)
            .map_or(0, |m| offset_of(source, m.0, m.1));
        let range = tag_range(source, start);
        match element {
            TemplateElement::RawString(_) | TemplateElement::Comment(_) => {}
            TemplateElement::Expression(h) | TemplateElement::HtmlExpression(h) => {
                expression(h, range, out);
            }
            TemplateElement::HelperBlock(h) => {
                let name = helper_name(&h.name);
                if ALLOWED_BLOCK_HELPERS.contains(&name.as_str()) && h.hash.is_empty() {
                    match h.params.as_slice() {
                        [Parameter::Path(p)] => path_ref(p, range.clone(), out),
                        _ => out.issues.push(TemplateIssue {
                            message: format!("`{{{{#{name}}}}}` takes one field name"),
                            help: Some(format!("write `{{{{#{name} field}}}}...{{{{/{name}}}}}`")),
                            range: range.clone(),
                        }),
                    }
                    for inner in [&h.template, &h.inverse].into_iter().flatten() {
                        walk(source, inner, out);
                    }
                } else {
                    out.issues.push(TemplateIssue {
                        message: format!("unsupported helper `{name}`"),
                        help: Some(SUPPORTED.into()),
                        range,
                    });
                }
            }
            TemplateElement::PartialExpression(_) | TemplateElement::PartialBlock(_) => {
                out.issues.push(TemplateIssue {
                    message: "partials (`{{> name}}`) are not supported".into(),
                    help: Some(SUPPORTED.into()),
                    range,
                });
            }
            TemplateElement::DecoratorExpression(_) | TemplateElement::DecoratorBlock(_) => {
                out.issues.push(TemplateIssue {
                    message: "decorators (`{{* name}}`) are not supported".into(),
                    help: Some(SUPPORTED.into()),
                    range,
                });
            }
            _ => {}
        }
    }
}

fn helper_name(p: &Parameter) -> String {
    match p {
        Parameter::Name(n) => n.clone(),
        Parameter::Path(Path::Relative((_, raw))) => raw.clone(),
        Parameter::Path(Path::Local((_, _, raw))) => raw.clone(),
        Parameter::Literal(v) => v.to_string(),
        Parameter::Subexpression(s) => s.name().to_string(),
        _ => "?".to_string(),
    }
}

fn expression(h: &HelperTemplate, range: Range<usize>, out: &mut Analysis) {
    match (&h.name, h.params.is_empty() && h.hash.is_empty()) {
        (Parameter::Path(p), true) => path_ref(p, range, out),
        (name, _) => out.issues.push(TemplateIssue {
            message: format!("unsupported helper `{}`", helper_name(name)),
            help: Some(SUPPORTED.into()),
            range,
        }),
    }
}

fn path_ref(p: &Path, range: Range<usize>, out: &mut Analysis) {
    match p {
        Path::Relative((segs, raw))
            if !segs.is_empty()
                && !raw.contains('/')
                && segs.iter().all(|s| matches!(s, PathSeg::Named(_))) =>
        {
            let segments = segs
                .iter()
                .filter_map(|s| match s {
                    PathSeg::Named(n) => Some(n.clone()),
                    _ => None,
                })
                .collect();
            out.fields.push(FieldRef {
                name: raw.clone(),
                segments,
                range,
            });
        }
        Path::Relative((_, raw)) | Path::Local((_, _, raw)) => out.issues.push(TemplateIssue {
            message: format!("`{raw}` is not a plain field name"),
            help: Some("refer to a row field by its name, e.g. `{{ text }}`".into()),
            range,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issues(t: &str) -> Vec<(String, String)> {
        analyze(t)
            .issues
            .into_iter()
            .map(|i| (i.message, t[i.range].to_string()))
            .collect()
    }

    #[test]
    fn fields_and_ranges() {
        let t = "A {{ text }}\n{{{ raw }}} {{#unless x}}{{ y.z }}{{else}}{{w}}{{/unless}} \\{{lit}} {{[my field]}}";
        let a = analyze(t);
        assert!(a.issues.is_empty(), "{:?}", a.issues);
        let got: Vec<_> = a
            .fields
            .iter()
            .map(|f| (f.name.as_str(), &t[f.range.clone()]))
            .collect();
        assert_eq!(
            got,
            vec![
                ("text", "{{ text }}"),
                ("raw", "{{{ raw }}}"),
                ("x", "{{#unless x}}"),
                ("y.z", "{{ y.z }}"),
                ("w", "{{w}}"),
                ("[my field]", "{{[my field]}}"),
            ]
        );
        assert_eq!(a.fields[3].segments, ["y", "z"]);
    }

    /// The fast path agrees with the full Handlebars parse.
    #[test]
    fn fast_path_matches_handlebars() {
        for t in [
            "Classify: {{ text }}",
            "{{a}}{{ b.c }} x {{  d-e  }} }} {",
            "no tags at all",
            "{{ criterion.name }} and {{ _x.y_z }}",
        ] {
            let fast = analyze_simple(t).expect("simple");
            let mut full = Analysis::default();
            walk(t, &Template::compile(t).unwrap(), &mut full);
            assert_eq!(fast, full, "{t}");
        }
        for t in [
            "{{#if a}}{{/if}}",
            "{{{ a }}}",
            "\\{{ a }}",
            "{{ this }}",
            "{{~ a }}",
            "{{ a b }}",
            "{{ a",
        ] {
            assert!(analyze_simple(t).is_none(), "{t}");
        }
    }

    #[test]
    fn problems() {
        assert_eq!(
            issues("Hi {{ name"),
            vec![("unclosed `{{`".to_string(), "{{".to_string())]
        );
        assert_eq!(
            issues("{{ a }} then {{ b"),
            vec![("unclosed `{{`".to_string(), "{{".to_string())]
        );
        assert_eq!(
            issues("{{ ../up }} {{this}} {{@index}} {{a/b}}"),
            vec![
                (
                    "`../up` is not a plain field name".to_string(),
                    "{{ ../up }}".to_string()
                ),
                (
                    "`this` is not a plain field name".to_string(),
                    "{{this}}".to_string()
                ),
                (
                    "`@index` is not a plain field name".to_string(),
                    "{{@index}}".to_string()
                ),
                (
                    "`a/b` is not a plain field name".to_string(),
                    "{{a/b}}".to_string()
                ),
            ]
        );
        assert_eq!(
            issues("{{upper x}} {{> p}}"),
            vec![
                (
                    "unsupported helper `upper`".to_string(),
                    "{{upper x}}".to_string()
                ),
                (
                    "partials (`{{> name}}`) are not supported".to_string(),
                    "{{> p}}".to_string()
                ),
            ]
        );
        let syntax = analyze("{{#if a}}x{{/each}}");
        assert_eq!(syntax.issues.len(), 1);
        let syntax = analyze("{{ \"lit\" }}");
        assert!(
            syntax.issues[0]
                .message
                .starts_with("invalid template syntax")
        );
        assert_eq!(syntax.issues[0].range.start, 3);
    }
}
