//! 2,000 rows through `azure_llm` against the Azure OpenAI mock answering
//! after 20 ms, `pool_size: 50`, measured in one run:
//!
//! - throughput as a fraction of the ideal (rows × latency / pool_size);
//! - tracing on (Langfuse, then Azure AI / Application Insights, each to
//!   its mock) as a fraction of tracing off.
//!
//! Each configuration runs several times, interleaved; the median counts.
//! `cargo bench -p elspeth-runtime --bench throughput`
//!
//! It also prints the `figure` lines of `benches/support/figure.rs`
//! (`runtime.throughput_untraced`, `runtime.throughput_langfuse`,
//! `runtime.throughput_azure_ai`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use elspeth_mock::appinsights::AppInsightsMock;
use elspeth_mock::azure::AzureMock;
use elspeth_mock::langfuse::LangfuseMock;
use elspeth_runtime::pipeline::{Pipeline, RunOptions};
use elspeth_schema::config::PipelineConfig;
use serde_json::{Value, json};

#[path = "../../benches/support/figure.rs"]
mod figure;

const ROWS: usize = 2_000;
const LATENCY: Duration = Duration::from_millis(20);
const POOL: usize = 50;
const ROUNDS: usize = 5;

fn config(tracing: Option<Value>) -> PipelineConfig {
    let mut options = json!({
        "deployment_name": "gpt-4o-mini",
        "endpoint": "${AZURE_OPENAI_ENDPOINT}",
        "api_key": "${AZURE_OPENAI_KEY}",
        "prompt_template": "Classify this ticket: {{ subject }} / {{ body }}",
        "pool_size": POOL,
        "max_retries": 0,
    });
    if let Some(t) = tracing {
        options["tracing"] = t;
    }
    serde_json::from_value(json!({
        "name": "bench",
        "source": {"plugin": "jsonl", "path": "in.jsonl"},
        "transforms": [{"plugin": "azure_llm", "options": options}],
        "sink": {"plugin": "jsonl", "path": "out.jsonl"},
    }))
    .expect("bench config")
}

fn write_rows(dir: &Path) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(dir.join("in.jsonl")).unwrap());
    for i in 0..ROWS {
        let body = if i % 3 == 0 {
            "I was charged twice, please refund"
        } else {
            "the app crashes when I save"
        };
        writeln!(
            f,
            "{}",
            json!({"id": i, "subject": format!("ticket {i}"), "body": body})
        )
        .unwrap();
    }
}

