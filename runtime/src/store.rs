//! The run store: one SQLite file (WAL mode) that records each run and every
//! finished LLM call's result, so that a rerun after any interruption pays
//! only for the calls that had not finished.
//!
//! A result is keyed by two [`Fingerprint`]s: the transform's (what it calls:
//! plugin, endpoint, deployment or model, API version, never a key) and the
//! request's (every message, the model, temperature, max tokens, the
//! response format). A result is committed before the row that uses it is
//! emitted; failed calls are never stored.
//!
//! WAL with `synchronous = NORMAL`: a committed result survives the process
//! being killed (`kill -9`); only a power cut can lose the last commits,
//! which the next run then pays again.
//!
//! ```
//! use elspeth_runtime::store::{Fingerprint, RunStore};
//! use elspeth_runtime::llm::{LlmRequest, LlmResponse};
//! let store = RunStore::in_memory().unwrap();
//! let transform = Fingerprint::of_parts(&[("plugin", "azure_llm")]);
//! let request = Fingerprint::of_request(&LlmRequest::user("gpt-4o", "hello"));
//! assert!(store.lookup(&transform, &request).unwrap().is_none());
//! let reply = LlmResponse { content: "hi".into(), ..LlmResponse::default() };
//! let rt = tokio::runtime::Runtime::new().unwrap();
//! rt.block_on(store.commit(&transform, &request, &reply, None)).unwrap();
//! assert_eq!(store.lookup(&transform, &request).unwrap(), Some(reply));
//! ```

mod spans;

pub use spans::{KeptSpan, KeptSpans, StoreSpool};

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::llm::{Cost, CostParts, LlmRequest, LlmResponse, ResponseFormatRequest, Usage};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use crate::tier1::Tier1;
use crate::usage::UsageMeter;

/// The schema version this code reads and writes.
const SCHEMA_VERSION: i64 = 1;

/// Why the store could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused (locked, corrupt, full disk, ...).
    #[error("run store {}: {source}", path.display())]
    Sqlite {
        /// The store file (`:memory:` for an in-memory store).
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The folder of the store could not be created.
    #[error("run store {}: cannot create its folder: {source}", path.display())]
    Folder {
        /// The store file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file was written by a newer elspeth.
    #[error(
        "run store {}: schema version {found} is newer than this elspeth understands ({SCHEMA_VERSION}); upgrade elspeth or move the store (`--store PATH`)",
        path.display()
    )]
    NewerSchema {
        /// The store file.
        path: PathBuf,
        /// The version in the file.
        found: i64,
    },
    /// A batch of results could not be committed (full disk, locked file).
    #[error("run store {}: could not commit: {message}", path.display())]
    Write {
        /// The store file.
        path: PathBuf,
        /// SQLite's error.
        message: String,
    },
    /// A stored result could not be decoded (the row is treated as absent).
    #[error("run store {}: a stored result is not readable: {message}", path.display())]
    Corrupt {
        /// The store file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
}

