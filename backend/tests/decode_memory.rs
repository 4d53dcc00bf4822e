//! Decompression bombs against the real `thor` binary: the server's own peak RSS (VmHWM of its
//! process, reset before each bomb through /proc/PID/clear_refs) while it derives each bomb,
//! first one job alone and then two at a time, must stay within 100 MB above its RSS before
//! the bomb per job; or the upload is refused with a 422 problem+json naming the limit.
//!
//! The bombs are generated here, byte by byte, so that they are small on disk and this test
//! process never holds their pixels: PNG 10000×10000 RGBA at 16 and at 8 bits (zeros), a
//! progressive 4:4:4 JPEG of 10000×10000 (every coefficient zero) and a lossless WebP of
//! 10000×10000 (one colour). Runs on Linux only (it reads /proc); elsewhere it fails loudly.
//!
//! `cargo test -p thor --test decode_memory -- --nocapture` prints the numbers.
//! THOR_MEMTEST_BIN=/path/to/thor measures another build (e.g. the one before this fix).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use sha2::Digest;

const MB: u64 = 1_000_000;
/// The promise: at most this much above idle per derivative job.
const PER_JOB: u64 = 100 * MB;
/// Bounds (not timings under test): how long a bomb may take before the test gives up.
const DERIVE_BOUND: Duration = Duration::from_secs(300);

#[path = "support/bombs.rs"]
mod bombs;
use bombs::{png_bomb, progressive_jpeg_bomb, webp_bomb};

// ---------------------------------------------------------------------------
// the server process
// ---------------------------------------------------------------------------

struct Server {
    child: Child,
    addr: SocketAddr,
    _dir: tempdir::Dir,
}

mod tempdir {
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new() -> Dir {
            let p = std::env::temp_dir().join(format!("thor-memtest-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&p).expect("temporary folder");
            Dir(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start() -> Server {
        let bin = std::env::var("THOR_MEMTEST_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_thor").to_string());
        let dir = tempdir::Dir::new();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
        let child = Command::new(&bin)
            .args(["serve", "--demo"])
            .env("THOR_ADDR", addr.to_string())
            .env("THOR_DATA_DIR", &dir.0)
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("!!!!! cannot start {bin}: {e} !!!!!"));
        let s = Server {
            child,
            addr,
            _dir: dir,
        };
        let started = Instant::now();
        while s.request("GET", "/readyz", &[], &[]).map(|r| r.0) != Some(200) {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the server did not become ready within 120 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        s
    }

    fn status(&self, field: &str) -> u64 {
        let path = format!("/proc/{}/status", self.child.id());
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("!!!!! cannot read {path}: {e} (Linux only) !!!!!"));
        text.lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .unwrap_or_else(|| panic!("!!!!! no {field} in {path} !!!!!"))
    }

    /// Resets the peak (VmHWM) to the current RSS and returns that RSS.
    fn reset_peak(&self) -> u64 {
        let path = format!("/proc/{}/clear_refs", self.child.id());
        std::fs::write(&path, "5").unwrap_or_else(|e| {
            panic!("!!!!! cannot reset the peak RSS through {path}: {e} !!!!!")
        });
        self.status("VmRSS:")
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Option<(u16, String, Vec<u8>)> {
        let mut s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(120))).ok()?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).ok()?;
        // A server that answers before reading the whole body (a refusal) closes the
        // connection: its answer is still there to read.
        let _ = s.write_all(body);
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).ok()?;
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&raw[..split]).to_string();
        let status = head.split(' ').nth(1)?.parse().ok()?;
        Some((status, head, raw[split + 4..].to_vec()))
    }

    fn json(&self, method: &str, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        let mut h = vec![("Content-Type", "application/json".to_string())];
        if let Some(t) = token {
            h.push(("Authorization", format!("Bearer {t}")));
        }
        let body = if body.is_null() {
            Vec::new()
        } else {
            serde_json::to_vec(body).expect("json")
        };
        let (status, _, b) = self
            .request(method, path, &h, &body)
            .unwrap_or_else(|| panic!("{method} {path}: no answer"));
        (status, serde_json::from_slice(&b).unwrap_or(Value::Null))
    }
}

fn report(id: uuid::Uuid) -> Value {
    let now = chrono::Utc::now() - chrono::Duration::minutes(1);
    json!({
        "id": id, "category": "parkeren", "feitcode": "R397a", "observed_at": now.to_rfc3339(),
        "location": { "lat": 52.4599, "lon": 4.6218, "accuracy_m": 6.5, "source": "gps", "fix_time": now.to_rfc3339() },
        "description": "Geparkeerd op de stoep", "outcome": "fine", "plate": "12-abc-3", "driver_present": false
    })
}

