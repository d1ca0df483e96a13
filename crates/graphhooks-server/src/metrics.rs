//! Prometheus metrics: the process-wide recorder (installed once, however many servers a test
//! process starts), its upkeep, and the `/metrics` handler.

use std::sync::OnceLock;
use std::time::Duration;

use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// How often histogram samples are folded into their buckets. A histogram keeps every sample
/// recorded since it was last drained, and `install_recorder` (unlike the exporter's own
/// listener) leaves draining to its caller: without this, a server nobody scrapes would keep
/// 8 bytes for every attempt it ever made.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Name of the thread that runs the upkeep.
const UPKEEP_THREAD: &str = "metrics-upkeep";

/// Installs the recorder and starts its upkeep if no one has; returns the handle to render from.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("duration_seconds".into()),
                    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0],
                )
                .ok()?;
            match builder.install_recorder() {
                Ok(handle) => {
                    // A thread, not a task: the recorder outlives any one runtime (tests start
                    // many servers in one process).
                    let upkeep = handle.clone();
                    let (running, started) = std::sync::mpsc::channel();
                    let spawned = std::thread::Builder::new()
                        .name(UPKEEP_THREAD.into())
                        .spawn(move || {
                            let _ = running.send(());
                            loop {
                                std::thread::sleep(UPKEEP_EVERY);
                                upkeep.run_upkeep();
                            }
                        });
                    match spawned {
                        // Returns once the thread runs (named, visible to the test below).
                        Ok(_) => {
                            let _ = started.recv_timeout(Duration::from_secs(5));
                        }
                        Err(error) => {
                            tracing::warn!(%error, "Could not start the metrics upkeep thread; histogram samples are kept until /metrics is scraped");
                        }
                    }
                    Some(handle)
                }
                Err(error) => {
                    tracing::warn!(%error, "Could not install the metrics recorder; /metrics will be empty");
                    None
                }
            }
        })
        .as_ref()
}

/// `GET /metrics`: the counters and histograms recorded as work happens, plus queue gauges read
/// from the store at scrape time (the queue is shared by every node, so any node reports it).
pub async fn render(
    axum::extract::State(state): axum::extract::State<crate::state::SharedState>,
) -> Response {
    match state.store.queue_stats().await {
        Ok(stats) => {
            metrics::gauge!("graphhooks_queue_pending").set(stats.pending as f64);
            metrics::gauge!("graphhooks_queue_paused").set(stats.paused as f64);
            let age = stats
                .oldest_pending_created
                .map(|created| (crate::clock::now_s() - created).max(0) as f64)
                .unwrap_or(0.0);
            metrics::gauge!("graphhooks_oldest_pending_age_seconds").set(age);
        }
        Err(error) => {
            tracing::warn!(error = %crate::http::error::error_chain(&error), "Could not read queue statistics for /metrics")
        }
    }
    match install() {
        Some(handle) => (
            StatusCode::OK,
            [(CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "metrics are not available").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Installing the recorder starts the thread that drains histogram samples, once however
    /// often it is called.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_recorder_comes_with_its_upkeep_thread() {
        let upkeep_threads = || {
            std::fs::read_dir("/proc/self/task")
                .unwrap()
                .filter_map(|task| std::fs::read_to_string(task.unwrap().path().join("comm")).ok())
                .filter(|name| name.trim() == UPKEEP_THREAD)
                .count()
        };
        assert!(install().is_some());
        assert!(install().is_some());
        assert_eq!(upkeep_threads(), 1);
    }
}
