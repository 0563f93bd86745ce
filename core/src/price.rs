//! The price table: what a token costs, per model, and how a call's
//! [`Usage`] becomes a [`Cost`].
//!
//! The table is `core/prices.toml` in the repository (versioned, with its
//! source and date), compiled in. A transform's price is found by model
//! name ([`PriceTable::find`]) or given by the user (`pricing:`); batch
//! jobs pay [`PriceTable::batch_factor`] of it.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::call::{Cost, CostParts, Usage};

/// USD per 1 million tokens of one model.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Prompt tokens.
    pub input: f64,
    /// Prompt tokens served from the provider's cache; `None` prices them
    /// as ordinary input.
    #[serde(default)]
    pub cached_input: Option<f64>,
    /// Completion tokens (reasoning included).
    pub output: f64,
}

impl Price {
    /// What a call with `usage` costs at this price, times `factor` (1 for
    /// ordinary calls, [`PriceTable::batch_factor`] for batch lines).
    /// Cached prompt tokens are priced as cached, reasoning tokens as output.
    pub fn cost(&self, usage: &Usage, factor: f64) -> Cost {
        let per = |tokens: u64, price: f64| tokens as f64 * price * factor / 1e6;
        let cached = usage.cached_input.min(usage.input);
        let reasoning = usage.reasoning.min(usage.output);
        let parts = CostParts {
            input: per(usage.input - cached, self.input),
            cached_input: per(cached, self.cached_input.unwrap_or(self.input)),
            output: per(usage.output - reasoning, self.output),
            reasoning: per(reasoning, self.output),
        };
        Cost {
            total: parts.input + parts.cached_input + parts.output + parts.reasoning,
            parts: Some(parts),
        }
    }

    /// The cheapest and dearest a call can be: `input_tokens` at the
    /// input price (none cached), plus 0 to `max_output` completion tokens.
    pub fn range(&self, input_tokens: u64, max_output: u64, factor: f64) -> (f64, f64) {
        let low = input_tokens as f64 * self.input * factor / 1e6;
        (low, low + max_output as f64 * self.output * factor / 1e6)
    }
}

/// The tokenizer of a model family, for estimates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum Encoding {
    /// GPT-4o, GPT-4.1, GPT-5 and the o-series.
    #[default]
    #[serde(rename = "o200k_base")]
    O200kBase,
    /// GPT-4 Turbo, GPT-3.5 Turbo.
    #[serde(rename = "cl100k_base")]
    Cl100kBase,
}

impl Encoding {
    /// Its name (`o200k_base`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::O200kBase => "o200k_base",
            Self::Cl100kBase => "cl100k_base",
        }
    }
}

/// One model of the table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    /// Its price.
    #[serde(flatten)]
    pub price: Price,
    /// Its tokenizer.
    #[serde(default)]
    pub encoding: Encoding,
    /// Other names of the model (Azure's `gpt-35-turbo`).
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// The price table (`core/prices.toml`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceTable {
    /// The day the prices were checked (`2026-06-21`).
    pub version: String,
    /// Where they come from.
    pub source: String,
    /// The fraction of the price a Batch API line pays (0.5).
    pub batch_factor: f64,
    /// The models, by name.
    pub models: BTreeMap<String, ModelEntry>,
}

/// The table's text, as committed.
const BUILTIN: &str = include_str!("../prices.toml");

/// The price table could not be read.
#[derive(Debug, thiserror::Error)]
#[error("the price table is not valid: {0}")]
pub struct PriceTableError(#[from] toml::de::Error);

impl PriceTable {
    /// Parses a table in the format of `core/prices.toml`.
    pub fn parse(text: &str) -> Result<Self, PriceTableError> {
        Ok(toml::from_str(text)?)
    }

    /// The table compiled into elspeth.
    pub fn builtin() -> &'static PriceTable {
        static TABLE: OnceLock<PriceTable> = OnceLock::new();
        // The committed table is checked by this crate's tests, so a parse
        // failure here is a build that skipped them, not bad user input.
        TABLE
            .get_or_init(|| Self::parse(BUILTIN).expect("core/prices.toml is checked by the tests"))
    }

    /// The model a name means, with its table name: the name itself, an
    /// alias, or either with a trailing version date (`-2024-08-06`) or a
    /// provider prefix (`openai/`) removed; case does not matter.
    pub fn find(&self, name: &str) -> Option<(&str, &ModelEntry)> {
        let lower = name.trim().to_ascii_lowercase();
        let bare = lower.strip_prefix("openai/").unwrap_or(&lower);
        [bare, strip_version(bare)]
            .into_iter()
            .find_map(|candidate| {
                self.models.iter().find_map(|(model, entry)| {
                    (model == candidate || entry.aliases.iter().any(|a| a == candidate))
                        .then_some((model.as_str(), entry))
                })
            })
    }

    /// Every name the table knows (models and aliases), for "did you mean".
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.models.iter().flat_map(|(m, e)| {
            std::iter::once(m.as_str()).chain(e.aliases.iter().map(String::as_str))
        })
    }
}

