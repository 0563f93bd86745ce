//! Sources and sinks on object storage: `s3://bucket/key`,
//! `az://container/path` (also `abfs[s]://`) and `gs://bucket/key`,
//! through the `object_store` crate.
//!
//! Credentials and endpoints come from the standard variables its builders
//! read (`AmazonS3Builder::from_env`: `AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT`,
//! ...; `MicrosoftAzureBuilder::from_env`: `AZURE_STORAGE_ACCOUNT_NAME`,
//! `AZURE_STORAGE_USE_EMULATOR`, ...; `GoogleCloudStorageBuilder::from_env`).
//! A source object is streamed to a local staging file (never whole into
//! memory) and read from there like a local source; a sink is written to a
//! staging file like a local sink, then uploaded in parts, and becomes
//! visible only when the multipart upload completes — atomic, like the
//! local sink's rename. Messages name the URL without credentials.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, ObjectStoreScheme, WriteMultipart};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::RunError;

/// Upload part size (S3's minimum is 5 MiB).
const PART: usize = 8 * 1024 * 1024;

use elspeth_schema::paths::is_object_url;

/// Whether `path` (as resolved by `Pipeline::paths`) names an object.
pub(crate) fn is_object(path: &Path) -> bool {
    is_object_url(&path.to_string_lossy())
}

/// One object and the store it lives in.
pub(crate) struct RemoteObject {
    /// The URL as configured, credentials masked: for messages.
    shown: String,
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
}

impl std::fmt::Debug for RemoteObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

fn error(shown: &str, message: String) -> RunError {
    RunError::Remote {
        url: shown.to_string(),
        message,
    }
}

impl RemoteObject {
    /// The object at `url`, with the store's builder reading its variables.
    pub(crate) fn open(url: &str) -> Result<Self, RunError> {
        // The store's own HTTP client uses the process's rustls provider.
        elspeth_core::http::install_crypto_provider();
        let shown = elspeth_core::redact::url(url).into_owned();
        let parsed = reqwest::Url::parse(url).map_err(|e| {
            error(
                &shown,
                format!("not a URL ({e}); write e.g. s3://bucket/path/rows.jsonl"),
            )
        })?;
        let (scheme, path) = ObjectStoreScheme::parse(&parsed).map_err(|e| {
            error(
                &shown,
                format!("{e}; write s3://bucket/key, az://container/path or gs://bucket/key"),
            )
        })?;
        let built: Result<Arc<dyn ObjectStore>, object_store::Error> = match scheme {
            ObjectStoreScheme::AmazonS3 => object_store::aws::AmazonS3Builder::from_env()
                .with_url(url)
                .build()
                .map(|s| Arc::new(s) as Arc<dyn ObjectStore>),
            ObjectStoreScheme::MicrosoftAzure => {
                object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_url(url)
                    .build()
                    .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
            }
            ObjectStoreScheme::GoogleCloudStorage => {
                object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_url(url)
                    .build()
                    .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
            }
            _ => {
                return Err(error(
                    &shown,
                    "only s3://, az://, abfs[s]:// and gs:// objects are supported".into(),
                ));
            }
        };
        let store = built.map_err(|e| {
            error(
                &shown,
                format!(
                    "{}; set the store's variables (AWS_* for s3://, AZURE_STORAGE_* for az://, GOOGLE_* for gs://)",
                    clean(&e)
                ),
            )
        })?;
        Ok(Self { shown, store, path })
    }

