//! The semantic phase: rules the schema cannot express, checked on the
//! typed config part by part (source, sink, telemetry, each transform), so
//! a part with schema errors is skipped without hiding the others.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use crate::yaml::{Node, Value};
use serde::Deserialize;

use super::fields;
use super::locate::{
    Found, Seg, anchor_span, find, from_location, provider_span, scalar_range, segs,
};
use super::{Finding, Phase, ValidateOptions};
use crate::config::{
    AZURE_JSON_SCHEMA_MIN_API_VERSION, BudgetConfig, Connection, DEFAULT_AZURE_API_VERSION,
    EnvString, FailFastConfig, JsonSchemaFormat, LangfuseTracingConfig, MAX_QUERIES, MatrixProblem,
    PipelineConfig, QueryMatrix, ResponseFormat, SinkConfig, SourceConfig, StoreConfig,
    TelemetryConfig, TelemetryExporter, TracingConfig, TransformConfig, azure_supports_json_schema,
    langfuse_environment_problem,
};
use crate::diagnostic::Severity;
use crate::paths::{PathClash, Sameness, find_clashes, resolve_against};
use crate::span::Span;
use crate::suggest::{did_you_mean, list, list_or};
use crate::template;

/// Runs the semantic rules. Returns the typed config when every part of it
/// could be read (so it need not be deserialized twice).
/// `file` is the pipeline file, when the text comes from one: relative
/// paths resolve against its folder, and no output may overwrite it.
pub(super) fn check(
    phase: &mut Phase<'_>,
    opts: &ValidateOptions,
    file: Option<&Path>,
) -> Option<PipelineConfig> {
    let root = phase.root;
    let mut rules = Rules { phase, opts, file };
    rules.run(root)
}

struct Rules<'p, 'a> {
    phase: &'p mut Phase<'a>,
    opts: &'p ValidateOptions,
    file: Option<&'p Path>,
}

/// A typed part of the config, if the schema phase found it clean.
fn typed<'n, T: Deserialize<'n>>(phase: &Phase<'_>, root: &'n Node, path: &[Seg]) -> Option<T> {
    if !phase.is_clean(path) {
        return None;
    }
    T::deserialize(find(root, path)?.node).ok()
}

/// An optional top-level section: whether it is written (not null), and
/// its typed value when it is clean.
fn section<'n, T: Deserialize<'n>>(
    phase: &Phase<'_>,
    root: &'n Node,
    key: &str,
) -> (bool, Option<T>) {
    let written = root
        .get(key)
        .is_some_and(|t| !matches!(t.value, Value::Null));
    let value = written
        .then(|| typed::<T>(phase, root, &[Seg::Key(key.into())]))
        .flatten();
    (written, value)
}

