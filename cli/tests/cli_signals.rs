//! `elspeth run` stopped by SIGTERM, SIGHUP, a second signal, or a
//! fail-fast breaker, run as a supervisor or a user would: the output is
//! written in whole lines, the summary printed, every span flushed, and the
//! exit code says why.

#![cfg(unix)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod support;
use support::{command, quickstart_dir, quickstart_yaml, tickets};

/// Upper bound of every wait (a hung run fails the test, it never hangs it).
const PATIENCE: Duration = Duration::from_secs(120);

/// The quick start in a fresh folder with `n` tickets; `edit` rewrites its YAML.
fn quickstart(name: &str, n: usize, edit: impl Fn(String) -> String) -> PathBuf {
    quickstart_dir(
        &format!("sig-{name}"),
        &edit(quickstart_yaml()),
        &tickets(n, None),
    )
}

/// A running `elspeth run` whose stderr is collected line by line.
struct Run {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Run {
    fn start(dir: &Path, extra: &[&str]) -> Self {
        let yaml = dir.join("ticket-triage.yaml");
        let mut args = vec!["run", yaml.to_str().unwrap(), "--with-mocks"];
        args.extend_from_slice(extra);
        let mut child = command(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut all = sink.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        });
        Self { child, stderr }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until `done` holds, or panics after [`PATIENCE`].
    fn wait_until(&mut self, what: &str, done: impl Fn(&Self) -> bool) {
        let start = Instant::now();
        while !done(self) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "exited ({status}) before {what}; stderr:\n{}",
                    self.stderr()
                );
            }
            if start.elapsed() > PATIENCE {
                let _ = self.child.kill();
                panic!("timed out waiting for {what}; stderr:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .map(|s| s.success());
        assert!(matches!(ok, Ok(true)), "kill -{name} failed");
    }

    /// Waits for the exit (bounded); returns the status and stdout.
    fn finish(mut self) -> (ExitStatus, String, String) {
        let mut stdout = self.child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            s
        });
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > PATIENCE {
                let _ = self.child.kill();
                panic!("the run did not end; stderr:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stdout = reader.join().unwrap();
        // The stderr thread ends with the pipe; give it a moment to drain.
        std::thread::sleep(Duration::from_millis(50));
        (status, stdout, self.stderr())
    }
}

/// Whether some file of `dir` (the output, or its temporary file) holds a
/// complete line yet.
fn some_row_written(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .filter_map(Result::ok)
            .any(|e| std::fs::read(e.path()).is_ok_and(|b| b.contains(&b'\n')))
    })
}

/// The output holds only whole rows, in input order, fewer than `total`.
fn check_output(dir: &Path, total: usize) -> Vec<serde_json::Value> {
    let written = std::fs::read_to_string(dir.join("out/triaged.jsonl")).unwrap();
    assert!(
        written.is_empty() || written.ends_with('\n'),
        "no cut-off last line"
    );
    let rows: Vec<serde_json::Value> = written
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("torn line {l:?}: {e}")))
        .collect();
    assert!(
        !rows.is_empty() && rows.len() < total,
        "stopped early: {} rows written",
        rows.len()
    );
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row["id"], i, "every row read is written once, in order");
    }
    rows
}

/// `N` in the summary's `mocks received: Langfuse N, ...` line and the
/// Langfuse exporter's `N spans sent`: the spans exported were received.
fn check_spans_flushed(stdout: &str) {
    let number_after = |line: &str, key: &str| -> u64 {
        let at = line.find(key).unwrap_or_else(|| panic!("{key} in {line}")) + key.len();
        line[at..]
            .trim_start()
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("a number after {key} in {line}"))
    };
    let exporter = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("langfuse "))
        .unwrap_or_else(|| panic!("a langfuse exporter line: {stdout}"));
    let sent = number_after(exporter, "):");
    assert!(
        exporter.contains(&format!("{sent} spans sent, 0 dropped"))
            && !exporter.contains("not sent"),
        "{exporter}"
    );
    let received = stdout
        .lines()
        .find(|l| l.contains("mocks received:"))
        .unwrap_or_else(|| panic!("a mocks line: {stdout}"));
    assert_eq!(
        number_after(received, "Langfuse"),
        sent,
        "every span sent reached the Langfuse mock: {stdout}"
    );
    assert!(sent > 0, "{stdout}");
}

/// SIGTERM or SIGHUP once the first rows are written: the run stops like
/// Ctrl-C and exits 128 + the signal's number.
fn stopped_by(signal: &str, code: i32) {
    let dir = quickstart(&signal.to_lowercase(), 400, |y| y);
    let mut run = Run::start(&dir, &["--mock-latency-ms", "200"]);
    let out = dir.join("out");
    run.wait_until("the first rows", |_| some_row_written(&out));
    run.signal(signal);
    let (status, stdout, stderr) = run.finish();
    assert_eq!(status.code(), Some(code), "{stdout}\n{stderr}");
    assert!(
        stdout.starts_with(&format!("interrupted `ticket-triage` (SIG{signal})")),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!("stopping (SIG{signal}): no new rows are taken")),
        "{stderr}"
    );
    let rows = check_output(&dir, 400);
    assert!(
        rows[0].get("error").is_none(),
        "rows in flight were finished"
    );
    check_spans_flushed(&stdout);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn sigterm_stops_like_ctrl_c_and_exits_143() {
    stopped_by("TERM", 143);
}

#[test]
fn sighup_stops_like_ctrl_c_and_exits_129() {
    stopped_by("HUP", 129);
}

