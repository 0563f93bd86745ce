//! Sources: JSON Lines and CSV files, read one row at a time on a blocking
//! thread (memory does not grow with the file).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use elspeth_schema::config::SourceConfig;
use serde_json::Value;

use super::RunError;
use super::item::Item;
use crate::row::Row;

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

fn delimiter(d: &str) -> Result<u8, String> {
    match d.as_bytes() {
        [b] if b.is_ascii() => Ok(*b),
        _ => Err(format!("delimiter must be one ASCII character, got {d:?}")),
    }
}

impl Source {
    /// Opens the source of `config` at `path` (already resolved).
    pub fn open(config: &SourceConfig, path: &Path) -> Result<Self, RunError> {
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
                let d = delimiter(d).map_err(|message| RunError::Source {
                    path: path.to_path_buf(),
                    message,
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
    pub fn next_record(&mut self) -> Option<Result<Record, RunError>> {
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
                // A UTF-8 byte order mark (as Windows editors write it) is
                // not part of the first row.
                let text = match buf.strip_prefix(UTF8_BOM) {
                    Some(rest) if *line == 1 => rest,
                    _ => buf.as_slice(),
                }
                .trim_ascii();
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

    /// Reads every record into `send` (stops when it returns false, at
    /// `limit` rows, or when `stop` says so). Returns the rows read.
    pub fn pump(
        mut self,
        limit: Option<u64>,
        stop: impl Fn() -> bool,
        mut send: impl FnMut(Item) -> bool,
    ) -> Result<u64, RunError> {
        let mut index = 0u64;
        while limit.is_none_or(|l| index < l) && !stop() {
            let item = match self.next_record() {
                None => break,
                Some(Err(e)) => return Err(e),
                Some(Ok(Record::Row(row))) => Item::new(index, row),
                Some(Ok(Record::Bad(message))) => Item::unreadable(index, message),
            };
            index += 1;
            if !send(item) {
                break;
            }
        }
        Ok(index)
    }
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

/// The UTF-8 byte order mark.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Files larger than this are not pre-counted (progress shows no total).
const COUNT_LIMIT_BYTES: u64 = 512 * 1024 * 1024;

/// Counts the rows of the source (for progress), at most `limit`. Only
/// regular files up to 512 MiB are counted: reading a pipe would consume
/// its rows, and a huge file would be read twice.
pub(crate) fn count_rows(config: &SourceConfig, path: &Path, limit: Option<u64>) -> Option<u64> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || (meta.len() > COUNT_LIMIT_BYTES && limit.is_none()) {
        return None;
    }
    let mut n = 0u64;
    match config {
        SourceConfig::Jsonl { .. } => {
            let mut reader = BufReader::with_capacity(64 * 1024, File::open(path).ok()?);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                if reader.read_until(b'\n', &mut buf).ok()? == 0 {
                    break;
                }
                if !buf.trim_ascii().is_empty() {
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

    #[test]
    fn a_bom_before_the_first_jsonl_row_is_skipped() {
        let dir = std::env::temp_dir().join(format!("elspeth-bom-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("in.jsonl");
        std::fs::write(&path, b"\xEF\xBB\xBF{\"a\":1}\n{\"a\":2}\n").unwrap();
        let config: SourceConfig =
            serde_json::from_value(serde_json::json!({"plugin": "jsonl", "path": "in.jsonl"}))
                .unwrap();
        let mut source = Source::open(&config, &path).unwrap();
        let mut rows = Vec::new();
        while let Some(record) = source.next_record() {
            match record.unwrap() {
                Record::Row(row) => rows.push(row["a"].clone()),
                Record::Bad(message) => panic!("row lost: {message}"),
            }
        }
        assert_eq!(rows, [serde_json::json!(1), serde_json::json!(2)]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
