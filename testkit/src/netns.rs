//! Linux network namespaces for tests: made by the test, deleted when dropped (on a failing test
//! too), with the helpers to configure them (`ip`, `nft`) and a tokio runtime whose sockets live
//! inside one. A new namespace first deletes those of earlier test processes (same prefix) that
//! died before they could. Needs root, `ip` (iproute2) and `nft` (nftables).

use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// A namespace named `PREFIX-PID-N`, deleted when dropped.
pub struct Namespace {
    pub name: String,
    /// Stop signals of the runtimes living in it.
    runtimes: Vec<std::sync::mpsc::Sender<()>>,
}

impl Namespace {
    /// A fresh namespace with its loopback up (IPv6 off, so only the addresses a test gives it).
    pub fn new(prefix: &str) -> Namespace {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        sweep_dead(prefix);
        let name = format!(
            "{prefix}{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::SeqCst)
        );
        add(&name);
        Namespace {
            name,
            runtimes: Vec::new(),
        }
    }

    /// A tokio runtime whose threads live in this namespace: sockets made by tasks spawned on
    /// it are the namespace's. It stops when the namespace is dropped.
    pub fn runtime(&mut self) -> tokio::runtime::Handle {
        let (handle, stop) = runtime_in(&self.name);
        self.runtimes.push(stop);
        handle
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        self.runtimes.clear();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Makes namespace `name` with its loopback up and IPv6 off (so it has only the addresses a
/// test gives it); the caller deletes it.
pub fn add(name: &str) {
    must(Command::new("ip").args(["netns", "add", name]), name);
    ip(name, "link set lo up");
    exec(name, &["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
    exec(
        name,
        &["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"],
    );
}

/// Deletes the namespaces named `PREFIX-PID-…` whose process is gone.
pub fn sweep_dead(prefix: &str) {
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("ip").args(["netns", "del", &name]).status();
        }
    }
}

/// A tokio runtime (two workers) on threads inside namespace `ns`, and the sender that stops
/// it when dropped.
pub fn runtime_in(ns: &str) -> (tokio::runtime::Handle, std::sync::mpsc::Sender<()>) {
    let path = format!("/run/netns/{ns}");
    let (handle_tx, handle) = std::sync::mpsc::channel();
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("the namespace exists");
        // SAFETY: setns on a valid namespace fd changes only this thread's network namespace;
        // threads it spawns (the runtime's) inherit it.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        handle_tx.send(runtime.handle().clone()).unwrap();
        let _ = stopped.recv();
        runtime.shutdown_background();
    });
    (handle.recv().unwrap(), stop)
}

/// `ip -n NS ARGS…` (ARGS split at spaces); panics when it fails.
pub fn ip(ns: &str, args: &str) {
    let mut command = Command::new("ip");
    command.args(["-n", ns]).args(args.split(' '));
    must(&mut command, args);
}

/// `ARGS` run inside `ns`; panics when it fails.
pub fn exec(ns: &str, args: &[&str]) {
    must(
        Command::new("ip").args(["netns", "exec", ns]).args(args),
        &args.join(" "),
    );
}

/// Loads an nftables ruleset inside `ns`; panics when nft refuses it.
pub fn nft(ns: &str, rules: &str) {
    use std::io::Write;
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("nft (Debian's nftables); .ci/run installs it");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(rules.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "nft refused:\n{rules}");
}

fn must(command: &mut Command, what: &str) {
    let out = command
        .output()
        .expect("`ip` (iproute2) makes the namespaces; these tests run as root");
    assert!(
        out.status.success(),
        "`{what}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs test `name` of this test binary again inside a private network namespace whose only
/// network is loopback (`unshare --net`), and returns whether this process is the one inside
/// (which then runs the test body; the one outside returns false and has asserted that the
/// inside run passed). In there a test may use well-known ports, and nothing it starts can
/// reach or be reached from another network.
pub fn isolated(name: &str) -> bool {
    if std::env::var_os("ANONCHAT_ISOLATED").is_some() {
        return true;
    }
    let status = Command::new("unshare")
        .args([
            "--net",
            "--",
            "sh",
            "-c",
            "ip link set lo up && exec \"$@\"",
            "sh",
        ])
        .arg(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env("ANONCHAT_ISOLATED", "1")
        .status()
        .expect(
            "`unshare` (util-linux) and `ip` (iproute2) isolate the test; .ci/run installs them",
        );
    assert!(
        status.success(),
        "{name} failed in its network namespace (output above)"
    );
    false
}
