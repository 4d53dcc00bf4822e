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

// ---------------------------------------------------------------------------
// bombs
// ---------------------------------------------------------------------------

/// LSB-first bit writer (deflate, VP8L).
#[derive(Default)]
struct LsbBits {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl LsbBits {
    fn put(&mut self, v: u64, bits: u32) {
        self.acc |= v << self.n;
        self.n += bits;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }
    /// A Huffman code (deflate writes them most significant bit first).
    fn code(&mut self, code: u64, len: u32) {
        let mut r = 0;
        for i in 0..len {
            r |= ((code >> i) & 1) << (len - 1 - i);
        }
        self.put(r, len);
    }
    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

/// A zlib stream of `n` zero bytes: one fixed-Huffman block of a literal and then matches of
/// 258 bytes at distance 1.
fn zlib_zeros(n: u64) -> Vec<u8> {
    assert!(n >= 1);
    let mut b = LsbBits::default();
    b.put(1, 1); // BFINAL
    b.put(1, 2); // BTYPE = fixed Huffman
    b.code(0x30, 8); // literal 0
    let rest = n - 1;
    for _ in 0..rest / 258 {
        b.code(0xC5, 8); // length code 285 = 258
        b.code(0, 5); // distance code 0 = 1
    }
    for _ in 0..rest % 258 {
        b.code(0x30, 8);
    }
    b.code(0, 7); // end of block
    let mut out = vec![0x78, 0x01];
    out.extend(b.finish());
    let adler = ((n % 65521) << 16) | 1;
    out.extend((adler as u32).to_be_bytes());
    out
}

fn crc32(parts: &[&[u8]]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for p in parts {
        for &byte in *p {
            c ^= u32::from(byte);
            for _ in 0..8 {
                c = if c & 1 == 1 {
                    (c >> 1) ^ 0xEDB8_8320
                } else {
                    c >> 1
                };
            }
        }
    }
    !c
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend((data.len() as u32).to_be_bytes());
    out.extend(kind);
    out.extend(data);
    out.extend(crc32(&[kind, data]).to_be_bytes());
}

/// An RGBA PNG of zeros (transparent black), `bits` 8 or 16 a sample; `nonce` goes into a
/// text chunk, so copies are distinct files (the store keeps one original per SHA-256).
fn png_bomb(w: u32, h: u32, bits: u8, nonce: u8) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([bits, 6, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    png_chunk(&mut out, b"tEXt", &[b'n', 0, b'0' + nonce]);
    let row = 1 + u64::from(w) * 4 * u64::from(bits) / 8;
    png_chunk(&mut out, b"IDAT", &zlib_zeros(row * u64::from(h)));
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// MSB-first bit writer with JPEG's 0xFF byte stuffing.
#[derive(Default)]
struct JpegBits {
    out: Vec<u8>,
    acc: u32,
    n: u32,
}

impl JpegBits {
    fn put(&mut self, v: u32, bits: u32) {
        for i in (0..bits).rev() {
            self.acc = (self.acc << 1) | ((v >> i) & 1);
            self.n += 1;
            if self.n == 8 {
                self.out.push(self.acc as u8);
                if self.acc == 0xFF {
                    self.out.push(0);
                }
                self.acc = 0;
                self.n = 0;
            }
        }
    }
    fn finish(mut self) -> Vec<u8> {
        while self.n != 0 {
            self.put(1, 1);
        }
        self.out
    }
}

fn segment(out: &mut Vec<u8>, marker: u8, data: &[u8]) {
    out.extend([0xFF, marker]);
    out.extend(((data.len() + 2) as u16).to_be_bytes());
    out.extend(data);
}

/// A progressive 4:4:4 JPEG of `w`×`h` mid-grey: a DC scan of all three components, then one
/// AC scan per component made of end-of-band runs. Every coefficient is zero, so it compresses
/// to a bit per block, but a decoder of progressive JPEG holds all of them. `nonce` goes into
/// a comment.
fn progressive_jpeg_bomb(w: u16, h: u16, nonce: u8) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8];
    segment(&mut out, 0xFE, &[nonce]);
    let mut dqt = vec![0u8];
    dqt.extend([1u8; 64]);
    segment(&mut out, 0xDB, &dqt);
    let mut sof = vec![8];
    sof.extend(h.to_be_bytes());
    sof.extend(w.to_be_bytes());
    sof.push(3);
    for id in 1..=3 {
        sof.extend([id, 0x11, 0]);
    }
    segment(&mut out, 0xC2, &sof);
    // DC table: one code of length 1 for category 0.
    let mut dht = vec![0x00, 1];
    dht.extend([0u8; 15]);
    dht.push(0);
    segment(&mut out, 0xC4, &dht);
    // AC table: EOBn (n = 0..14) as the 4-bit codes 0000..1110.
    let mut dht = vec![0x10, 0, 0, 0, 15];
    dht.extend([0u8; 12]);
    dht.extend((0..15u8).map(|r| r << 4));
    segment(&mut out, 0xC4, &dht);
    let blocks = u32::from(w).div_ceil(8) * u32::from(h).div_ceil(8);
    // DC scan, interleaved: a zero difference per block per component.
    segment(&mut out, 0xDA, &[3, 1, 0x00, 2, 0x00, 3, 0x00, 0, 0, 0]);
    let mut bits = JpegBits::default();
    for _ in 0..blocks * 3 {
        bits.put(0, 1);
    }
    out.extend(bits.finish());
    for id in 1..=3u8 {
        segment(&mut out, 0xDA, &[1, id, 0x00, 1, 63, 0]);
        let mut bits = JpegBits::default();
        let mut left = blocks;
        while left > 0 {
            let run = left.min(32767);
            let r = 31 - run.leading_zeros();
            bits.put(r, 4);
            bits.put(run - (1 << r), r);
            left -= run;
        }
        out.extend(bits.finish());
    }
    out.extend([0xFF, 0xD9]);
    out
}

/// A lossless WebP of `w`×`h` in one colour: every prefix code has a single symbol, so each
/// pixel takes no bits at all. `nonce` is the colour's green.
fn webp_bomb(w: u32, h: u32, nonce: u8) -> Vec<u8> {
    let mut b = LsbBits::default();
    b.put(u64::from(w - 1), 14);
    b.put(u64::from(h - 1), 14);
    b.put(0, 1); // alpha_is_used
    b.put(0, 3); // version
    b.put(0, 1); // no transform
    b.put(0, 1); // no colour cache
    b.put(0, 1); // no meta prefix codes
    for symbol in [u64::from(nonce), 0, 0, 255, 0] {
        // green, red, blue, alpha, distance: a simple code with one 8-bit symbol
        b.put(1, 1);
        b.put(0, 1);
        b.put(1, 1);
        b.put(symbol, 8);
    }
    let mut vp8l = vec![0x2F];
    vp8l.extend(b.finish());
    if vp8l.len() % 2 == 1 {
        vp8l.push(0);
    }
    let mut out = b"RIFF".to_vec();
    out.extend(((4 + 8 + vp8l.len()) as u32).to_le_bytes());
    out.extend(b"WEBPVP8L");
    out.extend((vp8l.len() as u32).to_le_bytes());
    out.extend(vp8l);
    out
}

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
