//! Brings the envelopes of `opentelemetry-application-insights` in line with
//! what Microsoft's own exporter (azure-monitor-opentelemetry-exporter) makes
//! of the same GenAI span, and keeps what both lose.
//!
//! | field | the Rust crate alone | after this patch (= Microsoft, or better) |
//! | --- | --- | --- |
//! | `type` | none, or `HTTP` once an `http.*` attribute exists | `GenAI \| <gen_ai.system>` (e.g. `GenAI \| az.ai.openai`) |
//! | `target` | `server.address` | `<gen_ai.system>` (Microsoft: the system when no `peer.*` / `net.peer.*` target exists); the host stays a property |
//! | `success` | absent for an unset status | `true` (explicit, as Microsoft sends it) |
//! | `resultCode` | `"0"` ok, `"2"` failed, the status when `http.response.status_code` is set | ok: `"0"`; failed: the HTTP status (e.g. `"500"`), else `error.type` (e.g. `"timeout"`). Microsoft sends `"0"` for failures too and drops `error.type`: **we keep both** |
//! | `ai.operation.name` tag | absent for client / internal spans | the span name (as Microsoft) |
//! | `properties` | span attributes **and every resource attribute** | span attributes (incl. `error.type`, `http.response.status_code`); resource attributes removed (they are already in the `ai.cloud.*` / `ai.internal.*` tags) |
//!
//! Everything else (name `Microsoft.ApplicationInsights.RemoteDependency`,
//! `iKey`, `time`, `ai.operation.id` / `ai.operation.parentId` /
//! `ai.cloud.role` tags, `d.hh:mm:ss.ffffff` durations, `baseType`
//! `RemoteDependencyData`) is the crate's output unchanged.

use std::borrow::Cow;
use std::fmt;
use std::io::Read;

use flate2::read::GzDecoder;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// Why a batch's envelopes could not be built (the batch is then counted
/// as failed).
#[derive(Debug, thiserror::Error)]
pub(crate) enum EnvelopeError {
    /// The crate's conversion did not finish in one poll.
    #[error("building the envelopes did not complete")]
    Unfinished,
    /// The crate's conversion failed.
    #[error("could not build the envelopes: {0}")]
    Build(String),
    /// The crate produced no request.
    #[error("the envelopes were not produced")]
    NotProduced,
    /// The crate's body did not gunzip.
    #[error("could not read the envelopes: {0}")]
    Read(std::io::Error),
    /// The crate's body is not a JSON array.
    #[error("could not parse the envelopes: {0}")]
    Parse(serde_json::Error),
    /// One envelope is not the expected JSON.
    #[error("could not parse an envelope: {0}")]
    ParseOne(serde_json::Error),
    /// Compressing the patched body failed.
    #[error("{0}")]
    Compress(std::io::Error),
    /// Not one envelope per span.
    #[error("expected {expected} envelopes, got {got}")]
    Count {
        /// Spans in the batch.
        expected: usize,
        /// Envelopes produced.
        got: usize,
    },
}

/// Gunzips the crate's request body, patches every envelope, gzips again.
/// Returns the new body and the number of envelopes.
///
/// Only the few fields that change are decoded; everything else is copied
/// through as raw JSON text, so the cost stays a small fraction of what the
/// crate spends building the envelopes.
pub(crate) fn patch_body(
    gzipped: &[u8],
    resource_keys: &[String],
) -> Result<(Vec<u8>, usize), EnvelopeError> {
    let mut json = Vec::with_capacity(gzipped.len() * 4);
    GzDecoder::new(gzipped)
        .read_to_end(&mut json)
        .map_err(EnvelopeError::Read)?;
    let envelopes: Vec<&RawValue> = serde_json::from_slice(&json).map_err(EnvelopeError::Parse)?;
    let mut out = Vec::with_capacity(json.len());
    out.push(b'[');
    for (i, envelope) in envelopes.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        patch_into(envelope.get(), resource_keys, &mut out)?;
    }
    out.push(b']');
    let body = crate::gzip::gzip(&[&out]).map_err(EnvelopeError::Compress)?;
    Ok((body, envelopes.len()))
}

