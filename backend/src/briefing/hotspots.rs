//! Hotspots: density clusters of violations (DBSCAN over geodesic distance), named by the buurt
//! most of their reports lie in, and whether a patrol round passed them. Pure.

use rstar::{AABB, RTree, RTreeObject};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Neighbourhood radius of the clustering, in metres.
pub const EPS_M: f64 = 75.0;
/// Reports within `EPS_M` (itself included) that make a core point.
pub const MIN_POINTS: usize = 4;

/// A cluster of violations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Hotspot {
    /// The buurt most of its reports lie in (code and name), when inside Velsen.
    pub buurt_code: Option<String>,
    pub buurt_name: Option<String>,
    pub lat: f64,
    pub lon: f64,
    /// Metres from the centre to the farthest report.
    pub radius_m: f64,
    pub count: usize,
    /// The most frequent category.
    pub top_category: String,
    /// Whether a round's track passed within `EPS_M` of the centre or a report of it.
    pub covered_by_round: bool,
    /// Reports at the same place (within its radius, at least `EPS_M`) in the 365 days before
    /// the window, as far as the reader may see them: a high number is a repeat location.
    #[serde(default)]
    pub earlier_reports: u64,
}

#[derive(Clone, Copy)]
struct Indexed {
    i: usize,
    x: f64,
    y: f64,
}

impl RTreeObject for Indexed {
    type Envelope = AABB<[f64; 2]>;
    fn envelope(&self) -> Self::Envelope {
        AABB::from_point([self.x, self.y])
    }
}

impl rstar::PointDistance for Indexed {
    fn distance_2(&self, p: &[f64; 2]) -> f64 {
        (self.x - p[0]).powi(2) + (self.y - p[1]).powi(2)
    }
}

/// Local metres around a reference latitude (equirectangular; fine over a municipality).
fn project(lat: f64, lon: f64, lat0: f64) -> (f64, f64) {
    let k = 111_320.0;
    (lon * k * lat0.to_radians().cos(), lat * k)
}

/// DBSCAN over `(lat, lon)` points: a cluster label per point (`None` = noise). Distances are
/// taken in locally projected metres (equirectangular around the points' mean latitude: off by
/// far less than a metre at these distances), with neighbours found through an R-tree.
pub fn dbscan(points: &[(f64, f64)], eps_m: f64, min_points: usize) -> Vec<Option<usize>> {
    let n = points.len();
    let mut labels: Vec<Option<usize>> = vec![None; n];
    if n == 0 {
        return labels;
    }
    let lat0 = points.iter().map(|p| p.0).sum::<f64>() / n as f64;
    let xy: Vec<(f64, f64)> = points.iter().map(|p| project(p.0, p.1, lat0)).collect();
    let tree = RTree::bulk_load(
        xy.iter()
            .enumerate()
            .map(|(i, &(x, y))| Indexed { i, x, y })
            .collect(),
    );
    let eps2 = eps_m * eps_m;
    let neighbours = |i: usize, out: &mut Vec<usize>| {
        out.clear();
        let (x, y) = xy[i];
        out.extend(tree.locate_within_distance([x, y], eps2).map(|o| o.i));
    };
    let mut visited = vec![false; n];
    let mut queued = vec![false; n];
    let mut cluster = 0;
    let mut nb = Vec::new();
    let mut queue = Vec::new();
    for i in 0..n {
        if visited[i] {
            continue;
        }
        visited[i] = true;
        neighbours(i, &mut nb);
        if nb.len() < min_points {
            continue;
        }
        labels[i] = Some(cluster);
        queue.clear();
        for &j in &nb {
            if !queued[j] {
                queued[j] = true;
                queue.push(j);
            }
        }
        while let Some(j) = queue.pop() {
            if labels[j].is_none() {
                labels[j] = Some(cluster);
            }
            if visited[j] {
                continue;
            }
            visited[j] = true;
            neighbours(j, &mut nb);
            if nb.len() >= min_points {
                for &k in &nb {
                    if !queued[k] {
                        queued[k] = true;
                        queue.push(k);
                    }
                }
            }
        }
        cluster += 1;
    }
    labels
}

/// A violation as the hotspot finder sees it.
pub struct Spot<'a> {
    pub lat: f64,
    pub lon: f64,
    pub category: &'a str,
    pub buurt: Option<&'a str>,
}