/// A SHA-256 fingerprint (of a transform's target, or of a request).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of named parts, each length-prefixed so that
    /// `("a", "bc")` and `("ab", "c")` differ.
    pub fn of_parts(parts: &[(&str, &str)]) -> Self {
        let mut f = Fingerprinter::new();
        for (name, value) in parts {
            f.field(name, value.as_bytes());
        }
        f.finish()
    }

    /// The fingerprint of everything in `request` that changes the reply.
    pub fn of_request(request: &LlmRequest) -> Self {
        let mut f = Fingerprinter::new();
        f.field("model", request.model.as_bytes());
        for m in &request.messages {
            f.field(m.role.as_str(), m.content.as_bytes());
        }
        match request.temperature {
            Some(t) => f.field("temperature", &t.to_bits().to_le_bytes()),
            None => f.field("temperature", b"-"),
        }
        match request.max_tokens {
            Some(n) => f.field("max_tokens", &n.to_le_bytes()),
            None => f.field("max_tokens", b"-"),
        }
        // `json_response` 0 / 1 as before structured outputs, so the
        // replies stored for text and JSON requests stay valid.
        match &request.response_format {
            None => f.field("json_response", &[0]),
            Some(ResponseFormatRequest::JsonObject) => f.field("json_response", &[1]),
            Some(ResponseFormatRequest::JsonSchema(s)) => {
                f.field("json_response", &[2]);
                f.field("json_schema_name", s.name.as_bytes());
                f.field("json_schema_strict", &[u8::from(s.strict)]);
                f.field("json_schema", s.schema.to_string().as_bytes());
            }
        }
        f.finish()
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// Builds a [`Fingerprint`] field by field.
pub struct Fingerprinter(ring::digest::Context);

impl Default for Fingerprinter {
    fn default() -> Self {
        Self::new()
    }
}

impl Fingerprinter {
    /// An empty fingerprint.
    pub fn new() -> Self {
        Self(ring::digest::Context::new(&ring::digest::SHA256))
    }

    /// Adds one named field.
    pub fn field(&mut self, name: &str, value: &[u8]) {
        for part in [name.as_bytes(), value] {
            self.0.update(&(part.len() as u64).to_le_bytes());
            self.0.update(part);
        }
    }

    /// The fingerprint.
    pub fn finish(self) -> Fingerprint {
        let digest = self.0.finish();
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        Fingerprint(out)
    }
}

/// The id of a run in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunId(pub i64);

/// How a run ended, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Still running, or killed before it could say.
    Running,
    /// Every row was processed.
    Finished,
    /// Stopped early (a signal, a breaker, a budget).
    Stopped,
    /// Stopped by an error (a write failure).
    Failed,
}

impl RunStatus {
    /// The status stored as `word` (`None`: not one of ours).
    pub fn parse(word: &str) -> Option<Self> {
        [Self::Running, Self::Finished, Self::Stopped, Self::Failed]
            .into_iter()
            .find(|s| s.as_str() == word)
    }

    /// The word stored in the `runs.status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Finished => "finished",
            Self::Stopped => "stopped",
            Self::Failed => "failed",
        }
    }
}

/// The counts recorded when a run ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunCounts {
    /// Rows read from the source.
    pub rows_read: u64,
    /// Rows written without error.
    pub rows_ok: u64,
    /// Rows written with an error.
    pub rows_failed: u64,
    /// Calls paid in this run.
    pub calls: u64,
    /// Calls served from the store.
    pub cached_calls: u64,
}

/// The open store. Cheap to share (`Arc`); calls from many tasks are
/// serialised on one connection (each lookup or commit takes microseconds).
pub struct RunStore {
    /// Lookups and run records.
    conn: Mutex<Connection>,
    path: PathBuf,
    /// The thread that commits results in groups, on its own connection
    /// (WAL lets it write while lookups read); `None` for an in-memory store,
    /// which commits on `conn`.
    writer: Option<Writer>,
}

/// One result waiting to be committed.
struct Pending {
    transform: Fingerprint,
    request: Fingerprint,
    response: String,
    tokens_in: i64,
    tokens_out: i64,
    cost: Option<f64>,
    run: Option<i64>,
    done: Option<tokio::sync::oneshot::Sender<Result<(), CommitError>>>,
}

/// Why a commit failed; shared by every result of one group commit.
#[derive(Debug, Clone, thiserror::Error)]
enum CommitError {
    /// SQLite refused the transaction.
    #[error("{0}")]
    Sqlite(Arc<rusqlite::Error>),
    /// The writer thread is gone (it panicked, or the store is closing).
    #[error("the store's writer thread stopped")]
    WriterStopped,
}

impl From<rusqlite::Error> for CommitError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sqlite(Arc::new(e))
    }
}

impl Pending {
    fn new(
        transform: &Fingerprint,
        request: &Fingerprint,
        response: &LlmResponse,
        run: Option<RunId>,
        done: Option<tokio::sync::oneshot::Sender<Result<(), CommitError>>>,
    ) -> Self {
        let usage = response.usage.unwrap_or_default();
        Self {
            transform: *transform,
            request: *request,
            response: encode_response(response),
            tokens_in: i64::try_from(usage.input).unwrap_or(i64::MAX),
            tokens_out: i64::try_from(usage.output).unwrap_or(i64::MAX),
            cost: response.cost.map(|c| c.total).filter(|c| c.is_finite()),
            run: run.map(|r| r.0),
            done,
        }
    }
}

