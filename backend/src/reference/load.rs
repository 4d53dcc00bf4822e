//! Loads the fixtures into the database (idempotent upserts) and reads them back into memory.

use anyhow::Context;
use chrono::NaiveDate;
use sea_orm::sea_query::OnConflict;
use sea_orm::{EntityTrait, QueryOrder, Set, TransactionTrait};
use serde::Deserialize;
use serde_json::{Value, json};

use super::entities::{area, category, feitcode};
use super::{AREA_ATTRIBUTION, Reference, TRACKS};
use crate::db::Db;
use crate::geo::{Area, AreaIndex, AreaKind, parse_shape};

const WIJKEN: &str = include_str!("../../../fixtures/geo/velsen_wijken_2024.wgs84.geojson");
const BUURTEN: &str = include_str!("../../../fixtures/geo/velsen_buurten_2024.wgs84.geojson");
const CATEGORIES: &str = include_str!("../../../fixtures/categories.csv");
const FEITCODES: &str = include_str!("../../../fixtures/feitcodes.csv");

fn areas_from_fixture(text: &str, kind: AreaKind) -> anyhow::Result<Vec<area::ActiveModel>> {
    let fc: geojson::FeatureCollection = text.parse().context("parsing area fixture")?;
    fc.features
        .into_iter()
        .map(|f| {
            let prop = |k: &str| {
                f.property(k)
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .with_context(|| format!("area feature without {k}"))
            };
            let geometry = f
                .geometry
                .as_ref()
                .context("area feature without geometry")?;
            Ok(area::ActiveModel {
                code: Set(prop("statcode")?),
                kind: Set(kind.as_str().to_string()),
                name: Set(prop("statnaam")?),
                wijk_code: Set(match kind {
                    AreaKind::Buurt => Some(prop("wijkcode")?),
                    AreaKind::Wijk => None,
                }),
                geometry: Set(serde_json::to_string(geometry)?),
                attribution: Set(AREA_ATTRIBUTION.to_string()),
            })
        })
        .collect()
}

#[derive(Deserialize)]
struct CategoryRow {
    code: String,
    naam: String,
    omschrijving: String,
    feitcode_domeinen: String,
    volgorde: i32,
}

#[derive(Deserialize)]
struct FeitcodeRow {
    feitcode: String,
    domein: String,
    omschrijving: String,
    overtreden_artikel: String,
    tarief_eur_cat1: Option<f64>,
    tarief_eur_cat2: Option<f64>,
    tarief_eur_cat3: Option<f64>,
    tarief_eur_cat4: Option<f64>,
    tarief_eur_cat5: Option<f64>,
    tarief_eur_cat6: Option<f64>,
    tarief_eur_cat7: Option<f64>,
    tarief_eur_cat8: Option<f64>,
    bron: String,
    categorie: String,
    spoor: String,
    geldig_vanaf: NaiveDate,
}

fn csv_rows<T: for<'de> Deserialize<'de>>(text: &str) -> anyhow::Result<Vec<T>> {
    csv::Reader::from_reader(text.as_bytes())
        .deserialize()
        .collect::<Result<Vec<T>, _>>()
        .context("parsing CSV fixture")
}

