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

use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde_json::Value;

/// Gunzips the crate's request body, patches every envelope, gzips again.
/// Returns the new body and the number of envelopes.
pub(crate) fn patch_body(
    gzipped: &[u8],
    resource_keys: &[String],
) -> Result<(Vec<u8>, usize), String> {
    let mut json = Vec::with_capacity(gzipped.len() * 4);
    GzDecoder::new(gzipped)
        .read_to_end(&mut json)
        .map_err(|e| format!("could not read the envelopes: {e}"))?;
    let mut envelopes: Vec<Value> =
        serde_json::from_slice(&json).map_err(|e| format!("could not parse the envelopes: {e}"))?;
    for envelope in &mut envelopes {
        patch(envelope, resource_keys);
    }
    let json = serde_json::to_vec(&envelopes).map_err(|e| e.to_string())?;
    let mut gz = GzEncoder::new(Vec::with_capacity(json.len() / 3 + 64), Compression::fast());
    gz.write_all(&json).map_err(|e| e.to_string())?;
    let body = gz.finish().map_err(|e| e.to_string())?;
    Ok((body, envelopes.len()))
}

/// Patches one envelope (see the module table).
pub(crate) fn patch(envelope: &mut Value, resource_keys: &[String]) {
    // Microsoft sets the operation name to the span name; the crate only
    // does it for server spans.
    let name = envelope.pointer("/data/baseData/name").cloned();
    if let (Some(tags), Some(name)) = (
        envelope.get_mut("tags").and_then(Value::as_object_mut),
        name,
    ) && !tags.contains_key("ai.operation.name")
    {
        tags.insert("ai.operation.name".into(), name);
    }
    let is_dependency =
        envelope.pointer("/data/baseType").and_then(Value::as_str) == Some("RemoteDependencyData");
    let Some(base) = envelope
        .pointer_mut("/data/baseData")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    if let Some(props) = base.get_mut("properties").and_then(Value::as_object_mut) {
        for key in resource_keys {
            props.remove(key);
        }
    }
    if !is_dependency {
        return;
    }
    let props = base.get("properties").and_then(Value::as_object);
    let system = props
        .and_then(|p| p.get("gen_ai.system"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let has_status = props.is_some_and(|p| p.contains_key("http.response.status_code"));
    let error_type = props
        .and_then(|p| p.get("error.type"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(system) = system {
        base.insert("type".into(), Value::from(format!("GenAI | {system}")));
        base.insert("target".into(), Value::from(system));
    }
    match base.get("success").and_then(Value::as_bool) {
        None => {
            base.insert("success".into(), Value::Bool(true));
        }
        Some(false) if !has_status => {
            if let Some(e) = error_type {
                base.insert("resultCode".into(), Value::from(e));
            }
        }
        Some(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn genai_dependency_is_patched() {
        let mut e = json!({
            "name": "Microsoft.ApplicationInsights.RemoteDependency",
            "data": {"baseType": "RemoteDependencyData", "baseData": {
                "name": "chat gpt-4o", "resultCode": "2", "success": false,
                "target": "x.openai.azure.com",
                "properties": {"gen_ai.system": "az.ai.openai", "error.type": "timeout", "service.name": "elspeth"}
            }}
        });
        patch(&mut e, &["service.name".to_string()]);
        let b = &e["data"]["baseData"];
        assert_eq!(b["type"], "GenAI | az.ai.openai");
        assert_eq!(b["target"], "az.ai.openai");
        assert_eq!(b["resultCode"], "timeout");
        assert!(b["properties"].get("service.name").is_none());
    }

    #[test]
    fn http_status_result_code_is_kept_and_success_made_explicit() {
        let mut failed = json!({"data": {"baseType": "RemoteDependencyData", "baseData": {
            "resultCode": "500", "success": false,
            "properties": {"gen_ai.system": "openrouter", "error.type": "500", "http.response.status_code": "500"}
        }}});
        patch(&mut failed, &[]);
        assert_eq!(failed["data"]["baseData"]["resultCode"], "500");
        let mut ok = json!({"data": {"baseType": "RemoteDependencyData", "baseData": {"resultCode": "0", "type": "InProc"}}});
        patch(&mut ok, &[]);
        assert_eq!(ok["data"]["baseData"]["success"], true);
        assert_eq!(ok["data"]["baseData"]["type"], "InProc");
    }
}
