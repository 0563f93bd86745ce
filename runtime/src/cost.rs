//! What LLM calls cost, in one place: each transform's [`TransformPrice`]
//! (resolved once by the plan from `base_model`, the deployment or model
//! name, or `pricing:`), applied to every paid reply the provider did not
//! price; the token [`estimate`] of a dry run; and the run's [`Budget`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use elspeth_core::price::{Encoding, Price, PriceTable};
use elspeth_schema::config::{Connection, TransformConfig};

use crate::llm::{LlmRequest, LlmResponse};
use crate::usage::UsageMeter;
use elspeth_core::call::ResponseFormatRequest;

/// Where a transform's price comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum PriceSource {
    /// A model of the price table.
    Table {
        /// The table's name of the model (`gpt-4o-mini`).
        model: String,
        /// The table's version (the day its prices were checked).
        version: String,
    },
    /// The transform's `pricing:`.
    Override,
    /// No price: a call the provider does not price has an unknown cost.
    Unknown {
        /// The name that was looked up (`base_model`, deployment or model).
        looked_up: String,
    },
}

/// How a transform's calls are priced.
#[derive(Debug, Clone, PartialEq)]
pub struct TransformPrice {
    /// The price per 1M tokens, when known.
    pub price: Option<Price>,
    /// Where it comes from.
    pub source: PriceSource,
    /// The fraction of the price paid: the table's batch factor (0.5) for
    /// Batch API jobs, else 1.
    pub factor: f64,
    /// The tokenizer of estimates.
    pub encoding: Option<Encoding>,
    /// The provider reports each call's cost (OpenRouter): that cost wins.
    pub reported: bool,
}

impl TransformPrice {
    /// The price of `config`: its `pricing:` override, else the price
    /// table's model named by `base_model` (Azure), else by the deployment
    /// name or model id; `batch`: a Batch API job (discounted).
    pub fn of(config: &TransformConfig, batch: bool) -> Self {
        let table = PriceTable::builtin();
        let factor = if batch { table.batch_factor } else { 1.0 };
        let looked_up = match config.connection() {
            Connection::Azure(c) => c.base_model.as_deref().unwrap_or(&c.deployment_name),
            Connection::OpenRouter(c) => &c.model,
        };
        let found = table.find(looked_up);
        let encoding = found.map(|(_, e)| e.encoding);
        let reported = matches!(config.connection(), Connection::OpenRouter(_));
        if let Some(p) = &config.call().pricing {
            return Self {
                price: Some(Price {
                    input: p.input_per_mtok,
                    cached_input: p.cached_input_per_mtok,
                    output: p.output_per_mtok,
                }),
                source: PriceSource::Override,
                factor,
                encoding,
                reported,
            };
        }
        match found {
            Some((model, entry)) => Self {
                price: Some(entry.price),
                source: PriceSource::Table {
                    model: model.to_string(),
                    version: table.version.clone(),
                },
                factor,
                encoding,
                reported,
            },
            None => Self {
                price: None,
                source: PriceSource::Unknown {
                    looked_up: looked_up.to_string(),
                },
                factor,
                encoding: None,
                reported,
            },
        }
    }

    /// Sets the cost of a paid reply the provider did not price (a cost
    /// the provider reports, like OpenRouter's, wins).
    pub fn apply(&self, response: &mut LlmResponse) {
        if response.cost.is_some() {
            return;
        }
        if let (Some(price), Some(usage)) = (&self.price, &response.usage) {
            response.cost = Some(price.cost(usage, self.factor));
        }
    }

    /// One line on where the price comes from, for summaries and dry runs.
    pub fn describe(&self) -> String {
        let batch = if self.factor < 1.0 {
            format!(", batch jobs at {}%", (self.factor * 100.0).round())
        } else {
            String::new()
        };
        let own = match &self.source {
            PriceSource::Table { model, version } => {
                format!("{model} in the price table of {version}{batch}")
            }
            PriceSource::Override => format!("`pricing:` of the transform{batch}"),
            PriceSource::Unknown { looked_up } => format!(
                "unknown: `{looked_up}` is not in the price table (set `base_model:` or `pricing:`)"
            ),
        };
        if self.reported {
            format!("as OpenRouter reports it; else {own}")
        } else {
            own
        }
    }

