//! Resume through the run store, tried as a user would with `elspeth run`:
//! an unchanged rerun pays nothing, editing one transform re-pays only that
//! transform, `--no-cache` pays again, and a run killed with `kill -9`
//! mid-way is finished by the next run without paying again for any reply
//! it had committed, with the same output as an uninterrupted run.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use elspeth_runtime::store::RunStore;

mod support;
use support::{quickstart_dir, quickstart_yaml, text, tickets};

fn elspeth(dir: &Path, args: &[&str]) -> Output {
    support::clean_command(env!("CARGO_BIN_EXE_elspeth"), dir, args)
        .output()
        .expect("run elspeth")
}

/// The quick start in a fresh folder with `n` tickets.
fn quickstart(name: &str, n: usize) -> PathBuf {
    quickstart_dir(
        &format!("resume-{name}"),
        &quickstart_yaml(),
        &tickets(n, None),
    )
}

/// `N` in the summary line that starts with `prefix` (`llm:` → paid calls,
/// `store:` → calls served from the store).
fn count(stdout: &str, prefix: &str) -> Option<u64> {
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with(prefix))?;
    line.trim_start()[prefix.len()..]
        .split_whitespace()
        .next()?
        .replace(',', "")
        .parse()
        .ok()
}

fn run(dir: &Path, extra: &[&str]) -> String {
    run_pipeline(dir, "ticket-triage.yaml", extra)
}

/// `elspeth run <pipeline> --with-mocks <extra>` in `dir`, which must exit 0;
/// its stdout.
fn run_pipeline(dir: &Path, pipeline: &str, extra: &[&str]) -> String {
    let mut args = vec!["run", pipeline, "--with-mocks"];
    args.extend_from_slice(extra);
    let out = elspeth(dir, &args);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    stdout
}

fn output(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("out/triaged.jsonl")).unwrap()
}

