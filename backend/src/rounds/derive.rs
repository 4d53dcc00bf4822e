//! Derivation of patrol-round statistics from raw GPS track segments.
//!
//! The phone of a BOA (municipal enforcement officer) records its GPS track as
//! immutable *segments* (batches of [`TrackPoint`]s). Segments reach the server
//! in any order, possibly days late, possibly more than once. [`derive`] turns
//! whatever segments have arrived so far into [`RoundStats`]; it is a pure
//! function (no I/O, no clock, no global state), so re-deriving after every new
//! segment always gives the same answer for the same set of points, whatever
//! the order in which the segments arrived.
//!
//! # Pipeline
//!
//! 1. **Merge & deduplicate.** All points of all segments are merged and sorted
//!    by time. Points with the same `t_ms` are duplicates (a resent segment);
//!    of each group one is kept — the one with the best accuracy claim, ties
//!    broken by coordinates, so the choice does not depend on arrival order —
//!    and the others are counted in [`RoundStats::duplicates`].
//! 2. **Accuracy filter.** A point whose `accuracy_m` is worse than
//!    [`Params::max_accuracy_m`] is dropped ([`RoundStats::rejected_inaccurate`]).
//!    A point without an accuracy claim is kept (the jump rule still guards it).
//!    A point with non-finite or out-of-range coordinates, or a NaN accuracy,
//!    is counted as inaccurate too.
//! 3. **Jump filter** (see [`RoundStats::rejected_jumps`]): a point whose implied
//!    speed from the previous accepted point exceeds [`Params::max_speed_mps`]
//!    is a GPS jump and is dropped, with two refinements:
//!    * *Untrusted anchor.* The first accepted point has no predecessor to vouch
//!      for it. When the next point conflicts with it, the up to
//!      [`LOOKAHEAD_POINTS`] points after that vote: if more of them are
//!      consistent with the new point than with the anchor, the anchor is the
//!      outlier and is dropped instead. (A bad first point is thus removed.)
//!    * *Relocation.* If [`RELOCATE_POINTS`] consecutive rejected points are
//!      consistent with each other (a real move the filter could not follow —
//!      a bus ride with the phone on, or a cluster of bad cold-start fixes
//!      before it), they are accepted as a new stretch. The hop into that
//!      stretch is a *break*: it counts neither as distance nor as time.
//!      Without this rule the filter could stay stuck on a stale anchor and
//!      reject the rest of the round. If the stretch before the relocation
//!      has fewer than [`RELOCATE_POINTS`] points (typically a few bad
//!      cold-start fixes that agreed with each other), it is dropped as jumps.
//! 4. **Statistics** over the accepted points in time order. Each *hop*
//!    (consecutive accepted points) whose gap is at most [`Params::max_gap_s`]
//!    and that is not a relocation break counts fully towards distance and
//!    duration; a longer silence (phone off) or a break counts for neither
//!    (it is skipped, not capped: we do not know what happened in between).
//!    A hop's time and distance are split half/half between the area of its
//!    earlier and of its later point — a cheap stand-in for "the area of the
//!    midpoint" that needs no extra `locate` call: each point owns the track
//!    half-way to its neighbours.
//!
//! # Distances
//!
//! Distances are ellipsoidal (WGS84). Hops up to [`LOCAL_MAX_M`] use a local
//! tangent-plane formula with the meridional and prime-vertical radii of
//! curvature at the hop's mid-latitude; for such short hops it agrees with
//! `geo::Geodesic` to better than 1e-6 relative, at a fraction of its cost.
//! Longer hops fall back to `geo::Geodesic` itself.

// `::geo` (the crate), not the backend's own `crate::geo` module.
use ::geo::{BoundingRect, Contains, Distance, Geodesic, MultiPolygon, Point};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Number of points after a conflicting point that vote on whether an
/// untrusted anchor (e.g. the first point) or the conflicting point is the
/// outlier.
pub const LOOKAHEAD_POINTS: usize = 3;

/// Number of consecutive, mutually consistent rejected points after which the
/// jump filter accepts that the officer really moved (relocation).
pub const RELOCATE_POINTS: usize = 5;

/// Seconds an officer must have spent in a planned wijk or buurt before it
/// counts as covered (unit `"area"`).
pub const AREA_COVERED_MIN_S: i64 = 60;

/// Nominal edge length in metres of the coverage cells laid over a planned
/// polygon (unit `"cell"`).
pub const CELL_SIZE_M: f64 = 100.0;

/// Upper bound on the number of coverage cells; for a polygon so large that
/// 100 m cells would exceed it, the cell edge is doubled until it fits.
pub const MAX_CELLS: usize = 250_000;

/// Hops longer than this (metres, by the local formula) are measured with
/// `geo::Geodesic` instead of the local tangent-plane formula.
pub const LOCAL_MAX_M: f64 = 10_000.0;

/// One GPS fix as recorded by the phone.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TrackPoint {
    /// Latitude in degrees (WGS84).
    pub lat: f64,
    /// Longitude in degrees (WGS84).
    pub lon: f64,
    /// Time of the fix in milliseconds since the Unix epoch.
    pub t_ms: i64,
    /// Horizontal accuracy radius in metres as reported by the phone, if any.
    pub accuracy_m: Option<f64>,
    /// Speed in m/s as reported by the phone, if any. Not used by [`derive`]
    /// (the implied speed between fixes is what the jump rule checks).
    pub speed_mps: Option<f64>,
}

/// A place the officer is meant to visit during the round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Checkpoint {
    /// Stable identifier of the checkpoint.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// Latitude of the centre in degrees (WGS84).
    pub lat: f64,
    /// Longitude of the centre in degrees (WGS84).
    pub lon: f64,
    /// The checkpoint counts as reached by an accepted point within this many
    /// metres of the centre.
    pub radius_m: f64,
}

/// The area a round was planned to cover.
#[derive(Debug, Clone, PartialEq)]
pub enum PlannedArea {
    /// A list of wijk (district) and/or buurt (neighbourhood) codes, as
    /// returned by the `locate` function passed to [`derive`].
    Areas(Vec<String>),
    /// A free-form area (lon/lat coordinates, WGS84).
    Polygon(MultiPolygon<f64>),
}

/// Tuning of the track filters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Params {
    /// Points whose accuracy radius is larger (worse) than this many metres
    /// are dropped. Default 50.
    pub max_accuracy_m: f64,
    /// A point whose implied speed from the previous accepted point exceeds
    /// this (m/s) is a GPS jump. Default 12 (fast cycling).
    pub max_speed_mps: f64,
    /// A silence longer than this many seconds between accepted points (phone
    /// off) counts as neither patrol time nor distance. Default 300.
    pub max_gap_s: i64,
}

