//! Application Insights is process-wide: the first connection string wins.
//!
//! This module holds the one process-wide piece of state of the tracing
//! crate: [`AzureMonitorSlot::global`]. The first transform that configures
//! `azure_ai` tracing starts the exporter and owns the slot:
//!
//! | later transform | result |
//! | --- | --- |
//! | same connection string | shares the exporter (no warning) |
//! | different connection string | **one warning naming both transforms** (never the secret); its spans go to the first transform's resource |
//! | any, after the owner's exporter shut down (end of a run) | claims the slot anew |
//!
//! A registry can be given its own slot
//! ([`TracingRegistry::with_azure_slot`](crate::TracingRegistry::with_azure_slot))
//! so tests do not share the process-wide one.

use std::sync::{Arc, Mutex, PoisonError};

use super::ConnectionString;
use crate::export::Exporter;
use elspeth_core::TransformLabel;

/// The process-wide Application Insights exporter, first one wins.
#[derive(Debug, Default)]
pub struct AzureMonitorSlot {
    claim: Mutex<Option<Owner>>,
}

#[derive(Debug)]
struct Owner {
    transform: TransformLabel,
    fingerprint: [u8; 32],
    live_metrics: bool,
    exporter: Arc<Exporter>,
}

/// What a transform got from [`AzureMonitorSlot::claim`].
#[derive(Debug, Clone)]
pub enum Claim {
    /// This transform set the exporter up.
    New(Arc<Exporter>),
    /// An earlier transform set it up with the same connection string.
    Shared(Arc<Exporter>),
    /// An earlier transform set it up with a different connection string,
    /// which wins; this transform's spans go there too.
    FirstWins {
        /// The exporter of the first transform.
        exporter: Arc<Exporter>,
        /// The transform that owns the slot.
        owner: TransformLabel,
    },
}

impl Claim {
    /// The exporter to record into.
    pub fn exporter(&self) -> &Arc<Exporter> {
        match self {
            Self::New(e) | Self::Shared(e) | Self::FirstWins { exporter: e, .. } => e,
        }
    }
}

impl AzureMonitorSlot {
    /// An empty slot (for a registry of its own).
    pub const fn new() -> Self {
        Self {
            claim: Mutex::new(None),
        }
    }

    /// The process-wide slot.
    pub fn global() -> &'static AzureMonitorSlot {
        static GLOBAL: AzureMonitorSlot = AzureMonitorSlot::new();
        &GLOBAL
    }

    /// The transform that owns the slot, if a live exporter is set up.
    pub fn owner(&self) -> Option<TransformLabel> {
        let claim = self.claim.lock().unwrap_or_else(PoisonError::into_inner);
        claim
            .as_ref()
            .filter(|o| !o.exporter.is_closed())
            .map(|o| o.transform.clone())
    }

    /// Claims the slot for `transform`: starts the exporter with `start` if
    /// the slot is free, else shares the existing one (warning once if the
    /// connection string differs).
    pub fn claim<E>(
        &self,
        transform: &TransformLabel,
        connection: &ConnectionString,
        live_metrics: bool,
        start: impl FnOnce() -> Result<Arc<Exporter>, E>,
    ) -> Result<Claim, E> {
        let fingerprint = connection.fingerprint();
        let mut claim = self.claim.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(owner) = claim.as_ref()
            && !owner.exporter.is_closed()
        {
            if owner.fingerprint == fingerprint {
                if owner.live_metrics != live_metrics {
                    tracing::info!(
                        transform = %transform,
                        owner = %owner.transform,
                        "{transform} asks for enable_live_metrics: {live_metrics}, but Application Insights is process-wide and {} set it up with enable_live_metrics: {}; that setting stays",
                        owner.transform,
                        owner.live_metrics
                    );
                }
                return Ok(Claim::Shared(owner.exporter.clone()));
            }
            tracing::warn!(
                transform = %transform,
                first = %owner.transform,
                "Application Insights is process-wide and the first connection string wins: {transform} configures a different connection string than {}, which set up Azure AI tracing first; the spans of {transform} go to the Application Insights resource of {}. Give both transforms the same connection string, or trace one of them to Langfuse.",
                owner.transform,
                owner.transform
            );
            return Ok(Claim::FirstWins {
                exporter: owner.exporter.clone(),
                owner: owner.transform.clone(),
            });
        }
        let exporter = start()?;
        *claim = Some(Owner {
            transform: transform.clone(),
            fingerprint,
            live_metrics,
            exporter: exporter.clone(),
        });
        Ok(Claim::New(exporter))
    }
}