    /// The cheapest and dearest `calls` calls of `input_tokens` prompt
    /// tokens each can be, with at most `max_output` completion tokens
    /// each; `None` without a price.
    pub fn range(&self, input_tokens: u64, max_output: u64, calls: u64) -> Option<(f64, f64)> {
        let (low, high) = self.price?.range(input_tokens, max_output, self.factor);
        Some((low * calls as f64, high * calls as f64))
    }
}

/// How a prompt's tokens were counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenCount {
    /// By the model's own tokenizer.
    Tokenizer(Encoding),
    /// Characters / 4: the model's tokenizer is not known.
    CharsOver4,
}

impl std::fmt::Display for TokenCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tokenizer(e) => write!(f, "{} tokenizer", e.as_str()),
            Self::CharsOver4 => f.write_str("chars/4 approximation, tokenizer unknown"),
        }
    }
}

/// Tokens of the messages of `request`: each message's text with the model
/// family's tokenizer plus the chat format's 3 tokens per message and 3 for
/// the reply's priming (OpenAI's counting rule); chars/4 without one. A
/// structured-output schema is billed as input too: its JSON text is
/// counted the same way.
pub fn estimate(request: &LlmRequest, encoding: Option<Encoding>) -> (u64, TokenCount) {
    let schema = match &request.response_format {
        Some(ResponseFormatRequest::JsonSchema(s)) => Some(s.schema.to_string()),
        _ => None,
    };
    let texts = request
        .messages
        .iter()
        .map(|m| m.content.as_str())
        .chain(schema.as_deref());
    match encoding {
        Some(e) => {
            let bpe = match e {
                Encoding::O200kBase => o200k(),
                Encoding::Cl100kBase => cl100k(),
            };
            let tokens: usize = texts
                .map(|t| bpe.encode_ordinary(t).len() + 3)
                .sum::<usize>()
                + 3;
            (tokens as u64, TokenCount::Tokenizer(e))
        }
        None => {
            let chars: usize = texts.map(|t| t.chars().count()).sum();
            ((chars as u64).div_ceil(4), TokenCount::CharsOver4)
        }
    }
}

fn o200k() -> &'static tiktoken_rs::CoreBPE {
    static BPE: OnceLock<tiktoken_rs::CoreBPE> = OnceLock::new();
    // The ranks are compiled into tiktoken-rs: building them cannot fail
    // on input, only on a broken build of that crate.
    BPE.get_or_init(|| tiktoken_rs::o200k_base().expect("o200k_base ranks are bundled"))
}

fn cl100k() -> &'static tiktoken_rs::CoreBPE {
    static BPE: OnceLock<tiktoken_rs::CoreBPE> = OnceLock::new();
    BPE.get_or_init(|| tiktoken_rs::cl100k_base().expect("cl100k_base ranks are bundled"))
}

/// What one transform's calls would use and cost, estimated on sample rows
/// ([`crate::plan::Plan::estimate`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CallEstimate {
    /// `transforms[i] (plugin)`.
    pub label: String,
    /// Calls per row.
    pub calls_per_row: u64,
    /// Mean prompt tokens per call over the sample; `None` when no sample
    /// row rendered (no rows, or a template that fails on them).
    pub tokens_per_call: Option<f64>,
    /// How the tokens were counted.
    pub counted: TokenCount,
    /// `max_tokens`: the ceiling of each call's completion.
    pub max_tokens: Option<u32>,
    /// The price.
    pub price: TransformPrice,
}

/// A [`CallEstimate`] over the rows of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunEstimate {
    /// LLM calls.
    pub calls: u64,
    /// Prompt tokens in all, when the sample rendered.
    pub input_tokens: Option<u64>,
    /// Completion tokens at most (`max_tokens` × calls), when `max_tokens` is set.
    pub output_ceiling: Option<u64>,
    /// The cost from no completion to the output ceiling, when priced
    /// (without `max_tokens` the upper end is `None`: unbounded).
    pub cost: Option<(f64, Option<f64>)>,
}

