//! The binary's commands: check-config, migrate, and the loopback rule of dev sign-in.

use std::process::Command;

fn redbutton() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_redbutton"));
    c.env_remove("DATABASE_URL")
        .env_remove("REDBUTTON_CONFIG")
        .env_remove("REDBUTTON_LISTEN");
    c
}

#[test]
fn check_config_accepts_the_example_and_names_bad_keys() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/redbutton.toml");
    let out = redbutton()
        .args(["check-config", "--config", example])
        .env("REDBUTTON_SMTP_PASSWORD", "s3cret-value")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("email:       on, SMTP smtp.example.com:587"));
    assert!(!stdout.contains("s3cret-value"), "secrets never printed");

    let out = redbutton()
        .args(["check-config", "--config", example])
        .env_remove("REDBUTTON_SMTP_PASSWORD")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("REDBUTTON_SMTP_PASSWORD is not set"));

    let dir = tempfile::tempdir().unwrap();
    for (toml, needle) in [
        ("[server]\nlisen = \"x\"\n", "lisen"),
        ("[outbox]\nmax_attempts = 0\n", "outbox.max_attempts"),
        ("[[routing]]\nnotifiers = [\"email\"]\n", "routing[0].notifiers"),
        ("[database]\nurl = \"mysql://root:hunter2@db/x\"\n", "database.url"),
    ] {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, toml).unwrap();
        let out = redbutton()
            .args(["check-config", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{toml}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{toml}: {stderr}");
        assert!(!stderr.contains("hunter2"), "password leaked: {stderr}");
    }
}

#[test]
fn migrate_creates_the_sqlite_file_and_serve_refuses_non_loopback_in_dev_mode() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sub/dir/rb.db");
    let out = redbutton()
        .args(["migrate", "--database-url"])
        .arg(format!("sqlite://{}", db.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(db.exists());

    let out = redbutton()
        .args(["serve", "--listen", "0.0.0.0:0", "--database-url"])
        .arg(format!("sqlite://{}", db.display()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing to listen on 0.0.0.0"));
}
