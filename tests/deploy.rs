//! The deployment examples hold to the code: each service's environment file under `deploy/`
//! lists every setting it reads, with the default its clap attribute gives (the file is written
//! from those attributes; `ANONCHAT_REGENERATE=1 cargo test --test deploy` writes it again), and
//! the systemd units load those files and run the binaries' real commands.

use std::path::Path;

fn check(file: &str, expected: String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    if std::env::var_os("ANONCHAT_REGENERATE").is_some() {
        std::fs::write(&path, &expected).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == expected,
        "{file} is not what the settings say; run ANONCHAT_REGENERATE=1 cargo test --test deploy"
    );
}

#[test]
fn the_environment_files_list_every_setting_with_its_default() {
    let verifier = anonchat_serve::env_file::<anonchat_verifier::service::ServiceConfig>(
        "anonchat-verifier serve",
    );
    let rendezvous = anonchat_serve::env_file::<anonchat_rendezvous::config::Config>(
        "anonchat-rendezvous serve",
    );
    for (text, some) in [
        (
            &verifier,
            [
                "#VERIFY_MODE=active",
                "#VERIFIER_ADDR=127.0.0.1:8000",
                "#MAX_CONNECTIONS=",
            ],
        ),
        (
            &rendezvous,
            [
                "#REDIS_URL=",
                "#RENDEZVOUS_ADDR=127.0.0.1:3002",
                "#BAN_SECONDS=86400",
            ],
        ),
    ] {
        for line in some {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
    }
    check("deploy/verifier.env", verifier);
    check("deploy/rendezvous.env", rendezvous);
}

#[test]
fn the_systemd_units_load_the_environment_files_and_run_serve() {
    for (unit, env, binary) in [
        (
            "anonchat-verifier.service",
            "verifier.env",
            "anonchat-verifier",
        ),
        (
            "anonchat-rendezvous.service",
            "rendezvous.env",
            "anonchat-rendezvous",
        ),
    ] {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("deploy/systemd")
                .join(unit),
        )
        .unwrap();
        assert!(
            text.contains(&format!("EnvironmentFile=/etc/anonchat/{env}")),
            "{unit}"
        );
        assert!(
            text.contains(&format!("ExecStart=/usr/local/bin/{binary} serve")),
            "{unit}"
        );
    }
}

/// `systemd-analyze verify` on the units as written, with only the binaries' path pointed at
/// one that exists here (the services are not installed on a test machine, and coturn's user
/// is not there before its package makes it).
#[test]
fn systemd_accepts_the_units() {
    let dir = std::env::temp_dir().join(format!("anonchat-units-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut units = Vec::new();
    for unit in [
        "anonchat-verifier.service",
        "anonchat-rendezvous.service",
        "anonchat-turn.service",
    ] {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("deploy/systemd")
                .join(unit),
        )
        .unwrap()
        .replace("/usr/local/bin/anonchat-verifier", "/bin/true")
        .replace("/usr/local/bin/anonchat-rendezvous", "/bin/true")
        .replace("/usr/bin/turnserver", "/bin/true");
        let path = dir.join(unit);
        std::fs::write(&path, text).unwrap();
        units.push(path);
    }
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .args(&units)
        .output()
        .expect("systemd-analyze (Debian's systemd; .ci/run installs it)");
    std::fs::remove_dir_all(&dir).unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
}

/// `promtool` (Debian's prometheus package; .ci/run installs it) in `deploy/prometheus/`.
fn promtool(args: &[&str]) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus");
    let out = std::process::Command::new("promtool")
        .args(args)
        .current_dir(&dir)
        .output()
        .expect(
            "promtool (Debian's prometheus package) checks the alert rules; .ci/run installs it",
        );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}:\n{text}");
    text
}

#[test]
fn the_alert_rules_load_and_fire_on_the_situations_they_are_for() {
    assert!(promtool(&["check", "rules", "anonchat.rules.yml"]).contains("SUCCESS"));
    promtool(&["check", "config", "prometheus.yml"]);
    // Each alert against series made for it (anonchat.rules.test.yml), firing and not.
    assert!(promtool(&["test", "rules", "anonchat.rules.test.yml"]).contains("SUCCESS"));
}