impl Rules<'_, '_> {
    fn found(&self, path: &[Seg]) -> Option<Found<'_>> {
        find(self.phase.root, path)
    }

    fn add(&mut self, span: Span, severity: Severity, message: String) -> &mut Finding {
        self.phase.push(Finding::new(span, severity, message))
    }

    /// Adds a finding at the value at `path` (or the closest existing node).
    fn at_value(
        &mut self,
        path: &[Seg],
        severity: Severity,
        message: String,
    ) -> Option<&mut Finding> {
        let span = self.found(path)?.node.span;
        Some(self.add(span, severity, message))
    }

    /// Adds a finding at the key of the entry at `path`.
    fn at_key(
        &mut self,
        path: &[Seg],
        severity: Severity,
        message: String,
    ) -> Option<&mut Finding> {
        let found = self.found(path)?;
        let span = found.key.map_or(found.node.span, |k| k.span);
        Some(self.add(span, severity, message))
    }

    fn run(&mut self, root: &Node) -> Option<PipelineConfig> {
        let source: Option<SourceConfig> = typed(self.phase, root, &segs!["source"]);
        let sink: Option<SinkConfig> = typed(self.phase, root, &segs!["sink"]);
        if let Some(SourceConfig::Csv { delimiter, .. }) = &source {
            self.delimiter(&segs!["source", "delimiter"], delimiter);
        }
        if let Some(sink) = &sink {
            self.sink(sink);
        }
        if let Some(source) = &source {
            self.object_url(&segs!["source", "path"], source.path());
        }
        if let Some(sink) = &sink {
            self.object_url(&segs!["sink", "path"], sink.path());
            if let Some(e) = sink.error_path() {
                self.object_url(&segs!["sink", "error_path"], e);
            }
            self.outputs_vs_inputs(source.as_ref(), sink);
        }
        let (has_telemetry, telemetry) = section::<TelemetryConfig>(self.phase, root, "telemetry");
        if let Some(telemetry) = &telemetry {
            self.telemetry(telemetry);
        }
        let count = root
            .get("transforms")
            .and_then(Node::items)
            .map_or(0, <[Node]>::len);
        let mut transforms = Vec::new();
        for i in 0..count {
            let p = segs!["transforms", i];
            if let Some(t) = typed::<TransformConfig>(self.phase, root, &p) {
                self.transform(i, &t);
                transforms.push((i, t));
            }
        }
        self.across_transforms(&transforms);
        if let (Some(source), Some(dir)) = (&source, self.opts.base_dir.as_deref()) {
            self.row_fields(source, dir, &transforms, count);
        }
        let (has_fail_fast, fail_fast) = section::<FailFastConfig>(self.phase, root, "fail_fast");
        let (has_store, store) = section::<StoreConfig>(self.phase, root, "store");
        let (has_budget, budget) = section::<BudgetConfig>(self.phase, root, "budget");
        let name = root.get("name")?.as_str()?.to_string();
        if transforms.len() != count
            || count == 0
            || has_telemetry != telemetry.is_some()
            || has_fail_fast != fail_fast.is_some()
            || has_store != store.is_some()
            || has_budget != budget.is_some()
        {
            return None;
        }
        Some(PipelineConfig {
            name,
            source: source?,
            telemetry,
            transforms: transforms.into_iter().map(|(_, t)| t).collect(),
            sink: sink?,
            fail_fast,
            store,
            budget,
        })
    }

    // ---- source, sink, telemetry ----

    fn delimiter(&mut self, path: &[Seg], delimiter: &str) {
        let ok = delimiter.len() == 1
            && delimiter.is_ascii()
            && !matches!(delimiter, "\"" | "\n" | "\r");
        if !ok && let Some(f) = self.at_value(
            path,
            Severity::Error,
            format!("`delimiter` must be one ASCII character other than a quote or a line break, found `{}`", delimiter.escape_debug()),
        ) {
            f.help = Some("common delimiters are `,`, `;`, `|` and `\"\\t\"`".into());
        }
    }

    fn sink(&mut self, sink: &SinkConfig) {
        if let SinkConfig::Csv {
            columns, delimiter, ..
        } = sink
        {
            self.delimiter(&segs!["sink", "delimiter"], delimiter);
            let mut seen = HashSet::new();
            for (i, c) in columns.iter().enumerate() {
                if !seen.insert(c.as_str()) {
                    self.at_value(
                        &segs!["sink", "columns", i],
                        Severity::Error,
                        format!("column `{c}` is listed twice"),
                    );
                }
            }
        }
    }

    /// A `path` written as a URL must be an object the runtime can reach:
    /// `s3://bucket/key`, `az://container/path`, `abfs[s]://...`,
    /// `gs://bucket/key`.
    fn object_url(&mut self, at: &[Seg], path: &str) {
        const SCHEMES: [&str; 5] = ["s3", "az", "abfs", "abfss", "gs"];
        let Some((scheme, rest)) = path.split_once("://") else {
            return;
        };
        let message = if !SCHEMES.iter().any(|s| s.eq_ignore_ascii_case(scheme)) {
            let mut m = format!(
                "`{scheme}://` is not a storage elspeth reads or writes: use a local path, s3://, az://, abfs[s]:// or gs://"
            );
            if let Some(s) = elspeth_core::suggest::did_you_mean(scheme, SCHEMES) {
                m.push_str(&format!(" (did you mean `{s}://`?)"));
            }
            m
        } else {
            match rest.split_once('/') {
                Some((bucket, key)) if !bucket.is_empty() && !key.trim_matches('/').is_empty() => {
                    return;
                }
                _ => format!(
                    "`{}` names no object: write {scheme}://<bucket or container>/<path of the object>",
                    elspeth_core::redact::url(path)
                ),
            }
        };
        if let Some(f) = self.at_value(at, Severity::Error, message) {
            f.help = Some(
                "credentials come from the store's variables (AWS_*, AZURE_STORAGE_*, GOOGLE_*), never from the path".into(),
            );
        }
    }

    /// No output (the sink, its `error_path`) is the same file as an input
    /// (the source, the pipeline file) or as the other output, by file
    /// identity ([`crate::paths`]): `out/../in.jsonl`, a symlink or a hard
    /// link to the source are caught, not only the same spelling.
    fn outputs_vs_inputs(&mut self, source: Option<&SourceConfig>, sink: &SinkConfig) {
        let base = match self.file.and_then(Path::parent) {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        // (role, path resolved, path as written)
        let mut inputs: Vec<(&str, PathBuf, String)> = Vec::new();
        if let Some(source) = source {
            inputs.push((
                "source",
                resolve_against(&base, source.path()),
                source.path().to_string(),
            ));
        }
        if let Some(file) = self.file {
            let name = file.file_name().map_or_else(
                || file.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            inputs.push(("pipeline file", file.to_path_buf(), name));
        }
        let mut outputs: Vec<(&str, PathBuf, String)> = vec![(
            "sink",
            resolve_against(&base, sink.path()),
            sink.path().to_string(),
        )];
        if let Some(e) = sink.error_path() {
            outputs.push(("error_path", resolve_against(&base, e), e.to_string()));
        }
        let ins: Vec<(&str, &Path)> = inputs.iter().map(|(r, p, _)| (*r, p.as_path())).collect();
        let outs: Vec<(&str, &Path)> = outputs.iter().map(|(r, p, _)| (*r, p.as_path())).collect();
        for clash in find_clashes(&ins, &outs) {
            let i = clash.output_index();
            let (role, _, written) = &outputs[i];
            let at = if *role == "sink" {
                segs!["sink", "path"].to_vec()
            } else {
                segs!["sink", "error_path"].to_vec()
            };
            let subject = if *role == "sink" {
                "the sink"
            } else {
                "`error_path`"
            };
            let (message, other_written, help) = match &clash {
                PathClash::Input { input_role, .. } => {
                    let j = inputs
                        .iter()
                        .position(|(r, ..)| r == input_role)
                        .unwrap_or(0);
                    let message = if input_role == "source" {
                        format!("{subject} writes to the file the source reads")
                    } else {
                        format!("{subject} writes to the pipeline file itself")
                    };
                    (
                        message,
                        inputs.get(j).map(|x| x.2.clone()),
                        "write the output to another file",
                    )
                }
                PathClash::Outputs { other_index, .. } => (
                    "`error_path` is the same file as `path`".to_string(),
                    outputs.get(*other_index).map(|x| x.2.clone()),
                    "remove `error_path` to write failed rows with the others, or name another file",
                ),
            };
            self.phase.path_clash = true;
            if let Some(f) = self.at_value(&at, Severity::Error, message) {
                f.help = Some(help.into());
                match (clash.how(), other_written) {
                    (Sameness::HardLink, Some(other)) => f
                        .notes
                        .push(format!("`{written}` is a hard link to `{other}`")),
                    (Sameness::SamePath, Some(other)) if *written != other => f.notes.push(
                        format!("`{written}` resolves to the same file as `{other}`"),
                    ),
                    _ => {}
                }
            }
        }
    }

    fn telemetry(&mut self, telemetry: &TelemetryConfig) {
        if telemetry.enabled
            && telemetry.exporters.is_empty()
            && let Some(f) = self.at_key(
                &segs!["telemetry"],
                Severity::Warning,
                "telemetry is enabled but has no exporters, so nothing is exported".into(),
            )
        {
            f.help = Some(
                "add `exporters: [{ name: otlp, options: { endpoint: \"http://localhost:4318\" } }]`"
                    .into(),
            );
        }
        for (i, exporter) in telemetry.exporters.iter().enumerate() {
            let TelemetryExporter::Otlp(o) = exporter;
            let base = segs!["telemetry", "exporters", i, "options"].to_vec();
            let mut p = base.clone();
            p.push(Seg::from("endpoint"));
            self.url(&p, "endpoint", &o.endpoint);
            for name in o.headers.keys() {
                let valid = !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
                if !valid {
                    let mut p = base.clone();
                    p.push(Seg::from("headers"));
                    p.push(Seg::from(name.as_str()));
                    self.at_key(
                        &p,
                        Severity::Error,
                        format!("`{name}` is not a valid HTTP header name"),
                    );
                }
            }
        }
    }

    /// `field` must be an http(s) URL. With references: checked after
    /// resolving when `resolve_env` is on, skipped otherwise.
    fn url(&mut self, path: &[Seg], field: &str, value: &EnvString) {
        let (text, resolved) = if value.has_references() {
            if !self.opts.resolve_env {
                return;
            }
            match value.resolve(&*self.opts.env) {
                Ok(v) => (v, true),
                Err(_) => return, // reported by the `${VAR}` phase
            }
        } else {
            (value.raw().to_string(), false)
        };
        if let Err(problem) = check_http_url(&text) {
            let message = if resolved {
                // Never print a resolved value.
                format!("`{field}` does not resolve to an http(s) URL: {problem}")
            } else {
                format!("`{field}` must be an http(s) URL: {problem}")
            };
            if let Some(f) = self.at_value(path, Severity::Error, message) {
                f.help = Some(format!(
                    "write a full URL, e.g. `{}`",
                    match field {
                        "host" => "https://cloud.langfuse.com",
                        "base_url" => "https://openrouter.ai/api/v1",
                        "endpoint" if path.first() == Some(&Seg::from("telemetry")) => {
                            "http://localhost:4318"
                        }
                        _ => "https://my-resource.openai.azure.com",
                    }
                ));
            }
        }
    }

    // ---- one transform ----

    fn transform(&mut self, i: usize, t: &TransformConfig) {
        let options = segs!["transforms", i, "options"].to_vec();
        let sub = |key: &str| {
            let mut p = options.clone();
            p.push(Seg::from(key));
            p
        };
        // Connection URLs.
        match t.connection() {
            Connection::Azure(c) => self.azure_endpoint(&sub("endpoint"), &c.endpoint),
            Connection::OpenRouter(c) => self.url(&sub("base_url"), "base_url", &c.base_url),
        }
        self.price(&options, t);
        // Reply mapping.
        let prompt = t.prompt();
        if prompt.output_field.trim().is_empty() {
            self.at_value(
                &sub("output_field"),
                Severity::Error,
                "`output_field` must not be empty".into(),
            );
        }
        if prompt.response_format == ResponseFormat::Text
            && !prompt.output_fields.is_empty()
            && let Some(f) = self.at_key(
                &sub("output_fields"),
                Severity::Error,
                "`output_fields` only applies to `response_format: json`".into(),
            )
        {
            f.help =
                Some("add `response_format: json`, or use `output_field` for a text reply".into());
        }
        if let ResponseFormat::JsonSchema(format) = &prompt.response_format {
            self.json_schema(&sub("response_format"), format, &prompt.output_fields);
            if let Connection::Azure(c) = t.connection()
                && !azure_supports_json_schema(&c.api_version)
                && let Some(f) = self.at_value(
                    &sub("api_version"),
                    Severity::Error,
                    format!(
                        "Azure OpenAI api_version `{}` does not support `response_format: json_schema` (structured outputs need {AZURE_JSON_SCHEMA_MIN_API_VERSION}-preview or later)",
                        c.api_version
                    ),
                )
            {
                f.help = Some(format!(
                    "use `api_version: {DEFAULT_AZURE_API_VERSION}` (the first GA version with structured outputs) or later, or `response_format: json`"
                ));
            }
        }
        let mut seen = HashSet::new();
        for (j, field) in prompt.output_fields.iter().enumerate() {
            if !seen.insert(field.as_str()) {
                let mut p = sub("output_fields");
                p.push(Seg::Index(j));
                self.at_value(
                    &p,
                    Severity::Error,
                    format!("`{field}` is listed twice in `output_fields`"),
                );
            }
        }
        // Query matrix, then the template (which may refer to it).
        if let Some(queries) = t.queries() {
            self.matrix(&sub("queries"), queries);
        }
        self.prompt_template(
            &sub("prompt_template"),
            &prompt.prompt_template,
            t.queries(),
        );
        // Tracing.
        if let Some(tracing) = t.tracing() {
            self.tracing(&sub("tracing"), tracing);
        }
    }

    /// A transform's price: `base_model` must be a model of the price
    /// table; an Azure deployment the table does not know, with neither
    /// `base_model` nor `pricing`, gets a warning (its cost will be unknown).
    fn price(&mut self, options: &[Seg], t: &TransformConfig) {
        let table = elspeth_core::price::PriceTable::builtin();
        let Connection::Azure(c) = t.connection() else {
            return;
        };
        let mut path = options.to_vec();
        if let Some(base) = &c.base_model {
            path.push(Seg::from("base_model"));
            if table.find(base).is_none()
                && let Some(f) = self.at_value(
                    &path,
                    Severity::Error,
                    format!(
                        "`{base}` is not a model of the price table ({})",
                        table.version
                    ),
                )
            {
                f.help = Some(match did_you_mean(base, table.names()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!(
                        "the table prices {}; for another model set `pricing: {{input_per_mtok: …, output_per_mtok: …}}`",
                        list_or(&table.models.keys().collect::<Vec<_>>())
                    ),
                });
            }
        } else if t.call().pricing.is_none()
            && !c.deployment_name.contains("${")
            && table.find(&c.deployment_name).is_none()
        {
            path.push(Seg::from("deployment_name"));
            // With a budget an unknown cost cannot be bounded: an error.
            let budget = self
                .found(&[Seg::from("budget")])
                .is_some_and(|b| !matches!(b.node.value, Value::Null));
            let (severity, consequence) = if budget {
                (Severity::Error, "the budget cannot bound its cost")
            } else {
                (Severity::Warning, "its cost will be unknown")
            };
            if let Some(f) = self.at_value(
                &path,
                severity,
                format!(
                    "deployment `{}` is not a model of the price table: {consequence}",
                    c.deployment_name
                ),
            ) {
                f.help = Some(
                    "set `base_model:` to the model it runs (e.g. `gpt-4o-mini`), or `pricing:`"
                        .into(),
                );
            }
        }
    }

    /// `response_format: {json_schema: ...}` at `path`: the schema is a
    /// valid JSON Schema (each problem at its node), describes an object,
    /// meets strict mode's rules when `strict`, and declares every
    /// `output_fields` entry.
    fn json_schema(&mut self, path: &[Seg], format: &JsonSchemaFormat, output_fields: &[String]) {
        let mut at = path.to_vec();
        at.extend([Seg::from("json_schema"), Seg::from("schema")]);
        let schema = serde_json::Value::Object(format.schema.clone());
        let name = &format.name;
        let under = |rel: &[Seg]| {
            let mut p = at.clone();
            p.extend(rel.iter().cloned());
            p
        };
        // Picked fields must be properties.
        let properties = format.properties();
        for (j, field) in output_fields.iter().enumerate() {
            if properties.contains(field) {
                continue;
            }
            let mut p = path.to_vec();
            p.pop();
            p.extend([Seg::from("output_fields"), Seg::Index(j)]);
            if let Some(f) = self.at_value(
                &p,
                Severity::Error,
                format!("`{field}` is not a property of the JSON schema `{name}`"),
            ) {
                f.help = Some(
                    match did_you_mean(field, properties.iter().map(String::as_str)) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => "name a property of the schema, or add the property".into(),
                    },
                );
                f.notes.push(if properties.is_empty() {
                    "the schema declares no `properties`".into()
                } else {
                    format!("the schema's properties: {}", list(&properties))
                });
            }
        }
        // Against its meta-schema (the draft its `$schema` names, else
        // 2020-12). Only the bundled drafts: nothing is fetched.
        let known = jsonschema::Draft::default().detect(&schema) != jsonschema::Draft::Unknown
            || !schema
                .get("$schema")
                .is_some_and(serde_json::Value::is_string);
        let meta = match known.then(|| jsonschema::meta::validator_for(&schema)) {
            Some(Ok(meta)) => meta,
            None => {
                if let Some(f) = self.at_value(
                    &under(&[Seg::from("$schema")]),
                    Severity::Error,
                    format!("the JSON schema `{name}` names a meta-schema elspeth does not know"),
                ) {
                    f.help = Some("use a JSON Schema draft elspeth bundles (draft-04, -06, -07, 2019-09, 2020-12), or leave `$schema` out".into());
                }
                return;
            }
            Some(Err(e)) => {
                let target = under(&[Seg::from("$schema")]);
                let target = if self.found(&target).is_some() {
                    target
                } else {
                    at.clone()
                };
                if let Some(f) = self.at_value(
                    &target,
                    Severity::Error,
                    format!(
                        "the JSON schema `{name}` names a meta-schema elspeth does not know: {e}"
                    ),
                ) {
                    f.help = Some("use a JSON Schema draft elspeth bundles (draft-04, -06, -07, 2019-09, 2020-12), or leave `$schema` out".into());
                }
                return;
            }
        };
        let mut invalid = false;
        for e in meta.iter_errors(&schema) {
            invalid = true;
            let rel = from_location(e.instance_path());
            let (message, suggestion) = meta_error_text(&e);
            let target = under(&rel);
            let span = match self.found(&target) {
                Some(found) => found.node.span,
                None => match self.found(&at) {
                    Some(found) => found.node.span,
                    None => continue,
                },
            };
            let where_ = if rel.is_empty() {
                String::new()
            } else {
                format!(" at {}", e.instance_path().as_str())
            };
            let f = self.add(
                span,
                Severity::Error,
                format!("the JSON schema `{name}` is not a valid JSON Schema{where_}: {message}"),
            );
            f.help = Some(match suggestion {
                Some(s) => format!("did you mean `{s}`?"),
                None => "see https://json-schema.org/understanding-json-schema/ for the keywords and their values".into(),
            });
        }
        if invalid {
            return;
        }
        // What the meta-schema cannot see: patterns that do not compile,
        // references that do not resolve.
        if let Err(e) = jsonschema::validator_for(&schema) {
            if let Some(f) = self.at_key(
                &at,
                Severity::Error,
                format!("the JSON schema `{name}` cannot be used: {e}"),
            ) {
                f.help = Some("references must point inside the schema (`#/$defs/...`); elspeth does not fetch schemas".into());
            }
            return;
        }
        // The reply is an object whose properties become row fields.
        if schema.get("type").and_then(serde_json::Value::as_str) != Some("object") {
            let type_path = under(&[Seg::from("type")]);
            let found_type = self.found(&type_path).is_some();
            let msg = format!(
                "the JSON schema `{name}` must describe an object (`type: object`): its properties become row fields"
            );
            let f = if found_type {
                self.at_value(&type_path, Severity::Error, msg)
            } else {
                self.at_key(&at, Severity::Error, msg)
            };
            if let Some(f) = f {
                f.help = Some("wrap the value in an object property, e.g. `{type: object, properties: {answer: ...}, required: [answer], additionalProperties: false}`".into());
            }
            return;
        }
        if format.strict {
            let mut problems = Vec::new();
            strict_problems(&schema, &mut Vec::new(), &mut problems);
            for problem in problems {
                let (rel, message, help) = match problem {
                    StrictProblem::Open(rel) => (
                        rel,
                        "with `strict: true`, every object schema needs `additionalProperties: false`".to_string(),
                        "add `additionalProperties: false` to this object, or set `strict: false`".to_string(),
                    ),
                    StrictProblem::NotRequired(rel, property) => (
                        rel,
                        format!("with `strict: true`, every property must be listed in `required`; `{property}` is not"),
                        format!("add `{property}` to `required` (to make it optional, allow null: `type: [<type>, \"null\"]`), or set `strict: false`"),
                    ),
                };
                let target = under(&rel);
                let target = if self.found(&target).is_some() {
                    target
                } else {
                    at.clone()
                };
                if let Some(f) = self.at_key(&target, Severity::Error, message) {
                    f.help = Some(help);
                }
            }
        }
    }

    fn azure_endpoint(&mut self, path: &[Seg], endpoint: &EnvString) {
        self.url(path, "endpoint", endpoint);
        if !endpoint.has_references()
            && endpoint.raw().contains("/openai/")
            && let Some(f) = self.at_value(
                path,
                Severity::Warning,
                "`endpoint` should be the resource URL only; elspeth adds `/openai/deployments/...`"
                    .into(),
            )
        {
            f.help = Some("write `https://<resource>.openai.azure.com`".into());
        }
    }

    fn prompt_template(&mut self, path: &[Seg], text: &str, queries: Option<&QueryMatrix>) {
        let Some(found) = self.found(path) else {
            return;
        };
        let node = found.node;
        let index = self.phase.index;
        let analysis = template::analyze(text);
        let mut findings = Vec::new();
        for issue in &analysis.issues {
            let span = scalar_range(index, node, issue.range.clone());
            let mut f = Finding::new(
                span,
                Severity::Error,
                format!("{} in `prompt_template`", issue.message),
            );
            f.help = issue.help.clone();
            findings.push(f);
        }
        let mut row_fields = 0;
        for field in &analysis.fields {
            // Located only when reported: most references are fine.
            let span = || scalar_range(index, node, field.range.clone());
            let dimension =
                queries.and_then(|q| q.0.get(&field.segments[0]).map(|items| (q, items)));
            match (field.segments.as_slice(), dimension) {
                ([_], None) => row_fields += 1,
                ([dim], Some(_)) => {
                    let mut f = Finding::new(
                        span(),
                        Severity::Error,
                        format!("`{{{{ {dim} }}}}` is a query dimension, not a field"),
                    );
                    f.help = Some(format!(
                        "write `{{{{ {dim}.name }}}}` for the item's name, or `{{{{ {dim}.<var> }}}}` for one of its vars"
                    ));
                    findings.push(f);
                }
                ([dim, var], Some((_, items))) => {
                    if var == "name" {
                        continue;
                    }
                    let missing: Vec<&str> = items
                        .iter()
                        .filter(|item| !item.vars.contains_key(var))
                        .map(|item| item.name.as_str())
                        .collect();
                    if missing.is_empty() {
                        continue;
                    }
                    let declared: Vec<&str> = std::iter::once("name")
                        .chain(items.iter().flat_map(|i| i.vars.keys().map(String::as_str)))
                        .collect::<std::collections::BTreeSet<_>>()
                        .into_iter()
                        .collect();
                    let mut f = if missing.len() == items.len() {
                        let mut f = Finding::new(
                            span(),
                            Severity::Error,
                            format!("`{dim}.{var}` is not a var of the `{dim}` items"),
                        );
                        if let Some(s) = did_you_mean(var, declared.iter().copied()) {
                            f.help = Some(format!("did you mean `{dim}.{s}`?"));
                        }
                        f
                    } else {
                        let mut f = Finding::new(
                            span(),
                            Severity::Error,
                            format!(
                                "`{dim}.{var}` is not set on every `{dim}` item (missing on {})",
                                list_or(&missing).replace(" or ", " and ")
                            ),
                        );
                        f.help = Some(format!("add `{var}` to the `vars` of every `{dim}` item"));
                        f
                    };
                    f.notes.push(format!(
                        "`{dim}` items have {}",
                        crate::suggest::list(&declared)
                    ));
                    findings.push(f);
                }
                (_, _) => {
                    let mut f = Finding::new(
                        span(),
                        Severity::Error,
                        format!(
                            "`{}` is not a plain field name in `prompt_template`",
                            field.name
                        ),
                    );
                    f.help = Some(match queries {
                        Some(q) => {
                            let dims: Vec<&str> = q.0.keys().map(String::as_str).collect();
                            match did_you_mean(&field.segments[0], dims.iter().copied()) {
                                Some(d) => format!("did you mean the query dimension `{d}`?"),
                                None => format!(
                                    "row fields are flat (`{{{{ text }}}}`); dotted names refer to query dimensions ({})",
                                    list_or(&dims)
                                ),
                            }
                        }
                        None => {
                            "row fields are flat: refer to a field by its name, e.g. `{{ text }}`"
                                .to_string()
                        }
                    });
                    findings.push(f);
                }
            }
        }
        if findings.is_empty() && row_fields == 0 {
            let mut f = Finding::new(
                node.span,
                Severity::Warning,
                "`prompt_template` uses no row field, so every row gets the same prompt".into(),
            );
            f.help = Some("insert a row field, e.g. `{{ text }}`".into());
            findings.push(f);
        }
        self.phase.findings.extend(findings);
    }

    /// Each rule the matrix breaks ([`QueryMatrix::problems`]), at its
    /// place in the file.
    fn matrix(&mut self, path: &[Seg], queries: &QueryMatrix) {
        let sub = |extra: &[Seg]| {
            let mut p = path.to_vec();
            p.extend_from_slice(extra);
            p
        };
        let item = |dimension: &str, index: usize, extra: &[&str]| {
            let mut p = sub(&[Seg::from(dimension), Seg::Index(index)]);
            p.extend(extra.iter().map(|k| Seg::from(*k)));
            p
        };
        for problem in queries.problems() {
            match problem {
                MatrixProblem::Empty => {
                    if let Some(f) =
                        self.at_value(path, Severity::Error, "`queries` must not be empty".into())
                    {
                        f.help =
                            Some("add a dimension, e.g. `criterion: [{ name: accuracy }]`".into());
                    }
                }
                MatrixProblem::DimensionName { dimension } => {
                    if let Some(f) = self.at_key(
                        &sub(&[Seg::from(dimension.as_str())]),
                        Severity::Error,
                        format!("query dimension `{dimension}` must be letters, digits and `_`, not starting with a digit"),
                    ) {
                        f.help = Some("templates refer to it as `{{ <dimension>.name }}`".into());
                    }
                }
                MatrixProblem::EmptyDimension { dimension } => {
                    if let Some(f) = self.at_key(
                        &sub(&[Seg::from(dimension.as_str())]),
                        Severity::Error,
                        format!("query dimension `{dimension}` has no items"),
                    ) {
                        f.help = Some(format!(
                            "give it at least one item, e.g. `{dimension}: [{{ name: first }}]`"
                        ));
                    }
                }
                MatrixProblem::ItemName {
                    dimension,
                    index,
                    name,
                } => {
                    if let Some(f) = self.at_value(
                        &item(&dimension, index, &["name"]),
                        Severity::Error,
                        format!("query item name `{name}` must be letters, digits and `_`"),
                    ) {
                        f.help = Some(
                            "it becomes part of output field names (`<query>_<field>`)".into(),
                        );
                    }
                }
                MatrixProblem::DuplicateItem {
                    dimension,
                    first,
                    index,
                    name,
                } => {
                    let first_line = self
                        .found(&item(&dimension, first, &["name"]))
                        .map_or(0, |f| f.node.span.start.line);
                    if let Some(f) = self.at_value(
                        &item(&dimension, index, &["name"]),
                        Severity::Error,
                        format!("query item name `{name}` appears twice in `{dimension}`"),
                    ) {
                        f.help = Some(format!("the first is at line {first_line}; rename one"));
                    }
                }
                MatrixProblem::ReservedVar {
                    dimension, index, ..
                } => {
                    if let Some(f) = self.at_key(
                        &item(&dimension, index, &["vars", "name"]),
                        Severity::Error,
                        "`name` is reserved in `vars`".into(),
                    ) {
                        f.help = Some(format!(
                            "`{{{{ {dimension}.name }}}}` is the item's name; rename this var"
                        ));
                    }
                }
                MatrixProblem::VarName {
                    dimension,
                    index,
                    var,
                    ..
                } => {
                    self.at_key(
                        &item(&dimension, index, &["vars", var.as_str()]),
                        Severity::Error,
                        format!("var name `{var}` must be letters, digits and `_`, not starting with a digit"),
                    );
                }
                MatrixProblem::TooMany { total } => {
                    if let Some(f) = self.at_key(
                        path,
                        Severity::Error,
                        format!(
                            "`queries` expands to {total} combinations; at most {MAX_QUERIES} are allowed"
                        ),
                    ) {
                        f.help = Some(
                            "each combination is one LLM call per row; use fewer items".into(),
                        );
                    }
                }
                MatrixProblem::NameCollision { name } => {
                    if let Some(f) = self.at_key(
                        path,
                        Severity::Error,
                        format!("two query combinations are both named `{name}`"),
                    ) {
                        f.help = Some(
                            "item names are joined with `_`; rename an item so the joined names differ"
                                .into(),
                        );
                    }
                }
            }
        }
    }

    fn tracing(&mut self, path: &[Seg], tracing: &TracingConfig) {
        let Some(found) = self.found(path) else {
            return;
        };
        let provider_span = provider_span(found);
        // Keys present but empty (`public_key:`) pass the schema's `required`.
        for message in tracing.completeness_errors() {
            let help = if message.contains("connection_string") {
                "set `connection_string: ${APPLICATIONINSIGHTS_CONNECTION_STRING}`"
            } else if message.contains("public_key") {
                "set `public_key: ${LANGFUSE_PUBLIC_KEY}`"
            } else {
                "set `secret_key: ${LANGFUSE_SECRET_KEY}`"
            };
            let f = self.add(provider_span, Severity::Error, message);
            f.help = Some(help.into());
        }
        if let TracingConfig::Langfuse(l) = tracing {
            self.langfuse(path, l);
        }
    }

    fn langfuse(&mut self, path: &[Seg], l: &LangfuseTracingConfig) {
        let sub = |key: &str| {
            let mut p = path.to_vec();
            p.push(Seg::from(key));
            p
        };
        self.url(&sub("host"), "host", &l.host);
        if !l.host.has_references()
            && l.host.raw().contains("/api/public")
            && let Some(f) = self.at_value(
                &sub("host"),
                Severity::Warning,
                "`host` should be the Langfuse base URL; elspeth adds `/api/public/otel/v1/traces`"
                    .into(),
            )
        {
            f.help = Some("e.g. `https://cloud.langfuse.com`".into());
        }
        if let Some(env) = &l.environment
            && let Some(problem) = langfuse_environment_problem(env)
            && let Some(f) = self.at_value(
                &sub("environment"),
                Severity::Error,
                format!("Langfuse `environment` {problem}"),
            )
        {
            f.help = Some("e.g. `production`, `staging` or `dev`".into());
        }
        let mut seen = HashSet::new();
        for (i, tag) in l.tags.iter().enumerate() {
            let mut p = sub("tags");
            p.push(Seg::Index(i));
            if tag.trim().is_empty() {
                self.at_value(&p, Severity::Error, "a tag must not be empty".into());
            } else if !seen.insert(tag.as_str()) {
                self.at_value(
                    &p,
                    Severity::Warning,
                    format!("tag `{tag}` is listed twice"),
                );
            }
        }
        if l.sample_rate == 0.0
            && let Some(f) = self.at_value(
                &sub("sample_rate"),
                Severity::Warning,
                "`sample_rate: 0` drops every trace".into(),
            )
        {
            f.help = Some("to turn tracing off, use `provider: none` or remove `tracing`".into());
        }
    }

    // ---- across transforms ----

    /// Each template's `{{ field }}` against the source's fields and the
    /// fields earlier transforms add (see [`fields`]).
    fn row_fields(
        &mut self,
        source: &SourceConfig,
        base_dir: &Path,
        transforms: &[(usize, TransformConfig)],
        count: usize,
    ) {
        let Some(source_span) = self.found(&segs!["source", "path"]).map(|f| f.node.span) else {
            return;
        };
        let root = self.phase.root;
        let checked: Vec<Option<fields::Checked<'_>>> = (0..count)
            .map(|i| {
                let (_, config) = transforms.iter().find(|(j, _)| *j == i)?;
                Some(fields::Checked {
                    config,
                    template: find(root, &segs!["transforms", i, "options", "prompt_template"]),
                })
            })
            .collect();
        let written = source.path();
        if crate::paths::is_object_url(written) {
            // Not read at validation time (no network access): the run
            // reports a template field its rows lack.
            return;
        }
        let path = Path::new(written);
        let path = if path.is_absolute() {
            path.to_path_buf()
        } else {
            base_dir.join(path)
        };
        // Read lazily: no file access when no template reads a row field.
        let findings = fields::check(
            self.phase.index,
            &checked,
            || fields::source_fields(source, &path, written),
            source_span,
        );
        self.phase.findings.extend(findings);
    }

    fn across_transforms(&mut self, transforms: &[(usize, TransformConfig)]) {
        // Application Insights is process-wide: the first connection string wins.
        let mut first: Option<(usize, &str)> = None;
        for (i, t) in transforms {
            if let Some(TracingConfig::AzureAi(a)) = t.tracing()
                && let Some(cs) = &a.connection_string
            {
                match first {
                    None => first = Some((*i, cs.expose_raw())),
                    Some((j, other)) if other != cs.expose_raw() => {
                        let p = segs!["transforms", *i, "options", "tracing", "connection_string"];
                        if let Some(f) = self.at_value(
                            &p,
                            Severity::Warning,
                            format!(
                                "this azure_ai connection string differs from the one of transforms[{j}]; Application Insights is process-wide, so the first one wins",
                            ),
                        ) {
                            f.help = Some("use one Application Insights resource per pipeline".into());
                        }
                    }
                    Some(_) => {}
                }
            }
        }
        // Output fields written by two transforms.
        let mut writers: BTreeMap<String, usize> = BTreeMap::new();
        for (i, t) in transforms {
            let fields: Vec<String> = t.prompt().reply_fields().unwrap_or_default();
            let keys: Vec<String> = match t.queries() {
                None => fields,
                Some(_) => continue, // prefixed by query names: collisions are unlikely
            };
            for key in keys {
                if let Some(&j) = writers.get(&key) {
                    let p = segs!["transforms", *i, "options"];
                    let mut target = p.to_vec();
                    target.push(Seg::from("output_field"));
                    let span = match self.found(&target) {
                        Some(f) => f.node.span,
                        None => match self.found(&p) {
                            Some(f) => anchor_span(f),
                            None => continue,
                        },
                    };
                    let f = self.add(
                        span,
                        Severity::Warning,
                        format!(
                            "transforms {} and {} both write the row field `{key}`; the later one overwrites it",
                            j + 1,
                            i + 1
                        ),
                    );
                    f.help =
                        Some("set `output_field` (or `output_fields`) to distinct names".into());
                } else {
                    writers.insert(key, *i);
                }
            }
        }
    }
}

