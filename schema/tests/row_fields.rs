//! The row-field check: prompt templates against the fields of the source
//! rows (CSV header, first JSONL rows) and of earlier transforms.

use std::path::{Path, PathBuf};

use elspeth_schema::diagnostic::Severity;
use elspeth_schema::{ValidateOptions, Validated, validate_file, validate_str};

/// A file to create: its path in the folder and its bytes.
type File<'a> = (&'a str, &'a [u8]);

/// A scratch folder holding `files`.
fn folder(case: &str, files: &[File]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("row_fields")
        .join(case);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    dir
}

/// Validates `pipeline.yaml` (written in `dir`) from its path.
fn validate(dir: &Path, yaml: &str) -> Validated {
    let file = dir.join("pipeline.yaml");
    std::fs::write(&file, yaml).unwrap();
    validate_file(&file, &ValidateOptions::default())
}

/// `(line, column, severity, message, help)` of every diagnostic.
fn summary(v: &Validated) -> Vec<(usize, usize, Severity, String, Option<String>)> {
    v.diagnostics
        .iter()
        .map(|d| {
            (
                d.line,
                d.column,
                d.severity,
                d.message.clone(),
                d.help.clone(),
            )
        })
        .collect()
}

fn pipeline(source: &str, transforms: &str) -> String {
    format!(
        "name: p\nsource: {source}\ntransforms:\n{transforms}sink: {{ plugin: jsonl, path: out.jsonl }}\n"
    )
}

/// An openrouter_llm transform with `template` (single-quoted) and `extra`
/// option lines.
fn llm(template: &str, extra: &str) -> String {
    format!(
        "  - plugin: openrouter_llm\n    options:\n      model: m\n      api_key: ${{K}}\n      prompt_template: '{template}'\n{extra}"
    )
}

const JSONL: &str = "{ plugin: jsonl, path: rows.jsonl }";
const ROWS: &[u8] = b"{\"id\": 1, \"subject\": \"a\", \"body\": \"b\"}\n";

#[test]
fn a_misspelt_field_is_an_error_at_its_place_with_a_suggestion() {
    let dir = folder("typo", &[("rows.jsonl", ROWS)]);
    let v = validate(&dir, &pipeline(JSONL, &llm("Subject: {{ subjcet }}", "")));
    assert_eq!(
        summary(&v),
        [(
            8,
            34,
            Severity::Error,
            "unknown field `subjcet` in `prompt_template`".to_string(),
            Some("did you mean `subject`?".to_string())
        )]
    );
    assert_eq!(
        v.diagnostics[0].notes,
        ["the rows of `rows.jsonl` have `id`, `subject` and `body` (read from its first row)"]
    );
    assert!(v.config.is_none());
    // The span covers the tag.
    assert_eq!(v.diagnostics[0].end_column - v.diagnostics[0].column, 13);
}

#[test]
fn known_fields_pass_and_unknown_ones_without_a_close_match_list_the_fields() {
    let dir = folder("known", &[("rows.jsonl", ROWS)]);
    let v = validate(&dir, &pipeline(JSONL, &llm("{{ subject }} {{ body }}", "")));
    assert!(v.diagnostics.is_empty(), "{}", v.render());
    assert!(v.config.is_some());

    let v = validate(&dir, &pipeline(JSONL, &llm("{{ zzz }}", "")));
    assert_eq!(
        v.diagnostics[0].help.as_deref(),
        Some("use one of the fields listed below, or add the field to the source")
    );
}

#[test]
fn jsonl_fields_are_the_union_of_the_first_rows_keys_after_a_byte_order_mark() {
    let rows = b"\xEF\xBB\xBF{\"id\": 1}\n\nnot json\n[1]\n{\"id\": 2, \"lang\": \"fr\"}\n";
    let dir = folder("union", &[("rows.jsonl", rows)]);
    let v = validate(
        &dir,
        &pipeline(JSONL, &llm("{{ id }} {{ lang }} {{ x }}", "")),
    );
    assert_eq!(v.errors().count(), 1, "{}", v.render());
    assert_eq!(
        v.diagnostics[0].message,
        "unknown field `x` in `prompt_template`"
    );
    assert_eq!(
        v.diagnostics[0].notes[0],
        "the rows of `rows.jsonl` have `id` and `lang` (read from its first 4 rows)"
    );

    // Only the first 100 rows are read.
    let mut many = "{\"id\": 1}\n".repeat(100);
    many.push_str("{\"late\": 1}\n");
    let dir = folder("sample", &[("rows.jsonl", many.as_bytes())]);
    let v = validate(&dir, &pipeline(JSONL, &llm("{{ late }}", "")));
    assert_eq!(v.errors().count(), 1, "{}", v.render());
    assert!(v.diagnostics[0].notes[0].ends_with("(read from its first 100 rows)"));
}

