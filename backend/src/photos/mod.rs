//! Photos as evidence.
//!
//! A photo is a synced record (which report it belongs to, the SHA-256 and size the phone
//! declares, when and where the phone took it) plus its bytes, which travel separately over tus
//! 1.0 resumable uploads (`tus.rs`), so data sync never waits for a photo and a report shows which
//! of its photos are still missing. The original is stored byte for byte in a content-addressed
//! object store (`blob.rs`); a background worker (`worker.rs`) makes a thumbnail and a preview
//! without metadata (`imaging.rs`). Reviewers see plausibility flags (`plausibility`) when a
//! photo's own GPS or clock disagrees with its report.
//!
//! `store` is the one write path; REST, the sync engine and the upload handler all call it.

pub mod blob;
pub mod entity;
pub mod imaging;
pub mod routes;
pub mod store;
pub mod sync;
pub mod tus;
pub mod worker;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// Where a photo's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UploadState {
    /// The record exists, no byte has arrived.
    Pending,
    /// Some bytes arrived; the upload can be resumed.
    Partial,
    /// Every byte arrived and matched the declared SHA-256 and size.
    Complete,
    /// The bytes were refused (wrong type, too large, not an image); see `failure`.
    Failed,
}

/// Whether the thumbnail and preview exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DerivativeState {
    /// Nothing to derive yet (the original has not arrived).
    None,
    /// Queued for the worker.
    Pending,
    Done,
    /// The original is kept as evidence but could not be decoded; see `derivative_error`.
    Failed,
}

macro_rules! str_enum {
    ($t:ty { $($v:ident => $s:literal),* $(,)? }) => {
        impl $t {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),* }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some(Self::$v),)* _ => None }
            }
        }
    };
}
str_enum!(UploadState { Pending => "pending", Partial => "partial", Complete => "complete", Failed => "failed" });
str_enum!(DerivativeState { None => "none", Pending => "pending", Done => "done", Failed => "failed" });

/// The image types accepted as evidence, as MIME types. HEIC is refused with 415: the app sends
/// JPEG (see SYNC.md, "Photos").
pub const ACCEPTED_TYPES: &[&str] = &["image/jpeg", "image/png", "image/webp"];

/// A new photo record, as the phone or the office sends it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NewPhoto {
    /// Generated on the phone (a UUID); also the key of its upload.
    pub id: Uuid,
    /// The report the photo is evidence for.
    pub violation_id: Uuid,
    /// SHA-256 of the file, lowercase hex; the upload is verified against it.
    pub sha256: String,
    /// Size of the file in bytes; at most `max_bytes` of `GET /api/v1/photos/limits`.
    pub size_bytes: i64,
    /// One of `accepted_types` of `GET /api/v1/photos/limits`.
    pub mime: String,
    /// When the phone took the photo.
    pub captured_at: Option<DateTime<Utc>>,
    /// The phone's GPS fix when it took the photo.
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub accuracy_m: Option<f64>,
}

/// What the original's EXIF says, as far as it could be read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExifSummary {
    /// DateTimeOriginal as the camera wrote it (local time of the camera, no zone unless
    /// OffsetTimeOriginal was set), RFC 3339 when the offset is known.
    pub taken_at: Option<String>,
    /// The capture time in UTC, when the zone is known or assumed (Europe/Amsterdam).
    pub taken_at_utc: Option<DateTime<Utc>>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    /// EXIF orientation 1–8 (1 when missing).
    pub orientation: u16,
    pub make: Option<String>,
    pub model: Option<String>,
    /// Set when the EXIF block was malformed; what could be read is above.
    pub error: Option<String>,
}

/// A photo as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PhotoView {
    pub id: Uuid,
    pub violation_id: Option<Uuid>,
    pub sha256: String,
    pub size_bytes: i64,
    pub mime: String,
    pub captured_at: Option<DateTime<Utc>>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub accuracy_m: Option<f64>,
    pub upload_state: UploadState,
    /// Bytes received so far.
    pub upload_offset: i64,
    pub uploaded_at: Option<DateTime<Utc>>,
    /// Why the upload was refused, when it was.
    pub failure: Option<String>,
    /// The type sniffed from the bytes (jpeg, png, webp).
    pub format: Option<String>,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub exif: Option<ExifSummary>,
    pub derivative_state: DerivativeState,
    pub derivative_error: Option<String>,
    /// Plausibility flags against its report, for reviewers (never blocking):
    /// `photo_gps_far` (the photo's GPS is more than 150 m from the report's location) and
    /// `photo_time_far` (taken more than 2 hours from the report's observed_at).
    pub flags: Vec<String>,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub server_rev: i64,
}

/// Limits of photo uploads, published so the app can check a photo before it sends anything.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PhotoLimits {
    /// Largest original accepted, in bytes.
    pub max_bytes: u64,
    /// MIME types accepted (sniffed from the bytes, not taken from headers).
    pub accepted_types: Vec<String>,
    /// Largest image accepted, in pixels (width × height).
    pub max_pixels: u64,
    /// Hours an unfinished upload is kept after its last byte.
    pub upload_expiry_hours: u32,
    /// The tus version and extensions served at `/api/v1/uploads`.
    pub tus_version: String,
    pub tus_extensions: Vec<String>,
    /// Checksum algorithms for `Upload-Checksum`.
    pub tus_checksum_algorithms: Vec<String>,
    /// Longest side of the thumbnail and the preview, in pixels.
    pub thumbnail_px: u32,
    pub preview_px: u32,
}

/// Distance beyond which a photo's own GPS is flagged against its report, in metres.
pub const GPS_FLAG_METRES: f64 = 150.0;
/// Time difference beyond which a photo's capture time is flagged, in seconds.
pub const TIME_FLAG_SECONDS: i64 = 2 * 3600;

/// Plausibility flags of a photo against its report: pure, never blocking. The photo's own
/// EXIF position and time are preferred (they come from the camera); the phone's declared fix
/// and time are used when the EXIF has none.
pub fn plausibility(
    report_at: DateTime<Utc>,
    report_lat: f64,
    report_lon: f64,
    photo_at: Option<DateTime<Utc>>,
    photo_pos: Option<(f64, f64)>,
) -> Vec<String> {
    let mut flags = Vec::new();
    if let Some((lat, lon)) = photo_pos {
        let d = crate::geo::distance_m((report_lat, report_lon), (lat, lon));
        if d > GPS_FLAG_METRES {
            flags.push("photo_gps_far".to_string());
        }
    }
    if let Some(t) = photo_at
        && (t - report_at).num_seconds().abs() > TIME_FLAG_SECONDS
    {
        flags.push("photo_time_far".to_string());
    }
    flags
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn flags_only_what_disagrees() {
        let at = Utc.with_ymd_and_hms(2026, 11, 26, 10, 0, 0).unwrap();
        let here = (52.4600, 4.6260);
        // 100 m north and one hour later: plausible.
        assert!(
            plausibility(
                at,
                here.0,
                here.1,
                Some(at + chrono::Duration::hours(1)),
                Some((52.4609, 4.6260))
            )
            .is_empty()
        );
        // 200 m north: far.
        assert_eq!(
            plausibility(at, here.0, here.1, None, Some((52.4618, 4.6260))),
            vec!["photo_gps_far"]
        );
        // Two hours and a minute earlier: far in time.
        assert_eq!(
            plausibility(
                at,
                here.0,
                here.1,
                Some(at - chrono::Duration::minutes(121)),
                None
            ),
            vec!["photo_time_far"]
        );
        // Nothing known: nothing flagged.
        assert!(plausibility(at, here.0, here.1, None, None).is_empty());
    }
}