/// A meta-schema error as a message, and a "did you mean" when a value
/// is not one of the allowed names (e.g. `type: strin`).
fn meta_error_text(e: &jsonschema::ValidationError<'_>) -> (String, Option<String>) {
    use jsonschema::error::ValidationErrorKind as Kind;
    let enum_error = |e: &jsonschema::ValidationError<'_>| match e.kind() {
        Kind::Enum { options } => {
            let names: Vec<&str> = options
                .as_array()
                .map(|a| a.iter().filter_map(serde_json::Value::as_str).collect())
                .unwrap_or_default();
            let value = e.instance().as_str().map(str::to_string);
            let suggestion = value
                .and_then(|v| did_you_mean(&v, names.iter().copied()))
                .map(str::to_string);
            Some((
                format!("{} is not one of {}", e.instance(), list_or(&names)),
                suggestion,
            ))
        }
        _ => None,
    };
    if let Some(found) = enum_error(e) {
        return found;
    }
    // `type: strin`: "not valid under any of the schemas listed in the
    // 'anyOf' keyword"; the branch with the list of names says more.
    if let Kind::AnyOf { context } | Kind::OneOfNotValid { context } = e.kind() {
        for branch in context {
            for inner in branch {
                if inner.instance_path() == e.instance_path()
                    && let Some(found) = enum_error(inner)
                {
                    return found;
                }
            }
        }
    }
    (e.to_string(), None)
}