#[test]
fn csv_fields_are_the_header_with_its_delimiter_and_without_a_byte_order_mark() {
    let csv = b"\xEF\xBB\xBFid;\"the subject\";body\n1;a;b\n";
    let dir = folder("csv", &[("data/rows.csv", csv)]);
    let source = "{ plugin: csv, path: data/rows.csv, delimiter: \";\" }";
    let v = validate(
        &dir,
        &pipeline(source, &llm("{{ id }} {{ [the subject] }}", "")),
    );
    assert!(v.diagnostics.is_empty(), "{}", v.render());

    let v = validate(&dir, &pipeline(source, &llm("{{ bdy }}", "")));
    assert_eq!(
        v.diagnostics[0].help.as_deref(),
        Some("did you mean `body`?")
    );
    assert_eq!(
        v.diagnostics[0].notes[0],
        "the rows of `data/rows.csv` have `id`, `the subject` and `body` (read from its header)"
    );
}

#[test]
fn fields_written_by_earlier_transforms_are_valid_later_only() {
    let dir = folder("chain", &[("rows.jsonl", ROWS)]);
    let transforms = [
        // Text reply: `llm_response` by default.
        llm("{{ body }}", ""),
        // JSON reply with `output_fields`.
        llm(
            "{{ llm_response }}",
            "      response_format: json\n      output_fields: [category, urgency]\n",
        ),
        // A multi-query: `<query>_<output_field>`.
        "  - plugin: openrouter_multi_query_llm\n    options:\n      model: m\n      api_key: ${K}\n      prompt_template: '{{ category }} {{ urgency }} {{ crit.name }}'\n      output_field: score\n      queries:\n        crit: [{ name: tone }, { name: facts }]\n".to_string(),
        llm("{{ tone_score }} {{ facts_score }}", "      output_field: last\n"),
    ]
    .concat();
    let v = validate(&dir, &pipeline(JSONL, &transforms));
    assert!(v.diagnostics.is_empty(), "{}", v.render());

    // A field is not available before the transform that writes it.
    let transforms = [
        llm("{{ category }}", ""),
        llm("{{ body }}", "      output_field: category\n"),
    ]
    .concat();
    let v = validate(&dir, &pipeline(JSONL, &transforms));
    assert_eq!(v.errors().count(), 1, "{}", v.render());
    assert_eq!(v.diagnostics[0].line, 8);
    assert!(
        v.diagnostics[0].notes.len() == 1,
        "nothing added before the first"
    );
}

#[test]
fn after_a_json_reply_without_output_fields_later_templates_are_not_checked() {
    let dir = folder("open", &[("rows.jsonl", ROWS)]);
    let transforms = [
        llm("{{ body }}", "      response_format: json\n"),
        // Any key of the reply may be a field here.
        llm("{{ whatever_the_model_said }}", "      output_field: x\n"),
    ]
    .concat();
    let v = validate(&dir, &pipeline(JSONL, &transforms));
    assert!(v.diagnostics.is_empty(), "{}", v.render());
}

#[test]
fn a_missing_field_in_an_if_block_is_a_warning_only() {
    // `{{#if}}` on a missing field renders its `else` at run time.
    let dir = folder("if", &[("rows.jsonl", ROWS)]);
    let v = validate(
        &dir,
        &pipeline(
            JSONL,
            &llm("{{ body }}{{#if lang}} in {{ lang }}{{/if}}", ""),
        ),
    );
    let got: Vec<_> = summary(&v)
        .into_iter()
        .map(|(_, c, s, m, _)| (c, s, m))
        .collect();
    assert_eq!(
        got,
        [
            (
                35,
                Severity::Warning,
                "no row has the field `lang`, so this condition is always false".to_string()
            ),
            (
                51,
                Severity::Error,
                "unknown field `lang` in `prompt_template`".to_string()
            ),
        ]
    );
}

