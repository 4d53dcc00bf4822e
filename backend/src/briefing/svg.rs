//! SVG drawings for the daily briefing page (server-rendered, inline in HTML).
//!
//! Pure functions returning `String`s of inline SVG (no XML prolog). Everything is
//! styled through CSS classes prefixed `bs-` (see [`CSS_CLASSES`]); every SVG carries a
//! small default `<style>` whose rules are wrapped in `:where(...)` (zero specificity),
//! so *any* rule in the page or print stylesheet overrides them.
//!
//! * [`map_svg`]: Velsen's wijken with violations (markers or a density grid),
//!   hotspots, patrol-round tracks and youth/incident sightings.
//! * [`sparkline_svg`]: daily counts, last value marked.
//! * [`bars_svg`]: horizontal bars with the numbers as text.
//!
//! Size strategy (busy day: 5,000 points, 500 tracks / 300,000 track points ≈ 60 KB):
//! coordinates are integers in a viewBox as wide as `width_px`, paths use relative
//! commands, each point class is one `<path>` with one subpath per marker, above
//! [`DENSITY_THRESHOLD`] points violations become a grid of [`DENSITY_CELL_M`] m cells
//! (one `<path>` per shade class, horizontal runs merged), and all tracks are one
//! Douglas–Peucker-simplified `<path>`.

use geo::{Coord, InteriorPoint, MapCoords, MultiPolygon, Simplify};
use std::fmt::Write as _;

/// One wijk (or buurt) to outline. `shape` is WGS84 with x = lon, y = lat.
#[derive(Debug, Clone)]
pub struct MapArea {
    /// CBS code, e.g. `WK045300`; emitted as `data-code` on the outline.
    pub code: String,
    /// Display name, e.g. `Wijk 00 Velsen-Zuid en Driehuis` (the visible label drops the
    /// `Wijk NN ` prefix; the full name is the outline's `<title>`).
    pub name: String,
    /// Boundary, x = lon, y = lat.
    pub shape: MultiPolygon<f64>,
    /// Reports in the area: the outlines are shaded by it (`bs-wijk-s1` … `bs-wijk-s4`,
    /// lightest to darkest, relative to the busiest area); 0 everywhere leaves them plain.
    pub count: u32,
}

/// A point event: a violation or a sighting.
#[derive(Debug, Clone, Copy)]
pub struct MapPoint {
    /// Latitude, WGS84 degrees.
    pub lat: f64,
    /// Longitude, WGS84 degrees.
    pub lon: f64,
    /// Category: `"afval"`, `"parkeren"`, `"honden"`, `"overig"` (violations), `"youth"`,
    /// `"incident"` (overlays, always drawn as markers unless they alone exceed the
    /// threshold). Any other value is drawn as a grey dot with class `bs-pt-<sanitised>`.
    pub class: &'static str,
}

/// A hotspot: a circle of `radius_m` metres.
#[derive(Debug, Clone)]
pub struct MapHotspot {
    /// Latitude, WGS84 degrees.
    pub lat: f64,
    /// Longitude, WGS84 degrees.
    pub lon: f64,
    /// Radius in metres (drawn at least 3 units wide).
    pub radius_m: f64,
    /// Name shown next to the circle.
    pub label: String,
    /// A patrol round passed it (class `bs-hs-covered`, solid) or not (`bs-hs-open`, dashed).
    pub covered: bool,
}

/// The marker class of a report's category (`MapPoint::class`): its own for the three the map
/// tells apart, `overig` for the rest.
pub fn category_class(category: &str) -> &'static str {
    match category {
        "afval" => "afval",
        "parkeren" => "parkeren",
        "honden" => "honden",
        _ => "overig",
    }
}

/// Everything drawn on the map.
#[derive(Debug, Clone, Copy)]
pub struct MapInput<'a> {
    /// Outlines; their bounding box defines the map extent (data outside is clipped).
    pub areas: &'a [MapArea],
    /// Violations and sightings.
    pub points: &'a [MapPoint],
    /// Hotspot circles.
    pub hotspots: &'a [MapHotspot],
    /// Patrol-round tracks, each a sequence of `(lat, lon)`.
    pub tracks: &'a [Vec<(f64, f64)>],
    /// `<title>` of the SVG and start of its `aria-label`.
    pub title: &'a str,
}

/// Above this many points in total, violations (all classes except `youth` and
/// `incident`) are drawn as a density grid instead of markers.
pub const DENSITY_THRESHOLD: usize = 800;
/// Side of a density-grid cell, metres.
pub const DENSITY_CELL_M: f64 = 250.0;
/// Douglas–Peucker tolerance for wijk outlines, in output units (≈ px at `width_px`).
pub const OUTLINE_TOLERANCE_PX: f64 = 1.0;
/// Douglas–Peucker tolerance for tracks, in output units (≈ px at `width_px`).
pub const TRACK_TOLERANCE_PX: f64 = 1.0;
/// If the track path is longer than this, it is re-simplified with double tolerance
/// (up to 3 times) so that an extreme day cannot blow the page budget.
pub const TRACK_BUDGET_BYTES: usize = 60_000;

/// CSS classes a page/print stylesheet can target (all default rules are `:where()`-wrapped).
pub const CSS_CLASSES: &[&str] = &[
    "bs-svg",
    "bs-map",
    "bs-spark",
    "bs-bars",
    "bs-wijken",
    "bs-wijk",
    "bs-wijk-edge",
    "bs-labels",
    "bs-wijk-label",
    "bs-dens",
    "bs-d1",
    "bs-d2",
    "bs-d3",
    "bs-d4",
    "bs-d5",
    "bs-trk",
    "bs-hotspots",
    "bs-hs",
    "bs-hs-covered",
    "bs-hs-open",
    "bs-hs-label",
    "bs-pts",
    "bs-pt",
    "bs-pt-afval",
    "bs-pt-parkeren",
    "bs-pt-honden",
    "bs-pt-overig",
    "bs-pt-youth",
    "bs-pt-incident",
    "bs-pt-other",
    "bs-legend",
    "bs-legend-text",
    "bs-empty",
    "bs-spark-line",
    "bs-spark-area",
    "bs-spark-base",
    "bs-spark-last",
    "bs-spark-value",
    "bs-bar",
    "bs-bar-label",
    "bs-bar-value",
];

const M_PER_DEG: f64 = 111_320.0;
/// Fallback extent (Velsen) when there are no areas and no data.
const VELSEN_BBOX: (f64, f64, f64, f64) = (4.55, 52.41, 4.72, 52.51);

const STYLE_COMMON: &str = ":where(.bs-svg){font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}\
:where(.bs-svg text){fill:#222}\
:where(.bs-svg .bs-empty){fill:#777;font-style:italic}";

const STYLE_MAP: &str = ":where(.bs-map .bs-wijk){fill:#f3f0e8;fill-rule:evenodd}\
:where(.bs-map .bs-wijk-s1){fill:#e6e6e6}:where(.bs-map .bs-wijk-s2){fill:#d2d2d2}:where(.bs-map .bs-wijk-s3){fill:#bababa}:where(.bs-map .bs-wijk-s4){fill:#a0a0a0}\
:where(.bs-map .bs-wijk-edge){fill:none;stroke:#555;stroke-width:1.2;stroke-linejoin:round;vector-effect:non-scaling-stroke}\
:where(.bs-map .bs-wijk-label){text-anchor:middle;font-weight:600;stroke:#fff;stroke-width:3px;stroke-linejoin:round;paint-order:stroke}\
:where(.bs-map .bs-d1){fill:#fee8c8}:where(.bs-map .bs-d2){fill:#fdbb84}:where(.bs-map .bs-d3){fill:#f4845c}\
:where(.bs-map .bs-d4){fill:#d7301f}:where(.bs-map .bs-d5){fill:#7f0000}\
:where(.bs-map .bs-dens){opacity:.8}\
:where(.bs-map .bs-trk){fill:none;stroke:#1f5fa8;stroke-width:1.2;stroke-opacity:.7;stroke-linejoin:round;stroke-linecap:round;vector-effect:non-scaling-stroke}\
:where(.bs-map .bs-hs){stroke-width:2;vector-effect:non-scaling-stroke}\
:where(.bs-map .bs-hs-covered){fill:#1b7837;fill-opacity:.08;stroke:#1b7837}\
:where(.bs-map .bs-hs-open){fill:#c0392b;fill-opacity:.15;stroke:#c0392b;stroke-width:3;stroke-dasharray:6 3}\
:where(.bs-map .bs-hs-label){font-weight:700;stroke:#fff;stroke-width:3px;paint-order:stroke}\
:where(.bs-map .bs-pt){stroke-linejoin:round;vector-effect:non-scaling-stroke}\
:where(.bs-map .bs-pt-afval){fill:#8c510a;stroke:#fff;stroke-width:.6}\
:where(.bs-map .bs-pt-parkeren){fill:#2166ac;stroke:#fff;stroke-width:.6}\
:where(.bs-map .bs-pt-honden){fill:#1b7837;stroke:#fff;stroke-width:.6}\
:where(.bs-map .bs-pt-overig){fill:none;stroke:#333;stroke-width:2}\
:where(.bs-map .bs-pt-youth){fill:#fff;fill-opacity:.6;stroke:#762a83;stroke-width:2}\
:where(.bs-map .bs-pt-incident){fill:none;stroke:#d01c1c;stroke-width:2.5}\
:where(.bs-map .bs-pt-other){fill:#666;stroke:#fff;stroke-width:.6}\
@media print{:where(.bs-map .bs-wijk-edge){stroke:#000}:where(.bs-map .bs-trk){stroke:#000;stroke-opacity:.5}}";

const STYLE_SPARK: &str = ":where(.bs-spark .bs-spark-line){fill:none;stroke:#1f5fa8;stroke-width:1.5;stroke-linejoin:round;vector-effect:non-scaling-stroke}\
:where(.bs-spark .bs-spark-area){fill:#1f5fa8;fill-opacity:.12}\
:where(.bs-spark .bs-spark-base){stroke:#bbb;stroke-width:1;vector-effect:non-scaling-stroke}\
:where(.bs-spark .bs-spark-last){fill:#c0392b;stroke:#fff;stroke-width:1}\
:where(.bs-spark .bs-spark-value){font-weight:600}\
@media print{:where(.bs-spark .bs-spark-line){stroke:#000}:where(.bs-spark .bs-spark-last){fill:#000}}";

