//! Percentiles for the benchmarks.

use std::time::Duration;

/// The `p` quantile (nearest rank) of `samples`, in milliseconds. Sorts `samples`.
pub fn percentile_ms(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort();
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[i].as_secs_f64() * 1000.0
}
