//! `elspeth run --report PATH.html`: the run summary as one self-contained
//! HTML page (inline CSS and SVG, no script, no font, image or link to
//! fetch), to open from disk or attach to a ticket.
//!
//! The page shows the totals (rows, calls, tokens, cost, duration), the
//! stop reason and the budget when there is one, one section per transform
//! (calls, failures by kind, retries, tokens, cost, latency percentiles and
//! a latency histogram drawn in SVG on a log scale with p50 / p95 / p99
//! marked), the failed and the slowest rows, and the tracing delivery of
//! every exporter (flagged when its states do not add up to what it
//! recorded). An unknown cost is shown as `unknown`, never as 0.
//!
//! # Checking the page against the summary JSON
//!
//! Every figure the page shows is an element with a `data-figure`
//! attribute naming its path in the summary JSON ([`RunSummary::to_json`]):
//! keys and array indexes joined by dots, e.g. `rows_ok`,
//! `transforms.0.latency_ms.p95`, `transforms.1.failures.server_error`,
//! `tracing.0.sent`, `failed_rows.2.id`.
//!
//! - A number also carries `data-value`: the exact JSON value (`null` when
//!   unknown). Its text is the same value formatted for a reader: integers
//!   in full with `,` between thousands; money (`$`), milliseconds (`ms`)
//!   and seconds (`s`) rounded to the decimals shown, so the text is within
//!   half a unit of its last decimal of the value; `unknown` or `n/a` for
//!   `null`. Some numbers (a histogram bar's height) have no text, only
//!   `data-value`.
//! - A text (pipeline, transform label, row id, error, exporter) has no
//!   `data-value`: its text content is the JSON string exactly.
//!
//! Every text that comes from the pipeline, its rows or its backends is
//! escaped ([`escape`]).

use std::fmt::Write as _;

use elspeth_telemetry::ExportSummary;

use super::report::HISTOGRAM_BARS;
use super::{RowNote, RunSummary, TransformSummary};
use crate::usage::LatencyBucket;

/// The report of `summary` (`exit_code`: the process's).
pub fn render(summary: &RunSummary, exit_code: u8) -> String {
    let mut page = Page::default();
    page.head(summary);
    page.header(summary, exit_code);
    page.stop(summary);
    page.totals(summary);
    page.transforms(summary);
    page.rows(summary);
    page.tracing(&summary.exporters);
    page.footer();
    page.out
}

