//! 100,000 rows through `azure_llm` against the Azure OpenAI mock (in the
//! same process), `pool_size: 50`: peak RSS of the whole process (runner,
//! HTTP client, mock server) stays bounded because rows stream through
//! bounded channels.
//!
//! `cargo bench -p elspeth-runtime --bench memory` (Linux: reads VmHWM);
//! `-- --traced` adds Langfuse tracing to a local OTLP endpoint.
//!
//! It also prints the `figure` line of `benches/support/figure.rs`
//! (`runtime.memory`, or `runtime.memory_traced` with `--traced`).

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use elspeth_mock::azure::AzureMock;
use elspeth_runtime::pipeline::{Pipeline, RunOptions};
use serde_json::json;

#[path = "../../benches/support/figure.rs"]
mod figure;

const ROWS: usize = 100_000;

fn status_kb(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let traced = std::env::args().any(|a| a == "--traced");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = std::env::temp_dir().join(format!("elspeth-bench-memory-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        {
            let mut f = std::io::BufWriter::new(std::fs::File::create(dir.join("in.jsonl")).unwrap());
            for i in 0..ROWS {
                writeln!(f, "{}", json!({"id": i, "subject": format!("ticket {i}"), "body": "the app crashes when I save; please help, I cannot work"})).unwrap();
            }
        }
        let input_mb = std::fs::metadata(dir.join("in.jsonl")).unwrap().len() as f64 / 1e6;
        let azure = AzureMock::new("bench-key");
        let server = azure.start(0).await.unwrap();
        // With --traced, spans go to an OTLP endpoint that counts and
        // discards them (the Langfuse mock keeps every span it decodes, which
        // would measure the mock, not the pipeline).
        let received = Arc::new(AtomicU64::new(0));
        let counter = received.clone();
        let sink = axum::Router::new().route(
            "/api/public/otel/v1/traces",
            axum::routing::post(move |body: axum::body::Bytes| {
                let counter = counter.clone();
                async move {
                    counter.fetch_add(body.len() as u64, Ordering::Relaxed);
                    ([("content-type", "application/x-protobuf")], Vec::<u8>::new())
                }
            }),
        );
        let langfuse_server = elspeth_mock::MockServer::start(sink, 0).await.unwrap();
        let mut options = json!({
            "deployment_name": "gpt-4o-mini", "endpoint": "${AZURE_OPENAI_ENDPOINT}", "api_key": "${AZURE_OPENAI_KEY}",
            "prompt_template": "Classify this ticket: {{ subject }} / {{ body }}", "pool_size": 50,
        });
        if traced {
            options["tracing"] = json!({"provider": "langfuse", "public_key": "pk", "secret_key": "sk", "host": langfuse_server.url()});
        }
        let config = serde_json::from_value(json!({
            "name": "memory", "source": {"plugin": "jsonl", "path": "in.jsonl"},
            "transforms": [{"plugin": "azure_llm", "options": options}],
            "sink": {"plugin": "jsonl", "path": "out.jsonl"},
        }))
        .unwrap();
        let env: Arc<std::collections::HashMap<String, String>> = Arc::new(
            [
                ("AZURE_OPENAI_ENDPOINT".to_string(), server.url()),
                ("AZURE_OPENAI_KEY".to_string(), "bench-key".to_string()),
            ]
            .into(),
        );
        let before = status_kb("VmHWM:").unwrap_or(0);
        let started = Instant::now();
        let summary = Pipeline::new(config, &dir).run(RunOptions::default().with_env(env)).await.unwrap();
        let elapsed = started.elapsed();
        assert_eq!(summary.rows_ok as usize, ROWS);
        let peak = status_kb("VmHWM:").unwrap_or(0);
        let output_mb = std::fs::metadata(dir.join("out.jsonl")).unwrap().len() as f64 / 1e6;
        println!("memory: {ROWS} rows ({input_mb:.1} MB in, {output_mb:.1} MB out) through azure_llm + mock in-process, tracing {}", if traced { "langfuse" } else { "off" });
        println!("  elapsed {:.1} s ({:.0} rows/s)", elapsed.as_secs_f64(), ROWS as f64 / elapsed.as_secs_f64());
        // VmHWM is in KiB; the target is in MB (10^6 bytes).
        let mb = |kib: u64| kib as f64 * 1024.0 / 1e6;
        let ok = peak * 1024 <= 150_000_000;
        println!("  peak RSS before the run {:.1} MB, after {:.1} MB (target <= 150 MB: {})", mb(before), mb(peak), if ok { "ok" } else { "ABOVE TARGET" });
        let (id, tracing) = if traced { ("runtime.memory_traced", "tracing langfuse (OTLP endpoint that discards)") } else { ("runtime.memory", "tracing off") };
        figure::Figure::new(id, &format!("peak RSS of the whole process (runner, client, mock) over {ROWS} rows through azure_llm, pool_size 50, {tracing}"), format!("{:.1}", mb(peak)), "MB")
            .anchor("peak RSS before the run", format!("{:.1} MB", mb(before)))
            .target("≤ 150 MB", ok)
            .print();
        if traced {
            for e in &summary.exporters {
                println!("  {}: {} spans sent, {} dropped, {} failed", e.exporter, e.sent, e.dropped, e.failed);
            }
            println!("  OTLP bytes received (gzipped protobuf): {:.1} MB", received.load(Ordering::Relaxed) as f64 / 1e6);
        }
        let _ = std::fs::remove_dir_all(&dir);
    });
}
