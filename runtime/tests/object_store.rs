//! Sources and sinks on object storage, against a real S3 emulator: moto's
//! server, installed and started by `emulators`.
//!
//! One test in this binary: the S3 builder reads its settings from the
//! process environment, which the test sets before anything runs.

mod common;
mod emulators;

use std::sync::Arc;

use elspeth_runtime::Shard;
use elspeth_runtime::pipeline::{Pipeline, RunError, RunOptions};
use elspeth_schema::config::PipelineConfig;
use serde_json::json;

use common::{Mocks, connection, tmpdir};

const BUCKET: &str = "elspeth-test";

fn config(source: &str, sink: &str) -> PipelineConfig {
    let mut o = connection("azure_llm");
    o["prompt_template"] = json!("Classify: {{ text }}");
    o["output_field"] = json!("category");
    serde_json::from_value(json!({
        "name": "objects",
        "source": {"plugin": "jsonl", "path": source, "key": "id"},
        "transforms": [{"plugin": "azure_llm", "options": o}],
        "sink": {"plugin": "jsonl", "path": sink},
    }))
    .unwrap()
}

#[test]
fn s3_sources_and_sinks_through_a_real_emulator() {
    let moto = emulators::moto();
    let endpoint = format!("http://127.0.0.1:{}", moto.port);
    // SAFETY: set before the Tokio runtime (and any other thread) starts;
    // this binary has this one test.
    unsafe {
        std::env::set_var("AWS_ENDPOINT", &endpoint);
        std::env::set_var("AWS_ALLOW_HTTP", "true");
        std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
        std::env::set_var("AWS_DEFAULT_REGION", "us-east-1");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        elspeth_core::http::install_crypto_provider();
        let http = reqwest::Client::new();
        let object = |key: &str| format!("{endpoint}/{BUCKET}/{key}");
        let get = |key: &'static str| {
            let http = http.clone();
            let url = object(key);
            async move { http.get(url).send().await.unwrap().text().await.unwrap() }
        };
        assert!(
            http.put(format!("{endpoint}/{BUCKET}"))
                .send()
                .await
                .unwrap()
                .status()
                .is_success()
        );
        let rows: String = (0..30)
            .map(|i| format!("{}\n", json!({"id": i, "text": format!("ticket {i}")})))
            .collect();
        http.put(object("in/rows.jsonl"))
            .body(rows)
            .send()
            .await
            .unwrap();
        http.put(object("out/rows.jsonl"))
            .body("{\"previous\":true}\n")
            .send()
            .await
            .unwrap();

        let mocks = Mocks::start().await;
        let options = || {
            RunOptions::default()
                .with_env(Arc::new(mocks.env()))
                .with_tracing(elspeth_test_support::discard_tracing())
        };
        let dir = tmpdir("objects");
        let source = format!("s3://{BUCKET}/in/rows.jsonl");
        let sink = format!("s3://{BUCKET}/out/rows.jsonl");
        let summary = Pipeline::new(config(&source, &sink), &dir)
            .run(options())
            .await
            .unwrap();
        assert_eq!(summary.rows_ok, 30);
        let out = get("out/rows.jsonl").await;
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 30, "{out}");
        assert!(lines.iter().all(|r| r["category"].is_string()));
        assert_eq!(lines[7]["id"], 7, "input order");
        assert!(
            std::fs::read_dir(&dir).unwrap().next().is_none(),
            "nothing written locally"
        );

        // A shard of a sharded run writes its own object beside the sink;
        // merge joins them back into the sink object.
        let e = Pipeline::new(config(&source, &sink), &dir)
            .merge(2, None)
            .await
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("shard 0/2 has no output s3://elspeth-test/out/rows.shard-0-of-2.jsonl"),
            "{e}"
        );
        for i in 0..2 {
            Pipeline::new(config(&source, &sink), &dir)
                .with_shard(Some(Shard::new(i, 2).unwrap()))
                .run(options())
                .await
                .unwrap();
        }
        let n = get("out/rows.shard-1-of-2.jsonl").await.lines().count();
        assert!(n > 0 && n < 30, "{n} rows in shard 1 of 2");
        http.delete(object("out/rows.jsonl")).send().await.unwrap();
        let merged = Pipeline::new(config(&source, &sink), &dir)
            .merge(2, None)
            .await
            .unwrap();
        assert_eq!(merged.rows, 30);
        assert_eq!(
            get("out/rows.jsonl").await,
            out,
            "the merged object is the unsharded output"
        );

        // A missing object: an error naming the URL and saying what to
        // check; the sink object is untouched.
        let e = Pipeline::new(
            config(&format!("s3://{BUCKET}/in/missing.jsonl"), &sink),
            &dir,
        )
        .run(options())
        .await
        .unwrap_err();
        assert!(matches!(e, RunError::Remote { .. }), "{e}");
        let text = e.to_string();
        assert!(
            text.starts_with("s3://elspeth-test/in/missing.jsonl: cannot read it"),
            "{text}"
        );
        assert!(
            text.contains("check the bucket or container and the key"),
            "{text}"
        );
        assert!(!text.contains("testing"), "no credential in {text}");
        assert_eq!(get("out/rows.jsonl").await, out);
        let _ = std::fs::remove_dir_all(dir);
    });
}