#[test]
fn a_second_signal_cancels_the_calls_in_flight_and_still_writes() {
    let dir = quickstart("double", 400, |y| y);
    let mut run = Run::start(&dir, &["--mock-latency-ms", "200"]);
    let out = dir.join("out");
    run.wait_until("the first rows", |_| some_row_written(&out));
    run.signal("TERM");
    // The second one only after the first was seen (two signals sent at
    // once may be delivered as one).
    run.wait_until("the first stop", |r| {
        r.stderr().contains("stopping (SIGTERM)")
    });
    run.signal("INT");
    let (status, stdout, stderr) = run.finish();
    assert_eq!(
        status.code(),
        Some(143),
        "the first signal's code: {stdout}\n{stderr}"
    );
    assert!(
        stderr.contains("cancelling the calls in flight (SIGINT)"),
        "{stderr}"
    );
    assert!(
        stdout.starts_with("interrupted `ticket-triage` (SIGTERM)"),
        "the summary is printed: {stdout}"
    );
    let rows = check_output(&dir, 400);
    for row in rows.iter().filter(|r| r.get("error").is_some()) {
        assert_eq!(row["error"]["kind"], "cancelled", "{row}");
        assert_eq!(
            row["error"]["message"],
            "not processed: the run was interrupted (SIGTERM)"
        );
    }
    check_spans_flushed(&stdout);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_dead_key_stops_the_run_and_says_so() {
    // The Azure key comes from a variable the mocks do not set.
    let dir = quickstart("dead-key", 300, |y| {
        y.replace("${AZURE_OPENAI_KEY}", "${ELSPETH_TEST_DEAD_KEY}")
    });
    let yaml = dir.join("ticket-triage.yaml");
    let out = command(&["run", yaml.to_str().unwrap(), "--with-mocks"])
        .env("ELSPETH_TEST_DEAD_KEY", "dead-key-0123456789")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.starts_with("stopped `ticket-triage`"), "{stdout}");
    assert!(
        stdout.contains(
            "  stopped: transforms[0] (azure_llm) got an authentication error (HTTP 401): Azure OpenAI answered HTTP 401"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("rerun the same command: the run resumes"),
        "{stdout}"
    );
    // Rows read but not started (if the source got ahead of the first
    // answer) are written as cancelled; how many is a race, not asserted.
    assert!(stdout.contains("rows:    0 ok, "), "{stdout}");
    assert!(
        !stdout.contains("dead-key-0123456789") && !stderr.contains("dead-key-0123456789"),
        "no secret printed"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_backend_failing_every_row_stops_the_run() {
    let dir = quickstart("all-500", 200, |y| {
        y.replacen(
            "      pool_size: 8\n",
            "      pool_size: 4\n      max_retries: 1\n",
            1,
        ) + "fail_fast: {consecutive_failures: 3}\n"
    });
    let yaml = dir.join("ticket-triage.yaml");
    let out = command(&[
        "run",
        yaml.to_str().unwrap(),
        "--with-mocks",
        "--mock-failure-rate",
        "1",
    ])
    .output()
    .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("  stopped: the last 3 rows of transforms[0] (azure_llm) all failed; last error (HTTP 500)"),
        "{stdout}"
    );
    assert!(
        stderr.contains("stopping the run: the last 3 rows of transforms[0] (azure_llm)"),
        "logged when it trips: {stderr}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// SIGTERM while the Langfuse backend hangs: the run stops within its
/// deadlines, the spans it could not deliver are kept in the run store
/// (the summary says how many, and they add up), and the next run says
/// they are waiting for `elspeth traces replay`.
#[test]
fn sigterm_with_a_hung_backend_keeps_the_spans_for_replay() {
    // Accepts connections, never answers.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = format!("http://{}", hung.local_addr().unwrap());
    let dir = quickstart("hung-keep", 400, |y| {
        y.replace("${LANGFUSE_HOST:-https://cloud.langfuse.com}", &host)
    });
    let mut run = Run::start(&dir, &["--mock-latency-ms", "200"]);
    run.wait_until("the first rows", |_| some_row_written(&dir.join("out")));
    run.signal("TERM");
    let (status, stdout, stderr) = run.finish();
    assert_eq!(status.code(), Some(143), "{stdout}\n{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("langfuse "))
        .unwrap_or_else(|| panic!("a langfuse exporter line: {stdout}"));
    let number_before = |key: &str| -> u64 {
        let at = line.find(key).unwrap_or_else(|| panic!("{key} in {line}"));
        line[..at]
            .trim_end()
            .rsplit(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("a number before {key} in {line}"))
    };
    let (kept, recorded) = (
        number_before(" kept for replay"),
        number_before(" recorded)"),
    );
    assert!(kept > 0, "{line}");
    assert_eq!(number_before(" spans sent"), 0, "{line}");
    assert_eq!(
        kept + number_before(" dropped"),
        recorded,
        "nothing lost: {line}"
    );

    // The next run says spans are waiting.
    let yaml = dir.join("ticket-triage.yaml");
    let next = command(&[
        "run",
        yaml.to_str().unwrap(),
        "--with-mocks",
        "--limit",
        "1",
    ])
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&next.stderr);
    assert!(
        stderr.contains(&format!(
            "{kept} tracing spans from earlier runs are waiting"
        )) && stderr.contains("elspeth traces replay"),
        "{stderr}"
    );
    drop(hung);
    let _ = std::fs::remove_dir_all(dir);
}
