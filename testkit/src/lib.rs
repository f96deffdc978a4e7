//! What the tests of every crate share, so that each fixture has one home: where the installed
//! models and the shared test photos are ([`fixtures`]), a private `redis-server`
//! ([`RedisServer`]) and Redis Cluster ([`RedisCluster`]), network namespaces ([`netns`]), a test verifier and devices with tokens ([`tokens`]), a test certificate authority
//! ([`tls`]), and the rendezvous'
//! JSON WebSocket protocol spoken by hand ([`ws`]). Only ever a dev-dependency.

pub mod fixtures;
pub mod netns;
mod redis_cluster;
mod redis_server;
pub mod tls;
pub mod tokens;
pub mod ws;

pub use redis_cluster::RedisCluster;
pub use redis_server::RedisServer;
pub use tls::TestCa;
pub use tokens::{Device, TestVerifier};