#[test]
fn an_absent_or_unreadable_source_gives_a_note_and_the_file_stays_valid() {
    let cases: [(&str, &[File], &str); 5] = [
        ("absent", &[], "`rows.jsonl` does not exist (yet)"),
        (
            "empty",
            &[("rows.jsonl", b"\n\n")],
            "`rows.jsonl` has no rows yet",
        ),
        (
            "not-objects",
            &[("rows.jsonl", b"[1]\nnope\n")],
            "none of the first 100 lines of `rows.jsonl` is a JSON object",
        ),
        (
            "directory",
            &[("rows.jsonl/x", b"")],
            "`rows.jsonl` is not a regular file",
        ),
        (
            "bom-only",
            &[("rows.jsonl", b"\xEF\xBB\xBF")],
            "`rows.jsonl` has no rows yet",
        ),
    ];
    for (case, files, why) in cases {
        let dir = folder(case, files);
        let v = validate(&dir, &pipeline(JSONL, &llm("{{ subjcet }}", "")));
        assert_eq!(
            summary(&v),
            [(
                2,
                32,
                Severity::Note,
                format!("the fields used in prompt templates were not checked: {why}"),
                Some("validate again once the source file is in place to check every `{{ field }}` against its rows".to_string())
            )],
            "{case}"
        );
        assert!(!v.has_errors() && v.config.is_some(), "{case}: a note only");
        assert_eq!(v.notes().count(), 1);
        assert_eq!(v.warnings().count(), 0, "{case}: a note is not a warning");
        assert!(
            v.render().starts_with("note: the fields used"),
            "{}",
            v.render()
        );
    }
    // An empty CSV file, and one without a header.
    let source = "{ plugin: csv, path: rows.csv }";
    for (case, bytes, why) in [
        ("csv-empty", &b""[..], "`rows.csv` has no rows yet"),
        (
            "csv-no-header",
            &b",\n1,2\n"[..],
            "`rows.csv` has no CSV header row",
        ),
    ] {
        let dir = folder(case, &[("rows.csv", bytes)]);
        let v = validate(&dir, &pipeline(source, &llm("{{ a }}", "")));
        assert_eq!(v.diagnostics.len(), 1, "{case}: {}", v.render());
        assert!(
            v.diagnostics[0].message.ends_with(why),
            "{case}: {}",
            v.render()
        );
        assert_eq!(v.diagnostics[0].severity, Severity::Note);
    }
}

#[test]
fn no_note_when_no_template_reads_a_row_field() {
    let dir = folder("no-fields", &[]);
    let v = validate(&dir, &pipeline(JSONL, &llm("Say hi.", "")));
    assert_eq!(v.notes().count(), 0, "{}", v.render());
}

#[test]
fn relative_paths_resolve_against_the_pipeline_folder_or_base_dir() {
    let dir = folder("relative", &[("sub/rows.jsonl", ROWS)]);
    let yaml = pipeline(
        "{ plugin: jsonl, path: sub/rows.jsonl }",
        &llm("{{ subjcet }}", ""),
    );
    // Validated from another working directory's point of view: the path
    // is joined to the YAML file's folder, not to the current directory.
    let v = validate(&dir, &yaml);
    assert_eq!(v.errors().count(), 1, "{}", v.render());

    // `validate_str` has no file: no check unless a base folder is given.
    let v = validate_str("p.yaml", &yaml, &ValidateOptions::default());
    assert!(v.diagnostics.is_empty(), "{}", v.render());
    let opts = ValidateOptions {
        base_dir: Some(dir.clone()),
        ..ValidateOptions::default()
    };
    let v = validate_str("p.yaml", &yaml, &opts);
    assert_eq!(v.errors().count(), 1, "{}", v.render());

    // An absolute path is used as is.
    let abs = dir.join("sub/rows.jsonl");
    let yaml = pipeline(
        &format!("{{ plugin: jsonl, path: {:?} }}", abs.display().to_string()),
        &llm("{{ subject }}", ""),
    );
    let v = validate(&folder("elsewhere", &[]), &yaml);
    assert!(v.diagnostics.is_empty(), "{}", v.render());
}

#[test]
fn a_json_schema_reply_adds_its_properties_or_the_picked_ones() {
    let dir = folder("json-schema", &[("rows.jsonl", ROWS)]);
    let format = "      response_format:\n        json_schema:\n          name: t\n          strict: false\n          schema: { type: object, properties: { category: { type: string }, urgency: { type: integer } } }\n";
    // Without output_fields: every top-level property.
    let transforms = [
        llm("{{ body }}", format),
        llm(
            "{{ category }} {{ urgency }} {{ categroy }}",
            "      output_field: x\n",
        ),
    ]
    .concat();
    let v = validate(&dir, &pipeline(JSONL, &transforms));
    let s = summary(&v);
    assert_eq!(s.len(), 1, "{}", v.render());
    assert_eq!(
        (s[0].2, s[0].3.as_str(), s[0].4.as_deref()),
        (
            Severity::Error,
            "unknown field `categroy` in `prompt_template`",
            Some("did you mean `category`?")
        )
    );
    assert!(
        v.diagnostics[0]
            .notes
            .contains(&"earlier transforms add `category` and `urgency`".to_string()),
        "{:?}",
        v.diagnostics[0].notes
    );
    // With output_fields: only those.
    let transforms = [
        llm(
            "{{ body }}",
            &format!("{format}      output_fields: [category]\n"),
        ),
        llm("{{ category }} {{ urgency }}", "      output_field: x\n"),
    ]
    .concat();
    let v = validate(&dir, &pipeline(JSONL, &transforms));
    let s = summary(&v);
    assert_eq!(s.len(), 1, "{}", v.render());
    assert_eq!(s[0].3, "unknown field `urgency` in `prompt_template`");
}