/// Upserts the reference data from `fixtures/`. Safe to run on every start.
pub async fn load_fixtures(db: &Db) -> anyhow::Result<()> {
    let mut areas = areas_from_fixture(WIJKEN, AreaKind::Wijk)?;
    areas.extend(areas_from_fixture(BUURTEN, AreaKind::Buurt)?);

    let categories: Vec<category::ActiveModel> = csv_rows::<CategoryRow>(CATEGORIES)?
        .into_iter()
        .map(|r| category::ActiveModel {
            code: Set(r.code),
            name: Set(r.naam),
            description: Set(r.omschrijving),
            feitcode_domains: Set(r.feitcode_domeinen),
            sort_order: Set(r.volgorde),
        })
        .collect();

    let mut feitcodes = Vec::new();
    for r in csv_rows::<FeitcodeRow>(FEITCODES)? {
        anyhow::ensure!(
            TRACKS.contains(&r.spoor.as_str()),
            "unknown track {} for {}",
            r.spoor,
            r.feitcode
        );
        let mut tariffs = serde_json::Map::new();
        for (i, t) in [
            r.tarief_eur_cat1,
            r.tarief_eur_cat2,
            r.tarief_eur_cat3,
            r.tarief_eur_cat4,
            r.tarief_eur_cat5,
            r.tarief_eur_cat6,
            r.tarief_eur_cat7,
            r.tarief_eur_cat8,
        ]
        .into_iter()
        .enumerate()
        {
            if let Some(t) = t {
                tariffs.insert(format!("{}", i + 1), json!(t));
            }
        }
        feitcodes.push(feitcode::ActiveModel {
            code: Set(r.feitcode),
            valid_from: Set(r.geldig_vanaf),
            valid_until: Set(None),
            category: Set(r.categorie),
            domain: Set(r.domein),
            description: Set(r.omschrijving),
            article: Set(r.overtreden_artikel),
            track: Set(r.spoor),
            tariffs_eur: Set(Value::Object(tariffs)),
            source: Set(r.bron),
        });
    }

    let txn = db.write.begin().await?;
    area::Entity::insert_many(areas)
        .on_conflict(
            OnConflict::column(area::Column::Code)
                .update_columns([
                    area::Column::Kind,
                    area::Column::Name,
                    area::Column::WijkCode,
                    area::Column::Geometry,
                    area::Column::Attribution,
                ])
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
    category::Entity::insert_many(categories)
        .on_conflict(
            OnConflict::column(category::Column::Code)
                .update_columns([
                    category::Column::Name,
                    category::Column::Description,
                    category::Column::FeitcodeDomains,
                    category::Column::SortOrder,
                ])
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
    feitcode::Entity::insert_many(feitcodes)
        .on_conflict(
            OnConflict::columns([feitcode::Column::Code, feitcode::Column::ValidFrom])
                .update_columns([
                    feitcode::Column::Category,
                    feitcode::Column::Domain,
                    feitcode::Column::Description,
                    feitcode::Column::Article,
                    feitcode::Column::Track,
                    feitcode::Column::TariffsEur,
                    feitcode::Column::Source,
                ])
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
    txn.commit().await?;
    Ok(())
}

/// Reads the reference data back and builds the in-memory index.
pub async fn read(db: &Db) -> anyhow::Result<Reference> {
    let rows = area::Entity::find()
        .order_by_asc(area::Column::Code)
        .all(&db.read)
        .await?;
    let mut areas = Vec::with_capacity(rows.len());
    let mut features = Vec::with_capacity(rows.len());
    for r in &rows {
        let kind = match r.kind.as_str() {
            "wijk" => AreaKind::Wijk,
            "buurt" => AreaKind::Buurt,
            other => anyhow::bail!("unknown area kind {other}"),
        };
        areas.push(Area {
            code: r.code.clone(),
            kind,
            name: r.name.clone(),
            wijk_code: r.wijk_code.clone(),
            shape: parse_shape(&r.geometry).with_context(|| format!("geometry of {}", r.code))?,
        });
        let geometry: Value = serde_json::from_str(&r.geometry)?;
        features.push(json!({
            "type": "Feature",
            "id": r.code,
            "properties": { "code": r.code, "kind": r.kind, "name": r.name, "wijk_code": r.wijk_code },
            "geometry": geometry,
        }));
    }
    let collection = json!({
        "type": "FeatureCollection",
        "attribution": AREA_ATTRIBUTION,
        "features": features,
    });
    let categories = category::Entity::find()
        .order_by_asc(category::Column::SortOrder)
        .all(&db.read)
        .await?;
    let feitcodes = feitcode::Entity::find()
        .order_by_asc(feitcode::Column::Code)
        .order_by_asc(feitcode::Column::ValidFrom)
        .all(&db.read)
        .await?;
    Ok(Reference::new(
        AreaIndex::new(areas),
        categories,
        feitcodes,
        serde_json::to_vec(&collection)?.into(),
    ))
}