    /// Whether the object exists.
    pub(crate) async fn exists(&self) -> Result<bool, RunError> {
        match self.store.head(&self.path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.failed("cannot read", &e)),
        }
    }

    /// Streams the object into the local file `to`.
    pub(crate) async fn download(&self, to: &Path) -> Result<(), RunError> {
        let got = self
            .store
            .get(&self.path)
            .await
            .map_err(|e| self.failed("cannot read", &e))?;
        let mut stream = got.into_stream();
        let mut file = tokio::fs::File::create(to)
            .await
            .map_err(|e| error(&self.shown, format!("cannot stage it locally: {e}")))?;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.failed("cannot read", &e))?;
            file.write_all(&chunk)
                .await
                .map_err(|e| error(&self.shown, format!("cannot stage it locally: {e}")))?;
        }
        file.flush()
            .await
            .map_err(|e| error(&self.shown, format!("cannot stage it locally: {e}")))
    }

    /// Uploads the local file `from` as this object, in parts; the object
    /// appears (or is replaced) only when every part is in.
    pub(crate) async fn upload(&self, from: &Path) -> Result<(), RunError> {
        let upload = self
            .store
            .put_multipart(&self.path)
            .await
            .map_err(|e| self.failed("cannot write", &e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
        let mut file = tokio::fs::File::open(from)
            .await
            .map_err(|e| error(&self.shown, format!("cannot read the staged output: {e}")))?;
        let mut buf = vec![0u8; 1024 * 1024];
        loop {
            let n = file
                .read(&mut buf)
                .await
                .map_err(|e| error(&self.shown, format!("cannot read the staged output: {e}")))?;
            if n == 0 {
                break;
            }
            writer
                .wait_for_capacity(4)
                .await
                .map_err(|e| self.failed("cannot write", &e))?;
            writer.write(&buf[..n]);
        }
        writer
            .finish()
            .await
            .map(|_| ())
            .map_err(|e| self.failed("cannot write", &e))
    }

    fn failed(&self, what: &str, e: &object_store::Error) -> RunError {
        let hint = match e {
            object_store::Error::NotFound { .. } => "; check the bucket or container and the key",
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => {
                "; check the credentials in the store's variables"
            }
            _ => "",
        };
        error(&self.shown, format!("{what} it: {}{hint}", clean(e)))
    }
}

/// The store's message without anything secret in a URL it quotes.
fn clean(e: &object_store::Error) -> String {
    elspeth_core::redact::urls_in(&e.to_string()).into_owned()
}

/// A folder for staged files, removed when dropped.
#[derive(Debug)]
pub(crate) struct Staging {
    dir: PathBuf,
}

impl Staging {
    /// A fresh staging folder under the system's temporary folder.
    pub(crate) fn new() -> Result<Self, RunError> {
        let dir = std::env::temp_dir().join(format!(
            "elspeth-staging-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| RunError::Sink {
            path: dir.clone(),
            message: e.to_string(),
        })?;
        Ok(Self { dir })
    }

    /// A file in the folder.
    pub(crate) fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A run's paths with every object replaced by a local staging file: the
/// source downloaded, the sink and error file uploaded once committed.
pub(crate) struct Staged {
    /// Local paths to read and write.
    pub local: super::ResolvedPaths,
    uploads: Vec<(PathBuf, RemoteObject)>,
    _staging: Option<Staging>,
}

impl Staged {
    /// Downloads a remote source and points remote outputs at staging
    /// files; local paths stay as they are.
    pub(crate) async fn prepare(paths: &super::ResolvedPaths) -> Result<Self, RunError> {
        let any = is_object(&paths.source)
            || is_object(&paths.sink)
            || paths.errors.as_deref().is_some_and(is_object);
        let mut local = paths.clone();
        if !any {
            return Ok(Self {
                local,
                uploads: Vec::new(),
                _staging: None,
            });
        }
        let staging = Staging::new()?;
        let name = |role: &str, p: &Path| {
            let file = p
                .file_name()
                .map_or_else(|| "object".into(), |n| n.to_string_lossy().into_owned());
            staging.file(&format!("{role}-{file}"))
        };
        if is_object(&paths.source) {
            let object = RemoteObject::open(&paths.source.to_string_lossy())?;
            let file = name("source", &paths.source);
            object.download(&file).await?;
            local.source = file;
        }
        let mut uploads = Vec::new();
        if is_object(&paths.sink) {
            let object = RemoteObject::open(&paths.sink.to_string_lossy())?;
            local.sink = name("sink", &paths.sink);
            uploads.push((local.sink.clone(), object));
        }
        if let Some(errors) = paths.errors.as_deref().filter(|p| is_object(p)) {
            let object = RemoteObject::open(&errors.to_string_lossy())?;
            let file = name("errors", errors);
            local.errors = Some(file.clone());
            uploads.push((file, object));
        }
        Ok(Self {
            local,
            uploads,
            _staging: Some(staging),
        })
    }

    /// Uploads the committed outputs to their objects.
    pub(crate) async fn upload(&self) -> Result<(), RunError> {
        for (file, object) in &self.uploads {
            if file.is_file() {
                object.upload(file).await?;
            }
        }
        Ok(())
    }
}
