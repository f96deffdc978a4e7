//! Prometheus metrics: requests by outcome and per-stage latency.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use strum::IntoEnumIterator;

use crate::pipeline::Timings;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Stage {
    pub stage: &'static str,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<Outcome, Counter>,
    stages: Family<Stage, Histogram>,
    ready: Gauge,
    workers: Gauge,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("verifier");
        let requests = Family::<Outcome, Counter>::default();
        registry.register(
            "requests",
            "Verification requests by outcome (verified or an error code)",
            requests.clone(),
        );
        let stages = Family::<Stage, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 14))
        });
        registry.register(
            "stage_seconds",
            "Time spent in each pipeline stage",
            stages.clone(),
        );
        // Every outcome an alert reads exists from the start, at zero.
        for outcome in ["verified"]
            .into_iter()
            .chain(anonchat_protocol::verify::ErrorCode::iter().map(|c| c.as_str()))
        {
            drop(requests.get_or_create(&Outcome {
                outcome: outcome.to_owned(),
            }));
        }
        let (ready, workers) = (Gauge::default(), Gauge::default());
        registry.register(
            "ready",
            "1 while the verifier takes requests (its /readyz is 200)",
            ready.clone(),
        );
        registry.register(
            "workers",
            "Inference workers running (VERIFIER_WORKERS when all is well)",
            workers.clone(),
        );
        Metrics {
            registry,
            requests,
            stages,
            ready,
            workers,
        }
    }

    /// What is read when the metrics are scraped: readiness and live workers.
    pub fn scraped(&self, ready: bool, workers: usize) {
        self.ready.set(i64::from(ready));
        self.workers.set(i64::try_from(workers).unwrap_or(i64::MAX));
    }

    pub fn outcome(&self, outcome: &str) {
        self.requests
            .get_or_create(&Outcome {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    pub fn timings(&self, t: &Timings) {
        for (stage, d) in [
            ("decode", t.decode),
            ("detect", t.detect),
            ("liveness", t.liveness),
            ("gender", t.gender),
            ("embed", t.embed),
        ] {
            if !d.is_zero() {
                self.stages
                    .get_or_create(&Stage { stage })
                    .observe(d.as_secs_f64());
            }
        }
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String");
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