impl Default for Params {
    /// `max_accuracy_m = 50`, `max_speed_mps = 12`, `max_gap_s = 300`.
    fn default() -> Self {
        Self {
            max_accuracy_m: 50.0,
            max_speed_mps: 12.0,
            max_gap_s: 300,
        }
    }
}

/// What `locate` returns for a point: the codes of the wijk (district) and of
/// the buurt (neighbourhood) it lies in, `None` outside any known area.
pub type AreaCodes = (Option<String>, Option<String>);

/// Time and distance spent in one wijk or buurt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AreaTime {
    /// The wijk or buurt code as returned by `locate`.
    pub code: String,
    /// Patrol seconds attributed to this area (rounded to whole seconds).
    pub seconds: i64,
    /// Metres attributed to this area.
    pub distance_m: f64,
}

/// Whether and when a checkpoint was reached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CheckpointHit {
    /// [`Checkpoint::id`].
    pub id: String,
    /// [`Checkpoint::name`].
    pub name: String,
    /// Time of the first accepted point within the checkpoint's radius, or
    /// `None` if it was not reached.
    pub reached_at_ms: Option<i64>,
}

/// How much of the planned area the round covered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Coverage {
    /// Number of planned units (distinct areas, or cells inside the polygon).
    pub planned: usize,
    /// Number of planned units that were covered.
    pub covered: usize,
    /// `covered / planned`, 0 when nothing was planned.
    pub fraction: f64,
    /// `"area"`: a planned wijk/buurt is covered once the track spent at least
    /// 60 s in it. `"cell"`: the polygon is divided into ~100 m cells (those
    /// whose centre lies inside it); a cell is covered when the track passed
    /// through it.
    pub unit: String,
}

/// Statistics derived from the segments of one round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RoundStats {
    /// All points in all segments, duplicates included.
    pub points_received: usize,
    /// Points that passed all filters. `points_received = points_used +
    /// rejected_inaccurate + rejected_jumps + duplicates`.
    pub points_used: usize,
    /// Points dropped for bad (or invalid) accuracy or coordinates.
    pub rejected_inaccurate: usize,
    /// Points dropped as physically impossible jumps.
    pub rejected_jumps: usize,
    /// Points with the same timestamp as an already kept point.
    pub duplicates: usize,
    /// Metres travelled over the counted hops of accepted points, ellipsoidal.
    pub distance_m: f64,
    /// Time of the first accepted point.
    pub started_at_ms: Option<i64>,
    /// Time of the last accepted point.
    pub ended_at_ms: Option<i64>,
    /// Patrol seconds: the sum of the gaps between consecutive accepted
    /// points, skipping gaps longer than `max_gap_s` and relocation breaks.
    pub duration_s: i64,
    /// Time and distance per wijk, by seconds descending then code.
    pub per_wijk: Vec<AreaTime>,
    /// Time and distance per buurt, by seconds descending then code.
    pub per_buurt: Vec<AreaTime>,
    /// One entry per input checkpoint, in input order.
    pub checkpoints: Vec<CheckpointHit>,
    /// Coverage of the planned area; `None` when no area was planned.
    pub coverage: Option<Coverage>,
}

/// Derives the statistics of a round from its track segments.
///
/// * `segments`: the segments received so far, in any order, possibly
///   overlapping.
/// * `checkpoints`: the checkpoints of the round; reported in this order.
/// * `planned`: the planned area, if any, for [`RoundStats::coverage`].
/// * `params`: filter tuning, usually [`Params::default`].
/// * `locate`: `(lat, lon) -> (wijk, buurt)`; called exactly once per accepted
///   point, in time order.
///
/// Never panics; empty input gives zeroed statistics.
pub fn derive(
    segments: &[&[TrackPoint]],
    checkpoints: &[Checkpoint],
    planned: Option<&PlannedArea>,
    params: &Params,
    locate: &dyn Fn(f64, f64) -> AreaCodes,
) -> RoundStats {
    let points_received: usize = segments.iter().map(|s| s.len()).sum();

    // 1. Merge, sort, deduplicate.
    let mut merged: Vec<Fix> = Vec::with_capacity(points_received);
    for seg in segments {
        merged.extend(seg.iter().map(|p| Fix {
            lat: p.lat,
            lon: p.lon,
            t_ms: p.t_ms,
            acc: p.accuracy_m,
        }));
    }
    merged.sort_unstable_by(|a, b| {
        a.t_ms
            .cmp(&b.t_ms)
            .then_with(|| acc_rank(a.acc).total_cmp(&acc_rank(b.acc)))
            .then_with(|| a.lat.total_cmp(&b.lat))
            .then_with(|| a.lon.total_cmp(&b.lon))
    });
    let before = merged.len();
    merged.dedup_by_key(|f| f.t_ms);
    let duplicates = before - merged.len();

    // 2. Accuracy / validity filter.
    let before = merged.len();
    merged.retain(|f| f.is_valid(params.max_accuracy_m));
    let rejected_inaccurate = before - merged.len();

    // 3. Jump filter.
    let (accepted, rejected_jumps) = jump_filter(&merged, params.max_speed_mps);

    // 4. Statistics.
    let mut out = RoundStats {
        points_received,
        points_used: accepted.len(),
        rejected_inaccurate,
        rejected_jumps,
        duplicates,
        distance_m: 0.0,
        started_at_ms: accepted.first().map(|a| a.fix.t_ms),
        ended_at_ms: accepted.last().map(|a| a.fix.t_ms),
        duration_s: 0,
        per_wijk: Vec::new(),
        per_buurt: Vec::new(),
        checkpoints: Vec::new(),
        coverage: None,
    };

    let max_gap_ms = params.max_gap_s.saturating_mul(1000);
    let mut wijken = AreaAcc::default();
    let mut buurten = AreaAcc::default();
    let mut cps: Vec<CpState> = checkpoints.iter().map(CpState::new).collect();
    let mut grid = match planned {
        Some(PlannedArea::Polygon(mp)) => Some(CellGrid::new(mp)),
        _ => None,
    };
    let mut duration_ms: i64 = 0;
    let mut prev: Option<(&Accepted, Option<usize>, Option<usize>)> = None;

    for a in &accepted {
        let f = &a.fix;
        let (w, b) = locate(f.lat, f.lon);
        let wi = w.map(|c| wijken.intern(c));
        let bi = b.map(|c| buurten.intern(c));

        for cp in cps.iter_mut().filter(|cp| cp.reached.is_none()) {
            if cp.contains(f) {
                cp.reached = Some(f.t_ms);
            }
        }
        if let Some(g) = grid.as_mut() {
            g.mark(f.lat, f.lon);
        }

        if let Some((p, pw, pb)) = prev {
            let gap = f.t_ms.saturating_sub(p.fix.t_ms);
            if !a.break_before && gap <= max_gap_ms {
                let d = hop_m(&p.fix, f);
                out.distance_m += d;
                duration_ms = duration_ms.saturating_add(gap);
                let first_half = gap / 2;
                let second_half = gap - first_half;
                wijken.add(pw, first_half, d * 0.5);
                wijken.add(wi, second_half, d * 0.5);
                buurten.add(pb, first_half, d * 0.5);
                buurten.add(bi, second_half, d * 0.5);
                if let Some(g) = grid.as_mut() {
                    g.mark_hop(&p.fix, f, d);
                }
            }
        }
        prev = Some((a, wi, bi));
    }

    out.duration_s = ms_to_s(duration_ms);
    out.checkpoints = cps
        .into_iter()
        .map(|c| CheckpointHit {
            id: c.cp.id.clone(),
            name: c.cp.name.clone(),
            reached_at_ms: c.reached,
        })
        .collect();
    out.coverage = match planned {
        None => None,
        Some(PlannedArea::Areas(codes)) => Some(area_coverage(codes, &wijken, &buurten)),
        Some(PlannedArea::Polygon(_)) => grid.map(|g| g.coverage()),
    };
    out.per_wijk = wijken.into_sorted();
    out.per_buurt = buurten.into_sorted();
    out
}

