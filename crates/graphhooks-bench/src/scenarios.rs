//! The six scenarios. Each starts a fresh receiver, database and `serve` process, sets up apps,
//! grants and subscriptions through the real APIs, then measures one phase: the server's CPU
//! time over that phase, its memory, and per change the time from the 202 to its arrival.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use graphhooks_testkit::TestCa;
use serde_json::json;
use tokio_rustls::TlsAcceptor;

use crate::api::{Api, App, ChangeSpec, changes_body, for_each_concurrently};
use crate::ceiling::{self, Ceiling};
use crate::receiver::{Keying, Receiver};
use crate::report::{Latency, ScenarioResult};
use crate::server::{DatabaseKind, FreshDatabase, ServeProcess};

/// The scenario names, in run order.
pub(crate) const ALL: [&str; 6] = [
    "batched",
    "unbatched",
    "latency",
    "fanout",
    "isolation",
    "idle",
];

/// Sizes of every scenario (flags; `--quick` shrinks them).
#[derive(Debug, Clone)]
pub(crate) struct Sizes {
    pub(crate) batched_changes: usize,
    pub(crate) unbatched_changes: usize,
    pub(crate) changes_per_request: usize,
    pub(crate) clients: usize,
    pub(crate) users: usize,
    pub(crate) latency_rate: u32,
    pub(crate) latency_seconds: f64,
    pub(crate) fanout_apps: usize,
    pub(crate) fanout_changes: usize,
    pub(crate) isolation_apps: usize,
    pub(crate) isolation_hang: usize,
    pub(crate) isolation_fail: usize,
    pub(crate) isolation_rate: u32,
    pub(crate) isolation_seconds: f64,
    pub(crate) idle_apps: usize,
    pub(crate) idle_seconds: f64,
    pub(crate) setup_concurrency: usize,
    /// How long without a new arrival before giving up on the missing ones.
    pub(crate) stall: Duration,
    /// Longest wait for arrivals once the load has been sent.
    pub(crate) drain_timeout: Duration,
}

/// What every scenario shares.
pub(crate) struct Bench {
    pub(crate) sizes: Sizes,
    pub(crate) binary: PathBuf,
    pub(crate) database: DatabaseKind,
    pub(crate) ca_path: PathBuf,
    pub(crate) acceptor: TlsAcceptor,
    pub(crate) epoch: Instant,
    pub(crate) clock_ticks: f64,
    /// Flags added to every `serve` (`--server-arg`).
    pub(crate) server_args: Vec<String>,
    pub(crate) temp_root: Option<PathBuf>,
    /// Where server logs are kept (`{dir}/{database}-{scenario}.log`), if anywhere.
    pub(crate) keep_logs: Option<PathBuf>,
    /// Where per-change latencies go as CSV (`{prefix}-{scenario}.csv`), if anywhere.
    pub(crate) latency_csv: Option<PathBuf>,
    pub(crate) ceiling: Option<Ceiling>,
    /// The same ceiling from a client in a separate process (see [`ceiling::measure_both`]).
    pub(crate) ceiling_separate: Option<Ceiling>,
    /// How long each ceiling runs.
    pub(crate) ceiling_duration: Duration,
    /// The latency scenario's p99, for isolation's comparison.
    pub(crate) latency_p99_ms: Option<f64>,
    pub(crate) ca: Arc<TestCa>,
}

/// One scenario's server, receiver and database.
struct Run {
    dir: tempfile::TempDir,
    database: Option<FreshDatabase>,
    server: Option<ServeProcess>,
    api: Api,
    receiver: Receiver,
    flags: Vec<String>,
    rss_start_kib: u64,
    started: Instant,
    /// Where to copy the server's log when the scenario ends.
    keep_log: Option<PathBuf>,
}

/// 202 times per change, in ns since the epoch plus one (0: not accepted).
struct Stamps {
    epoch: Instant,
    at: Vec<AtomicU64>,
}