/// A strict-mode rule a JSON schema breaks, at a path inside the schema.
enum StrictProblem {
    /// An object schema without `additionalProperties: false`.
    Open(Vec<Seg>),
    /// A property not listed in `required`.
    NotRequired(Vec<Seg>, String),
}

/// The strict-mode problems of `schema` (at `path` inside the root) and of
/// every schema under it.
fn strict_problems(schema: &serde_json::Value, path: &mut Vec<Seg>, out: &mut Vec<StrictProblem>) {
    use serde_json::Value as J;
    let Some(map) = schema.as_object() else {
        return;
    };
    let is_object = match map.get("type") {
        Some(J::String(t)) => t == "object",
        Some(J::Array(ts)) => ts.iter().any(|t| t == "object"),
        _ => map.contains_key("properties"),
    };
    if is_object {
        if map.get("additionalProperties") != Some(&J::Bool(false)) {
            out.push(StrictProblem::Open(path.clone()));
        }
        let required: Vec<&str> = map
            .get("required")
            .and_then(J::as_array)
            .map(|r| r.iter().filter_map(J::as_str).collect())
            .unwrap_or_default();
        if let Some(J::Object(props)) = map.get("properties") {
            for name in props.keys() {
                if !required.contains(&name.as_str()) {
                    let mut p = path.clone();
                    p.extend([Seg::from("properties"), Seg::Key(name.clone())]);
                    out.push(StrictProblem::NotRequired(p, name.clone()));
                }
            }
        }
    }
    let mut descend = |path: &mut Vec<Seg>, segs: &[Seg], child: &J| {
        let depth = path.len();
        path.extend(segs.iter().cloned());
        strict_problems(child, path, out);
        path.truncate(depth);
    };
    for key in ["properties", "$defs", "definitions"] {
        if let Some(J::Object(children)) = map.get(key) {
            for (name, child) in children {
                descend(path, &[Seg::from(key), Seg::Key(name.clone())], child);
            }
        }
    }
    for key in ["anyOf", "allOf", "oneOf", "prefixItems"] {
        if let Some(J::Array(children)) = map.get(key) {
            for (i, child) in children.iter().enumerate() {
                descend(path, &[Seg::from(key), Seg::Index(i)], child);
            }
        }
    }
    if let Some(items) = map.get("items") {
        match items {
            J::Array(children) => {
                for (i, child) in children.iter().enumerate() {
                    descend(path, &[Seg::from("items"), Seg::Index(i)], child);
                }
            }
            child => descend(path, &[Seg::from("items")], child),
        }
    }
}