const STYLE_BARS: &str = ":where(.bs-bars .bs-bar){fill:#1f5fa8;stroke:#1f5fa8}\
:where(.bs-bars .bs-bar-label){text-anchor:end}\
@media print{:where(.bs-bars .bs-bar){fill:#bbb;stroke:#000}}";

// ---------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------

/// Escapes text for XML content and attribute values; drops characters XML 1.0 forbids.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            '\t' | '\n' | '\r' => o.push(' '),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => o.push(c),
        }
    }
    o
}

/// A CSS-identifier-safe version of a class name (`[a-z0-9_-]`, lower case).
fn css_ident(s: &str) -> String {
    let o: String = s
        .chars()
        .filter_map(|c| {
            let c = c.to_ascii_lowercase();
            (c.is_ascii_alphanumeric() || c == '-' || c == '_').then_some(c)
        })
        .collect();
    if o.is_empty() { "other".to_string() } else { o }
}

/// Number with at most one decimal, never `NaN`/`inf`/`-0`.
fn num1(v: f64) -> String {
    if !v.is_finite() {
        return "0".to_string();
    }
    let t = (v * 10.0).round() as i64;
    if t % 10 == 0 {
        (t / 10).to_string()
    } else {
        let sign = if t < 0 { "-" } else { "" };
        let a = t.unsigned_abs();
        format!("{sign}{}.{}", a / 10, a % 10)
    }
}

/// A count for display: integer if whole, else one decimal; non-finite as 0.
fn fmt_count(v: f64) -> String {
    num1(v)
}

fn clean(v: f64) -> f64 {
    if v.is_finite() { v } else { 0.0 }
}

/// Rough text width in user units for a sans-serif font of size `fs`.
fn text_w(s: &str, fs: f64) -> f64 {
    s.chars().count() as f64 * fs * 0.58
}

/// Compact SVG path-data writer for integer coordinates.
struct PathData {
    s: String,
    sep: bool,
}

impl PathData {
    fn new() -> Self {
        PathData {
            s: String::new(),
            sep: false,
        }
    }
    fn cmd(&mut self, c: char) {
        self.s.push(c);
        self.sep = false;
    }
    fn n(&mut self, v: i64) {
        if self.sep && v >= 0 {
            self.s.push(' ');
        }
        let _ = write!(self.s, "{v}");
        self.sep = true;
    }
    fn pair(&mut self, x: i64, y: i64) {
        self.n(x);
        self.n(y);
    }
    /// Appends a polyline/ring: `M x y l dx dy ...` (+ `z` if `close`), skipping repeated
    /// points. Returns false (and writes nothing) if fewer than `min_pts` distinct points.
    fn poly(&mut self, pts: &[(i64, i64)], close: bool, min_pts: usize) -> bool {
        let mut dedup: Vec<(i64, i64)> = Vec::with_capacity(pts.len());
        for &p in pts {
            if dedup.last() != Some(&p) {
                dedup.push(p);
            }
        }
        if close && dedup.len() > 1 && dedup.first() == dedup.last() {
            dedup.pop();
        }
        if dedup.len() < min_pts {
            return false;
        }
        let (x0, y0) = dedup[0];
        self.cmd('M');
        self.pair(x0, y0);
        if dedup.len() > 1 {
            self.cmd('l');
            let mut prev = (x0, y0);
            for &(x, y) in &dedup[1..] {
                self.pair(x - prev.0, y - prev.1);
                prev = (x, y);
            }
        }
        if close {
            self.cmd('z');
        }
        true
    }
}

fn svg_open(o: &mut String, kind: &str, w: f64, h: f64, aria: &str, title: &str, style: &str) {
    let _ = write!(
        o,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"bs-svg {kind}\" viewBox=\"0 0 {} {}\" width=\"100%\" role=\"img\" aria-label=\"{}\"><title>{}</title><style>{STYLE_COMMON}{style}</style>",
        num1(w),
        num1(h),
        esc(aria),
        esc(title)
    );
}

// ---------------------------------------------------------------------------------------
// Map
// ---------------------------------------------------------------------------------------

/// Equirectangular projection, x scaled by cos(mid-latitude), fitted into the output width.
struct Proj {
    k: f64,
    u0: f64,
    v1: f64,
    s: f64,
    pad: f64,
}

impl Proj {
    fn xy(&self, lat: f64, lon: f64) -> (f64, f64) {
        (
            self.pad + (lon * self.k - self.u0) * self.s,
            self.pad + (self.v1 - lat) * self.s,
        )
    }
    fn px_per_m(&self) -> f64 {
        self.s / M_PER_DEG
    }
}

fn ok_ll(lat: f64, lon: f64) -> bool {
    lat.is_finite() && lon.is_finite() && lat.abs() <= 90.0 && lon.abs() <= 180.0
}

fn extent(input: &MapInput) -> (f64, f64, f64, f64) {
    let mut b = (
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    );
    fn add(b: &mut (f64, f64, f64, f64), lon: f64, lat: f64) {
        if ok_ll(lat, lon) {
            b.0 = b.0.min(lon);
            b.1 = b.1.min(lat);
            b.2 = b.2.max(lon);
            b.3 = b.3.max(lat);
        }
    }
    for a in input.areas {
        for poly in &a.shape.0 {
            for c in poly.exterior().0.iter() {
                add(&mut b, c.x, c.y);
            }
        }
    }
    if !b.0.is_finite() {
        for p in input.points {
            add(&mut b, p.lon, p.lat);
        }
        for h in input.hotspots {
            add(&mut b, h.lon, h.lat);
        }
        for t in input.tracks {
            for &(lat, lon) in t {
                add(&mut b, lon, lat);
            }
        }
    }
    if !b.0.is_finite() {
        return VELSEN_BBOX;
    }
    // Avoid a degenerate extent (single point / line).
    let min_span = 0.005;
    if b.2 - b.0 < min_span {
        let c = (b.0 + b.2) / 2.0;
        b.0 = c - min_span / 2.0;
        b.2 = c + min_span / 2.0;
    }
    if b.3 - b.1 < min_span {
        let c = (b.1 + b.3) / 2.0;
        b.1 = c - min_span / 2.0;
        b.3 = c + min_span / 2.0;
    }
    b
}

/// Marker shape for a class, centred on (x, y) with half-size `h`.
fn marker(pd: &mut PathData, class: &str, x: i64, y: i64, h: i64) {
    let d = 2 * h;
    match class {
        "afval" => {
            // square
            pd.cmd('M');
            pd.pair(x - h, y - h);
            pd.cmd('h');
            pd.n(d);
            pd.cmd('v');
            pd.n(d);
            pd.cmd('h');
            pd.n(-d);
            pd.cmd('z');
        }
        "parkeren" => {
            // diamond
            pd.cmd('M');
            pd.pair(x, y - h - 1);
            pd.cmd('l');
            pd.pair(h + 1, h + 1);
            pd.pair(-h - 1, h + 1);
            pd.pair(-h - 1, -h - 1);
            pd.cmd('z');
        }
        "honden" => {
            // triangle
            pd.cmd('M');
            pd.pair(x, y - h - 1);
            pd.cmd('l');
            pd.pair(h + 1, d + 1);
            pd.cmd('h');
            pd.n(-d - 2);
            pd.cmd('z');
        }
        "overig" => {
            // plus (stroked)
            pd.cmd('M');
            pd.pair(x - h, y);
            pd.cmd('h');
            pd.n(d);
            pd.cmd('m');
            pd.pair(-h, -h);
            pd.cmd('v');
            pd.n(d);
        }
        "incident" => {
            // X (stroked)
            pd.cmd('M');
            pd.pair(x - h, y - h);
            pd.cmd('l');
            pd.pair(d, d);
            pd.cmd('m');
            pd.pair(0, -d);
            pd.cmd('l');
            pd.pair(-d, d);
        }
        _ => {
            // circle (youth: ring via CSS; unknown: filled dot)
            let r = if class == "youth" { h + 1 } else { h };
            pd.cmd('M');
            pd.pair(x - r, y);
            pd.cmd('a');
            pd.pair(r, r);
            pd.s.push_str(" 0 1 0");
            pd.pair(2 * r, 0);
            pd.cmd('a');
            pd.pair(r, r);
            pd.s.push_str(" 0 1 0");
            pd.pair(-2 * r, 0);
        }
    }
}

fn class_label(class: &str) -> String {
    match class {
        "afval" => "Afval".into(),
        "parkeren" => "Parkeren".into(),
        "honden" => "Honden".into(),
        "overig" => "Overig".into(),
        "youth" => "Jongeren".into(),
        "incident" => "Incident".into(),
        other => other.to_string(),
    }
}

fn is_overlay(class: &str) -> bool {
    class == "youth" || class == "incident"
}

/// `Wijk 03 IJmuiden-West` → `IJmuiden-West`; other names unchanged.
fn short_name(name: &str) -> &str {
    let t = name.trim();
    if let Some(rest) = t.strip_prefix("Wijk ") {
        let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
        let rest = rest.trim_start();
        if !rest.is_empty() && rest.len() < t.len() - 5 {
            return rest;
        }
    }
    t
}

enum LegendSym {
    Marker(String),
    Hotspot(bool),
    Track,
    Dens(usize),
    /// An area shade (1..=4) of [`MapArea::count`].
    Shade(usize),
}

/// Encodes all tracks (already projected) as one path, simplified with `tol`.
fn encode_tracks(tracks: &[Vec<Coord<f64>>], tol: f64) -> String {
    let mut pd = PathData::new();
    let mut ints: Vec<(i64, i64)> = Vec::new();
    let mut scratch = Simplifier::default();
    for t in tracks {
        if t.len() < 2 {
            continue;
        }
        ints.clear();
        scratch.run(t, tol, &mut ints);
        pd.poly(&ints, false, 2);
    }
    pd.s
}

/// Track simplification: a radial-distance pre-pass (drops GPS fixes closer than `tol` to
/// the last kept one) followed by an iterative Douglas–Peucker with segment distance.
/// Hand-written instead of `geo::Simplify` because it is ~10x faster on 300,000 dense
/// GPS points (the geo version took ~25–95 ms there); outlines still use `geo::Simplify`.
#[derive(Default)]
struct Simplifier {
    radial: Vec<Coord<f64>>,
    keep: Vec<bool>,
    stack: Vec<(usize, usize)>,
}

