//! Evidence-photo imaging: format sniffing, header probing, EXIF extraction and
//! the two JPEG derivatives (thumbnail + preview) made from an uploaded photo.
//!
//! Everything here is pure: it works on a byte slice already in memory and
//! returns owned results; there is no file or network I/O outside the tests.
//!
//! Pipeline of [`derive`] (modelled on libvips' `thumbnail`):
//! 1. sniff the format from the magic bytes and probe the header only;
//!    refuse images over [`Limits::max_pixels`] before any pixel buffer exists;
//! 2. decode ONCE — for JPEG at a reduced DCT scale (1/2, 1/4 or 1/8, the
//!    smallest image still at least as large as the preview);
//! 3. resize to the preview with Lanczos3 (SIMD, `fast_image_resize`);
//! 4. resize the preview (not the original) to the thumbnail;
//! 5. apply the EXIF orientation to both small buffers;
//! 6. encode both as baseline JPEG; no EXIF/ICC/XMP is written.
//!
//! Decoders are third-party code fed with untrusted bytes; as defence in
//! depth, decoding runs under `catch_unwind` so a decoder bug becomes
//! [`ImageError::Corrupt`] instead of a crashed worker (only effective with
//! `panic = "unwind"`, the default).
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::unreachable,
        clippy::todo
    )
)]

use std::fmt;
use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};

use chrono::{FixedOffset, NaiveDate, NaiveDateTime};
use fast_image_resize as fr;

/// JPEG quality used for both derivatives.
pub const JPEG_QUALITY: u8 = 80;

/// Image container formats that uploads are recognised as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    /// JPEG / JFIF / Exif-JPEG.
    Jpeg,
    /// PNG.
    Png,
    /// WebP (lossy, lossless or extended).
    Webp,
    /// HEIF/HEIC (ISO-BMFF `ftyp` brands heic, heix, hevc, hevx, heim, heis, mif1, msf1).
    /// Sniffed and probed, but [`derive`] refuses it (no HEVC decoder without C).
    Heif,
    /// AVIF (ISO-BMFF `ftyp` brand avif/avis). Sniffed and probed; [`derive`] refuses it.
    Avif,
}

impl ImageFormat {
    /// The IANA media type, e.g. for `Content-Type` or a 415 response body.
    pub fn mime(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Png => "image/png",
            ImageFormat::Webp => "image/webp",
            ImageFormat::Heif => "image/heic",
            ImageFormat::Avif => "image/avif",
        }
    }

    /// Whether [`derive`] can make derivatives from this format.
    pub fn is_derivable(self) -> bool {
        matches!(
            self,
            ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::Webp
        )
    }
}

impl fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ImageFormat::Jpeg => "JPEG",
            ImageFormat::Png => "PNG",
            ImageFormat::Webp => "WebP",
            ImageFormat::Heif => "HEIF",
            ImageFormat::Avif => "AVIF",
        })
    }
}

/// Errors of [`probe`] and [`derive`].
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The bytes are not any recognised image format.
    #[error("not a recognised image (JPEG, PNG, WebP, HEIF or AVIF)")]
    NotAnImage,
    /// A recognised format that this module cannot decode (HEIF, AVIF).
    #[error("unsupported image format: {0}")]
    Unsupported(ImageFormat),
    /// The header claims more pixels than [`Limits::max_pixels`].
    #[error("image too large: {width}x{height} pixels")]
    TooLarge {
        /// Width claimed by the header.
        width: u32,
        /// Height claimed by the header.
        height: u32,
    },
    /// Decoding would need more memory than [`Limits::max_decode_bytes`] (estimated from the
    /// header by [`plan`], before any pixel buffer exists).
    #[error(
        "decoding this {what} of {width}x{height} pixels would take about {} MiB of memory; the limit is {} MiB",
        need.div_ceil(MIB), limit / MIB
    )]
    OverBudget {
        /// What kind of image, e.g. "progressive JPEG" (the formats that cannot be decoded in
        /// bounded memory).
        what: &'static str,
        /// Width claimed by the header.
        width: u32,
        /// Height claimed by the header.
        height: u32,
        /// Estimated peak, in bytes.
        need: u64,
        /// The limit, in bytes.
        limit: u64,
    },
    /// Header or pixel data is malformed or truncated.
    #[error("corrupt image: {0}")]
    Corrupt(String),
    /// Resizing failed (should not happen for valid dimensions).
    #[error("resize failed: {0}")]
    Resize(String),
    /// JPEG encoding of a derivative failed.
    #[error("encoding failed: {0}")]
    Encode(String),
}

/// Result of [`probe`]: the format and the stored pixel dimensions
/// (for HEIF/AVIF, after the container's `irot` rotation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// Sniffed format.
    pub format: ImageFormat,
    /// Width in pixels as stored (EXIF orientation NOT applied).
    pub width: u32,
    /// Height in pixels as stored (EXIF orientation NOT applied).
    pub height: u32,
}

/// Limits and target sizes for [`derive`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Refuse images whose header claims more pixels than this (checked before decoding).
    pub max_pixels: u64,
    /// Longest side of the thumbnail, in pixels.
    pub thumb_px: u32,
    /// Longest side of the preview, in pixels.
    pub preview_px: u32,
    /// Refuse images whose decoding [`plan`] estimates a larger peak than this, in bytes
    /// (the file's own bytes included).
    pub max_decode_bytes: u64,
}

/// One mebibyte.
pub const MIB: u64 = 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_pixels: 100_000_000,
            thumb_px: 320,
            preview_px: 1280,
            max_decode_bytes: 90 * MIB,
        }
    }
}

/// The two derivatives, both EXIF-oriented (upright) JPEGs without metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derivatives {
    /// Thumbnail JPEG bytes (longest side ≤ `thumb_px`).
    pub thumbnail: Vec<u8>,
    /// Preview JPEG bytes (longest side ≤ `preview_px`).
    pub preview: Vec<u8>,
    /// Thumbnail (width, height) as displayed.
    pub thumb_size: (u32, u32),
    /// Preview (width, height) as displayed.
    pub preview_size: (u32, u32),
}

/// EXIF metadata of a photo. Never fails: whatever could be read is filled in
/// and problems are described in `error`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExifMeta {
    /// `DateTimeOriginal`, else `DateTime` (camera-local wall-clock time).
    pub taken_at: Option<NaiveDateTime>,
    /// `OffsetTimeOriginal` (or `OffsetTime` when `taken_at` came from `DateTime`).
    pub offset: Option<FixedOffset>,
    /// Latitude in decimal degrees, south negative. `None` when the GPS IFD is
    /// empty, malformed, out of range, or exactly (0, 0).
    pub lat: Option<f64>,
    /// Longitude in decimal degrees, west negative. `None` together with `lat`.
    pub lon: Option<f64>,
    /// EXIF orientation 1..=8; missing or invalid (e.g. 0) gives 1.
    pub orientation: u16,
    /// Camera make, trimmed; `None` if absent or empty.
    pub make: Option<String>,
    /// Camera model, trimmed; `None` if absent or empty.
    pub model: Option<String>,
    /// Description of EXIF parse problems; `None` when the EXIF was clean or absent.
    pub error: Option<String>,
}

impl ExifMeta {
    fn empty() -> Self {
        ExifMeta {
            orientation: 1,
            ..Default::default()
        }
    }
}

// ---------------------------------------------------------------------------
// sniff
// ---------------------------------------------------------------------------

/// Sniffs the format from the magic bytes (only the first ≤ 32 bytes are looked at),
/// never from a file name or a `Content-Type` header.
pub fn sniff(head: &[u8]) -> Option<ImageFormat> {
    let head = head.get(..head.len().min(32))?;
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some(ImageFormat::Jpeg);
    }
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some(ImageFormat::Png);
    }
    if head.len() >= 12 && head.starts_with(b"RIFF") && head.get(8..12) == Some(b"WEBP") {
        return Some(ImageFormat::Webp);
    }
    if head.get(4..8) == Some(b"ftyp") {
        let box_len = read_u32_be(head, 0).map_or(0, |v| v as usize);
        let end = if box_len >= 16 {
            box_len.min(head.len())
        } else {
            head.len()
        };
        let major = head.get(8..12)?;
        let compat = head.get(16..end).unwrap_or(&[]);
        return ftyp_format(major, compat);
    }
    None
}

fn ftyp_format(major: &[u8], compat: &[u8]) -> Option<ImageFormat> {
    const HEIF: [&[u8; 4]; 6] = [b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis"];
    const AVIF: [&[u8; 4]; 2] = [b"avif", b"avis"];
    let is = |b: &[u8], set: &[&[u8; 4]]| set.iter().any(|s| s.as_slice() == b);
    if is(major, &HEIF) {
        return Some(ImageFormat::Heif);
    }
    if is(major, &AVIF) {
        return Some(ImageFormat::Avif);
    }
    let brands = || compat.chunks_exact(4);
    if brands().any(|b| is(b, &AVIF)) {
        return Some(ImageFormat::Avif);
    }
    if brands().any(|b| is(b, &HEIF)) || is(major, &[b"mif1", b"msf1"]) {
        return Some(ImageFormat::Heif);
    }
    if brands().any(|b| is(b, &[b"mif1", b"msf1"])) {
        return Some(ImageFormat::Heif);
    }
    None
}

// ---------------------------------------------------------------------------
// probe
// ---------------------------------------------------------------------------

/// Reads only the header: format and stored pixel dimensions, without decoding
/// pixels or allocating a pixel buffer.
pub fn probe(bytes: &[u8]) -> Result<Probe, ImageError> {
    let format = sniff(bytes).ok_or(ImageError::NotAnImage)?;
    let (width, height) = match format {
        ImageFormat::Jpeg => jpeg_dimensions(bytes)?,
        ImageFormat::Png => png_dimensions(bytes)?,
        ImageFormat::Webp => {
            image::ImageReader::with_format(Cursor::new(bytes), image::ImageFormat::WebP)
                .into_dimensions()
                .map_err(|e| ImageError::Corrupt(e.to_string()))?
        }
        ImageFormat::Heif | ImageFormat::Avif => bmff_dimensions(bytes)?,
    };
    if width == 0 || height == 0 {
        return Err(ImageError::Corrupt(format!(
            "zero dimension {width}x{height}"
        )));
    }
    Ok(Probe {
        format,
        width,
        height,
    })
}

fn read_u16_be(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([*s.first()?, *s.get(1)?]))
}

