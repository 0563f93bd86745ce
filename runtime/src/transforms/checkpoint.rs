//! Checkpoints of submitted batch jobs, so that a re-run after a crash
//! resumes polling the same job instead of paying for a new one.
//!
//! With a run store (every `elspeth run`) a checkpoint is a row of the
//! store's `checkpoints` table (scope `<plugin>/t<transform index>`);
//! without one (a library run with no store) it is a small JSON file next to
//! the sink: `.elspeth-<plugin>-t<transform index>-<job key>.checkpoint.json`.
//! The job key is a hash of the job's input (endpoint host, deployment and
//! every JSONL line), so a re-run with the same rows and prompt finds it and
//! any change submits a new job. Written right after the job is created
//! (atomically: temp file + rename, or one SQLite statement); removed once
//! its results are collected.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::store::RunStore;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Checkpoint format version.
const VERSION: u32 = 1;

/// A submitted batch job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchCheckpoint {
    /// Format version (1).
    pub version: u32,
    /// Plugin that submitted it.
    pub plugin: String,
    /// Position of the transform in the pipeline.
    pub transform_index: usize,
    /// Hash of the job's input.
    pub job_key: String,
    /// The provider's batch id.
    pub batch_id: String,
    /// The uploaded input file.
    pub input_file_id: String,
    /// Deployment the job runs on.
    pub deployment: String,
    /// Lines in the job.
    pub rows: usize,
    /// Submission time, Unix milliseconds.
    pub submitted_at_ms: u64,
}

impl BatchCheckpoint {
    /// When the job was submitted.
    pub fn submitted_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.submitted_at_ms)
    }
}

/// Where one transform keeps its checkpoints.
#[derive(Debug, Clone)]
pub struct CheckpointDir {
    dir: PathBuf,
    plugin: String,
    transform_index: usize,
    /// The run store: checkpoints go there instead of into `dir`.
    store: Option<Arc<RunStore>>,
}

impl CheckpointDir {
    /// Checkpoints of transform `transform_index` (`plugin`) in `dir`.
    pub fn new(dir: impl Into<PathBuf>, plugin: &str, transform_index: usize) -> Self {
        Self {
            dir: dir.into(),
            plugin: plugin.to_string(),
            transform_index,
            store: None,
        }
    }

    /// Checkpoints of transform `transform_index` (`plugin`) in the run store.
    pub fn in_store(store: Arc<RunStore>, plugin: &str, transform_index: usize) -> Self {
        Self {
            dir: PathBuf::new(),
            plugin: plugin.to_string(),
            transform_index,
            store: Some(store),
        }
    }

    fn scope(&self) -> String {
        format!("{}/t{}", self.plugin, self.transform_index)
    }

    /// Where the checkpoint of job `key` is, for messages.
    pub fn describe(&self, key: &str) -> String {
        match &self.store {
            Some(store) => format!(
                "{} (checkpoint {}/{key})",
                store.path().display(),
                self.scope()
            ),
            None => self.path(key).display().to_string(),
        }
    }