impl Stamps {
    fn new(epoch: Instant, len: usize) -> Stamps {
        Stamps {
            epoch,
            at: (0..len).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn set(&self, n: usize, at: Instant) {
        let stamp = u64::try_from(at.saturating_duration_since(self.epoch).as_nanos())
            .unwrap_or(u64::MAX - 1)
            + 1;
        if let Some(slot) = self.at.get(n) {
            slot.store(stamp, Ordering::Relaxed);
        }
    }

    fn get(&self, n: usize) -> Option<Instant> {
        let stamp = self.at.get(n)?.load(Ordering::Relaxed);
        (stamp != 0).then(|| self.epoch + Duration::from_nanos(stamp - 1))
    }
}

/// What a load phase did.
#[derive(Debug, Default)]
struct Load {
    first_sent: Option<Instant>,
    last_accepted: Option<Instant>,
    sent: u64,
    accepted: u64,
    errors: u64,
    first_error: Option<String>,
}

/// CPU counters at the start of a measured phase.
struct Meter {
    server_ticks: u64,
    bench_ticks: u64,
    machine_ticks: u64,
    database_ticks: u64,
    started: Instant,
}

/// What changes a load phase sends: change `n` goes to object `id(n, modulus)`.
#[derive(Clone, Copy)]
struct Feed {
    spec: ChangeSpec<'static>,
    id: fn(usize, usize) -> String,
    modulus: usize,
}

const USER: ChangeSpec<'static> = ChangeSpec {
    object: "user",
    field: "name",
};
const APPLICATION: ChangeSpec<'static> = ChangeSpec {
    object: "application",
    field: "async_requests",
};
const PAGE: ChangeSpec<'static> = ChangeSpec {
    object: "page",
    field: "feed",
};

fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn per_second(count: u64, from: Option<Instant>, to: Option<Instant>) -> Option<f64> {
    let span = to?.checked_duration_since(from?)?;
    (count > 0 && !span.is_zero()).then(|| count as f64 / span.as_secs_f64())
}

impl Bench {
    async fn start(
        &self,
        name: &str,
        flags: Vec<String>,
        keying: Keying,
        lanes: usize,
        changes: usize,
    ) -> anyhow::Result<Run> {
        eprintln!("graphhooks-bench: {name}: starting a fresh server");
        let started = Instant::now();
        let dir = match &self.temp_root {
            Some(root) => tempfile::Builder::new()
                .prefix("graphhooks-bench")
                .tempdir_in(root),
            None => tempfile::Builder::new()
                .prefix("graphhooks-bench")
                .tempdir(),
        }
        .context("a temporary directory")?;
        let receiver =
            Receiver::start(self.acceptor.clone(), self.epoch, keying, lanes, changes).await?;
        let database = FreshDatabase::create(&self.database, dir.path()).await?;
        let mut all_flags = flags.clone();
        all_flags.extend(self.server_args.iter().cloned());
        let server = ServeProcess::spawn(
            &self.binary,
            &database.url,
            &self.ca_path,
            &all_flags,
            dir.path(),
        )
        .await;
        let server = match server {
            Ok(server) => server,
            Err(error) => {
                let _ = database.drop_database().await;
                return Err(error);
            }
        };
        let (rss_start_kib, _) = server.memory_kib().unwrap_or((0, 0));
        eprintln!(
            "graphhooks-bench: {name}: serve pid {} at {} ({})",
            server.pid(),
            server.base,
            self.database.label()
        );
        Ok(Run {
            api: Api::new(&server.base),
            dir,
            database: Some(database),
            server: Some(server),
            receiver,
            flags: all_flags,
            rss_start_kib,
            started,
            keep_log: self
                .keep_logs
                .as_ref()
                .map(|dir| dir.join(format!("{}-{name}.log", self.database.label()))),
        })
    }

    /// CPU ticks of the PostgreSQL processes on this machine (0 for SQLite, which runs inside
    /// the server).
    fn database_ticks(&self) -> u64 {
        match self.database {
            DatabaseKind::Postgres(_) => crate::server::cpu_ticks_of_command("postgres"),
            DatabaseKind::Sqlite => 0,
        }
    }

    fn meter(&self, run: &Run) -> anyhow::Result<Meter> {
        Ok(Meter {
            server_ticks: run.server()?.cpu_ticks()?,
            bench_ticks: crate::server::cpu_ticks("self")?,
            machine_ticks: crate::server::machine_busy_ticks()?,
            database_ticks: self.database_ticks(),
            started: Instant::now(),
        })
    }

