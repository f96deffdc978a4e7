//! Prometheus metrics: requests by outcome and per-stage latency.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

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
        Metrics {
            registry,
            requests,
            stages,
        }
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