// ---------------------------------------------------------------------------
// Internals
// ---------------------------------------------------------------------------

/// A point reduced to what the derivation needs.
#[derive(Debug, Clone, Copy)]
struct Fix {
    lat: f64,
    lon: f64,
    t_ms: i64,
    acc: Option<f64>,
}

impl Fix {
    /// Valid coordinates and an accuracy claim no worse than `max_acc`
    /// (a missing claim is accepted, a NaN claim is not).
    fn is_valid(&self, max_acc: f64) -> bool {
        let coords_ok = self.lat.is_finite()
            && self.lon.is_finite()
            && self.lat.abs() <= 90.0
            && self.lon.abs() <= 180.0;
        let acc_ok = match self.acc {
            None => true,
            Some(a) => a <= max_acc, // false for NaN
        };
        coords_ok && acc_ok
    }
}

/// Sort key for the accuracy claim: better (smaller) first, missing/NaN last.
fn acc_rank(acc: Option<f64>) -> f64 {
    match acc {
        Some(a) if !a.is_nan() => a,
        _ => f64::INFINITY,
    }
}

/// A point that passed the jump filter.
#[derive(Debug, Clone, Copy)]
struct Accepted {
    fix: Fix,
    /// Confirmed by a consistent predecessor (or by its relocation stretch).
    trusted: bool,
    /// The hop from the previous accepted point is a relocation break.
    break_before: bool,
}

/// Whether going from `a` to `b` is physically possible.
fn consistent(a: &Fix, b: &Fix, max_speed: f64) -> bool {
    let dt_s = (b.t_ms.saturating_sub(a.t_ms)) as f64 / 1000.0;
    // Distinct timestamps after dedup; dt_s <= 0 only for absurd input.
    dt_s > 0.0 && hop_m(a, b) <= max_speed * dt_s
}

/// The jump filter (see the module docs). Returns the accepted points in time
/// order and the number of rejected points.
fn jump_filter(fixes: &[Fix], max_speed: f64) -> (Vec<Accepted>, usize) {
    let mut acc: Vec<Accepted> = Vec::with_capacity(fixes.len());
    let mut pending: Vec<Fix> = Vec::new();
    let mut rejected = 0usize;
    // Index in `acc` where the current stretch (since the last relocation) began.
    let mut run_start = 0usize;

    for (i, p) in fixes.iter().enumerate() {
        let ahead = fixes.get(i + 1..).unwrap_or(&[]);
        loop {
            let Some(last) = acc.last().copied() else {
                acc.push(Accepted {
                    fix: *p,
                    trusted: false,
                    break_before: false,
                });
                break;
            };
            if consistent(&last.fix, p, max_speed) {
                rejected += pending.len();
                pending.clear();
                acc.push(Accepted {
                    fix: *p,
                    trusted: true,
                    break_before: false,
                });
                break;
            }
            if !last.trusted && lookahead_prefers_new(&last.fix, p, ahead, max_speed) {
                // The untrusted anchor was the outlier: drop it, re-check p
                // against whatever precedes it.
                acc.pop();
                rejected += 1;
                continue;
            }
            // p is rejected for now; it may start a relocation stretch.
            if let Some(l) = pending.last()
                && !consistent(l, p, max_speed)
            {
                rejected += pending.len();
                pending.clear();
            }
            pending.push(*p);
            if pending.len() >= RELOCATE_POINTS {
                // A stretch shorter than the evidence that just outvoted it
                // (e.g. a few bad cold-start fixes) is itself the glitch.
                run_start = run_start.min(acc.len());
                let run_len = acc.len() - run_start;
                if run_len < RELOCATE_POINTS {
                    rejected += run_len;
                    acc.truncate(run_start);
                }
                run_start = acc.len();
                let mut first = !acc.is_empty();
                for f in pending.drain(..) {
                    acc.push(Accepted {
                        fix: f,
                        trusted: true,
                        break_before: first,
                    });
                    first = false;
                }
            }
            break;
        }
    }
    rejected += pending.len();
    (acc, rejected)
}

/// Vote of the next up to [`LOOKAHEAD_POINTS`] points: `true` when more of
/// them are consistent with `new` than with `anchor`.
fn lookahead_prefers_new(anchor: &Fix, new: &Fix, ahead: &[Fix], max_speed: f64) -> bool {
    let mut for_new = 0;
    let mut for_anchor = 0;
    for q in ahead.iter().take(LOOKAHEAD_POINTS) {
        if consistent(new, q, max_speed) {
            for_new += 1;
        }
        if consistent(anchor, q, max_speed) {
            for_anchor += 1;
        }
    }
    for_new > for_anchor
}

/// WGS84 semi-major axis (m).
const WGS84_A: f64 = 6_378_137.0;
/// WGS84 first eccentricity squared.
const WGS84_E2: f64 = 6.694_379_990_141_33e-3;

