//! `elspeth merge`: the configured sink from the outputs of a sharded run.
//!
//! Every shard wrote its rows in input order, and which shard a row went to
//! depends only on the row ([`RowIdentity`](crate::RowIdentity)). So the
//! source is read again, and for each of its rows the next row of the
//! shard it maps to is taken: the merged file holds every row exactly once,
//! in input order. With an `error_path`, a shard's rows are split between
//! its output and its error file (each in input order); the row is taken
//! from whichever of the two holds its input fields. Output and error file
//! are written like a run's (temporary file, fsync, rename).

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use elspeth_schema::config::SinkConfig;
use serde_json::{Map, Value};

use super::remote::{RemoteObject, Staging, is_object};
use super::sink::{Out, TempFile, csv_cell, sink_error};
use super::source::{Record, Source};
use super::{Pipeline, RunError};
use crate::row::{Row, Shard, ShardError};
use crate::store::{RunStatus, RunStore, StoreError};

/// What a merge wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeSummary {
    /// Rows written, output and error file together.
    pub rows: u64,
    /// Rows taken from each shard, by index.
    pub per_shard: Vec<u64>,
    /// The merged output (the configured sink).
    pub output: PathBuf,
    /// The merged error file, when the sink has one.
    pub errors: Option<PathBuf>,
}

/// Why a merge did not write anything.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// `--shards 0`.
    #[error(transparent)]
    Shards(#[from] ShardError),
    /// A shard's output is not there.
    #[error(
        "shard {shard} has no output {}: run `elspeth run PIPELINE --shard {shard}` and merge once every shard has finished",
        path.display()
    )]
    Missing {
        /// The shard.
        shard: Shard,
        /// Its output.
        path: PathBuf,
    },
    /// A shard's last run did not finish.
    #[error(
        "shard {shard} is unfinished: its last run {status} (run store {}); run it again with `--shard {shard}`",
        store.display()
    )]
    Unfinished {
        /// The shard.
        shard: Shard,
        /// What its store says (`stopped`, `failed`, `running`).
        status: &'static str,
        /// Its store.
        store: PathBuf,
    },
    /// A shard's output ends before the source's rows for it do.
    #[error(
        "shard {shard} is unfinished: {} ends after {found} rows but the source has more rows for it (was it run with --limit, or with another shard count?)",
        path.display()
    )]
    Short {
        /// The shard.
        shard: Shard,
        /// The output that ended early.
        path: PathBuf,
        /// Rows it held.
        found: u64,
    },
    /// A shard's output holds rows the source does not give it.
    #[error(
        "{} holds more rows than the source gives shard {shard}: it was made from another source or another shard count; rerun the shards",
        path.display()
    )]
    Extra {
        /// The shard.
        shard: Shard,
        /// The output with extra rows.
        path: PathBuf,
    },
    /// Neither of a shard's files holds the next source row.
    #[error(
        "row {index} of the source (shard {shard}) is in neither {} nor {}: the shard was made from another source",
        output.display(),
        errors.display()
    )]
    Mismatch {
        /// The row's position in the source.
        index: u64,
        /// Its shard.
        shard: Shard,
        /// The shard's output.
        output: PathBuf,
        /// The shard's error file.
        errors: PathBuf,
    },
    /// Reading the source or a shard, or writing the output, failed.
    #[error(transparent)]
    Io(#[from] RunError),
    /// A shard's run store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One shard file, read a row at a time.
enum ShardReader {
    Jsonl {
        lines: std::io::Lines<BufReader<File>>,
        path: PathBuf,
    },
    Csv {
        reader: csv::Reader<File>,
        headers: Vec<String>,
        path: PathBuf,
    },
}

/// One row of a shard file: what matching needs, and what is written.
struct ShardRow {
    fields: Map<String, Value>,
    raw: Raw,
}

enum Raw {
    Line(String),
    Record(Vec<String>),
}

impl ShardReader {
    fn open(path: &Path, csv_delimiter: Option<u8>) -> Result<Self, RunError> {
        let io = |e: std::io::Error| RunError::Source {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let file = File::open(path).map_err(io)?;
        Ok(match csv_delimiter {
            None => Self::Jsonl {
                lines: BufReader::new(file).lines(),
                path: path.to_path_buf(),
            },
            Some(d) => {
                let mut reader = csv::ReaderBuilder::new().delimiter(d).from_reader(file);
                let headers = reader
                    .headers()
                    .map(|h| h.iter().map(str::to_string).collect())
                    .unwrap_or_default();
                Self::Csv {
                    reader,
                    headers,
                    path: path.to_path_buf(),
                }
            }
        })
    }

    fn path(&self) -> &Path {
        match self {
            Self::Jsonl { path, .. } | Self::Csv { path, .. } => path,
        }
    }

    fn next(&mut self) -> Option<Result<ShardRow, RunError>> {
        let bad = |path: &Path, message: String| RunError::Source {
            path: path.to_path_buf(),
            message,
        };
        match self {
            Self::Jsonl { lines, path } => loop {
                let line = match lines.next()? {
                    Ok(line) => line,
                    Err(e) => return Some(Err(bad(path, e.to_string()))),
                };
                if line.trim().is_empty() {
                    continue;
                }
                return Some(match serde_json::from_str::<Map<String, Value>>(&line) {
                    Ok(fields) => Ok(ShardRow {
                        fields,
                        raw: Raw::Line(line),
                    }),
                    Err(e) => Err(bad(path, format!("not a JSON object: {e}"))),
                });
            },
            Self::Csv {
                reader,
                headers,
                path,
            } => {
                let mut record = csv::StringRecord::new();
                match reader.read_record(&mut record) {
                    Ok(false) => None,
                    Ok(true) => {
                        let values: Vec<String> = record.iter().map(str::to_string).collect();
                        let fields = headers
                            .iter()
                            .cloned()
                            .zip(values.iter().cloned().map(Value::String))
                            .collect();
                        Some(Ok(ShardRow {
                            fields,
                            raw: Raw::Record(values),
                        }))
                    }
                    Err(e) => Some(Err(bad(path, e.to_string()))),
                }
            }
        }
    }
}

/// A shard's files, one row looked ahead in each.
struct ShardFiles {
    shard: Shard,
    main: ShardReader,
    main_next: Option<ShardRow>,
    main_taken: u64,
    errors: Option<(ShardReader, Option<ShardRow>)>,
}

/// The next row of `reader`, read into `next` if not there yet.
fn peek<'a>(
    reader: &mut ShardReader,
    next: &'a mut Option<ShardRow>,
) -> Result<Option<&'a ShardRow>, RunError> {
    if next.is_none() {
        *next = reader.next().transpose()?;
    }
    Ok(next.as_ref())
}