impl Simplifier {
    fn run(&mut self, pts: &[Coord<f64>], tol: f64, out: &mut Vec<(i64, i64)>) {
        let tol2 = tol * tol;
        self.radial.clear();
        let (Some(&first), Some(&last)) = (pts.first(), pts.last()) else {
            return;
        };
        let mut prev = first;
        self.radial.push(first);
        for &p in &pts[1..] {
            let (dx, dy) = (p.x - prev.x, p.y - prev.y);
            if dx * dx + dy * dy > tol2 {
                self.radial.push(p);
                prev = p;
            }
        }
        if prev != last {
            self.radial.push(last);
        }
        let r = &self.radial;
        let n = r.len();
        self.keep.clear();
        self.keep.resize(n, false);
        self.keep[0] = true;
        self.keep[n - 1] = true;
        self.stack.clear();
        if n > 2 {
            self.stack.push((0, n - 1));
        }
        while let Some((a, b)) = self.stack.pop() {
            let (pa, pb) = (r[a], r[b]);
            let (dx, dy) = (pb.x - pa.x, pb.y - pa.y);
            let len2 = dx * dx + dy * dy;
            let mut max_d = 0.0;
            let mut idx = a;
            for (i, p) in r.iter().enumerate().take(b).skip(a + 1) {
                let (mut qx, mut qy) = (pa.x, pa.y);
                if len2 > 0.0 {
                    let t = (((p.x - pa.x) * dx + (p.y - pa.y) * dy) / len2).clamp(0.0, 1.0);
                    qx += t * dx;
                    qy += t * dy;
                }
                let d = (p.x - qx) * (p.x - qx) + (p.y - qy) * (p.y - qy);
                if d > max_d {
                    max_d = d;
                    idx = i;
                }
            }
            if max_d > tol2 {
                self.keep[idx] = true;
                if idx - a > 1 {
                    self.stack.push((a, idx));
                }
                if b - idx > 1 {
                    self.stack.push((idx, b));
                }
            }
        }
        out.extend(
            r.iter()
                .zip(&self.keep)
                .filter(|(_, k)| **k)
                .map(|(c, _)| (c.x.round() as i64, c.y.round() as i64)),
        );
    }
}

/// The map: wijk outlines (Douglas–Peucker at [`OUTLINE_TOLERANCE_PX`]) with their short
/// names at an interior label point, violations as per-class markers (or a density grid
/// above [`DENSITY_THRESHOLD`] points), hotspot circles (`bs-hs-covered` solid vs
/// `bs-hs-open` dashed), all tracks as one simplified path, and a legend underneath.
///
/// Projection: equirectangular, longitude scaled by cos(mid-latitude of the extent),
/// extent = bounding box of `areas` (or of the data if there are none), fitted into a
/// viewBox `width_px` units wide (clamped to 200..=4000) keeping the aspect ratio.
/// Data outside the extent is clipped by the drawing (markers/cells outside are dropped).
pub fn map_svg(input: &MapInput, width_px: u32) -> String {
    let frame = Frame::fit(input, width_px);
    let mut body = String::with_capacity(64 * 1024);
    let mut legend: Vec<(LegendSym, String)> = Vec::new();

    let outlines = draw_areas(input.areas, &frame, &mut body, &mut legend);

    let total = input.points.len();
    let n_overlay = input.points.iter().filter(|p| is_overlay(p.class)).count();
    let grid = Gridding {
        violations: total > DENSITY_THRESHOLD,
        overlay: n_overlay > DENSITY_THRESHOLD,
    };
    let n_grid = draw_density(input.points, grid, &frame, &mut body, &mut legend);
    draw_tracks(input.tracks, &frame, &mut body, &mut legend);
    // Wijk edges above the grid and the tracks.
    if !outlines.edges.is_empty() {
        let _ = write!(
            body,
            "<path class=\"bs-wijk-edge\" d=\"{}\"/>",
            outlines.edges
        );
    }
    // Hotspots are drawn after the markers, so rings and their numbers are not hidden under
    // them; their legend entries come before the markers'.
    let (hotspots, n_open) = draw_hotspots(input.hotspots, &frame, &mut legend);
    // A map of one report (or a few) shows its point large enough to find at a glance.
    let h = ((frame.w / 250.0).round() as i64).clamp(2, 6) * if total <= 3 { 3 } else { 1 };
    draw_markers(input.points, grid, h, &frame, &mut body, &mut legend);
    body.push_str(&hotspots);
    draw_wijk_labels(&outlines.labels, &frame, &mut body);
    let (leg, lfs, total_h) = draw_legend(&legend, h, &frame);

    let aria = format!(
        "{}: {} wijken, {} meldingen{}, {} hotspots ({} niet bezocht), {} rondes",
        input.title,
        input.areas.len(),
        total,
        if n_grid > 0 { " (als dichtheid)" } else { "" },
        input.hotspots.len(),
        n_open,
        input.tracks.len()
    );
    let mut o = String::with_capacity(body.len() + leg.len() + 4096);
    svg_open(
        &mut o,
        "bs-map",
        frame.w,
        total_h,
        &aria,
        input.title,
        STYLE_MAP,
    );
    o.push_str(&body);
    if !leg.is_empty() {
        let _ = write!(
            o,
            "<g class=\"bs-legend\" font-size=\"{}\">{leg}</g>",
            num1(lfs)
        );
    }
    o.push_str("</svg>");
    o
}

/// The map's frame: its width, the font size and padding that follow from it, the projection
/// and the height of the map above the legend.
struct Frame {
    w: f64,
    fs: f64,
    pad: f64,
    proj: Proj,
    map_h: f64,
}

impl Frame {
    fn fit(input: &MapInput, width_px: u32) -> Frame {
        let w = f64::from(width_px.clamp(200, 4000));
        let fs = (w / 65.0).clamp(9.0, 16.0).round();
        let pad = (fs * 0.5).round();
        let (lon0, lat0, lon1, lat1) = extent(input);
        let k = ((lat0 + lat1) / 2.0).to_radians().cos();
        let s = (w - 2.0 * pad) / ((lon1 - lon0) * k);
        let proj = Proj {
            k,
            u0: lon0 * k,
            v1: lat1,
            s,
            pad,
        };
        let map_h = ((lat1 - lat0) * s + 2.0 * pad).ceil();
        Frame {
            w,
            fs,
            pad,
            proj,
            map_h,
        }
    }

    fn contains(&self, x: f64, y: f64) -> bool {
        x >= 0.0 && y >= 0.0 && x <= self.w && y <= self.map_h
    }
}

/// Which points go into the density grid instead of markers: the violations, the overlays
/// (youth, incidents), each when there are too many of them.
#[derive(Clone, Copy)]
struct Gridding {
    violations: bool,
    overlay: bool,
}

impl Gridding {
    fn takes(self, p: &MapPoint) -> bool {
        if is_overlay(p.class) {
            self.overlay
        } else {
            self.violations
        }
    }
}

/// What the outlines leave for later layers: their edges as one path (drawn above the grid
/// and tracks) and a label point per wijk (drawn on top).
struct Outlines {
    edges: String,
    labels: Vec<(f64, f64, f64, String)>,
}

/// The wijk outlines, shaded by their count, with a legend entry per shade in use.
fn draw_areas(
    areas: &[MapArea],
    frame: &Frame,
    body: &mut String,
    legend: &mut Vec<(LegendSym, String)>,
) -> Outlines {
    let mut out = Outlines {
        edges: String::new(),
        labels: Vec::new(),
    };
    if areas.is_empty() {
        return out;
    }
    let busiest = areas.iter().map(|a| a.count).max().unwrap_or(0);
    let shade_of = |n: u32| -> usize {
        if n == 0 || busiest == 0 {
            0
        } else {
            (1 + (f64::from(n) / f64::from(busiest) * 4.0).floor() as usize).min(4)
        }
    };
    let mut shades = [(u32::MAX, 0u32); 5];
    body.push_str("<g class=\"bs-wijken\">");
    let mut ring: Vec<(i64, i64)> = Vec::new();
    for a in areas {
        let projected: MultiPolygon<f64> = a.shape.map_coords(|c| {
            let (x, y) = frame.proj.xy(clean(c.y), clean(c.x));
            Coord { x, y }
        });
        let simp = projected.simplify(OUTLINE_TOLERANCE_PX);
        let mut pd = PathData::new();
        for poly in &simp.0 {
            for r in std::iter::once(poly.exterior()).chain(poly.interiors().iter()) {
                ring.clear();
                ring.extend(r.0.iter().map(|c| (c.x.round() as i64, c.y.round() as i64)));
                pd.poly(&ring, true, 3);
            }
        }
        if pd.s.is_empty() {
            continue;
        }
        let shade = shade_of(a.count);
        let shade_class = if shade > 0 {
            shades[shade].0 = shades[shade].0.min(a.count);
            shades[shade].1 = shades[shade].1.max(a.count);
            format!(" bs-wijk-s{shade}")
        } else {
            String::new()
        };
        let counted = if busiest > 0 {
            format!(": {} meldingen", a.count)
        } else {
            String::new()
        };
        let _ = write!(
            body,
            "<path class=\"bs-wijk{shade_class}\" data-code=\"{}\" d=\"{}\"><title>{}{counted}</title></path>",
            esc(&a.code),
            pd.s,
            esc(&a.name)
        );
        out.edges.push_str(&pd.s);
        if let Some(p) = projected.interior_point()
            && p.x().is_finite()
            && p.y().is_finite()
        {
            let chord = chord_width(&projected, p.x(), p.y());
            out.labels
                .push((p.x(), p.y(), chord, short_name(&a.name).to_string()));
        }
    }
    body.push_str("</g>");
    for (sh, (lo, hi)) in shades.iter().enumerate().skip(1) {
        if *hi == 0 {
            continue;
        }
        let txt = if lo == hi {
            format!("{lo} per wijk")
        } else {
            format!("{lo}–{hi} per wijk")
        };
        legend.push((LegendSym::Shade(sh), txt));
    }
    out
}

