//! The outputs of `elspeth run`, tried as a user would: an output that is
//! an input is refused (by `validate` at its line:col, by `run` with exit 2
//! and the input untouched), `kill -9` never leaves a torn output,
//! `--limit 0` keeps an existing output, and a write failure prints the
//! summary before exiting 2.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

mod support;
use support::text;

fn command(program: &str, dir: &Path, args: &[&str]) -> Command {
    support::clean_command(program, dir, args)
}

fn elspeth(dir: &Path, args: &[&str]) -> Output {
    command(env!("CARGO_BIN_EXE_elspeth"), dir, args)
        .output()
        .expect("run elspeth")
}

fn tmpdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("elspeth-outputs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A one-transform pipeline (Azure chat, answered by the mocks); `sink` is
/// the YAML of the sink's mapping, one `key: value` per line.
fn pipeline(source: &str, sink: &[&str], pool_size: usize) -> String {
    let mut yaml = format!(
        "name: outputs\n\
         source: {{ {source} }}\n\
         transforms:\n\
         \x20 - plugin: azure_llm\n\
         \x20   options:\n\
         \x20     deployment_name: gpt-4o-mini\n\
         \x20     endpoint: ${{AZURE_OPENAI_ENDPOINT}}\n\
         \x20     api_key: ${{AZURE_OPENAI_KEY}}\n\
         \x20     prompt_template: \"Classify: {{{{ subject }}}}\"\n\
         \x20     output_field: label\n\
         \x20     pool_size: {pool_size}\n\
         sink:\n"
    );
    for line in sink {
        yaml.push_str(&format!("  {line}\n"));
    }
    yaml
}

/// `n` JSON Lines rows of about `pad` bytes each.
fn rows(n: usize, pad: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "{}\n",
                serde_json::json!({"id": i, "subject": format!("ticket {i}"), "body": "x".repeat(pad)})
            )
        })
        .collect()
}

/// Every file under `dir` (relative path, content), sorted.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            if meta.is_dir() {
                stack.push(p);
                out.push((rel, Vec::new()));
            } else {
                out.push((rel, std::fs::read(&p).unwrap_or_default()));
            }
        }
    }
    out.sort();
    out
}