/// Patches one envelope (see the module table), given and returned as JSON text.
#[cfg(test)]
fn patch(envelope: &str, resource_keys: &[String]) -> Result<String, EnvelopeError> {
    let mut out = Vec::with_capacity(envelope.len() + 64);
    patch_into(envelope, resource_keys, &mut out)?;
    Ok(String::from_utf8(out).expect("the patched envelope is JSON text"))
}

fn patch_into(
    envelope: &str,
    resource_keys: &[String],
    out: &mut Vec<u8>,
) -> Result<(), EnvelopeError> {
    let bad = EnvelopeError::ParseOne;
    let mut envelope: Fields<'_> = serde_json::from_str(envelope).map_err(bad)?;
    let mut data: Option<Fields<'_>> = match envelope.raw("data") {
        Some(raw) => Some(serde_json::from_str(raw).map_err(bad)?),
        None => None,
    };
    let is_dependency = data
        .as_ref()
        .and_then(|d| d.get("baseType"))
        .is_some_and(|t| t == "\"RemoteDependencyData\"");
    let mut base: Option<Fields<'_>> = match data.as_ref().and_then(|d| d.raw("baseData")) {
        Some(raw) => Some(serde_json::from_str(raw).map_err(bad)?),
        None => None,
    };

    // Microsoft sets the operation name to the span name; the crate only
    // does it for server spans.
    if let (Some(tags_raw), Some(name)) = (
        envelope.raw("tags"),
        base.as_ref().and_then(|b| b.raw("name")),
    ) {
        let mut tags: Fields<'_> = serde_json::from_str(tags_raw).map_err(bad)?;
        if tags.get("ai.operation.name").is_none() {
            tags.set("ai.operation.name", name.to_string());
            envelope.set("tags", tags.to_json());
        }
    }

    if let Some(base) = base.as_mut() {
        let mut system = None;
        let mut error_type = None;
        let mut has_status = false;
        if let Some(props_raw) = base.raw("properties") {
            let mut props: Fields<'_> = serde_json::from_str(props_raw).map_err(bad)?;
            props
                .0
                .retain(|(k, _)| !resource_keys.iter().any(|r| r == k));
            system = props.get_str("gen_ai.system");
            error_type = props.get_str("error.type");
            has_status = props.get("http.response.status_code").is_some();
            base.set("properties", props.to_json());
        }
        if is_dependency {
            if let Some(system) = &system {
                base.set("type", json_string(&format!("GenAI | {system}")));
                base.set("target", json_string(system));
            }
            match base.get("success").map(str::trim) {
                None => base.set("success", "true".into()),
                Some("false") if !has_status => {
                    if let Some(e) = &error_type {
                        base.set("resultCode", json_string(e));
                    }
                }
                Some(_) => {}
            }
        }
    }

    if let (Some(d), Some(b)) = (data.as_mut(), base) {
        d.set("baseData", b.to_json());
    }
    if let Some(d) = data {
        envelope.set("data", d.to_json());
    }
    envelope.write(out);
    Ok(())
}

