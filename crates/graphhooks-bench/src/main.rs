//! `graphhooks-bench`: measures a real `graphhooks serve` (release build, a separate process,
//! a fresh database per scenario) delivering to a fast in-process HTTPS receiver, and reports
//! throughput, latency, fan-out, isolation and footprint as a table or JSON, each throughput
//! also as a fraction of the receiver's bare POST ceiling. `--quick` is the CI smoke: tiny
//! sizes, and a non-zero exit only when a change did not arrive (never on timings).

mod api;
mod ceiling;
mod receiver;
mod report;
mod scenarios;
mod server;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use graphhooks_testkit::TestCa;

use crate::report::{Report, ScenarioResult};
use crate::scenarios::{ALL, Bench, Sizes};
use crate::server::DatabaseKind;

/// Benchmark of graphhooks: throughput batched and unbatched, latency at a steady rate,
/// fan-out to 1,000 apps, isolation from hanging and failing callbacks, idle footprint.
#[derive(Debug, Parser)]
#[command(name = "graphhooks-bench", version)]
struct Cli {
    /// Scenario to run (repeatable): batched, unbatched, latency, fanout, isolation, idle.
    /// Default: all.
    #[arg(long = "scenario", value_parser = clap::builder::PossibleValuesParser::new(ALL))]
    scenarios: Vec<String>,
    /// `sqlite` (a file in a temporary directory) or a PostgreSQL server URL
    /// (postgres://USER@HOST:PORT/DB) on which a database is created and dropped per scenario.
    #[arg(long, default_value = "sqlite")]
    database: String,
    /// The graphhooks binary (default: `graphhooks` next to this executable).
    #[arg(long)]
    server_binary: Option<PathBuf>,
    /// Extra flag for every `graphhooks serve` (repeatable), e.g. --server-arg=--batch-linger=1ms.
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    server_args: Vec<String>,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
    /// Also write the JSON to this file.
    #[arg(long)]
    json_file: Option<PathBuf>,
    /// Tiny sizes (a few seconds in all); exits non-zero if any change did not arrive.
    #[arg(long)]
    quick: bool,
    /// Write per-change latencies of the single-callback scenarios to PREFIX-SCENARIO.csv.
    #[arg(long, value_name = "PREFIX")]
    latency_csv: Option<PathBuf>,
    /// Keep each scenario's server log in DIR (named DATABASE-SCENARIO.log).
    #[arg(long, value_name = "DIR")]
    keep_logs: Option<PathBuf>,
    /// Where temporary directories (SQLite files, server logs) go.
    #[arg(long)]
    temp_dir: Option<PathBuf>,
    /// Seconds the bare ceiling runs (0 skips it).
    #[arg(long)]
    ceiling_seconds: Option<f64>,
    /// Concurrent requests of the bare ceiling (the server's per-callback limit).
    #[arg(long, default_value_t = 16)]
    ceiling_concurrency: usize,
    /// batched: changes sent.
    #[arg(long)]
    batched_changes: Option<usize>,
    /// unbatched: changes sent.
    #[arg(long)]
    unbatched_changes: Option<usize>,
    /// batched and unbatched: changes per POST /admin/changes (at most 10,000).
    #[arg(long, default_value_t = 1000)]
    changes_per_request: usize,
    /// batched and unbatched: concurrent clients.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// batched, unbatched and latency: users the app holds grants for.
    #[arg(long, default_value_t = 100)]
    users: usize,
    /// latency: changes per second.
    #[arg(long)]
    latency_rate: Option<u32>,
    /// latency: seconds.
    #[arg(long)]
    latency_seconds: Option<f64>,
    /// fanout: apps.
    #[arg(long)]
    fanout_apps: Option<usize>,
    /// fanout: changes, sent one at a time.
    #[arg(long)]
    fanout_changes: Option<usize>,
    /// isolation: apps (the first --isolation-hang hang, the next --isolation-fail fail).
    #[arg(long)]
    isolation_apps: Option<usize>,
    /// isolation: callbacks that never answer.
    #[arg(long)]
    isolation_hang: Option<usize>,
    /// isolation: callbacks that answer 500.
    #[arg(long)]
    isolation_fail: Option<usize>,
    /// isolation: changes per second.
    #[arg(long)]
    isolation_rate: Option<u32>,
    /// isolation: seconds.
    #[arg(long)]
    isolation_seconds: Option<f64>,
    /// idle: apps.
    #[arg(long)]
    idle_apps: Option<usize>,
    /// idle: seconds to wait after setup.
    #[arg(long)]
    idle_seconds: Option<f64>,
    /// Apps created and subscribed concurrently during setup.
    #[arg(long, default_value_t = 8)]
    setup_concurrency: usize,
    /// Seconds without a new arrival before the missing changes are given up on.
    #[arg(long)]
    stall_seconds: Option<f64>,
    /// Longest wait, in seconds, for arrivals once a scenario's load has been sent.
    #[arg(long, default_value_t = 30.0)]
    drain_timeout: f64,
    /// Internal: run only the ceiling's client loop against this URL (the bench starts itself
    /// this way to measure the ceiling from a separate process) and print JSON.
    #[arg(long, hide = true, requires = "ceiling_client_ca")]
    ceiling_client: Option<String>,
    /// Internal: the CA file the ceiling client trusts.
    #[arg(long, hide = true)]
    ceiling_client_ca: Option<PathBuf>,
}

