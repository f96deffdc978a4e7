//! AnonChat's verifier: checks a live selfie (one face, liveness, gender) with ONNX models and
//! signs a short-lived Ed25519 token bound to the device's own key (the token's format is
//! `anonchat_protocol::token`).

pub mod challenge;
pub mod decode;
pub mod error;
pub mod models;
pub mod onnx_edit;
pub mod pipeline;
pub mod service;
pub mod vision;
pub mod wipe_alloc;
