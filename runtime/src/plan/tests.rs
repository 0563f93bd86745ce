use super::*;
use elspeth_schema::config::ProcessEnv;

fn azure(options: serde_json::Value) -> TransformConfig {
    let mut o = serde_json::json!({
        "deployment_name": "gpt-4o", "endpoint": "https://res.openai.azure.com",
        "api_key": "${AZURE_OPENAI_KEY}", "prompt_template": "Classify: {{ text }}"
    });
    o.as_object_mut()
        .unwrap()
        .extend(options.as_object().unwrap().clone());
    serde_json::from_value(serde_json::json!({"plugin": "azure_llm", "options": o})).unwrap()
}

#[test]
fn what_is_asked_changes_it_and_how_it_runs_does_not() {
    let base = fingerprint(&azure(serde_json::json!({})), &ProcessEnv);
    for same in [
        serde_json::json!({"pool_size": 3}),
        serde_json::json!({"api_key": "${OTHER_KEY}"}),
        serde_json::json!({"max_retries": 9}),
    ] {
        assert_eq!(
            fingerprint(&azure(same.clone()), &ProcessEnv),
            base,
            "{same}"
        );
    }
    for different in [
        serde_json::json!({"deployment_name": "gpt-4.1"}),
        serde_json::json!({"endpoint": "https://other.openai.azure.com"}),
        serde_json::json!({"api_version": "2025-01-01-preview"}),
        serde_json::json!({"temperature": 0.5}),
    ] {
        assert_ne!(
            fingerprint(&azure(different.clone()), &ProcessEnv),
            base,
            "{different}"
        );
    }
}

#[test]
fn only_a_loopback_port_is_dropped() {
    assert_eq!(
        without_loopback_port("http://127.0.0.1:41234/openai"),
        "http://127.0.0.1/openai"
    );
    assert_eq!(
        without_loopback_port("http://localhost:8"),
        "http://localhost"
    );
    assert_eq!(
        without_loopback_port("https://res.openai.azure.com:443/x"),
        "https://res.openai.azure.com:443/x"
    );
    assert_eq!(without_loopback_port("not a url"), "not a url");
}

fn pipeline(transforms: serde_json::Value) -> PipelineConfig {
    serde_json::from_value(serde_json::json!({
        "name": "p",
        "source": {"plugin": "jsonl", "path": "in.jsonl"},
        "transforms": transforms,
        "sink": {"plugin": "jsonl", "path": "out/out.jsonl", "error_path": "bad.jsonl"}
    }))
    .unwrap()
}

