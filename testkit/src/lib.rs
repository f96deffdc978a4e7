//! What the tests of every crate share, so that each fixture has one home: where the installed
//! models and the shared test photos are ([`fixtures`]), and a private `redis-server`
//! ([`RedisServer`]). Only ever a dev-dependency.

pub mod fixtures;
mod redis_server;

pub use redis_server::RedisServer;