fn read_u32_be(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    let mut a = [0u8; 4];
    a.copy_from_slice(s);
    Some(u32::from_be_bytes(a))
}

fn read_u64_be(b: &[u8], at: usize) -> Option<u64> {
    let s = b.get(at..at.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_be_bytes(a))
}

/// Walks JPEG markers up to the first SOFn and returns its (width, height).
fn jpeg_dimensions(b: &[u8]) -> Result<(u32, u32), ImageError> {
    let corrupt = |m: &str| ImageError::Corrupt(format!("JPEG header: {m}"));
    let (_, i) = jpeg_sof(b)?;
    // len(2) precision(1) height(2) width(2)
    let h = read_u16_be(b, i + 3).ok_or_else(|| corrupt("truncated SOF"))?;
    let w = read_u16_be(b, i + 5).ok_or_else(|| corrupt("truncated SOF"))?;
    if h == 0 {
        return Err(corrupt("SOF height 0 (DNL) is not supported"));
    }
    Ok((u32::from(w), u32::from(h)))
}

/// The first SOFn of a JPEG: its marker and the offset of its length field.
fn jpeg_sof(b: &[u8]) -> Result<(u8, usize), ImageError> {
    let corrupt = |m: &str| ImageError::Corrupt(format!("JPEG header: {m}"));
    let mut i = 2usize; // after SOI
    loop {
        // Skip fill bytes / find the next marker.
        let mut byte = *b
            .get(i)
            .ok_or_else(|| corrupt("no SOF marker before end of data"))?;
        if byte != 0xFF {
            return Err(corrupt("expected a marker"));
        }
        while byte == 0xFF {
            i += 1;
            byte = *b.get(i).ok_or_else(|| corrupt("truncated marker"))?;
        }
        let marker = byte;
        i += 1;
        match marker {
            // Standalone markers without a length.
            0x01 | 0xD0..=0xD7 => continue,
            0xD8 => continue,
            0xD9 => return Err(corrupt("EOI before SOF")),
            0xDA => return Err(corrupt("SOS before SOF")),
            _ => {}
        }
        let len = usize::from(read_u16_be(b, i).ok_or_else(|| corrupt("truncated segment"))?);
        if len < 2 {
            return Err(corrupt("segment length < 2"));
        }
        let is_sof = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_sof {
            return Ok((marker, i));
        }
        i += len;
    }
}

fn png_dimensions(b: &[u8]) -> Result<(u32, u32), ImageError> {
    if b.get(12..16) != Some(b"IHDR") {
        return Err(ImageError::Corrupt("PNG without IHDR".into()));
    }
    match (read_u32_be(b, 16), read_u32_be(b, 20)) {
        (Some(w), Some(h)) if w <= i32::MAX as u32 && h <= i32::MAX as u32 => Ok((w, h)),
        _ => Err(ImageError::Corrupt("PNG IHDR truncated or invalid".into())),
    }
}

/// One ISO-BMFF box: (type, body) — the body excludes the header.
fn bmff_boxes(mut b: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    std::iter::from_fn(move || {
        let size = read_u32_be(b, 0)?;
        let mut typ = [0u8; 4];
        typ.copy_from_slice(b.get(4..8)?);
        let (header, total) = match size {
            0 => (8usize, b.len()),
            1 => (16usize, usize::try_from(read_u64_be(b, 8)?).ok()?),
            n => (8usize, n as usize),
        };
        if total < header {
            return None;
        }
        let body = b.get(header..total)?;
        b = b.get(total..)?;
        Some((typ, body))
    })
}