/// The density grid of the points `grid` takes: cells of [`DENSITY_CELL_M`] shaded on a log
/// scale, horizontal runs of one shade merged. Returns how many points it counted.
fn draw_density(
    points: &[MapPoint],
    grid: Gridding,
    frame: &Frame,
    body: &mut String,
    legend: &mut Vec<(LegendSym, String)>,
) -> usize {
    let cell = DENSITY_CELL_M * frame.proj.px_per_m();
    let nx = ((frame.w / cell).ceil() as usize).max(1);
    let ny = ((frame.map_h / cell).ceil() as usize).max(1);
    let mut n_grid = 0usize;
    if !(cell > 0.5 && points.iter().any(|p| grid.takes(p))) {
        return 0;
    }
    let mut counts = vec![0u32; nx * ny];
    for p in points.iter().filter(|p| grid.takes(p)) {
        if !ok_ll(p.lat, p.lon) {
            continue;
        }
        let (x, y) = frame.proj.xy(p.lat, p.lon);
        if !frame.contains(x, y) {
            continue;
        }
        let ix = ((x / cell) as usize).min(nx - 1);
        let iy = ((y / cell) as usize).min(ny - 1);
        counts[iy * nx + ix] += 1;
        n_grid += 1;
    }
    let max = counts.iter().copied().max().unwrap_or(0);
    if max == 0 {
        return n_grid;
    }
    let lmax = f64::from(max).ln();
    let shade = |c: u32| -> usize {
        if c == 0 {
            0
        } else if max <= 1 {
            1
        } else {
            (1 + ((f64::from(c).ln() / lmax) * 4.0).floor() as usize).min(5)
        }
    };
    let mut paths: Vec<PathData> = (0..6).map(|_| PathData::new()).collect();
    let mut ranges = [(u32::MAX, 0u32); 6];
    let edge = |i: usize| (i as f64 * cell).round() as i64;
    for iy in 0..ny {
        let mut ix = 0;
        while ix < nx {
            let c = counts[iy * nx + ix];
            let sh = shade(c);
            if sh == 0 {
                ix += 1;
                continue;
            }
            let start = ix;
            while ix < nx && shade(counts[iy * nx + ix]) == sh {
                let cc = counts[iy * nx + ix];
                ranges[sh].0 = ranges[sh].0.min(cc);
                ranges[sh].1 = ranges[sh].1.max(cc);
                ix += 1;
            }
            let (x0, x1, y0, y1) = (edge(start), edge(ix), edge(iy), edge(iy + 1));
            let pd = &mut paths[sh];
            pd.cmd('M');
            pd.pair(x0, y0);
            pd.cmd('h');
            pd.n(x1 - x0);
            pd.cmd('v');
            pd.n(y1 - y0);
            pd.cmd('h');
            pd.n(x0 - x1);
            pd.cmd('z');
        }
    }
    body.push_str("<g class=\"bs-dens\">");
    legend.push((
        LegendSym::Dens(0),
        format!("Meldingen per vak van {} m:", DENSITY_CELL_M as i64),
    ));
    for (sh, pd) in paths.iter().enumerate().skip(1) {
        if pd.s.is_empty() {
            continue;
        }
        let _ = write!(body, "<path class=\"bs-d{sh}\" d=\"{}\"/>", pd.s);
        let (lo, hi) = ranges[sh];
        let txt = if lo == hi {
            format!("{lo}")
        } else {
            format!("{lo}–{hi}")
        };
        legend.push((LegendSym::Dens(sh), txt));
    }
    body.push_str("</g>");
    n_grid
}

/// All tracks as one simplified path, re-simplified with a doubled tolerance (up to three
/// times) while it exceeds [`TRACK_BUDGET_BYTES`].
fn draw_tracks(
    tracks: &[Vec<(f64, f64)>],
    frame: &Frame,
    body: &mut String,
    legend: &mut Vec<(LegendSym, String)>,
) {
    let projected_tracks: Vec<Vec<Coord<f64>>> = tracks
        .iter()
        .map(|t| {
            t.iter()
                .filter(|&&(lat, lon)| ok_ll(lat, lon))
                .map(|&(lat, lon)| {
                    let (x, y) = frame.proj.xy(lat, lon);
                    Coord { x, y }
                })
                .collect()
        })
        .collect();
    let mut tol = TRACK_TOLERANCE_PX;
    let mut tracks_d = encode_tracks(&projected_tracks, tol);
    for _ in 0..3 {
        if tracks_d.len() <= TRACK_BUDGET_BYTES {
            break;
        }
        tol *= 2.0;
        tracks_d = encode_tracks(&projected_tracks, tol);
    }
    if !tracks_d.is_empty() {
        let _ = write!(body, "<path class=\"bs-trk\" d=\"{tracks_d}\"/>");
        legend.push((
            LegendSym::Track,
            format!("Surveillancerondes ({})", tracks.len()),
        ));
    }
}

/// The hotspot circles and their labels, as a layer for the caller to place; and how many
/// were not visited.
fn draw_hotspots(
    hotspots: &[MapHotspot],
    frame: &Frame,
    legend: &mut Vec<(LegendSym, String)>,
) -> (String, usize) {
    let mut n_open = 0usize;
    let mut hs_body = String::new();
    if hotspots.is_empty() {
        return (hs_body, n_open);
    }
    let fs = frame.fs;
    let w = frame.w;
    let mut hs_labels = String::new();
    hs_body.push_str("<g class=\"bs-hotspots\">");
    let (mut any_cov, mut any_open) = (false, false);
    for h in hotspots {
        if !ok_ll(h.lat, h.lon) {
            continue;
        }
        let (x, y) = frame.proj.xy(h.lat, h.lon);
        let r = (clean(h.radius_m).max(0.0) * frame.proj.px_per_m()).clamp(3.0, w);
        if !frame.contains(x, y) {
            continue;
        }
        let (cls, state) = if h.covered {
            any_cov = true;
            ("bs-hs-covered", "bezocht")
        } else {
            any_open = true;
            n_open += 1;
            ("bs-hs-open", "niet bezocht")
        };
        let _ = write!(
            hs_body,
            "<circle class=\"bs-hs {cls}\" cx=\"{}\" cy=\"{}\" r=\"{}\"><title>{} ({state})</title></circle>",
            num1(x),
            num1(y),
            num1(r),
            esc(&h.label)
        );
        if !h.label.is_empty() {
            let hfs = (fs * 1.1).round();
            let right = x + r * 0.72 + 2.0 + text_w(&h.label, hfs) <= w;
            let (lx, anchor) = if right {
                (x + r * 0.72 + 2.0, "")
            } else {
                (x - r * 0.72 - 2.0, " text-anchor=\"end\"")
            };
            let ly = (y - r * 0.72 - 2.0).max(hfs);
            let _ = write!(
                hs_labels,
                "<text class=\"bs-hs-label\" x=\"{}\" y=\"{}\"{anchor}>{}</text>",
                num1(lx),
                num1(ly),
                esc(&h.label)
            );
        }
    }
    hs_body.push_str("</g>");
    if !hs_labels.is_empty() {
        labels_push_group(&mut hs_body, &hs_labels, (fs * 1.1).round());
    }
    if any_open {
        legend.push((LegendSym::Hotspot(false), "Hotspot niet bezocht".into()));
    }
    if any_cov {
        legend.push((LegendSym::Hotspot(true), "Hotspot bezocht".into()));
    }
    (hs_body, n_open)
}

/// Where a marker class is drawn: violations below overlays, otherwise a fixed, readable
/// order; 4 is any class the map does not know.
fn marker_rank(c: &str) -> u8 {
    match c {
        "afval" => 0,
        "parkeren" => 1,
        "honden" => 2,
        "overig" => 3,
        "youth" => 5,
        "incident" => 6,
        _ => 4,
    }
}

/// The CSS name of a marker class: its own, or `other` for a class the map does not know.
fn marker_ident(c: &str) -> String {
    if marker_rank(c) == 4 {
        "other".to_string()
    } else {
        css_ident(c)
    }
}

