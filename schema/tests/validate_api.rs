//! The validation API: phases, rules, locations, deduplication, warnings,
//! `resolve_env` and secrecy.

use std::collections::HashMap;
use std::sync::Arc;

use elspeth_schema::config::{
    MISSING_CONNECTION_STRING, MISSING_PUBLIC_KEY, MISSING_SECRET_KEY, ResponseFormat,
    TracingConfig,
};
use elspeth_schema::diagnostic::Severity;
use elspeth_schema::{ValidateOptions, Validated, validate_str};

fn check(text: &str) -> Validated {
    validate_str("p.yaml", text, &ValidateOptions::default())
}

fn with_env(text: &str, vars: &[(&str, &str)]) -> Validated {
    let env: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let opts = ValidateOptions {
        resolve_env: true,
        env: Arc::new(env),
        ..ValidateOptions::default()
    };
    validate_str("p.yaml", text, &opts)
}

/// `(line, column, severity, message)` of every diagnostic.
fn summary(v: &Validated) -> Vec<(usize, usize, Severity, String)> {
    v.diagnostics
        .iter()
        .map(|d| (d.line, d.column, d.severity, d.message.clone()))
        .collect()
}

fn pipeline(transforms: &str) -> String {
    format!(
        "name: p\nsource: {{ plugin: jsonl, path: in.jsonl }}\ntransforms:\n{transforms}sink: {{ plugin: jsonl, path: out.jsonl }}\n"
    )
}

fn azure(extra: &str) -> String {
    format!(
        "  - plugin: azure_llm\n    options:\n      deployment_name: gpt-4o\n      endpoint: ${{AZURE_OPENAI_ENDPOINT}}\n      api_key: ${{AZURE_OPENAI_KEY}}\n      prompt_template: 'Classify: {{{{ text }}}}'\n{extra}"
    )
}

#[test]
fn a_valid_file_gives_the_typed_config() {
    let v = check(&pipeline(&azure(
        "      tracing:\n        provider: langfuse\n        public_key: ${PK}\n        secret_key: ${SK}\n",
    )));
    assert!(v.diagnostics.is_empty(), "{}", v.render());
    assert_eq!(v.render(), "");
    let config = v.config.unwrap();
    let Some(TracingConfig::Langfuse(l)) = config.transforms[0].tracing() else {
        panic!("langfuse expected")
    };
    assert_eq!(l.host.raw(), "https://cloud.langfuse.com");
    assert_eq!(l.secret_key.as_ref().unwrap().expose_raw(), "${SK}");
}

#[test]
fn plan_rules_for_tracing_blocks() {
    // absent → no tracing; {} → none; provider defaults to none
    for (block, want) in [
        ("", None),
        ("      tracing: {}\n", Some(TracingConfig::None)),
    ] {
        let v = check(&pipeline(&azure(block)));
        assert!(v.diagnostics.is_empty(), "{}", v.render());
        assert_eq!(v.config.unwrap().transforms[0].tracing(), want.as_ref());
    }
    // Exact messages, one per missing key, at the `provider:` entry.
    let v = check(&pipeline(&azure(
        "      tracing:\n        provider: azure_ai\n",
    )));
    assert_eq!(
        summary(&v),
        [(
            11,
            9,
            Severity::Error,
            MISSING_CONNECTION_STRING.to_string()
        )]
    );
    assert_eq!(v.diagnostics[0].end_column, 27);
    let v = check(&pipeline(&azure("      tracing: { provider: langfuse }\n")));
    assert_eq!(
        summary(&v),
        [
            (10, 18, Severity::Error, MISSING_PUBLIC_KEY.to_string()),
            (10, 18, Severity::Error, MISSING_SECRET_KEY.to_string()),
        ]
    );
    // Present but empty keys: the same messages, once each.
    let v = check(&pipeline(&azure(
        "      tracing:\n        provider: langfuse\n        public_key:\n        secret_key: ~\n",
    )));
    assert_eq!(
        summary(&v),
        [
            (11, 9, Severity::Error, MISSING_PUBLIC_KEY.to_string()),
            (11, 9, Severity::Error, MISSING_SECRET_KEY.to_string()),
        ]
    );
}

