//! Sinks: JSON Lines and CSV files, written one row at a time on a blocking
//! thread, plus the optional JSON Lines file for failed rows.
//!
//! Every output is written **atomically**: rows go to a temporary file in
//! the destination's folder (`.<name>.elspeth-tmp-<pid>`), and only
//! [`Sink::commit`] flushes it, fsyncs it and renames it over the
//! destination (then fsyncs the folder). At every instant the destination
//! holds either its previous complete content or a new complete file: a
//! `kill -9` leaves at most a stray temporary file (removed by the next run
//! writing that destination), never a torn line, and a run that fails or is
//! [discarded](Sink::discard) leaves the previous output as it was.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use elspeth_schema::config::SinkConfig;
use serde_json::Value;

use super::RunError;
use super::item::{Item, RowFailure};
use super::source::io_message;

/// Name of the field / column that carries a failed row's error.
pub const ERROR_FIELD: &str = "error";

/// What our temporary files are called after their destination's name:
/// `.<name>` + this + `<pid>`.
const TMP_MARK: &str = ".elspeth-tmp-";

/// A temporary file that becomes `dest` on [`commit`](Self::commit) and is
/// removed when dropped uncommitted.
pub(super) struct TempFile {
    /// The file renamed over (the destination, symlinks resolved).
    dest: PathBuf,
    /// The destination as configured, for messages.
    shown: PathBuf,
    tmp: PathBuf,
    committed: bool,
}

impl TempFile {
    /// Creates the folder of `path` if needed, removes temporary files left
    /// there by earlier runs that were killed, and creates our own.
    pub(super) fn create(path: &Path) -> Result<(Self, Out), RunError> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        std::fs::create_dir_all(dir).map_err(|e| sink_error(dir, &e))?;
        // Writing through a symlink keeps the link: the file it points to
        // is replaced, as a plain `open(O_TRUNC)` would have done.
        let dest = if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
            std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
        } else {
            path.to_path_buf()
        };
        let existing = std::fs::metadata(&dest).ok();
        if existing.as_ref().is_some_and(std::fs::Metadata::is_dir) {
            return Err(RunError::Sink {
                path: path.to_path_buf(),
                message: "it is a directory, not a file".into(),
            });
        }
        let (Some(dest_dir), Some(name)) = (dest.parent(), dest.file_name()) else {
            return Err(RunError::Sink {
                path: path.to_path_buf(),
                message: "the path does not name a file".into(),
            });
        };
        let dest_dir = if dest_dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dest_dir
        };
        let prefix = format!(".{}{TMP_MARK}", name.to_string_lossy());
        remove_stale(dest_dir, &prefix);
        let tmp = dest_dir.join(format!("{prefix}{}", std::process::id()));
        let file = File::create(&tmp).map_err(|e| sink_error(path, &e))?;
        let guard = Self {
            dest: dest.clone(),
            shown: path.to_path_buf(),
            tmp,
            committed: false,
        };
        // The new file replaces the old one: keep its permissions.
        if let Some(m) = existing {
            let _ = file.set_permissions(m.permissions());
        }
        let out = Out::new(file, &guard.dest);
        Ok((guard, out))
    }

    /// Makes the written file durable, then renames it over the destination.
    pub(super) fn commit(&mut self, out: Out) -> Result<(), RunError> {
        out.sync().map_err(|e| sink_error(&self.shown, &e))?;
        drop(out);
        std::fs::rename(&self.tmp, &self.dest).map_err(|e| sink_error(&self.shown, &e))?;
        self.committed = true;
        sync_dir(&self.dest);
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.committed
            && let Err(e) = std::fs::remove_file(&self.tmp)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.tmp.display(), error = %e, "could not remove the temporary output file");
        }
    }
}

/// Writes `bytes` to `path` atomically, the way the sink writes its
/// output: a temporary file beside it, fsynced, renamed over it. A reader
/// sees the old file or the new one, never half of one. Check first that
/// `path` is not an input ([`Pipeline::check_outputs`](super::Pipeline::check_outputs)).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), RunError> {
    let (mut tmp, mut out) = TempFile::create(path)?;
    out.write_all(bytes).map_err(|e| sink_error(path, &e))?;
    tmp.commit(out)
}

