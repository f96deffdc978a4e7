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
/// one that exists here (the services are not installed on a test machine).
#[test]
fn systemd_accepts_the_units() {
    let dir = std::env::temp_dir().join(format!("anonchat-units-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut units = Vec::new();
    for unit in ["anonchat-verifier.service", "anonchat-rendezvous.service"] {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("deploy/systemd")
                .join(unit),
        )
        .unwrap()
        .replace("/usr/local/bin/anonchat-verifier", "/bin/true")
        .replace("/usr/local/bin/anonchat-rendezvous", "/bin/true");
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
