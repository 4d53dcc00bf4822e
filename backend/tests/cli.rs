//! The `thor` command as an IT admin runs it: the real binary, a fresh data folder per test.
//! Machine output on stdout (parsable, no log lines or colour codes), errors as one line on
//! stderr with a non-zero exit, each subcommand with its own flags, and the account commands.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// A fresh data folder, removed when the test ends.
struct Dir(PathBuf);

impl Dir {
    fn new() -> Dir {
        let p = std::env::temp_dir().join(format!("thor-clitest-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&p).expect("temporary folder");
        Dir(p)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `thor ARGS` against `dir`'s data folder (by THOR_DATA_DIR, as in the Docker image), with
/// `stdin` on standard input; no `THOR_*` or `RUST_LOG` of the caller leaks in.
fn thor(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_thor"));
    for (k, _) in std::env::vars() {
        if k.starts_with("THOR_") || k == "DATABASE_URL" || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd
        .args(args)
        .env("THOR_DATA_DIR", dir.join("data"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run thor");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("thor's output")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The command succeeded; its stdout.
fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The command failed with one line on stderr; that line.
fn fails(out: Output, what: &str) -> String {
    assert!(
        !out.status.success(),
        "{what} should fail; stdout: {}",
        text(&out.stdout)
    );
    let err = text(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{what}: one line: {err}");
    assert!(err.starts_with("thor: "), "{what}: {err}");
    err
}

#[test]
fn briefing_json_on_a_fresh_data_dir_is_only_json() {
    let dir = Dir::new();
    let out = thor(&dir.0, &["briefing", "--json"], "");
    let stderr = text(&out.stderr);
    let stdout = ok(out, "thor briefing --json");
    let b: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {stdout}"));
    assert!(b["date"].is_string(), "{b}");
    assert!(
        !stderr.contains('\u{1b}'),
        "no colour codes off a terminal: {stderr:?}"
    );
    // The text form and the documents print only themselves, too.
    let text_briefing = ok(thor(&dir.0, &["briefing"], ""), "thor briefing");
    assert!(!text_briefing.contains("INFO"), "{text_briefing}");
    let spec: Value = serde_json::from_str(&ok(thor(&dir.0, &["openapi"], ""), "openapi"))
        .expect("openapi prints JSON only");
    assert_eq!(spec["openapi"], "3.1.0");
    let vis = ok(thor(&dir.0, &["visibility"], ""), "visibility");
    assert!(vis.starts_with("# "), "{vis}");
}

#[test]
fn each_subcommand_lists_only_its_own_flags() {
    let dir = Dir::new();
    let serve = ok(thor(&dir.0, &["serve", "--help"], ""), "serve --help");
    assert!(
        serve.contains("--addr") && serve.contains("--tombstone-days"),
        "{serve}"
    );
    for cmd in [
        &["migrate"][..],
        &["purge"],
        &["briefing"],
        &["user", "add"],
        &["user", "list"],
        &["user", "passwd"],
        &["user", "deactivate"],
        &["user", "revoke"],
        &["team", "add"],
        &["team", "list"],
    ] {
        let mut args = cmd.to_vec();
        args.push("--help");
        let help = ok(thor(&dir.0, &args, ""), &args.join(" "));
        assert!(!help.contains("--addr"), "{args:?}: {help}");
        assert!(!help.contains("--photo-max-bytes"), "{args:?}: {help}");
        assert!(help.contains("--data-dir"), "{args:?}: {help}");
    }
    let purge = ok(thor(&dir.0, &["purge", "--help"], ""), "purge --help");
    assert!(purge.contains("--tombstone-days"), "{purge}");
    // Every flag says what it is for.
    let add = ok(
        thor(&dir.0, &["user", "add", "--help"], ""),
        "user add --help",
    );
    let lines: Vec<&str> = add.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if !line.trim_start().starts_with("--") {
            continue;
        }
        // The description beside the flag, or (clap's long layout) on the next line.
        let beside = line
            .trim()
            .split("  ")
            .filter(|p| !p.trim().is_empty())
            .count()
            >= 2;
        let below = lines.get(i + 1).is_some_and(|n| {
            let n = n.trim_start();
            !n.is_empty() && !n.starts_with('-')
        });
        assert!(beside || below, "undescribed flag: {line}\n{add}");
    }
}

/// The README's flag table names every flag of `thor serve` (and its variable).
#[test]
fn the_readme_lists_every_serve_flag() {
    let dir = Dir::new();
    let help = ok(thor(&dir.0, &["serve", "--help"], ""), "serve --help");
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    for line in help.lines().map(str::trim_start) {
        let Some(flag) = line
            .strip_prefix("--")
            .and_then(|l| l.split([' ', ',']).next())
        else {
            continue;
        };
        if flag == "help" {
            continue;
        }
        assert!(
            readme.contains(&format!("`--{flag}`")),
            "README's flag table lacks --{flag}"
        );
    }
    let mut envs = help.split("[env: ").skip(1);
    for var in envs.by_ref() {
        let var = var.split(['=', ']']).next().unwrap_or("");
        assert!(readme.contains(&format!("`{var}`")), "README lacks {var}");
    }
}

#[test]
fn user_add_needs_an_existing_team() {
    let dir = Dir::new();
    let pw = "een lange wachtzin\n";
    let add = |team: Option<&str>| {
        let mut args = vec![
            "user",
            "add",
            "--username",
            "s.visser",
            "--role",
            "teamleider",
            "--password-stdin",
        ];
        if let Some(t) = team {
            args.extend(["--team", t]);
        }
        thor(&dir.0, &args, pw)
    };
    let err = fails(add(None), "user add without --team");
    assert!(err.contains("team"), "{err}");
    let err = fails(add(Some("THOR Velsen")), "user add with no teams at all");
    assert!(
        err.contains("THOR Velsen") && err.contains("team add"),
        "{err}"
    );
    ok(
        thor(&dir.0, &["team", "add", "THOR Velsen"], ""),
        "team add",
    );
    fails(
        thor(&dir.0, &["team", "add", "THOR Velsen"], ""),
        "team add twice",
    );
    let err = fails(add(Some("THOR Velzen")), "user add with a typo");
    assert!(err.contains("\"THOR Velzen\""), "{err}");
    assert!(
        err.contains("\"THOR Velsen\""),
        "lists the teams there are: {err}"
    );
    let teams = ok(thor(&dir.0, &["team", "list"], ""), "team list");
    assert!(!teams.contains("Velzen"), "a typo made no team: {teams}");
    ok(add(Some("THOR Velsen")), "user add with the team");
    // A beheerder works without a team.
    let out = ok(
        thor(
            &dir.0,
            &["user", "add", "--username", "beheer", "--role", "beheerder"],
            "",
        ),
        "beheerder without a team",
    );
    assert!(out.contains("password (shown once): "), "{out}");
    let list = ok(thor(&dir.0, &["user", "list"], ""), "user list");
    let row = list
        .lines()
        .find(|l| l.starts_with("s.visser "))
        .unwrap_or_else(|| panic!("{list}"));
    let cells: Vec<&str> = row
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        cells,
        [
            "s.visser",
            "s.visser",
            "teamleider",
            "THOR Velsen",
            "no",
            "yes"
        ],
        "{list}"
    );
    assert!(list.lines().any(|l| l.starts_with("beheer ")), "{list}");
}

/// A `thor serve` on a free port over a data folder, stopped when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(dir: &Path) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
        let child = Command::new(env!("CARGO_BIN_EXE_thor"))
            .args(["serve", "--addr", &addr.to_string()])
            .arg("--data-dir")
            .arg(dir.join("data"))
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start thor serve");
        let s = Server { child, addr };
        let started = Instant::now();
        while s.json("GET", "/readyz", None, &Value::Null).0 != 200 {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "not ready in 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        s
    }

    fn json(&self, method: &str, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        let Ok(mut s) = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5)) else {
            return (0, Value::Null);
        };
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let body = if body.is_null() {
            Vec::new()
        } else {
            serde_json::to_vec(body).expect("json")
        };
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        if let Some(t) = token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        head.push_str("\r\n");
        if s.write_all(head.as_bytes()).is_err() || s.write_all(&body).is_err() {
            return (0, Value::Null);
        }
        let mut raw = Vec::new();
        if s.read_to_end(&mut raw).is_err() {
            return (0, Value::Null);
        }
        let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
            return (0, Value::Null);
        };
        let head = String::from_utf8_lossy(&raw[..split]);
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (
            status,
            serde_json::from_slice(&raw[split + 4..]).unwrap_or(Value::Null),
        )
    }

    fn login(&self, username: &str, password: &str) -> (u16, Value) {
        self.json(
            "POST",
            "/api/v1/auth/login",
            None,
            &json!({ "username": username, "password": password, "device_id": "cli-test" }),
        )
    }
}

#[test]
fn a_deactivated_account_cannot_log_in_and_its_tokens_are_revoked() {
    let dir = Dir::new();
    let first = "een lange wachtzin";
    ok(
        thor(&dir.0, &["team", "add", "THOR Velsen"], ""),
        "team add",
    );
    ok(
        thor(
            &dir.0,
            &[
                "user",
                "add",
                "--username",
                "boa.jansen",
                "--role",
                "handhaver",
                "--team",
                "THOR Velsen",
                "--password-stdin",
            ],
            &format!("{first}\n"),
        ),
        "user add",
    );
    // A new password replaces the old one.
    let second = "nog een lange wachtzin";
    ok(
        thor(
            &dir.0,
            &["user", "passwd", "boa.jansen", "--password-stdin"],
            &format!("{second}\n"),
        ),
        "user passwd",
    );
    let err = fails(
        thor(
            &dir.0,
            &["user", "passwd", "boa.jansen", "--password-stdin"],
            "kort\n",
        ),
        "a weak password",
    );
    assert!(err.contains("12 characters"), "{err}");
    let server = Server::start(&dir.0);
    assert_eq!(server.login("boa.jansen", first).0, 401, "the old password");
    let (status, body) = server.login("boa.jansen", second);
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().expect("token").to_string();
    assert_eq!(
        server
            .json("GET", "/api/v1/auth/me", Some(&token), &Value::Null)
            .0,
        200
    );
    let out = ok(
        thor(&dir.0, &["user", "deactivate", "boa.jansen"], ""),
        "user deactivate",
    );
    assert!(out.contains("revoked 1 token"), "{out}");
    assert_eq!(
        server
            .json("GET", "/api/v1/auth/me", Some(&token), &Value::Null)
            .0,
        401,
        "the token is revoked"
    );
    assert_eq!(server.login("boa.jansen", second).0, 401, "login refused");
    drop(server);
    let list = ok(thor(&dir.0, &["user", "list"], ""), "user list");
    let row = list
        .lines()
        .find(|l| l.starts_with("boa.jansen "))
        .unwrap_or_else(|| panic!("{list}"));
    assert!(row.trim_end().ends_with("no"), "shown inactive: {list}");
    let err = fails(
        thor(&dir.0, &["user", "deactivate", "nobody"], ""),
        "an unknown user",
    );
    assert!(err.contains("\"nobody\""), "{err}");
}
