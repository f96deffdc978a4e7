//! AnonChat's verifier: checks a live selfie (one face, liveness, gender) with ONNX models and
//! signs a short-lived Ed25519 token bound to the device's own key.
//!
//! [`token`] is always built and light; everything else needs the `service` feature (default).

pub mod token;

#[cfg(feature = "service")]
pub mod decode;
#[cfg(feature = "service")]
pub mod error;
#[cfg(feature = "service")]
pub mod models;
#[cfg(feature = "service")]
pub mod pipeline;
#[cfg(feature = "service")]
pub mod service;
#[cfg(feature = "service")]
pub mod vision;
#[cfg(feature = "service")]
pub mod wipe_alloc;