    /// The file of job `key`.
    pub fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!(
            ".elspeth-{}-t{}-{key}.checkpoint.json",
            self.plugin, self.transform_index
        ))
    }

    /// A new checkpoint record for this transform, stamped now.
    pub fn record(
        &self,
        key: &str,
        batch_id: &str,
        input_file_id: &str,
        deployment: &str,
        rows: usize,
    ) -> BatchCheckpoint {
        BatchCheckpoint {
            version: VERSION,
            plugin: self.plugin.clone(),
            transform_index: self.transform_index,
            job_key: key.to_string(),
            batch_id: batch_id.to_string(),
            input_file_id: input_file_id.to_string(),
            deployment: deployment.to_string(),
            rows,
            submitted_at_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
        }
    }

    /// The checkpoint of job `key`, if there is a valid one. An unreadable
    /// or foreign file is ignored with a warning (and left in place).
    pub fn load(&self, key: &str) -> Option<BatchCheckpoint> {
        let path = self.describe(key);
        let read = match &self.store {
            Some(store) => store
                .load_checkpoint(&self.scope(), key)
                .map_err(|e| e.to_string()),
            None => match std::fs::read_to_string(self.path(key)) {
                Ok(t) => Ok(Some(t)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e.to_string()),
            },
        };
        let text = match read {
            Ok(Some(t)) => t,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(path = %path, error = %e, "could not read batch checkpoint; submitting a new job");
                return None;
            }
        };
        match serde_json::from_str::<BatchCheckpoint>(&text) {
            Ok(cp) if cp.version == VERSION && cp.job_key == key && !cp.batch_id.is_empty() => {
                Some(cp)
            }
            Ok(_) => {
                tracing::warn!(path = %path, "batch checkpoint does not match this job; submitting a new job");
                None
            }
            Err(e) => {
                tracing::warn!(path = %path, error = %e, "batch checkpoint is not valid JSON; submitting a new job");
                None
            }
        }
    }

    /// Writes `cp` atomically (temp file, then rename).
    pub fn save(&self, cp: &BatchCheckpoint) -> io::Result<()> {
        if let Some(store) = &self.store {
            let text = serde_json::to_string(cp).map_err(io::Error::other)?;
            return store
                .save_checkpoint(&self.scope(), &cp.job_key, &text)
                .map_err(io::Error::other);
        }
        std::fs::create_dir_all(&self.dir)?;
        let path = self.path(&cp.job_key);
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(cp).map_err(io::Error::other)?;
        write_synced(&tmp, text.as_bytes())?;
        std::fs::rename(&tmp, &path)
    }

    /// Removes the checkpoint of job `key` (a missing file is fine).
    pub fn remove(&self, key: &str) {
        if let Some(store) = &self.store {
            if let Err(e) = store.remove_checkpoint(&self.scope(), key) {
                tracing::warn!(error = %e, "could not remove batch checkpoint");
            }
            return;
        }
        let path = self.path(key);
        if let Err(e) = std::fs::remove_file(&path)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), error = %e, "could not remove batch checkpoint");
        }
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// A stable 64-bit FNV-1a hash of `parts` (each length-prefixed), as 16 hex
/// digits. Stable across runs, platforms and Rust versions.
pub fn job_key(parts: &[&[u8]]) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(PRIME);
        }
    };
    for part in parts {
        eat(&(part.len() as u64).to_le_bytes());
        eat(part);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "elspeth-cp-{name}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn key_is_stable_and_part_sensitive() {
        assert_eq!(job_key(&[b"a", b"bc"]), job_key(&[b"a", b"bc"]));
        assert_ne!(job_key(&[b"a", b"bc"]), job_key(&[b"ab", b"c"]));
        // FNV-1a of the empty input is the offset basis.
        assert_eq!(job_key(&[]), "cbf29ce484222325");
        assert_eq!(job_key(&[b"x"]).len(), 16);
    }

    #[test]
    fn save_load_remove() {
        let dir = tmpdir("roundtrip");
        let store = CheckpointDir::new(&dir, "azure_batch_llm", 1);
        assert!(store.load("k1").is_none());
        let cp = store.record("k1", "batch_1", "file-1", "gpt-4o", 3);
        store.save(&cp).unwrap();
        assert!(
            store
                .path("k1")
                .ends_with(".elspeth-azure_batch_llm-t1-k1.checkpoint.json")
        );
        assert_eq!(store.load("k1"), Some(cp.clone()));
        assert!(store.load("k2").is_none());
        std::fs::write(store.path("k3"), "{not json").unwrap();
        assert!(store.load("k3").is_none());
        store.remove("k1");
        store.remove("k1");
        assert!(store.load("k1").is_none());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn in_the_run_store_nothing_is_written_beside_the_sink() {
        let dir = tmpdir("in-store");
        let run_store = Arc::new(RunStore::open(&dir.join("runs.db")).unwrap());
        let store = CheckpointDir::in_store(run_store.clone(), "azure_batch_llm", 2);
        assert!(store.load("k1").is_none());
        let cp = store.record("k1", "batch_1", "file-1", "gpt-4o", 3);
        store.save(&cp).unwrap();
        assert_eq!(store.load("k1"), Some(cp.clone()));
        // Another transform (or a reopened store) sees only its own.
        let reopened = Arc::new(RunStore::open(&dir.join("runs.db")).unwrap());
        assert_eq!(
            CheckpointDir::in_store(reopened.clone(), "azure_batch_llm", 2).load("k1"),
            Some(cp)
        );
        assert!(
            CheckpointDir::in_store(reopened, "azure_batch_llm", 3)
                .load("k1")
                .is_none()
        );
        assert!(store.describe("k1").contains("azure_batch_llm/t2/k1"));
        store.remove("k1");
        assert!(store.load("k1").is_none());
        let files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("checkpoint"))
            .collect();
        assert!(files.is_empty(), "{files:?}");
        drop(run_store);
        let _ = std::fs::remove_dir_all(dir);
    }
}
