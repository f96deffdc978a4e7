//! Matched → data channel open across the NAT lab (`tests/common/lab.rs`): terminal ↔ terminal
//! behind two cone NATs (direct), behind two symmetric NATs (relayed through coturn), and a
//! browser hiding its address ↔ a terminal (relayed). The lab adds no delay (no netem here).
//!
//! `cargo bench -p anonchat-peer --bench nat_setup -- [PAIRS]` as root (default 20 pairs a case).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../../examples/support/stats.rs"]
mod stats;

use std::time::Duration;

use anonchat_peer::session::Event;
use common::lab::{Nat, Net, Offer, connect, path_of};

fn main() {
    let pairs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        println!("| case | path | pairs | p50 ms | p95 ms | max ms |\n|---|---|---|---|---|---|");
        for (case, homes, expected) in [
            (
                "terminal ↔ terminal, cone ↔ cone",
                [Nat::Cone, Nat::Cone],
                "direct",
            ),
            (
                "terminal ↔ terminal, symmetric ↔ symmetric",
                [Nat::Symmetric, Nat::Symmetric],
                "relayed",
            ),
        ] {
            let net = Net::start(&homes, Offer::Turn).await;
            let mut samples = Vec::new();
            for n in 0..pairs {
                let mut a = net.terminal(0, &format!("a{n}"), &net.rendezvous, &[]);
                let mut b = net.terminal(1, &format!("b{n}"), &net.rendezvous, &[]);
                let (ca, cb) = connect(&mut a, &mut b).await;
                for c in [&ca, &cb] {
                    let (path, _, ms) = path_of(c);
                    assert_eq!(path, expected, "pair {n}: {c:?}");
                    samples.push(Duration::from_secs_f64(ms / 1000.0));
                }
            }
            row(case, expected, pairs, &mut samples);
        }
        let net = Net::with_browsers(&[Nat::Cone, Nat::Cone], Offer::Turn).await;
        let mut samples = Vec::new();
        for n in 0..pairs {
            let mut terminal = net.terminal(1, &format!("t{n}"), &net.rendezvous, &[]);
            terminal.join("bobby").await;
            terminal
                .events
                .expect("queued", |e| matches!(e, Event::Queued { .. }))
                .await;
            let mut browser = net.browser(0, &format!("bench-{n}"), true, "hi", "never");
            let c = terminal
                .events
                .expect_within(Duration::from_secs(60), "connected", |e| {
                    matches!(e, Event::Connected { .. })
                })
                .await;
            let (path, _, ms) = path_of(&c);
            assert_eq!(path, "relayed", "pair {n}: {c:?}");
            browser.expect("connected").await;
            samples.push(Duration::from_secs_f64(ms / 1000.0));
        }
        row(
            "browser (hide my IP) ↔ terminal, cone ↔ cone, terminal's side",
            "relayed",
            pairs,
            &mut samples,
        );
    });
}

fn row(case: &str, path: &str, pairs: usize, samples: &mut [Duration]) {
    let p50 = stats::percentile_ms(samples, 0.5);
    let p95 = stats::percentile_ms(samples, 0.95);
    let max = stats::percentile_ms(samples, 1.0);
    println!("| {case} | {path} | {pairs} | {p50:.0} | {p95:.0} | {max:.0} |");
}