/// Metres per degree of latitude and of longitude at latitude `lat_deg`
/// (meridional and prime-vertical radii of curvature of WGS84).
fn metres_per_degree(lat_deg: f64) -> (f64, f64) {
    let phi = lat_deg.to_radians();
    let s = phi.sin();
    let w = 1.0 - WGS84_E2 * s * s;
    let sw = w.sqrt();
    let n = WGS84_A / sw;
    let m = WGS84_A * (1.0 - WGS84_E2) / (w * sw);
    let k = std::f64::consts::PI / 180.0;
    (m * k, n * phi.cos() * k)
}

/// Ellipsoidal distance in metres between two fixes: a local tangent-plane
/// formula for short hops, `geo::Geodesic` beyond [`LOCAL_MAX_M`].
fn hop_m(a: &Fix, b: &Fix) -> f64 {
    let d = local_m(a.lat, a.lon, b.lat, b.lon);
    if d > LOCAL_MAX_M {
        Geodesic.distance(Point::new(a.lon, a.lat), Point::new(b.lon, b.lat))
    } else {
        d
    }
}

/// Local tangent-plane distance (accurate for short distances).
fn local_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (k_lat, k_lon) = metres_per_degree((lat1 + lat2) * 0.5);
    let mut dlon = lon2 - lon1;
    if dlon > 180.0 {
        dlon -= 360.0;
    } else if dlon < -180.0 {
        dlon += 360.0;
    }
    let x = dlon * k_lon;
    let y = (lat2 - lat1) * k_lat;
    (x * x + y * y).sqrt()
}

fn ms_to_s(ms: i64) -> i64 {
    ms.saturating_add(500).div_euclid(1000)
}

/// Accumulated time/distance per area code.
#[derive(Default)]
struct AreaAcc {
    codes: Vec<String>,
    ms: Vec<i64>,
    dist: Vec<f64>,
    /// Index of the last interned code (consecutive points mostly share it).
    last: Option<usize>,
}

impl AreaAcc {
    fn intern(&mut self, code: String) -> usize {
        if let Some(i) = self.last
            && self.codes.get(i).is_some_and(|c| *c == code)
        {
            return i;
        }
        let i = match self.codes.iter().position(|c| *c == code) {
            Some(i) => i,
            None => {
                self.codes.push(code);
                self.ms.push(0);
                self.dist.push(0.0);
                self.codes.len() - 1
            }
        };
        self.last = Some(i);
        i
    }

    fn add(&mut self, idx: Option<usize>, ms: i64, dist: f64) {
        if let Some(i) = idx {
            if let Some(m) = self.ms.get_mut(i) {
                *m = m.saturating_add(ms);
            }
            if let Some(d) = self.dist.get_mut(i) {
                *d += dist;
            }
        }
    }

    fn ms_of(&self, code: &str) -> i64 {
        self.codes
            .iter()
            .zip(&self.ms)
            .find(|(c, _)| c.as_str() == code)
            .map_or(0, |(_, m)| *m)
    }

    fn into_sorted(self) -> Vec<AreaTime> {
        let mut v: Vec<AreaTime> = self
            .codes
            .into_iter()
            .zip(self.ms)
            .zip(self.dist)
            .map(|((code, ms), distance_m)| AreaTime {
                code,
                seconds: ms_to_s(ms),
                distance_m,
            })
            .collect();
        v.sort_by(|a, b| b.seconds.cmp(&a.seconds).then_with(|| a.code.cmp(&b.code)));
        v
    }
}

/// Coverage with unit `"area"`: each distinct planned code (wijk or buurt) is
/// covered when at least [`AREA_COVERED_MIN_S`] seconds were attributed to it.
fn area_coverage(codes: &[String], wijken: &AreaAcc, buurten: &AreaAcc) -> Coverage {
    let mut distinct: Vec<&str> = codes.iter().map(String::as_str).collect();
    distinct.sort_unstable();
    distinct.dedup();
    let min_ms = AREA_COVERED_MIN_S * 1000;
    let covered = distinct
        .iter()
        .filter(|c| wijken.ms_of(c).max(buurten.ms_of(c)) >= min_ms)
        .count();
    make_coverage(distinct.len(), covered, "area")
}

fn make_coverage(planned: usize, covered: usize, unit: &str) -> Coverage {
    let fraction = if planned == 0 {
        0.0
    } else {
        covered as f64 / planned as f64
    };
    Coverage {
        planned,
        covered,
        fraction,
        unit: unit.to_string(),
    }
}

/// Checkpoint with a precomputed lat/lon bounding box for a cheap pre-test.
struct CpState<'a> {
    cp: &'a Checkpoint,
    fix: Fix,
    dlat: f64,
    dlon: f64,
    reached: Option<i64>,
}

impl<'a> CpState<'a> {
    fn new(cp: &'a Checkpoint) -> Self {
        let (k_lat, k_lon) = metres_per_degree(cp.lat);
        let r = if cp.radius_m.is_finite() {
            cp.radius_m.max(0.0)
        } else {
            0.0
        };
        // 1 % margin for the curvature of the box; k_lon > 0 except at a pole.
        let dlat = r * 1.01 / k_lat;
        let dlon = if k_lon > 1e-9 {
            r * 1.01 / k_lon
        } else {
            360.0
        };
        CpState {
            cp,
            fix: Fix {
                lat: cp.lat,
                lon: cp.lon,
                t_ms: 0,
                acc: None,
            },
            dlat,
            dlon,
            reached: None,
        }
    }

    fn contains(&self, f: &Fix) -> bool {
        let mut dlon = (f.lon - self.fix.lon).abs();
        if dlon > 180.0 {
            dlon = 360.0 - dlon;
        }
        (f.lat - self.fix.lat).abs() <= self.dlat
            && dlon <= self.dlon
            && hop_m(&self.fix, f) <= self.cp.radius_m
    }
}

/// Cell state in [`CellGrid`].
#[derive(Clone, Copy, PartialEq)]
enum Cell {
    Outside,
    Planned,
    Covered,
}

/// Square cells of ~[`CELL_SIZE_M`] over the bounding box of the planned
/// polygon, in a local equirectangular projection around its centre.
struct CellGrid {
    min_lat: f64,
    min_lon: f64,
    k_lat: f64,
    k_lon: f64,
    cell_m: f64,
    nx: usize,
    ny: usize,
    cells: Vec<Cell>,
}