const INSERT_CALL: &str = "INSERT OR REPLACE INTO calls
     (transform_fp, request_fp, response, tokens_in, tokens_out, cost_usd, run_id, created_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

/// Inserts `batch` in one transaction.
fn insert_all(conn: &Connection, batch: &[Pending]) -> rusqlite::Result<()> {
    let tx = conn.unchecked_transaction()?;
    {
        let mut stmt = tx.prepare_cached(INSERT_CALL)?;
        let now = now_s();
        for p in batch {
            stmt.execute(params![
                &p.transform.0[..],
                &p.request.0[..],
                p.response,
                p.tokens_in,
                p.tokens_out,
                p.cost,
                p.run,
                now,
            ])?;
        }
    }
    tx.commit()
}

/// Most results committed in one transaction.
const GROUP: usize = 1024;

struct Writer {
    tx: Option<std::sync::mpsc::Sender<Pending>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    /// Group commit: whatever is waiting when the thread comes round goes
    /// into one transaction, so that many calls finishing at once cost one
    /// commit, and no async worker ever waits on SQLite to write.
    fn start(conn: Connection) -> Self {
        let (tx, rx) = std::sync::mpsc::channel::<Pending>();
        let thread = std::thread::Builder::new()
            .name("elspeth-store".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    while batch.len() < GROUP {
                        match rx.try_recv() {
                            Ok(p) => batch.push(p),
                            Err(_) => break,
                        }
                    }
                    let result = insert_all(&conn, &batch).map_err(CommitError::from);
                    for p in batch {
                        if let Some(done) = p.done {
                            let _ = done.send(result.clone());
                        }
                    }
                }
            })
            .ok();
        Self {
            tx: thread.is_some().then_some(tx),
            thread,
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the channel ends the thread once every queued result is
        // committed.
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl fmt::Debug for RunStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunStore")
            .field("path", &self.path)
            .finish()
    }
}

fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