/// The points the grid does not take, one path per class (markers of half-size `h`).
fn draw_markers(
    points: &[MapPoint],
    grid: Gridding,
    h: i64,
    frame: &Frame,
    body: &mut String,
    legend: &mut Vec<(LegendSym, String)>,
) {
    let mut classes: Vec<(&'static str, PathData, usize)> = Vec::new();
    for p in points.iter().filter(|p| !grid.takes(p)) {
        if !ok_ll(p.lat, p.lon) {
            continue;
        }
        let (x, y) = frame.proj.xy(p.lat, p.lon);
        if !frame.contains(x, y) {
            continue;
        }
        let idx = match classes.iter().position(|(c, _, _)| *c == p.class) {
            Some(i) => i,
            None => {
                classes.push((p.class, PathData::new(), 0));
                classes.len() - 1
            }
        };
        let entry = &mut classes[idx];
        marker(&mut entry.1, p.class, x.round() as i64, y.round() as i64, h);
        entry.2 += 1;
    }
    classes.sort_by(|a, b| marker_rank(a.0).cmp(&marker_rank(b.0)).then(a.0.cmp(b.0)));
    if classes.is_empty() {
        return;
    }
    body.push_str("<g class=\"bs-pts\">");
    for (c, pd, n) in &classes {
        let extra = if marker_rank(c) == 4 {
            format!(" bs-pt-{}", css_ident(c))
        } else {
            String::new()
        };
        let _ = write!(
            body,
            "<path class=\"bs-pt bs-pt-{}{extra}\" d=\"{}\"><title>{} ({n})</title></path>",
            marker_ident(c),
            pd.s,
            esc(&class_label(c))
        );
        legend.push((
            LegendSym::Marker((*c).to_string()),
            format!("{} ({n})", class_label(c)),
        ));
    }
    body.push_str("</g>");
}

/// The wijk names at their label points, wrapped to the chord and kept inside the frame.
fn draw_wijk_labels(labels: &[(f64, f64, f64, String)], frame: &Frame, body: &mut String) {
    if labels.is_empty() {
        return;
    }
    let (fs, pad, w) = (frame.fs, frame.pad, frame.w);
    let mut g = String::new();
    for (x, y, chord, name) in labels {
        let lines = wrap_label(name, *chord, fs);
        let tw = lines.iter().map(|l| text_w(l, fs)).fold(0.0, f64::max);
        let x = if tw + 2.0 * pad < w {
            x.clamp(pad + tw / 2.0, w - pad - tw / 2.0)
        } else {
            w / 2.0
        };
        let lh = fs * 1.1;
        let y0 = y + fs * 0.35 - lh * (lines.len() as f64 - 1.0) / 2.0;
        let _ = write!(
            g,
            "<text class=\"bs-wijk-label\" x=\"{}\" y=\"{}\">",
            num1(x),
            num1(y0)
        );
        for (i, l) in lines.iter().enumerate() {
            if i == 0 {
                g.push_str(&esc(l));
            } else {
                let _ = write!(
                    g,
                    "<tspan x=\"{}\" dy=\"{}\">{}</tspan>",
                    num1(x),
                    num1(lh),
                    esc(l)
                );
            }
        }
        g.push_str("</text>");
    }
    labels_push_group(body, &g, fs);
}

/// The legend under the map, in rows as wide as the frame: its SVG, its font size and the
/// drawing's total height.
fn draw_legend(legend: &[(LegendSym, String)], h: i64, frame: &Frame) -> (String, f64, f64) {
    let (pad, w) = (frame.pad, frame.w);
    let lfs = (frame.fs * 0.85).round();
    let row_h = (lfs * 1.6).round();
    let mut lx = pad;
    let mut ly = frame.map_h + row_h * 0.5;
    let mut leg = String::new();
    for (sym, text) in legend {
        let sym_w = match sym {
            LegendSym::Dens(0) => 0.0,
            LegendSym::Track => lfs * 1.8,
            _ => lfs * 1.4,
        };
        let item_w = sym_w + text_w(text, lfs) + lfs * 1.2;
        if lx + item_w > w - pad && lx > pad {
            lx = pad;
            ly += row_h;
        }
        let cy = ly + row_h / 2.0;
        legend_symbol(&mut leg, sym, lx, cy, lfs, h);
        let _ = write!(
            leg,
            "<text class=\"bs-legend-text\" x=\"{}\" y=\"{}\">{}</text>",
            num1(lx + sym_w),
            num1(cy + lfs * 0.35),
            esc(text)
        );
        lx += item_w;
    }
    let total_h = if legend.is_empty() {
        frame.map_h
    } else {
        (ly + row_h * 1.5).ceil()
    };
    (leg, lfs, total_h)
}

/// One legend entry's symbol at (`lx`, centre `cy`).
fn legend_symbol(leg: &mut String, sym: &LegendSym, lx: f64, cy: f64, lfs: f64, h: i64) {
    match sym {
        LegendSym::Marker(c) => {
            let mut pd = PathData::new();
            marker(
                &mut pd,
                c,
                (lx + lfs * 0.5).round() as i64,
                cy.round() as i64,
                h,
            );
            let _ = write!(
                leg,
                "<path class=\"bs-pt bs-pt-{}\" d=\"{}\"/>",
                marker_ident(c),
                pd.s
            );
        }
        LegendSym::Hotspot(cov) => {
            let cls = if *cov { "bs-hs-covered" } else { "bs-hs-open" };
            let _ = write!(
                leg,
                "<circle class=\"bs-hs {cls}\" cx=\"{}\" cy=\"{}\" r=\"{}\"/>",
                num1(lx + lfs * 0.5),
                num1(cy),
                num1(lfs * 0.45)
            );
        }
        LegendSym::Track => {
            let _ = write!(
                leg,
                "<path class=\"bs-trk\" d=\"M{} {}l{} {} {} {}\"/>",
                num1(lx),
                num1(cy + 3.0),
                num1(lfs * 0.7),
                -6,
                num1(lfs * 0.8),
                4
            );
        }
        LegendSym::Shade(sh) => legend_square(
            leg,
            &format!("bs-wijk-s{sh}"),
            " stroke=\"#555\"",
            lx,
            cy,
            lfs,
        ),
        LegendSym::Dens(sh) if *sh > 0 => legend_square(leg, &format!("bs-d{sh}"), "", lx, cy, lfs),
        LegendSym::Dens(_) => {}
    }
}

/// A legend square of a shade class (wijk shade, density cell), centred on the row at `cy`.
fn legend_square(leg: &mut String, class: &str, extra: &str, lx: f64, cy: f64, lfs: f64) {
    let _ = write!(
        leg,
        "<rect class=\"{class}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"{extra}/>",
        num1(lx),
        num1(cy - lfs * 0.45),
        num1(lfs * 0.9),
        num1(lfs * 0.9)
    );
}

/// Width of the horizontal chord through (x, y) inside the (projected) shape.
fn chord_width(mp: &MultiPolygon<f64>, x: f64, y: f64) -> f64 {
    let mut best = 0.0f64;
    for poly in &mp.0 {
        let mut xs: Vec<f64> = Vec::new();
        for ring in std::iter::once(poly.exterior()).chain(poly.interiors().iter()) {
            for l in ring.lines() {
                let (a, b) = (l.start, l.end);
                if (a.y <= y) != (b.y <= y) {
                    xs.push(a.x + (y - a.y) / (b.y - a.y) * (b.x - a.x));
                }
            }
        }
        xs.sort_by(f64::total_cmp);
        for pair in xs.chunks_exact(2) {
            if pair[0] <= x && x <= pair[1] {
                best = best.max(pair[1] - pair[0]);
            }
        }
    }
    best
}

/// Splits a label into two lines at the space nearest its middle if it is wider than the
/// available chord (and has a space).
fn wrap_label(name: &str, chord: f64, fs: f64) -> Vec<String> {
    if text_w(name, fs) <= chord * 0.95 {
        return vec![name.to_string()];
    }
    let mid = name.chars().count() / 2;
    let split = name
        .char_indices()
        .filter(|(_, c)| *c == ' ')
        .map(|(i, _)| (i, name[..i].chars().count().abs_diff(mid)))
        .min_by_key(|&(_, d)| d);
    match split {
        Some((i, _)) => vec![name[..i].to_string(), name[i + 1..].to_string()],
        None => vec![name.to_string()],
    }
}

fn labels_push_group(body: &mut String, inner: &str, fs: f64) {
    let _ = write!(
        body,
        "<g class=\"bs-labels\" font-size=\"{}\">{inner}</g>",
        num1(fs)
    );
}

// ---------------------------------------------------------------------------------------
// Charts
// ---------------------------------------------------------------------------------------

const STYLE_TREND: &str = ":where(.bs-trend .bs-trend-day){fill:#1f5fa8;fill-opacity:.55}\
:where(.bs-trend .bs-trend-today){fill:#c0392b}\
:where(.bs-trend .bs-trend-grid){stroke:#ccc;stroke-width:1;vector-effect:non-scaling-stroke}\
:where(.bs-trend .bs-trend-axis){stroke:#555;stroke-width:1;vector-effect:non-scaling-stroke}\
:where(.bs-trend .bs-trend-tick){fill:#444}\
@media print{:where(.bs-trend .bs-trend-day){fill:#999}:where(.bs-trend .bs-trend-today){fill:#000}}";

/// A round step above `max` for the top of a count axis (1, 2, 5, 10, 20, 50 …).
fn nice_top(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let mag = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|&t| t >= max)
        .unwrap_or(10.0 * mag)
}

/// Daily counts as columns over dates, the last day (`last_day`, "vandaag") marked: a count
/// axis with 0, the middle and a round top, and the dates of the first, middle and last day
/// under the columns (`d-m`).
pub fn trend_svg(
    values: &[f64],
    last_day: chrono::NaiveDate,
    width_px: u32,
    height_px: u32,
    label: &str,
) -> String {
    let w = f64::from(width_px.clamp(120, 4000));
    let h = f64::from(height_px.clamp(60, 1000));
    let fs = (h / 9.0).clamp(9.0, 13.0).round();
    let vals: Vec<f64> = values.iter().map(|&v| clean(v).max(0.0)).collect();
    let n = vals.len();
    let mut o = String::with_capacity(512 + n * 64);
    let max = vals.iter().copied().fold(0.0, f64::max);
    let top = nice_top(max);
    let left = text_w(&fmt_count(top), fs) + 6.0;
    let (x0, x1) = (left, w - 4.0);
    let (yt, yb) = (fs * 0.6, h - fs * 1.6);
    let py = |v: f64| yb - v / top * (yb - yt);
    let day_of = |i: usize| last_day - chrono::Duration::days((n - 1 - i) as i64);
    let aria = match vals.last() {
        Some(&last) => format!(
            "{label}: {n} dagen tot en met {}, vandaag {}, hoogste {}",
            last_day.format("%d-%m-%Y"),
            fmt_count(last),
            fmt_count(max)
        ),
        None => format!("{label}: geen gegevens"),
    };
    svg_open(&mut o, "bs-trend", w, h, &aria, label, STYLE_TREND);
    for v in [0.0, top / 2.0, top] {
        let y = num1(py(v));
        let _ = write!(
            o,
            "<line class=\"bs-trend-grid\" x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\"/>\
<text class=\"bs-trend-tick\" x=\"{}\" y=\"{}\" font-size=\"{}\" text-anchor=\"end\">{}</text>",
            num1(x0),
            num1(x1),
            num1(x0 - 4.0),
            num1(py(v) + fs * 0.35),
            num1(fs),
            fmt_count(v)
        );
    }
    if n > 0 {
        let step = (x1 - x0) / n as f64;
        let bw = (step * 0.75).max(1.0);
        let mut days = PathData::new();
        for (i, &v) in vals.iter().enumerate() {
            if i + 1 == n {
                continue;
            }
            let x = (x0 + step * i as f64 + (step - bw) / 2.0).round() as i64;
            let y = py(v).round() as i64;
            let bottom = py(0.0).round() as i64;
            if bottom > y {
                days.cmd('M');
                days.pair(x, y);
                days.cmd('h');
                days.n(bw.round().max(1.0) as i64);
                days.cmd('v');
                days.n(bottom - y);
                days.cmd('h');
                days.n(-(bw.round().max(1.0) as i64));
                days.cmd('z');
            }
        }
        let _ = write!(o, "<path class=\"bs-trend-day\" d=\"{}\"/>", days.s);
        let last = vals[n - 1];
        let lx = x0 + step * (n - 1) as f64 + (step - bw) / 2.0;
        let _ = write!(
            o,
            "<rect class=\"bs-trend-today\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"><title>Vandaag: {}</title></rect>",
            num1(lx),
            num1(py(last)),
            num1(bw),
            num1(py(0.0) - py(last)),
            fmt_count(last)
        );
        let mut ticks = vec![0, n / 2, n - 1];
        ticks.dedup();
        for i in ticks {
            let cx = x0 + step * (i as f64 + 0.5);
            let text = if i + 1 == n {
                "vandaag".to_string()
            } else {
                day_of(i).format("%-d-%-m").to_string()
            };
            let anchor = if i == 0 {
                "start"
            } else if i + 1 == n {
                "end"
            } else {
                "middle"
            };
            let tx = match anchor {
                "start" => x0,
                "end" => x1,
                _ => cx,
            };
            let _ = write!(
                o,
                "<text class=\"bs-trend-tick\" x=\"{}\" y=\"{}\" font-size=\"{}\" text-anchor=\"{anchor}\">{text}</text>",
                num1(tx),
                num1(h - fs * 0.3),
                num1(fs)
            );
        }
    }
    let _ = write!(
        o,
        "<line class=\"bs-trend-axis\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"/></svg>",
        num1(x0),
        num1(py(0.0)),
        num1(x1),
        num1(py(0.0))
    );
    o
}

