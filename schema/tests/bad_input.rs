//! Hostile and broken input: each case gives a clear, located error and
//! never a panic, a hang or unbounded memory.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use elspeth_schema::diagnostic::Diagnostic;
use elspeth_schema::yaml::{self, Limits};
use elspeth_schema::{ValidateOptions, Validated, validate_file, validate_str};

const VALID: &str = "\
name: triage
source: { plugin: jsonl, path: in.jsonl }
transforms:
  - plugin: azure_llm
    options:
      deployment_name: gpt-4o
      endpoint: ${AZURE_OPENAI_ENDPOINT}
      api_key: ${AZURE_OPENAI_KEY}
      prompt_template: 'Classify: {{ text }}'
sink: { plugin: jsonl, path: out.jsonl }
";

fn check(text: &str) -> Validated {
    validate_str("p.yaml", text, &ValidateOptions::default())
}

fn errors(v: &Validated) -> Vec<&Diagnostic> {
    v.errors().collect()
}

/// A unique scratch path under the system temp dir.
fn scratch(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "elspeth-schema-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn the_baseline_is_valid() {
    let v = check(VALID);
    assert!(v.diagnostics.is_empty(), "{}", v.render());
    assert!(v.config.is_some());
}

#[test]
fn empty_file() {
    for text in ["", "\n\n", "# only a comment\n", "---\n"] {
        let v = check(text);
        let e = errors(&v);
        assert_eq!(e.len(), 1, "{text:?}: {}", v.render());
        if text == "---\n" {
            // An explicit document holding nothing is a null document.
            assert!(
                e[0].message.contains("must be a mapping"),
                "{}",
                e[0].message
            );
        } else {
            assert_eq!(e[0].message, "empty pipeline file");
            assert!(
                e[0].help
                    .as_deref()
                    .unwrap()
                    .contains("`name`, `source`, `transforms` and `sink`")
            );
        }
    }
}

#[test]
fn non_utf8_bytes_are_located() {
    let path = scratch("latin1.yaml");
    let mut bytes = b"name: triage\nsource: { plugin: jsonl, path: caf".to_vec();
    bytes.push(0xE9); // `é` in Latin-1
    bytes.extend_from_slice(b".jsonl }\n");
    std::fs::write(&path, &bytes).unwrap();
    let v = validate_file(&path, &ValidateOptions::default());
    assert!(!v.is_io_error());
    let e = errors(&v);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].message, "the file is not valid UTF-8 (byte 0xe9)");
    assert_eq!((e[0].line, e[0].column), (2, 35));
    assert!(
        v.render()
            .contains("2 | source: { plugin: jsonl, path: caf\u{FFFD}.jsonl }")
    );
}

#[test]
fn yaml_syntax_errors_are_located() {
    let v = check("name: triage\nsource: { plugin: jsonl, path: in.jsonl\nsink: x\n");
    let e = errors(&v);
    assert_eq!(e.len(), 1, "{}", v.render());
    assert!(e[0].message.starts_with("YAML syntax error"));
    assert_eq!(e[0].line, 3);
    assert_eq!(e[0].notes, ["the `{` at line 2, column 9 is still open"]);
    let v = check("name: 'triage\n");
    assert!(errors(&v)[0].message.starts_with("YAML syntax error"));
}

#[test]
fn wrong_types_are_reported_with_what_was_found() {
    let text = VALID.replace(
        "      prompt_template",
        "      temperature: abc\n      max_retries: 2.5\n      pool_size: [1]\n      prompt_template",
    );
    let v = check(&text);
    let msgs: Vec<_> = errors(&v)
        .iter()
        .map(|d| (d.line, d.message.clone()))
        .collect();
    assert_eq!(
        msgs,
        vec![
            (
                9,
                "invalid type for `temperature`: expected a number, found string `abc`".to_string()
            ),
            (
                10,
                "invalid type for `max_retries`: expected a whole number, found number `2.5`"
                    .to_string()
            ),
            (
                11,
                "invalid type for `pool_size`: expected a whole number, found a list".to_string()
            ),
        ]
    );
    // A number where a string is expected: the help says to quote it.
    let v = check(&VALID.replace("deployment_name: gpt-4o", "deployment_name: 4.1"));
    let e = errors(&v);
    assert_eq!(
        e[0].message,
        "invalid type for `deployment_name`: expected a string, found number `4.1`"
    );
    assert_eq!(
        e[0].help.as_deref(),
        Some("quote the value to use it as text: `\"4.1\"`")
    );
    // An empty value.
    let v = check(&VALID.replace("deployment_name: gpt-4o", "deployment_name:"));
    let e = errors(&v);
    assert_eq!(
        e[0].message,
        "invalid type for `deployment_name`: expected a string, found nothing"
    );
    assert_eq!((e[0].line, e[0].column), (6, 7));
}