/// A JSON string literal.
fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// A JSON object as ordered (key, raw JSON value) pairs: values that do not
/// change are never decoded.
struct Fields<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'a> Fields<'a> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }

    /// A value as parsed from the input (not one set since), with the
    /// input's lifetime.
    fn raw(&self, key: &str) -> Option<&'a str> {
        match self.0.iter().find(|(k, _)| k == key) {
            Some((_, Cow::Borrowed(v))) => Some(v),
            _ => None,
        }
    }

    /// A string value, decoded.
    fn get_str(&self, key: &str) -> Option<String> {
        self.get(key).and_then(|v| serde_json::from_str(v).ok())
    }

    /// Replaces the value of `key`, or appends it.
    fn set(&mut self, key: &'static str, json: String) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = Cow::Owned(json),
            None => self.0.push((Cow::Borrowed(key), Cow::Owned(json))),
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(json_string(k).as_bytes());
            out.push(b':');
            out.extend_from_slice(v.as_bytes());
        }
        out.push(b'}');
    }

    fn to_json(&self) -> String {
        let mut out = Vec::new();
        self.write(&mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Fields<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldsVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for FieldsVisitor<'a> {
            type Value = Fields<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Fields<'a>, M::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    let value: &'de RawValue = map.next_value()?;
                    fields.push((key, Cow::Borrowed(value.get())));
                }
                Ok(Fields(fields))
            }
        }
        deserializer.deserialize_map(FieldsVisitor(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::GzEncoder;
    use serde_json::{Value, json};

    use super::*;

    fn patched(e: Value, resource_keys: &[&str]) -> Value {
        let keys: Vec<String> = resource_keys.iter().map(|k| k.to_string()).collect();
        serde_json::from_str(&patch(&e.to_string(), &keys).unwrap()).unwrap()
    }

    #[test]
    fn genai_dependency_is_patched() {
        let e = patched(
            json!({
                "name": "Microsoft.ApplicationInsights.RemoteDependency",
                "tags": {"ai.operation.id": "abc"},
                "data": {"baseType": "RemoteDependencyData", "baseData": {
                    "name": "chat gpt-4o", "resultCode": "2", "success": false,
                    "target": "x.openai.azure.com",
                    "properties": {"gen_ai.system": "az.ai.openai", "error.type": "timeout", "service.name": "elspeth"}
                }}
            }),
            &["service.name"],
        );
        let b = &e["data"]["baseData"];
        assert_eq!(b["type"], "GenAI | az.ai.openai");
        assert_eq!(b["target"], "az.ai.openai");
        assert_eq!(b["resultCode"], "timeout");
        assert!(b["properties"].get("service.name").is_none());
        assert_eq!(b["properties"]["error.type"], "timeout");
        assert_eq!(e["tags"]["ai.operation.name"], "chat gpt-4o");
        assert_eq!(e["tags"]["ai.operation.id"], "abc");
        assert_eq!(e["name"], "Microsoft.ApplicationInsights.RemoteDependency");
    }

    #[test]
    fn http_status_result_code_is_kept_and_success_made_explicit() {
        let failed = patched(
            json!({"data": {"baseType": "RemoteDependencyData", "baseData": {
                "resultCode": "500", "success": false,
                "properties": {"gen_ai.system": "openrouter", "error.type": "500", "http.response.status_code": "500"}
            }}}),
            &[],
        );
        assert_eq!(failed["data"]["baseData"]["resultCode"], "500");
        let ok = patched(
            json!({"data": {"baseType": "RemoteDependencyData", "baseData": {"resultCode": "0", "type": "InProc"}}}),
            &[],
        );
        assert_eq!(ok["data"]["baseData"]["success"], true);
        assert_eq!(ok["data"]["baseData"]["type"], "InProc");
    }

    #[test]
    fn untouched_fields_and_order_survive_and_escapes_round_trip() {
        let raw = r#"{"name":"x","time":"2026-11-25T00:00:00Z","iKey":"k","tags":{"ai.operation.name":"keep"},"data":{"baseType":"MessageData","baseData":{"message":"a \"quoted\" \u00e9 line","properties":{"p":"1"}}}}"#;
        let out = patch(raw, &[]).unwrap();
        // Nothing to patch: the text comes back byte for byte (raw values
        // are copied, escapes included).
        assert_eq!(out, raw);
        let body = {
            let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
            gz.write_all(format!("[{raw},{raw}]").as_bytes()).unwrap();
            gz.finish().unwrap()
        };
        let (patched, n) = patch_body(&body, &[]).unwrap();
        assert_eq!(n, 2);
        let mut json = String::new();
        GzDecoder::new(&patched[..])
            .read_to_string(&mut json)
            .unwrap();
        let v: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v[1]["data"]["baseData"]["message"], "a \"quoted\" é line");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(patch("not json", &[]).is_err());
        assert!(patch_body(b"not gzip", &[]).is_err());
    }
}