async fn run(
    dir: &PathBuf,
    config: PipelineConfig,
    env: &Arc<std::collections::HashMap<String, String>>,
) -> Duration {
    let started = Instant::now();
    let summary = Pipeline::new(config, dir)
        .run(RunOptions::default().with_env(env.clone()))
        .await
        .expect("run");
    let elapsed = started.elapsed();
    assert_eq!(summary.rows_ok as usize, ROWS, "every row succeeded");
    for e in &summary.exporters {
        assert_eq!(
            e.sent as usize,
            2 * ROWS,
            "every span reached {}",
            e.exporter
        );
    }
    elapsed
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = std::env::temp_dir().join(format!("elspeth-bench-throughput-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write_rows(&dir);

        let azure = AzureMock::new("bench-key");
        azure.chat_faults().set_latency(LATENCY);
        let azure_server = azure.start(0).await.unwrap();
        let langfuse = LangfuseMock::new("pk-lf-bench", "sk-lf-bench");
        let langfuse_server = langfuse.start(0).await.unwrap();
        let appinsights = AppInsightsMock::new("00000000-0000-4000-8000-000000000001");
        let appinsights_server = appinsights.start(0).await.unwrap();

        let env: Arc<std::collections::HashMap<String, String>> = Arc::new(
            [
                ("AZURE_OPENAI_ENDPOINT".to_string(), azure_server.url()),
                ("AZURE_OPENAI_KEY".to_string(), "bench-key".to_string()),
                ("LANGFUSE_HOST".to_string(), langfuse_server.url()),
                ("APPLICATIONINSIGHTS_CONNECTION_STRING".to_string(), appinsights.connection_string_for(&appinsights_server.url())),
            ]
            .into(),
        );
        let off = || config(None);
        let lf = || config(Some(json!({"provider": "langfuse", "public_key": "pk-lf-bench", "secret_key": "sk-lf-bench", "host": "${LANGFUSE_HOST}"})));
        let ai = || config(Some(json!({"provider": "azure_ai", "connection_string": "${APPLICATIONINSIGHTS_CONNECTION_STRING}"})));

        // Warm-up: connections, allocator, the exporters' first setup.
        run(&dir, off(), &env).await;
        run(&dir, lf(), &env).await;
        run(&dir, ai(), &env).await;

        let (mut t_off, mut t_lf, mut t_ai) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            t_off.push(run(&dir, off(), &env).await);
            t_lf.push(run(&dir, lf(), &env).await);
            t_ai.push(run(&dir, ai(), &env).await);
        }
        let (off_m, lf_m, ai_m) = (median(t_off), median(t_lf), median(t_ai));
        let ideal = LATENCY.as_secs_f64() * ROWS as f64 / POOL as f64;
        let ratio = |d: Duration| ideal / d.as_secs_f64();
        println!("throughput: {ROWS} rows, azure_llm, mock latency {} ms, pool_size {POOL}, median of {ROUNDS}", LATENCY.as_millis());
        println!("  ideal (rows x latency / pool_size): {ideal:.3} s");
        println!("  tracing off:        {:.3} s  {:>7.0} rows/s  {:.1}% of ideal", off_m.as_secs_f64(), ROWS as f64 / off_m.as_secs_f64(), 100.0 * ratio(off_m));
        println!("  tracing langfuse:   {:.3} s  {:>7.0} rows/s  {:.1}% of ideal  {:.1}% of tracing off", lf_m.as_secs_f64(), ROWS as f64 / lf_m.as_secs_f64(), 100.0 * ratio(lf_m), 100.0 * off_m.as_secs_f64() / lf_m.as_secs_f64());
        println!("  tracing azure_ai:   {:.3} s  {:>7.0} rows/s  {:.1}% of ideal  {:.1}% of tracing off", ai_m.as_secs_f64(), ROWS as f64 / ai_m.as_secs_f64(), 100.0 * ratio(ai_m), 100.0 * off_m.as_secs_f64() / ai_m.as_secs_f64());
        let served = azure.chat_latency();
        println!("  mock answered {} calls after {:.2} ms on average (the ideal assumes {} ms)", served.answers, served.mean.as_secs_f64() * 1000.0, LATENCY.as_millis());
        println!("  spans received: langfuse {}, application insights {}", langfuse.span_count(), appinsights.dependencies().len());
        let target = |ok: bool| if ok { "ok" } else { "BELOW TARGET" };
        println!("  targets: off >= 90% of ideal: {}; langfuse >= 97% of off: {}; azure_ai >= 97% of off: {}",
            target(ratio(off_m) >= 0.90),
            target(off_m.as_secs_f64() / lf_m.as_secs_f64() >= 0.97),
            target(off_m.as_secs_f64() / ai_m.as_secs_f64() >= 0.97));
        let what = |tracing: &str| format!("{ROWS} rows through azure_llm, mock latency {} ms, pool_size {POOL}, {tracing}, median of {ROUNDS} interleaved runs", LATENCY.as_millis());
        let secs = |d: Duration| format!("{:.3}", d.as_secs_f64());
        figure::Figure::new("runtime.throughput_untraced", &what("tracing off"), secs(off_m), "s")
            .anchor("ideal (rows × latency / pool_size)", format!("{ideal:.3} s"))
            .ratio(format!("{:.2}%", 100.0 * ratio(off_m)))
            .target("≥ 90% of ideal", ratio(off_m) >= 0.90)
            .print();
        for (id, tracing, traced) in [
            ("runtime.throughput_langfuse", "tracing langfuse (mock)", lf_m),
            ("runtime.throughput_azure_ai", "tracing azure_ai (App Insights mock)", ai_m),
        ] {
            let of_off = off_m.as_secs_f64() / traced.as_secs_f64();
            figure::Figure::new(id, &what(tracing), secs(traced), "s")
                .anchor("untraced run (tracing off, same run)", format!("{} s", secs(off_m)))
                .ratio(format!("{:.2}%", 100.0 * of_off))
                .target("≥ 97% of untraced", of_off >= 0.97)
                .print();
        }
        let _ = std::fs::remove_dir_all(&dir);
    });
}
