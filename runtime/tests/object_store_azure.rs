//! Sources and sinks on Azure Blob Storage, against Azurite (npm
//! `azurite`), installed and started by `emulators`; the container is made
//! with Microsoft's Python SDK (`azure-storage-blob`, in the emulators'
//! virtualenv). The store is configured as users configure it for the
//! emulator: `AZURE_STORAGE_USE_EMULATOR=true` (and the emulator's URL).
//!
//! One test in this binary: the Azure builder reads the process
//! environment, which the test sets before anything runs.

mod common;
mod emulators;

use std::process::Command;
use std::sync::Arc;

use elspeth_runtime::pipeline::{Pipeline, RunError, RunOptions};
use elspeth_schema::config::PipelineConfig;
use serde_json::json;

use common::{Mocks, connection, tmpdir};

const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Runs Python `code` (azure-storage-blob) against the emulator at `blob`.
fn python(blob: &str, code: &str) -> String {
    let conn = format!(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={KEY};BlobEndpoint={blob}/devstoreaccount1;"
    );
    let script = format!(
        "from azure.storage.blob import BlobServiceClient\nsvc = BlobServiceClient.from_connection_string({conn:?})\n{code}"
    );
    let out = Command::new(emulators::venv().join("bin/python"))
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn config(source: &str, sink: &str, errors: &str) -> PipelineConfig {
    let mut o = connection("azure_llm");
    o["prompt_template"] = json!("Classify: {{ text }}");
    o["output_field"] = json!("category");
    serde_json::from_value(json!({
        "name": "blobs",
        "source": {"plugin": "jsonl", "path": source},
        "transforms": [{"plugin": "azure_llm", "options": o}],
        "sink": {"plugin": "csv", "path": sink, "error_path": errors},
    }))
    .unwrap()
}

#[test]
fn azure_blob_sources_and_sinks_through_azurite() {
    let data = tmpdir("azurite-data");
    let azurite = emulators::azurite(&data);
    let blob = format!("http://127.0.0.1:{}", azurite.port);
    // SAFETY: set before the Tokio runtime (and any other thread) starts;
    // this binary has this one test.
    unsafe {
        std::env::set_var("AZURE_STORAGE_USE_EMULATOR", "true");
        std::env::set_var("AZURITE_BLOB_STORAGE_URL", &blob);
    }
    let rows: String = (0..25)
        .map(|i| {
            let text = if i == 3 {
                "MOCK_CONTENT_FILTER".to_string()
            } else {
                format!("ticket {i}")
            };
            format!("{}\n", json!({"id": i, "text": text}))
        })
        .collect();
    python(
        &blob,
        &format!(
            "c = svc.create_container('pipeline')\nc.upload_blob('in/rows.jsonl', {rows:?}.encode())"
        ),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mocks = Mocks::start().await;
        let options = || {
            RunOptions::default()
                .with_env(Arc::new(mocks.env()))
                .with_backoff(std::time::Duration::from_millis(1), std::time::Duration::from_millis(5))
                .with_tracing(elspeth_test_support::discard_tracing())
        };
        let dir = tmpdir("azurite-run");
        let summary = Pipeline::new(
            config(
                "az://pipeline/in/rows.jsonl",
                "az://pipeline/out/rows.csv",
                "abfs://pipeline/out/failed.jsonl",
            ),
            &dir,
        )
        .run(options())
        .await
        .unwrap();
        assert_eq!((summary.rows_ok, summary.rows_failed), (24, 1));
        let read = |name: &str| {
            python(
                &blob,
                &format!(
                    "import sys\nsys.stdout.write(svc.get_blob_client('pipeline', {name:?}).download_blob().readall().decode())"
                ),
            )
        };
        let csv = read("out/rows.csv");
        assert_eq!(csv.lines().count(), 25, "header + 24 rows:\n{csv}");
        assert!(csv.lines().next().unwrap().contains("category"), "{csv}");
        let failed = read("out/failed.jsonl");
        assert_eq!(failed.lines().count(), 1, "{failed}");
        assert!(failed.contains("content_filter"), "{failed}");

        // A container that does not exist: the URL and what to check.
        let e = Pipeline::new(
            config("az://nowhere/in/rows.jsonl", "az://pipeline/out/x.csv", "az://pipeline/out/y.jsonl"),
            &dir,
        )
        .run(options())
        .await
        .unwrap_err();
        assert!(matches!(e, RunError::Remote { .. }), "{e}");
        assert!(e.to_string().starts_with("az://nowhere/in/rows.jsonl: cannot read it"), "{e}");
        assert!(!e.to_string().contains(KEY), "no key in {e}");
        let _ = std::fs::remove_dir_all(dir);
    });
    drop(azurite);
    let _ = std::fs::remove_dir_all(data);
}