/// The hotspots of a set of violations, largest first. `buurt_name` names a buurt code;
/// `tracks` are the rounds' accepted fixes `(lat, lon)`.
pub fn hotspots(
    spots: &[Spot<'_>],
    tracks: &[Vec<(f64, f64)>],
    buurt_name: &dyn Fn(&str) -> Option<String>,
) -> Vec<Hotspot> {
    let pts: Vec<(f64, f64)> = spots.iter().map(|s| (s.lat, s.lon)).collect();
    let labels = dbscan(&pts, EPS_M, MIN_POINTS);
    let clusters = labels.iter().flatten().max().map(|m| m + 1).unwrap_or(0);
    let mut members: Vec<Vec<usize>> = vec![vec![]; clusters];
    for (i, l) in labels.iter().enumerate() {
        if let Some(c) = l {
            members[*c].push(i);
        }
    }
    // The track fixes near any cluster, found through one R-tree of all fixes.
    let lat0 = if pts.is_empty() {
        52.46
    } else {
        pts.iter().map(|p| p.0).sum::<f64>() / pts.len() as f64
    };
    // Only fixes near a clustered report can cover a hotspot: index just those.
    let clustered: Vec<(f64, f64)> = labels
        .iter()
        .enumerate()
        .filter(|(_, l)| l.is_some())
        .map(|(i, _)| project(pts[i].0, pts[i].1, lat0))
        .collect();
    let reach = EPS_M * 2.0;
    let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for &(x, y) in &clustered {
        x0 = x0.min(x - reach);
        y0 = y0.min(y - reach);
        x1 = x1.max(x + reach);
        y1 = y1.max(y + reach);
    }
    let fixes: Vec<Indexed> = if clustered.is_empty() {
        vec![]
    } else {
        tracks
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, p)| {
                let (x, y) = project(p.0, p.1, lat0);
                Indexed { i, x, y }
            })
            .filter(|f| f.x >= x0 && f.x <= x1 && f.y >= y0 && f.y <= y1)
            .collect()
    };
    let fix_tree = RTree::bulk_load(fixes);
    let mut out: Vec<Hotspot> = members
        .into_iter()
        .filter(|m| !m.is_empty())
        .map(|m| {
            let count = m.len();
            let lat = m.iter().map(|&i| pts[i].0).sum::<f64>() / count as f64;
            let lon = m.iter().map(|&i| pts[i].1).sum::<f64>() / count as f64;
            let radius_m = m
                .iter()
                .map(|&i| crate::geo::distance_m((lat, lon), pts[i]))
                .fold(0.0, f64::max);
            let mut cats: Vec<(&str, usize)> = Vec::new();
            let mut buurten: Vec<(&str, usize)> = Vec::new();
            for &i in &m {
                bump(&mut cats, spots[i].category);
                if let Some(b) = spots[i].buurt {
                    bump(&mut buurten, b);
                }
            }
            let top = |v: &mut Vec<(&str, usize)>| {
                v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
                v.first().map(|x| x.0.to_string())
            };
            let buurt_code = top(&mut buurten);
            let reach = radius_m + EPS_M;
            let (cx, cy) = project(lat, lon, lat0);
            let env = AABB::from_corners([cx - reach, cy - reach], [cx + reach, cy + reach]);
            let member_tree = RTree::bulk_load(
                m.iter()
                    .map(|&i| {
                        let (x, y) = project(pts[i].0, pts[i].1, lat0);
                        Indexed { i, x, y }
                    })
                    .collect(),
            );
            let covered_by_round = fix_tree.locate_in_envelope(&env).any(|f| {
                member_tree
                    .locate_within_distance([f.x, f.y], EPS_M * EPS_M)
                    .next()
                    .is_some()
            });
            Hotspot {
                buurt_name: buurt_code.as_deref().and_then(buurt_name),
                buurt_code,
                lat: (lat * 1e6).round() / 1e6,
                lon: (lon * 1e6).round() / 1e6,
                radius_m: radius_m.round(),
                count,
                top_category: top(&mut cats).unwrap_or_default(),
                covered_by_round,
                earlier_reports: 0,
            }
        })
        .collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then(a.lat.total_cmp(&b.lat)));
    out
}

fn bump<'a>(v: &mut Vec<(&'a str, usize)>, k: &'a str) {
    match v.iter_mut().find(|x| x.0 == k) {
        Some(x) => x.1 += 1,
        None => v.push((k, 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(north_m: f64, east_m: f64) -> (f64, f64) {
        (
            52.46 + north_m / 111_195.0,
            4.62 + east_m / (111_195.0 * 52.46f64.to_radians().cos()),
        )
    }

    #[test]
    fn two_dense_groups_and_noise() {
        let mut pts = Vec::new();
        for i in 0..6 {
            pts.push(at(i as f64 * 10.0, 0.0)); // a line of 6, 10 m apart
        }
        for i in 0..5 {
            pts.push(at(1000.0, i as f64 * 15.0)); // 5 more, 1 km north
        }
        pts.push(at(-2000.0, 0.0)); // alone
        let labels = dbscan(&pts, 75.0, 4);
        assert!(labels[..6].iter().all(|l| *l == Some(0)));
        assert!(labels[6..11].iter().all(|l| *l == Some(1)));
        assert_eq!(labels[11], None);
    }

    #[test]
    fn hotspots_are_named_and_checked_against_tracks() {
        let pts: Vec<(f64, f64)> = (0..5).map(|i| at(i as f64 * 5.0, 0.0)).collect();
        let far: Vec<(f64, f64)> = (0..4).map(|i| at(3000.0, i as f64 * 5.0)).collect();
        let spots: Vec<Spot> = pts
            .iter()
            .map(|p| Spot {
                lat: p.0,
                lon: p.1,
                category: "afval",
                buurt: Some("BU1"),
            })
            .chain(far.iter().map(|p| Spot {
                lat: p.0,
                lon: p.1,
                category: "honden",
                buurt: Some("BU2"),
            }))
            .collect();
        let track = vec![at(-30.0, 20.0), at(-10.0, 20.0)];
        let name = |c: &str| Some(format!("Buurt {c}"));
        let h = hotspots(&spots, &[track], &name);
        assert_eq!(h.len(), 2);
        assert_eq!(h[0].count, 5);
        assert_eq!(h[0].buurt_name.as_deref(), Some("Buurt BU1"));
        assert_eq!(h[0].top_category, "afval");
        assert!(h[0].covered_by_round);
        assert!(!h[1].covered_by_round);
    }
}
