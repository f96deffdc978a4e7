//! A real Redis Cluster for tests: three primaries (no replicas), each a `redis-server
//! --cluster-enabled yes` on loopback, joined with `redis-cli --cluster create`, all killed when
//! dropped.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisCluster {
    children: Vec<Child>,
    dir: std::path::PathBuf,
    pub ports: Vec<u16>,
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Starts one node in `dir`, answering on a port of its own. A port is free when picked, not
/// necessarily when the node binds it (another test, or a connection's local port, may take it
/// meanwhile): a node that exits, or a port that some other process answers on, is tried again
/// on other ports.
fn start_node(dir: &std::path::Path, others: &[u16]) -> (Child, u16) {
    for _ in 0..10 {
        let (port, bus) = (free_port(), free_port());
        if port == bus || others.contains(&port) || others.contains(&bus) {
            continue;
        }
        let _ = std::fs::remove_file(dir.join("nodes.conf"));
        let mut child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args([
                "--cluster-enabled",
                "yes",
                "--cluster-port",
                &bus.to_string(),
            ])
            .args(["--cluster-config-file", "nodes.conf"])
            .args(["--cluster-node-timeout", "2000"])
            .arg("--dir")
            .arg(dir)
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (.ci/run installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                break; // a port was taken: other ports
            }
            match answering_pid(port) {
                Some(pid) if pid == child.id() => return (child, port),
                Some(_) => {
                    // Someone else's server on that port: ours cannot bind it.
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                None => {}
            }
            assert!(Instant::now() < deadline, "a cluster node did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    panic!("no ports a cluster node could bind, in ten tries");
}

/// The process id of the Redis server answering on `port`, if one does.
fn answering_pid(port: u16) -> Option<u32> {
    let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .ok()?
        .get_connection_with_timeout(Duration::from_millis(500))
        .ok()?;
    let info: String = redis::cmd("INFO").arg("server").query(&mut c).ok()?;
    info.lines()
        .find_map(|l| l.trim().strip_prefix("process_id:"))
        .and_then(|pid| pid.parse().ok())
}

impl RedisCluster {
    /// Three primaries sharing the 16384 slots, ready (`cluster_state:ok` on every node).
    pub fn start() -> RedisCluster {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("anonchat-redis-cluster-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut cluster = RedisCluster {
            children: Vec::new(),
            ports: Vec::new(),
            dir,
        };
        for i in 0..3 {
            let node = cluster.dir.join(i.to_string());
            std::fs::create_dir_all(&node).unwrap();
            let (child, port) = start_node(&node, &cluster.ports);
            cluster.children.push(child);
            cluster.ports.push(port);
        }
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(cluster.ports.iter().map(|p| format!("127.0.0.1:{p}")))
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli (redis-tools) creates the cluster");
        assert!(
            created.status.success(),
            "redis-cli --cluster create: {created:?}"
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while !cluster.ports.iter().all(|&p| cluster.ok(p)) {
            assert!(
                Instant::now() < deadline,
                "the cluster did not become ready"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        cluster
    }

    fn ok(&self, port: u16) -> bool {
        let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}")) else {
            return false;
        };
        let Ok(mut c) = client.get_connection() else {
            return false;
        };
        let info: String = redis::cmd("CLUSTER")
            .arg("INFO")
            .query(&mut c)
            .unwrap_or_default();
        info.contains("cluster_state:ok") && info.contains("cluster_slots_ok:16384")
    }

    /// The nodes' URLs, as `REDIS_CLUSTER_NODES` takes them.
    pub fn nodes(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }

    /// Every key of every node, with its time-to-live in milliseconds (-1: none).
    pub fn keys_with_ttl(&self) -> Vec<(String, i64)> {
        let mut all = Vec::new();
        for port in &self.ports {
            let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
            let mut c = client.get_connection().unwrap();
            let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut c).unwrap();
            for k in keys {
                let ttl: i64 = redis::cmd("PTTL").arg(&k).query(&mut c).unwrap();
                all.push((k, ttl));
            }
        }
        all
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