/// A sparkline of daily counts (oldest first), area-filled, with the last value marked by a
/// dot and printed at the right. The y axis starts at 0 (or the minimum if negative).
/// Non-finite values are drawn as 0. Empty input gives a baseline and "geen gegevens".
pub fn sparkline_svg(values: &[f64], width_px: u32, height_px: u32, label: &str) -> String {
    let w = f64::from(width_px.clamp(40, 4000));
    let h = f64::from(height_px.clamp(12, 1000));
    let fs = (h * 0.5).clamp(8.0, 14.0).round();
    let vals: Vec<f64> = values.iter().map(|&v| clean(v)).collect();
    let mut o = String::with_capacity(256 + vals.len() * 12);
    let Some(&last) = vals.last() else {
        let aria = format!("{label}: geen gegevens");
        svg_open(&mut o, "bs-spark", w, h, &aria, label, STYLE_SPARK);
        let _ = write!(
            o,
            "<line class=\"bs-spark-base\" x1=\"2\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\"/><text class=\"bs-empty\" x=\"4\" y=\"{ty}\" font-size=\"{fs}\">geen gegevens</text></svg>",
            y = num1(h - 2.0),
            x2 = num1(w - 2.0),
            ty = num1(h / 2.0 + fs * 0.35),
            fs = num1(fs)
        );
        return o;
    };
    let last_txt = fmt_count(last);
    let max = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let min = vals.iter().copied().fold(f64::INFINITY, f64::min).min(0.0);
    let span = if max - min > 0.0 { max - min } else { 1.0 };
    let rw = text_w(&last_txt, fs) + 8.0;
    let x0 = 2.0;
    let x1 = (w - rw).max(x0 + 10.0);
    let (yt, yb) = (3.0, h - 3.0);
    let n = vals.len();
    let px = |i: usize| {
        if n <= 1 {
            x1
        } else {
            x0 + (x1 - x0) * i as f64 / (n - 1) as f64
        }
    };
    let py = |v: f64| yb - (v - min) / span * (yb - yt);
    let mut line = String::new();
    for (i, &v) in vals.iter().enumerate() {
        let _ = write!(
            line,
            "{}{} {}",
            if i == 0 { 'M' } else { 'L' },
            num1(px(i)),
            num1(py(v))
        );
    }
    let aria = format!(
        "{label}: laatste waarde {last_txt}, maximum {}, {n} dagen",
        fmt_count(max)
    );
    svg_open(&mut o, "bs-spark", w, h, &aria, label, STYLE_SPARK);
    let _ = write!(
        o,
        "<line class=\"bs-spark-base\" x1=\"{x0}\" y1=\"{yb}\" x2=\"{x1}\" y2=\"{yb}\"/>\
<path class=\"bs-spark-area\" d=\"{line}V{yb}H{x0s}Z\"/><path class=\"bs-spark-line\" d=\"{line}\"/>\
<circle class=\"bs-spark-last\" cx=\"{lx}\" cy=\"{ly}\" r=\"{r}\"/>\
<text class=\"bs-spark-value\" x=\"{tx}\" y=\"{ty}\" font-size=\"{fs}\">{last_txt}</text></svg>",
        x0 = num1(x0),
        x0s = num1(px(0)),
        x1 = num1(x1),
        yb = num1(py(min)),
        lx = num1(px(n - 1)),
        ly = num1(py(last)),
        r = num1((h / 12.0).clamp(1.5, 4.0)),
        tx = num1(x1 + 5.0),
        ty = num1((py(last) + fs * 0.35).clamp(fs * 0.8, h - 1.0)),
        fs = num1(fs)
    );
    o
}