#[test]
fn one_bad_transform_does_not_hide_the_others() {
    let text = pipeline(&format!(
        "{}{}{}",
        azure("      temperature: hot\n"),
        azure(
            "      tracing: { provider: langfuse, public_key: '${P}', secret_key: '${S}', host: 'langfuse.local' }\n"
        ),
        azure("      prompt_template: 'x'\n")
            .replace("      prompt_template: 'Classify: {{ text }}'\n", ""),
    ));
    let v = check(&text);
    let messages: Vec<String> = v.diagnostics.iter().map(|d| d.message.clone()).collect();
    assert_eq!(
        messages,
        [
            "invalid type for `temperature`: expected a number, found string `hot`",
            "`host` must be an http(s) URL: it does not start with `https://` or `http://`",
            "transforms 2 and 3 both write the row field `llm_response`; the later one overwrites it",
            "`prompt_template` uses no row field, so every row gets the same prompt",
        ],
        "{}",
        v.render()
    );
    assert!(v.config.is_none());
}

#[test]
fn warnings_keep_the_file_valid_and_secrets_out_of_the_output() {
    let text = pipeline(&azure(
        "      tracing:\n        provider: langfuse\n        public_key: pk-lf-public\n        secret_key: sk-lf-0123456789\n",
    ))
    .replace("${AZURE_OPENAI_KEY}", "abcdef0123456789");
    let v = check(&text);
    assert!(!v.has_errors());
    assert!(v.config.is_some());
    assert_eq!(
        summary(&v),
        [
            (
                8,
                16,
                Severity::Warning,
                "`api_key` holds a literal secret; use ${AZURE_OPENAI_KEY}".to_string()
            ),
            (
                13,
                21,
                Severity::Warning,
                "`secret_key` holds a literal secret; use ${LANGFUSE_SECRET_KEY}".to_string()
            ),
        ]
    );
    let rendered = v.render();
    assert!(!rendered.contains("abcdef0123456789"), "{rendered}");
    assert!(!rendered.contains("sk-lf-0123456789"), "{rendered}");
    assert!(rendered.contains("api_key: ****************"), "{rendered}");
    // The public key is not a secret.
    assert!(!rendered.contains("public_key"));
    let json = serde_json::to_string(&v.diagnostics).unwrap();
    assert!(!json.contains("abcdef0123456789") && !json.contains("sk-lf-0123456789"));
    // Debug of the typed config hides literal secrets too.
    let debug = format!("{:?}", v.config.unwrap());
    assert!(!debug.contains("abcdef0123456789") && !debug.contains("sk-lf-0123456789"));
}

#[test]
fn a_secret_of_the_wrong_type_is_not_quoted() {
    let v = check(&pipeline(&azure("")).replace("${AZURE_OPENAI_KEY}", "1234567890123"));
    assert_eq!(
        v.diagnostics[0].message,
        "invalid type for `api_key`: expected a string, found an integer"
    );
    let rendered = v.render();
    assert!(!rendered.contains("1234567890123"), "{rendered}");
    assert!(rendered.contains("api_key: *************"), "{rendered}");
    // Under an unknown plugin the schema says nothing, but secret-looking
    // keys are masked anyway.
    let v = check(
        &pipeline(&azure(""))
            .replace("azure_llm", "azure_lm")
            .replace("${AZURE_OPENAI_KEY}", "sk-abc123"),
    );
    assert!(!v.render().contains("sk-abc123"));
}

#[test]
fn resolve_env_reports_every_missing_variable_by_name() {
    let text = pipeline(&azure(
        "      tracing:\n        provider: langfuse\n        public_key: ${LANGFUSE_PUBLIC_KEY}\n        secret_key: ${LANGFUSE_SECRET_KEY}\n        host: ${LANGFUSE_HOST:-https://cloud.langfuse.com}\n",
    ));
    // Validation alone accepts unset variables.
    assert!(check(&text).diagnostics.is_empty());
    let v = with_env(&text, &[("LANGFUSE_PUBLIC_KEY", "pk")]);
    assert_eq!(
        summary(&v),
        [
            (
                7,
                17,
                Severity::Error,
                "environment variable `AZURE_OPENAI_ENDPOINT` is not set".to_string()
            ),
            (
                8,
                16,
                Severity::Error,
                "environment variable `AZURE_OPENAI_KEY` is not set".to_string()
            ),
            // Tracing degrades at run time (a warning, then no tracing):
            // a missing tracing secret does not make the file invalid.
            (
                13,
                21,
                Severity::Warning,
                "environment variable `LANGFUSE_SECRET_KEY` is not set; transforms[0] will run untraced"
                    .to_string()
            ),
        ]
    );
    assert_eq!(v.diagnostics[0].notes, ["`endpoint` refers to it"]);
    // Resolved values are checked but never shown.
    let v = with_env(
        &text,
        &[
            ("AZURE_OPENAI_ENDPOINT", "contoso-secret.openai.azure.com"),
            ("AZURE_OPENAI_KEY", "k"),
            ("LANGFUSE_PUBLIC_KEY", "pk"),
            ("LANGFUSE_SECRET_KEY", "sk"),
            ("LANGFUSE_HOST", "ftp://files"),
        ],
    );
    assert_eq!(
        summary(&v),
        [
            (7, 17, Severity::Error, "`endpoint` does not resolve to an http(s) URL: it does not start with `https://` or `http://`".to_string()),
            (14, 15, Severity::Error, "`host` does not resolve to an http(s) URL: its scheme is not `http` or `https`".to_string()),
        ]
    );
    let all = v.render();
    assert!(
        !all.contains("contoso-secret") && !all.contains("ftp://files"),
        "{all}"
    );
}

