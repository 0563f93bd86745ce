//! Cost as a user meets it: the dry run's estimate, the budget that stops a
//! run (and the rerun that resumes it without paying again), and prices
//! that are never a silent 0.

use std::path::{Path, PathBuf};

mod support;
use support::{elspeth, json_file as json, quickstart_dir, quickstart_yaml, text, tickets};

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).unwrap().lines().count()
}

/// The quick start over `n` tickets in a fresh folder.
fn quickstart(name: &str, n: usize, yaml: &str) -> PathBuf {
    quickstart_dir(&format!("cost-{name}"), yaml, &tickets(n, None))
}

/// The first transform's prompt for ticket `i`, as the template renders it.
fn triage_prompt(i: usize) -> String {
    format!(
        "Triage this ticket. Reply in JSON with keys: category, priority.\nSubject: ticket {i}\nBody: I was charged twice for invoice {i}\n"
    )
}

#[test]
fn the_dry_run_estimates_tokens_with_the_tokenizer_and_prices_the_range() {
    let dir = quickstart("dry", 5, &quickstart_yaml());
    let out = elspeth(&[
        "run",
        dir.join("ticket-triage.yaml").to_str().unwrap(),
        "--with-mocks",
        "--dry-run",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    let estimate: Vec<&str> = stdout.lines().filter(|l| l.contains("estimate")).collect();
    assert_eq!(estimate.len(), 3, "two transforms and the total:\n{stdout}");

    // transforms[0]: the system and user messages of each row, counted with
    // o200k_base, plus 3 tokens per message and 3 for the reply.
    let bpe = tiktoken_rs::o200k_base().unwrap();
    let count = |s: &str| bpe.encode_ordinary(s).len();
    let system = count("You triage customer support tickets.");
    let want: usize = (0..5)
        .map(|i| system + 3 + count(&triage_prompt(i)) + 3 + 3)
        .sum();
    let first = estimate[0];
    assert!(
        first.contains("transforms[0] (azure_llm): 5 calls"),
        "{first}"
    );
    assert!(
        first.contains(&format!("~{want} input tokens (o200k_base tokenizer)")),
        "{first}"
    );
    assert!(
        first.contains("output unbounded (no `max_tokens`)"),
        "{first}"
    );
    // gpt-4o-mini at $0.15 per 1M input tokens, no output ceiling.
    let low = want as f64 * 0.15 / 1e6;
    assert!(first.contains(&format!("cost from ${low:.4}")), "{first}");

    // transforms[1]: max_tokens 60 → a ceiling of 300 tokens for 5 calls.
    let second = estimate[1];
    assert!(
        second.contains("transforms[1] (openrouter_llm): 5 calls"),
        "{second}"
    );
    assert!(second.contains("at most 300 output tokens"), "{second}");
    assert!(
        second.contains("cost $") && second.contains(" to $"),
        "{second}"
    );
    assert!(estimate[2].contains("estimate total: 10 calls"), "{stdout}");
    assert!(!dir.join("out").exists(), "a dry run writes nothing");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_unpriced_deployment_has_an_unknown_cost_never_zero() {
    let yaml = quickstart_yaml().replace(
        "deployment_name: gpt-4o-mini",
        "deployment_name: prod-triage",
    );
    let dir = quickstart("unknown", 3, &yaml);
    let yaml = dir.join("ticket-triage.yaml");
    let summary = dir.join("summary.json");
    let out = elspeth(&[
        "run",
        yaml.to_str().unwrap(),
        "--with-mocks",
        "--summary-json",
        summary.to_str().unwrap(),
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    // Said once, at the start; the validator warned already.
    assert_eq!(
        stderr
            .matches("`prod-triage` is not in the price table")
            .count(),
        1,
        "{stderr}"
    );
    assert!(
        stdout.contains("cost unknown (3 calls have no price)"),
        "{stdout}"
    );
    let s = json(&summary);
    assert!(s["cost_usd"].is_null(), "{s}");
    assert_eq!(s["unpriced_calls"], 3);
    assert!(s["transforms"][0]["cost_usd"].is_null(), "{s}");
    assert!(
        s["transforms"][1]["cost_usd"].as_f64().unwrap() > 0.0,
        "{s}"
    );

    // `base_model` maps the deployment to a priced model.
    let mapped = std::fs::read_to_string(&yaml).unwrap().replace(
        "deployment_name: prod-triage",
        "deployment_name: prod-triage\n      base_model: gpt-4o-mini",
    );
    std::fs::write(&yaml, mapped).unwrap();
    let out = elspeth(&[
        "run",
        yaml.to_str().unwrap(),
        "--with-mocks",
        "--no-cache",
        "--summary-json",
        summary.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = json(&summary);
    let t0 = &s["transforms"][0];
    let want = t0["tokens_in"].as_f64().unwrap() * 0.15 / 1e6
        + t0["tokens_out"].as_f64().unwrap() * 0.60 / 1e6;
    assert!(
        (t0["cost_usd"].as_f64().unwrap() - want).abs() < 1e-12,
        "{s}"
    );
    assert!(s["cost_usd"].as_f64().is_some(), "{s}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_budget_stops_the_run_and_a_larger_one_resumes_without_paying_again() {
    // What the whole run costs, measured on a copy.
    let full_dir = quickstart("budget-full", 12, &quickstart_yaml());
    let full_summary = full_dir.join("summary.json");
    let out = elspeth(&[
        "run",
        full_dir.join("ticket-triage.yaml").to_str().unwrap(),
        "--with-mocks",
        "--summary-json",
        full_summary.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let full_cost = json(&full_summary)["cost_usd"].as_f64().unwrap();
    assert!(full_cost > 0.0);

    let dir = quickstart("budget", 12, &quickstart_yaml());
    let yaml = dir.join("ticket-triage.yaml");
    let summary = dir.join("summary.json");
    let budget = format!("{:.10}", full_cost * 0.4);
    let out = elspeth(&[
        "run",
        yaml.to_str().unwrap(),
        "--with-mocks",
        "--max-cost-usd",
        &budget,
        "--summary-json",
        summary.to_str().unwrap(),
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("stopped `ticket-triage` at its budget"),
        "{stdout}"
    );
    assert!(stdout.contains("stopped: the budget of $"), "{stdout}");
    let first = json(&summary);
    assert_eq!(first["exit_code"], 3);
    assert!(
        first["stop_reason"].as_str().unwrap().contains("budget"),
        "{first}"
    );
    let spent = first["cost_usd"].as_f64().unwrap();
    let budget: f64 = budget.parse().unwrap();
    assert!(spent <= budget, "spent {spent} of a {budget} budget");
    let done = first["rows_ok"].as_u64().unwrap();
    assert!(done > 0 && done < 12, "{first}");
    assert_eq!(
        first["rows_failed"], 0,
        "the rows taken were finished: {first}"
    );
    // The output holds the rows taken, all finished.
    assert_eq!(lines(&dir.join("out/triaged.jsonl")) as u64, done);

    // A larger budget: the run resumes, the stored replies are not paid again.
    let out = elspeth(&[
        "run",
        yaml.to_str().unwrap(),
        "--with-mocks",
        "--max-cost-usd",
        &format!("{:.10}", full_cost * 3.0),
        "--summary-json",
        summary.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let second = json(&summary);
    assert_eq!(second["rows_ok"], 12);
    assert_eq!(
        second["cached_calls"].as_u64().unwrap(),
        first["calls"].as_u64().unwrap()
    );
    assert_eq!(
        second["calls"].as_u64().unwrap() + first["calls"].as_u64().unwrap(),
        24,
        "every call paid exactly once over the two runs"
    );
    assert_eq!(lines(&dir.join("out/triaged.jsonl")), 12);
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(full_dir);
}

#[test]
fn max_cost_usd_takes_a_number() {
    let out = elspeth(&["run", "x.yaml", "--max-cost-usd", "ten"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("`ten` is not a number"),
        "{}",
        text(&out.stderr)
    );
}
