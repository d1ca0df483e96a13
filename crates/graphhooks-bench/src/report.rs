//! Figures and how they are shown: per-scenario results, latency percentiles, the table on
//! stdout and the JSON document (`--json`), and the bars as information (never an exit
//! code: the bench makes no timing assertions).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::ceiling::Ceiling;

/// Latency percentiles in milliseconds (nearest rank).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Latency {
    pub(crate) samples: usize,
    pub(crate) p50_ms: f64,
    pub(crate) p90_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
    pub(crate) mean_ms: f64,
}

impl Latency {
    /// Percentiles of `samples` (any order); `None` when empty.
    pub(crate) fn of(mut samples: Vec<Duration>) -> Option<Latency> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let rank = |p: f64| {
            let index = ((p * samples.len() as f64).ceil() as usize).saturating_sub(1);
            ms(samples[index.min(samples.len() - 1)])
        };
        let total: f64 = samples.iter().map(|d| ms(*d)).sum();
        Some(Latency {
            samples: samples.len(),
            p50_ms: rank(0.50),
            p90_ms: rank(0.90),
            p99_ms: rank(0.99),
            max_ms: ms(samples[samples.len() - 1]),
            mean_ms: total / samples.len() as f64,
        })
    }
}

/// Everything one scenario measured.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct ScenarioResult {
    pub(crate) name: String,
    pub(crate) description: String,
    /// Flags `serve` ran with beyond the common ones.
    pub(crate) server_flags: Vec<String>,
    /// Changes the load client sent, and those answered 202.
    pub(crate) changes_sent: u64,
    pub(crate) changes_accepted: u64,
    /// `POST /admin/changes` calls that failed.
    pub(crate) post_errors: u64,
    /// Arrivals expected at healthy callbacks ((app, change) pairs for fan-out).
    pub(crate) expected_arrivals: u64,
    /// Of those, how many arrived at least once, how many never, and extra copies.
    pub(crate) arrived: u64,
    pub(crate) missing: u64,
    pub(crate) duplicates: u64,
    /// Changes the receiver could not place (should be 0).
    pub(crate) unexpected: u64,
    /// POSTs received by healthy callbacks.
    pub(crate) posts_received: u64,
    /// Changes accepted per second, first POST sent → last 202.
    pub(crate) accepted_per_s: Option<f64>,
    /// Changes delivered per second end to end, first POST sent → last arrival.
    pub(crate) delivered_per_s: Option<f64>,
    /// Notification POSTs received per second over the same span.
    pub(crate) posts_per_s: Option<f64>,
    /// The two rates above as fractions of the bare ceiling.
    pub(crate) delivered_vs_ceiling: Option<f64>,
    pub(crate) posts_vs_ceiling: Option<f64>,
    /// Throughput scenarios: the bare ceiling measured again right after this scenario (its
    /// server stopped), and the delivered rate as a fraction of it. A host whose speed changes
    /// within a run shows here (see [`ScenarioResult::delivered_vs_higher_ceiling`]).
    pub(crate) ceiling_after: Option<Ceiling>,
    pub(crate) delivered_vs_ceiling_after: Option<f64>,
    /// Throughput scenarios: the ceiling from a client in a separate process (as the server
    /// is) measured right after, and the delivered rate as a fraction of the higher of that
    /// one and the one before the scenarios. The unbatched bar takes it into account too (see
    /// [`ScenarioResult::delivered_vs_higher_ceiling`]). Which way of measuring gives the
    /// higher ceiling depends on the host: the in-process one on `epyc5`, this one on `xeon2`
    /// (docs/PERFORMANCE.md).
    pub(crate) ceiling_separate_after: Option<Ceiling>,
    pub(crate) delivered_vs_separate_ceiling: Option<f64>,
    /// 202 → arrival (fan-out: 202 → the last of the change's arrivals).
    pub(crate) latency: Option<Latency>,
    pub(crate) latency_definition: String,
    /// Arrivals seen before the client had read the 202 (latency counted as 0).
    pub(crate) arrived_before_202: u64,
    /// Server CPU seconds over the measured phase, and as a share of one core.
    pub(crate) server_cpu_s: f64,
    pub(crate) server_cpu_cores: f64,
    /// Server memory: RSS right after start, RSS at the end, peak (VmHWM), MiB.
    pub(crate) server_rss_start_mib: f64,
    pub(crate) server_rss_mib: f64,
    pub(crate) server_peak_rss_mib: f64,
    /// CPU seconds of this bench process (receiver and load client) over the measured phase.
    pub(crate) bench_cpu_s: f64,
    /// CPU seconds of the PostgreSQL processes (PostgreSQL runs only).
    pub(crate) database_cpu_s: Option<f64>,
    /// CPU seconds of every other process on the machine over the measured phase (noise: the
    /// figures are only clean when this is near 0).
    pub(crate) other_cpu_s: f64,
    /// Seconds of setup (apps, grants, subscriptions) and of the measured phase.
    pub(crate) setup_s: f64,
    pub(crate) measured_s: f64,
    /// Scenario-specific figures.
    pub(crate) extra: BTreeMap<String, Value>,
    pub(crate) notes: Vec<String>,
}