/// The `name="value"` pairs of `text` for label `name`.
fn label_values<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    let key = format!("{name}=\"");
    text.match_indices(&key)
        .filter(|(at, _)| {
            // Not the tail of a longer label name.
            !text[..*at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        })
        .filter_map(|(at, _)| {
            let rest = &text[at + key.len()..];
            rest.find('"').map(|end| &rest[..end])
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alert_rules_name_only_what_the_services_export() {
    use anonchat_rendezvous::config::Config;
    use anonchat_rendezvous::server::{self, Keys};
    use anonchat_verifier::service::{self, ServiceConfig};
    use std::collections::HashSet;
    use strum::IntoEnumIterator;

    let mut vc = ServiceConfig::local(anonchat_testkit::fixtures::models_dir());
    vc.rate_limit_per_minute = 0;
    vc.verify_mode = service::VerifyMode::Photo;
    let verifier = service::start(vc).await.unwrap();
    let base = format!("http://{}", verifier.addr);
    let mut rc = Config::local();
    rc.verifier_jwks_url = Some(format!("{base}/.well-known/jwks.json"));
    let keys = Keys::from_config(&rc).unwrap();
    let rendezvous = server::start_from_config(rc, keys, std::future::pending())
        .await
        .unwrap();
    // One verification, so that the per-stage series exist.
    let home = std::env::temp_dir().join(format!("anonchat-deploy-metrics-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let device = anonchat_peer::identity::Identity::load_or_create(&home).unwrap();
    let photo = anonchat_testkit::fixtures::face("m_obama_official.jpg");
    anonchat_peer::verify::verify(&base, &device, photo, false)
        .await
        .unwrap();
    let mut scraped = String::new();
    for url in [
        format!("{base}/metrics"),
        format!("http://{}/metrics", rendezvous.addr),
    ] {
        scraped += &reqwest::get(&url).await.unwrap().text().await.unwrap();
    }
    let exported: HashSet<&str> = scraped
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for ready in [
        "rendezvous_ready 1",
        "verifier_ready 1",
        "verifier_workers ",
    ] {
        assert!(
            scraped.lines().any(|l| l.starts_with(ready)),
            "no {ready:?} in\n{scraped}"
        );
    }

    let rules = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus/anonchat.rules.yml"),
    )
    .unwrap();
    let exprs: String = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("expr:"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut named = 0;
    for word in exprs.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if !(word.starts_with("rendezvous_") || word.starts_with("verifier_")) {
            continue;
        }
        let family = ["_total", "_bucket", "_count", "_sum"]
            .iter()
            .find_map(|suffix| word.strip_suffix(suffix))
            .unwrap_or(word);
        assert!(
            exported.contains(family),
            "the rules name {word}, which no service exports ({exported:?})"
        );
        named += 1;
    }
    assert!(
        named >= 10,
        "the rules name {named} of the services' metrics"
    );
    // Label values: the protocols' error codes, and stages that are measured.
    let rendezvous_codes: Vec<&str> = anonchat_protocol::rendezvous::ErrorCode::iter()
        .map(|c| c.as_str())
        .collect();
    for code in label_values(&exprs, "label") {
        assert!(
            rendezvous_codes.contains(&code),
            "no rendezvous error code {code:?}"
        );
    }
    let verifier_codes: Vec<&str> = anonchat_protocol::verify::ErrorCode::iter()
        .map(|c| c.as_str())
        .collect();
    for outcome in label_values(&exprs, "outcome") {
        assert!(
            verifier_codes.contains(&outcome) || outcome == "verified",
            "no verifier outcome {outcome:?}"
        );
    }
    for stage in label_values(&exprs, "stage") {
        assert!(
            scraped.contains(&format!("stage=\"{stage}\"")),
            "no stage {stage:?} is measured"
        );
    }
}

/// The README's "from scratch" block of "Deploying with systemd", as written.
fn readme_deployment() -> String {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let from = readme
        .find("From scratch, on a Debian 12 machine")
        .expect("the README's deployment section");
    let block = &readme[from..];
    let start = block.find("```sh\n").expect("its shell block") + "```sh\n".len();
    let end = start + block[start..].find("```").unwrap();
    block[start..end].to_owned()
}

/// A systemd `EnvironmentFile`: `KEY=VALUE` lines, comments (`#`, `;`) and blank lines skipped,
/// one pair of surrounding quotes taken off a value.
fn environment_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = v.trim();
            let unquoted = ['"', '\'']
                .iter()
                .find_map(|q| v.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
                .unwrap_or(v);
            (k.trim().to_owned(), unquoted.to_owned())
        })
        .collect()
}

/// The README's deployment, followed on this machine: its commands as written (inside a
/// network namespace, every absolute path under a scratch directory, the binaries the tests
/// built), then `systemctl enable --now` as systemd does it, then its own checks.
#[test]
fn the_readmes_deployment_followed_from_scratch_serves() {
    if !anonchat_testkit::netns::isolated("the_readmes_deployment_followed_from_scratch_serves") {
        return;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scratch = std::env::temp_dir().join(format!("anonchat-deploy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    // The binaries `cargo test --workspace` built beside this test's own.
    let bins = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_path_buf();
    for bin in ["anonchat-verifier", "anonchat-rendezvous"] {
        if !bins.join(bin).exists() {
            let built = std::process::Command::new(env!("CARGO"))
                .args(["build", "-p", bin, "--bin", bin])
                .current_dir(repo)
                .status()
                .unwrap();
            assert!(built.success(), "building {bin}");
        }
    }
    let relocate = |text: &str| -> String {
        let mut text = text.replace("target/release/", &format!("{}/", bins.display()));
        for dir in [
            "/usr/local/bin",
            "/opt/anonchat",
            "/etc/anonchat",
            "/etc/systemd/system",
        ] {
            text = text.replace(dir, &format!("{}{dir}", scratch.display()));
        }
        text
    };
    let block = relocate(&readme_deployment());
    let (before, rest) = block
        .split_once("systemctl enable --now ")
        .expect("the block starts the services with systemctl");
    let (units, after) = rest.split_once('\n').unwrap();
    for dir in ["usr/local/bin", "opt", "etc/systemd/system"] {
        std::fs::create_dir_all(scratch.join(dir)).unwrap();
    }

    // What apt-get install redis-server leaves running.
    let redis = std::process::Command::new("redis-server")
        .args(["--port", "6379", "--save", "", "--appendonly", "no"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-server (.ci/run installs it)");
    let shell = |script: &str| {
        // Left out: installing packages, making a system account, building in release.
        let prelude = format!(
            "apt-get() {{ :; }}; useradd() {{ :; }}; chown() {{ :; }}; cargo() {{ :; }}\n\
             export PATH={}/usr/local/bin:$PATH\n",
            scratch.display()
        );
        let out = std::process::Command::new("bash")
            .args(["-euo", "pipefail", "-c", &format!("{prelude}{script}")])
            .current_dir(repo)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "the README's commands failed:\n{script}\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    shell(before);

    // systemctl enable --now: each unit's ExecStart with its EnvironmentFile, nothing else.
    let mut services = Vec::new();
    for unit in units.split_whitespace() {
        let text = relocate(
            &std::fs::read_to_string(scratch.join(format!("etc/systemd/system/{unit}.service")))
                .unwrap(),
        );
        let setting = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{key}=")))
                .unwrap_or_else(|| panic!("{unit} has no {key}"))
                .to_owned()
        };
        let env = environment_file(&std::fs::read_to_string(setting("EnvironmentFile")).unwrap());
        let exec = setting("ExecStart");
        let mut argv = exec.split_whitespace();
        let child = std::process::Command::new(argv.next().unwrap())
            .args(argv)
            .env_clear()
            .envs(env)
            .spawn()
            .unwrap_or_else(|e| panic!("{unit}: {exec}: {e}"));
        services.push(child);
    }
    let checked = std::panic::catch_unwind(|| shell(after));
    for mut child in services.into_iter().chain([redis]) {
        let _ = child.kill();
        let _ = child.wait();
    }
    let answers = checked.unwrap();
    assert_eq!(
        answers.matches("ready").count(),
        2,
        "both /readyz: {answers}"
    );
    // What the block wrote is what the services ran with.
    let written = std::fs::read_to_string(scratch.join("etc/anonchat/rendezvous.env")).unwrap();
    let secret = environment_file(&written)
        .into_iter()
        .find(|(k, _)| k == "SERVER_SECRET")
        .unwrap()
        .1;
    assert_eq!(secret.len(), 64, "openssl's 32 random bytes, in hex");
    std::fs::remove_dir_all(&scratch).unwrap();
}
