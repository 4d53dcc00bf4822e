//! Reference data: Velsen's wijken and buurten, the violation categories and the feitcodes.
//!
//! A **feitcode** is the national code of an offence (e.g. `R397a` parking, `H004` waste put
//! out too early, `F145a` dog off the lead); which legal track (Wahv, bestuurlijke
//! strafbeschikking, …) the municipality handles it on is reference data, versioned by date.
//!
//! The data ships in `fixtures/` (embedded in the binary, so a fresh machine needs nothing else)
//! and is upserted on every migrate; the server keeps an in-memory copy for validation and the
//! area lookup.

pub mod entities;
pub mod load;
pub mod routes;

use std::collections::HashMap;

use chrono::NaiveDate;

use crate::geo::AreaIndex;
use entities::{category, feitcode};

/// Attribution the CBS terms require wherever the boundaries are shown or served.
pub const AREA_ATTRIBUTION: &str = "Kadaster / Centraal Bureau voor de Statistiek, 2024";

/// The legal tracks a feitcode can be handled on.
pub const TRACKS: &[&str] = &[
    "wahv",
    "bsb",
    "bboor",
    "naheffing",
    "bestuursdwang",
    "warning_only",
];

/// Tracks on which a BOA can write a fine on the spot.
pub fn track_allows_fine(track: &str) -> bool {
    matches!(track, "wahv" | "bsb" | "bboor" | "naheffing")
}

pub struct Reference {
    pub areas: AreaIndex,
    pub categories: Vec<category::Model>,
    /// All versions of all feitcodes, ordered by code and valid-from date.
    pub feitcodes: Vec<feitcode::Model>,
    /// Index into `feitcodes`: code → the positions of its versions.
    feitcode_versions: HashMap<String, Vec<usize>>,
    /// The areas as a GeoJSON FeatureCollection, serialised once.
    pub areas_geojson: axum::body::Bytes,
    /// The review rule reports are judged by beside the reference data (configuration, not
    /// fixtures: `THOR_FOUR_EYES`, set when the server starts): a teamleider may not review a
    /// report they created or are named on. It lives here because every write path of a
    /// report (REST, the lead's page, the sync push, the demo) already carries the reference.
    pub four_eyes: bool,
}

impl Reference {
    pub fn new(
        areas: AreaIndex,
        categories: Vec<category::Model>,
        feitcodes: Vec<feitcode::Model>,
        areas_geojson: axum::body::Bytes,
    ) -> Reference {
        let mut feitcode_versions: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, f) in feitcodes.iter().enumerate() {
            feitcode_versions.entry(f.code.clone()).or_default().push(i);
        }
        Reference {
            areas,
            categories,
            feitcodes,
            feitcode_versions,
            areas_geojson,
            four_eyes: true,
        }
    }

    pub fn category(&self, code: &str) -> Option<&category::Model> {
        self.categories.iter().find(|c| c.code == code)
    }

    /// The version of a feitcode in force on a date.
    pub fn feitcode_on(&self, code: &str, date: NaiveDate) -> Option<&feitcode::Model> {
        self.feitcode_versions
            .get(code)?
            .iter()
            .map(|i| &self.feitcodes[*i])
            .filter(|f| f.valid_from <= date && f.valid_until.is_none_or(|u| date < u))
            .max_by_key(|f| f.valid_from)
    }

    pub fn feitcode_known(&self, code: &str) -> bool {
        self.feitcode_versions.contains_key(code)
    }
}
