//! Rows and per-row context.

use elspeth_telemetry::Tracer;
use elspeth_telemetry::tracer::RowTrace;

use crate::store::CallCache;

/// One row: a JSON object, fields in input order.
pub type Row = serde_json::Map<String, serde_json::Value>;

/// What a transform knows about the row it is processing.
#[derive(Debug, Clone, Copy)]
pub struct RowContext<'a> {
    /// Stable id of the row within the run (`row-<index>` by default); it is
    /// the `token_id` of the row's traces.
    pub token_id: &'a str,
    /// 0-based position of the row in the source.
    pub index: u64,
    /// The transform's tracer (disabled when untraced).
    pub tracer: &'a Tracer,
    /// The transform's view of the run store: replies are looked up before
    /// a call is paid and committed before the row goes on. `None` when
    /// the run has no store (or the transform is not fingerprinted).
    pub cache: Option<&'a CallCache>,
    /// The row's trace: its Tier 2 trace uses this trace id (the id of its
    /// Tier 1 `pipeline.row` trace) and samples by its point. `None`
    /// outside a pipeline run.
    pub trace: Option<RowTrace>,
}

impl<'a> RowContext<'a> {
    /// A context for row `index` with token id `token_id`.
    pub fn new(token_id: &'a str, index: u64, tracer: &'a Tracer) -> Self {
        Self {
            token_id,
            index,
            tracer,
            cache: None,
            trace: None,
        }
    }

    /// The same context, with the run store's `cache`.
    pub fn with_cache(mut self, cache: Option<&'a CallCache>) -> Self {
        self.cache = cache;
        self
    }

    /// The same context, in the row's `trace`.
    pub fn with_trace(mut self, trace: Option<RowTrace>) -> Self {
        self.trace = trace;
        self
    }
}

/// What a transform knows about a chunk of rows handed to
/// [`Transform::process_batch`](crate::Transform::process_batch).
#[derive(Debug, Clone, Copy)]
pub struct BatchContext<'a> {
    /// The transform's tracer (disabled when untraced).
    pub tracer: &'a Tracer,
    /// The transform's view of the run store (see [`RowContext::cache`]).
    pub cache: Option<&'a CallCache>,
}

impl<'a> BatchContext<'a> {
    /// A context with `tracer` and no run store.
    pub fn new(tracer: &'a Tracer) -> Self {
        Self {
            tracer,
            cache: None,
        }
    }

    /// The same context, with the run store's `cache`.
    pub fn with_cache(mut self, cache: Option<&'a CallCache>) -> Self {
        self.cache = cache;
        self
    }

    /// The context of one row of the chunk.
    pub fn row(&self, token_id: &'a str, index: u64) -> RowContext<'a> {
        RowContext::new(token_id, index, self.tracer).with_cache(self.cache)
    }
}

/// A row's stable identity: SHA-256 of the value of the source's `key:`
/// field when set (`key: id`), else of the row's content as read. It does
/// not depend on the run, the row's position or the machine, so everything
/// decided from it (trace sampling, the shard a row belongs to) comes out
/// the same in every run, in a resumed run and on every shard.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RowIdentity([u8; 32]);

impl RowIdentity {
    /// The identity of `row`, by its `key` field when given. A row without
    /// that field (or with `null` there) falls back to its content.
    pub fn of(row: &Row, key: Option<&str>) -> Self {
        let mut f = crate::store::Fingerprinter::new();
        match key.and_then(|k| row.get(k)).filter(|v| !v.is_null()) {
            // A string key hashes its text, so `"7"` in CSV and `"7"` in
            // JSONL agree; other values hash their JSON.
            Some(serde_json::Value::String(s)) => f.field("key", s.as_bytes()),
            Some(other) => f.field("key", other.to_string().as_bytes()),
            // The row's JSON as `Value::Object(row)` writes it, without
            // cloning the row into one.
            None => f.field(
                "row",
                serde_json::to_string(row).unwrap_or_default().as_bytes(),
            ),
        }
        Self(*f.finish().as_bytes())
    }

    /// The first 8 bytes, big-endian: a uniformly spread 64-bit number.
    pub fn as_u64(&self) -> u64 {
        let mut b = [0; 8];
        b.copy_from_slice(&self.0[..8]);
        u64::from_be_bytes(b)
    }

    /// A number in `[0, 1)` spread uniformly over rows: a row is sampled at
    /// rate `r` when `unit() < r`, so a higher rate keeps every row a lower
    /// one kept.
    pub fn unit(&self) -> f64 {
        (self.as_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The shard (`0..n`) this row belongs to when the rows are split `n`
    /// ways. `n` must be at least 1.
    pub fn shard(&self, n: u32) -> u32 {
        (self.as_u64() % u64::from(n.max(1))) as u32
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for RowIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RowIdentity({:016x})", self.as_u64())
    }
}

/// One of `count` disjoint parts of a run's rows (`--shard index/count`,
/// 0-based): the rows whose [`RowIdentity::shard`] is `index`. Shards never
/// overlap, together cover every row, and a rerun of a shard takes the same
/// rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shard {
    index: u32,
    count: u32,
}

/// Why a `--shard` value is not `index/count`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    /// Not two numbers around a `/`.
    #[error("`{0}` is not a shard: write INDEX/COUNT, e.g. `0/4` (0-based index)")]
    Syntax(String),
    /// A count of zero.
    #[error("a shard count must be at least 1, got `{0}`")]
    ZeroCount(String),
    /// An index that is not below the count.
    #[error("shard index {index} is out of range for {count} shards: use 0 to {last}", last = count - 1)]
    OutOfRange {
        /// The index given.
        index: u32,
        /// The count given.
        count: u32,
    },
}

impl Shard {
    /// Shard `index` of `count`.
    pub fn new(index: u32, count: u32) -> Result<Self, ShardError> {
        if count == 0 {
            return Err(ShardError::ZeroCount(format!("{index}/{count}")));
        }
        if index >= count {
            return Err(ShardError::OutOfRange { index, count });
        }
        Ok(Self { index, count })
    }

