//! The sharded flow as the shipped examples run it: the command lines of
//! examples/kubernetes/*.yaml and examples/slurm/*.sh, run with the real
//! CLI against the mocks (a shim adds `--with-mocks`), merge back into
//! exactly what one unsharded run writes. Also `--shard` parsing errors.

use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "../../runtime/tests/emulators/mod.rs"]
mod emulators;
mod support;
use support::{clean_command, quickstart_dir, quickstart_yaml, repo, text, tickets};

const BIN: &str = env!("CARGO_BIN_EXE_elspeth");

fn elspeth(dir: &Path, args: &[&str]) -> std::process::Output {
    clean_command(BIN, dir, args).output().expect("run elspeth")
}

/// A fresh quick start with 40 tickets.
fn workdir(name: &str) -> PathBuf {
    quickstart_dir(
        &format!("shards-{name}"),
        &quickstart_yaml(),
        &tickets(40, None),
    )
}

/// The output of one unsharded run of `dir`'s pipeline (then removed).
fn unsharded(dir: &Path) -> String {
    let yaml = dir.join("ticket-triage.yaml");
    let out = elspeth(
        dir,
        &[
            "run",
            yaml.to_str().unwrap(),
            "--with-mocks",
            "--store",
            "whole.db",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let path = dir.join("out/triaged.jsonl");
    let whole = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(path).unwrap();
    whole
}

/// The `args: [...]` of a Kubernetes manifest (a JSON-compatible flow
/// sequence).
fn k8s_args(file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(repo().join(file)).unwrap();
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("args: [\""))
        .unwrap_or_else(|| panic!("no args line in {file}"));
    serde_json::from_str(line.trim_start_matches("args:").trim()).unwrap()
}

/// Python (boto3, from the emulators' virtualenv) against the S3 emulator.
fn s3(endpoint: &str, code: &str) -> String {
    let script = format!(
        "import boto3, sys\ns3 = boto3.client('s3', endpoint_url={endpoint:?}, aws_access_key_id='testing', aws_secret_access_key='testing', region_name='us-east-1')\n{code}"
    );
    let out = Command::new(emulators::venv().join("bin/python"))
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

/// The Indexed Job's pipeline reads and writes S3: run against moto, its
/// shard command (each index) and the merge Job's command give exactly the
/// object one unsharded run writes.
#[test]
fn the_kubernetes_indexed_job_and_merge_job_run_as_written() {
    let moto = emulators::moto();
    let endpoint = format!("http://127.0.0.1:{}", moto.port);
    let dir = workdir("k8s");
    let tickets = std::fs::read_to_string(dir.join("tickets.jsonl")).unwrap();
    s3(
        &endpoint,
        &format!(
            "s3.create_bucket(Bucket='ticket-triage')\ns3.put_object(Bucket='ticket-triage', Key='tickets.jsonl', Body={tickets:?}.encode())"
        ),
    );
    let get = |key: &str| {
        s3(
            &endpoint,
            &format!(
                "sys.stdout.write(s3.get_object(Bucket='ticket-triage', Key={key:?})['Body'].read().decode())"
            ),
        )
    };
    let pipeline = repo().join("examples/kubernetes/ticket-triage.yaml");
    let run = |args: &[String]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = clean_command(BIN, &dir, &args)
            .env("AWS_ENDPOINT", &endpoint)
            .env("AWS_ALLOW_HTTP", "true")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        out
    };
    let adapt = |a: &String, i: u32| {
        a.replace("$(JOB_COMPLETION_INDEX)", &i.to_string())
            .replace("/work/", &format!("{}/", dir.display()))
            .replace("/pipeline/ticket-triage.yaml", pipeline.to_str().unwrap())
    };
    // One unsharded run: the reference object.
    run(&[
        "run".into(),
        pipeline.to_str().unwrap().into(),
        "--with-mocks".into(),
        "--store".into(),
        dir.join("whole.db").to_str().unwrap().into(),
    ]);
    let whole = get("out/triaged.jsonl");
    assert_eq!(whole.lines().count(), 40);
    s3(
        &endpoint,
        "s3.delete_object(Bucket='ticket-triage', Key='out/triaged.jsonl')",
    );

    // A dry run of the object-storage pipeline is ready without reading
    // the bucket.
    let dry = run(&[
        "run".into(),
        pipeline.to_str().unwrap().into(),
        "--with-mocks".into(),
        "--dry-run".into(),
    ]);
    assert!(
        text(&dry.stdout).contains("(object storage: not read by a dry run)"),
        "{}",
        text(&dry.stdout)
    );

    let shard_args = k8s_args("examples/kubernetes/indexed-job.yaml");
    assert_eq!(shard_args[0], "run");
    for i in 0..4 {
        let mut args: Vec<String> = shard_args.iter().map(|a| adapt(a, i)).collect();
        args.push("--with-mocks".into());
        let out = run(&args);
        assert!(
            text(&out.stderr).contains(&format!("(shard {i}/4)")),
            "{}",
            text(&out.stderr)
        );
        assert!(
            dir.join(format!("ticket-triage.elspeth.shard-{i}-of-4.db"))
                .is_file()
        );
        assert!(!get(&format!("out/triaged.shard-{i}-of-4.jsonl")).is_empty());
    }
    let merge: Vec<String> = k8s_args("examples/kubernetes/merge-job.yaml")
        .iter()
        .map(|a| adapt(a, 0))
        .collect();
    let out = run(&merge);
    assert!(
        text(&out.stdout).contains("merged 4 shards: 40 rows"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(get("out/triaged.jsonl"), whole);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_slurm_array_and_merge_scripts_run_as_written() {
    let dir = workdir("slurm");
    let whole = unsharded(&dir);
    // `srun` runs its command; `elspeth` is the real binary, pointed at the
    // mocks.
    let shims = dir.join("shims");
    std::fs::create_dir_all(&shims).unwrap();
    let shim = |name: &str, body: &str| {
        let path = shims.join(name);
        std::fs::write(&path, format!("#!/usr/bin/env bash\n{body}\n")).unwrap();
        Command::new("chmod").arg("+x").arg(&path).status().unwrap();
    };
    shim("srun", "exec \"$@\"");
    shim(
        "elspeth",
        &format!(
            "if [ \"$1\" = run ]; then exec '{BIN}' \"$@\" --with-mocks; else exec '{BIN}' \"$@\"; fi"
        ),
    );
    let path = format!(
        "{}:{}",
        shims.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let script = |name: &str, task: Option<u32>| {
        let mut cmd = clean_command(
            "bash",
            &dir,
            &[repo().join("examples/slurm").join(name).to_str().unwrap()],
        );
        cmd.env("PATH", &path)
            .env("PIPELINE", dir.join("ticket-triage.yaml"));
        if let Some(task) = task {
            cmd.env("SLURM_ARRAY_TASK_ID", task.to_string());
        }
        cmd.output().unwrap()
    };
    let array = std::fs::read_to_string(repo().join("examples/slurm/array.sh")).unwrap();
    assert!(array.contains("#SBATCH --array=0-3"));
    for task in 0..4 {
        let out = script("array.sh", Some(task));
        assert_eq!(
            out.status.code(),
            Some(0),
            "task {task}: {}",
            text(&out.stderr)
        );
    }
    let out = script("merge.sh", None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(dir.join("out/triaged.jsonl")).unwrap(),
        whole
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_shards_are_usage_errors_that_say_how_to_write_one() {
    let dir = workdir("bad");
    let yaml = dir.join("ticket-triage.yaml");
    for (shard, says) in [
        (
            "4/4",
            "shard index 4 is out of range for 4 shards: use 0 to 3",
        ),
        ("1/0", "a shard count must be at least 1"),
        ("two", "write INDEX/COUNT, e.g. `0/4`"),
    ] {
        let out = elspeth(
            &dir,
            &[
                "run",
                yaml.to_str().unwrap(),
                "--with-mocks",
                "--shard",
                shard,
            ],
        );
        assert_eq!(out.status.code(), Some(2), "{shard}");
        assert!(
            text(&out.stderr).contains(says),
            "{shard}: {}",
            text(&out.stderr)
        );
    }
    // Merging before any shard ran names the missing one.
    let out = elspeth(&dir, &["merge", yaml.to_str().unwrap(), "--shards", "2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("shard 0/2 has no output"),
        "{}",
        text(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(dir);
}