    /// Fills in the resource figures at the end of a measured phase.
    fn stop_meter(
        &self,
        run: &Run,
        meter: &Meter,
        result: &mut ScenarioResult,
    ) -> anyhow::Result<()> {
        let measured = meter.started.elapsed();
        let server = run.server()?;
        let ticks = server.cpu_ticks()?.saturating_sub(meter.server_ticks);
        let bench = crate::server::cpu_ticks("self")?.saturating_sub(meter.bench_ticks);
        let machine = crate::server::machine_busy_ticks()?.saturating_sub(meter.machine_ticks);
        let database = self.database_ticks().saturating_sub(meter.database_ticks);
        result.database_cpu_s = match self.database {
            DatabaseKind::Postgres(_) => Some(database as f64 / self.clock_ticks),
            DatabaseKind::Sqlite => None,
        };
        result.other_cpu_s =
            machine.saturating_sub(ticks + bench + database) as f64 / self.clock_ticks;
        let (rss, hwm) = server.memory_kib()?;
        result.server_cpu_s = ticks as f64 / self.clock_ticks;
        result.server_cpu_cores = result.server_cpu_s / seconds(measured).max(1e-9);
        result.bench_cpu_s = bench as f64 / self.clock_ticks;
        result.server_rss_start_mib = run.rss_start_kib as f64 / 1024.0;
        result.server_rss_mib = rss as f64 / 1024.0;
        result.server_peak_rss_mib = hwm as f64 / 1024.0;
        result.measured_s = seconds(measured);
        result.setup_s = seconds(meter.started.saturating_duration_since(run.started));
        result.server_flags = run.flags.clone();
        Ok(())
    }

    fn fill_rates(&self, result: &mut ScenarioResult, load: &Load, last_arrival: Option<Instant>) {
        result.changes_sent = load.sent;
        result.changes_accepted = load.accepted;
        result.post_errors = load.errors;
        if let Some(error) = &load.first_error {
            result
                .notes
                .push(format!("{} posts failed; first: {error}", load.errors));
        }
        result.accepted_per_s = per_second(load.accepted, load.first_sent, load.last_accepted);
        result.delivered_per_s = per_second(result.arrived, load.first_sent, last_arrival);
        result.posts_per_s = per_second(result.posts_received, load.first_sent, last_arrival);
        if let Some(ceiling) = &self.ceiling {
            let ratio = |v: Option<f64>| v.map(|v| v / ceiling.posts_per_s.max(1e-9));
            result.delivered_vs_ceiling = ratio(result.delivered_per_s);
            result.posts_vs_ceiling = ratio(result.posts_per_s);
        }
    }

    /// Sends changes `0..total` in requests of `per_request`, from `clients` concurrent
    /// clients, as fast as they are accepted.
    async fn send_batches(
        &self,
        api: &Api,
        feed: Feed,
        total: usize,
        stamps: &Arc<Stamps>,
    ) -> Load {
        let per_request = self.sizes.changes_per_request.clamp(1, 10_000);
        let clients = self.sizes.clients;
        let requests = total.div_ceil(per_request);
        let first_sent = Instant::now();
        let last = Arc::new(AtomicU64::new(0));
        let accepted = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(std::sync::Mutex::new((0u64, None::<String>)));
        let outcome = {
            let (api, stamps, last, accepted, errors) = (
                api.clone(),
                stamps.clone(),
                last.clone(),
                accepted.clone(),
                errors.clone(),
            );
            let epoch = self.epoch;
            for_each_concurrently(requests, clients, move |request| {
                let (api, stamps, last, accepted, errors) = (
                    api.clone(),
                    stamps.clone(),
                    last.clone(),
                    accepted.clone(),
                    errors.clone(),
                );
                async move {
                    let start = request * per_request;
                    let end = (start + per_request).min(total);
                    let body = changes_body(feed.spec, start..end, |n| (feed.id)(n, feed.modulus));
                    match api.post_changes(body).await {
                        Ok(at) => {
                            for n in start..end {
                                stamps.set(n, at);
                            }
                            accepted.fetch_add((end - start) as u64, Ordering::Relaxed);
                            let stamp =
                                u64::try_from(at.saturating_duration_since(epoch).as_nanos())
                                    .unwrap_or(u64::MAX);
                            last.fetch_max(stamp, Ordering::Relaxed);
                        }
                        Err(error) => {
                            if let Ok(mut errors) = errors.lock() {
                                errors.0 += (end - start) as u64;
                                errors.1.get_or_insert_with(|| format!("{error:#}"));
                            }
                        }
                    }
                    Ok(())
                }
            })
            .await
        };
        let (error_count, first_error) = errors
            .lock()
            .map(|e| (e.0, e.1.clone()))
            .unwrap_or((0, None));
        let mut load = Load {
            first_sent: Some(first_sent),
            last_accepted: Some(self.epoch + Duration::from_nanos(last.load(Ordering::Relaxed))),
            sent: total as u64,
            accepted: accepted.load(Ordering::Relaxed),
            errors: error_count,
            first_error,
        };
        if let Err(error) = outcome {
            load.first_error.get_or_insert_with(|| format!("{error:#}"));
        }
        load
    }