impl CellGrid {
    fn new(mp: &MultiPolygon<f64>) -> Self {
        let empty = CellGrid {
            min_lat: 0.0,
            min_lon: 0.0,
            k_lat: 1.0,
            k_lon: 1.0,
            cell_m: CELL_SIZE_M,
            nx: 0,
            ny: 0,
            cells: Vec::new(),
        };
        let Some(rect) = mp.bounding_rect() else {
            return empty;
        };
        let (min, max) = (rect.min(), rect.max());
        if ![min.x, min.y, max.x, max.y].iter().all(|v| v.is_finite()) {
            return empty;
        }
        let (k_lat, k_lon) = metres_per_degree((min.y + max.y) * 0.5);
        let w_m = (max.x - min.x) * k_lon;
        let h_m = (max.y - min.y) * k_lat;
        let mut cell_m = CELL_SIZE_M;
        let dims = |c: f64| ((w_m / c).ceil().max(1.0), (h_m / c).ceil().max(1.0));
        let (mut nxf, mut nyf) = dims(cell_m);
        while nxf * nyf > MAX_CELLS as f64 {
            cell_m *= 2.0;
            (nxf, nyf) = dims(cell_m);
        }
        let (nx, ny) = (nxf as usize, nyf as usize);
        let mut cells = Vec::with_capacity(nx * ny);
        for iy in 0..ny {
            let lat = min.y + (iy as f64 + 0.5) * cell_m / k_lat;
            for ix in 0..nx {
                let lon = min.x + (ix as f64 + 0.5) * cell_m / k_lon;
                cells.push(if mp.contains(&Point::new(lon, lat)) {
                    Cell::Planned
                } else {
                    Cell::Outside
                });
            }
        }
        CellGrid {
            min_lat: min.y,
            min_lon: min.x,
            k_lat,
            k_lon,
            cell_m,
            nx,
            ny,
            cells,
        }
    }

    /// Marks the cell containing the point as covered (if it is planned).
    fn mark(&mut self, lat: f64, lon: f64) {
        let x = (lon - self.min_lon) * self.k_lon / self.cell_m;
        let y = (lat - self.min_lat) * self.k_lat / self.cell_m;
        if !(x >= 0.0 && y >= 0.0) {
            return; // also rejects NaN
        }
        let (ix, iy) = (x as usize, y as usize);
        if ix >= self.nx || iy >= self.ny {
            return;
        }
        if let Some(c) = self.cells.get_mut(iy * self.nx + ix)
            && *c == Cell::Planned
        {
            *c = Cell::Covered;
        }
    }

    /// Marks the cells a counted hop of `d` metres crosses, by sampling it at
    /// most half a cell apart (the endpoints are marked on their own).
    fn mark_hop(&mut self, a: &Fix, b: &Fix, d: f64) {
        let step = self.cell_m * 0.5;
        if d.is_nan() || d <= step || self.cells.is_empty() {
            return;
        }
        let n = (d / step).ceil().min(10_000.0) as usize;
        for s in 1..n {
            let t = s as f64 / n as f64;
            self.mark(a.lat + (b.lat - a.lat) * t, a.lon + (b.lon - a.lon) * t);
        }
    }

    fn coverage(&self) -> Coverage {
        let planned = self.cells.iter().filter(|c| **c != Cell::Outside).count();
        let covered = self.cells.iter().filter(|c| **c == Cell::Covered).count();
        make_coverage(planned, covered, "cell")
    }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use ::geo::{LineString, Polygon};

    const T0: i64 = 1_750_000_000_000;

    /// A few-km walk around Velsen (IJmuiden), lon/lat vertices.
    fn polyline() -> Vec<(f64, f64)> {
        vec![
            (52.4599, 4.6218),
            (52.4640, 4.6240),
            (52.4660, 4.6320),
            (52.4630, 4.6400),
            (52.4580, 4.6380),
            (52.4560, 4.6290),
            (52.4575, 4.6215),
        ]
    }

    fn geodesic_m(a: (f64, f64), b: (f64, f64)) -> f64 {
        Geodesic.distance(Point::new(a.1, a.0), Point::new(b.1, b.0))
    }

    fn polyline_length(pl: &[(f64, f64)]) -> f64 {
        pl.iter()
            .zip(pl.iter().skip(1))
            .map(|(a, b)| geodesic_m(*a, *b))
            .sum()
    }

    /// Walks the polyline at `speed` m/s, one fix per `dt_s` seconds, starting
    /// at `t0`. Returns the points and the time each vertex was passed.
    fn walk(pl: &[(f64, f64)], speed: f64, dt_s: f64, t0: i64) -> (Vec<TrackPoint>, Vec<i64>) {
        let mut pts = Vec::new();
        let mut vertex_t = vec![t0];
        let mut t = 0.0_f64; // seconds since t0 of the next fix
        let mut seg_start_t = 0.0_f64;
        for (a, b) in pl.iter().zip(pl.iter().skip(1)) {
            let len = geodesic_m(*a, *b);
            let dur = len / speed;
            while t < seg_start_t + dur {
                let f = (t - seg_start_t) / dur;
                pts.push(TrackPoint {
                    lat: a.0 + (b.0 - a.0) * f,
                    lon: a.1 + (b.1 - a.1) * f,
                    t_ms: t0 + (t * 1000.0).round() as i64,
                    accuracy_m: Some(5.0),
                    speed_mps: Some(speed),
                });
                t += dt_s;
            }
            seg_start_t += dur;
            vertex_t.push(t0 + (seg_start_t * 1000.0).round() as i64);
        }
        if let Some(last) = pl.last() {
            pts.push(TrackPoint {
                lat: last.0,
                lon: last.1,
                t_ms: t0 + (seg_start_t * 1000.0).round() as i64,
                accuracy_m: Some(5.0),
                speed_mps: Some(0.0),
            });
        }
        (pts, vertex_t)
    }

    fn no_area(_: f64, _: f64) -> AreaCodes {
        (None, None)
    }

    fn tp(lat: f64, lon: f64, t_ms: i64, acc: Option<f64>) -> TrackPoint {
        TrackPoint {
            lat,
            lon,
            t_ms,
            accuracy_m: acc,
            speed_mps: None,
        }
    }

    fn cp(id: &str, lat: f64, lon: f64, r: f64) -> Checkpoint {
        Checkpoint {
            id: id.into(),
            name: format!("cp {id}"),
            lat,
            lon,
            radius_m: r,
        }
    }

    fn assert_invariant(s: &RoundStats) {
        assert_eq!(
            s.points_received,
            s.points_used + s.rejected_inaccurate + s.rejected_jumps + s.duplicates,
            "{s:?}"
        );
    }

    /// A simple straight walk east along 52.46 N, 1 fix/s at 1.4 m/s.
    fn straight(n: usize, t0: i64) -> Vec<TrackPoint> {
        let (_, k_lon) = metres_per_degree(52.46);
        (0..n)
            .map(|i| {
                tp(
                    52.46,
                    4.60 + 1.4 * i as f64 / k_lon,
                    t0 + 1000 * i as i64,
                    Some(5.0),
                )
            })
            .collect()
    }