#[test]
fn env_reference_syntax_is_checked_only_where_references_expand() {
    let text = pipeline(&azure("").replace(
        "'Classify: {{ text }}'",
        "'Costs ${{ price }} and ${NOT_EXPANDED}'",
    ))
    .replace("deployment_name: gpt-4o", "deployment_name: ${DEPLOYMENT}")
    .replace("${AZURE_OPENAI_KEY}", "${AZURE OPENAI KEY}");
    let v = check(&text);
    assert_eq!(
        summary(&v),
        [
            (
                6,
                24,
                Severity::Warning,
                "`deployment_name` does not expand `${DEPLOYMENT}`; the text is used as written"
                    .to_string()
            ),
            (
                8,
                16,
                Severity::Error,
                "invalid environment variable name `AZURE OPENAI KEY` in `api_key`".to_string()
            ),
        ],
        "{}",
        v.render()
    );
}

#[test]
fn prompt_templates_are_parsed_and_checked() {
    let with_template = |t: &str| check(&pipeline(&azure("").replace("'Classify: {{ text }}'", t)));
    let v = with_template("'Hi {{ user.name }}'");
    assert_eq!(
        v.diagnostics[0].message,
        "`user.name` is not a plain field name in `prompt_template`"
    );
    assert_eq!((v.diagnostics[0].line, v.diagnostics[0].column), (9, 28));
    let v = with_template("\"{{#if urgent}}URGENT {{/if}}{{{ text }}} {{! note }}\"");
    assert!(v.diagnostics.is_empty(), "{}", v.render());
    let v = with_template("'{{> header}} {{ text }}'");
    assert_eq!(
        v.diagnostics[0].message,
        "partials (`{{> name}}`) are not supported in `prompt_template`"
    );
    // A block scalar: the location is inside the block.
    let v = check(&pipeline(&azure("").replace(
        "prompt_template: 'Classify: {{ text }}'",
        "prompt_template: |\n        Line one {{ text }}\n        Line two {{ ../up }}",
    )));
    assert_eq!(
        v.diagnostics[0].message,
        "`../up` is not a plain field name in `prompt_template`"
    );
    assert_eq!((v.diagnostics[0].line, v.diagnostics[0].column), (11, 18));
}

