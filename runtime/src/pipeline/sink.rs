//! Sinks: JSON Lines and CSV files, written one row at a time on a blocking
//! thread, plus the optional JSON Lines file for failed rows.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use elspeth_schema::config::SinkConfig;
use serde_json::Value;

use super::RunError;
use super::item::Item;
use super::source::io_message;

/// Name of the field / column that carries a failed row's error.
pub const ERROR_FIELD: &str = "error";

struct JsonlFile {
    w: BufWriter<File>,
    path: PathBuf,
}

impl JsonlFile {
    fn create(path: &Path) -> Result<Self, RunError> {
        Ok(Self {
            w: BufWriter::with_capacity(64 * 1024, create(path)?),
            path: path.to_path_buf(),
        })
    }

    fn write(&mut self, mut item: Item) -> Result<(), RunError> {
        if let Some(error) = item.error.take() {
            item.row.insert(ERROR_FIELD.into(), error);
        }
        serde_json::to_writer(&mut self.w, &item.row)
            .map_err(std::io::Error::from)
            .and_then(|()| self.w.write_all(b"\n"))
            .map_err(|e| sink_error(&self.path, &e))
    }

    fn flush(&mut self) -> Result<(), RunError> {
        self.w.flush().map_err(|e| sink_error(&self.path, &e))
    }
}

struct CsvFile {
    w: csv::Writer<File>,
    path: PathBuf,
    columns: Option<Vec<String>>,
    error_column: bool,
    dropped_warned: bool,
}

impl CsvFile {
    fn write(&mut self, item: Item) -> Result<(), RunError> {
        let columns = match &self.columns {
            Some(c) => c,
            None => {
                let mut c: Vec<String> = item
                    .row
                    .keys()
                    .filter(|k| *k != ERROR_FIELD)
                    .cloned()
                    .collect();
                if self.error_column {
                    c.push(ERROR_FIELD.into());
                }
                self.w
                    .write_record(&c)
                    .map_err(|e| csv_error(&self.path, e))?;
                self.columns.insert(c)
            }
        };
        if !self.dropped_warned {
            let dropped: Vec<&String> = item.row.keys().filter(|k| !columns.contains(k)).collect();
            if !dropped.is_empty() {
                tracing::warn!(
                    path = %self.path.display(),
                    fields = ?dropped,
                    "CSV sink: fields not in the header are not written (set sink `columns` to choose them)"
                );
                self.dropped_warned = true;
            }
        }
        let record = columns.iter().map(|c| {
            if self.error_column && c == ERROR_FIELD {
                return item.error.as_ref().map(error_text).unwrap_or_default();
            }
            match item.row.get(c) {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            }
        });
        self.w
            .write_record(record)
            .map_err(|e| csv_error(&self.path, e))
    }
}

/// A failed row's error as one readable CSV cell.
fn error_text(error: &Value) -> String {
    let get = |k: &str| error.get(k).and_then(Value::as_str).unwrap_or_default();
    format!("{}: {} [{}]", get("kind"), get("message"), get("transform"))
}

enum Main {
    Jsonl(JsonlFile),
    Csv(Box<CsvFile>),
}

/// The open sink of a run.
pub(crate) struct Sink {
    main: Main,
    errors: Option<JsonlFile>,
}

fn create(path: &Path) -> Result<File, RunError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| sink_error(dir, &e))?;
    }
    File::create(path).map_err(|e| sink_error(path, &e))
}

fn sink_error(path: &Path, e: &std::io::Error) -> RunError {
    RunError::Sink {
        path: path.to_path_buf(),
        message: io_message(e),
    }
}

fn csv_error(path: &Path, e: csv::Error) -> RunError {
    RunError::Sink {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

impl Sink {
    /// Creates the sink files (truncating existing ones) and their folders.
    pub fn create(
        config: &SinkConfig,
        path: &Path,
        error_path: Option<&Path>,
    ) -> Result<Self, RunError> {
        let errors = error_path.map(JsonlFile::create).transpose()?;
        let main = match config {
            SinkConfig::Jsonl { .. } => Main::Jsonl(JsonlFile::create(path)?),
            SinkConfig::Csv {
                columns, delimiter, ..
            } => {
                let d = match delimiter.as_bytes() {
                    [b] if b.is_ascii() => *b,
                    _ => {
                        return Err(RunError::Sink {
                            path: path.to_path_buf(),
                            message: format!(
                                "delimiter must be one ASCII character, got {delimiter:?}"
                            ),
                        });
                    }
                };
                let file = create(path)?;
                let error_column = errors.is_none();
                let mut columns = (!columns.is_empty()).then(|| columns.clone());
                if let Some(c) = &mut columns
                    && error_column
                    && !c.iter().any(|c| c == ERROR_FIELD)
                {
                    c.push(ERROR_FIELD.into());
                }
                let mut w = csv::WriterBuilder::new().delimiter(d).from_writer(file);
                if let Some(c) = &columns {
                    w.write_record(c).map_err(|e| csv_error(path, e))?;
                }
                Main::Csv(Box::new(CsvFile {
                    w,
                    path: path.to_path_buf(),
                    columns,
                    error_column,
                    dropped_warned: false,
                }))
            }
        };
        Ok(Self { main, errors })
    }

    /// Writes one row (a failed row to the error file when there is one).
    pub fn write(&mut self, item: Item) -> Result<(), RunError> {
        if item.error.is_some()
            && let Some(errors) = &mut self.errors
        {
            return errors.write(item);
        }
        match &mut self.main {
            Main::Jsonl(f) => f.write(item),
            Main::Csv(f) => f.write(item),
        }
    }

    /// Flushes buffered rows to the files.
    pub fn flush(&mut self) -> Result<(), RunError> {
        match &mut self.main {
            Main::Jsonl(f) => f.flush()?,
            Main::Csv(f) => f.w.flush().map_err(|e| sink_error(&f.path, &e))?,
        }
        if let Some(e) = &mut self.errors {
            e.flush()?;
        }
        Ok(())
    }
}
