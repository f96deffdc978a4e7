//! Test harness: a real `redis-server` on a free port, and store factories.
#![allow(dead_code)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anonchat_rendezvous::store::StoreConfig;
use anonchat_rendezvous::store::memory::MemoryStore;
use anonchat_rendezvous::store::redis::RedisStore;

/// A private `redis-server` (no persistence) that is killed when dropped.
pub struct RedisServer {
    child: Child,
    pub url: String,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (.ci/run installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        RedisServer {
            child,
            url: format!("redis://127.0.0.1:{port}/"),
        }
    }

    /// Every key in the server with its TTL in seconds (-1: none).
    pub fn keys_with_ttl(&self) -> Vec<(String, i64)> {
        let client = redis::Client::open(self.url.as_str()).unwrap();
        let mut c = client.get_connection().unwrap();
        let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut c).unwrap();
        keys.into_iter()
            .map(|k| {
                let ttl: i64 = redis::cmd("TTL").arg(&k).query(&mut c).unwrap();
                (k, ttl)
            })
            .collect()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn memory(config: StoreConfig) -> MemoryStore {
    MemoryStore::new(config)
}

pub async fn redis(server: &RedisServer, config: StoreConfig) -> RedisStore {
    RedisStore::connect(&server.url, config)
        .await
        .expect("connect to the test redis-server")
}