#[test]
fn multi_query_rules() {
    let mq = |template: &str, queries: &str| {
        check(&pipeline(&format!(
            "  - plugin: openrouter_multi_query_llm\n    options:\n      model: m\n      api_key: ${{K}}\n      prompt_template: \"{template}\"\n      queries:\n{queries}"
        )))
    };
    let dims = "        criterion:\n          - { name: accuracy, vars: { rubric: r1 } }\n          - { name: clarity }\n";
    let v = mq(
        "{{ text }} {{ criterion.name }} {{ criterion.rubric }} {{ criterion }} {{ critrion.name }}",
        dims,
    );
    let messages: Vec<_> = v.diagnostics.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "`criterion.rubric` is not set on every `criterion` item (missing on `clarity`)",
            "`{{ criterion }}` is a query dimension, not a field",
            "`critrion.name` is not a plain field name in `prompt_template`",
        ]
    );
    assert_eq!(
        v.diagnostics[2].help.as_deref(),
        Some("did you mean the query dimension `criterion`?")
    );
    let v = mq(
        "{{ text }}",
        "        criterion: []\n        case-study:\n          - { name: a, vars: { name: x } }\n",
    );
    let messages: Vec<_> = v.diagnostics.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "query dimension `criterion` has no items",
            "query dimension `case-study` must be letters, digits and `_`, not starting with a digit",
            "`name` is reserved in `vars`",
        ]
    );
    // Too many combinations.
    let items: String = (0..40)
        .map(|i| format!("          - {{ name: i{i} }}\n"))
        .collect();
    let v = mq(
        "{{ text }}",
        &format!("        a:\n{items}        b:\n{items}"),
    );
    assert_eq!(
        v.diagnostics[0].message,
        "`queries` expands to 1600 combinations; at most 1000 are allowed"
    );
    // Joined names that collide.
    let v = mq(
        "{{ text }}",
        "        a:\n          - { name: x_y }\n          - { name: x }\n        b:\n          - { name: z }\n          - { name: y_z }\n",
    );
    assert_eq!(
        v.diagnostics[0].message,
        "two query combinations are both named `x_y_z`"
    );
}

#[test]
fn cross_transform_and_pipeline_rules() {
    let two = pipeline(&format!(
        "{}{}",
        azure("      tracing: { provider: azure_ai, connection_string: '${CS_A}' }\n"),
        azure("      tracing: { provider: azure_ai, connection_string: '${CS_B}' }\n"),
    ));
    let v = check(&two);
    assert!(!v.has_errors());
    let messages: Vec<_> = v.diagnostics.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "transforms 1 and 2 both write the row field `llm_response`; the later one overwrites it",
            "this azure_ai connection string differs from the one of transforms[0]; Application Insights is process-wide, so the first one wins",
        ]
    );
    let v = check(&pipeline(&azure("")).replace("path: out.jsonl", "path: ./in.jsonl"));
    assert_eq!(
        v.diagnostics[0].message,
        "the sink writes to the file the source reads"
    );
    let v = check(&pipeline(&azure("      output_fields: [a]\n")));
    assert_eq!(
        v.diagnostics[0].message,
        "`output_fields` only applies to `response_format: json`"
    );
    let v = check(&pipeline(&azure("")).replace("sink:", "telemetry: { enabled: true }\nsink:"));
    assert_eq!(summary(&v)[0].2, Severity::Warning);
    let v = check(&pipeline(&azure("")).replace(
        "sink: { plugin: jsonl, path: out.jsonl }",
        "sink: { plugin: csv, path: out.csv, delimiter: 'é', columns: [a, a] }",
    ));
    let messages: Vec<_> = v.diagnostics.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "`delimiter` must be one ASCII character other than a quote or a line break, found `é`",
            "column `a` is listed twice",
        ]
    );
}

#[test]
fn a_problem_is_reported_once() {
    // The environment breaks the schema's pattern and the semantic rule:
    // one diagnostic.
    let v = check(&pipeline(&azure(
        "      tracing: { provider: langfuse, public_key: '${P}', secret_key: '${S}', environment: langfuse-prod }\n",
    )));
    assert_eq!(
        summary(&v),
        [(
            10,
            91,
            Severity::Error,
            "Langfuse `environment` must not start with `langfuse` (reserved by Langfuse)"
                .to_string()
        )]
    );
    // An unknown provider is one error, not one per branch.
    let v = check(&pipeline(&azure(
        "      tracing: { provider: langfus, hots: x }\n",
    )));
    assert_eq!(summary(&v).len(), 1, "{}", v.render());
    assert_eq!(
        v.diagnostics[0].help.as_deref(),
        Some("did you mean `langfuse`?")
    );
}

#[test]
fn diagnostics_are_in_file_order_and_render_rustc_style() {
    let v =
        check(&pipeline(&azure("      pool_size: 0\n")).replace("name: p", "name: p\nextra: 1"));
    let lines: Vec<usize> = v.diagnostics.iter().map(|d| d.line).collect();
    assert_eq!(lines, [2, 11]);
    let rendered = v.render();
    assert!(rendered.starts_with("error: unknown field `extra` in the pipeline\n --> p.yaml:2:1\n  |\n2 | extra: 1\n  | ^^^^^\n"), "{rendered}");
    assert!(rendered.contains(
        "\n\nerror: `pool_size` must be between 1 and 1000, found 0\n  --> p.yaml:11:18\n"
    ));
}

