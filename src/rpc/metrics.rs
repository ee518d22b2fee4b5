//! The agent's metrics in the Prometheus text format, served at `/metrics` (`agent
//! --metrics-addr`). Nothing is counted for them: the counters the agent keeps anyway (atomics,
//! see [`AgentStats`]) are read when the endpoint is scraped.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

use super::stats::{AgentStats, Outcome};

/// Every metric's name starts with it.
pub const PREFIX: &str = "sloth_agent";

/// The agent's metrics, read from `stats` at each scrape.
pub fn registry(stats: AgentStats) -> Registry {
    let mut registry = Registry::with_prefix(PREFIX);
    registry.register_with_unit(
        "task_duration",
        "How long tasks ran on this agent, from the start of the task (its workspace built) to its outcome",
        Unit::Seconds,
        stats.tasks.duration(),
    );
    registry.register_collector(Box::new(Scrape(stats)));
    registry
}

/// The registry's metrics as the text format.
pub fn render(registry: &Registry) -> String {
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, registry);
    text
}

#[derive(Debug)]
struct Scrape(AgentStats);

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: u64,
) -> std::fmt::Result {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, unit, metric.metric_type())?)
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, unit: Option<&Unit>, value: i64) -> std::fmt::Result {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, unit, metric.metric_type())?)
}

fn read(value: &AtomicU64) -> u64 {
    value.load(Ordering::Relaxed)
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let stats = &self.0;
        let traffic = &stats.traffic;
        let in_flight = i64::from(stats.in_flight.load(Ordering::Relaxed));
        gauge(&mut encoder, "tasks_in_flight", "Tasks running on this agent now", None, in_flight)?;
        gauge(
            &mut encoder,
            "task_slots",
            "Tasks this agent runs at once (--max-tasks)",
            None,
            i64::from(stats.max_tasks),
        )?;
        {
            let metric = ConstCounter::new(0u64);
            let mut family = encoder.encode_descriptor(
                "tasks_finished",
                "Tasks that ended, by outcome: succeeded, failed (the task said so), cancelled (by the master), \
                 refused (not run as asked), error (the agent could not run it)",
                None,
                metric.metric_type(),
            )?;
            for outcome in Outcome::ALL {
                let labels = [("outcome", outcome.name())];
                ConstCounter::new(stats.tasks.finished(outcome)).encode(family.encode_family(&labels)?)?;
            }
        }
        let bytes = Some(&Unit::Bytes);
        counter(
            &mut encoder,
            "sync_received",
            "Bytes of workspace contents received from masters",
            bytes,
            read(&traffic.bytes_received),
        )?;
        counter(&mut encoder, "sync_sent", "Bytes of changes sent back to masters", bytes, read(&traffic.bytes_sent))?;
        counter(
            &mut encoder,
            "contents_requested",
            "File contents asked of masters (the cache lacked them)",
            None,
            read(&traffic.contents_requested),
        )?;
        counter(&mut encoder, "files_written", "Files written into task trees", None, read(&traffic.files_written))?;
        let cache_bytes = i64::try_from(stats.cache.bytes()).unwrap_or(i64::MAX);
        gauge(&mut encoder, "cache", "Bytes of file contents in the content cache", bytes, cache_bytes)?;
        counter(
            &mut encoder,
            "cache_hits",
            "Contents a task's tree needed that the cache held (hit ratio: hits / (hits + misses))",
            None,
            read(&traffic.cache_hits),
        )?;
        counter(
            &mut encoder,
            "cache_misses",
            "Contents a task's tree needed that the cache lacked, asked of the master",
            None,
            read(&traffic.cache_misses),
        )?;
        counter(
            &mut encoder,
            "plans_from_watch",
            "Kept trees planned from what the scan after their last task saw, a watch saying nothing changed since",
            None,
            read(&traffic.plans_from_watch),
        )?;
        let (reused, created) =
            stats.trees.as_ref().map_or((0, 0), |trees| (trees.reused.load(Ordering::Relaxed), trees.created()));
        counter(
            &mut encoder,
            "trees_reused",
            "Tasks that found the tree an earlier task of their workspace left",
            None,
            reused,
        )?;
        counter(
            &mut encoder,
            "trees_created",
            "New trees made for tasks (no kept tree of their workspace)",
            None,
            created,
        )?;
        Ok(())
    }
}

/// Serves `/metrics` (GET or HEAD) over HTTP/1.1 on `listener` until `stop` resolves.
pub async fn serve(listener: tokio::net::TcpListener, registry: Registry, stop: impl Future<Output = ()>) {
    let registry = Arc::new(registry);
    tokio::pin!(stop);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "metrics: cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut stop => return,
        };
        let registry = Arc::clone(&registry);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let response = respond(&registry, &request);
                async move { Ok::<_, Infallible>(response) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

fn respond<B>(registry: &Registry, request: &Request<B>) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, content_type: &str, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        if let Ok(value) = hyper::header::HeaderValue::from_str(content_type) {
            response.headers_mut().insert(hyper::header::CONTENT_TYPE, value);
        }
        response
    };
    if request.uri().path() != "/metrics" {
        return reply(StatusCode::NOT_FOUND, "text/plain", "not found: the metrics are at /metrics\n".to_owned());
    }
    match *request.method() {
        Method::GET | Method::HEAD => {
            reply(StatusCode::OK, prometheus_client::encoding::prometheus_text::CONTENT_TYPE, render(registry))
        }
        _ => reply(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "only GET and HEAD\n".to_owned()),
    }
}