impl Cli {
    /// How long each bare ceiling runs (zero: not measured).
    fn ceiling_duration(&self) -> anyhow::Result<Duration> {
        let seconds = self
            .ceiling_seconds
            .unwrap_or(if self.quick { 0.5 } else { 3.0 });
        duration("--ceiling-seconds", seconds)
    }

    /// The scenarios' sizes; an error names a flag whose seconds are negative or not finite.
    fn sizes(&self) -> anyhow::Result<Sizes> {
        let q = self.quick;
        let pick = |given: Option<usize>, full: usize, quick: usize| {
            given.unwrap_or(if q { quick } else { full })
        };
        let pick_f = |given: Option<f64>, full: f64, quick: f64| {
            given.unwrap_or(if q { quick } else { full })
        };
        let pick_rate = |given: Option<u32>, full: u32, quick: u32| {
            given.unwrap_or(if q { quick } else { full })
        };
        let latency_seconds = pick_f(self.latency_seconds, 20.0, 1.0);
        let isolation_seconds = pick_f(self.isolation_seconds, 15.0, 1.0);
        let idle_seconds = pick_f(self.idle_seconds, 2.0, 0.5);
        // Checked here, so that no scenario meets a value a Duration cannot hold.
        duration("--latency-seconds", latency_seconds)?;
        duration("--isolation-seconds", isolation_seconds)?;
        duration("--idle-seconds", idle_seconds)?;
        Ok(Sizes {
            batched_changes: pick(self.batched_changes, 200_000, 3_000),
            unbatched_changes: pick(self.unbatched_changes, 200_000, 1_000),
            changes_per_request: self.changes_per_request,
            clients: self.clients,
            users: self.users,
            latency_rate: pick_rate(self.latency_rate, 1000, 200),
            latency_seconds,
            fanout_apps: pick(self.fanout_apps, 1000, 20),
            fanout_changes: pick(self.fanout_changes, 100, 5),
            isolation_apps: pick(self.isolation_apps, 100, 20),
            isolation_hang: pick(self.isolation_hang, 5, 1),
            isolation_fail: pick(self.isolation_fail, 5, 1),
            isolation_rate: pick_rate(self.isolation_rate, 1000, 200),
            isolation_seconds,
            idle_apps: pick(self.idle_apps, 1000, 20),
            idle_seconds,
            setup_concurrency: self.setup_concurrency,
            stall: duration("--stall-seconds", pick_f(self.stall_seconds, 15.0, 10.0))?,
            drain_timeout: duration("--drain-timeout", self.drain_timeout)?,
        })
    }
}

/// `seconds` of the flag `flag` as a duration, or an error naming the flag (a negative, NaN or
/// infinite value would make `Duration::from_secs_f64` panic).
fn duration(flag: &str, seconds: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(seconds)
        .with_context(|| format!("{flag} {seconds}: not a number of seconds"))
}

fn memory_mib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kib| kib.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib / 1024)
}