    #[test]
    fn local_formula_matches_geodesic() {
        for (a, b) in [
            ((52.46, 4.62), (52.4601, 4.6201)),
            ((52.46, 4.62), (52.47, 4.62)),
            ((52.46, 4.62), (52.46, 4.66)),
            ((52.46, 4.62), (52.50, 4.70)),
        ] {
            let g = geodesic_m(a, b);
            let l = local_m(a.0, a.1, b.0, b.1);
            assert!(((l - g) / g).abs() < 1e-5, "{a:?} {b:?}: {l} vs {g}");
        }
    }

    #[test]
    fn generated_walk_out_of_order_segments() {
        let pl = polyline();
        let (pts, vt) = walk(&pl, 1.4, 1.0, T0);
        let n = pts.len();
        let (s1, rest) = pts.split_at(n / 3);
        let (s2, s3) = rest.split_at(n / 3);
        let v = |i: usize| *vt.get(i).unwrap();
        let checkpoints = vec![
            cp("start", pl[0].0, pl[0].1, 10.0),
            cp("v3", pl[3].0, pl[3].1, 10.0),
            cp("v2", pl[2].0, pl[2].1, 10.0),
            cp("far", 52.40, 4.55, 25.0),
        ];
        let s = derive(
            &[s3, s1, s2],
            &checkpoints,
            None,
            &Params::default(),
            &no_area,
        );
        assert_invariant(&s);
        assert_eq!(s.points_received, n);
        assert_eq!(s.points_used, n);
        assert_eq!(s.duplicates + s.rejected_jumps + s.rejected_inaccurate, 0);
        let len = polyline_length(&pl);
        assert!(len > 2500.0, "walk should be a few km: {len}");
        assert!(
            (s.distance_m - len).abs() / len < 0.01,
            "{} vs {}",
            s.distance_m,
            len
        );
        let expect_s = (v(pl.len() - 1) - T0) as f64 / 1000.0;
        assert!(
            (s.duration_s as f64 - expect_s).abs() <= 1.0,
            "{} vs {}",
            s.duration_s,
            expect_s
        );
        assert_eq!(s.started_at_ms, Some(T0));
        assert_eq!(s.ended_at_ms, Some(v(pl.len() - 1)));
        // Checkpoints in input order; reached ~10 m / 1.4 m/s before the vertex.
        let names: Vec<&str> = s.checkpoints.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(names, ["start", "v3", "v2", "far"]);
        assert_eq!(s.checkpoints[0].reached_at_ms, Some(T0));
        for (hit, vi) in [(&s.checkpoints[1], 3), (&s.checkpoints[2], 2)] {
            let at = hit.reached_at_ms.unwrap();
            let early = v(vi) - at;
            assert!(
                (6_000..=8_200).contains(&early),
                "{}: {early} ms early",
                hit.id
            );
        }
        assert_eq!(s.checkpoints[3].reached_at_ms, None);
        assert!(s.coverage.is_none());
    }

    #[test]
    fn inaccurate_far_point_is_ignored() {
        let mut pts = straight(100, T0);
        pts[50] = tp(52.46 + 0.045, 4.62, pts[50].t_ms, Some(2000.0));
        let clean = derive(
            &[&straight(100, T0)],
            &[],
            None,
            &Params::default(),
            &no_area,
        );
        let s = derive(&[&pts], &[], None, &Params::default(), &no_area);
        assert_invariant(&s);
        assert_eq!(s.rejected_inaccurate, 1);
        assert_eq!(s.rejected_jumps, 0);
        assert_eq!(s.points_used, 99);
        assert!((s.distance_m - clean.distance_m).abs() < 1e-6);
        assert_eq!(s.duration_s, clean.duration_s);
    }

    #[test]
    fn accurate_far_point_is_a_jump() {
        let mut pts = straight(100, T0);
        pts[50] = tp(52.46 + 0.045, 4.62, pts[50].t_ms, Some(5.0));
        let clean = derive(
            &[&straight(100, T0)],
            &[],
            None,
            &Params::default(),
            &no_area,
        );
        let s = derive(&[&pts], &[], None, &Params::default(), &no_area);
        assert_invariant(&s);
        assert_eq!(s.rejected_inaccurate, 0);
        assert_eq!(s.rejected_jumps, 1);
        assert_eq!(s.points_used, 99);
        assert!((s.distance_m - clean.distance_m).abs() < 1e-6);
        // A point without accuracy claim is guarded by the jump rule too.
        pts[50].accuracy_m = None;
        let s = derive(&[&pts], &[], None, &Params::default(), &no_area);
        assert_eq!(s.rejected_jumps, 1);
    }

    #[test]
    fn bad_first_point_is_dropped() {
        let mut pts = straight(100, T0);
        pts[0] = tp(52.50, 4.60, T0, Some(5.0)); // ~4.4 km north
        let s = derive(&[&pts], &[], None, &Params::default(), &no_area);
        assert_invariant(&s);
        assert_eq!(s.rejected_jumps, 1);
        assert_eq!(s.points_used, 99);
        assert_eq!(s.started_at_ms, Some(T0 + 1000));
        assert!((s.distance_m - 98.0 * 1.4).abs() < 0.01, "{}", s.distance_m);
        assert_eq!(s.duration_s, 98);
    }

    #[test]
    fn bad_first_cluster_is_dropped() {
        // Three cold-start fixes at the same wrong place (1.5 km off), then GPS.
        let mut pts = straight(100, T0);
        for p in pts.iter_mut().take(3) {
            p.lat = 52.4735;
            p.lon = 4.60;
        }
        let s = derive(&[&pts], &[], None, &Params::default(), &no_area);
        assert_invariant(&s);
        assert_eq!(s.rejected_jumps, 3);
        assert_eq!(s.points_used, 97);
        assert_eq!(s.started_at_ms, Some(T0 + 3000));
        assert!((s.distance_m - 96.0 * 1.4).abs() < 0.01, "{}", s.distance_m);
        assert_eq!(s.duration_s, 96);
    }

    #[test]
    fn bad_second_point_is_dropped_not_the_first() {
        let mut pts = straight(100, T0);
        pts[1] = tp(52.50, 4.60, T0 + 1000, Some(5.0));
        let s = derive(&[&pts], &[], None, &Params::default(), &no_area);
        assert_invariant(&s);
        assert_eq!(s.rejected_jumps, 1);
        assert_eq!(s.started_at_ms, Some(T0));
        assert_eq!(s.duration_s, 99);
    }