/// Line and column (1-based) of the first `needle` in `text`.
fn line_col(text: &str, needle: &str) -> (usize, usize) {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in {text}"));
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let col = at - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

#[test]
fn an_output_that_is_an_input_is_refused_by_validate_and_run() {
    let dir = tmpdir("identity");
    let jsonl = rows(30, 20);
    let csv = "id,subject\n1,a\n2,b\n";
    std::fs::write(dir.join("in.jsonl"), &jsonl).unwrap();
    std::fs::write(dir.join("in.csv"), csv).unwrap();
    std::fs::create_dir_all(dir.join("out")).unwrap();
    let abs_jsonl = dir.join("in.jsonl").canonicalize().unwrap();
    let abs_csv = dir.join("in.csv").canonicalize().unwrap();
    let (abs_jsonl, abs_csv) = (abs_jsonl.to_str().unwrap(), abs_csv.to_str().unwrap());
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink("in.jsonl", dir.join("link.jsonl")).unwrap();
        std::fs::hard_link(dir.join("in.jsonl"), dir.join("hard.jsonl")).unwrap();
    }
    let jsonl_source = "plugin: jsonl, path: in.jsonl";
    let csv_source = "plugin: csv, path: in.csv";
    // (source, sink lines, the clashing value as written, what it clashes with)
    let mut cases: Vec<(&str, Vec<String>, String, &str)> = vec![
        (
            jsonl_source,
            vec!["path: out/../in.jsonl".into()],
            "out/../in.jsonl".into(),
            "source",
        ),
        (
            jsonl_source,
            vec!["path: .//in.jsonl".into()],
            ".//in.jsonl".into(),
            "source",
        ),
        (
            jsonl_source,
            vec![format!("path: {abs_jsonl}")],
            abs_jsonl.into(),
            "source",
        ),
        (
            jsonl_source,
            vec!["path: out/ok.jsonl".into(), "error_path: in.jsonl".into()],
            "in.jsonl".into(),
            "source",
        ),
        (
            jsonl_source,
            vec!["path: p.yaml".into()],
            "p.yaml".into(),
            "pipeline file",
        ),
        (
            jsonl_source,
            vec![
                "path: out/a.jsonl".into(),
                "error_path: out/../out/a.jsonl".into(),
            ],
            "out/../out/a.jsonl".into(),
            "path",
        ),
        (
            csv_source,
            vec!["plugin: csv".into(), format!("path: {abs_csv}")],
            abs_csv.into(),
            "source",
        ),
        (
            csv_source,
            vec!["plugin: csv".into(), "path: out/../in.csv".into()],
            "out/../in.csv".into(),
            "source",
        ),
    ];
    if cfg!(unix) {
        cases.push((
            jsonl_source,
            vec!["path: link.jsonl".into()],
            "link.jsonl".into(),
            "source",
        ));
        cases.push((
            jsonl_source,
            vec!["path: hard.jsonl".into()],
            "hard.jsonl".into(),
            "source",
        ));
    }
    for (source, mut sink, value, against) in cases {
        if !sink[0].starts_with("plugin:") {
            sink.insert(0, "plugin: jsonl".into());
        }
        let sink: Vec<&str> = sink.iter().map(String::as_str).collect();
        let yaml = pipeline(source, &sink, 4);
        std::fs::write(dir.join("p.yaml"), &yaml).unwrap();
        let before = snapshot(&dir);
        let (line, col) = line_col(&yaml, &format!(": {value}\n"));
        let at = format!("p.yaml:{line}:{}", col + 2);

        let out = elspeth(&dir, &["validate", "p.yaml"]);
        let report = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(1), "validate {value}:\n{report}");
        assert!(
            report.contains(&at),
            "validate {value}: expected {at} in\n{report}"
        );
        let expected = match against {
            "source" => "the file the source reads",
            "pipeline file" => "the pipeline file itself",
            _ => "`error_path` is the same file as `path`",
        };
        assert!(report.contains(expected), "validate {value}:\n{report}");
        assert!(report.contains("= help: "), "validate {value}:\n{report}");

        let out = elspeth(&dir, &["run", "p.yaml", "--with-mocks"]);
        let report = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(2), "run {value}:\n{report}");
        assert!(report.contains(&at), "run {value}:\n{report}");
        assert!(
            report.contains("would overwrite an input; nothing was run"),
            "run {value}:\n{report}"
        );
        assert_eq!(
            snapshot(&dir),
            before,
            "run {value}: every file untouched, none created"
        );
    }
    assert_eq!(
        std::fs::read_to_string(dir.join("in.jsonl")).unwrap(),
        jsonl
    );
    assert_eq!(std::fs::read_to_string(dir.join("in.csv")).unwrap(), csv);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn limit_0_keeps_an_existing_output() {
    let dir = tmpdir("limit0");
    std::fs::write(dir.join("in.jsonl"), rows(5, 10)).unwrap();
    std::fs::create_dir_all(dir.join("out")).unwrap();
    let previous = "{\"previous\":true}\n";
    std::fs::write(dir.join("out/o.jsonl"), previous).unwrap();
    let yaml = pipeline(
        "plugin: jsonl, path: in.jsonl",
        &[
            "plugin: jsonl",
            "path: out/o.jsonl",
            "error_path: out/e.jsonl",
        ],
        4,
    );
    std::fs::write(dir.join("p.yaml"), yaml).unwrap();
    let before = snapshot(&dir);
    let out = elspeth(&dir, &["run", "p.yaml", "--with-mocks", "--limit", "0"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("0 rows"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(snapshot(&dir), before, "nothing written, no temp file left");
    let _ = std::fs::remove_dir_all(dir);
}

/// A number in `0..n` that differs from try to try (no rand dependency).
fn pseudo_random(seed: u64, n: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(seed);
    h.finish() % n
}

#[cfg(unix)]
#[test]
fn kill_9_never_leaves_a_torn_output() {
    const ROWS: usize = 300;
    let dir = tmpdir("kill9");
    std::fs::write(dir.join("in.jsonl"), rows(ROWS, 3000)).unwrap();
    let yaml = pipeline(
        "plugin: jsonl, path: in.jsonl",
        &["plugin: jsonl", "path: out/o.jsonl"],
        50,
    );
    std::fs::write(dir.join("p.yaml"), yaml).unwrap();
    std::fs::create_dir_all(dir.join("out")).unwrap();
    let previous = "{\"previous\":true}\n".repeat(3);
    std::fs::write(dir.join("out/o.jsonl"), &previous).unwrap();
    let (mut kept, mut replaced) = (0, 0);
    for attempt in 0..8 {
        let mut child = command(
            env!("CARGO_BIN_EXE_elspeth"),
            &dir,
            &["run", "p.yaml", "--with-mocks", "--mock-latency-ms", "20"],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
        std::thread::sleep(Duration::from_millis(pseudo_random(attempt, 600)));
        child.kill().unwrap(); // SIGKILL
        let _ = child.wait();
        let now = std::fs::read_to_string(dir.join("out/o.jsonl")).unwrap();
        if now == previous {
            kept += 1;
            continue;
        }
        replaced += 1;
        assert!(now.ends_with('\n'), "attempt {attempt}: a torn last line");
        let ids: Vec<u64> = now
            .lines()
            .map(|l| {
                let row: serde_json::Value = serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("attempt {attempt}: a torn line ({e})"));
                row["id"].as_u64().unwrap()
            })
            .collect();
        assert_eq!(
            ids,
            (0..ROWS as u64).collect::<Vec<_>>(),
            "attempt {attempt}: a whole output"
        );
        // Start again from the previous content.
        std::fs::write(dir.join("out/o.jsonl"), &previous).unwrap();
    }
    eprintln!("kill -9: kept {kept}, replaced {replaced}");
    // One run to the end: it commits and removes the temp files of the
    // killed runs.
    let out = elspeth(&dir, &["run", "p.yaml", "--with-mocks"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let names: Vec<String> = std::fs::read_dir(dir.join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["o.jsonl"], "kept {kept}, replaced {replaced}");
    assert_eq!(
        std::fs::read_to_string(dir.join("out/o.jsonl"))
            .unwrap()
            .lines()
            .count(),
        ROWS
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A real write failure mid-run: the file size limit (`ulimit -f`, with
/// SIGXFSZ ignored so that the write fails with "File too large" like a
/// full disk) is far below the output's size.
#[cfg(target_os = "linux")]
#[test]
fn a_write_failure_prints_the_summary_and_exits_2() {
    let dir = tmpdir("efbig");
    std::fs::write(dir.join("in.jsonl"), rows(200, 3000)).unwrap();
    let yaml = pipeline(
        "plugin: jsonl, path: in.jsonl",
        &["plugin: jsonl", "path: out/o.jsonl"],
        8,
    );
    std::fs::write(dir.join("p.yaml"), yaml).unwrap();
    std::fs::create_dir_all(dir.join("out")).unwrap();
    let previous = "{\"previous\":true}\n";
    std::fs::write(dir.join("out/o.jsonl"), previous).unwrap();
    // 128 blocks: 64 KiB (dash) or 128 KiB (bash); the output is ~600 KB.
    let out = command(
        "sh",
        &dir,
        &[
            "-c",
            "trap '' XFSZ; ulimit -f 128 && exec \"$0\" \"$@\"",
            env!("CARGO_BIN_EXE_elspeth"),
            "run",
            "p.yaml",
            "--with-mocks",
        ],
    )
    .output()
    .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(2),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.starts_with("stopped `outputs`: "), "{stdout}");
    assert!(stdout.contains("  rows:    "), "{stdout}");
    let calls: u64 = stdout
        .split("llm:     ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.replace(',', "").parse().ok())
        .unwrap_or_else(|| panic!("calls paid in the summary: {stdout}"));
    assert!(calls > 0, "{stdout}");
    assert!(
        stderr.contains("error: sink ") && stderr.contains("o.jsonl"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("out/o.jsonl")).unwrap(),
        previous
    );
    let names: Vec<String> = std::fs::read_dir(dir.join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["o.jsonl"], "the temp file is removed");
    let _ = std::fs::remove_dir_all(dir);
}