enum Upload {
    Accepted(uuid::Uuid),
    Refused(Value),
}

fn upload(s: &Server, t: &str, report: uuid::Uuid, bytes: &[u8], mime: &str) -> Upload {
    let pid = uuid::Uuid::new_v4();
    let sha = hex(&sha2::Sha256::digest(bytes));
    let (st, b) = s.json(
        "POST",
        "/api/v1/photos",
        Some(t),
        &json!({ "id": pid, "violation_id": report, "sha256": sha, "size_bytes": bytes.len(),
                 "mime": mime, "captured_at": chrono::Utc::now().to_rfc3339(),
                 "lat": 52.4599, "lon": 4.6218, "accuracy_m": 5.0 }),
    );
    assert_eq!(st, 201, "photo record: {b}");
    let b64 = |v: &str| base64::engine::general_purpose::STANDARD.encode(v);
    let tus = |extra: Vec<(&'static str, String)>| {
        let mut h = vec![
            ("Authorization", format!("Bearer {t}")),
            ("Tus-Resumable", "1.0.0".to_string()),
        ];
        h.extend(extra);
        h
    };
    let (st, head, _) = s
        .request(
            "POST",
            "/api/v1/uploads",
            &tus(vec![
                ("Upload-Length", bytes.len().to_string()),
                (
                    "Upload-Metadata",
                    format!("photo_id {},filetype {}", b64(&pid.to_string()), b64(mime)),
                ),
            ]),
            &[],
        )
        .expect("tus creation answers");
    assert_eq!(st, 201, "tus creation: {head}");
    let (st, head, body) = s
        .request(
            "PATCH",
            &format!("/api/v1/uploads/{pid}"),
            &tus(vec![
                ("Upload-Offset", "0".to_string()),
                (
                    "Content-Type",
                    "application/offset+octet-stream".to_string(),
                ),
            ]),
            bytes,
        )
        .expect("tus PATCH answers");
    match st {
        204 => Upload::Accepted(pid),
        422 => {
            assert!(
                head.to_ascii_lowercase()
                    .contains("content-type: application/problem+json"),
                "a 422 must be problem+json: {head}"
            );
            let p: Value = serde_json::from_slice(&body).expect("problem json");
            assert!(
                p["detail"].as_str().unwrap_or("").contains("limit"),
                "the 422 must name the limit: {p}"
            );
            let (_, rec) = s.json(
                "GET",
                &format!("/api/v1/photos/{pid}"),
                Some(t),
                &Value::Null,
            );
            assert_eq!(
                rec["upload_state"], "failed",
                "a refused upload's record: {rec}"
            );
            Upload::Refused(p)
        }
        other => panic!(
            "the upload answered {other}: {head}\n{}",
            String::from_utf8_lossy(&body)
        ),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Waits (bounded) until the worker has finished `pid`; returns the record.
fn derived(s: &Server, t: &str, pid: uuid::Uuid) -> Value {
    let started = Instant::now();
    loop {
        let (_, rec) = s.json(
            "GET",
            &format!("/api/v1/photos/{pid}"),
            Some(t),
            &Value::Null,
        );
        if rec["derivative_state"] == "done" || rec["derivative_state"] == "failed" {
            return rec;
        }
        assert!(
            started.elapsed() < DERIVE_BOUND,
            "photo {pid} not derived within {DERIVE_BOUND:?}: {rec}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

struct Outcome {
    peak_above: u64,
    results: Vec<String>,
}

/// Uploads `copies` of a bomb back to back and waits until all are derived (or refused);
/// returns the server's peak RSS above `idle`, its RSS before the first bomb (memory a
/// previous bomb left with the allocator counts against the next: stricter, never laxer).
fn run(
    idle: u64,
    s: &Server,
    t: &str,
    report: uuid::Uuid,
    bytes: &[Vec<u8>],
    mime: &str,
    must_derive: bool,
) -> Outcome {
    // Settle: let the previous bomb's memory go back (the server trims after 10 quiet seconds).
    std::thread::sleep(Duration::from_secs(11));
    s.reset_peak();
    let uploads: Vec<Upload> = bytes
        .iter()
        .map(|b| upload(s, t, report, b, mime))
        .collect();
    let mut results = Vec::new();
    for u in uploads {
        match u {
            Upload::Refused(p) => results.push(format!("422 at upload: {}", p["detail"])),
            Upload::Accepted(pid) => {
                let rec = derived(s, t, pid);
                match rec["derivative_state"].as_str() {
                    Some("done") => results.push("derived".into()),
                    _ => {
                        let why = rec["derivative_error"].as_str().unwrap_or("").to_string();
                        assert!(
                            !must_derive,
                            "this bomb can be derived in bounded memory, but failed: {why}"
                        );
                        assert!(
                            why.contains("limit is"),
                            "a bomb not derived must say it is over the memory limit: {why}"
                        );
                        results.push(format!("refused by the worker: {why}"));
                    }
                }
            }
        }
    }
    let peak = s.status("VmHWM:");
    Outcome {
        peak_above: peak.saturating_sub(idle),
        results,
    }
}

#[test]
fn decompression_bombs_stay_within_the_memory_promise() {
    if !std::path::Path::new("/proc/self/status").exists() {
        panic!("!!!!! decode_memory needs Linux /proc to measure the server's RSS !!!!!");
    }
    type Make = fn(u8) -> Vec<u8>;
    let bombs: Vec<(&str, Make, &str, bool)> = vec![
        (
            "PNG 10000x10000 RGBA 16-bit",
            |n| png_bomb(10_000, 10_000, 16, n),
            "image/png",
            true,
        ),
        (
            "PNG 10000x10000 RGBA 8-bit",
            |n| png_bomb(10_000, 10_000, 8, n),
            "image/png",
            true,
        ),
        (
            "JPEG 10000x10000 progressive 4:4:4",
            |n| progressive_jpeg_bomb(10_000, 10_000, n),
            "image/jpeg",
            false,
        ),
        (
            "WebP 10000x10000 lossless",
            |n| webp_bomb(10_000, 10_000, n),
            "image/webp",
            false,
        ),
    ];
    let s = Server::start();
    let (st, b) = s.json(
        "POST",
        "/api/v1/auth/login",
        None,
        &json!({ "username": "handhaver", "password": "demo", "device_id": "memtest" }),
    );
    assert_eq!(st, 200, "login: {b}");
    let t = b["token"].as_str().expect("token").to_string();
    let rid = uuid::Uuid::new_v4();
    let (st, b) = s.json("POST", "/api/v1/violations", Some(&t), &report(rid));
    assert_eq!(st, 201, "report: {b}");

    std::thread::sleep(Duration::from_secs(11));
    let idle = s.reset_peak();
    eprintln!("decode_memory: idle RSS {} MB", idle / MB);
    let mut failures = Vec::new();
    let mut nonce = 0u8;
    for (name, make, mime, must_derive) in &bombs {
        for copies in [1usize, 2] {
            // Distinct files: the same bytes again would be one original, derived once.
            let bytes: Vec<Vec<u8>> = (0..copies)
                .map(|_| {
                    nonce += 1;
                    make(nonce)
                })
                .collect();
            let o = run(idle, &s, &t, rid, &bytes, mime, *must_derive);
            let per_job = o.peak_above / copies as u64;
            eprintln!(
                "decode_memory: {name} ({} KB), {copies} at a time: peak {} MB above idle ({} MB per job): {:?}",
                bytes[0].len() / 1000,
                o.peak_above / MB,
                per_job / MB,
                o.results
            );
            if o.peak_above > PER_JOB * copies as u64 {
                failures.push(format!(
                    "{name}, {copies} at a time: {} MB above idle, over {} MB",
                    o.peak_above / MB,
                    PER_JOB * copies as u64 / MB
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "over the memory promise: {failures:#?}"
    );
}

/// The generators make what they claim (checked with the decoders the server uses).
#[test]
fn the_bombs_are_what_they_claim() {
    let png = png_bomb(300, 200, 16, 1);
    let img = image::load_from_memory(&png).expect("png decodes");
    assert_eq!((img.width(), img.height()), (300, 200));
    assert_eq!(img.color(), image::ColorType::Rgba16);
    let jpeg = progressive_jpeg_bomb(300, 200, 1);
    let mut d = jpeg_decoder::Decoder::new(std::io::Cursor::new(&jpeg));
    let px = d.decode().expect("jpeg decodes");
    let info = d.info().expect("info");
    assert_eq!((info.width, info.height), (300, 200));
    assert!(px.iter().all(|&v| v.abs_diff(128) <= 1), "mid-grey");
    let webp = webp_bomb(300, 200, 7);
    let img = image::load_from_memory(&webp).expect("webp decodes");
    assert_eq!((img.width(), img.height()), (300, 200));
    assert_eq!(img.to_rgba8().get_pixel(5, 5).0, [0, 7, 0, 255]);
    assert_ne!(png_bomb(10, 10, 8, 1), png_bomb(10, 10, 8, 2));
}
