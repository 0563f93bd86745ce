//! Sources: JSON Lines and CSV files, read one row at a time on a blocking
//! thread (memory does not grow with the file).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use elspeth_schema::config::SourceConfig;
use serde_json::Value;

use super::RunError;
use super::item::Item;
use crate::row::{Row, RowIdentity, Shard};

/// Which rows of the source a run takes, and how a row is known: its
/// identity (of the source's `key` field, else of the row) decides its
/// shard and its trace sampling. A record that is not a row counts as the
/// empty row (every run and `elspeth merge` place it the same way).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct RowSelection {
    /// Only the rows of this shard (`None`: every row).
    pub shard: Option<Shard>,
    /// The source's `key` field.
    pub key: Option<String>,
}

impl RowSelection {
    /// The identity of `record`.
    pub(crate) fn identity(&self, record: &Record) -> RowIdentity {
        match record {
            Record::Row(row) => RowIdentity::of(row, self.key.as_deref()),
            Record::Bad(_) => RowIdentity::of(&Row::new(), self.key.as_deref()),
        }
    }

    /// Whether the run takes the row with identity `id`.
    pub(crate) fn keeps(&self, id: &RowIdentity) -> bool {
        self.shard.is_none_or(|shard| shard.contains(id))
    }
}

/// What reading one record gave.
pub(crate) enum Record {
    /// A row.
    Row(Row),
    /// A record that is not a valid row (the message says where and why).
    Bad(String),
}

/// An open source file.
pub(crate) enum Source {
    Jsonl {
        reader: BufReader<File>,
        line: u64,
        buf: Vec<u8>,
        path: PathBuf,
    },
    Csv {
        reader: csv::Reader<File>,
        headers: Vec<String>,
        path: PathBuf,
        record: csv::StringRecord,
    },
}

/// A CSV `delimiter` that is not one ASCII character.
#[derive(Debug, thiserror::Error)]
#[error("delimiter must be one ASCII character, got {0:?}")]
struct BadDelimiter(String);

fn delimiter(d: &str) -> Result<u8, BadDelimiter> {
    match d.as_bytes() {
        [b] if b.is_ascii() => Ok(*b),
        _ => Err(BadDelimiter(d.to_string())),
    }
}

impl Source {
    /// Opens the source of `config` at `path` (already resolved).
    pub(super) fn open(config: &SourceConfig, path: &Path) -> Result<Self, RunError> {
        let io = |e: std::io::Error| RunError::Source {
            path: path.to_path_buf(),
            message: io_message(&e),
        };
        match config {
            SourceConfig::Jsonl { .. } => Ok(Self::Jsonl {
                reader: BufReader::with_capacity(64 * 1024, File::open(path).map_err(io)?),
                line: 0,
                buf: Vec::with_capacity(1024),
                path: path.to_path_buf(),
            }),
            SourceConfig::Csv { delimiter: d, .. } => {
                let d = delimiter(d).map_err(|e| RunError::Source {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                })?;
                let file = File::open(path).map_err(io)?;
                let mut reader = csv::ReaderBuilder::new()
                    .delimiter(d)
                    .has_headers(true)
                    .from_reader(file);
                let headers = reader
                    .headers()
                    .map_err(|e| RunError::Source {
                        path: path.to_path_buf(),
                        message: format!("cannot read the CSV header row: {e}"),
                    })?
                    .iter()
                    .map(str::to_string)
                    .collect::<Vec<_>>();
                if headers.is_empty() || headers.iter().all(String::is_empty) {
                    return Err(RunError::Source {
                        path: path.to_path_buf(),
                        message:
                            "the CSV file has no header row (the first line names the columns)"
                                .into(),
                    });
                }
                Ok(Self::Csv {
                    reader,
                    headers,
                    path: path.to_path_buf(),
                    record: csv::StringRecord::new(),
                })
            }
        }
    }