fn env(vars: &[(&str, &str)]) -> std::collections::HashMap<String, String> {
    vars.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn every_problem_at_once() {
    let config = pipeline(serde_json::json!([
        {"plugin": "azure_llm", "options": {
            "deployment_name": "gpt-4o", "endpoint": "${AZ_ENDPOINT}",
            "api_key": "${AZ_KEY}", "prompt_template": "{{#if text}}"}},
        {"plugin": "openrouter_llm", "options": {
            "model": "m", "api_key": "${OR_KEY}", "prompt_template": "x {{ text }}"}},
        {"plugin": "azure_multi_query_llm", "options": {
            "deployment_name": "gpt-4o", "endpoint": "https://r.openai.azure.com",
            "api_key": "${AZ_KEY}", "prompt_template": "x {{ text }}",
            "queries": {"c": []}}}
    ]));
    let e = Plan::resolve(&config, Path::new("base"), &env(&[])).unwrap_err();
    let shown: Vec<String> = e.problems.iter().map(ToString::to_string).collect();
    assert_eq!(shown.len(), 6, "{shown:#?}");
    assert!(shown[0].starts_with(
        "transforms[0] (azure_llm): endpoint: environment variable `AZ_ENDPOINT` is not set"
    ));
    assert!(shown[1].starts_with(
        "transforms[0] (azure_llm): api_key: environment variable `AZ_KEY` is not set"
    ));
    assert!(shown[2].starts_with(
        "transforms[0] (azure_llm): prompt_template is not a valid Handlebars template"
    ));
    assert!(
        shown[3]
            .starts_with("transforms[1] (openrouter_llm): api_key: environment variable `OR_KEY`")
    );
    assert!(shown[4].starts_with("transforms[2] (azure_multi_query_llm): api_key:"));
    assert!(shown[5].starts_with("transforms[2] (azure_multi_query_llm): "));
    assert!(!e.problems[5].is_env());
    // The display lists them all, each on its own line(s).
    assert_eq!(e.to_string(), shown.join("\n"));
    // A template or matrix problem leaves no draft to describe.
    assert!(e.draft().is_none());
}

#[test]
fn a_plan_of_resolved_specs() {
    let config = pipeline(serde_json::json!([
        {"plugin": "azure_batch_llm", "options": {
            "deployment_name": "gpt-4o", "endpoint": "${AZ_ENDPOINT}",
            "api_key": "${AZ_KEY}", "prompt_template": "x {{ text }}", "batch_size": 7}},
        {"plugin": "openrouter_batch_llm", "options": {
            "model": "m", "api_key": "${OR_KEY}", "prompt_template": "x {{ text }}",
            "batch_size": 3, "pool_size": 2}},
        {"plugin": "openrouter_multi_query_llm", "options": {
            "model": "m", "api_key": "${OR_KEY}", "prompt_template": "{{ text }} {{ c.name }}",
            "queries": {"c": [{"name": "a"}, {"name": "b"}]}}}
    ]));
    let vars = env(&[
        ("AZ_ENDPOINT", "https://r.openai.azure.com"),
        ("AZ_KEY", "az-secret"),
        ("OR_KEY", "or-secret"),
    ]);
    let plan = Plan::resolve(&config, Path::new("base"), &vars).unwrap();
    assert_eq!(plan.source, Path::new("base/in.jsonl"));
    assert_eq!(plan.sink, Path::new("base/out/out.jsonl"));
    assert_eq!(plan.errors.as_deref(), Some(Path::new("base/bad.jsonl")));
    let [batch, chunked, multi] = &plan.transforms[..] else {
        panic!("three specs")
    };
    assert_eq!(batch.mode, Mode::Job { batch_size: 7 });
    assert_eq!(batch.service, Service::AzureOpenAiBatch);
    assert_eq!(batch.target.url(), "https://r.openai.azure.com");
    let Target::Azure(t) = &batch.target else {
        panic!("azure")
    };
    assert_eq!(
        secrecy::ExposeSecret::expose_secret(&t.api_key),
        "az-secret"
    );
    assert_eq!(chunked.mode, Mode::Chunked { rows: 3 });
    assert_eq!(chunked.concurrency(), 2);
    assert_eq!(multi.mode, Mode::PerCall);
    assert_eq!(multi.calls_per_row(), 2);
    assert_eq!(multi.fingerprint, fingerprint(&config.transforms[2], &vars));
    // No secret in the plan's Debug or Display.
    let shown = format!("{plan:?}{plan}");
    assert!(!shown.contains("az-secret") && !shown.contains("or-secret"));
    assert!(plan.to_string().contains(
        "transforms[0] (azure_batch_llm): Azure OpenAI Batch API `gpt-4o` at https://r.openai.azure.com"
    ), "{plan}");
    // Each spec builds its transform.
    let built: Vec<_> = plan
        .transforms
        .into_iter()
        .map(TransformSpec::build)
        .collect();
    assert_eq!(built[0].batch_size(), Some(7));
    assert_eq!(built[1].plugin(), "openrouter_batch_llm");
    assert_eq!(built[1].concurrency(), 2);
}

#[test]
fn unresolved_references_leave_a_draft() {
    let config = pipeline(serde_json::json!([
        {"plugin": "openrouter_llm", "options": {
            "model": "m", "api_key": "${OR_KEY}", "prompt_template": "x {{ text }}",
            "tracing": {"provider": "langfuse", "public_key": "${PK}", "secret_key": "${SK}"}}}
    ]));
    let e = Plan::resolve(&config, Path::new("."), &env(&[("PK", "pk")])).unwrap_err();
    assert_eq!(e.problems.len(), 1);
    let draft = e.draft().expect("only references failed");
    let mut row = Row::new();
    row.insert("text".into(), "hi".into());
    let d = draft.describe(Some(&row));
    assert_eq!(d.transforms[0].sample_prompt.as_deref(), Some("x hi"));
    assert_eq!(
        d.transforms[0].target.as_deref(),
        Some("https://openrouter.ai/api/v1")
    );
    assert!(d.transforms[0].tracing.starts_with("langfuse"));
    assert!(
        d.warnings[0].contains("tracing.secret_key: environment variable `SK` is not set"),
        "{:?}",
        d.warnings
    );
}

#[test]
fn resolution_errors_name_the_field_and_variable_only() {
    let config: TransformConfig = serde_json::from_value(serde_json::json!({
        "plugin": "azure_llm",
        "options": {"deployment_name": "gpt-4o", "endpoint": "${AZURE_OPENAI_ENDPOINT}",
                    "api_key": "${AZURE_OPENAI_KEY}", "prompt_template": "x"}
    }))
    .unwrap();
    let e = TransformSpec::resolve(
        &config,
        2,
        &env(&[("AZURE_OPENAI_ENDPOINT", "http://127.0.0.1:1")]),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "transforms[2] (azure_llm): api_key: environment variable `AZURE_OPENAI_KEY` is not set (set it (`export AZURE_OPENAI_KEY=...`) or give a default: `${AZURE_OPENAI_KEY:-default}`)"
    );
}

#[test]
fn the_description_masks_credentials_in_urls() {
    // Resolved values can carry credentials: a SAS-style query on the
    // endpoint, a password in the Langfuse host.
    let config = pipeline(serde_json::json!([
        {"plugin": "azure_llm", "options": {
            "deployment_name": "gpt-4o", "endpoint": "${AZ_ENDPOINT}",
            "api_key": "${AZ_KEY}", "prompt_template": "x {{ text }}",
            "tracing": {"provider": "langfuse", "host": "${LF_HOST}",
                        "public_key": "pk", "secret_key": "${SK}"}}}
    ]));
    let vars = env(&[
        (
            "AZ_ENDPOINT",
            "https://proxy:hunter2@r.openai.azure.com/?sig=s3cr3t",
        ),
        ("AZ_KEY", "k"),
        ("LF_HOST", "https://lf-user:lf-pass@langfuse.example"),
        ("SK", "sk"),
    ]);
    let plan = Plan::resolve(&config, Path::new("."), &vars).unwrap();
    let d = plan.describe(None);
    let shown = format!("{plan}{d:?}");
    for secret in ["hunter2", "s3cr3t", "lf-pass"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert_eq!(
        d.transforms[0].target.as_deref(),
        Some("https://proxy:***@r.openai.azure.com/?sig=***")
    );
    assert_eq!(
        d.transforms[0].tracing,
        "langfuse (https://lf-user:***@langfuse.example)"
    );
}
