//! File identity: whether an output of a run (the sink, its `error_path`,
//! the run store, a checkpoint) is the same file as one of its inputs (the
//! source, the pipeline file) or as another output.
//!
//! Comparing path strings is not enough: `out/../in.jsonl`, `.//in.jsonl`,
//! an absolute path, a symlink and a hard link all name the source. Two
//! paths are the same file when
//! - they resolve to the same absolute path, `..` and symlinks followed
//!   (for a file that does not exist yet, its deepest existing folder is
//!   canonicalized and the rest appended), or
//! - both exist and have the same device and inode (hard links; unix only,
//!   elsewhere the resolved paths decide).
//!
//! Both the validator (`elspeth validate`) and the runtime (before it opens
//! anything for writing) use [`check_outputs`] / [`find_clashes`], so the
//! rule lives here only.
//!
//! ```
//! use std::path::Path;
//! use elspeth_schema::paths::{PathClash, check_outputs};
//! let inputs = [("source", Path::new("data/in.jsonl"))];
//! let outputs = [("sink", Path::new("data/out/../in.jsonl"))];
//! let clash = check_outputs(&inputs, &outputs).unwrap_err();
//! assert!(matches!(clash, PathClash::Input { .. }));
//! assert!(check_outputs(&inputs, &[("sink", Path::new("data/out.jsonl"))]).is_ok());
//! ```

use std::path::{Component, Path, PathBuf};

/// An output that would overwrite an input, or two outputs writing one file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathClash {
    /// An output is the same file as an input: writing it would destroy the input.
    #[error(
        "the {output_role} `{}` is the same file as the {input_role} `{}`{}: writing it would destroy the {input_role}",
        output.display(), input.display(), how.suffix()
    )]
    Input {
        /// Index of the output in the list given to [`check_outputs`].
        output_index: usize,
        /// What the output is (`sink`, `error_path`, `run store`, ...).
        output_role: String,
        /// The output's path as given.
        output: PathBuf,
        /// What the input is (`source`, `pipeline file`).
        input_role: String,
        /// The input's path as given.
        input: PathBuf,
        /// How they were found to be the same file.
        how: Sameness,
    },
    /// Two outputs are the same file: one would overwrite the other.
    #[error(
        "the {output_role} `{}` is the same file as the {other_role} `{}`{}",
        output.display(), other.display(), how.suffix()
    )]
    Outputs {
        /// Index of the later output in the list given to [`check_outputs`].
        output_index: usize,
        /// What the later output is.
        output_role: String,
        /// The later output's path as given.
        output: PathBuf,
        /// Index of the earlier output it clashes with.
        other_index: usize,
        /// What the earlier output is.
        other_role: String,
        /// The earlier output's path as given.
        other: PathBuf,
        /// How they were found to be the same file.
        how: Sameness,
    },
}

impl PathClash {
    /// Index of the offending output in the list given to [`check_outputs`].
    pub fn output_index(&self) -> usize {
        match self {
            Self::Input { output_index, .. } | Self::Outputs { output_index, .. } => *output_index,
        }
    }

    /// How the two paths were found to be the same file.
    pub fn how(&self) -> Sameness {
        match self {
            Self::Input { how, .. } | Self::Outputs { how, .. } => *how,
        }
    }
}

/// How two paths were found to name the same file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sameness {
    /// They resolve to the same absolute path (through `..` and symlinks).
    SamePath,
    /// Different paths, same device and inode: hard links of one file.
    HardLink,
}

impl Sameness {
    fn suffix(self) -> &'static str {
        match self {
            Self::SamePath => "",
            Self::HardLink => " (a hard link to it)",
        }
    }
}

/// What identifies a file: its resolved path, and device + inode when it exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileIdentity {
    /// Absolute, `..` and symlinks resolved as far as the file system allows.
    pub resolved: PathBuf,
    /// Device and inode of the existing file (unix only).
    pub inode: Option<(u64, u64)>,
}

impl FileIdentity {
    /// The identity of `path` (relative paths against the current folder).
    /// Never fails: a path that cannot be resolved further is normalized
    /// lexically.
    pub fn of(path: &Path) -> Self {
        Self {
            resolved: resolve(path),
            inode: inode(path),
        }
    }

    /// Whether `self` and `other` are the same file, and how.
    pub fn same_as(&self, other: &Self) -> Option<Sameness> {
        if self.resolved == other.resolved {
            return Some(Sameness::SamePath);
        }
        match (self.inode, other.inode) {
            (Some(a), Some(b)) if a == b => Some(Sameness::HardLink),
            _ => None,
        }
    }
}

/// Checks every output against every input, then the outputs among
/// themselves; the first clash is returned. Roles name the paths in the
/// message (`"sink"`, `"error_path"`, `"run store"`; `"source"`,
/// `"pipeline file"`).
pub fn check_outputs(inputs: &[(&str, &Path)], outputs: &[(&str, &Path)]) -> Result<(), PathClash> {
    match find_clashes(inputs, outputs).into_iter().next() {
        Some(clash) => Err(clash),
        None => Ok(()),
    }
}

