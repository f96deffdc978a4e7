//! Prometheus metrics of the rendezvous.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use strum::IntoEnumIterator;

use anonchat_protocol::signaling::NotSignaling;

/// The `not_signaling` label of an envelope from another instance that is not one.
pub const FROM_INSTANCE: &str = "from_instance";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Label {
    pub label: String,
}

pub struct Metrics {
    registry: Registry,
    pub connections: Gauge,
    /// 1 while the instance is ready (what /readyz says), set when scraped.
    pub ready: Gauge,
    pub matches: Counter,
    pub signals_forwarded: Counter,
    pub not_signaling: Family<Label, Counter>,
    pub errors: Family<Label, Counter>,
    pub reports: Counter,
    pub bans: Counter,
    pub unreachable: Counter,
    pub store_forgot: Counter,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("rendezvous");
        let m = Metrics {
            connections: Gauge::default(),
            ready: Gauge::default(),
            matches: Counter::default(),
            signals_forwarded: Counter::default(),
            not_signaling: Family::default(),
            errors: Family::default(),
            reports: Counter::default(),
            bans: Counter::default(),
            unreachable: Counter::default(),
            store_forgot: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            "connections",
            "Authenticated sockets on this instance",
            m.connections.clone(),
        );
        registry.register(
            "ready",
            "1 while this instance takes clients (its /readyz is 200): the verifier's keys, alive in the store",
            m.ready.clone(),
        );
        registry.register(
            "matches",
            "Matches made by this instance",
            m.matches.clone(),
        );
        registry.register(
            "signals_forwarded",
            "Signaling payloads relayed",
            m.signals_forwarded.clone(),
        );
        registry.register(
            "not_signaling",
            "Signal payloads refused, by reason",
            m.not_signaling.clone(),
        );
        registry.register("errors", "Error frames sent, by code", m.errors.clone());
        registry.register("reports", "Reports counted", m.reports.clone());
        registry.register("bans", "Bans caused by reports", m.bans.clone());
        registry.register(
            "unreachable",
            "Matches undone because the partner's side did not hear of them or did not take them",
            m.unreachable.clone(),
        );
        registry.register(
            "store_forgot",
            "Times the store had forgotten this instance (its waiting sessions joined again)",
            m.store_forgot.clone(),
        );
        // Every series an alert reads exists from the start, at zero: a rate over a series
        // that appears only with its first event misses that event.
        for code in anonchat_protocol::rendezvous::ErrorCode::iter() {
            drop(m.errors.get_or_create(&Label {
                label: code.as_str().to_owned(),
            }));
        }
        for label in NotSignaling::LABELS.into_iter().chain([FROM_INSTANCE]) {
            drop(m.not_signaling.get_or_create(&Label {
                label: label.to_owned(),
            }));
        }
        Metrics { registry, ..m }
    }

    pub fn label(family: &Family<Label, Counter>, label: &str) {
        family
            .get_or_create(&Label {
                label: label.to_owned(),
            })
            .inc();
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