impl ScenarioResult {
    /// The delivered rate as a fraction of the highest ceiling measured for it: before the
    /// scenarios and right after this scenario, in the receiver's process and from a separate
    /// one. On a host whose speed changes within a run this is the conservative reading: the
    /// ratio is never taken against a ceiling measured while the host was slow, nor against
    /// the lower of the two ways of measuring it.
    pub(crate) fn delivered_vs_higher_ceiling(&self) -> Option<f64> {
        [
            self.delivered_vs_ceiling,
            self.delivered_vs_ceiling_after,
            self.delivered_vs_separate_ceiling,
        ]
        .into_iter()
        .flatten()
        .reduce(f64::min)
    }
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    pub(crate) bench_version: String,
    pub(crate) server_version: String,
    pub(crate) database: String,
    pub(crate) cores: usize,
    pub(crate) memory_mib: u64,
    pub(crate) cpu_model: String,
    pub(crate) quick: bool,
    pub(crate) ceiling: Option<Ceiling>,
    /// The same ceiling, from a client in a separate process.
    pub(crate) ceiling_separate: Option<Ceiling>,
    pub(crate) scenarios: Vec<ScenarioResult>,
    pub(crate) bars: Vec<Bar>,
    pub(crate) wall_s: f64,
    /// Expected arrivals that never came, over every scenario.
    pub(crate) missing_total: u64,
}

/// One of the bars, measured (information only).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Bar {
    pub(crate) bar: String,
    pub(crate) measured: String,
    pub(crate) met: bool,
}

fn rate(value: Option<f64>) -> String {
    match value {
        Some(v) if v >= 100.0 => group_thousands(v.round() as u64),
        Some(v) => format!("{v:.1}"),
        None => "-".into(),
    }
}

fn group_thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (index, c) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn percent(value: Option<f64>) -> String {
    value.map_or("-".into(), |v| format!("{:.0}%", v * 100.0))
}

fn ms(value: Option<f64>) -> String {
    value.map_or("-".into(), |v| {
        if v >= 100.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.1}")
        }
    })
}