/// `text` safe inside HTML text and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page's style: system fonts only, light and dark.
const STYLE: &str = r#"
:root{--bg:#f5f6f8;--card:#fff;--ink:#17202e;--muted:#667085;--line:#e3e6eb;--soft:#f0f2f5;
--accent:#4f46e5;--ok:#079455;--okbg:#e7f6ee;--bad:#d92d20;--badbg:#fdecea;--warn:#b54708;--warnbg:#fef3e2;
--kept:#6941c6;--pending:#98a2b3;--bar:#6366f1}
@media (prefers-color-scheme:dark){:root{--bg:#0f1420;--card:#171e2c;--ink:#e6e9ef;--muted:#98a2b3;
--line:#283246;--soft:#1e2738;--okbg:#0f2f22;--badbg:#3a1512;--warnbg:#3a2508;--bar:#818cf8}}
*{box-sizing:border-box}
html{background:var(--bg)}
body{margin:0;color:var(--ink);font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
-webkit-font-smoothing:antialiased}
main{max-width:1100px;margin:0 auto;padding:32px 28px 56px}
.mono,code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;font-size:12.5px}
.num{font-variant-numeric:tabular-nums}
.muted{color:var(--muted)}
header .kicker{font-size:12px;font-weight:600;letter-spacing:.08em;text-transform:uppercase;color:var(--accent)}
header h1{font-size:28px;line-height:1.2;margin:4px 0 10px;font-weight:700;word-break:break-word}
.meta{display:flex;flex-wrap:wrap;gap:6px 18px;color:var(--muted);font-size:13px}
.meta b{color:var(--ink);font-weight:600}
.badge{display:inline-block;padding:2px 10px;border-radius:999px;font-size:12.5px;font-weight:600;vertical-align:middle}
.badge.ok{background:var(--okbg);color:var(--ok)}
.badge.bad{background:var(--badbg);color:var(--bad)}
.badge.warn{background:var(--warnbg);color:var(--warn)}
.notice{margin:20px 0 0;padding:12px 16px;border-radius:10px;border:1px solid var(--line);background:var(--card)}
.notice.bad{border-color:var(--bad);background:var(--badbg)}
.notice.warn{border-color:var(--warn);background:var(--warnbg)}
.notice b{display:block;margin-bottom:2px}
h2{font-size:18px;margin:36px 0 12px;font-weight:650}
h2 .count{font-weight:500;color:var(--muted);font-size:14px;margin-left:6px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(165px,1fr));gap:12px;margin-top:24px}
.card{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:14px 18px 16px}
.card .label{font-size:11.5px;font-weight:600;letter-spacing:.07em;text-transform:uppercase;color:var(--muted)}
.card .big{font-size:28px;font-weight:700;line-height:1.25;margin:4px 0 4px;font-variant-numeric:tabular-nums}
.card .big.bad{color:var(--bad)}
.card .sub{font-size:13px;color:var(--muted)}
.card .sub b{color:var(--ink);font-weight:600}
.split{display:flex;height:6px;border-radius:3px;overflow:hidden;background:var(--soft);margin-top:10px}
.split i{display:block;height:100%}
.panel{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:18px 20px;margin-bottom:16px}
.panel h3{margin:0;font-size:16px;font-weight:650;word-break:break-word}
.panel .what{color:var(--muted);font-size:13px;margin:2px 0 14px}
table{border-collapse:collapse;width:100%}
th{font-size:11.5px;font-weight:600;letter-spacing:.05em;text-transform:uppercase;color:var(--muted);text-align:left}
th,td{padding:7px 10px;border-bottom:1px solid var(--line);vertical-align:top}
tr:last-child td{border-bottom:0}
th.n,td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.err{word-break:break-word;min-width:240px}
.stats td{font-size:15px;font-weight:600}
.lat{display:flex;flex-wrap:wrap;gap:8px;margin:16px 0 6px}
.chip{background:var(--soft);border-radius:8px;padding:4px 10px;font-size:13px}
.chip b{font-weight:650}
.chip.p50{box-shadow:inset 3px 0 0 #0e9384}.chip.p95{box-shadow:inset 3px 0 0 #dc6803}.chip.p99{box-shadow:inset 3px 0 0 #d92d20}
.chart{width:100%;height:auto;display:block;margin-top:4px}
.chart .bar{fill:var(--bar)}
.chart .axis{stroke:var(--line)}
.chart text{fill:var(--muted);font-size:11px;font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif}
.chart text.cnt{fill:var(--ink);font-size:10.5px}
.chart line.m50{stroke:#0e9384}.chart line.m95{stroke:#dc6803}.chart line.m99{stroke:#d92d20}
.chart text.m50{fill:#0e9384;font-weight:600}.chart text.m95{fill:#dc6803;font-weight:600}.chart text.m99{fill:#d92d20;font-weight:600}
.kinds{display:flex;flex-wrap:wrap;gap:8px;margin-top:12px;align-items:center}
.kind{background:var(--badbg);color:var(--bad);border-radius:999px;padding:2px 10px;font-size:12.5px;font-weight:600}
.empty{color:var(--muted);font-style:italic;padding:6px 0}
.legend{display:flex;flex-wrap:wrap;gap:14px;font-size:12.5px;color:var(--muted);margin:6px 0 10px}
.legend i,.dot{display:inline-block;width:9px;height:9px;border-radius:2px;margin-right:5px;vertical-align:baseline}
.s-sent{background:var(--ok)}.s-dropped{background:var(--warn)}.s-failed{background:var(--bad)}
.s-pending{background:var(--pending)}.s-kept{background:var(--kept)}
.s-time{background:var(--bar)}td.id{white-space:nowrap}.s-ok{background:var(--ok)}.s-bad{background:var(--bad)}.s-cancel{background:var(--warn)}
.flag{font-size:12.5px;font-weight:600;white-space:nowrap}
.flag.ok{color:var(--ok)}.flag.bad{color:var(--bad)}
footer{margin-top:40px;color:var(--muted);font-size:12px}
@media print{html{background:#fff}.card,.panel{break-inside:avoid}}
"#;

#[derive(Default)]
struct Page {
    out: String,
}

/// How a number is shown.
#[derive(Clone, Copy)]
enum Unit {
    /// Dollars, 2 or more decimals (up to 3 significant digits below $1).
    Usd,
    /// Milliseconds, decimals by size, with ` ms`.
    Ms,
    /// Milliseconds without the unit (axis labels).
    MsBare,
    /// Seconds, with ` s`.
    Secs,
}

/// `n` with `,` between thousands.
fn int(n: u64) -> String {
    super::thousands(n)
}

/// `x` with `decimals` decimals, `,` between thousands.
fn fixed(x: f64, decimals: usize) -> String {
    let text = format!("{:.*}", decimals, x.abs());
    let (whole, frac) = text.split_once('.').unwrap_or((&text, ""));
    let whole = whole
        .parse::<u64>()
        .map(int)
        .unwrap_or_else(|_| whole.to_string());
    let sign = if x < 0.0 && text.bytes().any(|b| (b'1'..=b'9').contains(&b)) {
        "-"
    } else {
        ""
    };
    if frac.is_empty() {
        format!("{sign}{whole}")
    } else {
        format!("{sign}{whole}.{frac}")
    }
}

/// Decimals that show 3 significant digits of `x` (at least `min`).
fn sig_decimals(x: f64, min: usize) -> usize {
    if x == 0.0 || !x.is_finite() {
        return min;
    }
    let magnitude = x.abs().log10().floor() as i64;
    (2 - magnitude).clamp(min as i64, 10) as usize
}

fn format_value(x: f64, unit: Unit) -> String {
    match unit {
        Unit::Usd => {
            // 3 significant digits below $1, but no trailing zero past the cents.
            let text = fixed(x, sig_decimals(x, 2));
            let (whole, cents) = text.split_at(text.find('.').map_or(text.len(), |d| d + 3));
            format!("${whole}{}", cents.trim_end_matches('0'))
        }
        Unit::Ms => format!("{} ms", fixed(x, ms_decimals(x))),
        Unit::MsBare => fixed(x, ms_decimals(x)),
        Unit::Secs => {
            let decimals = match x.abs() {
                x if x >= 100.0 => 0,
                x if x >= 10.0 => 1,
                x if x >= 1.0 => 2,
                _ => 3,
            };
            format!("{} s", fixed(x, decimals))
        }
    }
}

fn ms_decimals(x: f64) -> usize {
    match x.abs() {
        x if x >= 100.0 => 0,
        x if x >= 10.0 => 1,
        x if x >= 1.0 => 2,
        0.0 => 0,
        x => sig_decimals(x, 2).min(4),
    }
}

/// A float as the JSON holds it: `null` when not finite.
fn json_f64(x: Option<f64>) -> Option<f64> {
    x.filter(|x| x.is_finite())
}

impl Page {
    fn push(&mut self, s: &str) {
        self.out.push_str(s);
    }

    fn head(&mut self, s: &RunSummary) {
        let _ = write!(
            self.out,
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
             <meta name=\"color-scheme\" content=\"light dark\">\
             <title>{} · elspeth run report</title><style>{STYLE}</style></head><body><main>",
            escape(&s.pipeline)
        );
    }

    fn header(&mut self, s: &RunSummary, exit_code: u8) {
        let badge = if s.interrupted {
            "<span class=\"badge warn\">stopped early</span>".to_string()
        } else if s.rows_failed > 0 {
            "<span class=\"badge bad\">failed rows</span>".to_string()
        } else {
            "<span class=\"badge ok\">all rows ok</span>".to_string()
        };
        let _ = write!(
            self.out,
            "<header><div class=\"kicker\">elspeth run report</div><h1>{} {badge}</h1><div class=\"meta\">\
             <span>exit code <b>{}</b></span><span>output <b class=\"mono\">{}</b></span>",
            text("pipeline", &s.pipeline),
            integer("exit_code", u64::from(exit_code)),
            text("output", &s.output.to_string_lossy()),
        );
        if let Some(path) = &s.error_output {
            let _ = write!(
                self.out,
                "<span>failed rows <b class=\"mono\">{}</b></span>",
                text("error_output", &path.to_string_lossy())
            );
        }
        if let Some(path) = &s.store {
            let _ = write!(
                self.out,
                "<span>store <b class=\"mono\">{}</b></span>",
                text("store", &path.to_string_lossy())
            );
        }
        self.push("</div></header>");
    }

    fn stop(&mut self, s: &RunSummary) {
        if let Some(reason) = &s.stop_reason {
            let class = if reason.is_breaker() { "bad" } else { "warn" };
            let _ = write!(
                self.out,
                "<div class=\"notice {class}\"><b>The run stopped before the end of its source</b>{}</div>",
                text("stop_reason", &reason.to_string())
            );
        }
        if let Some(budget) = s.budget_usd {
            let spent = json_f64(s.cost_usd);
            let share = match spent {
                Some(c) if budget > 0.0 => (c / budget * 100.0).clamp(0.0, 100.0),
                _ => 0.0,
            };
            let _ = write!(
                self.out,
                "<div class=\"notice\"><b>Budget {}</b>spent: {}\
                 <div class=\"split\"><i class=\"s-kept\" style=\"width:{share:.1}%\"></i></div></div>",
                number("budget_usd", Some(budget), Unit::Usd, "unknown"),
                number("cost_usd", spent, Unit::Usd, "unknown"),
            );
        }
    }

    fn totals(&mut self, s: &RunSummary) {
        self.push("<section class=\"cards\">");
        let read = s.rows_read.max(s.rows_ok + s.rows_failed).max(1) as f64;
        let pct = |n: u64| n as f64 / read * 100.0;
        let _ = write!(
            self.out,
            "<div class=\"card\"><div class=\"label\">Rows ok</div><div class=\"big\">{}</div>\
             <div class=\"sub\"><b>{}</b> failed · <b>{}</b> cancelled · <b>{}</b> read</div>\
             <div class=\"split\"><i class=\"s-ok\" style=\"width:{:.2}%\"></i>\
             <i class=\"s-bad\" style=\"width:{:.2}%\"></i><i class=\"s-cancel\" style=\"width:{:.2}%\"></i></div></div>",
            integer("rows_ok", s.rows_ok),
            integer("rows_failed", s.rows_failed),
            integer("rows_cancelled", s.rows_cancelled),
            integer("rows_read", s.rows_read),
            pct(s.rows_ok),
            pct(s.rows_failed.saturating_sub(s.rows_cancelled)),
            pct(s.rows_cancelled),
        );
        let _ = write!(
            self.out,
            "<div class=\"card\"><div class=\"label\">LLM calls</div><div class=\"big\">{}</div>\
             <div class=\"sub\"><b>{}</b> failed · <b>{}</b> from the store</div></div>",
            integer("calls", s.llm_calls),
            integer("failed_calls", s.llm_calls_failed),
            integer("cached_calls", s.llm_calls_cached),
        );
        let _ = write!(
            self.out,
            "<div class=\"card\"><div class=\"label\">Tokens in</div><div class=\"big\">{}</div>\
             <div class=\"sub\"><b>{}</b> out · <b>{}</b> saved by the store</div></div>",
            integer("tokens_in", s.tokens_in),
            integer("tokens_out", s.tokens_out),
            integer("saved_tokens", s.saved_tokens),
        );
        let cost = json_f64(s.cost_usd);
        let unpriced = if s.unpriced_calls > 0 || cost.is_none() {
            format!(
                "unpriced calls: <b>{}</b> · ",
                integer("unpriced_calls", s.unpriced_calls)
            )
        } else {
            String::new()
        };
        let _ = write!(
            self.out,
            "<div class=\"card\"><div class=\"label\">Cost</div><div class=\"big\">{}</div>\
             <div class=\"sub\">{unpriced}<b>{}</b> saved by the store</div></div>",
            number("cost_usd", cost, Unit::Usd, "unknown"),
            number(
                "saved_cost_usd",
                json_f64(Some(s.saved_cost_usd)),
                Unit::Usd,
                "unknown"
            ),
        );
        let _ = write!(
            self.out,
            "<div class=\"card\"><div class=\"label\">Duration</div><div class=\"big\">{}</div>\
             <div class=\"sub\">rows done in <b>{}</b></div></div>",
            number(
                "duration_s",
                Some(s.elapsed.as_secs_f64()),
                Unit::Secs,
                "n/a"
            ),
            number(
                "rows_duration_s",
                Some(s.rows_elapsed.as_secs_f64()),
                Unit::Secs,
                "n/a"
            ),
        );
        self.push("</section>");
    }

    fn transforms(&mut self, s: &RunSummary) {
        self.push("<h2>Transforms</h2>");
        if s.transforms.is_empty() {
            self.push("<div class=\"panel empty\">No transform.</div>");
        }
        for (i, t) in s.transforms.iter().enumerate() {
            self.transform(i, t);
        }
    }

    fn transform(&mut self, i: usize, t: &TransformSummary) {
        let p = |key: &str| format!("transforms.{i}.{key}");
        let u = &t.usage;
        let l = &u.latency;
        let _ = write!(
            self.out,
            "<section class=\"panel\"><h3>{}</h3><div class=\"what\">{} · <span class=\"mono\">{}</span> · price: {}</div>",
            text(&p("label"), &t.label),
            text(&p("plugin"), &t.plugin),
            text(&p("model"), &t.model),
            text(&p("price"), &t.price),
        );
        let _ = write!(
            self.out,
            "<table class=\"stats\"><thead><tr><th class=\"n\">Calls</th><th class=\"n\">From the store</th>\
             <th class=\"n\">Failed</th><th class=\"n\">Retries</th><th class=\"n\">Tokens in</th>\
             <th class=\"n\">Tokens out</th><th class=\"n\">Cost</th></tr></thead><tbody><tr>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr></tbody></table>",
            integer(&p("calls"), u.calls),
            integer(&p("cached_calls"), u.cached_calls),
            integer(&p("failed_calls"), u.failed_calls),
            integer(&p("retries"), u.retries),
            integer(&p("tokens_in"), u.tokens_in),
            integer(&p("tokens_out"), u.tokens_out),
            number(
                &p("cost_usd"),
                json_f64(u.known_cost()),
                Unit::Usd,
                "unknown"
            ),
        );
        if u.unpriced_calls > 0 {
            let _ = write!(
                self.out,
                "<div class=\"what\" style=\"margin:6px 10px 0\">calls without a price: {} — the cost is unknown</div>",
                integer(&p("unpriced_calls"), u.unpriced_calls)
            );
        }

        let quantiles = [
            ("p50", l.quantile_ms(0.50)),
            ("p95", l.quantile_ms(0.95)),
            ("p99", l.quantile_ms(0.99)),
        ];
        self.push("<div class=\"lat\">");
        for (name, v) in quantiles {
            let _ = write!(
                self.out,
                "<span class=\"chip {name}\">{name} <b>{}</b></span>",
                number(
                    &p(&format!("latency_ms.{name}")),
                    json_f64(v),
                    Unit::Ms,
                    "n/a"
                )
            );
        }
        let max = (l.count() > 0).then(|| l.max_ms());
        let _ = write!(
            self.out,
            "<span class=\"chip\">max <b>{}</b></span></div>",
            number(&p("latency_ms.max"), json_f64(max), Unit::Ms, "n/a")
        );
        let bars = l.bars(HISTOGRAM_BARS);
        if bars.is_empty() {
            self.push("<div class=\"empty\">No call was timed.</div>");
        } else {
            self.push(&histogram(i, &bars, &quantiles));
        }

        self.push("<div class=\"kinds\">");
        if u.failures.is_empty() {
            self.push("<span class=\"muted\">No failed call.</span>");
        } else {
            self.push("<span class=\"muted\">Failed calls by kind:</span>");
            for (kind, n) in &u.failures {
                let _ = write!(
                    self.out,
                    "<span class=\"kind\">{} × {}</span>",
                    escape(kind),
                    integer(&p(&format!("failures.{kind}")), *n)
                );
            }
        }
        self.push("</div></section>");
    }

    fn rows(&mut self, s: &RunSummary) {
        let _ = write!(
            self.out,
            "<h2>Failed rows<span class=\"count\">{} in all{}</span></h2><div class=\"panel\">",
            integer("rows_failed", s.rows_failed),
            if s.rows_failed as usize > s.failed_rows.len() {
                ", the first ones below"
            } else {
                ""
            }
        );
        if s.failed_rows.is_empty() {
            self.push("<div class=\"empty\">No row failed.</div>");
        } else {
            self.push(
                "<table><thead><tr><th class=\"n\">#</th><th>Id</th><th>Transform</th><th>Kind</th>\
                 <th>Error</th><th class=\"n\">Time</th></tr></thead><tbody>",
            );
            for (j, row) in s.failed_rows.iter().enumerate() {
                self.row_line(&format!("failed_rows.{j}"), row);
            }
            self.push("</tbody></table>");
        }
        self.push("</div>");

        self.push("<h2>Slowest rows</h2><div class=\"panel\">");
        if s.slowest_rows.is_empty() {
            self.push("<div class=\"empty\">No row was written.</div>");
        } else {
            self.push(
                "<table><thead><tr><th class=\"n\">#</th><th>Id</th><th class=\"n\">Time</th>\
                 <th style=\"width:40%\"></th><th>Outcome</th></tr></thead><tbody>",
            );
            let slowest = s
                .slowest_rows
                .iter()
                .map(|r| r.elapsed.as_secs_f64())
                .fold(0.0, f64::max);
            for (j, row) in s.slowest_rows.iter().enumerate() {
                self.slow_line(&format!("slowest_rows.{j}"), row, slowest);
            }
            self.push("</tbody></table>");
        }
        self.push("</div>");
    }

    fn slow_line(&mut self, at: &str, row: &RowNote, slowest: f64) {
        let p = |key: &str| format!("{at}.{key}");
        let secs = row.elapsed.as_secs_f64();
        let share = if slowest > 0.0 {
            (secs / slowest * 100.0).clamp(0.0, 100.0)
        } else {
            0.0
        };
        let outcome = match &row.error {
            Some((transform, kind, _)) => format!(
                "<span class=\"kind\">{}</span> <span class=\"muted\">in {}</span>",
                text(&p("kind"), kind),
                text(&p("transform"), transform)
            ),
            None => "<span class=\"badge ok\">ok</span>".to_string(),
        };
        let _ = write!(
            self.out,
            "<tr><td class=\"n muted\">{}</td><td class=\"mono id\">{}</td><td class=\"n\">{}</td>\
             <td><div class=\"split\" style=\"margin-top:7px\"><i class=\"s-time\" style=\"width:{share:.2}%\"></i></div></td>\
             <td>{outcome}</td></tr>",
            integer(&p("index"), row.index),
            text(&p("id"), &row.id),
            number(&p("duration_ms"), Some(secs * 1000.0), Unit::Ms, "n/a"),
        );
    }

    fn row_line(&mut self, at: &str, row: &RowNote) {
        let p = |key: &str| format!("{at}.{key}");
        let _ = write!(
            self.out,
            "<tr><td class=\"n muted\">{}</td><td class=\"mono id\">{}</td>",
            integer(&p("index"), row.index),
            text(&p("id"), &row.id),
        );
        match &row.error {
            Some((transform, kind, message)) => {
                let _ = write!(
                    self.out,
                    "<td>{}</td><td><span class=\"kind\">{}</span></td><td class=\"err\">{}</td>",
                    text(&p("transform"), transform),
                    text(&p("kind"), kind),
                    text(&p("error"), message),
                );
            }
            None => self.push(
                "<td class=\"muted\">—</td><td><span class=\"badge ok\">ok</span></td><td class=\"muted\">—</td>",
            ),
        }
        let _ = write!(
            self.out,
            "<td class=\"n\">{}</td></tr>",
            number(
                &p("duration_ms"),
                Some(row.elapsed.as_secs_f64() * 1000.0),
                Unit::Ms,
                "n/a"
            )
        );
    }

    fn tracing(&mut self, exporters: &[ExportSummary]) {
        self.push("<h2>Tracing delivery</h2><div class=\"panel\">");
        if exporters.is_empty() {
            self.push("<div class=\"empty\">No tracing exporter.</div></div>");
            return;
        }
        self.push(
            "<div class=\"legend\"><span><i class=\"s-sent\"></i>sent</span><span><i class=\"s-dropped\"></i>dropped</span>\
             <span><i class=\"s-failed\"></i>failed</span><span><i class=\"s-pending\"></i>pending</span>\
             <span><i class=\"s-kept\"></i>kept for <code>elspeth traces replay</code></span></div>\
             <table><thead><tr><th>Exporter</th><th class=\"n\">Recorded</th><th class=\"n\">Sent</th>\
             <th class=\"n\">Dropped</th><th class=\"n\">Failed</th><th class=\"n\">Pending</th>\
             <th class=\"n\">Kept</th><th style=\"width:22%\">Spans</th></tr></thead><tbody>",
        );
        for (i, e) in exporters.iter().enumerate() {
            let p = |key: &str| format!("tracing.{i}.{key}");
            let _ = write!(
                self.out,
                "<tr><td class=\"mono\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>",
                text(&p("exporter"), &e.exporter),
                integer(&p("recorded"), e.recorded),
                integer(&p("sent"), e.sent),
                integer(&p("dropped"), e.dropped),
                integer(&p("failed"), e.failed),
                integer(&p("pending"), e.pending),
                integer(&p("kept"), e.kept),
            );
            let whole = (e.sent + e.dropped + e.failed + e.pending + e.kept)
                .max(e.recorded)
                .max(1) as f64;
            self.push("<div class=\"split\" style=\"margin-top:6px\">");
            for (class, n) in [
                ("s-sent", e.sent),
                ("s-dropped", e.dropped),
                ("s-failed", e.failed),
                ("s-pending", e.pending),
                ("s-kept", e.kept),
            ] {
                if n > 0 {
                    let _ = write!(
                        self.out,
                        "<i class=\"{class}\" style=\"width:{:.2}%\"></i>",
                        n as f64 / whole * 100.0
                    );
                }
            }
            self.push("</div>");
            if !e.is_exact() {
                self.push(
                    "<div class=\"flag bad\">⚠ not exact: the states do not add up to the spans recorded</div>",
                );
            } else if e.sent == e.recorded {
                self.push("<div class=\"flag ok\">✓ every span sent</div>");
            } else {
                self.push("<div class=\"flag ok\">✓ every span accounted for</div>");
            }
            self.push("</td></tr>");
        }
        self.push("</tbody></table></div>");
    }

    fn footer(&mut self) {
        let _ = writeln!(
            self.out,
            "<footer>Written by elspeth {} from the run's summary (<code>elspeth run --summary-json</code>); \
             every figure names its key in a <code>data-figure</code> attribute.</footer></main></body></html>",
            env!("CARGO_PKG_VERSION")
        );
    }
}

/// A text figure.
fn text(path: &str, value: &str) -> String {
    format!(
        "<span data-figure=\"{}\">{}</span>",
        escape(path),
        escape(value)
    )
}

/// An integer figure.
fn integer(path: &str, n: u64) -> String {
    format!(
        "<span class=\"num\" data-figure=\"{}\" data-value=\"{n}\">{}</span>",
        escape(path),
        int(n)
    )
}

/// A float figure; `missing` is the text of `None`.
fn number(path: &str, value: Option<f64>, unit: Unit, missing: &str) -> String {
    let (raw, shown) = match value {
        Some(x) => (raw_f64(x), format_value(x, unit)),
        None => ("null".to_string(), missing.to_string()),
    };
    format!(
        "<span class=\"num\" data-figure=\"{}\" data-value=\"{raw}\">{}</span>",
        escape(path),
        escape(&shown)
    )
}

/// `x` exactly (the shortest text that reads back as the same `f64`).
fn raw_f64(x: f64) -> String {
    if x.is_finite() {
        format!("{x:?}")
    } else {
        "null".to_string()
    }
}

/// The SVG bar chart of transform `t`'s latency `bars` (equal widths: the
/// buckets are equal on a log scale), with the `quantiles` marked.
fn histogram(t: usize, bars: &[LatencyBucket], quantiles: &[(&str, Option<f64>); 3]) -> String {
    const W: f64 = 760.0;
    const H: f64 = 220.0;
    const LEFT: f64 = 14.0;
    const RIGHT: f64 = 14.0;
    const TOP: f64 = 46.0;
    const BOTTOM: f64 = 40.0;
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let n = bars.len();
    let bw = plot_w / n as f64;
    let tallest = bars.iter().map(|b| b.calls).max().unwrap_or(0).max(1) as f64;
    let base = TOP + plot_h;
    let p = |key: String| format!("transforms.{t}.latency_histogram.{key}");

    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"latency histogram\">\
         <title>Latency of the calls (log scale)</title>"
    );
    for (j, b) in bars.iter().enumerate() {
        let x = LEFT + j as f64 * bw;
        let h = if b.calls > 0 {
            (b.calls as f64 / tallest * plot_h).max(2.0)
        } else {
            0.0
        };
        let _ = write!(
            svg,
            "<g><title>{}–{} ms: {} calls</title><rect class=\"bar\" x=\"{:.2}\" y=\"{:.2}\" width=\"{:.2}\" \
             height=\"{h:.2}\" rx=\"2\" data-figure=\"{}\" data-value=\"{}\"></rect></g>",
            fixed(b.from_ms, ms_decimals(b.from_ms)),
            fixed(b.to_ms, ms_decimals(b.to_ms)),
            int(b.calls),
            x + 1.0,
            base - h,
            (bw - 2.0).max(1.0),
            escape(&p(format!("{j}.calls"))),
            b.calls,
        );
        if b.calls > 0 {
            let _ = write!(
                svg,
                "<text class=\"cnt\" x=\"{:.2}\" y=\"{:.2}\" text-anchor=\"middle\" data-figure=\"{}\" data-value=\"{}\">{}</text>",
                x + bw / 2.0,
                base - h - 4.0,
                escape(&p(format!("{j}.calls"))),
                b.calls,
                int(b.calls),
            );
        }
    }
    let _ = write!(
        svg,
        "<line class=\"axis\" x1=\"{LEFT}\" y1=\"{base}\" x2=\"{}\" y2=\"{base}\"></line>",
        W - RIGHT
    );
    // Ticks at bar edges, about 8 of them.
    let step = n.div_ceil(8).max(1);
    let mut edges: Vec<usize> = (0..n).step_by(step).collect();
    if let Some(&last) = edges.last()
        && last > 0
        && (n - last) * 2 < step
    {
        // Too close to the right end: that tick only.
        edges.pop();
    }
    edges.push(n);
    for edge in edges {
        let x = LEFT + edge as f64 * bw;
        let (key, value) = if edge < n {
            (format!("{edge}.from_ms"), bars[edge].from_ms)
        } else {
            (format!("{}.to_ms", n - 1), bars[n - 1].to_ms)
        };
        let anchor = match edge {
            0 => "start",
            e if e == n => "end",
            _ => "middle",
        };
        let _ = write!(
            svg,
            "<line class=\"axis\" x1=\"{x:.2}\" y1=\"{base}\" x2=\"{x:.2}\" y2=\"{:.2}\"></line>\
             <text x=\"{x:.2}\" y=\"{:.2}\" text-anchor=\"{anchor}\" data-figure=\"{}\" data-value=\"{}\">{}</text>",
            base + 5.0,
            base + 18.0,
            escape(&p(key)),
            raw_f64(value),
            format_value(value, Unit::MsBare),
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{:.2}\" y=\"{:.2}\" text-anchor=\"middle\">latency, ms (log scale)</text>",
        LEFT + plot_w / 2.0,
        H - 6.0
    );
    // Percentile markers: one per value (`p95 · p99` when they are
    // equal), labels staggered when close.
    let mut marks: Vec<(Vec<&str>, f64)> = Vec::new();
    for (name, v) in quantiles {
        let Some(v) = v.filter(|v| v.is_finite()) else {
            continue;
        };
        match marks.last_mut() {
            Some((names, last)) if *last == v => names.push(name),
            _ => marks.push((vec![name], v)),
        }
    }
    let mut last_label: Option<(f64, usize)> = None;
    for (names, v) in marks {
        let x = LEFT + position(bars, v) * bw;
        let level = match last_label {
            Some((px, lvl)) if x - px < 48.0 => (lvl + 1) % 3,
            _ => 0,
        };
        last_label = Some((x, level));
        let class = format!("m{}", &names[names.len() - 1][1..]);
        let label_y = 12.0 + level as f64 * 11.0;
        let anchor = if x > W - RIGHT - 30.0 {
            "end"
        } else if x < LEFT + 30.0 {
            "start"
        } else {
            "middle"
        };
        let _ = write!(
            svg,
            "<line class=\"{class}\" x1=\"{x:.2}\" y1=\"{:.2}\" x2=\"{x:.2}\" y2=\"{base}\" stroke-width=\"1.5\" \
             stroke-dasharray=\"4 3\"></line><text class=\"{class}\" x=\"{x:.2}\" y=\"{label_y:.2}\" \
             text-anchor=\"{anchor}\">{}</text>",
            label_y + 4.0,
            names.join(" · "),
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Where `v` ms falls on the bars, in bar widths from the left (log
/// interpolation within a bar).
fn position(bars: &[LatencyBucket], v: f64) -> f64 {
    for (j, b) in bars.iter().enumerate() {
        if v <= b.to_ms {
            let frac = if b.from_ms > 0.0 && b.to_ms > b.from_ms && v > b.from_ms {
                (v / b.from_ms).ln() / (b.to_ms / b.from_ms).ln()
            } else if b.from_ms <= 0.0 && b.to_ms > 0.0 {
                (v / b.to_ms).clamp(0.0, 1.0)
            } else {
                0.0
            };
            return j as f64 + frac.clamp(0.0, 1.0);
        }
    }
    bars.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{Cost, LlmError, LlmErrorKind, LlmResponse, Usage};
    use crate::pipeline::StopReason;
    use crate::usage::UsageMeter;
    use elspeth_test_support::figures::{at, check_figures, figures};
    use std::path::PathBuf;
    use std::time::Duration;

    fn transform(
        label: &str,
        priced: bool,
        failures: &[LlmErrorKind],
        ms: &[u64],
    ) -> TransformSummary {
        let meter = UsageMeter::new();
        for (k, &latency) in ms.iter().enumerate() {
            meter.record(&LlmResponse {
                usage: Some(Usage::new(100 + k as u64, 20)),
                cost: (priced || k > 0).then(|| Cost::reported(0.000_125)),
                ..Default::default()
            });
            meter.record_latency(Duration::from_millis(latency));
        }
        for kind in failures {
            meter.record_result(&Err(LlmError::new(*kind, "boom")));
            meter.record_retry();
            meter.record_retry();
        }
        TransformSummary {
            label: label.to_string(),
            plugin: "azure_llm".into(),
            model: "gpt-4o-mini".into(),
            price: "gpt-4o-mini in the price table of 2026-06-21".into(),
            usage: meter.snapshot(),
        }
    }

    fn summary() -> RunSummary {
        let slow: Vec<u64> = (1..=60).map(|i| i * 7 + 3).chain([1500, 2200]).collect();
        RunSummary {
            pipeline: "tickets <script>alert('x')</script> & co".into(),
            rows_read: 14,
            rows_ok: 11,
            rows_failed: 3,
            rows_cancelled: 1,
            llm_calls: 70,
            llm_calls_failed: 3,
            tokens_in: 123_456,
            tokens_out: 7_890,
            cost_usd: None,
            unpriced_calls: 1,
            transforms: vec![
                transform(
                    "transforms[0] (azure_llm)",
                    true,
                    &[
                        LlmErrorKind::Server,
                        LlmErrorKind::Server,
                        LlmErrorKind::RateLimited,
                    ],
                    &slow,
                ),
                transform(
                    "transforms[1] (openrouter_llm)",
                    false,
                    &[],
                    &[40, 41, 45, 90],
                ),
                transform("transforms[2] (idle)", true, &[], &[]),
            ],
            failed_rows: vec![
                RowNote {
                    index: 3,
                    id: "<b>row \"3\"</b>".into(),
                    elapsed: Duration::from_micros(1_234_567),
                    error: Some((
                        "transforms[0] (azure_llm)".into(),
                        "server_error".into(),
                        "HTTP 500: <html>oops & 'quotes'</html>".into(),
                    )),
                },
                RowNote {
                    index: 9,
                    id: "row-9".into(),
                    elapsed: Duration::from_millis(4),
                    error: Some((
                        "transforms[1] (openrouter_llm)".into(),
                        "cancelled".into(),
                        "stopped".into(),
                    )),
                },
            ],
            slowest_rows: vec![RowNote {
                index: 1,
                id: "ticket-1".into(),
                elapsed: Duration::from_millis(2_300),
                error: None,
            }],
            budget_usd: Some(0.5),
            exporters: vec![
                ExportSummary {
                    exporter: "langfuse <host>".into(),
                    recorded: 70,
                    sent: 70,
                    ..Default::default()
                },
                ExportSummary {
                    exporter: "azure_ai application insights".into(),
                    recorded: 70,
                    sent: 52,
                    dropped: 12,
                    failed: 3,
                    pending: 1,
                    kept: 2,
                },
            ],
            elapsed: Duration::from_millis(3_456),
            rows_elapsed: Duration::from_millis(3_100),
            interrupted: true,
            stop_reason: Some(StopReason::Budget {
                limit_usd: 0.5,
                spent_usd: 0.49,
            }),
            output: PathBuf::from("out/triaged.jsonl"),
            llm_calls_cached: 2,
            saved_tokens: 240,
            saved_cost_usd: 0.0003,
            store: Some(PathBuf::from("ticket-triage.elspeth.db")),
            error_output: None,
        }
    }

    #[test]
    fn every_figure_is_the_summary_json() {
        let s = summary();
        let json = s.to_json(3);
        let html = render(&s, 3);
        let paths = check_figures(&html, &json);
        assert!(paths.len() > 80, "{}", paths.len());
        for want in [
            "pipeline",
            "exit_code",
            "rows_ok",
            "rows_failed",
            "calls",
            "cached_calls",
            "tokens_in",
            "tokens_out",
            "cost_usd",
            "duration_s",
            "budget_usd",
            "stop_reason",
            "transforms.0.label",
            "transforms.0.calls",
            "transforms.0.failed_calls",
            "transforms.0.failures.server_error",
            "transforms.0.failures.rate_limited",
            "transforms.0.retries",
            "transforms.0.tokens_in",
            "transforms.0.tokens_out",
            "transforms.0.cost_usd",
            "transforms.0.latency_ms.p50",
            "transforms.0.latency_ms.p95",
            "transforms.0.latency_ms.p99",
            "transforms.0.latency_ms.max",
            "transforms.0.latency_histogram.0.calls",
            "transforms.1.cost_usd",
            "transforms.2.latency_ms.p50",
            "tracing.0.sent",
            "tracing.1.exporter",
            "tracing.1.recorded",
            "tracing.1.sent",
            "tracing.1.dropped",
            "tracing.1.failed",
            "tracing.1.pending",
            "tracing.1.kept",
            "failed_rows.0.id",
            "failed_rows.0.transform",
            "failed_rows.0.kind",
            "failed_rows.0.error",
            "failed_rows.1.id",
            "slowest_rows.0.id",
            "slowest_rows.0.duration_ms",
        ] {
            assert!(paths.iter().any(|p| p == want), "{want} is not shown");
        }
        // Every histogram bar is there.
        let bars = json["transforms"][0]["latency_histogram"]
            .as_array()
            .unwrap();
        assert!(bars.len() > 5);
        for j in 0..bars.len() {
            let path = format!("transforms.0.latency_histogram.{j}.calls");
            assert!(paths.contains(&path), "{path}");
        }
    }

    #[test]
    fn unknown_cost_is_unknown_not_zero() {
        let s = summary();
        let html = render(&s, 1);
        let cost = figures(&html)
            .into_iter()
            .find(|f| f.0 == "cost_usd")
            .unwrap();
        assert_eq!(
            (cost.1.as_deref(), cost.2.as_str()),
            (Some("null"), "unknown")
        );
        let t1 = figures(&html)
            .into_iter()
            .find(|f| f.0 == "transforms.1.cost_usd")
            .unwrap();
        assert_eq!(t1.2, "unknown");
        let known = RunSummary {
            cost_usd: Some(0.000_217),
            ..summary()
        };
        let cost = figures(&render(&known, 0))
            .into_iter()
            .find(|f| f.0 == "cost_usd")
            .unwrap();
        assert_eq!(cost.2, "$0.000217");
    }

    #[test]
    fn user_text_is_escaped_and_nothing_is_fetched() {
        let html = render(&summary(), 1);
        for bad in ["<script", "<b>row", "<html>oops", "<host>"] {
            assert!(!html.contains(bad), "{bad} in the page");
        }
        assert!(html.contains("&lt;b&gt;row &quot;3&quot;&lt;/b&gt;"));
        assert!(html.contains("HTTP 500: &lt;html&gt;oops &amp; &#39;quotes&#39;&lt;/html&gt;"));
        for fetch in [
            "http://", "https://", "src=", "href=", "url(", "@import", "<link", "<img", "<iframe",
        ] {
            assert!(!html.contains(fetch), "{fetch} in the page");
        }
        // Balanced: every section and table closed.
        for tag in ["section", "table", "svg", "div", "span", "tr", "td"] {
            let opened = html.matches(&format!("<{tag} ")).count()
                + html.matches(&format!("<{tag}>")).count();
            let closed = html.matches(&format!("</{tag}>")).count();
            assert_eq!(opened, closed, "<{tag}>");
        }
        assert_eq!(
            html.matches("<svg").count(),
            2,
            "one chart per transform with calls"
        );
    }

    #[test]
    fn tracing_that_does_not_add_up_is_flagged() {
        let mut s = summary();
        assert!(!render(&s, 1).contains("not exact"));
        s.exporters[1].recorded = 71;
        let html = render(&s, 1);
        assert_eq!(html.matches("not exact").count(), 1);
    }

    #[test]
    fn an_empty_run_renders() {
        let html = render(&RunSummary::default(), 0);
        assert!(html.contains("No transform."));
        assert!(html.contains("No row failed."));
        assert!(html.contains("No tracing exporter."));
        assert!(html.contains("all rows ok"));
        let json = RunSummary::default().to_json(0);
        for (path, _, _) in figures(&html) {
            assert!(at(&json, &path).is_some(), "{path}");
        }
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(int(0), "0");
        assert_eq!(int(1_234_567), "1,234,567");
        assert_eq!(int(999), "999");
        assert_eq!(format_value(0.000_217, Unit::Usd), "$0.000217");
        assert_eq!(format_value(12.346, Unit::Usd), "$12.35");
        assert_eq!(format_value(1234.5, Unit::Usd), "$1,234.50");
        assert_eq!(format_value(0.0, Unit::Usd), "$0.00");
        assert_eq!(format_value(0.5, Unit::Usd), "$0.50");
        assert_eq!(format_value(0.0003, Unit::Usd), "$0.0003");
        assert_eq!(format_value(0.01234, Unit::Usd), "$0.0123");
        assert_eq!(format_value(1234.4, Unit::Ms), "1,234 ms");
        assert_eq!(format_value(42.37, Unit::Ms), "42.4 ms");
        assert_eq!(format_value(0.0123, Unit::Ms), "0.0123 ms");
        assert_eq!(format_value(3.456, Unit::Secs), "3.46 s");
        assert_eq!(format_value(0.0, Unit::MsBare), "0");
        assert_eq!(format_value(0.0456, Unit::Secs), "0.046 s");
        assert_eq!(raw_f64(0.1), "0.1");
        assert_eq!(raw_f64(f64::NAN), "null");
    }

    #[test]
    fn markers_fall_inside_their_bar() {
        let bars = [
            LatencyBucket {
                from_ms: 0.0,
                to_ms: 1.0,
                calls: 1,
            },
            LatencyBucket {
                from_ms: 1.0,
                to_ms: 4.0,
                calls: 1,
            },
        ];
        assert_eq!(position(&bars, 0.5), 0.5);
        assert!((position(&bars, 2.0) - 1.5).abs() < 1e-9);
        assert_eq!(position(&bars, 10.0), 2.0);
    }
}