/// A literal secret (or a URL's credentials) is masked in the snippet even
/// when the error on its line is not about it, or the file does not parse.
#[test]
fn secrets_are_masked_whatever_else_is_wrong_on_their_line() {
    let head = "name: p\nsource: {plugin: jsonl, path: in.jsonl}\ntransforms:\n  - plugin: openrouter_llm\n    options:\n      model: m\n";
    let tail = "      prompt_template: \"x {{ text }}\"\nsink: {plugin: jsonl, path: out.jsonl}\n";
    let cases = [
        // The second of two duplicate keys is not in the tree.
        "      api_key: sk-live-first1\n      api_key: sk-live-second2\n",
        // An unclosed quote: the file does not parse at all.
        "      api_key: \"sk-live-unclosed3\n",
        // A wrong type beside the secret, in a flow mapping.
        "      call: {api_key: sk-live-flow4, pool_size: \"many\"}\n",
        // A password and a SAS-style query in a URL, in a file that does not parse.
        "      base_url: \"https://user:hunter2@proxy.example/v1?sig=s3cr3t\n",
    ];
    for case in cases {
        let v = validate_str(
            "p.yaml",
            &format!("{head}{case}{tail}"),
            &ValidateOptions::default(),
        );
        let rendered = v.render();
        assert!(!v.diagnostics.is_empty(), "{case}");
        for secret in ["sk-live", "hunter2", "s3cr3t"] {
            assert!(
                !rendered.contains(secret),
                "{secret} shown for {case}:\n{rendered}"
            );
        }
    }
}

/// `response_format: {json_schema: ...}` option lines with `schema` written
/// as a flow mapping on line 14 of [`pipeline`] + [`azure`].
fn json_schema(schema: &str, extra: &str) -> String {
    format!(
        "      response_format:\n        json_schema:\n          name: ticket\n{extra}          schema: {schema}\n"
    )
}

const STRICT_SCHEMA: &str = "{ type: object, properties: { category: { type: string, enum: [a, b] } }, required: [category], additionalProperties: false }";

#[test]
fn a_json_schema_response_format_reads_into_the_typed_config() {
    let v = check(&pipeline(&azure(&json_schema(STRICT_SCHEMA, ""))));
    assert!(v.diagnostics.is_empty(), "{}", v.render());
    let config = v.config.unwrap();
    let ResponseFormat::JsonSchema(f) = &config.transforms[0].prompt().response_format else {
        panic!("{:?}", config.transforms[0].prompt().response_format);
    };
    assert_eq!(
        (f.name.as_str(), f.strict),
        ("ticket", true),
        "strict by default"
    );
    assert_eq!(f.properties(), ["category"]);
    assert_eq!(
        serde_json::Value::Object(f.schema.clone())["properties"]["category"]["enum"],
        serde_json::json!(["a", "b"])
    );
    // The other two forms still read.
    for (text, expected) in [
        ("text", ResponseFormat::Text),
        ("json", ResponseFormat::Json),
    ] {
        let v = check(&pipeline(&azure(&format!(
            "      response_format: {text}\n"
        ))));
        assert!(v.diagnostics.is_empty(), "{}", v.render());
        assert_eq!(
            v.config.unwrap().transforms[0].prompt().response_format,
            expected
        );
    }
}

