//! `elspeth run --report PATH.html`, looked at in a real headless Chromium:
//! the quick start runs against the mocks (some calls failing with HTTP
//! 500, so retries happen; two tickets the content filter refuses, so rows
//! fail), then the page Chromium renders must show exactly the figures of
//! `--summary-json`, the transforms, their latency histograms and the
//! failed rows' ids, and need nothing from the network.

use std::path::Path;

mod chromium;
mod support;
use elspeth_test_support::figures::check_figures;
use support::{quickstart_dir, quickstart_yaml, repo, text};

/// The tickets the mock's content filter refuses (HTTP 400, not retried):
/// their rows fail whatever the random 500s do.
const REFUSED: [&str; 2] = ["T-1004", "T-1009"];

/// The shipped tickets, with [`REFUSED`] asking for the content filter.
fn tickets() -> String {
    let shipped =
        std::fs::read_to_string(repo().join("examples/quickstart/tickets.jsonl")).unwrap();
    let mut refused = 0;
    let lines: Vec<String> = shipped
        .lines()
        .map(|line| {
            let mut row: serde_json::Value = serde_json::from_str(line).unwrap();
            if REFUSED.contains(&row["id"].as_str().unwrap()) {
                refused += 1;
                let body = format!("{} MOCK_CONTENT_FILTER", row["body"].as_str().unwrap());
                row["body"] = body.into();
            }
            format!("{row}\n")
        })
        .collect();
    assert_eq!(refused, REFUSED.len(), "the shipped tickets changed");
    lines.concat()
}

fn assert_self_contained(html: &str) {
    for fetch in [
        "<script", "src=", "href=", "url(", "@import", "<link", "<img", "<iframe", "<object",
    ] {
        assert!(!html.contains(fetch), "the report contains `{fetch}`");
    }
}