    #[test]
    fn relocation_is_followed_not_counted() {
        // 100 s walk, then 2 s later 3 km away (a ride with the phone on
        // would look the same), then 100 s walk there.
        let mut pts = straight(100, T0);
        let (_, k_lon) = metres_per_degree(52.50);
        pts.extend((0..100).map(|i| {
            tp(
                52.50,
                4.60 + 1.4 * i as f64 / k_lon,
                T0 + 101_000 + 1000 * i as i64,
                Some(5.0),
            )
        }));
        let s = derive(&[&pts], &[], None, &Params::default(), &no_area);
        assert_invariant(&s);
        assert_eq!(s.points_used, 200);
        assert_eq!(s.rejected_jumps, 0);
        assert!(
            (s.distance_m - 198.0 * 1.4).abs() < 0.05,
            "{}",
            s.distance_m
        );
        assert_eq!(s.duration_s, 198);
    }

    #[test]
    fn duplicates_from_resent_segment() {
        let pts = straight(300, T0);
        let (a, b) = pts.split_at(200);
        let resent = &pts[150..250]; // overlaps both
        let clean = derive(&[&pts], &[], None, &Params::default(), &no_area);
        let s = derive(&[b, resent, a, b], &[], None, &Params::default(), &no_area);
        assert_invariant(&s);
        assert_eq!(s.points_received, 300 + 100 + 100);
        assert_eq!(s.duplicates, 200);
        assert_eq!(s.points_used, 300);
        assert!((s.distance_m - clean.distance_m).abs() < 1e-6);
        assert_eq!(s.duration_s, clean.duration_s);
        assert_eq!(s, clean.clone_with_received(500, 200));
    }

    impl RoundStats {
        fn clone_with_received(&self, received: usize, dups: usize) -> RoundStats {
            let mut s = self.clone();
            s.points_received = received;
            s.duplicates = dups;
            s
        }
    }

    #[test]
    fn long_gap_not_counted() {
        let mut pts = straight(100, T0);
        // phone off for 10 minutes, then 100 more points nearby.
        let more: Vec<TrackPoint> = straight(100, T0 + 700_000);
        pts.extend(more);
        let s = derive(&[&pts], &[], None, &Params::default(), &no_area);
        assert_invariant(&s);
        assert_eq!(s.points_used, 200);
        assert_eq!(s.duration_s, 198);
        assert!((s.distance_m - 198.0 * 1.4).abs() < 0.05);
        // With a generous max_gap_s the gap counts.
        let p = Params {
            max_gap_s: 3600,
            ..Params::default()
        };
        let s = derive(&[&pts], &[], None, &p, &no_area);
        assert_eq!(s.duration_s, 99 + 601 + 99);
    }

    fn east_west(lat: f64, lon: f64) -> AreaCodes {
        let _ = lat;
        if lon < 4.6100 {
            (
                Some("WK_A".into()),
                Some(if lon < 4.605 { "BU_A1" } else { "BU_A2" }.into()),
            )
        } else {
            (Some("WK_B".into()), None)
        }
    }

    #[test]
    fn time_per_area() {
        // straight(): lon = 4.60 + 1.4 i / k_lon; crossing 4.61 at i ≈ 485.4.
        let pts = straight(1000, T0);
        let calls = std::cell::Cell::new(0usize);
        let locate = |lat: f64, lon: f64| {
            calls.set(calls.get() + 1);
            east_west(lat, lon)
        };
        let s = derive(&[&pts], &[], None, &Params::default(), &locate);
        assert_eq!(calls.get(), s.points_used);
        let (_, k_lon) = metres_per_degree(52.46);
        let cross_i = |lon: f64| ((lon - 4.60) * k_lon / 1.4).ceil(); // first index east
        let b_from = cross_i(4.61); // first point in B
        // Points 0..b_from-1 in A: A gets (b_from - 1) full gaps + half the crossing gap.
        let a_s = b_from - 1.0 + 0.5;
        let get = |v: &[AreaTime], c: &str| v.iter().find(|a| a.code == c).cloned().unwrap();
        let a = get(&s.per_wijk, "WK_A");
        let b = get(&s.per_wijk, "WK_B");
        assert!((a.seconds as f64 - a_s).abs() <= 1.0, "{a:?} vs {a_s}");
        assert!((b.seconds as f64 - (999.0 - a_s)).abs() <= 1.0, "{b:?}");
        // Per-area seconds are rounded separately: the sum may be off by one.
        assert!((a.seconds + b.seconds - s.duration_s).abs() <= 1);
        assert!((a.distance_m + b.distance_m - s.distance_m).abs() < 1e-6);
        assert!((a.distance_m - a_s * 1.4).abs() < 1.0);
        // Sorted by seconds desc.
        assert!(s.per_wijk[0].seconds >= s.per_wijk[1].seconds);
        let a1 = get(&s.per_buurt, "BU_A1");
        let a2 = get(&s.per_buurt, "BU_A2");
        assert!((a1.seconds + a2.seconds - a.seconds).abs() <= 1);
        assert_eq!(s.per_buurt.len(), 2);
    }

    #[test]
    fn coverage_areas() {
        let pts = straight(1000, T0); // ~485 s in WK_A, ~514 s in WK_B
        let planned = PlannedArea::Areas(vec![
            "WK_A".into(),
            "BU_A1".into(),
            "BU_A2".into(),
            "WK_C".into(),
            "WK_A".into(), // duplicate entry counts once
        ]);
        let s = derive(&[&pts], &[], Some(&planned), &Params::default(), &east_west);
        let c = s.coverage.unwrap();
        assert_eq!((c.planned, c.covered, c.unit.as_str()), (4, 3, "area"));
        assert!((c.fraction - 0.75).abs() < 1e-12);
        // Only 40 s in WK_A/BU_A1: not covered.
        let s = derive(
            &[&pts[..41]],
            &[],
            Some(&planned),
            &Params::default(),
            &east_west,
        );
        let c = s.coverage.unwrap();
        assert_eq!(c.covered, 0);
    }

