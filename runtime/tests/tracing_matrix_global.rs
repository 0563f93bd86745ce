//! The process-wide Application Insights slot (its own test binary, so no
//! other test shares the global): first connection string wins across
//! registries, and the slot frees up once its exporter shut down.

mod tracing_common;

use std::collections::HashMap;
use std::time::Duration;

use elspeth_mock::appinsights::AppInsightsMock;
use elspeth_schema::config::{TracingConfig, TracingProvider};
use elspeth_telemetry::appinsights::AzureMonitorSlot;
use elspeth_telemetry::{TracingRegistry, TransformLabel};
use serde_json::json;
use tracing_common::*;

fn label(index: usize) -> TransformLabel {
    TransformLabel {
        index,
        plugin: "azure_llm".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_wide_first_one_wins_then_frees_after_shutdown() {
    let a = AppInsightsMock::spawn(IKEY).await.unwrap();
    let b = AppInsightsMock::spawn("11111111-2222-3333-4444-555555555555")
        .await
        .unwrap();
    let env: HashMap<String, String> = [
        ("CS_A".to_string(), a.connection_string()),
        ("CS_B".to_string(), b.connection_string()),
    ]
    .into();
    let c = |var: &str| -> TracingConfig {
        serde_json::from_value(
            json!({"provider": "azure_ai", "connection_string": format!("${{{var}}}")}),
        )
        .unwrap()
    };
    let accepted = [TracingProvider::AzureAi];

    // Two registries (e.g. two pipelines in one process) share the slot.
    let first = Registry::new(
        env.clone(),
        TracingRegistry::new().with_export_config(fast_config()),
    );
    let second = Registry::new(
        env.clone(),
        TracingRegistry::new().with_export_config(fast_config()),
    );
    let ta = first
        .tracer_for(&label(0), Some(&c("CS_A")), &accepted)
        .unwrap();
    assert_eq!(AzureMonitorSlot::global().owner(), Some(label(0)));
    let tb = second
        .tracer_for(&label(1), Some(&c("CS_B")), &accepted)
        .unwrap();
    record_ok(&ta, "first", false);
    record_ok(&tb, "second", false);
    first.shutdown(Duration::from_secs(5)).await;
    assert_eq!(a.envelopes().len(), 4);
    assert!(b.envelopes().is_empty());

    // The owner's exporter shut down: the next run claims the slot anew.
    assert_eq!(AzureMonitorSlot::global().owner(), None);
    let third = Registry::new(
        env,
        TracingRegistry::new().with_export_config(fast_config()),
    );
    let tc = third
        .tracer_for(&label(2), Some(&c("CS_B")), &accepted)
        .unwrap();
    record_ok(&tc, "third", false);
    third.shutdown(Duration::from_secs(5)).await;
    assert_eq!(b.envelopes().len(), 2);
    assert_eq!(AzureMonitorSlot::global().owner(), None);
}
