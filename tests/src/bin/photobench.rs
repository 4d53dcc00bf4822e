//! Photo benchmarks (bench/photos.sh drives them; numbers go in bench/RESULTS.md).
//!
//! ```text
//! photobench generate OUT.jpg [PAD_TO_BYTES]   a 4000×3000 photo-like JPEG (q90), optionally padded
//!                                              after its end marker to a given size
//! photobench derive FILE [N]                   both derivatives N times in this process: median ms
//! photobench upload URL FILE [N]               tus upload of FILE to a server started with --demo,
//!                                              N times (each with a fresh tail so it is not deduplicated)
//! ```

use std::time::Instant;

use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn generate(path: &str, pad_to: Option<usize>) {
    let (w, h) = (4000u32, 3000u32);
    let mut seed: u32 = 0x1234_5678;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let fx = x as f32 / w as f32;
        let fy = y as f32 / h as f32;
        let base = [90.0 + 120.0 * fy, 130.0 + 60.0 * fx, 200.0 - 150.0 * fy];
        let blob = 40.0 * ((fx * 9.0).sin() * (fy * 7.0).cos());
        let tex = 18.0 * ((x as f32 * 0.21).sin() * (y as f32 * 0.17).cos());
        let r = rnd();
        let mut px = [0u8; 3];
        for (c, b) in base.iter().enumerate() {
            let n = ((r >> (c * 8)) & 0xFF) as f32 / 255.0 * 16.0 - 8.0;
            px[c] = (b + blob + tex * (c as f32 * 0.3 + 0.5) + n).clamp(0.0, 255.0) as u8;
        }
        image::Rgb(px)
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&img)
        .expect("encode");
    if let Some(n) = pad_to.filter(|n| *n > out.len()) {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        while out.len() < n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.extend_from_slice(&x.to_le_bytes());
        }
        out.truncate(n);
    }
    std::fs::write(path, &out).expect("write");
    eprintln!("generated {path}: {} bytes", out.len());
}

fn derive(path: &str, n: usize) {
    let bytes = std::fs::read(path).expect("read");
    let limits = thor::photos::imaging::Limits::default();
    let mut times = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let d = thor::photos::imaging::derive(&bytes, &limits).expect("derive");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        std::hint::black_box(d);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "derive {path}: n={n} median={:.1} ms min={:.1} ms max={:.1} ms",
        times[n / 2],
        times[0],
        times[n - 1]
    );
}

async fn upload(base: &str, path: &str, n: usize) {
    let client = reqwest::Client::new();
    let login: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": "handhaver", "password": "demo", "device_id": "photobench"}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("login json");
    let token = login["token"].as_str().expect("token").to_string();
    let mut bytes = std::fs::read(path).expect("read");
    let len = bytes.len();
    let mut rates = Vec::new();
    for i in 0..n {
        // A fresh tail: otherwise the second upload is deduplicated and sends nothing.
        let tail = len - 8;
        bytes[tail..].copy_from_slice(&(i as u64 ^ 0x5eed_0000_0000).to_le_bytes());
        let sha: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let rid = uuid::Uuid::new_v4();
        let now = chrono::Utc::now().to_rfc3339();
        let r = client
            .post(format!("{base}/api/v1/violations"))
            .bearer_auth(&token)
            .json(
                &json!({"id": rid, "category": "afval", "observed_at": now, "outcome": "warning",
                "location": {"lat": 52.4599, "lon": 4.6218, "accuracy_m": 5.0, "source": "gps"}}),
            )
            .send()
            .await
            .expect("report");
        assert!(r.status().is_success(), "report: {}", r.status());
        let pid = uuid::Uuid::new_v4();
        let r = client
            .post(format!("{base}/api/v1/photos"))
            .bearer_auth(&token)
            .json(&json!({"id": pid, "violation_id": rid, "sha256": sha, "size_bytes": len, "mime": "image/jpeg"}))
            .send()
            .await
            .expect("photo");
        assert!(
            r.status().is_success(),
            "photo: {}",
            r.text().await.unwrap_or_default()
        );
        let r = client
            .post(format!("{base}/api/v1/uploads"))
            .bearer_auth(&token)
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Length", len.to_string())
            .header(
                "Upload-Metadata",
                format!(
                    "photo_id {}",
                    base64::engine::general_purpose::STANDARD.encode(pid.to_string())
                ),
            )
            .send()
            .await
            .expect("create");
        assert_eq!(r.status(), 201);
        let body = bytes.clone();
        let t = Instant::now();
        let r = client
            .patch(format!("{base}/api/v1/uploads/{pid}"))
            .bearer_auth(&token)
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Offset", "0")
            .header("Content-Type", "application/offset+octet-stream")
            .body(body)
            .send()
            .await
            .expect("patch");
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(r.status(), 204, "{}", r.text().await.unwrap_or_default());
        let mbps = len as f64 / secs / 1e6;
        rates.push(mbps);
        println!(
            "upload {i}: {len} bytes in {:.1} ms = {mbps:.0} MB/s",
            secs * 1000.0
        );
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "upload {path}: n={n} median={:.0} MB/s (SHA-256 verified, fdatasync'd, stored)",
        rates[n / 2]
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("generate") => generate(
            args.get(2).map(String::as_str).unwrap_or("bench_12mp.jpg"),
            args.get(3).and_then(|s| s.parse().ok()),
        ),
        Some("derive") => derive(
            args.get(2).map(String::as_str).unwrap_or("bench_12mp.jpg"),
            args.get(3).and_then(|s| s.parse().ok()).unwrap_or(21),
        ),
        Some("upload") => {
            upload(
                args.get(2)
                    .map(String::as_str)
                    .unwrap_or("http://127.0.0.1:8080"),
                args.get(3)
                    .map(String::as_str)
                    .unwrap_or("bench_upload.jpg"),
                args.get(4).and_then(|s| s.parse().ok()).unwrap_or(5),
            )
            .await
        }
        _ => eprintln!("usage: photobench generate|derive|upload … (see the file's header)"),
    }
}
