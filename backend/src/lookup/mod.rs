//! Lookups at the spot in open government data, both optional and neither ever blocking a
//! report: the vehicle behind a kenteken (RDW open data, dataset "Gekentekende voertuigen",
//! `m9d7-ebf2`) so the officer sees the plate belongs to the car in front of them, and the
//! nearest address of a position (PDOK Locatieserver, BAG) for the documents of a case.
//!
//! Each has a configurable base URL (`THOR_RDW_URL`, `THOR_PDOK_URL`; empty switches it off), a
//! short timeout, and a cache: vehicles in memory for a day, addresses in the database (so a
//! document rendered again says the same). Without an answer the result says "not checked" and
//! why; the wijk and buurt from thor's own geometry stand in for the address.

pub mod kenteken;
pub mod routes;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, Set};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How long a lookup may take before the answer is "not checked".
pub const TIMEOUT: Duration = Duration::from_secs(3);
/// How long a vehicle's answer is kept.
const VEHICLE_TTL: Duration = Duration::from_secs(24 * 3600);
/// Vehicles kept at most (a day's plates of a team are a few hundred).
const VEHICLE_CACHE_MAX: usize = 10_000;
/// How far the nearest address may be from the position, in metres.
const ADDRESS_WITHIN_M: u32 = 75;

/// A vehicle as the RDW registers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Vehicle {
    pub merk: Option<String>,
    pub handelsbenaming: Option<String>,
    pub eerste_kleur: Option<String>,
    pub voertuigsoort: Option<String>,
}

/// What a lookup found.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Checked {
    /// The source answered with this.
    Found,
    /// The source answered: it has nothing for it.
    NotFound,
    /// No answer (switched off, timed out, an error, not a Dutch plate): the report goes on.
    NotChecked,
}

/// A kenteken looked up.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VehicleCheck {
    /// The plate as typed, in letters and digits.
    pub kenteken: String,
    /// Written with its dashes, for a Dutch plate.
    pub written: Option<String>,
    pub sidecode: Option<u8>,
    pub checked: Checked,
    pub vehicle: Option<Vehicle>,
    /// Why it was not checked.
    pub reason: Option<String>,
}

/// An address looked up.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AddressCheck {
    pub checked: Checked,
    /// "Kennemerlaan 12, 1972EA IJmuiden".
    pub address: Option<String>,
    /// Metres from the position.
    pub distance_m: Option<f64>,
    /// From thor's own geometry, always there inside Velsen.
    pub buurt: Option<String>,
    pub wijk: Option<String>,
    pub reason: Option<String>,
}

pub struct Lookups {
    http: reqwest::Client,
    rdw: Option<String>,
    pdok: Option<String>,
    vehicles: Mutex<HashMap<String, (Instant, Option<Vehicle>)>>,
}

fn base(url: Option<&str>) -> Option<String> {
    url.map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| u.trim_end_matches('/').to_string())
}

pub mod entity {
    use sea_orm::entity::prelude::*;

    /// The nearest address of a position (rounded to 1e-5 degrees, about a metre), as the
    /// Locatieserver answered it once.
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "address_cache")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub lat_e5: i32,
        #[sea_orm(primary_key, auto_increment = false)]
        pub lon_e5: i32,
        pub address: Option<String>,
        pub distance_m: Option<f64>,
        pub looked_up_at: DateTimeUtc,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

impl Lookups {
    /// The lookups with their HTTP client; fails (at start-up) when the client cannot be built,
    /// rather than running without its timeout.
    pub fn new(rdw: Option<&str>, pdok: Option<&str>) -> anyhow::Result<Lookups> {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .user_agent(concat!(
                "thor/",
                env!("CARGO_PKG_VERSION"),
                " (gemeente Velsen)"
            ))
            .build()?;
        Ok(Lookups {
            http,
            rdw: base(rdw),
            pdok: base(pdok),
            vehicles: Mutex::new(HashMap::new()),
        })
    }