/// Primary item's `ispe` (+ `irot`) from the `meta` box of a HEIF/AVIF file.
fn bmff_dimensions(b: &[u8]) -> Result<(u32, u32), ImageError> {
    let corrupt = |m: &str| ImageError::Corrupt(format!("HEIF header: {m}"));
    let meta = bmff_boxes(b)
        .find(|(t, _)| t == b"meta")
        .map(|(_, body)| body)
        .ok_or_else(|| corrupt("no meta box"))?;
    let meta = meta.get(4..).ok_or_else(|| corrupt("short meta"))?; // full box
    let mut primary: Option<u32> = None;
    let mut ipco: Option<&[u8]> = None;
    let mut ipma: Option<&[u8]> = None;
    for (t, body) in bmff_boxes(meta) {
        match &t {
            b"pitm" => {
                let version = *body.first().ok_or_else(|| corrupt("short pitm"))?;
                primary = if version == 0 {
                    read_u16_be(body, 4).map(u32::from)
                } else {
                    read_u32_be(body, 4)
                };
            }
            b"iprp" => {
                for (t2, body2) in bmff_boxes(body) {
                    match &t2 {
                        b"ipco" => ipco = Some(body2),
                        b"ipma" => ipma = Some(body2),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let primary = primary.ok_or_else(|| corrupt("no pitm"))?;
    let ipco = ipco.ok_or_else(|| corrupt("no ipco"))?;
    let ipma = ipma.ok_or_else(|| corrupt("no ipma"))?;
    let props: Vec<([u8; 4], &[u8])> = bmff_boxes(ipco).collect();

    // ipma: version/flags, entry_count, entries.
    let version = *ipma.first().ok_or_else(|| corrupt("short ipma"))?;
    let flags = read_u32_be(ipma, 0).unwrap_or(0) & 0x00FF_FFFF;
    let count = read_u32_be(ipma, 4).ok_or_else(|| corrupt("short ipma"))?;
    let mut at = 8usize;
    let mut assoc: Vec<usize> = Vec::new();
    for _ in 0..count {
        let item = if version < 1 {
            let v = read_u16_be(ipma, at).map(u32::from);
            at += 2;
            v
        } else {
            let v = read_u32_be(ipma, at);
            at += 4;
            v
        }
        .ok_or_else(|| corrupt("truncated ipma"))?;
        let n = usize::from(*ipma.get(at).ok_or_else(|| corrupt("truncated ipma"))?);
        at += 1;
        for _ in 0..n {
            let idx = if flags & 1 == 1 {
                let v = read_u16_be(ipma, at).map(|v| usize::from(v & 0x7FFF));
                at += 2;
                v
            } else {
                let v = ipma.get(at).map(|v| usize::from(v & 0x7F));
                at += 1;
                v
            }
            .ok_or_else(|| corrupt("truncated ipma"))?;
            if item == primary {
                assoc.push(idx);
            }
        }
        if item == primary {
            break;
        }
    }
    let mut dims: Option<(u32, u32)> = None;
    let mut rotated = false;
    for idx in assoc {
        // Property indices are 1-based; 0 means "none".
        let Some((t, body)) = idx.checked_sub(1).and_then(|i| props.get(i)) else {
            continue;
        };
        match t {
            b"ispe" => {
                if let (Some(w), Some(h)) = (read_u32_be(body, 4), read_u32_be(body, 8)) {
                    dims = Some((w, h));
                }
            }
            b"irot" => rotated = body.first().is_some_and(|a| a & 1 == 1),
            _ => {}
        }
    }
    let (w, h) = dims.ok_or_else(|| corrupt("primary item has no ispe"))?;
    Ok(if rotated { (h, w) } else { (w, h) })
}

// ---------------------------------------------------------------------------
// EXIF
// ---------------------------------------------------------------------------

/// Reads EXIF metadata (JPEG APP1, PNG `eXIf` or ImageMagick raw-profile text chunk,
/// WebP `EXIF`, HEIF `Exif` item). Never fails: a malformed block yields what could
/// be read plus `error: Some(text)`; a file without EXIF yields defaults and no error.
pub fn read_exif(bytes: &[u8]) -> ExifMeta {
    let mut reader = exif::Reader::new();
    reader.continue_on_error(true);
    let parsed = catch_unwind(AssertUnwindSafe(|| {
        reader.read_from_container(&mut Cursor::new(bytes))
    }));
    let (exif, error) = match parsed {
        Ok(Ok(exif)) => (exif, None),
        Ok(Err(exif::Error::PartialResult(partial))) => {
            let (exif, errors) = partial.into_inner();
            let text = errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            (exif, Some(text))
        }
        Ok(Err(exif::Error::NotFound(_))) if sniff(bytes) == Some(ImageFormat::Png) => {
            // ImageMagick stores EXIF as a hex "Raw profile type exif" text chunk.
            match png_raw_profile_exif(bytes) {
                Some(raw) => match reader.read_raw(raw) {
                    Ok(exif) => (exif, None),
                    Err(exif::Error::PartialResult(partial)) => {
                        let (exif, errors) = partial.into_inner();
                        let text = errors
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("; ");
                        (exif, Some(text))
                    }
                    Err(e) => {
                        return ExifMeta {
                            error: Some(e.to_string()),
                            ..ExifMeta::empty()
                        };
                    }
                },
                None => return ExifMeta::empty(),
            }
        }
        Ok(Err(exif::Error::NotFound(_))) => return ExifMeta::empty(),
        Ok(Err(e)) => {
            return ExifMeta {
                error: Some(e.to_string()),
                ..ExifMeta::empty()
            };
        }
        Err(_) => {
            return ExifMeta {
                error: Some("EXIF parser panicked".into()),
                ..ExifMeta::empty()
            };
        }
    };
    let mut meta = meta_from_exif(&exif);
    meta.error = error.and_then(|e| exif_text(&e));
    meta
}

fn meta_from_exif(exif: &exif::Exif) -> ExifMeta {
    use exif::{In, Tag};
    let field = |tag: Tag| exif.get_field(tag, In::PRIMARY);
    let orientation = field(Tag::Orientation)
        .and_then(|f| f.value.get_uint(0))
        .filter(|o| (1..=8).contains(o))
        .and_then(|o| u16::try_from(o).ok())
        .unwrap_or(1);
    let (taken_at, offset) =
        match field(Tag::DateTimeOriginal).and_then(|f| ascii_datetime(&f.value)) {
            Some(dt) => (
                Some(dt),
                field(Tag::OffsetTimeOriginal).and_then(|f| ascii_offset(&f.value)),
            ),
            None => match field(Tag::DateTime).and_then(|f| ascii_datetime(&f.value)) {
                Some(dt) => (
                    Some(dt),
                    field(Tag::OffsetTime).and_then(|f| ascii_offset(&f.value)),
                ),
                None => (None, None),
            },
        };
    let (lat, lon) = gps(exif).map_or((None, None), |(a, o)| (Some(a), Some(o)));
    ExifMeta {
        taken_at,
        offset,
        lat,
        lon,
        orientation,
        make: field(Tag::Make).and_then(|f| ascii_string(&f.value)),
        model: field(Tag::Model).and_then(|f| ascii_string(&f.value)),
        error: None,
    }
}

fn ascii_first(v: &exif::Value) -> Option<&[u8]> {
    match v {
        exif::Value::Ascii(parts) => parts.first().map(Vec::as_slice),
        _ => None,
    }
}

/// The longest text kept from an EXIF field (make, model, a parse error), in characters: the
/// file decides what is in them, and they are stored and synced to every phone.
pub const MAX_EXIF_TEXT: usize = 200;

/// EXIF text as stored: control characters (NUL among them, which PostgreSQL text refuses)
/// dropped, trimmed, at most [`MAX_EXIF_TEXT`] characters.
pub fn exif_text(s: &str) -> Option<String> {
    let clean: String = s
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .chars()
        .take(MAX_EXIF_TEXT)
        .collect();
    let clean = clean.trim_end().to_owned();
    (!clean.is_empty()).then_some(clean)
}

fn ascii_string(v: &exif::Value) -> Option<String> {
    exif_text(&String::from_utf8_lossy(ascii_first(v)?))
}

/// "YYYY:MM:DD HH:MM:SS" (also accepts '-' as date separator); all-zero / blank → None.
fn ascii_datetime(v: &exif::Value) -> Option<NaiveDateTime> {
    let raw = ascii_first(v)?;
    let dt = exif::DateTime::from_ascii(raw).ok()?;
    let date = NaiveDate::from_ymd_opt(i32::from(dt.year), u32::from(dt.month), u32::from(dt.day))?;
    let mut t = date.and_hms_opt(
        u32::from(dt.hour),
        u32::from(dt.minute),
        u32::from(dt.second),
    )?;
    if let Some(ns) = dt.nanosecond {
        t = t.checked_add_signed(chrono::TimeDelta::nanoseconds(i64::from(ns)))?;
    }
    Some(t)
}

/// "+HH:MM" / "-HH:MM" (EXIF 2.31 OffsetTime*).
fn ascii_offset(v: &exif::Value) -> Option<FixedOffset> {
    let s = std::str::from_utf8(ascii_first(v)?)
        .ok()?
        .trim_matches(|c: char| c == '\0' || c == ' ');
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, s.get(1..)?),
        b'-' => (-1, s.get(1..)?),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    if !(0..=14).contains(&h) || !(0..60).contains(&m) {
        return None;
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

/// Decimal degrees from the GPS IFD; None unless both coordinates and both refs are valid.
fn gps(exif: &exif::Exif) -> Option<(f64, f64)> {
    use exif::{In, Tag};
    let dms = |tag: Tag| -> Option<f64> {
        match &exif.get_field(tag, In::PRIMARY)?.value {
            exif::Value::Rational(r) if !r.is_empty() => {
                let mut total = 0.0;
                for (i, part) in r.iter().take(3).enumerate() {
                    if part.denom == 0 {
                        return None;
                    }
                    total += part.to_f64() / [1.0, 60.0, 3600.0].get(i).copied().unwrap_or(1.0);
                }
                total.is_finite().then_some(total)
            }
            _ => None,
        }
    };
    let reference = |tag: Tag| -> Option<u8> {
        let v = ascii_first(&exif.get_field(tag, In::PRIMARY)?.value)?;
        v.first().map(u8::to_ascii_uppercase)
    };
    let lat = dms(Tag::GPSLatitude)?;
    let lon = dms(Tag::GPSLongitude)?;
    let lat = match reference(Tag::GPSLatitudeRef)? {
        b'N' => lat,
        b'S' => -lat,
        _ => return None,
    };
    let lon = match reference(Tag::GPSLongitudeRef)? {
        b'E' => lon,
        b'W' => -lon,
        _ => return None,
    };
    if lat.abs() > 90.0 || lon.abs() > 180.0 || (lat == 0.0 && lon == 0.0) {
        return None;
    }
    Some((lat, lon))
}

/// EXIF (TIFF) bytes from an ImageMagick "Raw profile type exif" (or "APP1") tEXt/zTXt
/// chunk: "\nexif\n   <len>\n<hex…>", the payload optionally starting with "Exif\0\0".
fn png_raw_profile_exif(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    decoder.set_ignore_text_chunk(false);
    let reader = decoder.read_info().ok()?;
    let info = reader.info();
    let wanted = |k: &str| k == "Raw profile type exif" || k == "Raw profile type APP1";
    let text = info
        .uncompressed_latin1_text
        .iter()
        .find(|c| wanted(&c.keyword))
        .map(|c| c.text.clone())
        .or_else(|| {
            info.compressed_latin1_text
                .iter()
                .find(|c| wanted(&c.keyword))
                .and_then(|c| c.get_text().ok())
        })?;
    // Skip "\n<name>\n <len>\n", then decode hex ignoring whitespace.
    let mut lines = text.trim_start().splitn(3, '\n');
    let _name = lines.next()?;
    let len: usize = lines.next()?.trim().parse().ok()?;
    let hex = lines.next()?;
    let mut out = Vec::with_capacity(len.min(1 << 20));
    let mut hi: Option<u8> = None;
    for c in hex.bytes().filter(|c| !c.is_ascii_whitespace()) {
        let v = (c as char).to_digit(16)? as u8;
        match hi.take() {
            None => hi = Some(v),
            Some(h) => out.push(h << 4 | v),
        }
    }
    if out.starts_with(b"Exif\0\0") {
        out.drain(..6);
    }
    (!out.is_empty()).then_some(out)
}

// ---------------------------------------------------------------------------
// memory plan
// ---------------------------------------------------------------------------

/// What the decoder of a format has to hold, as the header tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// A JPEG frame: each component's (horizontal, vertical) sampling factors; progressive
    /// frames keep every DCT coefficient of the image until the last scan; lossless frames
    /// decode at full size, 16 bits a sample.
    Jpeg {
        components: Vec<(u8, u8)>,
        progressive: bool,
        lossless: bool,
    },
    /// A PNG: samples per pixel and bits per sample as stored; an interlaced (Adam7) PNG is
    /// decoded into a full frame, any other row by row.
    Png {
        channels: u8,
        bit_depth: u8,
        interlaced: bool,
    },
    /// A WebP: lossy (VP8, planes of Y, U and V) or lossless (VP8L); WebP has no row-by-row
    /// decoder, so the whole frame is held.
    Webp {
        lossy: bool,
        alpha: bool,
        animated: bool,
    },
}

/// How [`derive`] would decode an image and the most memory it would hold at once, decided
/// from the header alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodePlan {
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
    pub layout: Layout,
    /// Estimated peak of the job in bytes: the file's bytes, the decoder's buffers and the
    /// derivatives' (see [`estimate_peak`]).
    pub peak_bytes: u64,
}

impl DecodePlan {
    /// Whether the decoder's memory grows with the image (the whole frame or all its
    /// coefficients are held) rather than being bounded by the preview's size.
    pub fn holds_full_frame(&self) -> bool {
        match self.layout {
            Layout::Jpeg {
                progressive,
                lossless,
                ..
            } => progressive || lossless,
            Layout::Png { interlaced, .. } => interlaced,
            Layout::Webp { .. } => true,
        }
    }

    fn what(&self) -> &'static str {
        match self.layout {
            Layout::Jpeg { lossless: true, .. } => "lossless JPEG",
            Layout::Jpeg {
                progressive: true, ..
            } => "progressive JPEG",
            Layout::Jpeg { .. } => "JPEG",
            Layout::Png {
                interlaced: true, ..
            } => "interlaced PNG",
            Layout::Png { .. } => "PNG",
            Layout::Webp { .. } => "WebP",
        }
    }
}

/// Reads the header and plans the decode: format, size, layout and the estimated peak memory.
/// Refuses (before any pixel buffer exists) what [`derive`] refuses: unknown or underivable
/// formats, more than [`Limits::max_pixels`], and an estimated peak over
/// [`Limits::max_decode_bytes`] ([`ImageError::OverBudget`]). Cheap: the upload can call it
/// on the file's head to answer 422 at once.
pub fn plan(bytes: &[u8], limits: &Limits) -> Result<DecodePlan, ImageError> {
    let p = probe(bytes)?;
    if !p.format.is_derivable() {
        return Err(ImageError::Unsupported(p.format));
    }
    if u64::from(p.width) * u64::from(p.height) > limits.max_pixels {
        return Err(ImageError::TooLarge {
            width: p.width,
            height: p.height,
        });
    }
    let layout = match p.format {
        ImageFormat::Jpeg => jpeg_layout(bytes)?,
        ImageFormat::Png => png_layout(bytes)?,
        _ => webp_layout(bytes)?,
    };
    let peak_bytes = estimate_peak(p.width, p.height, &layout, bytes.len() as u64, limits);
    let plan = DecodePlan {
        format: p.format,
        width: p.width,
        height: p.height,
        layout,
        peak_bytes,
    };
    if plan.peak_bytes > limits.max_decode_bytes {
        return Err(ImageError::OverBudget {
            what: plan.what(),
            width: plan.width,
            height: plan.height,
            need: plan.peak_bytes,
            limit: limits.max_decode_bytes,
        });
    }
    Ok(plan)
}

/// Bookkeeping of the decoders (tables, Huffman state, EXIF parse, the small derivatives'
/// encoders) that does not grow with the image.
const FIXED_OVERHEAD: u64 = 2 * MIB;

/// The estimated peak memory of [`derive`] for an image of `width`×`height` laid out as
/// `layout`, `file_len` bytes long: what the decoder holds (full-frame buffers or
/// coefficients where the format forces them, a few rows otherwise), the reduced image it
/// produces, and the resize to the preview and thumbnail. Pure arithmetic, an upper bound
/// for the decoders this module uses (jpeg-decoder, png, image-webp, fast_image_resize).
pub fn estimate_peak(
    width: u32,
    height: u32,
    layout: &Layout,
    file_len: u64,
    limits: &Limits,
) -> u64 {
    let (w, h) = (u64::from(width), u64::from(height));
    let px = w * h;
    let decoder = match layout {
        Layout::Jpeg {
            components,
            progressive,
            lossless,
        } => {
            let hmax = u64::from(components.iter().map(|c| c.0).max().unwrap_or(1).max(1));
            let vmax = u64::from(components.iter().map(|c| c.1).max().unwrap_or(1).max(1));
            let (mcus_x, mcus_y) = (w.div_ceil(8 * hmax), h.div_ceil(8 * vmax));
            let blocks: u64 = components
                .iter()
                .map(|&(ch, cv)| mcus_x * u64::from(ch) * mcus_y * u64::from(cv))
                .sum();
            let n = components.len().max(1) as u64;
            if *lossless {
                // 16-bit samples at full size, then our 8-bit RGB copy.
                px * n * 2 + px * 3 + pipeline_bytes(width, height, limits)
            } else {
                let (pw, ph) = fit(width, height, limits.preview_px);
                let s = u64::from(jpeg_idct_scale(width, height, pw, ph));
                let (sw, sh) = ((w * s).div_ceil(8), (h * s).div_ceil(8));
                // Each component's samples at the chosen scale, the colour-converted output,
                // and our RGB copy of it (for grey and CMYK; RGB output is moved, not copied).
                // While decoding: the coefficients (progressive), each component's samples at
                // the chosen scale and the colour-converted output, plus our RGB copy of it for
                // grey and CMYK (RGB output is moved, not copied). Then the resize, from that
                // RGB image; the decoder's buffers are gone by then.
                let planes = blocks * s * s;
                let output = sw * sh * n + if n == 3 { 0 } else { sw * sh * 3 };
                let coefficients = if *progressive { blocks * 64 * 2 } else { 0 };
                let decoding = coefficients + planes + output;
                decoding.max(pipeline_bytes(
                    u32::try_from(sw).unwrap_or(u32::MAX),
                    u32::try_from(sh).unwrap_or(u32::MAX),
                    limits,
                ))
            }
        }
        Layout::Png {
            channels,
            bit_depth,
            interlaced,
        } => {
            let raw_row = (w * u64::from(*channels) * u64::from(*bit_depth)).div_ceil(8) + 1;
            // png keeps the inflated stream of a few rows (at least 128 KiB) and the previous
            // row; its output row is 8-bit RGBA at most (16-bit is stripped while decoding).
            let rows = raw_row * 8 + 256 * 1024 + w * 4 * 2;
            let frame = if *interlaced { px * 4 } else { 0 };
            let (cw, ch) = shrink_size(width, height, limits);
            let decoding = rows + frame + shrinker_bytes(width, cw, ch);
            decoding.max(pipeline_bytes(cw, ch, limits))
        }
        Layout::Webp {
            lossy,
            alpha,
            animated,
        } => {
            // image-webp decodes the whole frame: lossy into Y, U and V planes (padded to
            // 16-pixel macroblocks) and then RGB(A); alpha in a plane of its own (decoded as a
            // lossless RGBA image when compressed); lossless without alpha via an RGBA frame.
            let (mw, mh) = (w.div_ceil(16) * 16, h.div_ceil(16) * 16);
            let frame = match (*animated, *lossy, *alpha) {
                (true, _, _) => px * 4 * 2 + mw * mh * 3 / 2 + px * 5,
                (false, true, false) => mw * mh * 3 / 2 + px * 3,
                (false, true, true) => mw * mh * 3 / 2 + px * 4 + px * 5,
                (false, false, true) => px * 4,
                (false, false, false) => px * 4 + px * 3,
            };
            let (cw, ch) = shrink_size(width, height, limits);
            (frame + shrinker_bytes(width, cw, ch)).max(pipeline_bytes(cw, ch, limits))
        }
    };
    file_len + FIXED_OVERHEAD + decoder
}

/// The memory of resizing a `src_w`×`src_h` RGB image to the preview and the thumbnail and
/// encoding both: the source itself, fast_image_resize's horizontal pass (preview width ×
/// source height), the preview, its oriented copy, the thumbnail and the JPEGs.
fn pipeline_bytes(src_w: u32, src_h: u32, limits: &Limits) -> u64 {
    let (pw, ph) = fit(src_w, src_h, limits.preview_px);
    let (tw, th) = fit(pw, ph, limits.thumb_px);
    let (sw, sh) = (u64::from(src_w), u64::from(src_h));
    let preview = u64::from(pw) * u64::from(ph) * 3;
    let thumb = u64::from(tw) * u64::from(th) * 3;
    sw * sh * 3 + u64::from(pw) * sh * 3 + preview * 3 + thumb * 3
}

/// jpeg-decoder's choice of IDCT scale (pixels per 8×8 block: 1, 2, 4 or 8) for a requested
/// size: the smallest scale at which at least one side reaches the request.
fn jpeg_idct_scale(w: u32, h: u32, req_w: u32, req_h: u32) -> u32 {
    let scaled = |len: u32, s: u32| (u64::from(len) * u64::from(s)).div_ceil(8);
    [1u32, 2, 4]
        .into_iter()
        .find(|&s| scaled(w, s) >= u64::from(req_w) || scaled(h, s) >= u64::from(req_h))
        .unwrap_or(8)
}

/// The size PNG and WebP pixels are averaged down to as they are read (twice the preview,
/// so the Lanczos resize after it still has detail to work with); never larger than the image.
fn shrink_size(w: u32, h: u32, limits: &Limits) -> (u32, u32) {
    fit(w, h, limits.preview_px.saturating_mul(2))
}

/// The [`Shrinker`]: a cell column per source column, one row of sums, and the result.
fn shrinker_bytes(src_w: u32, cells_w: u32, cells_h: u32) -> u64 {
    let (cw, ch) = (u64::from(cells_w), u64::from(cells_h));
    u64::from(src_w) * 4 + cw * (3 * 8 + 4) + cw * ch * 3
}

/// The SOF of a JPEG: components' sampling factors and the coding process.
fn jpeg_layout(b: &[u8]) -> Result<Layout, ImageError> {
    let corrupt = |m: &str| ImageError::Corrupt(format!("JPEG header: {m}"));
    let (marker, at) = jpeg_sof(b)?;
    // len(2) precision(1) height(2) width(2) count(1) then (id, HV, Tq) per component.
    let n = usize::from(*b.get(at + 7).ok_or_else(|| corrupt("truncated SOF"))?);
    if n == 0 {
        return Err(corrupt("SOF without components"));
    }
    let mut components = Vec::with_capacity(n);
    for k in 0..n {
        let hv = *b
            .get(at + 8 + k * 3 + 1)
            .ok_or_else(|| corrupt("truncated SOF"))?;
        let (ch, cv) = (hv >> 4, hv & 0x0F);
        if !(1..=4).contains(&ch) || !(1..=4).contains(&cv) {
            return Err(corrupt("invalid sampling factor"));
        }
        components.push((ch, cv));
    }
    Ok(Layout::Jpeg {
        components,
        progressive: matches!(marker, 0xC2 | 0xC6 | 0xCA | 0xCE),
        lossless: matches!(marker, 0xC3 | 0xC7 | 0xCB | 0xCF),
    })
}

fn png_layout(b: &[u8]) -> Result<Layout, ImageError> {
    // IHDR: width(4) height(4) bit depth(1) colour type(1) compression filter interlace.
    let corrupt = || ImageError::Corrupt("PNG IHDR truncated or invalid".into());
    let bit_depth = *b.get(24).ok_or_else(corrupt)?;
    let channels = match *b.get(25).ok_or_else(corrupt)? {
        0 | 3 => 1,
        4 => 2,
        2 => 3,
        6 => 4,
        _ => return Err(corrupt()),
    };
    if !matches!(bit_depth, 1 | 2 | 4 | 8 | 16) {
        return Err(corrupt());
    }
    Ok(Layout::Png {
        channels,
        bit_depth,
        interlaced: *b.get(28).ok_or_else(corrupt)? == 1,
    })
}

fn webp_layout(b: &[u8]) -> Result<Layout, ImageError> {
    // Reads the RIFF chunk list only; no frame is decoded.
    let mut d = image_webp::WebPDecoder::new(Cursor::new(b))
        .map_err(|e| ImageError::Corrupt(e.to_string()))?;
    Ok(Layout::Webp {
        lossy: d.is_lossy(),
        alpha: d.has_alpha(),
        animated: d.is_animated(),
    })
}

// ---------------------------------------------------------------------------
// derive
// ---------------------------------------------------------------------------

/// Makes both derivatives: EXIF-oriented, all metadata stripped, JPEG (quality
/// [`JPEG_QUALITY`]). Images are never upscaled. HEIF/AVIF → `Unsupported`;
/// too many pixels → `TooLarge`; an estimated peak over the memory limit → `OverBudget`
/// (all decided from the header by [`plan`], before decoding).
pub fn derive(bytes: &[u8], limits: &Limits) -> Result<Derivatives, ImageError> {
    let plan = plan(bytes, limits)?;
    derive_planned(bytes, &plan, limits)
}

/// [`derive`] with a plan already made by [`plan`] for these bytes and limits.
pub fn derive_planned(
    bytes: &[u8],
    plan: &DecodePlan,
    limits: &Limits,
) -> Result<Derivatives, ImageError> {
    let orientation = read_exif(bytes).orientation;

    // Target sizes in stored orientation (the box is on the longest side, so the
    // orientation does not change the scale).
    let (pw, ph) = fit(plan.width, plan.height, limits.preview_px);
    let (tw, th) = fit(pw, ph, limits.thumb_px);

    let src = catch_unwind(AssertUnwindSafe(|| {
        decode_rgb(bytes, plan, (pw, ph), limits)
    }))
    .map_err(|_| ImageError::Corrupt("decoder panicked".into()))??;

    let preview = if (src.width, src.height) == (pw, ph) {
        src
    } else {
        let preview = resize_rgb(&src, pw, ph)?;
        drop(src);
        preview
    };
    // The thumbnail is made from the preview, never from the full-size decode.
    let thumb = if (pw, ph) == (tw, th) {
        preview.clone()
    } else {
        resize_rgb(&preview, tw, th)?
    };
    let preview = orient(preview, orientation)?;
    let thumb = orient(thumb, orientation)?;
    Ok(Derivatives {
        thumb_size: (thumb.width, thumb.height),
        preview_size: (preview.width, preview.height),
        thumbnail: encode_jpeg(&thumb)?,
        preview: encode_jpeg(&preview)?,
    })
}

/// Size that fits `(w, h)` into a `max`×`max` box, never upscaling, at least 1×1.
fn fit(w: u32, h: u32, max: u32) -> (u32, u32) {
    let max = max.max(1);
    let long = w.max(h);
    if long <= max {
        return (w.max(1), h.max(1));
    }
    let scale = |v: u32| -> u32 {
        let r = (u64::from(v) * u64::from(max) + u64::from(long) / 2) / u64::from(long);
        u32::try_from(r).unwrap_or(max).clamp(1, max)
    };
    (scale(w), scale(h))
}

/// Interleaved 8-bit RGB buffer.
#[derive(Clone)]
struct Rgb {
    width: u32,
    height: u32,
    data: Vec<u8>,
}

fn decode_rgb(
    bytes: &[u8],
    plan: &DecodePlan,
    target: (u32, u32),
    limits: &Limits,
) -> Result<Rgb, ImageError> {
    let max_bytes = usize::try_from(limits.max_decode_bytes).unwrap_or(usize::MAX);
    let cells = shrink_size(plan.width, plan.height, limits);
    match plan.format {
        ImageFormat::Jpeg => decode_jpeg_scaled(bytes, target, max_bytes),
        ImageFormat::Png => decode_png_shrunk(bytes, plan, cells, max_bytes),
        ImageFormat::Webp => decode_webp_shrunk(bytes, plan, cells),
        other => Err(ImageError::Unsupported(other)),
    }
}

/// Pixel layouts fed to [`Shrinker`], all 8 bits a sample.
#[derive(Clone, Copy)]
enum Px {
    Gray,
    GrayAlpha,
    Rgb,
    Rgba,
}

impl Px {
    fn channels(self) -> usize {
        match self {
            Px::Gray => 1,
            Px::GrayAlpha => 2,
            Px::Rgb => 3,
            Px::Rgba => 4,
        }
    }
}

/// Averages the pixels of rows read top to bottom into cells of a smaller image (an area
/// filter), composited over white; holds one row of cells at a time besides the result.
struct Shrinker {
    src_h: u32,
    cells_w: u32,
    cells_h: u32,
    /// The cell column of each source column.
    column: Vec<u32>,
    /// The cell row being filled.
    row: u32,
    sums: Vec<u64>,
    counts: Vec<u32>,
    out: Vec<u8>,
    /// Rows seen so far.
    seen: u32,
}

impl Shrinker {
    fn new(src_w: u32, src_h: u32, (cells_w, cells_h): (u32, u32)) -> Shrinker {
        let (cw, ch) = (
            cells_w.clamp(1, src_w.max(1)),
            cells_h.clamp(1, src_h.max(1)),
        );
        let column = (0..src_w)
            .map(|x| (u64::from(x) * u64::from(cw) / u64::from(src_w.max(1))) as u32)
            .collect();
        Shrinker {
            src_h,
            cells_w: cw,
            cells_h: ch,
            column,
            row: 0,
            sums: vec![0; cw as usize * 3],
            counts: vec![0; cw as usize],
            out: Vec::with_capacity(cw as usize * ch as usize * 3),
            seen: 0,
        }
    }

    /// Adds the next source row (`src_w` pixels of `px`).
    fn push(&mut self, data: &[u8], px: Px) -> Result<(), ImageError> {
        if self.seen >= self.src_h {
            return Err(ImageError::Corrupt(
                "more rows than the header declares".into(),
            ));
        }
        let cell_row =
            (u64::from(self.seen) * u64::from(self.cells_h) / u64::from(self.src_h)) as u32;
        while cell_row > self.row {
            self.flush();
        }
        let n = px.channels();
        let blend = |c: u8, a: u8| -> u64 {
            let a = u64::from(a);
            (u64::from(c) * a + 255 * (255 - a) + 127) / 255
        };
        for (pixel, &cx) in data.chunks_exact(n).zip(&self.column) {
            let rgb = match (px, pixel) {
                (Px::Gray, [l]) => [u64::from(*l); 3],
                (Px::GrayAlpha, [l, a]) => [blend(*l, *a); 3],
                (Px::Rgb, [r, g, b]) => [u64::from(*r), u64::from(*g), u64::from(*b)],
                (Px::Rgba, [r, g, b, a]) => [blend(*r, *a), blend(*g, *a), blend(*b, *a)],
                _ => [255; 3],
            };
            let cx = cx as usize;
            if let Some(s) = self.sums.get_mut(cx * 3..cx * 3 + 3) {
                for (acc, v) in s.iter_mut().zip(rgb) {
                    *acc += v;
                }
            }
            if let Some(c) = self.counts.get_mut(cx) {
                *c += 1;
            }
        }
        self.seen += 1;
        Ok(())
    }

    /// Writes the cell row being filled to the result and starts the next.
    fn flush(&mut self) {
        for (s, &c) in self.sums.chunks_exact(3).zip(&self.counts) {
            let c = u64::from(c.max(1));
            for v in s {
                self.out.push(((v + c / 2) / c).min(255) as u8);
            }
        }
        self.sums.iter_mut().for_each(|v| *v = 0);
        self.counts.iter_mut().for_each(|v| *v = 0);
        self.row += 1;
    }

    fn finish(mut self) -> Result<Rgb, ImageError> {
        if self.seen < self.src_h {
            return Err(ImageError::Corrupt(format!(
                "image data ends after {} of {} rows",
                self.seen, self.src_h
            )));
        }
        while self.row < self.cells_h {
            self.flush();
        }
        Ok(Rgb {
            width: self.cells_w,
            height: self.cells_h,
            data: self.out,
        })
    }
}

/// Decodes a PNG row by row (16-bit samples stripped to 8, palettes and low bit depths
/// expanded while decoding), averaging the rows into `cells` as they come, so a PNG of any
/// size within the pixel limit needs a few rows and the small image. Interlaced PNGs are
/// decoded into one 8-bit frame first (their rows come in seven passes); [`plan`] counts it.
fn decode_png_shrunk(
    bytes: &[u8],
    plan: &DecodePlan,
    cells: (u32, u32),
    max_bytes: usize,
) -> Result<Rgb, ImageError> {
    let corrupt = |e: png::DecodingError| ImageError::Corrupt(e.to_string());
    let mut dec =
        png::Decoder::new_with_limits(Cursor::new(bytes), png::Limits { bytes: max_bytes });
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = dec.read_info().map_err(corrupt)?;
    let (w, h) = (reader.info().width, reader.info().height);
    if (w, h) != (plan.width, plan.height) {
        return Err(ImageError::Corrupt(
            "PNG size differs from its header".into(),
        ));
    }
    let px = match reader.output_color_type().0 {
        png::ColorType::Grayscale => Px::Gray,
        png::ColorType::GrayscaleAlpha => Px::GrayAlpha,
        png::ColorType::Rgba => Px::Rgba,
        png::ColorType::Rgb | png::ColorType::Indexed => Px::Rgb,
    };
    let mut shrink = Shrinker::new(w, h, cells);
    if reader.info().interlaced {
        let size = reader
            .output_buffer_size()
            .ok_or_else(|| ImageError::Corrupt("PNG too large".into()))?;
        let mut frame = vec![0u8; size];
        let info = reader.next_frame(&mut frame).map_err(corrupt)?;
        for row in frame.chunks_exact(info.line_size).take(h as usize) {
            shrink.push(row, px)?;
        }
    } else {
        while let Some(row) = reader.next_row().map_err(corrupt)? {
            shrink.push(row.data(), px)?;
        }
    }
    shrink.finish()
}

/// Decodes a WebP (the whole frame: image-webp has no other way) and averages it down to
/// `cells` without another full-size copy. [`plan`] counts the frame.
fn decode_webp_shrunk(
    bytes: &[u8],
    plan: &DecodePlan,
    cells: (u32, u32),
) -> Result<Rgb, ImageError> {
    let corrupt = |e: image_webp::DecodingError| ImageError::Corrupt(e.to_string());
    let mut dec = image_webp::WebPDecoder::new(Cursor::new(bytes)).map_err(corrupt)?;
    let (w, h) = dec.dimensions();
    if (w, h) != (plan.width, plan.height) {
        return Err(ImageError::Corrupt(
            "WebP size differs from its header".into(),
        ));
    }
    let size = dec
        .output_buffer_size()
        .ok_or_else(|| ImageError::Corrupt("WebP too large".into()))?;
    let mut frame = vec![0u8; size];
    dec.read_image(&mut frame).map_err(corrupt)?;
    let px = if dec.has_alpha() { Px::Rgba } else { Px::Rgb };
    let line = w as usize * px.channels();
    let mut shrink = Shrinker::new(w, h, cells);
    for row in frame.chunks_exact(line.max(1)).take(h as usize) {
        shrink.push(row, px)?;
    }
    drop(frame);
    shrink.finish()
}

/// Decodes a JPEG once, at the smallest DCT scale (1/8..1) that is still at
/// least `target` in size.
fn decode_jpeg_scaled(
    bytes: &[u8],
    target: (u32, u32),
    max_bytes: usize,
) -> Result<Rgb, ImageError> {
    use jpeg_decoder::PixelFormat;
    let corrupt = |e: jpeg_decoder::Error| ImageError::Corrupt(e.to_string());
    let mut dec = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    dec.set_max_decoding_buffer_size(max_bytes);
    dec.read_info().map_err(corrupt)?;
    let tw = u16::try_from(target.0).unwrap_or(u16::MAX);
    let th = u16::try_from(target.1).unwrap_or(u16::MAX);
    dec.scale(tw, th).map_err(corrupt)?;
    let pixels = dec.decode().map_err(corrupt)?;
    let info = dec
        .info()
        .ok_or_else(|| ImageError::Corrupt("JPEG info missing".into()))?;
    let (width, height) = (u32::from(info.width), u32::from(info.height));
    let n = width as usize * height as usize;
    let data = match info.pixel_format {
        PixelFormat::RGB24 => pixels,
        PixelFormat::L8 => pixels.iter().flat_map(|&l| [l, l, l]).collect(),
        // 16-bit (lossless/12-bit) JPEG: big-endian samples, keep the high byte.
        PixelFormat::L16 => pixels
            .chunks_exact(2)
            .flat_map(|c| [c.first().copied().unwrap_or(0); 3])
            .collect(),
        PixelFormat::CMYK32 => pixels
            .chunks_exact(4)
            .flat_map(|c| {
                // jpeg-decoder un-inverts Adobe CMYK, so these are ink amounts:
                // RGB = (255 - C) × (255 - K) / 255.
                let [c0, c1, c2, k] = <[u8; 4]>::try_from(c).unwrap_or([0; 4]);
                let ch = |v: u8| ((u16::from(255 - v) * u16::from(255 - k) + 127) / 255) as u8;
                [ch(c0), ch(c1), ch(c2)]
            })
            .collect(),
    };
    if data.len() < n * 3 {
        return Err(ImageError::Corrupt(
            "JPEG decoder returned a short buffer".into(),
        ));
    }
    Ok(Rgb {
        width,
        height,
        data,
    })
}

/// Lanczos3 resize of an RGB buffer to exactly `w`×`h`.
fn resize_rgb(src: &Rgb, w: u32, h: u32) -> Result<Rgb, ImageError> {
    let err = |e: &dyn fmt::Display| ImageError::Resize(e.to_string());
    let src_img = fr::images::ImageRef::new(src.width, src.height, &src.data, fr::PixelType::U8x3)
        .map_err(|e| err(&e))?;
    let mut dst = fr::images::Image::new(w, h, fr::PixelType::U8x3);
    let opts =
        fr::ResizeOptions::new().resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Lanczos3));
    fr::Resizer::new()
        .resize(&src_img, &mut dst, &opts)
        .map_err(|e| err(&e))?;
    Ok(Rgb {
        width: w,
        height: h,
        data: dst.into_vec(),
    })
}

fn orient(img: Rgb, orientation: u16) -> Result<Rgb, ImageError> {
    let o = u8::try_from(orientation)
        .ok()
        .and_then(image::metadata::Orientation::from_exif)
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    if o == image::metadata::Orientation::NoTransforms {
        return Ok(img);
    }
    let buf = image::RgbImage::from_raw(img.width, img.height, img.data)
        .ok_or_else(|| ImageError::Resize("buffer size mismatch".into()))?;
    let mut dynimg = image::DynamicImage::ImageRgb8(buf);
    dynimg.apply_orientation(o);
    let (width, height) = (dynimg.width(), dynimg.height());
    Ok(Rgb {
        width,
        height,
        data: dynimg.into_rgb8().into_raw(),
    })
}

fn encode_jpeg(img: &Rgb) -> Result<Vec<u8>, ImageError> {
    let err = |e: &dyn fmt::Display| ImageError::Encode(e.to_string());
    let w = u16::try_from(img.width).map_err(|e| err(&e))?;
    let h = u16::try_from(img.height).map_err(|e| err(&e))?;
    let mut out = Vec::with_capacity(img.data.len() / 10);
    let mut enc = jpeg_encoder::Encoder::new(&mut out, JPEG_QUALITY);
    // 4:2:0 chroma as libjpeg/libvips do at Q80. Standard Huffman tables on purpose:
    // zune-jpeg 0.5.15 (the `image` crate's JPEG decoder) mis-decodes the chroma of
    // jpeg-encoder 0.7.1 output with optimised tables + 4:2:0 (libjpeg-turbo and
    // jpeg-decoder are fine); optimised tables would save ~5-10 % of bytes.
    enc.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_0);
    enc.encode(&img.data, w, h, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| err(&e))?;
    Ok(out)
}