impl CallEstimate {
    /// The estimate for `rows` rows.
    pub fn for_rows(&self, rows: u64) -> RunEstimate {
        let calls = rows.saturating_mul(self.calls_per_row);
        let input_tokens = self
            .tokens_per_call
            .map(|t| (t * calls as f64).round() as u64);
        let output_ceiling = self.max_tokens.map(|m| u64::from(m).saturating_mul(calls));
        let cost = input_tokens.and_then(|input| {
            let (low, high) =
                self.price
                    .price?
                    .range(input, output_ceiling.unwrap_or(0), self.price.factor);
            Some((low, output_ceiling.map(|_| high)))
        });
        RunEstimate {
            calls,
            input_tokens,
            output_ceiling,
            cost,
        }
    }

    /// What one call may cost, for a budget before the transform's first
    /// paid call: the mean prompt and `max_tokens` completion tokens
    /// (without `max_tokens`, a reply as long as the prompt); `None` without
    /// a price or a sample.
    pub fn call_ceiling_usd(&self) -> Option<f64> {
        let input = self.tokens_per_call?.ceil() as u64;
        let output = self.max_tokens.map_or(input.max(1), u64::from);
        Some(self.price.price?.range(input, output, self.price.factor).1)
    }
}

/// One transform as the budget sees it.
#[derive(Debug)]
pub struct BudgetedTransform {
    /// Its meter (what its calls cost so far).
    pub meter: Arc<UsageMeter>,
    /// Calls per row.
    pub calls_per_row: u64,
    /// What one call may cost before any was paid
    /// ([`CallEstimate::call_ceiling_usd`]); `None` when the first rows did
    /// not tell (then one row at a time is taken until a call is paid).
    pub first_call_usd: Option<f64>,
}

/// The run's budget: the source asks it before taking each row.
///
/// A row is taken when what the run spent (replies the run store serves
/// counted at what they cost when paid), plus what the rows taken and not
/// yet written may cost, plus what this row may cost, stays within the
/// budget. When it would not, the source waits for the rows in flight (their
/// real cost is known once written) and asks again; with none in flight,
/// the run stops taking rows. What a row may cost: per transform, its calls
/// per row times the average cost of its paid calls so far (before its
/// first paid call, the first rows' estimate).
#[derive(Debug)]
pub struct Budget {
    limit_usd: f64,
    transforms: Vec<BudgetedTransform>,
    taken: AtomicU64,
    /// Rows written, under the lock the waiting source sleeps on.
    written: Mutex<u64>,
    wrote: Condvar,
    stop: OnceLock<f64>,
}

impl Budget {
    /// A budget of `limit_usd` over `transforms`.
    pub fn new(limit_usd: f64, transforms: Vec<BudgetedTransform>) -> Self {
        Self {
            limit_usd,
            transforms,
            taken: AtomicU64::new(0),
            written: Mutex::new(0),
            wrote: Condvar::new(),
            stop: OnceLock::new(),
        }
    }

    /// The limit, USD.
    pub fn limit_usd(&self) -> f64 {
        self.limit_usd
    }

    /// What the run has spent, the store's replies included.
    pub fn spent_usd(&self) -> f64 {
        self.transforms
            .iter()
            .map(|t| {
                let s = t.meter.snapshot();
                s.cost_usd.unwrap_or(0.0) + s.saved_cost_usd
            })
            .sum()
    }

    /// What one more row may cost; `None` while some transform has
    /// neither an estimate nor a paid call.
    fn row_usd(&self) -> Option<f64> {
        self.transforms
            .iter()
            .map(|t| {
                let s = t.meter.snapshot();
                let per_call = match s.cost_usd {
                    Some(cost) if s.calls > s.unpriced_calls => {
                        Some(cost / (s.calls - s.unpriced_calls) as f64)
                    }
                    _ => t.first_call_usd,
                };
                per_call.map(|c| c * t.calls_per_row as f64)
            })
            .sum()
    }