    /// Sends changes `0..total` one per request at `rate` per second, each request on its own
    /// task so a slow answer never delays the schedule.
    async fn send_paced(
        &self,
        api: &Api,
        feed: Feed,
        total: usize,
        rate: u32,
        stamps: &Arc<Stamps>,
    ) -> Load {
        let start = tokio::time::Instant::now();
        let first_sent = Instant::now();
        let period = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..total {
            tokio::time::sleep_until(start + period.mul_f64(n as f64)).await;
            let api = api.clone();
            let stamps = stamps.clone();
            tasks.spawn(async move {
                let body = changes_body(feed.spec, n..n + 1, |n| (feed.id)(n, feed.modulus));
                let outcome = api.post_changes(body).await;
                if let Ok(at) = outcome {
                    stamps.set(n, at);
                }
                outcome
            });
            // Reap finished requests as we go so the set stays small.
            while tasks.try_join_next().is_some() {}
        }
        let mut load = Load {
            first_sent: Some(first_sent),
            sent: total as u64,
            ..Load::default()
        };
        while tasks.join_next().await.is_some() {}
        for n in 0..total {
            match stamps.get(n) {
                Some(at) => {
                    load.accepted += 1;
                    load.last_accepted = Some(load.last_accepted.map_or(at, |l| l.max(at)));
                }
                None => load.errors += 1,
            }
        }
        if load.errors > 0 {
            load.first_error = Some("some paced posts were not accepted".into());
        }
        load
    }

