//! Rust module names for pipelines.

/// Rust keywords (strict and reserved) a module cannot be named.
const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut",
    "pub", "ref", "return", "self", "static", "struct", "super", "trait", "true", "type", "unsafe",
    "use", "where", "while", "abstract", "become", "box", "do", "final", "macro", "override",
    "priv", "try", "typeof", "unsized", "virtual", "yield",
];

/// The module name of a pipeline: its `name` in snake case (`-` → `_`,
/// `TicketTriage` → `ticket_triage`); a keyword or a leading digit gets a
/// `_pipeline` suffix or `pipeline_` prefix. Characters that cannot be in an
/// identifier become `_`.
///
/// ```
/// use elspeth_codegen::names::module_name;
/// assert_eq!(module_name("ticket-triage"), "ticket_triage");
/// assert_eq!(module_name("TicketTriage"), "ticket_triage");
/// assert_eq!(module_name("type"), "type_pipeline");
/// ```
pub fn module_name(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev = i.checked_sub(1).map(|j| chars[j]);
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            let boundary = match prev {
                Some(p) if p.is_ascii_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_ascii_uppercase() => next_lower,
                _ => false,
            };
            if boundary && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let out = out.trim_matches('_').to_string();
    if out.is_empty() {
        return "pipeline".into();
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        return format!("pipeline_{out}");
    }
    if KEYWORDS.contains(&out.as_str()) {
        return format!("{out}_pipeline");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names() {
        let cases = [
            ("ticket-triage", "ticket_triage"),
            ("ticket_triage", "ticket_triage"),
            ("TicketTriage", "ticket_triage"),
            ("HTTPLogs", "http_logs"),
            ("a--b", "a_b"),
            ("v2-eval", "v2_eval"),
            ("Gpt4Eval", "gpt4_eval"),
            ("match", "match_pipeline"),
            ("self", "self_pipeline"),
            ("-x-", "x"),
            ("9lives", "pipeline_9lives"),
            ("---", "pipeline"),
        ];
        for (name, module) in cases {
            assert_eq!(module_name(name), module, "{name}");
            assert!(syn::parse_str::<syn::Ident>(&module_name(name)).is_ok());
        }
    }
}