    /// Whether the next row may be taken (counted as taken when it may),
    /// waiting for rows in flight when it would not fit beside them. Once
    /// it may not, it never may again ([`stopped_at`](Self::stopped_at)
    /// says what had been spent). `cancelled` ends a wait.
    pub fn take_row(&self, cancelled: &dyn Fn() -> bool) -> bool {
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if self.stop.get().is_some() || cancelled() {
                return false;
            }
            let spent = self.spent_usd();
            let in_flight = self.taken.load(Ordering::Relaxed).saturating_sub(*written);
            let fits = match self.row_usd() {
                Some(row) => spent + (in_flight + 1) as f64 * row <= self.limit_usd,
                // Nothing tells what a row costs: one at a time, while
                // something is left.
                None => in_flight == 0 && spent < self.limit_usd,
            };
            if fits {
                self.taken.fetch_add(1, Ordering::Relaxed);
                return true;
            }
            if in_flight == 0 {
                let _ = self.stop.set(spent);
                tracing::warn!(
                    spent_usd = spent,
                    limit_usd = self.limit_usd,
                    "the next row could pass the budget: no new rows are taken"
                );
                return false;
            }
            // The rows in flight may cost less than estimated: wait for one.
            written = self
                .wrote
                .wait_timeout(written, std::time::Duration::from_millis(50))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// A row was written.
    pub fn row_written(&self) {
        *self.written.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.wrote.notify_all();
    }

    /// What had been spent when the budget stopped the run, if it did.
    pub fn stopped_at(&self) -> Option<f64> {
        self.stop.get().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{Cost, Usage};

    fn azure(extra: &str) -> TransformConfig {
        serde_json::from_str(&format!(
            r#"{{"plugin": "azure_llm", "options": {{"deployment_name": "prod-classifier", "endpoint": "http://127.0.0.1:1", "api_key": "${{K}}", "prompt_template": "x"{extra}}}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn prices_come_from_base_model_the_deployment_or_pricing() {
        let unknown = TransformPrice::of(&azure(""), false);
        assert!(unknown.price.is_none());
        assert!(
            unknown
                .describe()
                .contains("`prod-classifier` is not in the price table")
        );
        let mapped = TransformPrice::of(&azure(r#", "base_model": "gpt-4o-mini""#), false);
        assert_eq!(mapped.price.unwrap().input, 0.15);
        assert!(
            mapped
                .describe()
                .starts_with("gpt-4o-mini in the price table of")
        );
        let own = TransformPrice::of(
            &azure(r#", "pricing": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}"#),
            true,
        );
        assert_eq!((own.price.unwrap().output, own.factor), (2.0, 0.5));
        assert_eq!(
            own.describe(),
            "`pricing:` of the transform, batch jobs at 50%"
        );
    }

    #[test]
    fn a_reported_cost_wins_and_batch_lines_pay_half() {
        let p = TransformPrice::of(&azure(r#", "base_model": "gpt-4o""#), true);
        let mut r = LlmResponse {
            usage: Some(Usage::new(1_000_000, 0)),
            ..Default::default()
        };
        p.apply(&mut r);
        assert!((r.cost.unwrap().total - 1.25).abs() < 1e-9);
        let mut reported = LlmResponse {
            usage: Some(Usage::new(1_000_000, 0)),
            cost: Some(Cost::reported(0.01)),
            ..Default::default()
        };
        p.apply(&mut reported);
        assert_eq!(reported.cost, Some(Cost::reported(0.01)));
        let mut untold = LlmResponse::default();
        p.apply(&mut untold);
        assert_eq!(untold.cost, None, "no usage, no cost: never a silent 0");
    }

    #[test]
    fn estimates_count_with_the_tokenizer_or_chars_over_4() {
        let r = LlmRequest::user(
            "gpt-4o",
            "Classify this support ticket: my invoice is wrong.",
        );
        let (n, how) = estimate(&r, Some(Encoding::O200kBase));
        assert_eq!(how, TokenCount::Tokenizer(Encoding::O200kBase));
        // 11 text tokens + 3 per message + 3 for the reply.
        assert!((14..=20).contains(&n), "{n}");
        let (c, how) = estimate(&r, None);
        assert_eq!((c, how), (13, TokenCount::CharsOver4));
        // A structured-output schema counts as input.
        let mut with_schema = r.clone();
        with_schema.response_format = Some(ResponseFormatRequest::JsonSchema(
            elspeth_core::call::JsonSchemaRequest {
                name: "t".into(),
                schema: Arc::new(
                    serde_json::json!({"type": "object", "properties": {"category": {"type": "string"}}}),
                ),
                strict: true,
            },
        ));
        let (m, _) = estimate(&with_schema, Some(Encoding::O200kBase));
        assert!(m > n + 10, "{m} vs {n}");
        assert!(how.to_string().contains("chars/4"));
    }

    fn budget(limit: f64, calls_per_row: u64, first_call_usd: f64) -> (Budget, Arc<UsageMeter>) {
        let meter = Arc::new(UsageMeter::new());
        let t = BudgetedTransform {
            meter: meter.clone(),
            calls_per_row,
            first_call_usd: Some(first_call_usd),
        };
        (Budget::new(limit, vec![t]), meter)
    }

    fn paid(meter: &UsageMeter, usd: f64) {
        meter.record(&LlmResponse {
            cost: Some(Cost::reported(usd)),
            ..Default::default()
        });
    }

    #[test]
    fn the_budget_waits_for_rows_in_flight_then_stops_before_it_would_be_passed() {
        // 0.2 per row before any call (2 calls at 0.1): 5 rows fit in 1.05.
        let (budget, meter) = budget(1.05, 2, 0.1);
        let budget = Arc::new(budget);
        for _ in 0..5 {
            assert!(budget.take_row(&|| false));
        }
        // The sixth waits for the rows in flight; they cost 0.05 each.
        let writer = {
            let (budget, meter) = (budget.clone(), meter.clone());
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(20));
                for _ in 0..5 {
                    paid(&meter, 0.025);
                    paid(&meter, 0.025);
                    budget.row_written();
                }
            })
        };
        assert!(
            budget.take_row(&|| false),
            "fits once the real costs are known"
        );
        writer.join().unwrap();
        assert_eq!(budget.stopped_at(), None);
        // From now on each row is written (0.05) before the next is asked for.
        let mut taken = 0;
        loop {
            paid(&meter, 0.025);
            paid(&meter, 0.025);
            budget.row_written();
            if !budget.take_row(&|| false) {
                break;
            }
            taken += 1;
            assert!(taken < 100);
        }
        // It stopped when the next row would have passed 1.05.
        let spent = budget.stopped_at().unwrap();
        assert!(spent <= 1.05 + 1e-9 && spent + 0.05 > 1.05, "{spent}");
        assert_eq!(
            taken, 14,
            "0.30 after 6 rows, then 14 more rows of 0.05 make 1.00"
        );
        assert!(!budget.take_row(&|| false), "once stopped, stopped");
    }

    #[test]
    fn a_wait_ends_when_the_run_is_cancelled() {
        let (budget, _meter) = budget(1.0, 1, 0.6);
        assert!(budget.take_row(&|| false));
        assert!(!budget.take_row(&|| true), "cancelled while waiting");
        assert_eq!(
            budget.stopped_at(),
            None,
            "a cancel is not the budget's stop"
        );
        // Over the budget alone: stopped at once.
        let (budget, _meter) = budget_over();
        assert!(!budget.take_row(&|| false));
        assert_eq!(budget.stopped_at(), Some(0.0));
    }

    #[test]
    fn without_an_estimate_rows_go_one_at_a_time_until_a_call_is_paid() {
        let meter = Arc::new(UsageMeter::new());
        let budget = Budget::new(
            1.0,
            vec![BudgetedTransform {
                meter: meter.clone(),
                calls_per_row: 1,
                first_call_usd: None,
            }],
        );
        assert!(budget.take_row(&|| false));
        // A second row while the first is in flight: waits (here: cancelled).
        assert!(!budget.take_row(&|| true));
        paid(&meter, 0.4);
        budget.row_written();
        // Now a row costs 0.4: one more fits beside what was spent.
        assert!(budget.take_row(&|| false));
        assert!(
            !budget.take_row(&|| true),
            "0.4 + 2 × 0.4 would pass 1.0: it waits"
        );
    }

    fn budget_over() -> (Budget, Arc<UsageMeter>) {
        budget(1.0, 1, 10.0)
    }
}