    /// The next record; `None` at the end; `Err` on an I/O failure.
    pub(super) fn next_record(&mut self) -> Option<Result<Record, RunError>> {
        match self {
            Self::Jsonl {
                reader,
                line,
                buf,
                path,
            } => loop {
                buf.clear();
                match reader.read_until(b'\n', buf) {
                    Ok(0) => return None,
                    Ok(_) => {}
                    Err(e) => {
                        return Some(Err(RunError::Source {
                            path: path.clone(),
                            message: io_message(&e),
                        }));
                    }
                }
                *line += 1;
                let mut text = buf.trim_ascii();
                if *line == 1 {
                    // Editors on Windows save UTF-8 with a byte order mark;
                    // it is not part of the first row (the CSV reader drops
                    // it too).
                    text = strip_bom(text).trim_ascii();
                }
                if text.is_empty() {
                    continue;
                }
                return Some(Ok(match serde_json::from_slice::<Value>(text) {
                    Ok(Value::Object(row)) => Record::Row(row),
                    Ok(other) => Record::Bad(format!(
                        "{}:{}: expected a JSON object per line, got {}",
                        path.display(),
                        line,
                        kind(&other)
                    )),
                    Err(e) => {
                        Record::Bad(format!("{}:{}: not valid JSON: {e}", path.display(), line))
                    }
                }));
            },
            Self::Csv {
                reader,
                headers,
                path,
                record,
            } => match reader.read_record(record) {
                Ok(false) => None,
                Ok(true) => {
                    let mut row = Row::new();
                    for (h, v) in headers.iter().zip(record.iter()) {
                        row.insert(h.clone(), Value::String(v.to_string()));
                    }
                    Some(Ok(Record::Row(row)))
                }
                Err(e) if e.is_io_error() => Some(Err(RunError::Source {
                    path: path.clone(),
                    message: e.to_string(),
                })),
                Err(e) => {
                    let at = e
                        .position()
                        .map(|p| format!(":{}", p.line()))
                        .unwrap_or_default();
                    Some(Ok(Record::Bad(format!(
                        "{}{at}: {}",
                        path.display(),
                        csv_message(&e)
                    ))))
                }
            },
        }
    }

    /// The file this source reads.
    pub(super) fn path(&self) -> &Path {
        match self {
            Self::Jsonl { path, .. } | Self::Csv { path, .. } => path,
        }
    }

    /// Reads the rows `selection` keeps (at most `limit` of them) and hands
    /// each, with its identity, to `send` until it returns false or `stop`
    /// holds. A row's index is its position in the source. Returns how
    /// many rows were taken.
    ///
    /// A source that ends before its first row is logged as a warning: the
    /// run still succeeds (there is nothing to fail), but an empty output
    /// is rarely what was meant.
    pub(super) fn pump(
        mut self,
        limit: Option<u64>,
        selection: &RowSelection,
        stop: impl Fn() -> bool,
        mut send: impl FnMut(Item) -> bool,
    ) -> Result<u64, RunError> {
        let (mut index, mut taken) = (0u64, 0u64);
        while limit.is_none_or(|l| taken < l) && !stop() {
            let record = match self.next_record() {
                None => {
                    if index == 0 {
                        tracing::warn!(
                            "0 rows read from {}: the source has no rows",
                            self.path().display()
                        );
                    } else if taken == 0 && selection.shard.is_some() {
                        tracing::warn!(
                            "none of the {index} rows of {} falls in this shard",
                            self.path().display()
                        );
                    }
                    break;
                }
                Some(Err(e)) => return Err(e),
                Some(Ok(record)) => record,
            };
            index += 1;
            let identity = selection.identity(&record);
            if !selection.keeps(&identity) {
                continue;
            }
            let item = Item::read(index - 1, record, identity);
            taken += 1;
            if !send(item) {
                break;
            }
        }
        Ok(taken)
    }
}

/// `bytes` without a leading UTF-8 byte order mark.
fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

fn csv_message(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("this record has {len} fields but the header has {expected_len}")
        }
        csv::ErrorKind::Utf8 { .. } => "the record is not valid UTF-8".into(),
        _ => e.to_string(),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// An I/O error as a short sentence (with a hint for the common ones).
pub(crate) fn io_message(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => format!(
            "{e} (check the path; relative paths are resolved against the pipeline file's folder)"
        ),
        std::io::ErrorKind::PermissionDenied => format!("{e} (check the file's permissions)"),
        _ => e.to_string(),
    }
}

/// Files larger than this are not pre-counted (progress shows no total).
const COUNT_LIMIT_BYTES: u64 = 512 * 1024 * 1024;

/// The first `n` rows of the source that read as rows (bad lines are
/// skipped); empty when it cannot be opened. For estimates only.
pub(crate) fn first_rows(config: &SourceConfig, path: &Path, n: usize) -> Vec<Row> {
    let Ok(mut source) = Source::open(config, path) else {
        return Vec::new();
    };
    let mut rows = Vec::with_capacity(n);
    while rows.len() < n {
        match source.next_record() {
            Some(Ok(Record::Row(row))) => rows.push(row),
            Some(Ok(Record::Bad(_))) => {}
            Some(Err(_)) | None => break,
        }
    }
    rows
}

