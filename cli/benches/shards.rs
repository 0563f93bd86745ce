//! Four shards in parallel on one machine against the mocks (50 ms per LLM
//! answer) vs one process over the same rows, each process with the same
//! `pool_size`: rows/s of the four (wall time from the first start to the
//! last exit) over rows/s of the one. Target ≥ 3.5×.
//!
//! `cargo bench -p elspeth-cli --bench shards`
//!
//! Each process runs `elspeth run --with-mocks --mock-latency-ms 50` (its
//! own mock backends) on a copy of the quick start. Prints the `figure`
//! line of `benches/support/figure.rs` (`runtime.shards_speedup`). Without
//! `--bench` (a smoke run) it uses a few rows and prints no figure.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

#[path = "../../benches/support/figure.rs"]
mod figure;

const SHARDS: u32 = 4;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A copy of the quick start with `rows` tickets, in a fresh folder.
fn workdir(rows: usize) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("elspeth-bench-shards-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let yaml = std::fs::read_to_string(repo().join("examples/quickstart/ticket-triage.yaml"))
        .unwrap()
        .replace(
            "source: { plugin: jsonl, path: tickets.jsonl }",
            "source: { plugin: jsonl, path: tickets.jsonl, key: id }",
        );
    std::fs::write(dir.join("ticket-triage.yaml"), yaml).unwrap();
    let tickets: String = (0..rows)
        .map(|i| {
            let row = serde_json::json!({
                "id": format!("T-{i}"),
                "subject": format!("ticket {i}"),
                "body": format!("my invoice {i} is wrong"),
            });
            format!("{row}\n")
        })
        .collect();
    std::fs::write(dir.join("tickets.jsonl"), tickets).unwrap();
    dir
}

fn start(dir: &Path, shard: Option<u32>) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_elspeth"));
    cmd.current_dir(dir)
        .args([
            "run",
            "ticket-triage.yaml",
            "--with-mocks",
            "--mock-latency-ms",
            "50",
            "--no-cache",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(i) = shard {
        cmd.args(["--shard", &format!("{i}/{SHARDS}")]);
    }
    cmd.spawn().expect("start elspeth")
}

fn wait(children: Vec<Child>) {
    for mut c in children {
        let status = c.wait().unwrap();
        assert!(status.success(), "elspeth run failed: {status}");
    }
}

fn main() {
    let bench = figure::bench_mode();
    let rows = if bench { 1_600 } else { 40 };
    let dir = workdir(rows);

    let t0 = Instant::now();
    wait(vec![start(&dir, None)]);
    let one = rows as f64 / t0.elapsed().as_secs_f64();

    let t0 = Instant::now();
    wait((0..SHARDS).map(|i| start(&dir, Some(i))).collect());
    let four = rows as f64 / t0.elapsed().as_secs_f64();
    for i in 0..SHARDS {
        assert!(
            dir.join(format!("out/triaged.shard-{i}-of-{SHARDS}.jsonl"))
                .is_file()
        );
    }
    let ratio = four / one;
    eprintln!("one process: {one:.1} rows/s; {SHARDS} shards: {four:.1} rows/s; {ratio:.2}×");
    if bench {
        figure::Figure::new(
            "runtime.shards_speedup",
            &format!(
                "{rows} rows, 2 transforms, pool_size 8, mocks answering in 50 ms: {SHARDS} shards in parallel"
            ),
            format!("{four:.1}"),
            "rows/s",
        )
        .anchor("one process, same pool_size", format!("{one:.1} rows/s"))
        .ratio(format!("{ratio:.2}×"))
        .target("≥ 3.5×", ratio >= 3.5)
        .print();
    }
    let _ = std::fs::remove_dir_all(dir);
}