#[test]
fn duplicate_keys_at_any_level() {
    let text = VALID
        .replace("name: triage\n", "name: triage\nname: other\n")
        .replace(
            "      api_key:",
            "      endpoint: https://x.example\n      api_key:",
        );
    let v = check(&text);
    let e = errors(&v);
    assert_eq!(e.len(), 2, "{}", v.render());
    assert_eq!(
        (e[0].line, e[0].message.as_str()),
        (2, "duplicate key `name`")
    );
    assert_eq!(
        e[0].help.as_deref(),
        Some("`name` is already set at line 1; remove one of them")
    );
    assert_eq!(
        (e[1].line, e[1].message.as_str()),
        (9, "duplicate key `endpoint`")
    );
}

#[test]
fn unknown_keys_at_every_level() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "name: triage\n",
            "name: triage\nnmae: x\n",
            "unknown field `nmae` in the pipeline",
            "did you mean `name`?",
        ),
        (
            "path: in.jsonl }",
            "path: in.jsonl, pth: x }",
            "unknown field `pth` in jsonl source",
            "did you mean `path`?",
        ),
        (
            "path: out.jsonl }",
            "path: out.jsonl, eror_path: e }",
            "unknown field `eror_path` in jsonl sink",
            "did you mean `error_path`?",
        ),
        (
            "  - plugin: azure_llm\n",
            "  - plugin: azure_llm\n    opts: {}\n",
            "unknown field `opts` in azure_llm transform",
            "did you mean `options`?",
        ),
        (
            "      deployment_name",
            "      deployment: x\n      deployment_name",
            "unknown field `deployment` in azure_llm options",
            "did you mean `deployment_name`?",
        ),
        (
            "sink:",
            "telemetry:\n  enabeld: true\nsink:",
            "unknown field `enabeld` in telemetry",
            "did you mean `enabled`?",
        ),
        (
            "sink:",
            "telemetry:\n  exporters:\n    - { name: otlp, options: { endpoint: 'http://c:4318' }, opts: 1 }\nsink:",
            "unknown field `opts` in otlp exporter",
            "did you mean `options`?",
        ),
        (
            "sink:",
            "telemetry:\n  exporters:\n    - { name: otlp, options: { endpont: 'http://c:4318' } }\nsink:",
            "unknown field `endpont` in otlp exporter options",
            "did you mean `endpoint`?",
        ),
    ];
    for (from, to, message, help) in cases {
        let v = check(&VALID.replacen(from, to, 1));
        let e = errors(&v);
        assert!(
            e.iter()
                .any(|d| d.message == *message && d.help.as_deref() == Some(help)),
            "{message}: got\n{}",
            v.render()
        );
    }
    let tracing = |block: &str| {
        VALID.replace("sink:", "").replace(
            "'Classify: {{ text }}'\n",
            &format!("'Classify: {{{{ text }}}}'\n      tracing:\n{block}sink:"),
        )
    };
    for (block, message, help) in [
        (
            "        provider: none\n        host: x\n",
            "unknown field `host` in tracing (provider `none`)",
            "`host` is only valid with `provider: langfuse`",
        ),
        (
            "        provider: azure_ai\n        connection_string: ${C}\n        enable_live_metric: true\n",
            "unknown field `enable_live_metric` in azure_ai tracing",
            "did you mean `enable_live_metrics`?",
        ),
        (
            "        provider: langfuse\n        public_key: ${P}\n        secret_key: ${S}\n        hots: x\n",
            "unknown field `hots` in langfuse tracing",
            "did you mean `host`?",
        ),
        (
            "        provider: langfuse\n        public_key: ${P}\n        secret_key: ${S}\n        connection_string: x\n",
            "unknown field `connection_string` in langfuse tracing",
            "`connection_string` is only valid with `provider: azure_ai`",
        ),
    ] {
        let v = check(&tracing(block));
        let e = errors(&v);
        assert!(
            e.iter()
                .any(|d| d.message == message && d.help.as_deref() == Some(help)),
            "{message}: got\n{}",
            v.render()
        );
        assert!(e[0].notes[0].starts_with("valid fields: `provider`"));
    }
}

#[test]
fn unclosed_env_reference_is_located_inside_the_string() {
    let v = check(&VALID.replace(
        "endpoint: ${AZURE_OPENAI_ENDPOINT}",
        "endpoint: \"https://${RESOURCE.openai.azure.com\"",
    ));
    let e = errors(&v);
    assert_eq!(e.len(), 1, "{}", v.render());
    assert_eq!(e[0].message, "unclosed `${` in `endpoint`");
    assert_eq!((e[0].line, e[0].column), (7, 26));
    assert_eq!(e[0].end_column, 53);
}