/// Counts the rows of the source (for progress), at most `limit`. Only
/// regular files up to 512 MiB are counted: reading a pipe would consume
/// its rows, and a huge file would be read twice.
pub(crate) fn count_rows(
    config: &SourceConfig,
    path: &Path,
    limit: Option<u64>,
    selection: &RowSelection,
) -> Option<u64> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || (meta.len() > COUNT_LIMIT_BYTES && limit.is_none()) {
        return None;
    }
    if selection.shard.is_some() {
        // A shard's rows are known only by reading them.
        let mut source = Source::open(config, path).ok()?;
        let mut n = 0u64;
        while limit.is_none_or(|l| n < l) {
            match source.next_record()? {
                Ok(record) if selection.keeps(&selection.identity(&record)) => n += 1,
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        return Some(n);
    }
    let mut n = 0u64;
    match config {
        SourceConfig::Jsonl { .. } => {
            let mut reader = BufReader::with_capacity(64 * 1024, File::open(path).ok()?);
            let mut buf = Vec::new();
            let mut first = true;
            loop {
                buf.clear();
                if reader.read_until(b'\n', &mut buf).ok()? == 0 {
                    break;
                }
                let text = if first {
                    first = false;
                    strip_bom(buf.trim_ascii())
                } else {
                    &buf
                };
                if !text.trim_ascii().is_empty() {
                    n += 1;
                }
                if limit.is_some_and(|l| n >= l) {
                    break;
                }
            }
        }
        SourceConfig::Csv { delimiter: d, .. } => {
            let mut reader = csv::ReaderBuilder::new()
                .delimiter(delimiter(d).ok()?)
                .flexible(true)
                .from_reader(File::open(path).ok()?);
            let mut record = csv::ByteRecord::new();
            while reader.read_byte_record(&mut record).ok()? {
                n += 1;
                if limit.is_some_and(|l| n >= l) {
                    break;
                }
            }
        }
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch file holding `bytes`.
    fn file(name: &str, bytes: &[u8]) -> PathBuf {
        let path = std::env::temp_dir().join(format!(
            "elspeth-source-{name}-{}.jsonl",
            std::process::id()
        ));
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn jsonl() -> SourceConfig {
        SourceConfig::Jsonl {
            path: "unused".into(),
            key: None,
        }
    }

    fn read_all(path: &Path) -> Vec<Record> {
        let mut source = Source::open(&jsonl(), path).unwrap();
        std::iter::from_fn(|| source.next_record().map(Result::unwrap)).collect()
    }

    #[test]
    fn a_byte_order_mark_before_the_first_jsonl_row_is_skipped() {
        let path = file(
            "bom",
            b"\xEF\xBB\xBF{\"id\": 1, \"subject\": \"first\"}\n{\"id\": 2}\n",
        );
        let records = read_all(&path);
        assert_eq!(records.len(), 2);
        match &records[0] {
            Record::Row(row) => {
                assert_eq!(row["id"], 1, "row 1 is read");
                assert_eq!(row["subject"], "first");
                assert_eq!(row.len(), 2, "no stray BOM key: {row:?}");
            }
            Record::Bad(m) => panic!("row 1 lost: {m}"),
        }
        assert!(matches!(&records[1], Record::Row(r) if r["id"] == 2));
        assert_eq!(
            count_rows(&jsonl(), &path, None, &RowSelection::default()),
            Some(2)
        );
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn a_byte_order_mark_elsewhere_is_still_bad_json() {
        // Only the file's first bytes can be a byte order mark; anywhere
        // else it is corrupt data and must be reported, not hidden.
        let path = file("bom-late", b"{\"id\": 1}\n\xEF\xBB\xBF{\"id\": 2}\n");
        let records = read_all(&path);
        assert!(matches!(&records[0], Record::Row(_)));
        assert!(matches!(&records[1], Record::Bad(m) if m.contains(":2: not valid JSON")));
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn a_file_holding_only_a_byte_order_mark_has_no_rows() {
        let path = file("bom-only", b"\xEF\xBB\xBF\n");
        assert!(read_all(&path).is_empty());
        assert_eq!(
            count_rows(&jsonl(), &path, None, &RowSelection::default()),
            Some(0)
        );
        let source = Source::open(&jsonl(), &path).unwrap();
        assert_eq!(
            source
                .pump(None, &RowSelection::default(), || false, |_| true)
                .unwrap(),
            0
        );
        let _ = std::fs::remove_file(path);
    }
}