impl RunStore {
    /// Opens (or creates) the store at `path`, creating its folder.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Folder {
                path: path.to_path_buf(),
                source,
            })?;
        }
        let sqlite = |source| StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(sqlite)?;
        let mut store = Self::init(conn, path.to_path_buf())?;
        let writer = Connection::open(path).map_err(sqlite)?;
        writer
            .busy_timeout(std::time::Duration::from_secs(10))
            .map_err(sqlite)?;
        writer
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(sqlite)?;
        store.writer = Some(Writer::start(writer));
        Ok(store)
    }

    /// A store in memory (tests, `store: {cache: false}` without a file).
    pub fn in_memory() -> Result<Self, StoreError> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|source| StoreError::Sqlite {
            path: path.clone(),
            source,
        })?;
        Self::init(conn, path)
    }

    fn init(conn: Connection, path: PathBuf) -> Result<Self, StoreError> {
        let err = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        // Another elspeth on the same store waits for its turn instead of
        // failing at once.
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        // One transaction: the tables are created with one WAL commit
        // (statement by statement, the WAL would grow by a page per table).
        conn.execute_batch(&format!(
            "BEGIN;
             CREATE TABLE IF NOT EXISTS meta (
                 key   TEXT PRIMARY KEY,
                 value INTEGER NOT NULL
             );
             CREATE TABLE IF NOT EXISTS runs (
                 id           INTEGER PRIMARY KEY,
                 pipeline     TEXT NOT NULL,
                 config_fp    TEXT NOT NULL,
                 started_at   REAL NOT NULL,
                 finished_at  REAL,
                 status       TEXT NOT NULL,
                 rows_read    INTEGER,
                 rows_ok      INTEGER,
                 rows_failed  INTEGER,
                 calls        INTEGER,
                 cached_calls INTEGER
             );
             CREATE TABLE IF NOT EXISTS calls (
                 transform_fp BLOB NOT NULL,
                 request_fp   BLOB NOT NULL,
                 response     TEXT NOT NULL,
                 tokens_in    INTEGER,
                 tokens_out   INTEGER,
                 cost_usd     REAL,
                 run_id       INTEGER,
                 created_at   REAL NOT NULL,
                 PRIMARY KEY (transform_fp, request_fp)
             ) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS checkpoints (
                 scope TEXT NOT NULL,
                 key   TEXT NOT NULL,
                 value TEXT NOT NULL,
                 PRIMARY KEY (scope, key)
             ) WITHOUT ROWID;
             {}
             COMMIT;",
            spans::SCHEMA
        ))
        .map_err(err)?;
        let found: Option<i64> = conn
            .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(err)?;
        match found {
            Some(v) if v > SCHEMA_VERSION => {
                return Err(StoreError::NewerSchema { path, found: v });
            }
            Some(_) => {}
            None => {
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema', ?1)",
                    [SCHEMA_VERSION],
                )
                .map_err(err)?;
            }
        }
        Ok(Self {
            conn: Mutex::new(conn),
            path,
            writer: None,
        })
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written
        // (every statement is its own transaction): go on with it.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sqlite(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Records the start of a run.
    pub fn begin_run(&self, pipeline: &str, config: &Fingerprint) -> Result<RunId, StoreError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO runs (pipeline, config_fp, started_at, status) VALUES (?1, ?2, ?3, ?4)",
            params![
                pipeline,
                config.to_string(),
                now_s(),
                RunStatus::Running.as_str()
            ],
        )
        .map_err(|e| self.sqlite(e))?;
        Ok(RunId(conn.last_insert_rowid()))
    }

    /// How the latest run recorded in this store ended (`None`: no run).
    pub fn last_run_status(&self) -> Result<Option<RunStatus>, StoreError> {
        let conn = self.conn();
        let word: Option<String> = conn
            .query_row(
                "SELECT status FROM runs ORDER BY id DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.sqlite(e))?;
        Ok(word.and_then(|w| RunStatus::parse(&w)))
    }

    /// Records the end of a run.
    pub fn finish_run(
        &self,
        run: RunId,
        status: RunStatus,
        counts: &RunCounts,
    ) -> Result<(), StoreError> {
        let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.conn()
            .execute(
                "UPDATE runs SET finished_at = ?2, status = ?3, rows_read = ?4, rows_ok = ?5,
                 rows_failed = ?6, calls = ?7, cached_calls = ?8 WHERE id = ?1",
                params![
                    run.0,
                    now_s(),
                    status.as_str(),
                    as_i64(counts.rows_read),
                    as_i64(counts.rows_ok),
                    as_i64(counts.rows_failed),
                    as_i64(counts.calls),
                    as_i64(counts.cached_calls),
                ],
            )
            .map_err(|e| self.sqlite(e))?;
        Ok(())
    }

    /// The stored result of `request` for `transform`, if any.
    pub fn lookup(
        &self,
        transform: &Fingerprint,
        request: &Fingerprint,
    ) -> Result<Option<LlmResponse>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT response FROM calls WHERE transform_fp = ?1 AND request_fp = ?2",
            )
            .map_err(|e| self.sqlite(e))?;
        let text: Option<String> = stmt
            .query_row(params![&transform.0[..], &request.0[..]], |r| r.get(0))
            .optional()
            .map_err(|e| self.sqlite(e))?;
        text.map(|t| decode_response(&t).map_err(|e| self.corrupt(e.to_string())))
            .transpose()
    }

    fn corrupt(&self, message: String) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            message,
        }
    }

    /// Stores a finished call's result (replacing an older one) and
    /// returns once it is committed. Many commits in flight at once share
    /// one transaction.
    pub async fn commit(
        &self,
        transform: &Fingerprint,
        request: &Fingerprint,
        response: &LlmResponse,
        run: Option<RunId>,
    ) -> Result<(), StoreError> {
        let (done, committed) = tokio::sync::oneshot::channel();
        let pending = Pending::new(transform, request, response, run, Some(done));
        let queued = match self.writer.as_ref().and_then(|w| w.tx.as_ref()) {
            Some(tx) => tx.send(pending).map_err(|e| e.0),
            None => Err(pending),
        };
        let result = match queued {
            Ok(()) => committed.await.unwrap_or(Err(CommitError::WriterStopped)),
            // In memory (or no writer thread): commit here.
            Err(pending) => {
                insert_all(&self.conn(), std::slice::from_ref(&pending)).map_err(CommitError::from)
            }
        };
        result.map_err(|e| StoreError::Write {
            path: self.path.clone(),
            message: e.to_string(),
        })
    }

    /// The checkpoint `key` of `scope` (e.g. a submitted batch job of one
    /// transform), if any.
    pub fn load_checkpoint(&self, scope: &str, key: &str) -> Result<Option<String>, StoreError> {
        self.conn()
            .query_row(
                "SELECT value FROM checkpoints WHERE scope = ?1 AND key = ?2",
                params![scope, key],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.sqlite(e))
    }

    /// Saves (or replaces) a checkpoint.
    pub fn save_checkpoint(&self, scope: &str, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO checkpoints (scope, key, value) VALUES (?1, ?2, ?3)",
                params![scope, key, value],
            )
            .map_err(|e| self.sqlite(e))?;
        Ok(())
    }

    /// Removes a checkpoint (a missing one is fine).
    pub fn remove_checkpoint(&self, scope: &str, key: &str) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "DELETE FROM checkpoints WHERE scope = ?1 AND key = ?2",
                params![scope, key],
            )
            .map_err(|e| self.sqlite(e))?;
        Ok(())
    }

    /// How many results the store holds.
    pub fn stored_calls(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn()
            .query_row("SELECT COUNT(*) FROM calls", [], |r| r.get(0))
            .map_err(|e| self.sqlite(e))?;
        Ok(u64::try_from(n).unwrap_or_default())
    }
}