/// Whether `output` is the row made from `input`: the key field, or every
/// input field, unchanged (compared as the CSV sink would write them).
fn made_from(input: &Row, output: &Map<String, Value>, key: Option<&str>) -> bool {
    let same = |k: &str, v: &Value| {
        output
            .get(k)
            .is_some_and(|o| o == v || csv_cell(o) == csv_cell(v))
    };
    match key.and_then(|k| input.get(k).map(|v| (k, v))) {
        Some((k, v)) => same(k, v),
        None => input.iter().all(|(k, v)| same(k, v)),
    }
}

impl Pipeline {
    /// Merges the outputs of `shards` shards (`elspeth merge PIPELINE
    /// --shards n`) into the configured sink (and error file): every row
    /// once, in input order, written atomically. `store` is the run store
    /// of the unsharded pipeline; each shard's (`Shard::path_of`) is
    /// checked to say its last run finished. Nothing is written when a
    /// shard is missing or unfinished.
    ///
    /// Shard outputs on object storage are downloaded to a staging folder
    /// first, and the merged output uploaded (in parts) once it is whole.
    pub async fn merge(
        &self,
        shards: u32,
        store: Option<&Path>,
    ) -> Result<MergeSummary, MergeError> {
        let all: Vec<Shard> = (0..shards)
            .map(|i| Shard::new(i, shards))
            .collect::<Result<_, _>>()?;
        let paths = self.unsharded().paths();
        let outputs_remote =
            is_object(&paths.sink) || paths.errors.as_deref().is_some_and(is_object);
        if !is_object(&paths.source) && !outputs_remote {
            return self.merge_files(&all, store, &paths);
        }
        let staging = Staging::new()?;
        let mut local = paths.clone();
        if is_object(&paths.source) {
            local.source = staging.file("source");
            RemoteObject::open(&paths.source.to_string_lossy())?
                .download(&local.source)
                .await?;
        }
        let mut uploads = Vec::new();
        let outputs = [
            (Some(&paths.sink), "sink"),
            (paths.errors.as_ref(), "errors"),
        ];
        for (output, role) in outputs {
            let Some(output) = output.filter(|p| is_object(p)) else {
                continue;
            };
            let staged = staging.file(role);
            for &shard in &all {
                let url = shard.path_of(output);
                let object = RemoteObject::open(&url.to_string_lossy())?;
                if !object.exists().await? {
                    return Err(MergeError::Missing { shard, path: url });
                }
                object.download(&shard.path_of(&staged)).await?;
            }
            uploads.push((
                staged.clone(),
                RemoteObject::open(&output.to_string_lossy())?,
            ));
            match role {
                "sink" => local.sink = staged,
                _ => local.errors = Some(staged),
            }
        }
        let mut summary = self.merge_files(&all, store, &local)?;
        for (file, object) in &uploads {
            object.upload(file).await?;
        }
        summary.output = paths.sink;
        summary.errors = paths.errors;
        Ok(summary)
    }