    /// The vehicle behind a plate, from the cache or the RDW.
    pub async fn vehicle(&self, raw: &str) -> VehicleCheck {
        let typed = kenteken::letters_and_digits(raw);
        let Some(k) = kenteken::parse(raw) else {
            return VehicleCheck {
                kenteken: typed,
                written: None,
                sidecode: None,
                checked: Checked::NotChecked,
                vehicle: None,
                reason: Some("not a Dutch kenteken (no sidecode fits)".into()),
            };
        };
        let answer = |checked, vehicle, reason| VehicleCheck {
            kenteken: k.key.clone(),
            written: Some(k.written.clone()),
            sidecode: Some(k.sidecode),
            checked,
            vehicle,
            reason,
        };
        let cached = self.vehicles.lock().ok().and_then(|c| {
            c.get(&k.key)
                .filter(|(at, _)| at.elapsed() < VEHICLE_TTL)
                .map(|(_, v)| v.clone())
        });
        if let Some(v) = cached {
            return match v {
                Some(v) => answer(Checked::Found, Some(v), None),
                None => answer(Checked::NotFound, None, None),
            };
        }
        let Some(rdw) = &self.rdw else {
            return answer(
                Checked::NotChecked,
                None,
                Some("the RDW lookup is switched off (THOR_RDW_URL)".into()),
            );
        };
        let Ok(url) = url::Url::parse_with_params(
            &format!("{rdw}/resource/m9d7-ebf2.json"),
            [("kenteken", k.key.as_str())],
        ) else {
            return answer(
                Checked::NotChecked,
                None,
                Some("THOR_RDW_URL is not a URL".into()),
            );
        };
        let res = self.http.get(url).send().await;
        let rows: Result<Vec<Vehicle>, String> = match res {
            Err(e) if e.is_timeout() => Err("the RDW did not answer in time".into()),
            Err(_) => Err("the RDW could not be reached".into()),
            Ok(r) if !r.status().is_success() => {
                Err(format!("the RDW answered {}", r.status().as_u16()))
            }
            Ok(r) => r
                .json::<Vec<Vehicle>>()
                .await
                .map_err(|_| "the RDW's answer could not be read".to_string()),
        };
        match rows {
            Err(reason) => {
                tracing::warn!(%reason, "kenteken lookup not checked");
                answer(Checked::NotChecked, None, Some(reason))
            }
            Ok(rows) => {
                let v = rows.into_iter().next();
                if let Ok(mut c) = self.vehicles.lock() {
                    if c.len() >= VEHICLE_CACHE_MAX {
                        c.retain(|_, (at, _)| at.elapsed() < VEHICLE_TTL);
                        if c.len() >= VEHICLE_CACHE_MAX {
                            c.clear();
                        }
                    }
                    c.insert(k.key.clone(), (Instant::now(), v.clone()));
                }
                match v {
                    Some(v) => answer(Checked::Found, Some(v), None),
                    None => answer(Checked::NotFound, None, None),
                }
            }
        }
    }

    /// The nearest address of a position: the database's cache, else the Locatieserver (and
    /// then the cache); the wijk and buurt come from thor's own geometry either way.
    pub async fn address<C: ConnectionTrait>(
        &self,
        conn: &C,
        reference: &crate::reference::Reference,
        lat: f64,
        lon: f64,
    ) -> AddressCheck {
        let located = reference.areas.locate(lat, lon);
        let (buurt, wijk) = (
            located.buurt.map(|a| a.name.clone()),
            located.wijk.map(|a| a.name.clone()),
        );
        let answer = |checked, address, distance_m, reason| AddressCheck {
            checked,
            address,
            distance_m,
            buurt: buurt.clone(),
            wijk: wijk.clone(),
            reason,
        };
        if !(lat.is_finite() && lon.is_finite()) {
            return answer(Checked::NotChecked, None, None, Some("no position".into()));
        }
        let key = ((lat * 1e5).round() as i32, (lon * 1e5).round() as i32);
        if let Ok(Some(hit)) = entity::Entity::find_by_id(key).one(conn).await {
            return match hit.address {
                Some(a) => answer(Checked::Found, Some(a), hit.distance_m, None),
                None => answer(Checked::NotFound, None, None, None),
            };
        }
        let Some(pdok) = &self.pdok else {
            return answer(
                Checked::NotChecked,
                None,
                None,
                Some("the address lookup is switched off (THOR_PDOK_URL)".into()),
            );
        };
        #[derive(Deserialize)]
        struct Doc {
            weergavenaam: Option<String>,
            afstand: Option<f64>,
        }
        #[derive(Deserialize)]
        struct Inner {
            docs: Vec<Doc>,
        }
        #[derive(Deserialize)]
        struct Answer {
            response: Inner,
        }
        let Ok(url) = url::Url::parse_with_params(
            &format!("{pdok}/bzk/locatieserver/search/v3_1/reverse"),
            [
                ("lat", format!("{lat:.6}")),
                ("lon", format!("{lon:.6}")),
                ("type", "adres".to_string()),
                ("rows", "1".to_string()),
                ("distance", ADDRESS_WITHIN_M.to_string()),
            ],
        ) else {
            return answer(
                Checked::NotChecked,
                None,
                None,
                Some("THOR_PDOK_URL is not a URL".into()),
            );
        };
        let res = self.http.get(url).send().await;
        let found: Result<Option<(String, Option<f64>)>, String> = match res {
            Err(e) if e.is_timeout() => Err("the Locatieserver did not answer in time".into()),
            Err(_) => Err("the Locatieserver could not be reached".into()),
            Ok(r) if !r.status().is_success() => Err(format!(
                "the Locatieserver answered {}",
                r.status().as_u16()
            )),
            Ok(r) => r
                .json::<Answer>()
                .await
                .map(|a| {
                    a.response
                        .docs
                        .into_iter()
                        .find_map(|d| d.weergavenaam.map(|n| (n, d.afstand)))
                })
                .map_err(|_| "the Locatieserver's answer could not be read".to_string()),
        };
        match found {
            Err(reason) => {
                tracing::warn!(%reason, "address lookup not checked");
                answer(Checked::NotChecked, None, None, Some(reason))
            }
            Ok(hit) => {
                let row = entity::ActiveModel {
                    lat_e5: Set(key.0),
                    lon_e5: Set(key.1),
                    address: Set(hit.as_ref().map(|h| h.0.clone())),
                    distance_m: Set(hit.as_ref().and_then(|h| h.1)),
                    looked_up_at: Set(chrono::Utc::now()),
                };
                // Two lookups of one spot at once: the second insert fails, the answer stands.
                // Any failure only costs a lookup next time; it is logged, not hidden.
                if let Err(e) = row.insert(conn).await {
                    tracing::debug!(error = %e, "address not cached");
                }
                match hit {
                    Some((a, d)) => answer(Checked::Found, Some(a), d, None),
                    None => answer(Checked::NotFound, None, None, None),
                }
            }
        }
    }
}

