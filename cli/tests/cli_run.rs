//! `elspeth run` and `elspeth mock-server`, run as a user runs them: the
//! quick start against the bundled mocks, exit codes, dry runs, Ctrl-C.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

mod support;
use support::{command, elspeth, json_file, quickstart_dir, quickstart_yaml, repo, text, tickets};

/// A copy of the quick start in a fresh folder, with `tickets` as its rows
/// (the shipped ones when `None`).
fn quickstart(name: &str, tickets: Option<String>) -> PathBuf {
    let tickets = tickets.unwrap_or_else(|| {
        std::fs::read_to_string(repo().join("examples/quickstart/tickets.jsonl")).unwrap()
    });
    quickstart_dir(&format!("cli-{name}"), &quickstart_yaml(), &tickets)
}

#[test]
fn quick_start_runs_against_the_mocks() {
    let dir = quickstart("quickstart", None);
    let yaml = dir.join("ticket-triage.yaml");
    let summary_json = dir.join("summary.json");
    let out = elspeth(&[
        "run",
        yaml.to_str().unwrap(),
        "--with-mocks",
        "--summary-json",
        summary_json.to_str().unwrap(),
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    // The machine-readable summary: every exporter's spans add up.
    let json = json_file(&summary_json);
    assert_eq!(json["rows_ok"], 12);
    assert_eq!(json["rows_failed"], 0);
    assert_eq!(json["calls"], 24);
    assert_eq!(json["exit_code"], 0);
    // Per transform: 12 calls each, their tokens adding up to the totals,
    // and both priced (Azure by the price table, OpenRouter as reported).
    let transforms = json["transforms"].as_array().unwrap();
    assert_eq!(transforms.len(), 2, "{json}");
    let sum = |k: &str| {
        transforms
            .iter()
            .map(|t| t[k].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(sum("calls"), 24);
    assert_eq!(sum("tokens_in"), json["tokens_in"].as_u64().unwrap());
    assert_eq!(sum("tokens_out"), json["tokens_out"].as_u64().unwrap());
    let costs: f64 = transforms
        .iter()
        .map(|t| t["cost_usd"].as_f64().unwrap())
        .sum();
    assert!(
        (costs - json["cost_usd"].as_f64().unwrap()).abs() < 1e-12,
        "{json}"
    );
    for t in transforms {
        assert_eq!(t["calls"], 12, "{t}");
        let l = &t["latency_ms"];
        assert!(
            l["p50"].as_f64().unwrap() <= l["p95"].as_f64().unwrap(),
            "{t}"
        );
        assert!(
            l["p99"].as_f64().unwrap() <= l["max"].as_f64().unwrap() + 1e-9,
            "{t}"
        );
    }
    assert!(
        transforms[0]["price"]
            .as_str()
            .unwrap()
            .starts_with("gpt-4o-mini in the price table"),
        "{json}"
    );
    let exporters = json["tracing"].as_array().unwrap();
    assert_eq!(exporters.len(), 2, "{json}");
    for e in exporters {
        let n = |k: &str| e[k].as_u64().unwrap();
        assert_eq!(n("recorded"), 24, "{e}");
        assert_eq!(n("sent"), 24, "{e}");
        assert_eq!(
            n("sent") + n("dropped") + n("failed") + n("pending") + n("kept"),
            n("recorded")
        );
    }
    assert!(stdout.contains("(24 recorded)"), "{stdout}");
    assert!(
        stdout.contains("finished `ticket-triage`: 12 rows"),
        "{stdout}"
    );
    assert!(stdout.contains("rows:    12 ok, 0 failed"), "{stdout}");
    assert!(stdout.contains("llm:     24 calls"), "{stdout}");
    assert!(
        stdout.contains("cost $"),
        "OpenRouter reports cost: {stdout}"
    );
    assert!(stdout.contains(": 24 spans sent, 0 dropped"), "{stdout}");
    assert!(
        stdout.contains("mocks received: Langfuse 24, Application Insights 24"),
        "{stdout}"
    );
    // Not a terminal: plain progress lines.
    assert!(
        stderr.contains("running `ticket-triage`: 12 rows"),
        "{stderr}"
    );
    assert!(stderr.contains("progress: 12/12 rows"), "{stderr}");
    // The progress line shows the cost so far and the estimated total.
    let last = stderr
        .lines()
        .rfind(|l| l.starts_with("progress: "))
        .unwrap();
    assert!(
        last.contains(" so far, ~$") && last.contains(" in all"),
        "{last}"
    );
    assert!(
        !stdout.contains("sk-lf-mock") && !stderr.contains("sk-lf-mock"),
        "no secret in the output"
    );
    let rows: Vec<serde_json::Value> = std::fs::read_to_string(dir.join("out/triaged.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 12);
    assert_eq!(rows[0]["id"], "T-1001");
    assert_eq!(rows[0]["category"], "billing");
    assert_eq!(rows[1]["priority"], "high");
    assert!(
        rows[0]["draft_reply"]
            .as_str()
            .unwrap()
            .contains("billing issue")
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn failed_rows_exit_1_and_are_written() {
    let dir = quickstart(
        "failed",
        Some(tickets(5, Some((2, "MOCK_CONTENT_FILTER please")))),
    );
    let out = elspeth(&[
        "run",
        dir.join("ticket-triage.yaml").to_str().unwrap(),
        "--with-mocks",
        "--limit",
        "4",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("4 rows"), "{stdout}");
    assert!(stdout.contains("rows:    3 ok, 1 failed"), "{stdout}");
    assert!(
        stdout.contains("failed rows carry an `error` field"),
        "{stdout}"
    );
    let written = std::fs::read_to_string(dir.join("out/triaged.jsonl")).unwrap();
    let third: serde_json::Value = serde_json::from_str(written.lines().nth(2).unwrap()).unwrap();
    assert_eq!(third["error"]["kind"], "content_filter");
    assert_eq!(third["error"]["transform"], "transforms[0] (azure_llm)");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_empty_source_warns_with_its_path_and_exits_0() {
    let dir = quickstart("empty", Some(String::new()));
    let out = command(&[
        "run",
        dir.join("ticket-triage.yaml").to_str().unwrap(),
        "--with-mocks",
    ])
    // The default filter (warnings), whatever the caller's environment says.
    .env("ELSPETH_LOG", "warn")
    .output()
    .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let source = dir.join("tickets.jsonl");
    let warning = stderr
        .lines()
        .find(|l| l.contains("0 rows read from"))
        .unwrap_or_else(|| panic!("no empty-source warning:\n{stderr}"));
    assert!(warning.contains("WARN"), "a warning: {warning}");
    assert!(
        warning.contains(&format!("0 rows read from {}", source.display())),
        "names the file: {warning}"
    );
    assert!(stdout.contains("rows:    0 ok, 0 failed"), "{stdout}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn dry_run_describes_without_calling() {
    let dir = quickstart("dry", None);
    let out = elspeth(&[
        "run",
        dir.join("ticket-triage.yaml").to_str().unwrap(),
        "--with-mocks",
        "--dry-run",
        "--limit",
        "3",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains("pipeline `ticket-triage` (dry run: no LLM calls)"),
        "{stdout}"
    );
    assert!(stdout.contains("(3 rows)"), "{stdout}");
    assert!(
        stdout.contains("would make up to 6 LLM call(s)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("first prompt: \"Triage this ticket."),
        "{stdout}"
    );
    assert!(!dir.join("out").exists(), "a dry run writes nothing");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn dry_run_catches_a_template_field_the_rows_lack() {
    let dir = quickstart("dry-typo", None);
    let yaml = dir.join("ticket-triage.yaml");
    let original = std::fs::read_to_string(&yaml).unwrap();
    std::fs::write(&yaml, original.replace("{{ subject }}", "{{ subjcet }}")).unwrap();
    let out = elspeth(&["run", yaml.to_str().unwrap(), "--with-mocks", "--dry-run"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: unknown field `subjcet` in `prompt_template`\n  --> {}:21:18\n",
            yaml.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("= help: did you mean `subject`?"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was run"), "{stderr}");
    assert!(!stdout.contains("dry run"), "{stdout}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn invalid_or_unresolvable_config_exits_1() {
    let out = elspeth(&["run", "examples/invalid/unknown-plugin.yaml"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("error"), "{stderr}");
    assert!(
        stderr.contains("is invalid") && stderr.contains("nothing was run"),
        "{stderr}"
    );
    // Valid YAML, but the variables are not set (and no --with-mocks).
    let out = elspeth(&["run", "examples/quickstart/ticket-triage.yaml"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("environment variable `AZURE_OPENAI_ENDPOINT` is not set"),
        "{stderr}"
    );
    assert!(
        stderr.contains("--> examples/quickstart/ticket-triage.yaml:"),
        "rustc-style location: {stderr}"
    );
}

#[test]
fn unreadable_pipeline_exits_2() {
    let out = elspeth(&["run", "no/such/pipeline.yaml"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = elspeth(&["run"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a missing argument is a usage error"
    );
    let out = elspeth(&["run", "x.yaml", "--mock-latency-ms", "5"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "--mock-latency-ms needs --with-mocks"
    );
}

/// Sends SIGINT to a child (through `kill`, no libc binding needed).
fn interrupt(pid: u32) {
    let ok = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .map(|s| s.success());
    assert!(matches!(ok, Ok(true)), "kill -INT failed");
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_taking_rows_writes_what_is_done_and_exits_130() {
    let dir = quickstart("ctrl-c", Some(tickets(400, None)));
    let mut child = command(&[
        "run",
        dir.join("ticket-triage.yaml").to_str().unwrap(),
        "--with-mocks",
        "--mock-latency-ms",
        "150",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.starts_with("running `") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the run started");
    // Two transforms of 150 ms each: the first rows are done well before
    // this, and 400 rows take several seconds.
    std::thread::sleep(Duration::from_millis(1000));
    interrupt(child.id());
    let out = child.wait_with_output().unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(130), "{stdout}");
    assert!(
        stdout.starts_with("interrupted `ticket-triage`"),
        "{stdout}"
    );
    let written = std::fs::read_to_string(dir.join("out/triaged.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = written
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        !rows.is_empty() && rows.len() < 400,
        "stopped early: {} rows written",
        rows.len()
    );
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row["id"], i, "every row read is written, in order");
    }
    // The first signal lets calls in flight finish: the first row's call to
    // the first transform, started long before it, is in the output, and
    // a row that was stopped was only stopped before a call (a row between
    // the two transforms at the signal is not sent to the second).
    assert!(
        rows[0].get("category").is_some(),
        "rows in flight were finished: {}",
        rows[0]
    );
    for row in rows.iter().filter(|r| r.get("error").is_some()) {
        assert_eq!(row["error"]["kind"], "cancelled", "{row}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[cfg(unix)]
#[test]
fn mock_server_prints_urls_and_exports() {
    let mut child = command(&["mock-server", "--latency-ms", "5"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let done = line.starts_with("export OTEL_EXPORTER_OTLP_ENDPOINT=");
        seen.push(line);
        if done {
            break;
        }
    }
    let all = seen.join("\n");
    assert!(
        all.contains("Azure OpenAI") && all.contains("Application Insights"),
        "{all}"
    );
    assert!(
        all.contains("export AZURE_OPENAI_ENDPOINT='http://127.0.0.1:"),
        "{all}"
    );
    assert!(
        all.contains("export LANGFUSE_HOST='http://127.0.0.1:"),
        "{all}"
    );
    // The printed endpoint answers.
    let endpoint = seen
        .iter()
        .find_map(|l| l.strip_prefix("export AZURE_OPENAI_ENDPOINT='"))
        .map(|v| v.trim_end_matches('\'').to_string())
        .unwrap();
    assert!(endpoint.starts_with("http://127.0.0.1:"));
    interrupt(child.id());
    let rest: Vec<String> = lines.collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(
        rest.iter().any(|l| l.starts_with("received: 0 LLM calls")),
        "{rest:?}"
    );
}

/// The plan's graceful degradation: tracing variables that are not set turn
/// tracing off with a warning; every row is still processed and written.
#[cfg(unix)]
#[test]
fn unset_tracing_variables_run_untraced_with_warnings() {
    let mut server = command(&["mock-server"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = server.stdout.take().unwrap();
    let mut exports = Vec::new();
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        if let Some(kv) = line.strip_prefix("export ") {
            let (k, v) = kv.split_once('=').unwrap();
            exports.push((k.to_string(), v.trim_matches('\'').to_string()));
            if k == "OTEL_EXPORTER_OTLP_ENDPOINT" {
                break;
            }
        }
    }
    let dir = quickstart("untraced", None);
    let mut run = command(&["run", dir.join("ticket-triage.yaml").to_str().unwrap()]);
    for (k, v) in &exports {
        // The LLM backends are reachable; the tracing secrets are not set.
        if k != "LANGFUSE_SECRET_KEY" && k != "APPLICATIONINSIGHTS_CONNECTION_STRING" {
            run.env(k, v);
        }
    }
    let out = run.output().unwrap();
    let _ = server.kill();
    let _ = server.wait();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(
            "warning: environment variable `LANGFUSE_SECRET_KEY` is not set; transforms[0] will run untraced"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("`APPLICATIONINSIGHTS_CONNECTION_STRING` is not set")
            && stderr.matches("running untraced").count() == 2,
        "one run-time warning per untraced transform: {stderr}"
    );
    assert!(
        stdout.contains("12 ok, 0 failed") && stdout.contains("tracing: off"),
        "{stdout}"
    );
    let written = std::fs::read_to_string(dir.join("out/triaged.jsonl")).unwrap();
    assert_eq!(written.lines().count(), 12);
    let _ = std::fs::remove_dir_all(dir);
}

/// `--summary-json` naming an input (here the source, through another
/// spelling of its path) is refused before anything runs; the input is intact.
#[test]
fn summary_json_never_overwrites_an_input() {
    let dir = quickstart("summary-clash", None);
    let yaml = dir.join("ticket-triage.yaml");
    let source = dir.join("tickets.jsonl");
    let before = std::fs::read(&source).unwrap();
    let other_spelling = dir.join("out/../tickets.jsonl");
    std::fs::create_dir_all(dir.join("out")).unwrap();
    let out = elspeth(&[
        "run",
        yaml.to_str().unwrap(),
        "--with-mocks",
        "--summary-json",
        other_spelling.to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--summary-json"), "{stderr}");
    assert!(stderr.contains("nothing was run"), "{stderr}");
    assert_eq!(std::fs::read(&source).unwrap(), before);
    assert!(!dir.join("out/triaged.jsonl").exists());
    let _ = std::fs::remove_dir_all(dir);
}

/// `elspeth traces replay` finds the run store as `run` does; with nothing
/// kept it says so and exits 0.
#[test]
fn traces_replay_with_nothing_waiting() {
    let dir = quickstart("replay-none", None);
    let yaml = dir.join("ticket-triage.yaml");
    let out = elspeth(&["traces", "replay", yaml.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("no run store at"), "{stdout}");
    assert!(stdout.contains("ticket-triage.elspeth.db"), "{stdout}");
    // After a run the store exists and holds nothing to replay.
    let run = elspeth(&["run", yaml.to_str().unwrap(), "--with-mocks"]);
    assert_eq!(run.status.code(), Some(0));
    let out = elspeth(&["traces", "replay", yaml.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("no spans are waiting in"), "{stdout}");
    let _ = std::fs::remove_dir_all(dir);
}