#[test]
fn a_10_mb_file_is_rejected_before_reading() {
    let path = scratch("huge.yaml");
    let line = "# padding padding padding padding padding padding padding padding\n";
    let text = line.repeat(10 * 1024 * 1024 / line.len() + 1);
    std::fs::write(&path, &text).unwrap();
    let v = validate_file(&path, &ValidateOptions::default());
    let e = errors(&v);
    assert_eq!(e.len(), 1);
    assert_eq!(
        e[0].message,
        "the file is too large: 10.0 MiB (the limit is 8.0 MiB)"
    );
    assert_eq!(e[0].line, 0);
    assert!(v.source.is_empty(), "the file was read");
    // The same limit applies to text handed over directly.
    let v = check(&text);
    assert!(errors(&v)[0].message.starts_with("the file is too large"));
}

#[test]
fn ten_thousand_levels_of_nesting() {
    // Flow collections, and block sequences written compactly on one line
    // (`- - - ...`), nest 10,000 levels deep in a small file.
    let flow = format!("name: {}{}\n", "[".repeat(10_000), "]".repeat(10_000));
    let compact = format!("name:\n{}x\n", "- ".repeat(10_000));
    let mixed = format!("name: {}x\n", "{a: [".repeat(5_000));
    // Indented block mappings grow quadratically; 3,000 levels fit in the size limit.
    let mut block = String::new();
    for i in 0..3_000 {
        block.push_str(&" ".repeat(i));
        block.push_str("k:\n");
    }
    for text in [flow, compact, mixed, block] {
        let v = check(&text);
        let e = errors(&v);
        assert_eq!(e.len(), 1, "{}", v.render());
        assert_eq!(e[0].message, "nesting is deeper than 64 levels");
        assert!(e[0].line <= 65);
    }
}

#[test]
fn alias_bomb_is_rejected_by_the_node_budget() {
    let mut bomb = String::from("name: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    let mut prev = 'a';
    for c in 'b'..='j' {
        let refs = vec![format!("*{prev}"); 10].join(", ");
        bomb.push_str(&format!("{c}: &{c} [{refs}]\n"));
        prev = c;
    }
    let limits = Limits::default();
    // The loader stops once the budget is spent: the values it built are
    // bounded by the budget, not by the 10^10 the bomb expands to.
    let parsed = yaml::parse(&bomb, &limits);
    assert!(parsed.root.is_none());
    assert!(parsed.node_count <= limits.max_alias_nodes + bomb.len());
    let v = check(&bomb);
    let e = errors(&v);
    assert_eq!(e.len(), 1);
    assert_eq!(
        e[0].message,
        "aliases expand to more than 200000 values (an alias bomb?)"
    );
    // Small aliases stay fine.
    let shared = VALID.replace(
        "sink:",
        "x_shared: &t { provider: langfuse, public_key: '${P}', secret_key: '${S}' }\nsink:",
    );
    assert!(
        check(&shared)
            .diagnostics
            .iter()
            .any(|d| d.message.contains("x_shared"))
    );
}

#[test]
fn directory_and_missing_file_are_io_errors() {
    let dir = scratch("x").parent().unwrap().to_path_buf();
    let v = validate_file(&dir, &ValidateOptions::default());
    assert!(v.is_io_error());
    assert_eq!(
        v.diagnostics[0].message,
        format!("`{}` is a directory, not a pipeline file", dir.display())
    );
    let missing = dir.join("nope.yaml");
    let v = validate_file(&missing, &ValidateOptions::default());
    assert!(v.is_io_error());
    assert_eq!(
        v.diagnostics[0].message,
        format!("cannot read `{}`: file not found", missing.display())
    );
    assert!(v.render().contains(&format!(" --> {}", missing.display())));
}

/// Every prefix and many byte-level corruptions of a valid file: a
/// diagnostic or a config, never a panic.
#[test]
fn truncated_and_corrupted_input_never_panics() {
    let examples = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/pipelines/azure_multi_query_llm.langfuse.yaml"
    );
    let text = std::fs::read_to_string(examples).unwrap();
    let mut cut = 0;
    while cut < text.len() {
        if text.is_char_boundary(cut) {
            let v = check(&text[..cut]);
            assert!(v.has_errors() || v.config.is_some());
        }
        cut += 13;
    }
    let specials = [
        b'[', b'{', b'"', b'\'', b'&', b'*', b'!', b'|', b'>', b'-', b':', b'\t', b'$', b'}', b'#',
    ];
    let bytes = text.as_bytes();
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..400 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let at = (seed as usize) % bytes.len();
        let mut mutated = bytes.to_vec();
        mutated[at] = specials[(seed >> 32) as usize % specials.len()];
        if let Ok(s) = String::from_utf8(mutated) {
            let v = check(&s);
            assert!(v.has_errors() || v.config.is_some());
        }
    }
}
