//! Patrol rounds (surveillancerondes): what the server derives from a round's GPS track
//! segments — distance, time on patrol, time per wijk and buurt, checkpoints reached, coverage
//! of the planned area. The records themselves (rounds, segments) are field records
//! (`records::kinds`); the derivation (`derive.rs`) is pure.

pub mod derive;
pub mod routes;

use serde_json::{Map, Value};

use crate::records::{list, text};
use crate::reference::Reference;
use derive::{Checkpoint, Params, PlannedArea, RoundStats, TrackPoint};

/// A track point from its wire form `[lat, lon, t_ms, accuracy_m|null, speed_mps|null]`.
pub fn point(v: &Value) -> Option<TrackPoint> {
    let a = v.as_array()?;
    let lat = a.first()?.as_f64()?;
    let lon = a.get(1)?.as_f64()?;
    let t = a.get(2)?.as_f64()?;
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) || t.fract() != 0.0 {
        return None;
    }
    let opt = |i: usize| -> Option<Option<f64>> {
        match a.get(i) {
            None | Some(Value::Null) => Some(None),
            Some(x) => x.as_f64().filter(|f| f.is_finite() && *f >= 0.0).map(Some),
        }
    };
    Some(TrackPoint {
        lat,
        lon,
        t_ms: t as i64,
        accuracy_m: opt(3)?,
        speed_mps: opt(4)?,
    })
}

/// The statistics of a round from its document and its segments' documents (pure).
pub fn stats(
    round: &Map<String, Value>,
    segments: &[&Map<String, Value>],
    reference: &Reference,
    params: &Params,
) -> RoundStats {
    let tracks: Vec<Vec<TrackPoint>> = segments
        .iter()
        .map(|s| list(s, "points").iter().filter_map(point).collect())
        .collect();
    let slices: Vec<&[TrackPoint]> = tracks.iter().map(Vec::as_slice).collect();
    let checkpoints: Vec<Checkpoint> = list(round, "checkpoints")
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            Some(Checkpoint {
                id: c
                    .get("id")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{}", i + 1)),
                name: c.get("name")?.as_str()?.to_string(),
                lat: c.get("lat")?.as_f64()?,
                lon: c.get("lon")?.as_f64()?,
                radius_m: c.get("radius_m")?.as_f64()?,
            })
        })
        .collect();
    let codes: Vec<String> = list(round, "area_codes")
        .iter()
        .filter_map(|c| c.as_str().map(str::to_string))
        .collect();
    let planned = match text(round, "area_polygon").filter(|g| !g.is_empty()) {
        Some(g) => crate::geo::parse_shape(g).ok().map(PlannedArea::Polygon),
        None if !codes.is_empty() => Some(PlannedArea::Areas(codes)),
        None => None,
    };
    let locate = |lat: f64, lon: f64| {
        let l = reference.areas.locate(lat, lon);
        (
            l.wijk.map(|a| a.code.clone()),
            l.buurt.map(|a| a.code.clone()),
        )
    };
    derive::derive(&slices, &checkpoints, planned.as_ref(), params, &locate)
}