impl Report {
    /// The human-readable form.
    pub(crate) fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "graphhooks-bench {} against {} on {} ({} cores, {} MiB memory, {}){}",
            self.bench_version,
            self.server_version,
            self.database,
            self.cores,
            self.memory_mib,
            self.cpu_model,
            if self.quick { " [quick]" } else { "" }
        );
        if let Some(ceiling) = &self.ceiling {
            let _ = writeln!(
                out,
                "bare ceiling: {} POSTs/s (hyper-util + hyper-rustls/ring, HTTP/1.1, {} concurrent, {:.1} s, {} errors)",
                rate(Some(ceiling.posts_per_s)),
                ceiling.concurrency,
                ceiling.seconds,
                ceiling.errors
            );
        }
        if let Some(ceiling) = &self.ceiling_separate {
            let _ = writeln!(
                out,
                "bare ceiling from a client in a separate process: {} POSTs/s ({:.1} s, {} errors)",
                rate(Some(ceiling.posts_per_s)),
                ceiling.seconds,
                ceiling.errors
            );
        }
        let _ = writeln!(out);
        let s = &self.scenarios;
        type Row = (&'static str, Box<dyn Fn(&ScenarioResult) -> String>);
        let rows: Vec<Row> = vec![
            (
                "changes sent",
                Box::new(|r| group_thousands(r.changes_sent)),
            ),
            (
                "expected arrivals",
                Box::new(|r| group_thousands(r.expected_arrivals)),
            ),
            ("missing", Box::new(|r| group_thousands(r.missing))),
            ("duplicates", Box::new(|r| group_thousands(r.duplicates))),
            ("accepted changes/s", Box::new(|r| rate(r.accepted_per_s))),
            (
                "delivered changes/s (e2e)",
                Box::new(|r| rate(r.delivered_per_s)),
            ),
            (
                "  vs bare ceiling",
                Box::new(|r| percent(r.delivered_vs_ceiling)),
            ),
            (
                "bare ceiling right after",
                Box::new(|r| rate(r.ceiling_after.as_ref().map(|c| c.posts_per_s))),
            ),
            (
                "  delivered vs it",
                Box::new(|r| percent(r.delivered_vs_ceiling_after)),
            ),
            (
                "separate-process ceiling after",
                Box::new(|r| rate(r.ceiling_separate_after.as_ref().map(|c| c.posts_per_s))),
            ),
            (
                "  delivered vs the higher",
                Box::new(|r| percent(r.delivered_vs_separate_ceiling)),
            ),
            ("POSTs received/s", Box::new(|r| rate(r.posts_per_s))),
            (
                "  vs bare ceiling",
                Box::new(|r| percent(r.posts_vs_ceiling)),
            ),
            (
                "latency p50 ms",
                Box::new(|r| ms(r.latency.as_ref().map(|l| l.p50_ms))),
            ),
            (
                "latency p90 ms",
                Box::new(|r| ms(r.latency.as_ref().map(|l| l.p90_ms))),
            ),
            (
                "latency p99 ms",
                Box::new(|r| ms(r.latency.as_ref().map(|l| l.p99_ms))),
            ),
            (
                "latency max ms",
                Box::new(|r| ms(r.latency.as_ref().map(|l| l.max_ms))),
            ),
            (
                "server CPU s",
                Box::new(|r| format!("{:.2}", r.server_cpu_s)),
            ),
            (
                "server CPU cores",
                Box::new(|r| format!("{:.2}", r.server_cpu_cores)),
            ),
            (
                "server RSS at start MiB",
                Box::new(|r| format!("{:.1}", r.server_rss_start_mib)),
            ),
            (
                "server RSS at end MiB",
                Box::new(|r| format!("{:.1}", r.server_rss_mib)),
            ),
            (
                "server peak RSS MiB",
                Box::new(|r| format!("{:.1}", r.server_peak_rss_mib)),
            ),
            ("bench CPU s", Box::new(|r| format!("{:.2}", r.bench_cpu_s))),
            (
                "PostgreSQL CPU s",
                Box::new(|r| r.database_cpu_s.map_or("-".into(), |s| format!("{s:.2}"))),
            ),
            (
                "other processes' CPU s",
                Box::new(|r| format!("{:.2}", r.other_cpu_s)),
            ),
            ("setup s", Box::new(|r| format!("{:.1}", r.setup_s))),
            ("measured s", Box::new(|r| format!("{:.1}", r.measured_s))),
        ];
        let label_width = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|(_, f)| s.iter().map(f).collect())
            .collect();
        let widths: Vec<usize> = s
            .iter()
            .enumerate()
            .map(|(i, r)| {
                cells
                    .iter()
                    .map(|row| row[i].len())
                    .chain([r.name.len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let _ = write!(out, "{:label_width$}", "");
        for (r, w) in s.iter().zip(&widths) {
            let _ = write!(out, "  {:>w$}", r.name);
        }
        let _ = writeln!(out);
        for ((label, _), row) in rows.iter().zip(&cells) {
            let _ = write!(out, "{label:label_width$}");
            for (cell, w) in row.iter().zip(&widths) {
                let _ = write!(out, "  {cell:>w$}");
            }
            let _ = writeln!(out);
        }
        let _ = writeln!(out);
        for r in s {
            let _ = writeln!(out, "{}: {}", r.name, r.description);
            if !r.server_flags.is_empty() {
                let _ = writeln!(out, "  serve flags: {}", r.server_flags.join(" "));
            }
            if !r.latency_definition.is_empty() {
                let _ = writeln!(out, "  latency: {}", r.latency_definition);
            }
            for (key, value) in &r.extra {
                match value {
                    Value::String(text) => {
                        let _ = writeln!(out, "  {key}: {text}");
                    }
                    other => {
                        let _ = writeln!(out, "  {key}: {other}");
                    }
                }
            }
            for note in &r.notes {
                let _ = writeln!(out, "  note: {note}");
            }
        }
        if !self.bars.is_empty() {
            let _ = writeln!(out, "\nbars of issue 4 (information, not assertions):");
            for bar in &self.bars {
                let _ = writeln!(
                    out,
                    "  [{}] {}: {}",
                    if bar.met { "met" } else { "NOT met" },
                    bar.bar,
                    bar.measured
                );
            }
        }
        let _ = writeln!(
            out,
            "\n{} expected arrivals missing in all; run took {:.1} s",
            self.missing_total, self.wall_s
        );
        out
    }

    /// The bars, from what ran.
    pub(crate) fn compute_bars(&mut self) {
        let find = |name: &str| self.scenarios.iter().find(|r| r.name == name);
        let mut bars = Vec::new();
        if let Some(r) = find("batched")
            && let Some(rate) = r.delivered_per_s
        {
            bars.push(Bar {
                bar: format!(
                    "batched >= 100,000 changes/s end to end ({})",
                    self.database
                ),
                measured: format!("{rate:.0} changes/s"),
                met: rate >= 100_000.0,
            });
        }
        if let Some(r) = find("unbatched")
            && let Some(rate) = r.delivered_per_s
        {
            let ratio = r.delivered_vs_higher_ceiling().unwrap_or(0.0);
            bars.push(Bar {
                bar: "unbatched >= 50% of the bare ceiling (the highest of those measured before the scenarios and right after this one, in process and from a separate process) and >= 10,000 changes/s".into(),
                measured: match r.delivered_vs_separate_ceiling {
                    Some(separate) => format!(
                        "{rate:.0} changes/s, {:.0}% of the ceiling ({:.0}% of the one from a separate process)",
                        ratio * 100.0,
                        separate * 100.0
                    ),
                    None => format!("{rate:.0} changes/s, {:.0}% of the ceiling", ratio * 100.0),
                },
                met: ratio >= 0.5 && rate >= 10_000.0,
            });
        }
        let latency_p99 = find("latency").and_then(|r| r.latency.as_ref().map(|l| l.p99_ms));
        if let Some(p99) = latency_p99 {
            bars.push(Bar {
                bar: "p99 <= 25 ms at a steady 1,000 changes/s".into(),
                measured: format!("p99 {p99:.1} ms"),
                met: p99 <= 25.0,
            });
        }
        if let Some(r) = find("fanout")
            && let Some(latency) = &r.latency
        {
            bars.push(Bar {
                bar: "each fan-out change reaches all apps within 1 s".into(),
                measured: format!("slowest change {:.0} ms", latency.max_ms),
                met: latency.max_ms <= 1000.0 && r.missing == 0,
            });
        }
        if let Some(r) = find("isolation")
            && let (Some(latency), Some(base)) = (&r.latency, latency_p99)
        {
            bars.push(Bar {
                bar: "isolation: healthy p99 within 2x of the latency scenario's".into(),
                measured: format!(
                    "p99 {:.1} ms vs {base:.1} ms ({:.2}x)",
                    latency.p99_ms,
                    latency.p99_ms / base.max(0.001)
                ),
                met: latency.p99_ms <= 2.0 * base,
            });
        }
        if let Some(r) = find("idle") {
            bars.push(Bar {
                bar: "idle RSS <= 30 MB with 1,000 apps and subscriptions".into(),
                measured: format!("{:.1} MiB", r.server_rss_mib),
                met: r.server_rss_mib * 1.048_576 <= 30.0,
            });
        }
        self.bars = bars;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let samples = (1..=100).map(Duration::from_millis).collect();
        let latency = Latency::of(samples).unwrap();
        assert_eq!(latency.p50_ms, 50.0);
        assert_eq!(latency.p99_ms, 99.0);
        assert_eq!(latency.max_ms, 100.0);
        assert!(Latency::of(Vec::new()).is_none());
    }

    fn report(unbatched: ScenarioResult) -> Report {
        Report {
            bench_version: String::new(),
            server_version: String::new(),
            database: "sqlite".into(),
            cores: 2,
            memory_mib: 0,
            cpu_model: String::new(),
            quick: false,
            ceiling: None,
            ceiling_separate: None,
            scenarios: vec![unbatched],
            bars: Vec::new(),
            wall_s: 0.0,
            missing_total: 0,
        }
    }

    /// The unbatched bar takes the lowest ratio (the highest ceiling), so a ceiling measured
    /// while the host was slow, or the lower of the two ways of measuring it, cannot pass it;
    /// with one ceiling, that one counts.
    #[test]
    fn the_unbatched_bar_uses_the_highest_ceiling() {
        let unbatched =
            |before: Option<f64>, after: Option<f64>, separate: Option<f64>| ScenarioResult {
                name: "unbatched".into(),
                delivered_per_s: Some(50_000.0),
                delivered_vs_ceiling: before,
                delivered_vs_ceiling_after: after,
                delivered_vs_separate_ceiling: separate,
                ..ScenarioResult::default()
            };
        for (before, after, separate, ratio, met) in [
            (Some(0.75), Some(0.45), None, 0.45, false),
            (Some(0.45), Some(0.75), None, 0.45, false),
            (Some(0.52), Some(0.55), None, 0.52, true),
            (Some(0.55), None, None, 0.55, true),
            (None, Some(0.48), None, 0.48, false),
            (Some(0.52), Some(0.55), Some(0.58), 0.52, true),
            (Some(0.52), Some(0.55), Some(0.49), 0.49, false),
        ] {
            let result = unbatched(before, after, separate);
            assert_eq!(result.delivered_vs_higher_ceiling(), Some(ratio));
            let mut report = report(result);
            report.compute_bars();
            let bar = report
                .bars
                .iter()
                .find(|b| b.bar.starts_with("unbatched"))
                .expect("the unbatched bar");
            assert_eq!(
                bar.met, met,
                "{before:?} / {after:?} / {separate:?}: {}",
                bar.measured
            );
        }
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(group_thousands(1_234_567), "1,234,567");
        assert_eq!(group_thousands(999), "999");
    }
}