    #[test]
    fn coverage_polygon() {
        // A 1 km (E-W) x 500 m (N-S) rectangle starting at the walk's start.
        let (k_lat, k_lon) = metres_per_degree(52.46);
        let (lat0, lon0) = (52.46 - 250.0 / k_lat, 4.60);
        let (lat1, lon1) = (52.46 + 250.0 / k_lat, 4.60 + 1000.0 / k_lon);
        let ring = LineString::from(vec![
            (lon0, lat0),
            (lon1, lat0),
            (lon1, lat1),
            (lon0, lat1),
            (lon0, lat0),
        ]);
        let planned = PlannedArea::Polygon(MultiPolygon::new(vec![Polygon::new(ring, vec![])]));
        // Walk 1.4 km east along the middle: crosses the full width, one row.
        let pts = straight(1000, T0);
        let s = derive(&[&pts], &[], Some(&planned), &Params::default(), &no_area);
        let c = s.coverage.unwrap();
        assert_eq!(c.unit, "cell");
        assert!((45..=55).contains(&c.planned), "{c:?}");
        assert_eq!(c.covered, 10, "{c:?}");
        // Sparse fixes (every 100 s at 1.4 m/s = 140 m): hops are interpolated.
        let sparse: Vec<TrackPoint> = pts.iter().step_by(100).copied().collect();
        let s = derive(
            &[&sparse],
            &[],
            Some(&planned),
            &Params::default(),
            &no_area,
        );
        assert_eq!(s.coverage.unwrap().covered, 10);
        // Empty polygon: nothing planned, no NaN.
        let empty = PlannedArea::Polygon(MultiPolygon::new(vec![]));
        let s = derive(&[&pts], &[], Some(&empty), &Params::default(), &no_area);
        let c = s.coverage.unwrap();
        assert_eq!((c.planned, c.covered, c.fraction), (0, 0, 0.0));
    }

    #[test]
    fn empty_and_garbage_input() {
        let s = derive(
            &[],
            &[cp("x", 52.0, 4.0, 10.0)],
            None,
            &Params::default(),
            &no_area,
        );
        assert_eq!(s.points_used, 0);
        assert_eq!(s.started_at_ms, None);
        assert_eq!(s.checkpoints.len(), 1);
        let garbage = [
            tp(f64::NAN, 4.6, T0, None),
            tp(95.0, 4.6, T0 + 1, None),
            tp(52.0, 4.6, T0 + 2, Some(f64::NAN)),
            tp(52.0, 4.6, i64::MAX, None),
            tp(52.0, 4.6, i64::MIN, None),
            tp(52.0, -179.9999, T0 + 3, None),
            tp(52.0, 179.9999, T0 + 4, None),
        ];
        let s = derive(&[&garbage], &[], None, &Params::default(), &no_area);
        assert_invariant(&s);
        assert_eq!(s.rejected_inaccurate, 3);
    }

    /// Timing of the acceptance case: 7,200 points (2 h at 1 Hz, walking
    /// 1.4 m/s) in 3 out-of-order segments, 10 checkpoints, a `locate` costing
    /// ~1 µs. Run with
    /// `cargo test --release --lib -- --ignored --nocapture bench_7200`.
    #[test]
    #[ignore]
    fn bench_7200() {
        use std::hint::black_box;
        use std::time::{Duration, Instant};
        // A 2 h loop: repeat the polyline (and back) until 7,200 points.
        let mut pl = polyline();
        let back: Vec<(f64, f64)> = pl.iter().rev().skip(1).copied().collect();
        pl.extend(back.iter().copied());
        pl.extend(polyline().into_iter().skip(1));
        pl.extend(back);
        let (mut pts, _) = walk(&pl, 1.4, 1.0, T0);
        pts.truncate(7200);
        assert_eq!(pts.len(), 7200);
        let (a, rest) = pts.split_at(2500);
        let (b, c) = rest.split_at(2500);
        let segs: [&[TrackPoint]; 3] = [c, a, b];
        let checkpoints: Vec<Checkpoint> = (0..10)
            .map(|i| {
                let p = pts[i * 700];
                cp(&format!("cp{i}"), p.lat + 0.0001, p.lon, 25.0)
            })
            .collect();
        let locate = |lat: f64, lon: f64| -> AreaCodes {
            let start = Instant::now();
            while start.elapsed() < Duration::from_nanos(1000) {
                std::hint::spin_loop();
            }
            east_west(black_box(lat), black_box(lon))
        };
        let (k_lat, k_lon) = metres_per_degree(52.46);
        let ring = LineString::from(vec![
            (4.60, 52.44),
            (4.60 + 4000.0 / k_lon, 52.44),
            (4.60 + 4000.0 / k_lon, 52.44 + 4000.0 / k_lat),
            (4.60, 52.44 + 4000.0 / k_lat),
            (4.60, 52.44),
        ]);
        let poly = PlannedArea::Polygon(MultiPolygon::new(vec![Polygon::new(ring, vec![])]));
        let areas = PlannedArea::Areas(vec!["WK_A".into(), "WK_B".into()]);
        let p = Params::default();

        for (label, planned) in [
            ("no plan", None),
            ("areas", Some(&areas)),
            ("polygon 4x4 km", Some(&poly)),
        ] {
            let mut times = Vec::new();
            let mut last = None;
            for _ in 0..50 {
                let t = Instant::now();
                let s = derive(black_box(&segs), &checkpoints, planned, &p, &locate);
                times.push(t.elapsed().as_secs_f64() * 1e3);
                last = Some(s);
            }
            times.sort_by(f64::total_cmp);
            let s = last.unwrap();
            assert_eq!(s.points_used, 7200);
            assert!(s.checkpoints.iter().all(|c| c.reached_at_ms.is_some()));
            println!(
                "derive 7200 pts, 10 cps, {label}: median {:.2} ms (min {:.2}, max {:.2}); distance {:.0} m, duration {} s",
                times[25], times[0], times[49], s.distance_m, s.duration_s
            );
        }

        // Cost of the 7,200 locate calls alone, for reference.
        let t = Instant::now();
        for f in &pts {
            black_box(locate(f.lat, f.lon));
        }
        println!("locate alone: {:.2} ms", t.elapsed().as_secs_f64() * 1e3);

        // Distance formula: local vs Geodesic over the same hops.
        let t = Instant::now();
        let mut g = 0.0;
        for (a, b) in pts.iter().zip(pts.iter().skip(1)) {
            g += black_box(Geodesic.distance(Point::new(a.lon, a.lat), Point::new(b.lon, b.lat)));
        }
        let tg = t.elapsed();
        let t = Instant::now();
        let mut l = 0.0;
        for (a, b) in pts.iter().zip(pts.iter().skip(1)) {
            l += black_box(local_m(a.lat, a.lon, b.lat, b.lon));
        }
        let tl = t.elapsed();
        println!(
            "7199 hops: Geodesic {:.2} ms = {g:.3} m; local {:.3} ms = {l:.3} m; rel diff {:.2e}",
            tg.as_secs_f64() * 1e3,
            tl.as_secs_f64() * 1e3,
            (l - g).abs() / g
        );
    }
}