// ---------------------------------------------------------------------------
// tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use image::ImageEncoder;

    /// Deterministic xorshift bytes.
    fn noise(seed: u32, n: usize) -> Vec<u8> {
        let mut s = seed.max(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s >> 24) as u8
            })
            .collect()
    }

    /// A w×h photo-like RGB gradient with a bright marker in the top-left corner.
    fn test_rgb(w: u32, h: u32) -> image::RgbImage {
        image::RgbImage::from_fn(w, h, |x, y| {
            if x < w / 4 && y < h / 4 {
                image::Rgb([250, 20, 20])
            } else {
                image::Rgb([(x * 255 / w) as u8, (y * 255 / h) as u8, 128])
            }
        })
    }

    fn jpeg_bytes(img: &image::RgbImage, exif: Option<Vec<u8>>) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90);
        if let Some(e) = exif {
            enc.set_exif_metadata(e).unwrap();
        }
        enc.write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
        out
    }

    fn png_bytes(img: &image::DynamicImage) -> Vec<u8> {
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    /// True if the JPEG has any APP1 (Exif/XMP) segment before SOS.
    fn has_app1(b: &[u8]) -> bool {
        let mut i = 2;
        while i + 4 <= b.len() && b[i] == 0xFF {
            let m = b[i + 1];
            if m == 0xE1 {
                return true;
            }
            if m == 0xDA {
                return false;
            }
            i += 2 + usize::from(u16::from_be_bytes([b[i + 2], b[i + 3]]));
        }
        false
    }

    fn check_output(jpeg: &[u8], size: (u32, u32)) {
        assert_eq!(sniff(jpeg), Some(ImageFormat::Jpeg));
        assert!(!has_app1(jpeg), "derivative must carry no APP1/EXIF");
        let p = probe(jpeg).unwrap();
        assert_eq!((p.width, p.height), size);
        assert_eq!(read_exif(jpeg), ExifMeta::empty());
    }

    #[test]
    fn sniff_magic_bytes() {
        let png = png_bytes(&image::DynamicImage::ImageRgb8(test_rgb(8, 8)));
        // A PNG uploaded as "photo.jpg" with Content-Type image/jpeg is still a PNG.
        assert_eq!(sniff(&png), Some(ImageFormat::Png));
        assert_eq!(probe(&png).unwrap().format, ImageFormat::Png);
        assert_eq!(
            sniff(&jpeg_bytes(&test_rgb(8, 8), None)),
            Some(ImageFormat::Jpeg)
        );
        assert_eq!(
            sniff(b"RIFF\x10\x00\x00\x00WEBPVP8 "),
            Some(ImageFormat::Webp)
        );
        let ftyp = |major: &[u8], compat: &[&[u8]]| {
            let mut b = Vec::new();
            b.extend_from_slice(&((16 + 4 * compat.len()) as u32).to_be_bytes());
            b.extend_from_slice(b"ftyp");
            b.extend_from_slice(major);
            b.extend_from_slice(&[0, 0, 0, 0]);
            for c in compat {
                b.extend_from_slice(c);
            }
            b
        };
        assert_eq!(
            sniff(&ftyp(b"heic", &[b"mif1", b"heic"])),
            Some(ImageFormat::Heif)
        );
        assert_eq!(sniff(&ftyp(b"mif1", &[b"heic"])), Some(ImageFormat::Heif));
        assert_eq!(sniff(&ftyp(b"msf1", &[])), Some(ImageFormat::Heif));
        assert_eq!(
            sniff(&ftyp(b"avif", &[b"avif", b"mif1"])),
            Some(ImageFormat::Avif)
        );
        assert_eq!(
            sniff(&ftyp(b"mif1", &[b"avif", b"miaf"])),
            Some(ImageFormat::Avif)
        );
        assert_eq!(
            sniff(&ftyp(b"isom", &[b"mp42"])),
            None,
            "MP4 video is not an image"
        );
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(&[0xFF, 0xD8]), None);
    }

    #[test]
    fn random_bytes_are_not_images() {
        for seed in 1..200 {
            let b = noise(seed, 64);
            assert_eq!(sniff(&b), None, "seed {seed}");
            assert!(matches!(probe(&b), Err(ImageError::NotAnImage)));
            assert!(matches!(
                derive(&b, &Limits::default()),
                Err(ImageError::NotAnImage)
            ));
            let m = read_exif(&b);
            assert_eq!((m.orientation, m.taken_at, m.lat), (1, None, None));
        }
    }

    #[test]
    fn jpeg_derivatives_sizes_and_no_metadata() {
        let img = test_rgb(2000, 1000);
        let bytes = jpeg_bytes(&img, None);
        let p = probe(&bytes).unwrap();
        assert_eq!(
            (p.format, p.width, p.height),
            (ImageFormat::Jpeg, 2000, 1000)
        );
        let d = derive(&bytes, &Limits::default()).unwrap();
        assert_eq!(d.preview_size, (1280, 640));
        assert_eq!(d.thumb_size, (320, 160));
        check_output(&d.preview, d.preview_size);
        check_output(&d.thumbnail, d.thumb_size);
        // The red marker stays top-left (no orientation tag → no transform).
        let t = image::load_from_memory(&d.thumbnail).unwrap().to_rgb8();
        let px = t.get_pixel(10, 10).0;
        assert!(px[0] > 200 && px[1] < 80, "{px:?}");
    }

    #[test]
    fn small_images_are_not_upscaled() {
        let bytes = jpeg_bytes(&test_rgb(300, 200), None);
        let d = derive(&bytes, &Limits::default()).unwrap();
        assert_eq!(d.preview_size, (300, 200));
        assert_eq!(d.thumb_size, (300, 200));
        let one = jpeg_bytes(&test_rgb(1, 1), None);
        let d = derive(&one, &Limits::default()).unwrap();
        assert_eq!((d.preview_size, d.thumb_size), ((1, 1), (1, 1)));
        let thin = jpeg_bytes(&test_rgb(4000, 2), None);
        let d = derive(&thin, &Limits::default()).unwrap();
        assert_eq!((d.preview_size, d.thumb_size), ((1280, 1), (320, 1)));
    }

    #[test]
    fn png_with_alpha_is_flattened() {
        let img = image::RgbaImage::from_fn(640, 480, |x, _| {
            image::Rgba([0, 0, 0, if x < 320 { 0 } else { 255 }])
        });
        let bytes = png_bytes(&image::DynamicImage::ImageRgba8(img));
        assert_eq!(
            probe(&bytes).unwrap(),
            Probe {
                format: ImageFormat::Png,
                width: 640,
                height: 480
            }
        );
        let d = derive(&bytes, &Limits::default()).unwrap();
        assert_eq!((d.preview_size, d.thumb_size), ((640, 480), (320, 240)));
        check_output(&d.preview, d.preview_size);
        let t = image::load_from_memory(&d.thumbnail).unwrap().to_rgb8();
        assert!(t.get_pixel(10, 100).0[0] > 240, "transparent → white");
        assert!(t.get_pixel(300, 100).0[0] < 15, "opaque black stays black");
    }

    #[test]
    fn webp_is_derived() {
        let img = image::DynamicImage::ImageRgb8(test_rgb(400, 300));
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::WebP)
            .unwrap();
        assert_eq!(
            probe(&out).unwrap(),
            Probe {
                format: ImageFormat::Webp,
                width: 400,
                height: 300
            }
        );
        let d = derive(&out, &Limits::default()).unwrap();
        assert_eq!((d.preview_size, d.thumb_size), ((400, 300), (320, 240)));
    }

    /// Patches the first SOF0 of a JPEG to claim `w`×`h`.
    fn patch_sof(bytes: &mut [u8], w: u16, h: u16) {
        let mut i = 2;
        loop {
            let m = bytes[i + 1];
            let len = usize::from(u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]));
            if m == 0xC0 {
                bytes[i + 5..i + 7].copy_from_slice(&h.to_be_bytes());
                bytes[i + 7..i + 9].copy_from_slice(&w.to_be_bytes());
                return;
            }
            i += 2 + len;
        }
    }

    #[test]
    fn decompression_bomb_is_refused_before_decoding() {
        let mut bytes = jpeg_bytes(&test_rgb(16, 16), None);
        patch_sof(&mut bytes, 50_000, 50_000);
        let p = probe(&bytes).unwrap();
        assert_eq!((p.width, p.height), (50_000, 50_000));
        // 2.5 G pixels × 3 bytes = 7.5 GB would be needed if this decoded; TooLarge is
        // returned from the header check, before any decoder is constructed.
        let t = std::time::Instant::now();
        match derive(&bytes, &Limits::default()) {
            Err(ImageError::TooLarge {
                width: 50_000,
                height: 50_000,
            }) => {}
            other => panic!("expected TooLarge, got {other:?}"),
        }
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
        // A limit below the real size also refuses.
        let small = jpeg_bytes(&test_rgb(100, 100), None);
        let lim = Limits {
            max_pixels: 9_999,
            ..Limits::default()
        };
        assert!(matches!(
            derive(&small, &lim),
            Err(ImageError::TooLarge { .. })
        ));
        // PNG IHDR claiming 50000×50000.
        let mut png = png_bytes(&image::DynamicImage::ImageRgb8(test_rgb(16, 16)));
        png[16..20].copy_from_slice(&50_000u32.to_be_bytes());
        png[20..24].copy_from_slice(&50_000u32.to_be_bytes());
        assert_eq!(probe(&png).unwrap().width, 50_000);
        assert!(matches!(
            derive(&png, &Limits::default()),
            Err(ImageError::TooLarge { .. })
        ));
    }

    #[test]
    fn peak_estimates_follow_the_decoders() {
        let l = Limits::default();
        let px = 10_000u64 * 10_000;
        let jpeg = |components: Vec<(u8, u8)>, progressive| Layout::Jpeg {
            components,
            progressive,
            lossless: false,
        };
        // Baseline JPEG decodes at 1/4 scale (2500 px ≥ the 1280 preview): bounded.
        let baseline = estimate_peak(10_000, 10_000, &jpeg(vec![(1, 1); 3], false), 0, &l);
        assert!(baseline < l.max_decode_bytes, "{}", baseline / MIB);
        // Progressive 4:4:4 holds 3 × 64 coefficients × 2 bytes per 8×8 block: 600 MB.
        let prog = estimate_peak(10_000, 10_000, &jpeg(vec![(1, 1); 3], true), 0, &l);
        assert!(
            prog >= px * 6 && prog < px * 6 + 100 * MIB,
            "{}",
            prog / MIB
        );
        // 4:2:0 holds half as many.
        let prog420 = estimate_peak(
            10_000,
            10_000,
            &jpeg(vec![(2, 2), (1, 1), (1, 1)], true),
            0,
            &l,
        );
        assert!(prog420 >= px * 3 && prog420 < prog, "{}", prog420 / MIB);
        // A non-interlaced PNG streams: 16-bit RGBA of 100 MP within the limit; interlaced
        // holds an 8-bit RGBA frame.
        let png = |interlaced| Layout::Png {
            channels: 4,
            bit_depth: 16,
            interlaced,
        };
        let rows = estimate_peak(10_000, 10_000, &png(false), 0, &l);
        assert!(rows < l.max_decode_bytes, "{}", rows / MIB);
        assert!(estimate_peak(10_000, 10_000, &png(true), 0, &l) > px * 4);
        // WebP holds the frame: 4 to 10.5 bytes a pixel.
        let webp = |lossy, alpha| Layout::Webp {
            lossy,
            alpha,
            animated: false,
        };
        assert!(estimate_peak(4000, 3000, &webp(true, false), 0, &l) < l.max_decode_bytes);
        assert!(estimate_peak(10_000, 10_000, &webp(false, true), 0, &l) > px * 4);
        assert!(estimate_peak(10_000, 10_000, &webp(true, true), 0, &l) > px * 10);
        // The file's own bytes count.
        assert_eq!(
            estimate_peak(100, 100, &png(false), 5 * MIB, &l),
            estimate_peak(100, 100, &png(false), 0, &l) + 5 * MIB
        );
    }

    #[test]
    fn plan_refuses_over_budget_and_reads_layouts() {
        let bytes = jpeg_bytes(&test_rgb(64, 48), None);
        let p = plan(&bytes, &Limits::default()).unwrap();
        assert!(
            matches!(&p.layout, Layout::Jpeg { progressive: false, components, .. } if components.len() == 3)
        );
        assert!(!p.holds_full_frame());
        let tight = Limits {
            max_decode_bytes: 1024,
            ..Limits::default()
        };
        match plan(&bytes, &tight) {
            Err(e @ ImageError::OverBudget { .. }) => {
                assert!(e.to_string().contains("the limit is 0 MiB"), "{e}")
            }
            other => panic!("expected OverBudget, got {other:?}"),
        }
        let png = png_bytes(&image::DynamicImage::ImageRgba16(image::ImageBuffer::new(
            8, 8,
        )));
        assert_eq!(
            plan(&png, &Limits::default()).unwrap().layout,
            Layout::Png {
                channels: 4,
                bit_depth: 16,
                interlaced: false
            }
        );
    }

    /// The row-by-row PNG path gives what a full decode and a resize give, for every colour
    /// type, 16-bit, alpha (over white) and sizes that shrink while read.
    #[test]
    fn png_rows_match_a_full_decode() {
        let base = test_rgb(3000, 1000);
        let rgba16 = image::DynamicImage::ImageRgb8(base.clone()).to_rgba16();
        let mut rgba8 = image::DynamicImage::ImageRgb8(base.clone()).to_rgba8();
        for (x, _, px) in rgba8.enumerate_pixels_mut() {
            px.0[3] = (x * 255 / 3000) as u8;
        }
        let imgs = [
            image::DynamicImage::ImageRgb8(base.clone()),
            image::DynamicImage::ImageRgba16(rgba16),
            image::DynamicImage::ImageRgba8(rgba8.clone()),
            image::DynamicImage::ImageLuma8(
                image::DynamicImage::ImageRgb8(base.clone()).to_luma8(),
            ),
        ];
        for img in imgs {
            let bytes = png_bytes(&img);
            let d = derive(&bytes, &Limits::default()).unwrap();
            assert_eq!(d.preview_size, (1280, 427));
            let got = image::load_from_memory(&d.preview).unwrap().to_rgb8();
            // Reference: full decode, composite over white, plain resize.
            let full = image::load_from_memory(&bytes).unwrap().to_rgba8();
            let flat = image::RgbImage::from_fn(full.width(), full.height(), |x, y| {
                let [r, g, b, a] = full.get_pixel(x, y).0;
                let bl = |c: u8| {
                    ((u16::from(c) * u16::from(a) + 255 * (255 - u16::from(a)) + 127) / 255) as u8
                };
                image::Rgb([bl(r), bl(g), bl(b)])
            });
            let want =
                image::imageops::resize(&flat, 1280, 427, image::imageops::FilterType::Triangle);
            let diff: u64 = got
                .as_raw()
                .iter()
                .zip(want.as_raw())
                .map(|(a, b)| u64::from(a.abs_diff(*b)))
                .sum();
            let mean = diff as f64 / got.as_raw().len() as f64;
            assert!(mean < 4.0, "{:?}: mean difference {mean:.2}", img.color());
        }
    }

    #[test]
    fn lying_header_within_limits_fails_cleanly() {
        // Header claims 8000×8000 (64 MP, within limits) but the data is a 16×16 image.
        let mut bytes = jpeg_bytes(&test_rgb(16, 16), None);
        patch_sof(&mut bytes, 8000, 8000);
        match derive(&bytes, &Limits::default()) {
            Ok(_) | Err(ImageError::Corrupt(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn truncated_and_mangled_inputs_never_panic() {
        let jpeg = jpeg_bytes(&test_rgb(64, 48), None);
        let png = png_bytes(&image::DynamicImage::ImageRgb8(test_rgb(64, 48)));
        for base in [&jpeg, &png] {
            for cut in [3, 10, 30, 100, base.len() / 2, base.len() - 2] {
                let b = &base[..cut];
                let _ = probe(b);
                let _ = read_exif(b);
                match derive(b, &Limits::default()) {
                    Ok(_) | Err(ImageError::Corrupt(_)) | Err(ImageError::NotAnImage) => {}
                    Err(e) => panic!("cut {cut}: unexpected {e:?}"),
                }
            }
            for seed in 1..60u32 {
                let mut b = base.clone();
                for (k, r) in noise(seed, 8).chunks(2).enumerate() {
                    let at = (usize::from(r[0]) * 7 + k * 131 + seed as usize * 17) % b.len();
                    b[at] = r[1];
                }
                let _ = probe(&b);
                let _ = read_exif(&b);
                let _ = derive(&b, &Limits::default());
            }
        }
    }

    fn exif_blob(orientation: u16) -> Vec<u8> {
        use exif::{Field, In, Rational, Tag, Value};
        let f = |tag, value| Field {
            tag,
            ifd_num: In::PRIMARY,
            value,
        };
        let r = |n, d| Rational { num: n, denom: d };
        let fields = [
            f(Tag::Make, Value::Ascii(vec![b"Velsen Cam".to_vec()])),
            f(Tag::Model, Value::Ascii(vec![b"BOA-1 ".to_vec()])),
            f(Tag::Orientation, Value::Short(vec![orientation])),
            f(
                Tag::DateTime,
                Value::Ascii(vec![b"2024:05:06 07:08:09".to_vec()]),
            ),
            f(
                Tag::DateTimeOriginal,
                Value::Ascii(vec![b"2024:05:06 07:08:00".to_vec()]),
            ),
            f(
                Tag::OffsetTimeOriginal,
                Value::Ascii(vec![b"+02:00".to_vec()]),
            ),
            f(Tag::GPSLatitudeRef, Value::Ascii(vec![b"N".to_vec()])),
            f(
                Tag::GPSLatitude,
                Value::Rational(vec![r(52, 1), r(27, 1), r(3600, 100)]),
            ),
            f(Tag::GPSLongitudeRef, Value::Ascii(vec![b"E".to_vec()])),
            f(
                Tag::GPSLongitude,
                Value::Rational(vec![r(4, 1), r(3675, 100), r(0, 1)]),
            ),
        ];
        let mut w = exif::experimental::Writer::new();
        for fld in &fields {
            w.push_field(fld);
        }
        let mut out = Cursor::new(Vec::new());
        w.write(&mut out, false).unwrap();
        out.into_inner()
    }

    #[test]
    fn exif_fields_and_orientation_applied() {
        let bytes = jpeg_bytes(&test_rgb(800, 400), Some(exif_blob(6)));
        let m = read_exif(&bytes);
        assert_eq!(m.error, None);
        assert_eq!(m.make.as_deref(), Some("Velsen Cam"));
        assert_eq!(m.model.as_deref(), Some("BOA-1"));
        assert_eq!(m.orientation, 6);
        assert_eq!(
            m.taken_at,
            NaiveDate::from_ymd_opt(2024, 5, 6).and_then(|d| d.and_hms_opt(7, 8, 0))
        );
        assert_eq!(m.offset, FixedOffset::east_opt(7200));
        assert!((m.lat.unwrap() - 52.46).abs() < 1e-9);
        assert!((m.lon.unwrap() - 4.6125).abs() < 1e-9);

        let d = derive(&bytes, &Limits::default()).unwrap();
        // Stored 800×400, orientation 6 (rotate 90° CW to display) → 400×800 upright.
        assert_eq!(d.preview_size, (400, 800));
        assert_eq!(d.thumb_size, (160, 320));
        check_output(&d.preview, d.preview_size);
        // The stored top-left red marker ends up top-right after a 90° CW rotation.
        let t = image::load_from_memory(&d.thumbnail).unwrap().to_rgb8();
        let px = t.get_pixel(150, 10).0;
        assert!(px[0] > 200 && px[1] < 80, "{px:?}");
        let px = t.get_pixel(10, 10).0;
        assert!(px[0] < 200 || px[1] > 80, "{px:?}");
    }

    #[test]
    fn invalid_orientation_is_one() {
        let bytes = jpeg_bytes(&test_rgb(40, 20), Some(exif_blob(0)));
        assert_eq!(read_exif(&bytes).orientation, 1);
        let bytes = jpeg_bytes(&test_rgb(40, 20), Some(exif_blob(9)));
        assert_eq!(read_exif(&bytes).orientation, 1);
        assert_eq!(
            derive(&bytes, &Limits::default()).unwrap().preview_size,
            (40, 20)
        );
    }

    // ---- real-world corpus -------------------------------------------------

    fn corpus_dir() -> Option<std::path::PathBuf> {
        let candidates = [
            std::path::PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../shared/data/photos"
            )),
            std::path::PathBuf::from("/work/shared/data/photos"),
        ];
        candidates
            .into_iter()
            .find(|p| p.join("EXIF_SUMMARY.json").is_file())
    }

    fn exif_dt(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y:%m:%d %H:%M:%S").unwrap()
    }

    /// Checks one corpus entry; returns the thumbnail of the "Landscape_N" files.
    fn check_corpus_entry(
        dir: &std::path::Path,
        e: &serde_json::Value,
    ) -> Option<(String, image::RgbImage)> {
        let name = e["file"].as_str().unwrap();
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let ctx = |what: &str| format!("{name}: {what}");

        // Format and dimensions.
        let expected_format = match e["format"].as_str().unwrap() {
            "JPEG" => ImageFormat::Jpeg,
            "PNG" => ImageFormat::Png,
            "WEBP" => ImageFormat::Webp,
            "HEIF" => ImageFormat::Heif,
            other => panic!("{name}: unknown format {other}"),
        };
        let (pw, ph) = (
            e["pixel_size"][0].as_u64().unwrap() as u32,
            e["pixel_size"][1].as_u64().unwrap() as u32,
        );
        let p = probe(&bytes).unwrap_or_else(|err| panic!("{}", ctx(&err.to_string())));
        assert_eq!(p.format, expected_format, "{}", ctx("format"));
        assert_eq!((p.width, p.height), (pw, ph), "{}", ctx("pixel_size"));

        // EXIF.
        let m = read_exif(&bytes);
        let want_orientation = match e.get("orientation_tag").and_then(|v| v.as_u64()) {
            Some(o @ 1..=8) => o as u16,
            _ => 1,
        };
        assert_eq!(m.orientation, want_orientation, "{}", ctx("orientation"));
        if let Some(make) = e.get("make").and_then(|v| v.as_str()) {
            assert_eq!(m.make.as_deref(), Some(make), "{}", ctx("make"));
        }
        if let Some(model) = e.get("model").and_then(|v| v.as_str()) {
            assert_eq!(m.model.as_deref(), Some(model), "{}", ctx("model"));
        }
        if let Some(dt) = e.get("datetime_original").and_then(|v| v.as_str()) {
            assert_eq!(
                m.taken_at,
                Some(exif_dt(dt)),
                "{}",
                ctx("datetime_original")
            );
        }
        match (
            e.get("gps_lat").and_then(|v| v.as_f64()),
            e.get("gps_lon").and_then(|v| v.as_f64()),
        ) {
            (Some(lat), Some(lon)) => {
                let (a, o) = (m.lat.unwrap_or(f64::NAN), m.lon.unwrap_or(f64::NAN));
                assert!(
                    (a - lat).abs() < 1e-4,
                    "{}",
                    ctx(&format!("lat {a} vs {lat}"))
                );
                assert!(
                    (o - lon).abs() < 1e-4,
                    "{}",
                    ctx(&format!("lon {o} vs {lon}"))
                );
            }
            _ => assert_eq!(
                (m.lat, m.lon),
                (None, None),
                "{}",
                ctx("GPS should be None")
            ),
        }
        if e["kamadak_exif_0_6_2"].as_str().unwrap().starts_with("ERR")
            && !e["kamadak_exif_0_6_2"]
                .as_str()
                .unwrap()
                .contains("No Exif data")
        {
            assert!(
                m.error.is_some(),
                "{}",
                ctx("broken EXIF must report error")
            );
        }

        // Derivatives.
        let pillow_ok = e["pillow_decodes"].as_bool().unwrap();
        let res = derive(&bytes, &Limits::default());
        match (expected_format, pillow_ok) {
            (ImageFormat::Heif, _) => {
                assert!(
                    matches!(res, Err(ImageError::Unsupported(ImageFormat::Heif))),
                    "{}",
                    ctx("HEIF must be Unsupported")
                );
                return None;
            }
            (_, false) => {
                // Truncated etc.: a partial image or Corrupt, never a panic.
                assert!(
                    matches!(res, Ok(_) | Err(ImageError::Corrupt(_))),
                    "{}",
                    ctx(&format!("{res:?}"))
                );
                return None;
            }
            _ => {}
        }
        let d = res.unwrap_or_else(|err| panic!("{}", ctx(&err.to_string())));
        check_output(&d.preview, d.preview_size);
        check_output(&d.thumbnail, d.thumb_size);
        let (ow, oh) = if (5..=8).contains(&m.orientation) {
            (ph, pw)
        } else {
            (pw, ph)
        };
        let same_aspect = |(w, h): (u32, u32)| {
            (f64::from(w) / f64::from(h) - f64::from(ow) / f64::from(oh)).abs() < 0.02
        };
        assert!(
            same_aspect(d.preview_size),
            "{}",
            ctx(&format!("preview {:?}", d.preview_size))
        );
        assert!(
            same_aspect(d.thumb_size),
            "{}",
            ctx(&format!("thumb {:?}", d.thumb_size))
        );
        if (5..=8).contains(&m.orientation) && pw != ph {
            assert_eq!(
                d.preview_size.0 > d.preview_size.1,
                pw < ph,
                "{}",
                ctx("orientation 5-8 must swap portrait/landscape")
            );
        }
        assert!(d.preview_size.0.max(d.preview_size.1) <= 1280);
        assert!(d.thumb_size.0.max(d.thumb_size.1) <= 320);
        if name.starts_with("orientation_") && name.contains("recurser") {
            let t = image::load_from_memory(&d.thumbnail).unwrap().to_rgb8();
            return Some((name.to_owned(), t));
        }
        None
    }

    #[test]
    fn corpus_matches_summary() {
        let Some(dir) = corpus_dir() else {
            // Straight to standard error: libtest captures `eprintln!` and drops it when the
            // test passes, and this test passes without having run.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPED corpus_matches_summary (counted as passed): no EXIF_SUMMARY.json \
                 under $CARGO_MANIFEST_DIR/../../shared/data/photos nor /work/shared/data/photos ***\n"
            );
            return;
        };
        eprintln!("corpus_matches_summary: using {}", dir.display());
        let summary: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("EXIF_SUMMARY.json")).unwrap()).unwrap();
        let entries = summary.as_array().unwrap();
        assert!(entries.len() >= 20, "summary unexpectedly small");
        // Two workers: the debug build is slow at resizing/encoding 1800×1200 files.
        let upright_thumbs: Vec<(String, image::RgbImage)> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..2)
                .map(|k| {
                    let dir = &dir;
                    s.spawn(move || {
                        entries
                            .iter()
                            .skip(k)
                            .step_by(2)
                            .filter_map(|e| check_corpus_entry(dir, e))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap())
                .collect()
        });
        // All eight "Landscape_N" files show the same upright picture once oriented.
        let (ref_name, reference) = upright_thumbs
            .iter()
            .find(|(n, _)| n.contains("Landscape_1"))
            .cloned()
            .expect("orientation_1 reference");
        assert_eq!(upright_thumbs.len(), 9);
        for (n, t) in &upright_thumbs {
            assert_eq!(t.dimensions(), reference.dimensions(), "{n}");
            let diff: u64 = t
                .as_raw()
                .iter()
                .zip(reference.as_raw())
                .map(|(a, b)| u64::from(a.abs_diff(*b)))
                .sum();
            let mean = diff as f64 / t.as_raw().len() as f64;
            assert!(
                mean < 12.0,
                "{n} differs from {ref_name} after orientation: mean {mean:.1}"
            );
        }
    }
}