    /// This pipeline without its shard.
    fn unsharded(&self) -> Pipeline {
        Pipeline {
            config: self.config.clone(),
            base_dir: self.base_dir.clone(),
            file: self.file.clone(),
            custom: Vec::new(),
            shard: None,
        }
    }

    /// [`merge`](Self::merge) of local files at `paths`.
    fn merge_files(
        &self,
        all: &[Shard],
        store: Option<&Path>,
        paths: &super::ResolvedPaths,
    ) -> Result<MergeSummary, MergeError> {
        let shards = all.len() as u32;
        let unsharded = self.unsharded();
        let paths = paths.clone();
        let csv = match &self.config.sink {
            SinkConfig::Csv { delimiter, .. } => Some(
                delimiter
                    .as_bytes()
                    .first()
                    .copied()
                    .filter(|_| delimiter.len() == 1)
                    .unwrap_or(b','),
            ),
            SinkConfig::Jsonl { .. } => None,
        };
        // Every shard present and finished before anything is written.
        let mut files = Vec::with_capacity(all.len());
        for &shard in all {
            let main = shard.path_of(&paths.sink);
            if !main.is_file() {
                return Err(MergeError::Missing { shard, path: main });
            }
            if let Some(store) = store.map(|s| shard.path_of(s)).filter(|s| s.is_file()) {
                match RunStore::open(&store)?.last_run_status()? {
                    Some(RunStatus::Finished) | None => {}
                    Some(status) => {
                        return Err(MergeError::Unfinished {
                            shard,
                            status: status.as_str(),
                            store,
                        });
                    }
                }
            }
            let errors = match &paths.errors {
                Some(e) => {
                    let path = shard.path_of(e);
                    if !path.is_file() {
                        return Err(MergeError::Missing { shard, path });
                    }
                    Some((ShardReader::open(&path, None)?, None))
                }
                None => None,
            };
            files.push(ShardFiles {
                shard,
                main: ShardReader::open(&main, csv)?,
                main_next: None,
                main_taken: 0,
                errors,
            });
        }
        // Both outputs must not be inputs (the source, the pipeline file).
        unsharded.check_outputs(&[]).map_err(|e| {
            MergeError::Io(RunError::Sink {
                path: paths.sink.clone(),
                message: e.to_string(),
            })
        })?;

        let mut out = MergedOutput::create(&paths.sink, paths.errors.as_deref(), csv, &files)?;
        let selection = self.row_selection();
        let key = selection.key.clone();
        let mut source = Source::open(&self.config.source, &paths.source)?;
        let mut per_shard = vec![0u64; all.len()];
        let mut index = 0u64;
        while let Some(record) = source.next_record() {
            let record = record?;
            let k = selection.identity(&record).shard(shards) as usize;
            let ShardFiles {
                shard,
                main,
                main_next,
                main_taken,
                errors,
            } = &mut files[k];
            let input = match &record {
                Record::Row(row) => Some(row),
                Record::Bad(_) => None,
            };
            let from_errors = match errors.as_mut() {
                None => false,
                Some((reader, next)) => {
                    let err_row = peek(reader, next)?;
                    let main_row = peek(main, main_next)?;
                    match (main_row, err_row, input) {
                        (_, Some(_), None) | (None, Some(_), _) => true,
                        (Some(m), Some(e), Some(input)) => {
                            if made_from(input, &m.fields, key.as_deref()) {
                                false
                            } else if made_from(input, &e.fields, key.as_deref()) {
                                true
                            } else {
                                return Err(MergeError::Mismatch {
                                    index,
                                    shard: *shard,
                                    output: main.path().to_path_buf(),
                                    errors: reader.path().to_path_buf(),
                                });
                            }
                        }
                        (_, None, _) => false,
                    }
                }
            };
            let row = if from_errors {
                errors.as_mut().and_then(|(_, next)| next.take())
            } else {
                peek(main, main_next)?;
                main_next.take()
            };
            let Some(row) = row else {
                return Err(MergeError::Short {
                    shard: *shard,
                    path: main.path().to_path_buf(),
                    found: *main_taken,
                });
            };
            if !from_errors {
                *main_taken += 1;
            }
            out.write(row, from_errors, main)?;
            per_shard[k] += 1;
            index += 1;
        }
        for f in &mut files {
            if peek(&mut f.main, &mut f.main_next)?.is_some() {
                return Err(MergeError::Extra {
                    shard: f.shard,
                    path: f.main.path().to_path_buf(),
                });
            }
            if let Some((reader, next)) = f.errors.as_mut()
                && (next.is_some() || reader.next().is_some())
            {
                return Err(MergeError::Extra {
                    shard: f.shard,
                    path: reader.path().to_path_buf(),
                });
            }
        }
        out.commit()?;
        Ok(MergeSummary {
            rows: per_shard.iter().sum(),
            per_shard,
            output: paths.sink,
            errors: paths.errors,
        })
    }
}