/// Horizontal bars for a few labelled counts (e.g. violations per category), label on the
/// left (truncated with "…" if very long, full text in a `<title>`), value printed after
/// the bar. Negative and non-finite values are drawn as 0. Empty input gives "geen gegevens".
pub fn bars_svg(items: &[(String, f64)], width_px: u32, label: &str) -> String {
    let w = f64::from(width_px.clamp(120, 4000));
    let fs = 12.0;
    let row_h = 22.0;
    let mut o = String::with_capacity(256 + items.len() * 200);
    if items.is_empty() {
        let aria = format!("{label}: geen gegevens");
        svg_open(&mut o, "bs-bars", w, row_h + 4.0, &aria, label, STYLE_BARS);
        let _ = write!(
            o,
            "<text class=\"bs-empty\" x=\"4\" y=\"{}\" font-size=\"{fs}\">geen gegevens</text></svg>",
            num1(row_h / 2.0 + 2.0 + fs * 0.35)
        );
        return o;
    }
    let vals: Vec<f64> = items.iter().map(|(_, v)| clean(*v).max(0.0)).collect();
    let texts: Vec<String> = vals.iter().map(|&v| fmt_count(v)).collect();
    let max = vals.iter().copied().fold(0.0, f64::max);
    let max_label_chars = ((w * 0.4) / (fs * 0.58)).floor().max(4.0) as usize;
    let shown: Vec<String> = items
        .iter()
        .map(|(l, _)| {
            if l.chars().count() > max_label_chars {
                let mut t: String = l.chars().take(max_label_chars - 1).collect();
                t.push('…');
                t
            } else {
                l.clone()
            }
        })
        .collect();
    let label_w = shown.iter().map(|l| text_w(l, fs)).fold(0.0, f64::max) + 10.0;
    let value_w = texts.iter().map(|t| text_w(t, fs)).fold(0.0, f64::max) + 8.0;
    let bar_x = label_w;
    let bar_max = (w - label_w - value_w).max(10.0);
    let h = items.len() as f64 * row_h + 4.0;
    let aria_items: Vec<String> = items
        .iter()
        .zip(&texts)
        .map(|((l, _), t)| format!("{l} {t}"))
        .collect();
    let aria = format!("{label}: {}", aria_items.join(", "));
    svg_open(&mut o, "bs-bars", w, h, &aria, label, STYLE_BARS);
    let _ = write!(o, "<g font-size=\"{fs}\">");
    for (i, ((full, _), (shown, (v, t)))) in items
        .iter()
        .zip(shown.iter().zip(vals.iter().zip(&texts)))
        .enumerate()
    {
        let y = 2.0 + i as f64 * row_h;
        let bw = if max > 0.0 { v / max * bar_max } else { 0.0 };
        let ty = num1(y + row_h / 2.0 + fs * 0.35);
        let _ = write!(
            o,
            "<g><title>{}: {t}</title><text class=\"bs-bar-label\" x=\"{}\" y=\"{ty}\">{}</text>\
<rect class=\"bs-bar\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/>\
<text class=\"bs-bar-value\" x=\"{}\" y=\"{ty}\">{t}</text></g>",
            esc(full),
            num1(label_w - 6.0),
            esc(shown),
            num1(bar_x),
            num1(y + 4.0),
            num1(bw),
            num1(row_h - 8.0),
            num1(bar_x + bw + 4.0),
        );
    }
    o.push_str("</g></svg>");
    o
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{BoundingRect, LineString, Polygon};

    /// Directory of the geo fixtures. In the backend crate use
    /// `concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/geo")`.
    const FIXTURE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/geo");

    fn fixture_path(name: &str) -> String {
        format!("{FIXTURE_DIR}/{name}")
    }

    fn load_areas(name: &str) -> Vec<MapArea> {
        let text = std::fs::read_to_string(fixture_path(name)).expect("fixture");
        let gj: geojson::GeoJson = text.parse().expect("geojson");
        let geojson::GeoJson::FeatureCollection(fc) = gj else {
            panic!("not a FC")
        };
        fc.features
            .into_iter()
            .map(|f| {
                let props = f.properties.clone().unwrap_or_default();
                let s = |k: &str| {
                    props
                        .get(k)
                        .and_then(|v| v.as_str())
                        .unwrap_or("")
                        .to_string()
                };
                let g: geo::Geometry<f64> = f.geometry.expect("geometry").try_into().expect("geo");
                let shape = match g {
                    geo::Geometry::Polygon(p) => MultiPolygon::new(vec![p]),
                    geo::Geometry::MultiPolygon(mp) => mp,
                    other => panic!("unexpected {other:?}"),
                };
                MapArea {
                    code: s("statcode"),
                    name: s("statnaam"),
                    shape,
                    count: 0,
                }
            })
            .collect()
    }

    fn bbox(areas: &[MapArea]) -> (f64, f64, f64, f64) {
        let mut b = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
        for a in areas {
            let r = a.shape.bounding_rect().expect("bbox");
            b = (
                b.0.min(r.min().x),
                b.1.min(r.min().y),
                b.2.max(r.max().x),
                b.3.max(r.max().y),
            );
        }
        b
    }

    /// splitmix64: deterministic test data without a rand dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn f(&mut self) -> f64 {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    const CLASSES: [&str; 6] = ["afval", "parkeren", "honden", "overig", "youth", "incident"];

    struct Day {
        points: Vec<MapPoint>,
        hotspots: Vec<MapHotspot>,
        tracks: Vec<Vec<(f64, f64)>>,
    }

    /// Points uniform in the bbox; tracks as correlated random walks (GPS fix every ~5 s
    /// on foot/bike: 4–10 m steps, heading drifting).
    fn synth(
        areas: &[MapArea],
        n_points: usize,
        n_tracks: usize,
        pts_per_track: usize,
        seed: u64,
    ) -> Day {
        let (x0, y0, x1, y1) = bbox(areas);
        let mut r = Rng(seed);
        let points = (0..n_points)
            .map(|i| MapPoint {
                lat: y0 + r.f() * (y1 - y0),
                lon: x0 + r.f() * (x1 - x0),
                class: if i % 25 == 0 {
                    CLASSES[4 + (i / 25) % 2]
                } else {
                    CLASSES[i % 4]
                },
            })
            .collect();
        let hotspots = (0..30)
            .map(|i| MapHotspot {
                lat: y0 + r.f() * (y1 - y0),
                lon: x0 + r.f() * (x1 - x0),
                radius_m: 100.0 + 200.0 * r.f(),
                label: format!("Hotspot {i}"),
                covered: i % 3 != 0,
            })
            .collect();
        let kx = (52.46f64).to_radians().cos() * M_PER_DEG;
        let tracks = (0..n_tracks)
            .map(|_| {
                let (mut lat, mut lon) = (y0 + r.f() * (y1 - y0), x0 + r.f() * (x1 - x0));
                let mut hd = r.f() * std::f64::consts::TAU;
                (0..pts_per_track)
                    .map(|_| {
                        hd += (r.f() - 0.5) * 0.8;
                        let step = 4.0 + 6.0 * r.f();
                        lat += step * hd.sin() / M_PER_DEG;
                        lon += step * hd.cos() / kx;
                        (lat, lon)
                    })
                    .collect()
            })
            .collect();
        Day {
            points,
            hotspots,
            tracks,
        }
    }

    fn render(areas: &[MapArea], d: &Day, title: &str) -> String {
        map_svg(
            &MapInput {
                areas,
                points: &d.points,
                hotspots: &d.hotspots,
                tracks: &d.tracks,
                title,
            },
            1000,
        )
    }

    /// Minimal XML well-formedness check: one root, matched tags, quoted unique
    /// attributes, no `<` in values, only valid entity references, no prolog.
    fn check_xml(s: &str) -> Result<(), String> {
        fn check_refs(t: &str) -> Result<(), String> {
            let mut rest = t;
            while let Some(i) = rest.find('&') {
                let after = &rest[i + 1..];
                let end = after.find(';').ok_or_else(|| format!("bare & in {t:?}"))?;
                let name = &after[..end];
                let ok = matches!(name, "amp" | "lt" | "gt" | "quot" | "apos")
                    || name
                        .strip_prefix("#x")
                        .is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()))
                    || name
                        .strip_prefix('#')
                        .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()));
                if !ok {
                    return Err(format!("bad entity &{name};"));
                }
                rest = &after[end + 1..];
            }
            Ok(())
        }
        let b = s.as_bytes();
        let mut i = 0;
        let mut stack: Vec<&str> = Vec::new();
        let mut roots = 0;
        while i < b.len() {
            if b[i] != b'<' {
                let j = s[i..].find('<').map_or(b.len(), |k| i + k);
                let text = &s[i..j];
                if stack.is_empty() && !text.trim().is_empty() {
                    return Err(format!("text outside root: {text:?}"));
                }
                check_refs(text)?;
                i = j;
                continue;
            }
            if s[i..].starts_with("<!--") {
                let e = s[i..].find("-->").ok_or("unterminated comment")?;
                i += e + 3;
                continue;
            }
            if s[i..].starts_with("<?") || s[i..].starts_with("<!") {
                return Err("prolog/doctype not expected".into());
            }
            if s[i..].starts_with("</") {
                let e = s[i..].find('>').ok_or("unterminated end tag")?;
                let name = s[i + 2..i + e].trim();
                let open = stack.pop().ok_or("end tag without start")?;
                if open != name {
                    return Err(format!("</{name}> closes <{open}>"));
                }
                i += e + 1;
                continue;
            }
            // start tag
            i += 1;
            let ns = i;
            while i < b.len() && !b" \t\n\r/>".contains(&b[i]) {
                i += 1;
            }
            let name = &s[ns..i];
            if name.is_empty() {
                return Err("empty tag name".into());
            }
            let mut attrs: Vec<&str> = Vec::new();
            loop {
                while i < b.len() && b" \t\n\r".contains(&b[i]) {
                    i += 1;
                }
                if i >= b.len() {
                    return Err("unterminated tag".into());
                }
                if b[i] == b'>' {
                    if stack.is_empty() {
                        roots += 1;
                    }
                    stack.push(name);
                    i += 1;
                    break;
                }
                if s[i..].starts_with("/>") {
                    if stack.is_empty() {
                        roots += 1;
                    }
                    i += 2;
                    break;
                }
                let an = i;
                while i < b.len() && !b"= \t\n\r/>".contains(&b[i]) {
                    i += 1;
                }
                let aname = &s[an..i];
                if aname.is_empty() || attrs.contains(&aname) {
                    return Err(format!("bad/duplicate attribute {aname:?} on <{name}>"));
                }
                attrs.push(aname);
                if i >= b.len() || b[i] != b'=' {
                    return Err(format!("attribute {aname} without value"));
                }
                i += 1;
                let q = *b.get(i).ok_or("eof")?;
                if q != b'"' && q != b'\'' {
                    return Err(format!("unquoted attribute {aname}"));
                }
                let ve = s[i + 1..].find(q as char).ok_or("unterminated value")? + i + 1;
                let val = &s[i + 1..ve];
                if val.contains('<') {
                    return Err(format!("< in attribute {aname}"));
                }
                check_refs(val)?;
                i = ve + 1;
            }
        }
        if !stack.is_empty() {
            return Err(format!("unclosed {stack:?}"));
        }
        if roots != 1 {
            return Err(format!("{roots} root elements"));
        }
        Ok(())
    }

    fn assert_clean(svg: &str) {
        if let Err(e) = check_xml(svg) {
            panic!("not well-formed: {e}\n{}", &svg[..svg.len().min(2000)]);
        }
        assert!(
            !svg.contains("NaN") && !svg.contains("inf"),
            "NaN/inf in output"
        );
        assert!(!svg.starts_with("<?xml"));
        assert!(
            svg.starts_with("<svg ")
                && svg.contains("viewBox=\"0 0 ")
                && svg.contains("width=\"100%\"")
        );
        assert!(
            svg.contains("role=\"img\"")
                && svg.contains("aria-label=\"")
                && svg.contains("<title>")
        );
        assert!(!svg.contains("style=\""), "no inline styles");
    }

    #[test]
    fn track_simplifier_within_tolerance() {
        let mut r = Rng(9);
        let (mut x, mut y, mut hd) = (500.0, 500.0, 0.0f64);
        let pts: Vec<Coord<f64>> = (0..5000)
            .map(|_| {
                hd += (r.f() - 0.5) * 0.8;
                x += 0.8 * hd.cos();
                y += 0.8 * hd.sin();
                Coord { x, y }
            })
            .collect();
        let mut out = Vec::new();
        Simplifier::default().run(&pts, 1.0, &mut out);
        assert!(
            out.len() > 2 && out.len() < pts.len() / 3,
            "kept {}",
            out.len()
        );
        // every input point lies within tol (+ radial step + rounding) of the result
        let seg_d = |p: Coord<f64>, a: (i64, i64), b: (i64, i64)| {
            let (ax, ay, bx, by) = (a.0 as f64, a.1 as f64, b.0 as f64, b.1 as f64);
            let (dx, dy) = (bx - ax, by - ay);
            let l2 = dx * dx + dy * dy;
            let t = if l2 > 0.0 {
                (((p.x - ax) * dx + (p.y - ay) * dy) / l2).clamp(0.0, 1.0)
            } else {
                0.0
            };
            ((p.x - ax - t * dx).powi(2) + (p.y - ay - t * dy).powi(2)).sqrt()
        };
        for &p in &pts {
            let d = out
                .windows(2)
                .map(|w| seg_d(p, w[0], w[1]))
                .fold(f64::INFINITY, f64::min);
            assert!(d <= 2.0 + 0.71, "point {p:?} is {d} away");
        }
        let straight: Vec<Coord<f64>> = (0..1000)
            .map(|i| Coord {
                x: i as f64,
                y: 3.0,
            })
            .collect();
        let mut out = Vec::new();
        Simplifier::default().run(&straight, 1.0, &mut out);
        assert_eq!(out, vec![(0, 3), (999, 3)]);
    }

    #[test]
    fn xml_checker_rejects_bad_input() {
        assert!(check_xml("<a><b></a>").is_err());
        assert!(check_xml("<a>x & y</a>").is_err());
        assert!(check_xml("<a x=\"1\" x=\"2\"/>").is_err());
        assert!(check_xml("<a/><b/>").is_err());
        assert!(check_xml("<a x=\"&lt;&#39;\">&amp;</a>").is_ok());
    }

    #[test]
    fn map_real_wijken_quiet_day() {
        let areas = load_areas("velsen_wijken_2024.wgs84.geojson");
        assert_eq!(areas.len(), 10);
        let outlines_only = map_svg(
            &MapInput {
                areas: &areas,
                points: &[],
                hotspots: &[],
                tracks: &[],
                title: "Velsen",
            },
            1000,
        );
        assert_clean(&outlines_only);
        for a in &areas {
            assert!(
                outlines_only.contains(&format!("<title>{}</title>", esc(&a.name))),
                "{}",
                a.name
            );
            let first_word = short_name(&a.name).split(' ').next().unwrap_or("");
            assert!(
                outlines_only.contains(&format!(">{}", esc(first_word))),
                "{}",
                a.name
            );
        }
        assert!(
            outlines_only.len() < 10_000,
            "outlines {} B",
            outlines_only.len()
        );

        let day = synth(&areas, 150, 4, 1500, 7);
        let svg = render(&areas, &day, "Briefing 26-11");
        assert_clean(&svg);
        assert!(
            !svg.contains("class=\"bs-dens\""),
            "no grid below threshold"
        );
        for c in CLASSES {
            assert!(svg.contains(&format!("class=\"bs-pt bs-pt-{c}\"")), "{c}");
        }
        assert!(
            svg.contains("class=\"bs-hs bs-hs-covered\"")
                && svg.contains("class=\"bs-hs bs-hs-open\"")
        );
        assert_eq!(
            svg.matches("class=\"bs-trk\" d=").count(),
            2,
            "one track path + legend sample"
        );
        println!(
            "outlines only: {} B; quiet day: {} B",
            outlines_only.len(),
            svg.len()
        );
        assert!(svg.len() < 40_000, "quiet day {} B", svg.len());
    }

    #[test]
    fn map_busy_day_budget_and_grid() {
        let areas = load_areas("velsen_wijken_2024.wgs84.geojson");
        let day = synth(&areas, 5000, 500, 600, 42);
        assert_eq!(day.tracks.iter().map(Vec::len).sum::<usize>(), 300_000);
        let svg = render(&areas, &day, "Drukke dag");
        assert_clean(&svg);
        assert!(
            svg.contains("class=\"bs-dens\"") && svg.contains("bs-d1") && svg.contains("bs-d5")
        );
        assert!(
            !svg.contains("\"bs-pt bs-pt-afval\""),
            "violations not as markers above threshold"
        );
        assert!(
            svg.contains("\"bs-pt bs-pt-youth\"") && svg.contains("\"bs-pt bs-pt-incident\""),
            "overlays stay markers"
        );
        println!("busy day: {} B", svg.len());
        assert!(svg.len() <= 150_000, "busy day {} B", svg.len());
    }

    #[test]
    fn density_threshold_boundary() {
        let areas = load_areas("velsen_wijken_2024.wgs84.geojson");
        let mk = |n| synth(&areas, n, 0, 0, 3);
        let below = render(&areas, &mk(DENSITY_THRESHOLD), "t");
        let above = render(&areas, &mk(DENSITY_THRESHOLD + 1), "t");
        assert!(!below.contains("class=\"bs-dens\"") && below.contains("\"bs-pt bs-pt-afval\""));
        assert!(above.contains("class=\"bs-dens\"") && !above.contains("\"bs-pt bs-pt-afval\""));
        assert_clean(&below);
        assert_clean(&above);
    }

    #[test]
    fn map_escapes_names_and_labels() {
        let poly: Polygon<f64> = Polygon::new(
            LineString::from(vec![
                (4.6, 52.45),
                (4.65, 52.45),
                (4.65, 52.48),
                (4.6, 52.48),
                (4.6, 52.45),
            ]),
            vec![],
        );
        let areas = [MapArea {
            code: "WK\"<x>".into(),
            name: "Wijk 99 <Noord> & 'Zuid' \"x\"\u{1}".into(),
            shape: MultiPolygon::new(vec![poly]),
            count: 0,
        }];
        let hs = [MapHotspot {
            lat: 52.46,
            lon: 4.62,
            radius_m: 150.0,
            label: "<script>&".into(),
            covered: false,
        }];
        let pts = [MapPoint {
            lat: 52.46,
            lon: 4.61,
            class: "weird<&>",
        }];
        let svg = map_svg(
            &MapInput {
                areas: &areas,
                points: &pts,
                hotspots: &hs,
                tracks: &[],
                title: "A & <B>",
            },
            800,
        );
        assert_clean(&svg);
        assert!(svg.contains("&lt;Noord&gt; &amp; &#39;Zuid&#39; &quot;x&quot;"));
        assert!(svg.contains("&lt;script&gt;&amp;"));
        assert!(svg.contains("<title>A &amp; &lt;B&gt;</title>"));
        assert!(svg.contains("bs-pt-other bs-pt-weird"));
        assert!(!svg.contains("<Noord>") && !svg.contains("<script>"));
    }

    #[test]
    fn map_degenerate_inputs() {
        // nothing at all, NaN coordinates, single point, one-point track
        let pts = [
            MapPoint {
                lat: f64::NAN,
                lon: 4.6,
                class: "afval",
            },
            MapPoint {
                lat: 52.46,
                lon: 4.6,
                class: "afval",
            },
        ];
        let tracks = vec![
            vec![(52.46, 4.6)],
            vec![(f64::INFINITY, 4.6), (52.47, 4.61), (52.46, 4.62)],
        ];
        let hs = [MapHotspot {
            lat: 52.46,
            lon: 4.6,
            radius_m: f64::NAN,
            label: String::new(),
            covered: true,
        }];
        for input in [
            MapInput {
                areas: &[],
                points: &[],
                hotspots: &[],
                tracks: &[],
                title: "",
            },
            MapInput {
                areas: &[],
                points: &pts,
                hotspots: &hs,
                tracks: &tracks,
                title: "x",
            },
        ] {
            let svg = map_svg(&input, 0);
            assert_clean(&svg);
        }
    }

    #[test]
    fn map_buurten_fixture() {
        let areas = load_areas("velsen_buurten_2024.wgs84.geojson");
        let svg = map_svg(
            &MapInput {
                areas: &areas,
                points: &[],
                hotspots: &[],
                tracks: &[],
                title: "Buurten",
            },
            1000,
        );
        assert_clean(&svg);
        println!("buurten outlines ({}): {} B", areas.len(), svg.len());
    }

    #[test]
    fn sparkline_cases() {
        let vals: Vec<f64> = (0..28)
            .map(|i| ((i * 7) % 11) as f64 + 0.5 * (i % 2) as f64)
            .collect();
        for (v, label) in [
            (vals.clone(), "Meldingen <28 dagen> & \"trend\""),
            (vec![], "leeg"),
            (vec![5.0], "één"),
            (vec![0.0, 0.0, 0.0], "nullen"),
            (vec![f64::NAN, f64::INFINITY, -3.0, 2.0], "raar"),
        ] {
            let svg = sparkline_svg(&v, 160, 32, label);
            assert_clean(&svg);
            assert!(svg.contains("bs-spark"));
            assert!(!svg.contains("<28"));
        }
        let svg = sparkline_svg(&vals, 160, 32, "x & y");
        assert!(svg.contains("x &amp; y") && svg.contains("bs-spark-last"));
        assert!(sparkline_svg(&[], 0, 0, "e").contains("geen gegevens"));
    }

    #[test]
    fn bars_cases() {
        let items: Vec<(String, f64)> = vec![
            ("Afval & <zwerfvuil>".into(), 42.0),
            ("Parkeren".into(), 17.5),
            ("Honden 'los'".into(), 0.0),
            (
                "Een heel erg lange categorienaam die niet in de kolom past, echt niet".into(),
                3.0,
            ),
            ("raar".into(), f64::NAN),
        ];
        let svg = bars_svg(&items, 320, "Per <categorie>");
        assert_clean(&svg);
        assert!(
            svg.contains("Afval &amp; &lt;zwerfvuil&gt;") && svg.contains("Per &lt;categorie&gt;")
        );
        assert!(svg.contains(">42</text>") && svg.contains(">17.5</text>") && svg.contains('…'));
        for e in [
            bars_svg(&[], 320, "leeg"),
            bars_svg(&[("nul".into(), 0.0)], 0, "nul"),
        ] {
            assert_clean(&e);
        }
        assert!(bars_svg(&[], 320, "leeg").contains("geen gegevens"));
    }

    /// `cargo test --release -- --ignored --nocapture bench_busy_day`
    #[test]
    #[ignore]
    fn bench_busy_day() {
        let areas = load_areas("velsen_wijken_2024.wgs84.geojson");
        let quiet = synth(&areas, 150, 4, 1500, 7);
        let busy = synth(&areas, 5000, 500, 600, 42);
        let q = render(&areas, &quiet, "quiet");
        let _ = render(&areas, &busy, "warm-up");
        let runs = 20;
        let t = std::time::Instant::now();
        let mut len = 0;
        for _ in 0..runs {
            len = render(&areas, &busy, "busy").len();
        }
        let per = t.elapsed() / runs;
        println!(
            "quiet day map: {} B; busy day map: {len} B; busy render: {per:?} (mean of {runs})",
            q.len()
        );
    }

    #[test]
    fn a_trend_has_dates_and_a_count_axis() {
        let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        let vals: Vec<f64> = (0..29).map(|i| f64::from(i % 7)).collect();
        let svg = trend_svg(&vals, day, 420, 120, "Overtredingen per dag");
        assert!(svg.contains(">9-11<"), "the first day, 28 days back: {svg}");
        assert!(svg.contains(">vandaag<"));
        assert!(
            svg.contains(">10<") && svg.contains(">5<") && svg.contains(">0<"),
            "0, middle, round top"
        );
        assert!(svg.contains("Vandaag: 0"));
        assert!(svg.contains("aria-label=\"Overtredingen per dag: 29 dagen tot en met 07-12-2026"));
        assert_eq!(nice_top(0.0), 1.0);
        assert_eq!(nice_top(7.0), 10.0);
        assert_eq!(nice_top(120.0), 200.0);
        assert!(trend_svg(&[], day, 420, 120, "x").contains("geen gegevens"));
    }

    #[test]
    fn wijken_are_shaded_by_count_and_hotspots_drawn_over_the_markers() {
        let sq = |x: f64, y: f64| {
            MultiPolygon::new(vec![geo::Polygon::new(
                geo::LineString::from(vec![
                    (x, y),
                    (x + 0.01, y),
                    (x + 0.01, y + 0.01),
                    (x, y + 0.01),
                    (x, y),
                ]),
                vec![],
            )])
        };
        let areas = [
            MapArea {
                code: "A".into(),
                name: "Wijk 01 Een".into(),
                shape: sq(4.60, 52.45),
                count: 40,
            },
            MapArea {
                code: "B".into(),
                name: "Wijk 02 Twee".into(),
                shape: sq(4.61, 52.45),
                count: 3,
            },
            MapArea {
                code: "C".into(),
                name: "Wijk 03 Drie".into(),
                shape: sq(4.62, 52.45),
                count: 0,
            },
        ];
        let points = [MapPoint {
            lat: 52.455,
            lon: 4.605,
            class: "afval",
        }];
        let hotspots = [MapHotspot {
            lat: 52.455,
            lon: 4.605,
            radius_m: 60.0,
            label: "1".into(),
            covered: false,
        }];
        let svg = map_svg(
            &MapInput {
                areas: &areas,
                points: &points,
                hotspots: &hotspots,
                tracks: &[],
                title: "t",
            },
            600,
        );
        assert!(
            svg.contains("class=\"bs-wijk bs-wijk-s4\" data-code=\"A\""),
            "{svg}"
        );
        assert!(svg.contains("class=\"bs-wijk bs-wijk-s1\" data-code=\"B\""));
        assert!(svg.contains("class=\"bs-wijk\" data-code=\"C\""));
        assert!(
            svg.contains("3 per wijk") && svg.contains("40 per wijk"),
            "the legend says what a shade means"
        );
        let markers = svg.find("<g class=\"bs-pts\">").unwrap();
        assert!(
            svg.find("<g class=\"bs-hotspots\">").unwrap() > markers,
            "hotspots above the markers"
        );
        assert!(
            svg.find("<text class=\"bs-hs-label\"").unwrap() > markers,
            "their numbers too"
        );
    }
}