fn cores() -> usize {
    std::process::Command::new("nproc")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(0)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

async fn run(cli: Cli) -> anyhow::Result<Report> {
    let started = Instant::now();
    let binary = server::find_server_binary(cli.server_binary.as_deref())?;
    let database = DatabaseKind::parse(&cli.database)?;
    let server_version = server::server_version(&binary).await?;
    let sizes = cli.sizes()?;
    if let Some(dir) = &cli.keep_logs {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    let ca = Arc::new(TestCa::new());
    let ca_dir = tempfile::Builder::new()
        .prefix("graphhooks-bench-ca")
        .tempdir()
        .context("a temporary directory")?;
    let ca_path = ca.write_pem(ca_dir.path());
    let acceptor = receiver::tls_acceptor(&ca)?;
    let epoch = Instant::now();
    let selected: Vec<&str> = if cli.scenarios.is_empty() {
        ALL.to_vec()
    } else {
        ALL.iter()
            .copied()
            .filter(|s| cli.scenarios.iter().any(|c| c == s))
            .collect()
    };
    let ceiling_duration = cli.ceiling_duration()?;
    let (ceiling, ceiling_separate) = if ceiling_duration.is_zero() {
        (None, None)
    } else {
        eprintln!(
            "graphhooks-bench: measuring the bare ceiling for {:.1} s ({} concurrent), in this process and from a separate one",
            ceiling_duration.as_secs_f64(),
            cli.ceiling_concurrency
        );
        let (here, separate) = ceiling::measure_both(
            &ca,
            &ca_path,
            acceptor.clone(),
            epoch,
            cli.ceiling_concurrency,
            ceiling_duration,
        )
        .await?;
        (Some(here), Some(separate))
    };
    let mut bench = Bench {
        sizes: sizes.clone(),
        binary,
        database: database.clone(),
        ca_path,
        acceptor,
        epoch,
        clock_ticks: server::clock_ticks(),
        server_args: cli.server_args.clone(),
        temp_root: cli.temp_dir.clone(),
        latency_csv: cli.latency_csv.clone(),
        keep_logs: cli.keep_logs.clone(),
        ceiling: ceiling.clone(),
        ceiling_separate: ceiling_separate.clone(),
        ceiling_duration,
        latency_p99_ms: None,
        ca,
    };
    let mut results: Vec<ScenarioResult> = Vec::new();
    for name in selected {
        let scenario_started = Instant::now();
        let result = match name {
            "batched" => {
                bench
                    .throughput("batched", 1000, sizes.batched_changes)
                    .await
            }
            "unbatched" => {
                bench
                    .throughput("unbatched", 1, sizes.unbatched_changes)
                    .await
            }
            "latency" => bench.latency().await,
            "fanout" => bench.fanout().await,
            "isolation" => bench.isolation().await,
            "idle" => bench.idle().await,
            other => bail!("unknown scenario {other}"),
        }
        .with_context(|| format!("scenario {name}"))?;
        eprintln!(
            "graphhooks-bench: {name}: done in {:.1} s ({} missing, {} duplicates)",
            scenario_started.elapsed().as_secs_f64(),
            result.missing,
            result.duplicates
        );
        results.push(result);
    }
    drop(ca_dir);
    let missing_total = results.iter().map(|r| r.missing + r.unexpected).sum();
    let mut report = Report {
        bench_version: env!("CARGO_PKG_VERSION").into(),
        server_version,
        database: database.label().into(),
        cores: cores(),
        memory_mib: memory_mib(),
        cpu_model: cpu_model(),
        quick: cli.quick,
        ceiling,
        ceiling_separate,
        scenarios: results,
        bars: Vec::new(),
        wall_s: started.elapsed().as_secs_f64(),
        missing_total,
    };
    if !cli.quick {
        report.compute_bars();
    }
    Ok(report)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("graphhooks-bench: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    if let (Some(url), Some(ca)) = (&cli.ceiling_client, &cli.ceiling_client_ca) {
        let client = cli.ceiling_duration().and_then(|duration| {
            runtime.block_on(ceiling::client_main(
                url,
                ca,
                cli.ceiling_concurrency,
                duration,
            ))
        });
        return match client {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("graphhooks-bench: ceiling client: {error:#}");
                ExitCode::FAILURE
            }
        };
    }
    let json = cli.json;
    let json_file = cli.json_file.clone();
    let quick = cli.quick;
    let report = match runtime.block_on(run(cli)) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("graphhooks-bench: error: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    let document = match serde_json::to_string_pretty(&report) {
        Ok(document) => document,
        Err(error) => {
            eprintln!("graphhooks-bench: cannot write JSON: {error}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(path) = json_file
        && let Err(error) = std::fs::write(&path, format!("{document}\n"))
    {
        eprintln!("graphhooks-bench: cannot write {}: {error}", path.display());
        return ExitCode::FAILURE;
    }
    if json {
        println!("{document}");
    } else {
        print!("{}", report.table());
    }
    let post_errors: u64 = report.scenarios.iter().map(|r| r.post_errors).sum();
    if report.missing_total > 0 || post_errors > 0 {
        eprintln!(
            "graphhooks-bench: {} expected arrivals never came; {post_errors} changes were not accepted",
            report.missing_total
        );
        if quick {
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