/// Every clash (at most one per output: its first), in output order.
pub fn find_clashes(inputs: &[(&str, &Path)], outputs: &[(&str, &Path)]) -> Vec<PathClash> {
    let ins: Vec<FileIdentity> = inputs.iter().map(|(_, p)| FileIdentity::of(p)).collect();
    let outs: Vec<FileIdentity> = outputs.iter().map(|(_, p)| FileIdentity::of(p)).collect();
    let mut clashes = Vec::new();
    'outputs: for (i, (role, path)) in outputs.iter().enumerate() {
        for ((input_role, input), id) in inputs.iter().zip(&ins) {
            if let Some(how) = outs[i].same_as(id) {
                clashes.push(PathClash::Input {
                    output_index: i,
                    output_role: (*role).to_string(),
                    output: path.to_path_buf(),
                    input_role: (*input_role).to_string(),
                    input: input.to_path_buf(),
                    how,
                });
                continue 'outputs;
            }
        }
        for (j, (other_role, other)) in outputs[..i].iter().enumerate() {
            if let Some(how) = outs[i].same_as(&outs[j]) {
                clashes.push(PathClash::Outputs {
                    output_index: i,
                    output_role: (*role).to_string(),
                    output: path.to_path_buf(),
                    other_index: j,
                    other_role: (*other_role).to_string(),
                    other: other.to_path_buf(),
                    how,
                });
                continue 'outputs;
            }
        }
    }
    clashes
}

/// `path` against `base` unless it is absolute (how a pipeline's relative
/// paths are resolved against its folder).
pub fn resolve_against(base: &Path, path: &str) -> PathBuf {
    if is_object_url(path) {
        // An object on object storage is no file: kept as written.
        return PathBuf::from(path);
    }
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// Whether `path` names an object on object storage: `s3://`, `az://`,
/// `abfs://`, `abfss://` or `gs://`.
pub fn is_object_url(path: &str) -> bool {
    ["s3://", "az://", "abfs://", "abfss://", "gs://"]
        .iter()
        .any(|scheme| {
            path.len() > scheme.len() && path[..scheme.len()].eq_ignore_ascii_case(scheme)
        })
}

/// Absolute path with symlinks and `..` resolved: the file itself when it
/// exists, else its deepest existing ancestor canonicalized, with the
/// missing rest appended after lexical normalization (a folder that does
/// not exist is no symlink, so applying `..` lexically there is exact).
fn resolve(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    for ancestor in absolute.ancestors() {
        if let Ok(mut resolved) = std::fs::canonicalize(ancestor) {
            if let Ok(rest) = absolute.strip_prefix(ancestor) {
                resolved.push(rest);
            }
            return normalize(&resolved);
        }
    }
    normalize(&absolute)
}

/// Removes `.` and applies `..` lexically.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push(c);
                }
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(unix)]
fn inode(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn inode(_path: &Path) -> Option<(u64, u64)> {
    // No stable file id in std elsewhere: the resolved paths decide.
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("elspeth-paths-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn clash(input: &Path, output: &Path) -> Option<Sameness> {
        check_outputs(&[("source", input)], &[("sink", output)])
            .err()
            .map(|c| c.how())
    }

    #[test]
    fn spellings_of_the_same_existing_file() {
        let d = dir("spellings");
        let input = d.join("in.jsonl");
        std::fs::write(&input, "{}\n").unwrap();
        std::fs::create_dir_all(d.join("out")).unwrap();
        for output in [
            d.join("out/../in.jsonl"),
            d.join(".//in.jsonl"),
            d.join("missing/../in.jsonl"),
            input.canonicalize().unwrap(),
        ] {
            assert_eq!(
                clash(&input, &output),
                Some(Sameness::SamePath),
                "{}",
                output.display()
            );
        }
        assert_eq!(clash(&input, &d.join("out/in.jsonl")), None);
        assert_eq!(clash(&input, &d.join("in.jsonl.out")), None);
    }

    #[test]
    fn missing_files_compare_by_resolved_path() {
        let d = dir("missing");
        assert_eq!(
            clash(&d.join("a/b.jsonl"), &d.join("a/./c/../b.jsonl")),
            Some(Sameness::SamePath)
        );
        assert_eq!(clash(&d.join("a/b.jsonl"), &d.join("a/c.jsonl")), None);
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_and_hard_links() {
        let d = dir("links");
        let input = d.join("in.jsonl");
        std::fs::write(&input, "{}\n").unwrap();
        std::os::unix::fs::symlink(&input, d.join("sym.jsonl")).unwrap();
        std::fs::hard_link(&input, d.join("hard.jsonl")).unwrap();
        std::os::unix::fs::symlink(&d, d.join("loop")).unwrap();
        assert_eq!(
            clash(&input, &d.join("sym.jsonl")),
            Some(Sameness::SamePath)
        );
        assert_eq!(
            clash(&input, &d.join("hard.jsonl")),
            Some(Sameness::HardLink)
        );
        // A new file in a symlinked folder is resolved through the folder.
        assert_eq!(
            clash(&d.join("new.jsonl"), &d.join("loop/new.jsonl")),
            Some(Sameness::SamePath)
        );
    }

    #[test]
    fn outputs_among_themselves_and_every_clash() {
        let d = dir("outputs");
        let (a, b) = (d.join("in.jsonl"), d.join("out.jsonl"));
        let inputs = [("source", a.as_path())];
        let outputs = [
            ("sink", b.as_path()),
            ("error_path", a.as_path()),
            ("run store", b.as_path()),
        ];
        let all = find_clashes(&inputs, &outputs);
        assert_eq!(all.len(), 2);
        assert!(
            matches!(&all[0], PathClash::Input { output_index: 1, input_role, .. } if input_role == "source")
        );
        assert!(matches!(
            &all[1],
            PathClash::Outputs {
                output_index: 2,
                other_index: 0,
                ..
            }
        ));
        assert!(all[0].to_string().contains("would destroy the source"));
    }
}