    /// Waits until `expected` slots arrived, the server died, nothing new arrived for
    /// `stall`, or `drain_timeout` passed; says why it stopped waiting, if not complete.
    async fn wait_for(&self, run: &mut Run, expected: u64) -> anyhow::Result<Option<String>> {
        let started = Instant::now();
        let mut last_seen = run.receiver.tally.distinct();
        let mut last_progress = Instant::now();
        loop {
            let distinct = run.receiver.tally.distinct();
            if distinct >= expected {
                return Ok(None);
            }
            if distinct != last_seen {
                last_seen = distinct;
                last_progress = Instant::now();
            }
            let why = if last_progress.elapsed() >= self.sizes.stall {
                Some(format!(
                    "nothing new arrived for {:.0} s",
                    self.sizes.stall.as_secs_f64()
                ))
            } else if started.elapsed() >= self.sizes.drain_timeout {
                Some(format!(
                    "still arriving {:.0} s after the load ended (--drain-timeout)",
                    self.sizes.drain_timeout.as_secs_f64()
                ))
            } else {
                None
            };
            if let Some(why) = why {
                let note = format!(
                    "stopped waiting: {why}; {distinct} of {expected} expected arrivals had come"
                );
                eprintln!("graphhooks-bench: {note}");
                return Ok(Some(note));
            }
            if !run.server_mut()?.running() {
                bail!(
                    "the server exited during the scenario; its log:\n{}",
                    run.server()?.log_tail(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    fn user_feed(&self) -> Feed {
        Feed {
            spec: USER,
            id: user_id,
            modulus: self.sizes.users,
        }
    }

    /// One app subscribed to `user.name` with grants for `users` users.
    async fn one_user_app(&self, run: &Run) -> anyhow::Result<App> {
        let app = run.api.create_app("bench app").await?;
        run.api
            .subscribe(&app, "user", &["name"], &run.receiver.url("/a/0"))
            .await?;
        let api = run.api.clone();
        let shared = app.clone();
        for_each_concurrently(self.sizes.users, 4, move |i| {
            let api = api.clone();
            let app = shared.clone();
            async move { api.grant(&app, "user", &format!("u{i}"), &[]).await }
        })
        .await?;
        Ok(app)
    }

    /// `apps` apps, app `i` subscribed to `application.async_requests` at `/a/{i}`.
    async fn application_apps(&self, run: &Run, apps: usize) -> anyhow::Result<()> {
        let api = run.api.clone();
        let base = run.receiver.url("/a/");
        for_each_concurrently(apps, self.sizes.setup_concurrency, move |i| {
            let api = api.clone();
            let url = format!("{base}{i}");
            async move {
                let app = api.create_app(&format!("fan-out app {i}")).await?;
                api.subscribe(&app, "application", &["async_requests"], &url)
                    .await
            }
        })
        .await
    }

    /// Per-change results for scenarios where each change goes to one callback: arrivals,
    /// duplicates and 202 → arrival latency over the changes `expected` selects.
    fn single_lane_figures(
        &self,
        run: &Run,
        stamps: &Stamps,
        total: usize,
        expected: impl Fn(usize) -> bool,
        result: &mut ScenarioResult,
    ) {
        let tally = &run.receiver.tally;
        let mut samples = Vec::with_capacity(total);
        let mut csv = String::new();
        if self.latency_csv.is_some() {
            csv.push_str("n,accepted_ms,latency_ms,arrivals\n");
        }
        for n in (0..total).filter(|n| expected(*n)) {
            let Some(accepted) = stamps.get(n) else {
                continue;
            };
            result.expected_arrivals += 1;
            let count = tally.count_of(0, n);
            if count == 0 {
                result.missing += 1;
                continue;
            }
            result.arrived += 1;
            result.duplicates += u64::from(count - 1);
            if let Some(arrival) = tally.first_arrival_of(0, n) {
                if arrival < accepted {
                    result.arrived_before_202 += 1;
                }
                let latency = arrival.saturating_duration_since(accepted);
                samples.push(latency);
                if self.latency_csv.is_some() {
                    let _ = writeln!(
                        csv,
                        "{n},{:.3},{:.3},{count}",
                        accepted.saturating_duration_since(self.epoch).as_secs_f64() * 1000.0,
                        latency.as_secs_f64() * 1000.0
                    );
                }
            }
        }
        if let Some(prefix) = &self.latency_csv {
            let path = format!("{}-{}.csv", prefix.display(), result.name);
            if let Err(error) = std::fs::write(&path, csv) {
                eprintln!("graphhooks-bench: cannot write {path}: {error}");
            }
        }
        result.latency = Latency::of(samples);
        result.latency_definition = "from the 202 of the change's POST /admin/changes to the \
                                     arrival of the notification carrying it"
            .into();
        let counts = tally.counts();
        result.posts_received = counts.posts;
        result.unexpected = counts.unexpected;
        result
            .extra
            .insert("handshakes".into(), json!(counts.handshakes));
        result.extra.insert(
            "TLS connections to the receiver".into(),
            json!(counts.connections),
        );
        if counts.tls_errors > 0 {
            result
                .extra
                .insert("receiver TLS errors".into(), json!(counts.tls_errors));
        }
        if counts.bad_handshakes > 0 {
            result
                .extra
                .insert("refused handshakes".into(), json!(counts.bad_handshakes));
        }
        if counts.posts > 0 {
            result.extra.insert(
                "changes per POST".into(),
                json!(((counts.arrivals as f64 / counts.posts as f64) * 10.0).round() / 10.0),
            );
            result
                .extra
                .insert("mean body bytes".into(), json!(counts.bytes / counts.posts));
        }
    }

    /// Scenarios `batched` and `unbatched`.
    pub(crate) async fn throughput(
        &self,
        name: &str,
        batch_max: usize,
        total: usize,
    ) -> anyhow::Result<ScenarioResult> {
        let mut run = self
            .start(
                name,
                vec!["--batch-max".into(), batch_max.to_string()],
                Keying::ByChange,
                1,
                total,
            )
            .await?;
        let outcome = self.throughput_in(&mut run, name, batch_max, total).await;
        run.finish().await;
        let mut result = outcome?;
        if let Some((after, separate_after)) = self.ceiling_again(name).await? {
            result.delivered_vs_ceiling_after = result
                .delivered_per_s
                .map(|rate| rate / after.posts_per_s.max(1e-9));
            result.ceiling_after = Some(after);
            let separate_higher = self
                .ceiling_separate
                .iter()
                .chain([&separate_after])
                .map(|c| c.posts_per_s)
                .fold(0.0, f64::max);
            result.delivered_vs_separate_ceiling = result
                .delivered_per_s
                .map(|rate| rate / separate_higher.max(1e-9));
            result.ceiling_separate_after = Some(separate_after);
        }
        Ok(result)
    }

    /// Both bare ceilings measured again as before the scenarios (when they were), right after
    /// a throughput scenario: this host's speed can change within a run, and a ratio is only
    /// meaningful against a ceiling of the same moment.
    async fn ceiling_again(&self, name: &str) -> anyhow::Result<Option<(Ceiling, Ceiling)>> {
        let Some(first) = &self.ceiling else {
            return Ok(None);
        };
        eprintln!(
            "graphhooks-bench: {name}: measuring the bare ceilings again for {:.1} s",
            self.ceiling_duration.as_secs_f64()
        );
        let (after, separate) = ceiling::measure_both(
            &self.ca,
            &self.ca_path,
            self.acceptor.clone(),
            self.epoch,
            first.concurrency,
            self.ceiling_duration,
        )
        .await?;
        eprintln!(
            "graphhooks-bench: {name}: bare ceilings right after: {:.0} POSTs/s in process, {:.0} from a separate one",
            after.posts_per_s, separate.posts_per_s
        );
        Ok(Some((after, separate)))
    }

    async fn throughput_in(
        &self,
        run: &mut Run,
        name: &str,
        batch_max: usize,
        total: usize,
    ) -> anyhow::Result<ScenarioResult> {
        self.one_user_app(run).await?;
        eprintln!("graphhooks-bench: {name}: sending {total} changes");
        let stamps = Arc::new(Stamps::new(self.epoch, total));
        let meter = self.meter(run)?;
        let load = self
            .send_batches(&run.api, self.user_feed(), total, &stamps)
            .await;
        let waited = self.wait_for(run, load.accepted).await?;
        let mut result = ScenarioResult {
            name: name.into(),
            description: format!(
                "1 app on user.name with grants for {} users; {total} changes posted by {} clients, {} per request; --batch-max {batch_max}",
                self.sizes.users, self.sizes.clients, self.sizes.changes_per_request
            ),
            ..ScenarioResult::default()
        };
        self.stop_meter(run, &meter, &mut result)?;
        result.notes.extend(waited);
        self.single_lane_figures(run, &stamps, total, |_| true, &mut result);
        let last_arrival = run.receiver.tally.counts().last_arrival;
        self.fill_rates(&mut result, &load, last_arrival);
        Ok(result)
    }

    /// Scenario `latency`.
    pub(crate) async fn latency(&mut self) -> anyhow::Result<ScenarioResult> {
        let rate = self.sizes.latency_rate;
        let total = (f64::from(rate) * self.sizes.latency_seconds).round() as usize;
        let mut run = self
            .start("latency", Vec::new(), Keying::ByChange, 1, total)
            .await?;
        let outcome = self.latency_in(&mut run, rate, total).await;
        run.finish().await;
        let result = outcome?;
        self.latency_p99_ms = result.latency.as_ref().map(|l| l.p99_ms);
        Ok(result)
    }

    async fn latency_in(
        &self,
        run: &mut Run,
        rate: u32,
        total: usize,
    ) -> anyhow::Result<ScenarioResult> {
        self.one_user_app(run).await?;
        eprintln!(
            "graphhooks-bench: latency: {rate} changes/s for {} s",
            self.sizes.latency_seconds
        );
        let stamps = Arc::new(Stamps::new(self.epoch, total));
        let meter = self.meter(run)?;
        let load = self
            .send_paced(&run.api, self.user_feed(), total, rate, &stamps)
            .await;
        let waited = self.wait_for(run, load.accepted).await?;
        let mut result = ScenarioResult {
            name: "latency".into(),
            description: format!(
                "1 app on user.name; a steady {rate} changes/s for {} s, one change per request",
                self.sizes.latency_seconds
            ),
            ..ScenarioResult::default()
        };
        self.stop_meter(run, &meter, &mut result)?;
        result.notes.extend(waited);
        self.single_lane_figures(run, &stamps, total, |_| true, &mut result);
        let last_arrival = run.receiver.tally.counts().last_arrival;
        self.fill_rates(&mut result, &load, last_arrival);
        Ok(result)
    }

    /// Scenario `fanout`.
    pub(crate) async fn fanout(&self) -> anyhow::Result<ScenarioResult> {
        let apps = self.sizes.fanout_apps;
        let changes = self.sizes.fanout_changes;
        let mut run = self
            .start("fanout", Vec::new(), Keying::ByLaneAndChange, apps, changes)
            .await?;
        let outcome = self.fanout_in(&mut run, apps, changes).await;
        run.finish().await;
        outcome
    }

    async fn fanout_in(
        &self,
        run: &mut Run,
        apps: usize,
        changes: usize,
    ) -> anyhow::Result<ScenarioResult> {
        eprintln!("graphhooks-bench: fanout: creating and subscribing {apps} apps");
        self.application_apps(run, apps).await?;
        eprintln!("graphhooks-bench: fanout: {changes} changes, each to all {apps} apps");
        let stamps = Stamps::new(self.epoch, changes);
        let meter = self.meter(run)?;
        let tally = run.receiver.tally.clone();
        let mut load = Load {
            first_sent: Some(Instant::now()),
            ..Load::default()
        };
        let mut samples = Vec::with_capacity(changes);
        let mut late = 0u64;
        for n in 0..changes {
            load.sent += 1;
            let body = changes_body(APPLICATION, n..n + 1, |_| "1".to_owned());
            let at = match run.api.post_changes(body).await {
                Ok(at) => at,
                Err(error) => {
                    load.errors += 1;
                    load.first_error.get_or_insert_with(|| format!("{error:#}"));
                    continue;
                }
            };
            stamps.set(n, at);
            load.accepted += 1;
            load.last_accepted = Some(at);
            let deadline = Instant::now() + Duration::from_secs(10);
            while (tally.arrivals_of(n) as usize) < apps && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            if (tally.arrivals_of(n) as usize) < apps {
                late += 1;
            }
            if let Some(last) = tally.last_arrival_of(n) {
                samples.push(last.saturating_duration_since(at));
            }
        }
        let expected = load.accepted * apps as u64;
        let waited = self.wait_for(run, expected).await?;
        let mut result = ScenarioResult {
            name: "fanout".into(),
            description: format!(
                "{apps} apps on application.async_requests, each its own callback path; {changes} changes sent one at a time, each waiting until it reached every app"
            ),
            ..ScenarioResult::default()
        };
        self.stop_meter(run, &meter, &mut result)?;
        result.notes.extend(waited);
        result.expected_arrivals = expected;
        for n in (0..changes).filter(|n| stamps.get(*n).is_some()) {
            for lane in 0..apps {
                match tally.count_of(lane, n) {
                    0 => result.missing += 1,
                    count => {
                        result.arrived += 1;
                        result.duplicates += u64::from(count - 1);
                    }
                }
            }
        }
        result.latency = Latency::of(samples);
        result.latency_definition = format!(
            "per change, from its 202 to the last of its {apps} arrivals (one sample per change)"
        );
        let counts = tally.counts();
        result.posts_received = counts.posts;
        result.unexpected = counts.unexpected;
        result
            .extra
            .insert("handshakes".into(), json!(counts.handshakes));
        result.extra.insert(
            "TLS connections to the receiver".into(),
            json!(counts.connections),
        );
        if late > 0 {
            result.notes.push(format!(
                "{late} changes had not reached every app 10 s after their 202"
            ));
        }
        if counts.tls_errors > 0 {
            result
                .extra
                .insert("receiver TLS errors".into(), json!(counts.tls_errors));
        }
        self.fill_rates(&mut result, &load, counts.last_arrival);
        // Delivered here counts (app, change) arrivals: the rate is arrivals per second.
        result.notes.push(
            "delivered/s counts arrivals of (app, change) pairs; the changes were sent one at a time"
                .into(),
        );
        Ok(result)
    }

    /// Scenario `isolation`.
    pub(crate) async fn isolation(&self) -> anyhow::Result<ScenarioResult> {
        let rate = self.sizes.isolation_rate;
        let total = (f64::from(rate) * self.sizes.isolation_seconds).round() as usize;
        let apps = self.sizes.isolation_apps;
        let mut run = self
            .start("isolation", Vec::new(), Keying::ByChange, apps, total)
            .await?;
        let outcome = self.isolation_in(&mut run, rate, total, apps).await;
        run.finish().await;
        outcome
    }

    async fn isolation_in(
        &self,
        run: &mut Run,
        rate: u32,
        total: usize,
        apps: usize,
    ) -> anyhow::Result<ScenarioResult> {
        let hang = self.sizes.isolation_hang.min(apps);
        let fail = self.sizes.isolation_fail.min(apps - hang);
        eprintln!(
            "graphhooks-bench: isolation: {apps} apps on page.feed ({hang} hang, {fail} fail)"
        );
        let api = run.api.clone();
        let base = format!("https://{}", run.receiver.addr);
        for_each_concurrently(apps, self.sizes.setup_concurrency, move |i| {
            let api = api.clone();
            let path = if i < hang {
                format!("/hang/{i}")
            } else if i < hang + fail {
                format!("/fail/{i}")
            } else {
                format!("/a/{i}")
            };
            let url = format!("{base}{path}");
            async move {
                let app = api.create_app(&format!("isolation app {i}")).await?;
                api.grant(&app, "page", &format!("p{i}"), &["pages_read_engagement"])
                    .await?;
                api.subscribe(&app, "page", &["feed"], &url).await
            }
        })
        .await?;
        eprintln!(
            "graphhooks-bench: isolation: {rate} changes/s for {} s over {apps} pages",
            self.sizes.isolation_seconds
        );
        let stamps = Arc::new(Stamps::new(self.epoch, total));
        let meter = self.meter(run)?;
        let load = self
            .send_paced(
                &run.api,
                Feed {
                    spec: PAGE,
                    id: page_id,
                    modulus: apps,
                },
                total,
                rate,
                &stamps,
            )
            .await;
        let healthy = move |n: usize| n % apps >= hang + fail;
        let expected = (0..total)
            .filter(|n| healthy(*n) && stamps.get(*n).is_some())
            .count() as u64;
        let waited = self.wait_for(run, expected).await?;
        let mut result = ScenarioResult {
            name: "isolation".into(),
            description: format!(
                "{apps} apps on page.feed, each granted its own page; {hang} callbacks hang, {fail} answer 500; a steady {rate} changes/s for {} s round-robin over the pages; figures are the healthy apps'",
                self.sizes.isolation_seconds
            ),
            ..ScenarioResult::default()
        };
        self.stop_meter(run, &meter, &mut result)?;
        result.notes.extend(waited);
        self.single_lane_figures(run, &stamps, total, healthy, &mut result);
        let counts = run.receiver.tally.counts();
        result.extra.insert(
            "POSTs to hanging callbacks".into(),
            json!(counts.hang_posts),
        );
        result.extra.insert(
            "POSTs to failing callbacks".into(),
            json!(counts.fail_posts),
        );
        if let (Some(latency), Some(base)) = (&result.latency, self.latency_p99_ms) {
            result.extra.insert(
                "p99 vs the latency scenario's".into(),
                json!(format!(
                    "{:.2}x ({:.1} ms vs {base:.1} ms)",
                    latency.p99_ms / base.max(0.001),
                    latency.p99_ms
                )),
            );
        }
        self.fill_rates(&mut result, &load, counts.last_arrival);
        Ok(result)
    }

    /// Scenario `idle`.
    pub(crate) async fn idle(&self) -> anyhow::Result<ScenarioResult> {
        let apps = self.sizes.idle_apps;
        let mut run = self
            .start("idle", Vec::new(), Keying::ByLaneAndChange, apps, 1)
            .await?;
        let outcome = self.idle_in(&mut run, apps).await;
        run.finish().await;
        outcome
    }

    async fn idle_in(&self, run: &mut Run, apps: usize) -> anyhow::Result<ScenarioResult> {
        eprintln!("graphhooks-bench: idle: creating and subscribing {apps} apps");
        self.application_apps(run, apps).await?;
        let after_setup = run.server()?.memory_kib()?;
        eprintln!(
            "graphhooks-bench: idle: waiting {} s",
            self.sizes.idle_seconds
        );
        let meter = self.meter(run)?;
        tokio::time::sleep(Duration::from_secs_f64(self.sizes.idle_seconds)).await;
        let mut result = ScenarioResult {
            name: "idle".into(),
            description: format!(
                "RSS with {apps} apps and subscriptions loaded (set up as in fanout), after {} s idle",
                self.sizes.idle_seconds
            ),
            ..ScenarioResult::default()
        };
        self.stop_meter(run, &meter, &mut result)?;
        result.extra.insert(
            "RSS right after setup MiB".into(),
            json!(format!("{:.1}", after_setup.0 as f64 / 1024.0)),
        );
        result.extra.insert(
            "handshakes".into(),
            json!(run.receiver.tally.counts().handshakes),
        );
        result.notes.push(
            "server CPU s here is what the idle server used while idle (wake-ups, polling)".into(),
        );
        Ok(result)
    }
}

fn server_log_copy(dir: &tempfile::TempDir, path: &std::path::Path) -> anyhow::Result<()> {
    std::fs::copy(dir.path().join("serve.log"), path)
        .with_context(|| format!("copy the server log to {}", path.display()))?;
    Ok(())
}

fn user_id(n: usize, users: usize) -> String {
    format!("u{}", n % users.max(1))
}

fn page_id(n: usize, pages: usize) -> String {
    format!("p{}", n % pages.max(1))
}

impl Run {
    fn server(&self) -> anyhow::Result<&ServeProcess> {
        self.server.as_ref().context("the server is gone")
    }

    fn server_mut(&mut self) -> anyhow::Result<&mut ServeProcess> {
        self.server.as_mut().context("the server is gone")
    }

    /// Stops the server, drops the database and closes the receiver.
    async fn finish(mut self) {
        if let Some(server) = self.server.take() {
            server.kill().await;
            if let Some(path) = &self.keep_log
                && let Err(error) = server_log_copy(&self.dir, path)
            {
                eprintln!("graphhooks-bench: warning: {error:#}");
            }
        }
        if let Some(database) = self.database.take()
            && let Err(error) = database.drop_database().await
        {
            eprintln!("graphhooks-bench: warning: {error:#}");
        }
        // The directory (SQLite file, log) and the receiver go with `self`.
        let _ = self.dir.path();
    }
}