#[test]
fn reruns_pay_only_for_what_changed() {
    let dir = quickstart("rerun", 20);
    let first = run(&dir, &[]);
    assert_eq!(count(&first, "llm:"), Some(40), "{first}");
    assert_eq!(count(&first, "store:"), Some(0), "{first}");
    assert!(dir.join("ticket-triage.elspeth.db").is_file());
    let paid_output = output(&dir);

    // Unchanged: nothing is paid, the output is the same, nothing traced.
    let second = run(&dir, &[]);
    assert_eq!(count(&second, "llm:"), Some(0), "{second}");
    assert_eq!(count(&second, "store:"), Some(40), "{second}");
    assert!(second.contains("not paid again: saved"), "{second}");
    assert!(
        second.contains("mocks received: Langfuse 0, Application Insights 0"),
        "a stored reply is not exported as a new generation: {second}"
    );
    assert_eq!(output(&dir), paid_output);

    // Editing the second transform's template re-pays only that transform.
    let yaml = dir.join("ticket-triage.yaml");
    let edited = std::fs::read_to_string(&yaml)
        .unwrap()
        .replace("Write a one-sentence reply", "Write a short, kind reply");
    std::fs::write(&yaml, edited).unwrap();
    let third = run(&dir, &[]);
    assert_eq!(count(&third, "llm:"), Some(20), "{third}");
    assert_eq!(count(&third, "store:"), Some(20), "{third}");

    // --no-cache pays for every call again.
    let fourth = run(&dir, &["--no-cache"]);
    assert_eq!(count(&fourth, "llm:"), Some(40), "{fourth}");
    assert_eq!(count(&fourth, "store:"), Some(0), "{fourth}");

    // --store moves it.
    let elsewhere = dir.join("stores/other.db");
    let fifth = run(&dir, &["--store", elsewhere.to_str().unwrap()]);
    assert_eq!(
        count(&fifth, "llm:"),
        Some(40),
        "a new store is empty: {fifth}"
    );
    assert!(elsewhere.is_file());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_store_that_is_an_input_is_refused() {
    let dir = quickstart("store-clash", 2);
    let out = elspeth(
        &dir,
        &[
            "run",
            "ticket-triage.yaml",
            "--with-mocks",
            "--store",
            "tickets.jsonl",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("run store"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("tickets.jsonl"))
            .unwrap()
            .lines()
            .count(),
        2,
        "the source is untouched"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Sends SIGKILL to `child` once the store at `store` holds `at_least`
/// replies (or the run ended, or two minutes passed).
#[cfg(unix)]
fn kill_when_stored(child: &mut std::process::Child, store: &Path, at_least: u64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let stored = RunStore::open(store)
            .ok()
            .and_then(|s| s.stored_calls().ok())
            .unwrap_or_default();
        if stored >= at_least || Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(unix)]
#[test]
fn a_run_killed_mid_way_is_finished_without_paying_twice() {
    const ROWS: usize = 300;
    const CALLS: u64 = 2 * ROWS as u64;
    let dir = quickstart("kill9", ROWS);
    let store_path = dir.join("ticket-triage.elspeth.db");
    let mut child = support::clean_command(
        env!("CARGO_BIN_EXE_elspeth"),
        &dir,
        &[
            "run",
            "ticket-triage.yaml",
            "--with-mocks",
            "--mock-latency-ms",
            "20",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    kill_when_stored(&mut child, &store_path, CALLS / 4);
    let committed = RunStore::open(&store_path).unwrap().stored_calls().unwrap();
    assert!(
        committed > 0 && committed < CALLS,
        "killed mid-way ({committed} of {CALLS} stored)"
    );

    let rerun = run(&dir, &[]);
    let paid = count(&rerun, "llm:").unwrap();
    let served = count(&rerun, "store:").unwrap();
    assert!(
        served >= committed,
        "every committed reply is reused ({served} < {committed}): {rerun}"
    );
    assert_eq!(paid + served, CALLS, "{rerun}");

    // The same output as an uninterrupted run: each row once, in order.
    let clean = quickstart("kill9-clean", ROWS);
    run(&clean, &[]);
    assert_eq!(output(&dir), output(&clean));
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(clean);
}

#[test]
fn the_store_block_moves_the_store_and_can_turn_serving_off() {
    let dir = quickstart("store-block", 3);
    let yaml = dir.join("ticket-triage.yaml");
    let text_of = std::fs::read_to_string(&yaml).unwrap();
    std::fs::write(
        &yaml,
        format!("{text_of}store: {{ path: state/runs.db, cache: false }}\n"),
    )
    .unwrap();
    let first = run(&dir, &[]);
    assert!(dir.join("state/runs.db").is_file(), "{first}");
    assert!(!dir.join("ticket-triage.elspeth.db").exists());
    let second = run(&dir, &[]);
    assert_eq!(
        count(&second, "llm:"),
        Some(6),
        "cache: false pays again: {second}"
    );
    assert_eq!(count(&second, "store:"), Some(0), "{second}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_finished_batch_job_is_not_submitted_again() {
    let dir = std::env::temp_dir().join(format!("elspeth-resume-batch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let tickets: String = (0..7)
        .map(|i| {
            format!(
                "{}\n",
                serde_json::json!({"subject": format!("ticket {i}"), "body": "I was charged twice"})
            )
        })
        .collect();
    std::fs::write(dir.join("tickets.jsonl"), tickets).unwrap();
    std::fs::write(
        dir.join("batch.yaml"),
        "name: batch-resume
source: { plugin: jsonl, path: tickets.jsonl }
transforms:
  - plugin: azure_batch_llm
    options:
      deployment_name: gpt-4o-mini
      endpoint: ${AZURE_OPENAI_ENDPOINT}
      api_key: ${AZURE_OPENAI_KEY}
      prompt_template: 'Classify: {{ subject }} / {{ body }}'
      output_field: category
      batch_size: 3
      poll_interval_s: 0.05
sink: { plugin: jsonl, path: out/batch.jsonl }
",
    )
    .unwrap();
    let go = || run_pipeline(&dir, "batch.yaml", &[]);
    let first = go();
    assert_eq!(count(&first, "llm:"), Some(7), "{first}");
    let written = std::fs::read_to_string(dir.join("out/batch.jsonl")).unwrap();
    let second = go();
    assert_eq!(
        count(&second, "llm:"),
        Some(0),
        "no job is submitted for rows whose replies are stored: {second}"
    );
    assert_eq!(count(&second, "store:"), Some(7), "{second}");
    assert_eq!(
        std::fs::read_to_string(dir.join("out/batch.jsonl")).unwrap(),
        written
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// The bound, counted by the mock itself across both processes:
/// `kill -9` at 40% of 2,000 rows (two transforms, `pool_size: 8` each),
/// then a rerun: together they pay at most every call once plus the calls
/// that were in flight at the kill (at most 2 × the pools).
#[cfg(unix)]
#[test]
fn killed_at_40_percent_the_two_runs_pay_at_most_the_calls_plus_twice_the_pools() {
    use elspeth_mock::all::{MockStack, StackOptions};
    const ROWS: usize = 2_000;
    const CALLS: u64 = 2 * ROWS as u64;
    const POOLS: u64 = 8 + 8;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let stack = runtime
        .block_on(MockStack::start(StackOptions {
            port: 0,
            latency: Duration::from_millis(5),
            failure_rate: 0.0,
        }))
        .unwrap();
    let dir = quickstart("bound", ROWS);
    let store_path = dir.join("ticket-triage.elspeth.db");
    let command = || {
        let mut cmd = support::clean_command(
            env!("CARGO_BIN_EXE_elspeth"),
            &dir,
            &["run", "ticket-triage.yaml"],
        );
        cmd.envs(stack.env());
        cmd
    };
    let mut child = command()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    kill_when_stored(&mut child, &store_path, CALLS * 4 / 10);
    let out = command().output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let paid = stack.azure.chat_requests() + stack.openrouter.requests();
    assert!(
        paid <= CALLS + 2 * POOLS,
        "{paid} calls paid for {CALLS} (bound {})",
        CALLS + 2 * POOLS
    );
    assert!(paid >= CALLS, "every call was made at least once ({paid})");
    let lines: Vec<serde_json::Value> = output(&dir)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<u64> = lines.iter().map(|r| r["id"].as_u64().unwrap()).collect();
    assert_eq!(
        ids,
        (0..ROWS as u64).collect::<Vec<_>>(),
        "each row once, in order"
    );
    assert!(lines.iter().all(|r| r.get("error").is_none()));
    runtime.block_on(stack.stop());
    let _ = std::fs::remove_dir_all(dir);
}
