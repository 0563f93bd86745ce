//! `--shard i/n` runs and `merge`: shards never overlap, cover every row,
//! are stable across reruns, and merge back into exactly the unsharded
//! output, in input order.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use elspeth_runtime::Shard;
use elspeth_runtime::pipeline::{MergeError, Pipeline, RunOptions};
use elspeth_schema::config::PipelineConfig;
use serde_json::{Value, json};

use common::{Mocks, connection, tmpdir};

const ROWS: u64 = 60;

fn config(sink: Value, key: bool) -> PipelineConfig {
    let mut o = connection("azure_llm");
    o["prompt_template"] = json!("Classify: {{ text }}");
    o["output_field"] = json!("category");
    let mut source = json!({"plugin": "jsonl", "path": "in.jsonl"});
    if key {
        source["key"] = json!("id");
    }
    serde_json::from_value(json!({
        "name": "shards",
        "source": source,
        "transforms": [{"plugin": "azure_llm", "options": o}],
        "sink": sink,
    }))
    .unwrap()
}

fn input(dir: &Path) {
    let rows: String = (0..ROWS)
        .map(|i| {
            // A few rows fail (content filter): they must merge back too.
            let text = if i % 17 == 5 {
                "MOCK_CONTENT_FILTER".to_string()
            } else {
                format!("ticket {i}")
            };
            format!("{}\n", json!({"id": i, "text": text}))
        })
        .collect();
    std::fs::write(dir.join("in.jsonl"), rows).unwrap();
}

async fn run(mocks: &Mocks, dir: &Path, config: PipelineConfig, shard: Option<Shard>) -> u64 {
    let options = RunOptions::default()
        .with_env(Arc::new(mocks.env()))
        .with_backoff(Duration::from_millis(1), Duration::from_millis(5))
        .with_tracing(elspeth_test_support::discard_tracing());
    let summary = Pipeline::new(config, dir)
        .with_shard(shard)
        .run(options)
        .await
        .unwrap();
    summary.rows_read
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(str::to_string)
        .collect()
}

fn ids(path: &Path) -> Vec<u64> {
    lines(path)
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_partition_the_rows_and_merge_back_in_order() {
    let mocks = Mocks::start().await;
    for key in [true, false] {
        let dir = tmpdir(if key { "shards-key" } else { "shards-content" });
        input(&dir);
        let sink = json!({"plugin": "jsonl", "path": "out/rows.jsonl"});
        assert_eq!(
            run(&mocks, &dir, config(sink.clone(), key), None).await,
            ROWS
        );
        let whole = lines(&dir.join("out/rows.jsonl"));
        std::fs::remove_file(dir.join("out/rows.jsonl")).unwrap();

        let n = 4;
        let mut seen = BTreeSet::new();
        let mut read = 0;
        for i in 0..n {
            let shard = Shard::new(i, n).unwrap();
            read += run(&mocks, &dir, config(sink.clone(), key), Some(shard)).await;
            let file = dir.join(format!("out/rows.shard-{i}-of-{n}.jsonl"));
            let taken = ids(&file);
            assert!(!taken.is_empty(), "shard {i} took no row of {ROWS}");
            assert!(
                taken.windows(2).all(|w| w[0] < w[1]),
                "input order: {taken:?}"
            );
            for id in taken {
                assert!(seen.insert(id), "row {id} is in two shards");
            }
        }
        assert_eq!(read, ROWS);
        assert_eq!(seen.len() as u64, ROWS, "the shards cover every row");
        assert!(
            !dir.join("out/rows.jsonl").exists(),
            "a shard never writes the sink"
        );

        // A rerun of a shard takes the same rows.
        let again = Shard::new(2, n).unwrap();
        let before = ids(&dir.join("out/rows.shard-2-of-4.jsonl"));
        run(&mocks, &dir, config(sink.clone(), key), Some(again)).await;
        assert_eq!(ids(&dir.join("out/rows.shard-2-of-4.jsonl")), before);

        let summary = Pipeline::new(config(sink.clone(), key), &dir)
            .merge(n, None)
            .await
            .unwrap();
        assert_eq!(summary.rows, ROWS);
        assert_eq!(summary.per_shard.iter().sum::<u64>(), ROWS);
        assert_eq!(
            lines(&dir.join("out/rows.jsonl")),
            whole,
            "merge == the unsharded run"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_with_error_files_and_csv_and_refusals() {
    let mocks = Mocks::start().await;
    let dir = tmpdir("shards-errors");
    input(&dir);
    let sink = json!({"plugin": "csv", "path": "out/rows.csv", "error_path": "out/failed.jsonl"});
    run(&mocks, &dir, config(sink.clone(), false), None).await;
    let (whole, whole_failed) = (
        lines(&dir.join("out/rows.csv")),
        lines(&dir.join("out/failed.jsonl")),
    );
    assert!(!whole_failed.is_empty(), "some rows failed");

    let n = 3;
    // Shard 1 missing: refused, nothing written.
    std::fs::remove_file(dir.join("out/rows.csv")).unwrap();
    run(
        &mocks,
        &dir,
        config(sink.clone(), false),
        Some(Shard::new(0, n).unwrap()),
    )
    .await;
    let e = Pipeline::new(config(sink.clone(), false), &dir)
        .merge(n, None)
        .await
        .unwrap_err();
    assert!(matches!(e, MergeError::Missing { .. }), "{e}");
    assert!(e.to_string().contains("shard 1/3 has no output"), "{e}");
    assert!(!dir.join("out/rows.csv").exists());

    for i in 1..n {
        run(
            &mocks,
            &dir,
            config(sink.clone(), false),
            Some(Shard::new(i, n).unwrap()),
        )
        .await;
    }
    let summary = Pipeline::new(config(sink.clone(), false), &dir)
        .merge(n, None)
        .await
        .unwrap();
    assert_eq!(summary.rows, ROWS);
    assert_eq!(lines(&dir.join("out/rows.csv")), whole);
    assert_eq!(lines(&dir.join("out/failed.jsonl")), whole_failed);

    // A shard cut short by --limit is unfinished.
    let options = RunOptions::default()
        .with_env(Arc::new(mocks.env()))
        .with_limit(Some(2))
        .with_tracing(elspeth_test_support::discard_tracing());
    Pipeline::new(config(sink.clone(), false), &dir)
        .with_shard(Some(Shard::new(2, n).unwrap()))
        .run(options)
        .await
        .unwrap();
    let before = std::fs::read(dir.join("out/rows.csv")).unwrap();
    let e = Pipeline::new(config(sink, false), &dir)
        .merge(n, None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("shard 2/3 is unfinished"), "{e}");
    assert_eq!(
        std::fs::read(dir.join("out/rows.csv")).unwrap(),
        before,
        "the sink is untouched"
    );
    let _ = std::fs::remove_dir_all(dir);
}