/// Why a text is not an absolute http(s) URL with a host. The message
/// never quotes the text (it may be a resolved, secret value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum UrlProblem {
    #[error("it is empty")]
    Empty,
    #[error("it contains whitespace")]
    Whitespace,
    #[error("its scheme is not `http` or `https`")]
    Scheme,
    #[error("it does not start with `https://` or `http://`")]
    NoScheme,
    #[error("an IPv6 address is missing its closing `]`")]
    UnclosedIpv6,
    #[error("it has no host")]
    NoHost,
    #[error("its port is not a number from 0 to 65535")]
    Port,
}

/// Checks that `text` is an absolute http(s) URL with a host.
pub(crate) fn check_http_url(text: &str) -> Result<(), UrlProblem> {
    if text.is_empty() {
        return Err(UrlProblem::Empty);
    }
    if text.chars().any(char::is_whitespace) {
        return Err(UrlProblem::Whitespace);
    }
    let lower = text.to_ascii_lowercase();
    let rest = if let Some(r) = lower.strip_prefix("https://") {
        r
    } else if let Some(r) = lower.strip_prefix("http://") {
        r
    } else if lower.contains("://") {
        return Err(UrlProblem::Scheme);
    } else {
        return Err(UrlProblem::NoScheme);
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, rest)) => (h, rest.strip_prefix(':')),
            None => return Err(UrlProblem::UnclosedIpv6),
        }
    } else {
        match host_port.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return Err(UrlProblem::NoHost);
    }
    if let Some(port) = port
        && port.parse::<u16>().is_err()
    {
        return Err(UrlProblem::Port);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        for ok in [
            "https://cloud.langfuse.com",
            "http://localhost:3000",
            "https://x.openai.azure.com/",
            "http://[::1]:4318/v1",
            "HTTPS://Example.org?q=1",
        ] {
            assert_eq!(check_http_url(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("cloud.langfuse.com", "does not start with `https://`"),
            ("ftp://x", "scheme is not `http`"),
            ("https://", "no host"),
            ("https://:80", "no host"),
            ("http://host:99999", "port is not a number"),
            ("http://a b", "whitespace"),
            ("http://[::1", "closing"),
        ] {
            let e = check_http_url(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
            if bad.len() > 4 {
                assert!(!e.contains(bad), "{e} quotes the value");
            }
        }
    }
}