/// A reply as the store keeps it: JSON with `content` and whichever of the
/// other fields the reply has, in this order. Written straight from the
/// reply (no intermediate `serde_json::Value`: this runs for every paid
/// call); read back by [`decode_response`].
#[derive(serde::Serialize)]
struct StoredReply<'a> {
    content: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finish_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    /// Only a finite cost is kept (JSON has no NaN).
    #[serde(skip_serializing_if = "Option::is_none")]
    cost: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cost_parts: Option<CostParts>,
}

fn encode_response(r: &LlmResponse) -> String {
    let cost = r.cost.filter(|c| c.total.is_finite());
    let reply = StoredReply {
        content: &r.content,
        model: r.model.as_deref(),
        usage: r.usage,
        finish_reason: r.finish_reason.as_deref(),
        id: r.id.as_deref(),
        cost: cost.map(|c| c.total),
        cost_parts: cost.and_then(|c| c.parts),
    };
    // Serializing strings, numbers and a derived struct into a String
    // cannot fail.
    serde_json::to_string(&reply).unwrap_or_default()
}

/// Why a stored reply cannot be read back.
#[derive(Debug, thiserror::Error)]
enum DecodeError {
    /// Not JSON.
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    /// JSON without the reply's text.
    #[error("no `content`")]
    NoContent,
}

fn decode_response(text: &str) -> Result<LlmResponse, DecodeError> {
    let v: Value = serde_json::from_str(text)?;
    let string = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let content = string("content").ok_or(DecodeError::NoContent)?;
    let usage = v
        .get("usage")
        .map(|u| serde_json::from_value::<Usage>(u.clone()))
        .transpose()?;
    Ok(LlmResponse {
        content,
        model: string("model"),
        usage,
        finish_reason: string("finish_reason"),
        id: string("id"),
        cost: v.get("cost").and_then(Value::as_f64).map(|total| Cost {
            total,
            parts: v
                .get("cost_parts")
                .and_then(|p| serde_json::from_value(p.clone()).ok()),
        }),
    })
}

/// One transform's view of the store, handed to the engine with each row:
/// look a request up before paying for it, commit its result before the row
/// goes on.
#[derive(Debug, Clone)]
pub struct CallCache {
    store: Arc<RunStore>,
    transform: Fingerprint,
    run: Option<RunId>,
    /// `false` with `--no-cache`: results are still committed, never served.
    serve: bool,
    meter: Arc<UsageMeter>,
    /// Tier 1 records each hit as an `llm.chat` span marked `cache_hit`.
    tier1: Option<(Tier1, String)>,
}

impl CallCache {
    /// The cache of the transform whose fingerprint is `transform`.
    pub fn new(
        store: Arc<RunStore>,
        transform: Fingerprint,
        run: Option<RunId>,
        serve: bool,
        meter: Arc<UsageMeter>,
    ) -> Self {
        Self {
            store,
            transform,
            run,
            serve,
            meter,
            tier1: None,
        }
    }

