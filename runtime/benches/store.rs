//! What the run store costs and what it saves, measured in one run:
//!
//! - throughput with the store (every call paid and committed, a fresh store
//!   each run) as a fraction of the same run without a store: 2,000 rows
//!   through `azure_llm` against the mock answering after 20 ms,
//!   `pool_size: 50` (the throughput bench's set-up);
//! - a fully stored rerun of 100,000 rows (every reply served from the
//!   store, no call made), in rows per second;
//! - the store's size on disk per 100,000 rows (database + WAL).
//!
//! `cargo bench -p elspeth-runtime --bench store` (`--rows N` changes the
//! 100,000). It prints the `figure` lines of `benches/support/figure.rs`
//! (`runtime.throughput_store`, `runtime.stored_rerun`, `runtime.store_size`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use elspeth_mock::azure::AzureMock;
use elspeth_runtime::pipeline::{Pipeline, RunOptions, StoreOptions};
use elspeth_schema::config::PipelineConfig;
use serde_json::json;

#[path = "../../benches/support/figure.rs"]
mod figure;

const ROWS: usize = 2_000;
const LATENCY: Duration = Duration::from_millis(20);
const POOL: usize = 50;
const ROUNDS: usize = 5;
const RERUN_ROWS: usize = 100_000;

type Env = Arc<std::collections::HashMap<String, String>>;

fn config(source: &str) -> PipelineConfig {
    serde_json::from_value(json!({
        "name": "bench",
        "source": {"plugin": "jsonl", "path": source},
        "transforms": [{"plugin": "azure_llm", "options": {
            "deployment_name": "gpt-4o-mini",
            "endpoint": "${AZURE_OPENAI_ENDPOINT}",
            "api_key": "${AZURE_OPENAI_KEY}",
            "prompt_template": "Classify this ticket: {{ subject }} / {{ body }}",
            "pool_size": POOL,
            "max_retries": 0,
        }}],
        "sink": {"plugin": "jsonl", "path": "out.jsonl"},
    }))
    .expect("bench config")
}

fn write_rows(path: &Path, n: usize) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..n {
        writeln!(
            f,
            "{}",
            json!({"id": i, "subject": format!("ticket {i}"), "body": "the app crashes when I save"})
        )
        .unwrap();
    }
}

/// One run; returns its wall time and the calls paid / served from the store.
async fn run(
    dir: &PathBuf,
    source: &str,
    rows: usize,
    env: &Env,
    store: Option<&Path>,
) -> (Duration, u64, u64) {
    let mut options = RunOptions::default().with_env(env.clone());
    if let Some(path) = store {
        options = options.with_store(StoreOptions {
            path: path.to_path_buf(),
            serve: true,
        });
    }
    let started = Instant::now();
    let summary = Pipeline::new(config(source), dir)
        .run(options)
        .await
        .expect("run");
    let elapsed = started.elapsed();
    assert_eq!(summary.rows_ok as usize, rows, "every row succeeded");
    (elapsed, summary.llm_calls, summary.llm_calls_cached)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn size_on_disk(db: &Path) -> u64 {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|ext| std::fs::metadata(format!("{}{ext}", db.display())).ok())
        .map(|m| m.len())
        .sum()
}

fn main() {
    let rerun_rows = std::env::args()
        .skip_while(|a| a != "--rows")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(RERUN_ROWS);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = std::env::temp_dir().join(format!("elspeth-bench-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        write_rows(&dir.join("in.jsonl"), ROWS);
        write_rows(&dir.join("big.jsonl"), rerun_rows);

        let azure = AzureMock::new("bench-key");
        azure.chat_faults().set_latency(LATENCY);
        let server = azure.start(0).await.unwrap();
        let env: Env = Arc::new(
            [
                ("AZURE_OPENAI_ENDPOINT".to_string(), server.url()),
                ("AZURE_OPENAI_KEY".to_string(), "bench-key".to_string()),
            ]
            .into(),
        );

        // Throughput: without a store vs a fresh store each run (all paid).
        let fresh = |k: usize| dir.join(format!("fresh-{k}.db"));
        run(&dir, "in.jsonl", ROWS, &env, None).await; // warm-up
        let (mut t_off, mut t_on) = (Vec::new(), Vec::new());
        for k in 0..ROUNDS {
            t_off.push(run(&dir, "in.jsonl", ROWS, &env, None).await.0);
            let (t, paid, served) = run(&dir, "in.jsonl", ROWS, &env, Some(&fresh(k))).await;
            assert_eq!((paid, served), (ROWS as u64, 0), "a fresh store pays every call");
            t_on.push(t);
        }
        let (off, on) = (median(t_off), median(t_on));
        let of_off = off.as_secs_f64() / on.as_secs_f64();

        // A fully stored rerun: fill once (no latency), then serve it all.
        azure.chat_faults().set_latency(Duration::ZERO);
        let big = dir.join("big.db");
        let (_, paid, _) = run(&dir, "big.jsonl", rerun_rows, &env, Some(&big)).await;
        assert_eq!(paid as usize, rerun_rows);
        let size = size_on_disk(&big);
        let (rerun, paid, served) = run(&dir, "big.jsonl", rerun_rows, &env, Some(&big)).await;
        assert_eq!((paid, served as usize), (0, rerun_rows), "every reply from the store");
        let rate = rerun_rows as f64 / rerun.as_secs_f64();
        let per_100k = size as f64 * 100_000.0 / rerun_rows as f64;

        println!("run store: {ROWS} rows, azure_llm, mock latency {} ms, pool_size {POOL}, median of {ROUNDS}", LATENCY.as_millis());
        println!("  without a store:    {:.3} s", off.as_secs_f64());
        println!("  with a fresh store: {:.3} s  {:.1}% of without", on.as_secs_f64(), 100.0 * of_off);
        println!("  fully stored rerun of {rerun_rows} rows: {:.3} s  {rate:.0} rows/s", rerun.as_secs_f64());
        println!("  store size: {size} bytes for {rerun_rows} rows ({:.1} MB per 100k rows)", per_100k / 1e6);

        let what = format!("{ROWS} rows through azure_llm, mock latency {} ms, pool_size {POOL}, every reply committed to a fresh store, median of {ROUNDS} interleaved runs", LATENCY.as_millis());
        figure::Figure::new("runtime.throughput_store", &what, format!("{:.3}", on.as_secs_f64()), "s")
            .anchor("the same run without a store", format!("{:.3} s", off.as_secs_f64()))
            .ratio(format!("{:.2}%", 100.0 * of_off))
            .target("≥ 97% of without", of_off >= 0.97)
            .print();
        figure::Figure::new(
            "runtime.stored_rerun",
            &format!("a rerun of {rerun_rows} rows whose every reply is in the store (no call made)"),
            format!("{rate:.0}"),
            "rows/s",
        )
        .anchor("target", "20,000 rows/s")
        .ratio(format!("{:.2}×", rate / 20_000.0))
        .target("≥ 20,000 rows/s", rate >= 20_000.0)
        .print();
        figure::Figure::new(
            "runtime.store_size",
            "the run store (database + WAL) per 100,000 one-call rows",
            format!("{:.1}", per_100k / 1e6),
            "MB",
        )
        .anchor("the 100k-row JSONL source", format!("{:.1} MB", std::fs::metadata(dir.join("big.jsonl")).map(|m| m.len()).unwrap_or_default() as f64 * 100_000.0 / rerun_rows as f64 / 1e6))
        .print();
        let _ = std::fs::remove_dir_all(&dir);
    });
}