/// Removes `<prefix><pid>` files whose process is gone: left by a run that
/// was killed before it could commit or clean up. Only names of exactly our
/// pattern are touched.
fn remove_stale(dir: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix))
            .filter(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        if process_alive(pid) {
            continue;
        }
        let path = entry.path();
        match std::fs::remove_file(&path) {
            Ok(()) => {
                tracing::info!(path = %path.display(), "removed the temporary output of an earlier run that was killed")
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "could not remove the temporary output of an earlier run")
            }
        }
    }
}

/// Whether process `pid` still runs (then its temporary file may be in use).
/// Where that cannot be known, only our own pid counts as alive.
fn process_alive(pid: &str) -> bool {
    if pid == std::process::id().to_string() {
        return true;
    }
    #[cfg(target_os = "linux")]
    {
        Path::new("/proc/self").exists() && Path::new("/proc").join(pid).exists()
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

/// Makes a rename in the folder of `path` durable (unix; elsewhere a no-op).
fn sync_dir(path: &Path) {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        // The data is in place either way; only a power cut right now
        // could lose the rename.
        if let Err(e) = File::open(dir).and_then(|d| d.sync_all()) {
            tracing::warn!(path = %dir.display(), error = %e, "could not fsync the output folder");
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// The file rows are written to (in tests, possibly one that fails).
pub(super) enum Out {
    File(File),
    #[cfg(test)]
    Faulty {
        file: File,
        left: usize,
    },
}

impl Out {
    fn new(file: File, dest: &Path) -> Self {
        #[cfg(test)]
        if let Some(left) = fault::take(dest) {
            return Self::Faulty { file, left };
        }
        let _ = dest;
        Self::File(file)
    }

    fn sync(&self) -> std::io::Result<()> {
        match self {
            Self::File(f) => f.sync_all(),
            #[cfg(test)]
            Self::Faulty { file, .. } => file.sync_all(),
        }
    }
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Self::File(f) => f.write(buf),
            #[cfg(test)]
            Self::Faulty { file, left } => {
                if *left == 0 {
                    return Err(std::io::Error::from(std::io::ErrorKind::StorageFull));
                }
                let n = buf.len().min(*left);
                let n = file.write(&buf[..n])?;
                *left -= n;
                Ok(n)
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Self::File(f) => f.flush(),
            #[cfg(test)]
            Self::Faulty { file, .. } => file.flush(),
        }
    }
}

/// Test seam: the next sink file created for a destination fails with
/// "no space left" after some bytes, like a disk filling up.
#[cfg(test)]
pub(crate) mod fault {
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;

    static FAULTS: Mutex<Vec<(PathBuf, usize)>> = Mutex::new(Vec::new());

    /// The next file written for `dest` accepts `bytes` bytes, then fails.
    pub(crate) fn fail_after(dest: &Path, bytes: usize) {
        FAULTS.lock().unwrap().push((dest.to_path_buf(), bytes));
    }

    pub(super) fn take(dest: &Path) -> Option<usize> {
        let mut faults = FAULTS.lock().unwrap();
        let i = faults.iter().position(|(p, _)| p == dest)?;
        Some(faults.remove(i).1)
    }
}

struct JsonlFile {
    w: BufWriter<Out>,
    path: PathBuf,
    tmp: TempFile,
}

impl JsonlFile {
    fn create(path: &Path) -> Result<Self, RunError> {
        let (tmp, out) = TempFile::create(path)?;
        Ok(Self {
            w: BufWriter::with_capacity(64 * 1024, out),
            path: path.to_path_buf(),
            tmp,
        })
    }

    fn commit(self) -> Result<(), RunError> {
        let Self { w, path, mut tmp } = self;
        let out = w.into_inner().map_err(|e| sink_error(&path, e.error()))?;
        tmp.commit(out)
    }

    fn write(&mut self, mut item: Item) -> Result<(), RunError> {
        if let Some(error) = item.error.take() {
            item.row.insert(ERROR_FIELD.into(), error.to_json());
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
    w: csv::Writer<Out>,
    path: PathBuf,
    tmp: TempFile,
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
                return item
                    .error
                    .as_ref()
                    .map(RowFailure::text)
                    .unwrap_or_default();
            }
            item.row.get(c).map(csv_cell).unwrap_or_default()
        });
        self.w
            .write_record(record)
            .map_err(|e| csv_error(&self.path, e))
    }
}

impl CsvFile {
    fn commit(self) -> Result<(), RunError> {
        let Self {
            w, path, mut tmp, ..
        } = self;
        let out = w.into_inner().map_err(|e| sink_error(&path, e.error()))?;
        tmp.commit(out)
    }
}

enum Main {
    Jsonl(JsonlFile),
    Csv(Box<CsvFile>),
}

/// The open sink of a run. Dropping it without [`commit`](Self::commit)
/// removes its temporary files and leaves the destinations as they were.
pub(crate) struct Sink {
    main: Main,
    errors: Option<JsonlFile>,
}

pub(super) fn sink_error(path: &Path, e: &std::io::Error) -> RunError {
    RunError::Sink {
        path: path.to_path_buf(),
        message: io_message(e),
    }
}

/// A value as a CSV cell: strings as they are, null as empty, anything
/// else as JSON.
pub(super) fn csv_cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn csv_error(path: &Path, e: csv::Error) -> RunError {
    RunError::Sink {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

impl Sink {
    /// Creates the sink's temporary files (and the folders of the
    /// destinations); the destinations themselves are untouched until
    /// [`commit`](Self::commit).
    pub(super) fn create(
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
                let (tmp, file) = TempFile::create(path)?;
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
                    tmp,
                    columns,
                    error_column,
                    dropped_warned: false,
                }))
            }
        };
        Ok(Self { main, errors })
    }

    /// Writes one row (a failed row to the error file when there is one).
    pub(super) fn write(&mut self, item: Item) -> Result<(), RunError> {
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
    pub(super) fn flush(&mut self) -> Result<(), RunError> {
        match &mut self.main {
            Main::Jsonl(f) => f.flush()?,
            Main::Csv(f) => f.w.flush().map_err(|e| sink_error(&f.path, &e))?,
        }
        if let Some(e) = &mut self.errors {
            e.flush()?;
        }
        Ok(())
    }

    /// Flushes, fsyncs and renames every file over its destination.
    pub(super) fn commit(self) -> Result<(), RunError> {
        let Self { main, errors } = self;
        match main {
            Main::Jsonl(f) => f.commit()?,
            Main::Csv(f) => f.commit()?,
        }
        match errors {
            Some(e) => e.commit(),
            None => Ok(()),
        }
    }

    /// Removes the temporary files: every destination keeps its previous
    /// content (or stays absent).
    pub(super) fn discard(self) {
        drop(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{Pipeline, RunError, RunOptions};
    use serde_json::json;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("elspeth-sink-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn jsonl(path: &str, error_path: Option<&str>) -> SinkConfig {
        serde_json::from_value(json!({"plugin": "jsonl", "path": path, "error_path": error_path}))
            .unwrap()
    }

    fn item(n: u64, error: bool) -> Item {
        let mut row = crate::row::Row::new();
        row.insert("n".into(), json!(n));
        let mut item = Item::new(n, row);
        if error {
            item.error = Some(RowFailure {
                transform: "t".into(),
                error: crate::transform::RowError::new("test", "no"),
            });
        }
        item
    }

    /// Files in `dir`, sorted.
    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn destination_changes_only_on_commit() {
        let d = dir("commit");
        let (out, errs) = (d.join("out.jsonl"), d.join("errors.jsonl"));
        std::fs::write(&out, "old\n").unwrap();
        let mut sink = Sink::create(&jsonl("", None), &out, Some(&errs)).unwrap();
        sink.write(item(0, false)).unwrap();
        sink.write(item(1, true)).unwrap();
        sink.flush().unwrap();
        // Written and flushed, not committed: the old content is intact.
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "old\n");
        assert!(!errs.exists());
        sink.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "{\"n\":0}\n");
        assert!(
            std::fs::read_to_string(&errs)
                .unwrap()
                .starts_with("{\"n\":1,\"error\":")
        );
        assert_eq!(
            names(&d),
            ["errors.jsonl", "out.jsonl"],
            "no temporary file left"
        );
    }

    #[test]
    fn a_discarded_or_failed_sink_leaves_the_old_output_and_no_temp_file() {
        let d = dir("discard");
        let out = d.join("out.jsonl");
        std::fs::write(&out, "old\n").unwrap();
        let mut sink = Sink::create(&jsonl("", None), &out, None).unwrap();
        sink.write(item(0, false)).unwrap();
        sink.discard();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "old\n");
        assert_eq!(names(&d), ["out.jsonl"]);

        fault::fail_after(&out, 10);
        let mut sink = Sink::create(&jsonl("", None), &out, None).unwrap();
        let failed =
            (0..10_000).try_for_each(|n| sink.write(item(n, false)).and_then(|()| sink.flush()));
        let Err(RunError::Sink { path, message }) = failed else {
            panic!("the disk-full writer must fail");
        };
        assert_eq!(
            path, out,
            "the error names the destination, not the temp file"
        );
        assert!(!message.is_empty());
        drop(sink);
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "old\n");
        assert_eq!(names(&d), ["out.jsonl"]);
    }

    #[test]
    fn stale_temp_files_of_dead_runs_are_removed_and_nothing_else() {
        let d = dir("stale");
        let out = d.join("out.jsonl");
        // No process has pid 4294967295; the other names are not ours.
        let stale = ".out.jsonl.elspeth-tmp-4294967295";
        let keep = [
            ".out.jsonl.elspeth-tmp-",
            ".out.jsonl.elspeth-tmp-12x",
            ".other.jsonl.elspeth-tmp-4294967295",
            "out.jsonl.elspeth-tmp-1",
        ];
        for n in keep.iter().chain([&stale]) {
            std::fs::write(d.join(n), "x").unwrap();
        }
        let sink = Sink::create(&jsonl("", None), &out, None).unwrap();
        sink.commit().unwrap();
        let mut expected: Vec<String> = keep.iter().map(|s| (*s).to_string()).collect();
        expected.push("out.jsonl".into());
        expected.sort();
        assert_eq!(names(&d), expected);
    }

    #[cfg(unix)]
    #[test]
    fn a_symlinked_output_keeps_its_link_and_permissions() {
        use std::os::unix::fs::PermissionsExt as _;
        let d = dir("symlink");
        let (target, link) = (d.join("real.jsonl"), d.join("link.jsonl"));
        std::fs::write(&target, "old\n").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o640)).unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let mut sink = Sink::create(&jsonl("", None), &link, None).unwrap();
        sink.write(item(7, false)).unwrap();
        sink.commit().unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "{\"n\":7}\n");
        let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
    }

    #[test]
    fn a_directory_is_no_output() {
        let d = dir("isdir");
        std::fs::create_dir_all(d.join("out.jsonl")).unwrap();
        let e = Sink::create(&jsonl("", None), &d.join("out.jsonl"), None).err();
        assert!(matches!(e, Some(RunError::Sink { .. })), "{e:?}");
    }

    /// A write failing mid-run (the disk fills up) stops the run with its
    /// summary, and the previous output stays.
    #[tokio::test]
    async fn a_write_failure_mid_run_keeps_the_summary_and_the_old_output() {
        let d = dir("diskfull");
        let rows: String = (0..5000)
            .map(|n| format!("{{\"n\":{n},\"pad\":\"{}\"}}\n", "x".repeat(100)))
            .collect();
        std::fs::write(d.join("in.jsonl"), &rows).unwrap();
        let out = d.join("out.jsonl");
        std::fs::write(&out, "old\n").unwrap();
        let config = serde_json::from_value(json!({
            "name": "diskfull",
            "source": {"plugin": "jsonl", "path": "in.jsonl"},
            "transforms": [],
            "sink": {"plugin": "jsonl", "path": "out.jsonl"},
        }))
        .unwrap();
        // More than the first flush, far less than every row.
        fault::fail_after(&out, 100_000);
        let e = Pipeline::new(config, &d)
            .run(RunOptions::default())
            .await
            .unwrap_err();
        let summary = e
            .summary()
            .expect("a stopped run keeps its summary")
            .clone();
        assert!(
            matches!(e.cause(), RunError::Sink { path, .. } if *path == out),
            "{e}"
        );
        let done = summary.rows_ok + summary.rows_failed;
        assert!(
            done > 0 && done < 5000,
            "rows done before the failure: {done}"
        );
        assert!(!summary.interrupted, "a write failure is no interruption");
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "old\n");
        assert_eq!(names(&d), ["in.jsonl", "out.jsonl"]);
        assert_eq!(std::fs::read_to_string(d.join("in.jsonl")).unwrap(), rows);
    }
}