    /// Records every hit in Tier 1 as an `llm.chat` span of `transform`
    /// with `elspeth.cache_hit = true`.
    pub fn with_tier1(mut self, tier1: Tier1, transform: impl Into<String>) -> Self {
        self.tier1 = Some((tier1, transform.into()));
        self
    }

    /// The stored reply to `request`, counted as a call from the store.
    /// A store that cannot be read is logged and treated as a miss (the
    /// call is paid again rather than the row failing).
    pub fn lookup(&self, request: &LlmRequest) -> Option<LlmResponse> {
        if !self.serve {
            return None;
        }
        let key = Fingerprint::of_request(request);
        match self.store.lookup(&self.transform, &key) {
            Ok(Some(response)) => {
                self.meter.record_cached(&response);
                if let Some((tier1, transform)) = &self.tier1 {
                    tier1.record_cache_hit(transform);
                }
                Some(response)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!("{e}; the call is made again");
                None
            }
        }
    }

    /// Commits a paid reply before it is used.
    pub async fn commit(
        &self,
        request: &LlmRequest,
        response: &LlmResponse,
    ) -> Result<(), StoreError> {
        let key = Fingerprint::of_request(request);
        self.store
            .commit(&self.transform, &key, response, self.run)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(content: &str) -> LlmResponse {
        LlmResponse {
            content: content.into(),
            model: Some("gpt-4o-2024-08-06".into()),
            usage: Some(Usage {
                input: 12,
                output: 3,
                total: 15,
                ..Default::default()
            }),
            finish_reason: Some("stop".into()),
            id: Some("chatcmpl-1".into()),
            cost: Some(Cost::reported(0.00042)),
        }
    }

    #[test]
    fn a_reply_is_stored_as_the_json_the_store_has_always_kept() {
        let full = LlmResponse {
            content: "spam \"quoted\"\n".into(),
            cost: Some(Cost {
                total: 0.00042,
                parts: Some(CostParts {
                    input: 0.0003,
                    cached_input: 0.0,
                    output: 0.00012,
                    reasoning: 0.0,
                }),
            }),
            ..reply("x")
        };
        let bare = LlmResponse {
            content: "only text".into(),
            model: None,
            usage: None,
            finish_reason: None,
            id: None,
            cost: Some(Cost::reported(f64::NAN)),
        };
        // What the store wrote before (and reads back): `content` first,
        // then the fields present, a cost only when finite.
        let expected = [
            serde_json::json!({
                "content": "spam \"quoted\"\n",
                "model": "gpt-4o-2024-08-06",
                "usage": {"input": 12, "output": 3, "total": 15, "cached_input": 0, "reasoning": 0},
                "finish_reason": "stop",
                "id": "chatcmpl-1",
                "cost": 0.00042,
                "cost_parts": {"input": 0.0003, "cached_input": 0.0, "output": 0.00012, "reasoning": 0.0},
            })
            .to_string(),
            serde_json::json!({"content": "only text"}).to_string(),
        ];
        for (r, want) in [&full, &bare].into_iter().zip(expected) {
            let text = encode_response(r);
            assert_eq!(text, want);
            let back = decode_response(&text).unwrap();
            let kept_cost = r.cost.filter(|c| c.total.is_finite());
            assert_eq!(
                back,
                LlmResponse {
                    cost: kept_cost,
                    ..r.clone()
                }
            );
        }
    }

    #[tokio::test]
    async fn a_committed_result_survives_reopening_the_file() {
        let dir = std::env::temp_dir().join(format!("elspeth-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("nested/p.elspeth.db");
        let t = Fingerprint::of_parts(&[("plugin", "azure_llm"), ("deployment", "gpt-4o")]);
        let r = Fingerprint::of_request(&LlmRequest::user("gpt-4o", "hello"));
        {
            let store = RunStore::open(&path).unwrap();
            let run = store.begin_run("p", &t).unwrap();
            store.commit(&t, &r, &reply("hi"), Some(run)).await.unwrap();
            store
                .finish_run(run, RunStatus::Finished, &RunCounts::default())
                .unwrap();
        }
        let store = RunStore::open(&path).unwrap();
        assert_eq!(store.lookup(&t, &r).unwrap(), Some(reply("hi")));
        assert_eq!(store.stored_calls().unwrap(), 1);
        let other = Fingerprint::of_parts(&[("plugin", "azure_llm"), ("deployment", "gpt-4.1")]);
        assert_eq!(store.lookup(&other, &r).unwrap(), None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn every_part_of_a_request_changes_its_fingerprint() {
        let base = LlmRequest::user("gpt-4o", "hello");
        let fp = Fingerprint::of_request(&base);
        let mut changed = Vec::new();
        let mut r = base.clone();
        r.model = "gpt-4o-mini".into();
        changed.push(r);
        let mut r = base.clone();
        r.messages[0].content = "hello!".into();
        changed.push(r);
        let mut r = base.clone();
        r.messages
            .insert(0, crate::llm::ChatMessage::system("be brief"));
        changed.push(r);
        let mut r = base.clone();
        r.temperature = Some(0.0);
        changed.push(r);
        let mut r = base.clone();
        r.max_tokens = Some(10);
        changed.push(r);
        let mut r = base.clone();
        r.response_format = Some(ResponseFormatRequest::JsonObject);
        changed.push(r);
        let schema = |strict: bool, kind: &str| {
            let mut r = base.clone();
            r.response_format = Some(ResponseFormatRequest::JsonSchema(
                crate::llm::JsonSchemaRequest {
                    name: "ticket".into(),
                    schema: Arc::new(
                        serde_json::json!({"type": "object", "properties": {"c": {"type": kind}}}),
                    ),
                    strict,
                },
            ));
            r
        };
        changed.push(schema(true, "string"));
        changed.push(schema(false, "string"));
        changed.push(schema(true, "integer"));
        assert_ne!(
            Fingerprint::of_request(&schema(true, "string")),
            Fingerprint::of_request(&schema(true, "integer")),
            "a changed schema is not served the old replies"
        );
        assert_eq!(
            Fingerprint::of_request(&schema(true, "string")),
            Fingerprint::of_request(&schema(true, "string"))
        );
        for r in &changed {
            assert_ne!(Fingerprint::of_request(r), fp, "{r:?}");
        }
        assert_eq!(Fingerprint::of_request(&base.clone()), fp);
        assert_ne!(
            Fingerprint::of_parts(&[("a", "bc")]),
            Fingerprint::of_parts(&[("ab", "c")])
        );
    }

    #[tokio::test]
    async fn no_cache_commits_but_never_serves() {
        let store = Arc::new(RunStore::in_memory().unwrap());
        let meter = Arc::new(UsageMeter::new());
        let t = Fingerprint::of_parts(&[("plugin", "x")]);
        let request = LlmRequest::user("m", "p");
        let fresh = CallCache::new(store.clone(), t, None, false, meter.clone());
        fresh.commit(&request, &reply("a")).await.unwrap();
        assert_eq!(fresh.lookup(&request), None);
        let serving = CallCache::new(store, t, None, true, meter.clone());
        assert_eq!(serving.lookup(&request), Some(reply("a")));
        let s = meter.snapshot();
        assert_eq!((s.calls, s.cached_calls, s.saved_tokens), (0, 1, 15));
    }

    #[tokio::test]
    async fn many_commits_at_once_are_all_stored() {
        let dir = std::env::temp_dir().join(format!("elspeth-store-group-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Arc::new(RunStore::open(&dir.join("g.db")).unwrap());
        let t = Fingerprint::of_parts(&[("plugin", "x")]);
        let tasks: Vec<_> = (0..300)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let r = Fingerprint::of_request(&LlmRequest::user("m", format!("p{i}")));
                    store.commit(&t, &r, &reply(&format!("a{i}")), None).await
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(store.stored_calls().unwrap(), 300);
        let r = Fingerprint::of_request(&LlmRequest::user("m", "p299"));
        assert_eq!(store.lookup(&t, &r).unwrap(), Some(reply("a299")));
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_newer_schema_is_refused_with_a_fix() {
        let dir = std::env::temp_dir().join(format!("elspeth-store-new-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("s.db");
        drop(RunStore::open(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .execute("UPDATE meta SET value = 99 WHERE key = 'schema'", [])
            .unwrap();
        let e = RunStore::open(&path).unwrap_err();
        assert!(
            matches!(e, StoreError::NewerSchema { found: 99, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("--store PATH"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