#[test]
fn json_schema_problems_are_reported_where_they_are_written() {
    let at = |text: &str, needle: &str| -> (usize, usize) {
        let offset = text.find(needle).unwrap_or_else(|| panic!("{needle}"));
        let line = text[..offset].matches('\n').count() + 1;
        let column = offset - text[..offset].rfind('\n').map_or(0, |i| i + 1) + 1;
        (line, column)
    };
    let first = |v: &Validated| {
        let d = &v.diagnostics[0];
        (d.line, d.column, d.message.clone(), d.help.clone())
    };
    // Not a valid JSON Schema: at the offending value, with a suggestion.
    let text = pipeline(&azure(&json_schema(
        "{ type: object, properties: { category: { type: strin } } }",
        "          strict: false\n",
    )));
    let v = check(&text);
    let (line, column) = at(&text, "strin }");
    assert_eq!(
        first(&v),
        (
            line,
            column,
            "the JSON schema `ticket` is not a valid JSON Schema at /properties/category/type: \"strin\" is not one of `array`, `boolean`, `integer`, `null`, `number`, `object` or `string`".into(),
            Some("did you mean `string`?".into())
        ),
        "{}",
        v.render()
    );
    assert_eq!(v.errors().count(), 1, "{}", v.render());
    // Not an object.
    let text = pipeline(&azure(&json_schema("{ type: string }", "")));
    let v = check(&text);
    let (line, column) = at(&text, "string }");
    assert_eq!(
        (first(&v).0, first(&v).1, v.errors().count()),
        (line, column, 1),
        "{}",
        v.render()
    );
    assert!(
        first(&v).2.contains("must describe an object"),
        "{}",
        v.render()
    );
    // A pattern that does not compile.
    let text = pipeline(&azure(&json_schema(
        "{ type: object, properties: { c: { type: string, pattern: '(' } } }",
        "          strict: false\n",
    )));
    let v = check(&text);
    assert_eq!(v.errors().count(), 1, "{}", v.render());
    assert!(
        first(&v).2.starts_with("the JSON schema `ticket`"),
        "{}",
        v.render()
    );
    // A meta-schema elspeth does not bundle: nothing is fetched.
    let text = pipeline(&azure(&json_schema(
        "{ $schema: 'https://example.com/my-meta', type: object }",
        "          strict: false\n",
    )));
    let v = check(&text);
    let (line, column) = at(&text, "'https://example.com/my-meta'");
    assert_eq!(
        (first(&v).0, first(&v).1, first(&v).2),
        (
            line,
            column,
            "the JSON schema `ticket` names a meta-schema elspeth does not know".into()
        ),
        "{}",
        v.render()
    );
    // Strict mode's rules, only when strict.
    let open =
        "{ type: object, properties: { c: { type: string }, d: { type: string } }, required: [c] }";
    let v = check(&pipeline(&azure(&json_schema(open, ""))));
    let messages: Vec<_> = v.errors().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "with `strict: true`, every object schema needs `additionalProperties: false`",
            "with `strict: true`, every property must be listed in `required`; `d` is not",
        ],
        "{}",
        v.render()
    );
    let v = check(&pipeline(&azure(&json_schema(
        open,
        "          strict: false\n",
    ))));
    assert!(v.diagnostics.is_empty(), "{}", v.render());
    // output_fields must be properties.
    let text = pipeline(&azure(&format!(
        "{}      output_fields: [categroy]\n",
        json_schema(STRICT_SCHEMA, "")
    )));
    let v = check(&text);
    let (line, column) = at(&text, "categroy]");
    assert_eq!(
        first(&v),
        (
            line,
            column,
            "`categroy` is not a property of the JSON schema `ticket`".into(),
            Some("did you mean `category`?".into())
        ),
        "{}",
        v.render()
    );
    // A name the API refuses, a misspelt key.
    let v = check(&pipeline(&azure(
        &json_schema(STRICT_SCHEMA, "").replace("name: ticket", "name: 'my ticket'"),
    )));
    assert!(first(&v).2.contains("name"), "{}", v.render());
    let v = check(&pipeline(&azure(&json_schema(
        STRICT_SCHEMA,
        "          strct: true\n",
    ))));
    assert_eq!(
        first(&v).3.as_deref(),
        Some("did you mean `strict`?"),
        "{}",
        v.render()
    );
}

#[test]
fn azure_json_schema_needs_a_recent_api_version() {
    for (version, ok) in [
        ("2024-06-01", false),
        ("2024-07-01-preview", false),
        ("2024-08-01-preview", true),
        ("2024-10-21", true),
        ("2025-01-01-preview", true),
    ] {
        let text = pipeline(&azure(&format!(
            "      api_version: '{version}'\n{}",
            json_schema(STRICT_SCHEMA, "")
        )));
        let v = check(&text);
        assert_eq!(!v.has_errors(), ok, "{version}: {}", v.render());
        if !ok {
            assert_eq!(
                (v.diagnostics[0].line, v.diagnostics[0].column),
                (10, 20),
                "{}",
                v.render()
            );
            assert_eq!(
                v.diagnostics[0].message,
                format!(
                    "Azure OpenAI api_version `{version}` does not support `response_format: json_schema` (structured outputs need 2024-08-01-preview or later)"
                )
            );
        }
    }
    // OpenRouter has no api_version; `json` needs none.
    let text = pipeline(&azure(
        "      api_version: '2024-06-01'\n      response_format: json\n",
    ));
    assert!(!check(&text).has_errors());
}