/// `gpt-4o-2024-08-06` → `gpt-4o`; a name without a date is kept.
fn strip_version(name: &str) -> &str {
    let bytes = name.as_bytes();
    let date = |s: &[u8]| {
        s.len() == 11
            && s[0] == b'-'
            && s[5] == b'-'
            && s[8] == b'-'
            && s.iter()
                .enumerate()
                .all(|(i, c)| matches!(i, 0 | 5 | 8) || c.is_ascii_digit())
    };
    if bytes.len() > 11 && date(&bytes[bytes.len() - 11..]) {
        &name[..name.len() - 11]
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_table_parses_and_holds_the_common_models() {
        let t = PriceTable::builtin();
        assert!(t.version.len() == 10 && !t.source.is_empty());
        assert_eq!(t.batch_factor, 0.5);
        let price = |m: &str| t.find(m).unwrap().1.price;
        assert_eq!((price("gpt-4o").input, price("gpt-4o").output), (2.5, 10.0));
        assert_eq!(
            (price("gpt-4o-mini").input, price("gpt-4o-mini").output),
            (0.15, 0.6)
        );
        for m in [
            "gpt-4.1",
            "gpt-4.1-mini",
            "gpt-4.1-nano",
            "o1",
            "o3",
            "o3-mini",
            "o4-mini",
        ] {
            assert!(t.find(m).is_some(), "{m}");
        }
        for e in t.models.values() {
            assert!(e.price.input > 0.0 && e.price.output >= e.price.input);
            assert!(e.price.cached_input.is_none_or(|c| c <= e.price.input));
        }
    }

    #[test]
    fn names_match_with_dates_prefixes_aliases_and_case() {
        let t = PriceTable::builtin();
        assert_eq!(t.find("gpt-4o-2024-08-06").unwrap().0, "gpt-4o");
        assert_eq!(t.find("GPT-4o-Mini").unwrap().0, "gpt-4o-mini");
        assert_eq!(t.find("openai/gpt-4.1-mini").unwrap().0, "gpt-4.1-mini");
        assert_eq!(t.find("gpt-35-turbo").unwrap().0, "gpt-3.5-turbo");
        assert_eq!(
            t.find("gpt-35-turbo").unwrap().1.encoding,
            Encoding::Cl100kBase
        );
        assert!(t.find("my-prod-deployment").is_none());
        assert!(t.find("gpt-4o-2024").is_none());
        assert!(t.names().any(|n| n == "gpt-35-turbo"));
    }

    #[test]
    fn cached_tokens_are_cheaper_and_reasoning_is_output() {
        let p = PriceTable::builtin().find("gpt-4o").unwrap().1.price;
        let usage = Usage {
            input: 1_000_000,
            output: 100_000,
            total: 1_100_000,
            cached_input: 400_000,
            reasoning: 30_000,
        };
        let c = p.cost(&usage, 1.0);
        let parts = c.parts.unwrap();
        assert!((parts.input - 1.5).abs() < 1e-9, "600k at 2.50");
        assert!((parts.cached_input - 0.5).abs() < 1e-9, "400k at 1.25");
        assert!((parts.output - 0.7).abs() < 1e-9, "70k at 10");
        assert!((parts.reasoning - 0.3).abs() < 1e-9, "30k at 10");
        assert!((c.total - 3.0).abs() < 1e-9);
        let batch = p.cost(&usage, 0.5);
        assert!((batch.total - 1.5).abs() < 1e-9);
        // A model without a cached price charges cached tokens as input.
        let turbo = PriceTable::builtin().find("gpt-4-turbo").unwrap().1.price;
        let u = Usage {
            cached_input: 10,
            ..Usage::new(10, 0)
        };
        assert!((turbo.cost(&u, 1.0).total - 10.0 * 10.0 / 1e6).abs() < 1e-12);
        assert_eq!(p.range(1_000_000, 1_000_000, 1.0), (2.5, 12.5));
    }

    #[test]
    fn a_bad_table_is_an_error() {
        let e = PriceTable::parse("version = 1").unwrap_err();
        assert!(
            e.to_string().starts_with("the price table is not valid"),
            "{e}"
        );
    }
}