/// The merged output and error file, temporary until committed.
struct MergedOutput {
    main: Writer,
    errors: Option<(TempFile, Out, PathBuf)>,
}

enum Writer {
    Jsonl(TempFile, Out, PathBuf),
    Csv {
        tmp: TempFile,
        w: Box<csv::Writer<Out>>,
        columns: Vec<String>,
        path: PathBuf,
    },
}

impl MergedOutput {
    fn create(
        sink: &Path,
        errors: Option<&Path>,
        csv: Option<u8>,
        files: &[ShardFiles],
    ) -> Result<Self, RunError> {
        let main = match csv {
            None => {
                let (tmp, out) = TempFile::create(sink)?;
                Writer::Jsonl(tmp, out, sink.to_path_buf())
            }
            Some(d) => {
                // The first shard with a header decides the columns; the
                // others are mapped onto them by name.
                let columns = files
                    .iter()
                    .find_map(|f| match &f.main {
                        ShardReader::Csv { headers, .. } if !headers.is_empty() => {
                            Some(headers.clone())
                        }
                        _ => None,
                    })
                    .unwrap_or_default();
                let (tmp, out) = TempFile::create(sink)?;
                let mut w = Box::new(csv::WriterBuilder::new().delimiter(d).from_writer(out));
                if !columns.is_empty() {
                    w.write_record(&columns).map_err(|e| RunError::Sink {
                        path: sink.to_path_buf(),
                        message: e.to_string(),
                    })?;
                }
                Writer::Csv {
                    tmp,
                    w,
                    columns,
                    path: sink.to_path_buf(),
                }
            }
        };
        let errors = match errors {
            Some(path) => {
                let (tmp, out) = TempFile::create(path)?;
                Some((tmp, out, path.to_path_buf()))
            }
            None => None,
        };
        Ok(Self { main, errors })
    }

    fn write(
        &mut self,
        row: ShardRow,
        to_errors: bool,
        from: &ShardReader,
    ) -> Result<(), RunError> {
        if to_errors && let Some((_, out, path)) = &mut self.errors {
            let Raw::Line(line) = &row.raw else {
                return Ok(());
            };
            return writeln!(out, "{line}").map_err(|e| sink_error(path, &e));
        }
        match (&mut self.main, row.raw) {
            (Writer::Jsonl(_, out, path), Raw::Line(line)) => {
                writeln!(out, "{line}").map_err(|e| sink_error(path, &e))
            }
            (
                Writer::Csv {
                    w, columns, path, ..
                },
                Raw::Record(values),
            ) => {
                let record: Vec<String> = match from {
                    ShardReader::Csv { headers, .. } if headers != columns => columns
                        .iter()
                        .map(|c| {
                            headers
                                .iter()
                                .position(|h| h == c)
                                .and_then(|i| values.get(i).cloned())
                                .unwrap_or_default()
                        })
                        .collect(),
                    _ => values,
                };
                w.write_record(&record).map_err(|e| RunError::Sink {
                    path: path.clone(),
                    message: e.to_string(),
                })
            }
            // A JSONL row in a CSV output or the other way round cannot
            // happen: both come from the sink's own format.
            _ => Ok(()),
        }
    }

    fn commit(self) -> Result<(), RunError> {
        match self.main {
            Writer::Jsonl(mut tmp, out, _) => tmp.commit(out)?,
            Writer::Csv {
                mut tmp, w, path, ..
            } => {
                let out = w.into_inner().map_err(|e| sink_error(&path, e.error()))?;
                tmp.commit(out)?;
            }
        }
        if let Some((mut tmp, out, _)) = self.errors {
            tmp.commit(out)?;
        }
        Ok(())
    }
}