/// How far back the repeat check looks by default, in months.
pub const REPEAT_MONTHS: u32 = 12;
/// What counts as the same spot, in metres.
pub const SAME_SPOT_M: f64 = 25.0;

/// What the repeat check asks by.
pub enum By {
    Kenteken(String),
    /// `(lat, lon)`: within [`SAME_SPOT_M`].
    Spot(f64, f64),
}

/// Earlier reports (in the reader's scope, live) of a kenteken or at a spot in the last
/// `months`, newest first, at most 50, with their distance from the spot. Asking by kenteken
/// needs the Wpg read and is audit-logged as a consultation (by the plate's hash, also when it
/// finds nothing); the reports found are counted as read in `disclosure`.
pub async fn earlier(
    state: &crate::app::AppState,
    p: &crate::auth::Principal,
    by: &By,
    months: u32,
    disclosure: &mut crate::access::Disclosure,
) -> crate::error::ApiResult<Vec<(crate::violations::entity::violation::Model, Option<f64>)>> {
    use crate::access::Kind;
    use crate::error::ApiError;
    let now = chrono::Utc::now();
    let since = now - chrono::Duration::days(i64::from(months) * 31);
    let mut f = crate::violations::store::Filter {
        window: Some((since, now)),
        limit: 51,
        ..Default::default()
    };
    let spot = match by {
        By::Kenteken(k) => {
            if !crate::access::reads_wpg_of(p, Kind::Violation) {
                return Err(ApiError::Forbidden(
                    "a kenteken is Wpg data: this account may not look one up".into(),
                ));
            }
            f.plate = Some(crate::audit::register::asked_kenteken(k)?);
            None
        }
        By::Spot(lat, lon) => {
            let errs = crate::reference::routes::check_coordinates(*lat, *lon, "");
            if !errs.is_empty() {
                return Err(ApiError::Validation(errs));
            }
            f.near = Some((*lat, *lon, SAME_SPOT_M));
            Some((*lat, *lon))
        }
    };
    let (rows, _) = crate::violations::store::list(&state.db, p, &f).await?;
    let found: Vec<_> = rows
        .into_iter()
        .filter_map(|m| {
            let d = spot.map(|s| crate::geo::distance_m(s, (m.lat, m.lon)));
            if d.is_some_and(|d| d > SAME_SPOT_M) {
                return None;
            }
            disclosure.sight(Kind::Violation, &crate::violations::store::facts(&m), m.id);
            Some((m, d.map(|d| (d * 10.0).round() / 10.0)))
        })
        .take(50)
        .collect();
    if let Some(k) = &f.plate {
        let entry = consultation(
            "lookup_repeats",
            k,
            serde_json::json!({ "months": months, "found": found.len() }),
        );
        state.audit.read(&p.actor(), entry).await?;
    }
    Ok(found)
}

/// The audit line of a consultation of a kenteken: by the plate's SHA-256, never the plate (the
/// log holds ids, not values), with what the lookup adds in `detail` (an object).
pub fn consultation(
    action: &'static str,
    kenteken: &str,
    detail: serde_json::Value,
) -> crate::audit::Entry {
    use sha2::Digest;
    let mut d = match detail {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    d.insert(
        "kenteken_sha256".into(),
        hex::encode(sha2::Sha256::digest(kenteken.as_bytes())).into(),
    );
    crate::audit::Entry {
        action,
        record_type: "kenteken",
        record_id: None,
        reason: None,
        detail: Some(serde_json::Value::Object(d)),
    }
}
