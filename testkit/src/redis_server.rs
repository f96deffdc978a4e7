//! A real `redis-server` for tests, started by the harness.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A private `redis-server` on its own Unix socket, killed when dropped. A socket path cannot
/// be taken by another test the way a "free" TCP port can between the moment it is picked and
/// the moment the server binds it.
pub struct RedisServer {
    child: Child,
    dir: std::path::PathBuf,
    socket: std::path::PathBuf,
    persistent: bool,
    pub url: String,
}

impl RedisServer {
    /// Without persistence: a restart loses everything.
    pub fn start() -> RedisServer {
        Self::new(false)
    }

    /// With an append-only file synced on every write: a restart keeps everything.
    pub fn start_persistent() -> RedisServer {
        Self::new(true)
    }

    fn new(persistent: bool) -> RedisServer {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("anonchat-redis-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("redis.sock");
        let child = Self::spawn(&dir, &socket, persistent);
        RedisServer {
            child,
            url: format!("redis+unix://{}", socket.display()),
            dir,
            socket,
            persistent,
        }
    }

    fn spawn(dir: &std::path::Path, socket: &std::path::Path, persistent: bool) -> Child {
        let mut command = Command::new("redis-server");
        command
            .args(["--port", "0", "--unixsocket"])
            .arg(socket)
            .arg("--dir")
            .arg(dir)
            .args(["--save", ""]);
        if persistent {
            command.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            command.args(["--appendonly", "no"]);
        }
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (.ci/run installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(socket).is_err() {
            assert!(
                child.try_wait().unwrap().is_none(),
                "redis-server exited at start"
            );
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on {}",
                socket.display()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        child
    }

    /// Starts the server again after [`kill`](Self::kill), on the same socket (and, when
    /// persistent, the same data).
    pub fn restart(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.socket);
        self.child = Self::spawn(&self.dir, &self.socket, self.persistent);
    }

    /// Every key in the server with its time-to-live in milliseconds (-1: none, -2: just gone).
    pub fn keys_with_ttl(&self) -> Vec<(String, i64)> {
        let client = redis::Client::open(self.url.as_str()).unwrap();
        let mut c = client.get_connection().unwrap();
        let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut c).unwrap();
        keys.into_iter()
            .map(|k| {
                let ttl: i64 = redis::cmd("PTTL").arg(&k).query(&mut c).unwrap();
                (k, ttl)
            })
            .collect()
    }

    /// SIGKILL: no goodbye, nothing saved that was not already.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