#[test]
fn the_report_in_chromium_shows_the_summary_json() {
    let yaml = quickstart_yaml().replace(
        "source: { plugin: jsonl, path: tickets.jsonl }",
        "source: { plugin: jsonl, path: tickets.jsonl, key: id }",
    );
    assert!(yaml.contains("key: id"), "the quick start's source changed");
    let dir = quickstart_dir("cli-report", &yaml, &tickets());
    let summary = dir.join("summary.json");
    let report = dir.join("report.html");
    let store = dir.join("run.elspeth.db");
    let out = support::clean_command(
        env!("CARGO_BIN_EXE_elspeth"),
        repo(),
        &[
            "run",
            dir.join("ticket-triage.yaml").to_str().unwrap(),
            "--with-mocks",
            "--mock-failure-rate",
            "0.3",
            "--mock-latency-ms",
            "3",
            "--summary-json",
            summary.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
            "--store",
            store.to_str().unwrap(),
        ],
    )
    .output()
    .expect("run elspeth");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(1),
        "failed rows: exit 1\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stderr.contains(&format!("report: {}", report.display())),
        "{stderr}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(json["exit_code"], 1, "{json}");
    let html = std::fs::read_to_string(&report).unwrap();
    assert_self_contained(&html);

    // What Chromium renders, with every host name unresolvable.
    let profile = dir.join("chromium-profile");
    let dump = chromium::headless(&report, &profile, &["--dump-dom"]);
    let dom = text(&dump.stdout);
    assert!(
        dump.status.success() && dom.contains("</html>"),
        "chromium --dump-dom failed: {}\n{}",
        dump.status,
        text(&dump.stderr)
    );
    let paths = check_figures(&dom, &json);
    let has = |p: &str| paths.iter().any(|q| q == p);

    for key in [
        "pipeline",
        "exit_code",
        "rows_read",
        "rows_ok",
        "rows_failed",
        "calls",
        "cached_calls",
        "failed_calls",
        "tokens_in",
        "tokens_out",
        "cost_usd",
        "duration_s",
    ] {
        assert!(has(key), "the page does not show `{key}`");
    }
    let transforms = json["transforms"].as_array().unwrap();
    assert_eq!(transforms.len(), 2, "{json}");
    for (i, t) in transforms.iter().enumerate() {
        for key in [
            "label",
            "plugin",
            "model",
            "calls",
            "cached_calls",
            "failed_calls",
            "retries",
            "tokens_in",
            "tokens_out",
            "cost_usd",
            "latency_ms.p50",
            "latency_ms.p95",
            "latency_ms.p99",
            "latency_ms.max",
        ] {
            assert!(
                has(&format!("transforms.{i}.{key}")),
                "transforms.{i}.{key}"
            );
        }
        for kind in t["failures"].as_object().unwrap().keys() {
            assert!(
                has(&format!("transforms.{i}.failures.{kind}")),
                "{i} {kind}"
            );
        }
        let bars = t["latency_histogram"].as_array().unwrap();
        for j in 0..bars.len() {
            assert!(
                has(&format!("transforms.{i}.latency_histogram.{j}.calls")),
                "transforms.{i} bar {j}"
            );
        }
        assert!(
            dom.contains(&format!(
                "data-figure=\"transforms.{i}.label\">{}<",
                t["label"].as_str().unwrap().replace('&', "&amp;")
            )),
            "transform {i} is named"
        );
    }
    // A histogram per transform that was called.
    let called = transforms
        .iter()
        .filter(|t| !t["latency_histogram"].as_array().unwrap().is_empty())
        .count();
    assert!(called >= 1, "no latency was recorded: {json}");
    assert_eq!(dom.matches("<svg class=\"chart\"").count(), called);

    let exporters = json["tracing"].as_array().unwrap();
    assert_eq!(exporters.len(), 2, "{json}");
    for i in 0..exporters.len() {
        for key in [
            "exporter", "recorded", "sent", "dropped", "failed", "pending", "kept",
        ] {
            assert!(has(&format!("tracing.{i}.{key}")), "tracing.{i}.{key}");
        }
    }

    let failed = json["failed_rows"].as_array().unwrap();
    let failed_ids: Vec<&str> = failed.iter().map(|r| r["id"].as_str().unwrap()).collect();
    for id in REFUSED {
        assert!(failed_ids.contains(&id), "{id} did not fail: {json}");
    }
    for (j, row) in failed.iter().enumerate() {
        for key in ["id", "transform", "kind", "error", "duration_ms"] {
            assert!(
                has(&format!("failed_rows.{j}.{key}")),
                "failed_rows.{j}.{key}"
            );
        }
        assert!(
            dom.contains(&format!(
                "data-figure=\"failed_rows.{j}.id\">{}<",
                row["id"].as_str().unwrap()
            )),
            "failed row {j}"
        );
    }
    for j in 0..json["slowest_rows"].as_array().unwrap().len() {
        assert!(has(&format!("slowest_rows.{j}.id")), "slowest_rows.{j}.id");
    }

    // A screenshot, kept for a person to look at.
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli_report");
    std::fs::create_dir_all(&shots).unwrap();
    let png = shots.join("report.png");
    let _ = std::fs::remove_file(&png);
    let shot = chromium::headless(
        &report,
        &profile,
        &[
            &format!("--screenshot={}", png.display()),
            "--window-size=1280,3400",
            "--hide-scrollbars",
        ],
    );
    let bytes = std::fs::read(&png).unwrap_or_else(|e| {
        panic!(
            "no screenshot ({e}): {}\n{}",
            shot.status,
            text(&shot.stderr)
        )
    });
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    std::fs::copy(&report, shots.join("report.html")).unwrap();
    eprintln!("report and screenshot: {}", shots.display());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_report_over_an_input_is_refused_before_the_run() {
    let dir = quickstart_dir("cli-report-input", &quickstart_yaml(), &tickets());
    let tickets_path = dir.join("tickets.jsonl");
    let before = std::fs::read(&tickets_path).unwrap();
    let out = support::clean_command(
        env!("CARGO_BIN_EXE_elspeth"),
        repo(),
        &[
            "run",
            dir.join("ticket-triage.yaml").to_str().unwrap(),
            "--with-mocks",
            "--report",
            tickets_path.to_str().unwrap(),
        ],
    )
    .output()
    .expect("run elspeth");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("nothing was run"), "{stderr}");
    assert_eq!(std::fs::read(&tickets_path).unwrap(), before);
    assert!(!dir.join("out/triaged.jsonl").exists());
    let _ = std::fs::remove_dir_all(dir);
}
