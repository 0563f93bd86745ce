//! `validate` knows the top-level `fail_fast` block.

use elspeth_schema::config::FailFastConfig;
use elspeth_schema::{ValidateOptions, validate_str};

fn pipeline(fail_fast: &str) -> String {
    format!(
        "\
name: triage
source: {{ plugin: jsonl, path: in.jsonl }}
transforms:
  - plugin: azure_llm
    options:
      deployment_name: gpt-4o
      endpoint: ${{AZURE_OPENAI_ENDPOINT}}
      api_key: ${{AZURE_OPENAI_KEY}}
      prompt_template: 'Classify: {{{{ text }}}}'
sink: {{ plugin: jsonl, path: out.jsonl }}
{fail_fast}"
    )
}

#[test]
fn a_valid_block_reaches_the_config() {
    let v = validate_str(
        "p.yaml",
        &pipeline("fail_fast: { consecutive_failures: 5, on_auth_error: false }\n"),
        &ValidateOptions::default(),
    );
    let config = v.config.expect("valid");
    assert_eq!(
        config.fail_fast,
        Some(FailFastConfig {
            consecutive_failures: 5,
            on_auth_error: false
        })
    );
    let v = validate_str(
        "p.yaml",
        &pipeline("fail_fast: {}\n"),
        &ValidateOptions::default(),
    );
    assert_eq!(v.config.unwrap().fail_fast, Some(FailFastConfig::default()));
    let v = validate_str("p.yaml", &pipeline(""), &ValidateOptions::default());
    assert_eq!(v.config.unwrap().fail_fast, None);
}

#[test]
fn bad_values_are_located_errors() {
    for (block, expect) in [
        (
            "fail_fast: { consecutive_failures: -1 }\n",
            "consecutive_failures",
        ),
        ("fail_fast: { consecutive: 3 }\n", "consecutive"),
        ("fail_fast: { on_auth_error: maybe }\n", "on_auth_error"),
    ] {
        let v = validate_str("p.yaml", &pipeline(block), &ValidateOptions::default());
        assert!(v.config.is_none(), "{block}");
        let rendered = v.render_with(false);
        assert!(rendered.contains("p.yaml:11:"), "{block}: {rendered}");
        assert!(rendered.contains(expect), "{block}: {rendered}");
    }
}