    /// The 0-based index.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// How many shards there are.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Whether the row with identity `id` belongs to this shard.
    pub fn contains(&self, id: &RowIdentity) -> bool {
        id.shard(self.count) == self.index
    }

    /// This shard's copy of output `path`: `<stem>.shard-<i>-of-<n><ext>`
    /// beside it (`out/triaged.jsonl` → `out/triaged.shard-0-of-4.jsonl`;
    /// `state/run.elspeth.db` → `state/run.elspeth.shard-0-of-4.db`).
    pub fn path_of(&self, path: &std::path::Path) -> std::path::PathBuf {
        let tag = format!("shard-{}-of-{}", self.index, self.count);
        let name = match (
            path.file_stem().map(|s| s.to_string_lossy()),
            path.extension().map(|e| e.to_string_lossy()),
        ) {
            (Some(stem), Some(ext)) => format!("{stem}.{tag}.{ext}"),
            (Some(stem), None) => format!("{stem}.{tag}"),
            (None, _) => tag,
        };
        path.with_file_name(name)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = ShardError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = || ShardError::Syntax(s.to_string());
        let (i, n) = s.trim().split_once('/').ok_or_else(syntax)?;
        let index = i.trim().parse().map_err(|_| syntax())?;
        let count = n.trim().parse().map_err(|_| syntax())?;
        Self::new(index, count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(v: serde_json::Value) -> Row {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn the_key_field_alone_decides_the_identity() {
        let a = row(json!({"id": "7", "text": "a"}));
        let b = row(json!({"id": "7", "text": "b"}));
        let c = row(json!({"id": "8", "text": "a"}));
        assert_eq!(
            RowIdentity::of(&a, Some("id")),
            RowIdentity::of(&b, Some("id"))
        );
        assert_ne!(
            RowIdentity::of(&a, Some("id")),
            RowIdentity::of(&c, Some("id"))
        );
        // Without a key the content decides.
        assert_ne!(RowIdentity::of(&a, None), RowIdentity::of(&b, None));
        // A missing or null key falls back to the content.
        let n = row(json!({"id": null, "text": "a"}));
        assert_eq!(RowIdentity::of(&n, Some("id")), RowIdentity::of(&n, None));
        assert_eq!(RowIdentity::of(&a, Some("nope")), RowIdentity::of(&a, None));
    }

    #[test]
    fn the_identity_is_pinned_so_runs_and_versions_agree() {
        // Changing the hash would move every row to another shard and
        // another sampling decision: this pins it.
        // The value is SHA-256 of the length-prefixed field ("key", "42"),
        // computed independently (Python's hashlib).
        let id = RowIdentity::of(&row(json!({"id": "42"})), Some("id"));
        assert_eq!(format!("{id:?}"), "RowIdentity(eca74a6352ca105b)");
        let again = RowIdentity::of(&row(json!({"other": 1, "id": "42"})), Some("id"));
        assert_eq!(id, again);
        let numeric = RowIdentity::of(&row(json!({"id": 42})), Some("id"));
        assert_eq!(numeric, id, "42 and \"42\" hash the same text");
        // Without a key: the field ("row", the row's JSON in field order),
        // `{"id":"42","n":1.5,"tags":["a","b"]}` (Python's hashlib again).
        let content = RowIdentity::of(
            &row(json!({"id": "42", "n": 1.5, "tags": ["a", "b"]})),
            None,
        );
        assert_eq!(format!("{content:?}"), "RowIdentity(0eaaca144cefb2eb)");
    }

    #[test]
    fn shards_parse_and_partition_the_rows() {
        assert_eq!("2/4".parse::<Shard>(), Shard::new(2, 4));
        assert_eq!(" 0 / 1 ".parse::<Shard>().unwrap().to_string(), "0/1");
        assert!(matches!(
            "4/4".parse::<Shard>(),
            Err(ShardError::OutOfRange { index: 4, count: 4 })
        ));
        assert!(matches!(
            "0/0".parse::<Shard>(),
            Err(ShardError::ZeroCount(_))
        ));
        for bad in ["", "3", "a/4", "-1/4", "1/4/2"] {
            assert!(
                matches!(bad.parse::<Shard>(), Err(ShardError::Syntax(_))),
                "{bad}"
            );
        }
        let shards: Vec<Shard> = (0..3).map(|i| Shard::new(i, 3).unwrap()).collect();
        for i in 0..300 {
            let id = RowIdentity::of(&row(json!({ "n": i })), None);
            assert_eq!(shards.iter().filter(|s| s.contains(&id)).count(), 1);
        }
    }

    #[test]
    fn shards_and_unit_spread_rows_evenly() {
        let mut counts = [0u32; 4];
        let mut below_half = 0;
        for i in 0..4000 {
            let id = RowIdentity::of(&row(json!({ "id": i })), Some("id"));
            counts[id.shard(4) as usize] += 1;
            let u = id.unit();
            assert!((0.0..1.0).contains(&u));
            below_half += u32::from(u < 0.5);
        }
        for c in counts {
            assert!((850..1150).contains(&c), "{counts:?}");
        }
        assert!((1800..2200).contains(&below_half), "{below_half}");
    }
}
