//! Exports of a day's or a period's violations (CSV for Excel with Dutch settings, GeoJSON for
//! QGIS) and round tracks (GeoJSON), streamed page by page: a year is never held in memory.
//! Every export is written to the audit log before its first byte leaves.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Europe::Amsterdam;
use futures_util::stream::{self, StreamExt};
use sea_orm::sea_query::{Expr, ExprTrait, Order, Query};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::access::{Disclosure, Kind, Sight};
use crate::app::AppState;
use crate::audit::Entry;
use crate::audit::register::{self, Provided, Provision, Stated};
use crate::auth::Principal;
use crate::db::Db;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::ApiQuery;
use crate::violations::entity::violation;

/// Rows read per query while streaming.
const PAGE: u64 = 1000;
/// The longest period one export covers.
const MAX_DAYS: i64 = 400;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(violations_csv))
        .routes(routes!(violations_geojson))
        .routes(routes!(tracks_geojson))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Period {
    /// First day (YYYY-MM-DD, Europe/Amsterdam).
    pub from: NaiveDate,
    /// Last day, inclusive; default `from`.
    pub to: Option<NaiveDate>,
}

impl Period {
    /// The last day, inclusive.
    fn last(&self) -> NaiveDate {
        self.to.unwrap_or(self.from)
    }

    fn bounds(&self) -> ApiResult<(DateTime<Utc>, DateTime<Utc>)> {
        let to = self.last();
        if to < self.from {
            return Err(ApiError::field("to", "on or after from"));
        }
        if (to - self.from).num_days() >= MAX_DAYS {
            return Err(ApiError::field(
                "to",
                format!("at most {MAX_DAYS} days per export"),
            ));
        }
        let (a, _) = crate::violations::store::amsterdam_day(self.from);
        let (_, b) = crate::violations::store::amsterdam_day(to);
        Ok((a, b))
    }
}

async fn audit_export(
    state: &AppState,
    p: &Principal,
    what: &'static str,
    period: &Period,
) -> ApiResult<()> {
    state
        .audit
        .read(
            &p.actor(),
            Entry {
                action: "export",
                record_type: what,
                record_id: None,
                reason: None,
                detail: Some(json!({ "from": period.from, "to": period.last() })),
            },
        )
        .await
}

/// The reports of a page whose Wpg fields the access rules withhold from the reader.
type Withheld = std::collections::HashSet<Uuid>;

/// One page of the period's reports after the keyset cursor.
async fn page(
    db: &Db,
    p: &Principal,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    after: Option<(DateTime<Utc>, Uuid)>,
) -> ApiResult<Vec<violation::Model>> {
    let period = violation::Entity::find()
        .filter(violation::Column::DeletedSeq.is_null())
        .filter(violation::Column::RetentionStage.eq(0))
        .filter(violation::Column::ObservedAt.gte(from))
        .filter(violation::Column::ObservedAt.lt(to));
    let Some(mut q) = p.scoped(period, violation::Column::TeamId) else {
        return Ok(vec![]);
    };
    if let Some((t, id)) = after {
        // The cursor's time as a plain lower bound too: the index range then starts at the
        // cursor. Without it every page scanned (and sorted) the period from its first day, so
        // a year's export took time and memory that grew with the square of its length.
        q = q.filter(violation::Column::ObservedAt.gte(t)).filter(
            Condition::any()
                .add(violation::Column::ObservedAt.gt(t))
                .add(
                    Condition::all()
                        .add(violation::Column::ObservedAt.eq(t))
                        .add(violation::Column::Id.gt(id)),
                ),
        );
    }
    Ok(q.order_by_asc(violation::Column::ObservedAt)
        .order_by_asc(violation::Column::Id)
        .limit(PAGE)
        .all(&db.read)
        .await?)
}

/// A violations export's entry in the disclosure register: `None` for a reader who gets no
/// Wpg field in full (nothing to register); for one who does, the provision must be stated.
struct Registered {
    provision_id: Uuid,
    stated: Stated,
    channel: &'static str,
}

fn registered(
    p: &Principal,
    provision: &Provision,
    channel: &'static str,
) -> ApiResult<Option<Registered>> {
    if !crate::access::reads_wpg_of(p, Kind::Violation) {
        return Ok(None);
    }
    Ok(Some(Registered {
        provision_id: Uuid::now_v7(),
        stated: provision.stated()?,
        channel,
    }))
}

/// Writes a page's kentekens that leave in full into the disclosure register.
async fn register_page(
    st: &AppState,
    p: &Principal,
    r: &Registered,
    rows: &[violation::Model],
    withheld: &Withheld,
) -> Result<(), sea_orm::DbErr> {
    let provided: Vec<Provided> = rows
        .iter()
        .filter(|m| !withheld.contains(&m.id))
        .filter_map(|m| {
            let plate = m.plate.as_deref().filter(|s| !s.trim().is_empty())?;
            Some(Provided {
                record_type: "violation",
                record_id: m.id.to_string(),
                subject_kind: "kenteken",
                subject: plate,
            })
        })
        .collect();
    if provided.is_empty() {
        return Ok(());
    }
    register::record(
        &st.db.write,
        p,
        r.provision_id,
        &r.stated,
        r.channel,
        provided,
        Utc::now(),
    )
    .await
}

/// Streams the period's reports, each page rendered by `render`, between `head` and `tail`.
fn stream_reports(
    state: &AppState,
    p: Principal,
    register: Option<Registered>,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    head: Bytes,
    tail: Bytes,
    render: fn(&[violation::Model], &AppState, &Withheld, bool) -> std::io::Result<Bytes>,
) -> Body {
    let st = state.clone();
    let register = std::sync::Arc::new(register);
    // States: Some(cursor) = more to read; None = done.
    let pages = stream::unfold(
        (Some(None::<(DateTime<Utc>, Uuid)>), true),
        move |(cursor, first)| {
            let st = st.clone();
            let p = p.clone();
            let register = register.clone();
            async move {
                let after = cursor?;
                match page(&st.db, &p, from, to, after).await {
                    Ok(rows) if rows.is_empty() => None,
                    Ok(rows) => {
                        let next = rows.last().map(|m| (m.observed_at, m.id));
                        let more = rows.len() as u64 == PAGE;
                        // The access rules decide each report; the page's Wpg reports are
                        // logged before its bytes leave.
                        let mut d = Disclosure::new(&p, &st.audit);
                        let withheld: Withheld = rows
                            .iter()
                            .filter(|m| {
                                d.sight(Kind::Violation, &crate::violations::store::facts(m), m.id)
                                    != Sight::Full
                            })
                            .map(|m| m.id)
                            .collect();
                        if let Err(e) = d.log("export", Default::default()).await {
                            tracing::error!(error = %e, "export stopped: its reads could not be logged");
                            return Some((
                                Err(std::io::Error::other("the audit log is unavailable")),
                                (None, false),
                            ));
                        }
                        if let Some(r) = Option::as_ref(&register)
                            && let Err(e) = register_page(&st, &p, r, &rows, &withheld).await
                        {
                            tracing::error!(error = %e, "export stopped: the disclosure register could not be written");
                            return Some((
                                Err(std::io::Error::other(
                                    "the disclosure register is unavailable",
                                )),
                                (None, false),
                            ));
                        }
                        match render(&rows, &st, &withheld, first) {
                            Ok(bytes) => Some((
                                Ok::<Bytes, std::io::Error>(bytes),
                                (if more { Some(next) } else { None }, false),
                            )),
                            // The download fails visibly instead of leaving rows out.
                            Err(e) => {
                                tracing::error!(error = %e, "export failed mid-stream");
                                Some((Err(e), (None, false)))
                            }
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = ?e, "export failed mid-stream");
                        Some((Err(std::io::Error::other("export failed")), (None, false)))
                    }
                }
            }
        },
    );
    let body = stream::once(async move { Ok::<Bytes, std::io::Error>(head) })
        .chain(pages)
        .chain(stream::once(async move { Ok(tail) }));
    Body::from_stream(body)
}

fn attachment(body: Body, content_type: &'static str, name: String) -> Response {
    let mut res = Response::new(body);
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    res
}

/// The name of a wijk or buurt by its code.
fn area_name(st: &AppState, code: &Option<String>) -> Option<String> {
    code.as_deref()
        .and_then(|c| st.reference.areas.get(c))
        .map(|a| a.name.clone())
}

/// A number with a decimal comma (Excel with Dutch settings reads it as a number).
fn nl(x: f64, digits: usize) -> String {
    format!("{x:.digits$}").replace('.', ",")
}

/// A text cell that Excel, LibreOffice or Google Sheets will not run as a formula (OWASP "CSV
/// injection"): a text starting with `=`, `+`, `-`, `@`, a tab or a carriage return gets a
/// leading `'`, so it opens as the text it is. Only text cells go through here: the numbers the
/// export writes itself (coordinates such as `-4,600000`, accuracy) must stay numbers, and ids,
/// dates and times never start with one of these.
fn text_cell(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

fn csv_rows(
    rows: &[violation::Model],
    st: &AppState,
    withheld: &Withheld,
    _first: bool,
) -> std::io::Result<Bytes> {
    let mut w = csv::WriterBuilder::new()
        .delimiter(b';')
        .has_headers(false)
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::with_capacity(rows.len() * 200));
    for m in rows {
        let t = m.observed_at.with_timezone(&Amsterdam);
        let area = |c: &Option<String>| area_name(st, c).unwrap_or_default();
        let wpg = withheld.contains(&m.id);
        w.write_record([
            m.id.to_string(),
            t.format("%d-%m-%Y").to_string(),
            t.format("%H:%M:%S").to_string(),
            // The CSV is for people (a spreadsheet): values in Dutch, from the one label table.
            text_cell(crate::labels::nl("category", &m.category)),
            text_cell(m.feitcode.as_deref().unwrap_or_default()),
            text_cell(crate::labels::nl("outcome", &m.outcome)),
            text_cell(crate::labels::nl("report_status", &m.status)),
            text_cell(&area(&m.wijk_code)),
            text_cell(&area(&m.buurt_code)),
            nl(m.lat, 6),
            nl(m.lon, 6),
            nl(m.accuracy_m, 1),
            if wpg {
                String::new()
            } else {
                text_cell(m.plate.as_deref().unwrap_or_default())
            },
            if wpg {
                "[afgeschermd]".into()
            } else {
                text_cell(&m.description)
            },
            m.round_id.map(|u| u.to_string()).unwrap_or_default(),
            // The plausibility flags set when the report arrived (e.g. outside_municipality).
            flag_list(&m.flags),
        ])?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(Bytes::from(bytes))
}

/// A report's stored flags, comma-separated.
fn flag_list(flags: &serde_json::Value) -> String {
    flags
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str())
                .map(|f| crate::labels::nl("flag", f))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn csv_head() -> Bytes {
    let mut out = "\u{feff}".as_bytes().to_vec();
    out.extend_from_slice(
        b"id;datum;tijd;categorie;feitcode;afdoening;status;wijk;buurt;lat;lon;nauwkeurigheid_m;kenteken;omschrijving;ronde;signalen\r\n",
    );
    Bytes::from(out)
}

/// The period's reports as CSV for Excel with Dutch settings: UTF-8 with a byte-order mark,
/// `;` between fields, decimal commas, local date and time (Europe/Amsterdam). Wpg fields are
/// left empty for readers without Wpg access. A text that a spreadsheet would read as a formula
/// (starting with `=`, `+`, `-`, `@`, a tab or a carriage return) is written with a leading `'`;
/// numbers stay numbers. Streamed.
#[utoipa::path(
    get, path = "/api/v1/exports/violations.csv", operation_id = "exportViolationsCsv", tag = "exports",
    params(Period, Provision),
    responses(
        (status = 200, description = "CSV", content_type = "text/csv"),
        (status = 422, description = "A bad period, or a provision of Wpg data without recipient, purpose or legal basis", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn violations_csv(
    State(state): State<AppState>,
    p: Principal,
    ApiQuery(period): ApiQuery<Period>,
    ApiQuery(provision): ApiQuery<Provision>,
) -> ApiResult<Response> {
    let bounds = period.bounds()?;
    let register = registered(&p, &provision, "export violations.csv")?;
    audit_export(&state, &p, "violations.csv", &period).await?;
    let name = format!("overtredingen-{}-{}.csv", period.from, period.last());
    let body = stream_reports(
        &state,
        p,
        register,
        bounds,
        csv_head(),
        Bytes::new(),
        csv_rows,
    );
    Ok(attachment(body, "text/csv; charset=utf-8", name))
}

fn geojson_rows(
    rows: &[violation::Model],
    st: &AppState,
    withheld: &Withheld,
    first: bool,
) -> std::io::Result<Bytes> {
    let mut out = String::with_capacity(rows.len() * 400);
    for (i, m) in rows.iter().enumerate() {
        if !(first && i == 0) {
            out.push(',');
        }
        let area = |c: &Option<String>| area_name(st, c);
        let wpg = withheld.contains(&m.id);
        let f = json!({
            "type": "Feature",
            "geometry": { "type": "Point", "coordinates": [m.lon, m.lat] },
            "properties": {
                "id": m.id, "observed_at": m.observed_at, "category": m.category, "feitcode": m.feitcode,
                "outcome": m.outcome, "status": m.status, "wijk": area(&m.wijk_code), "buurt": area(&m.buurt_code),
                "accuracy_m": m.accuracy_m, "round_id": m.round_id,
                "plate": if wpg { None } else { m.plate.clone() },
                "description": if wpg { None } else { Some(m.description.clone()) },
            }
        });
        out.push_str(&f.to_string());
        out.push('\n');
    }
    Ok(Bytes::from(out))
}

/// The period's reports as a GeoJSON FeatureCollection of points (WGS84), for QGIS. Streamed.
#[utoipa::path(
    get, path = "/api/v1/exports/violations.geojson", operation_id = "exportViolationsGeojson", tag = "exports",
    params(Period, Provision),
    responses(
        (status = 200, description = "GeoJSON", content_type = "application/geo+json"),
        (status = 422, description = "A bad period, or a provision of Wpg data without recipient, purpose or legal basis", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn violations_geojson(
    State(state): State<AppState>,
    p: Principal,
    ApiQuery(period): ApiQuery<Period>,
    ApiQuery(provision): ApiQuery<Provision>,
) -> ApiResult<Response> {
    let bounds = period.bounds()?;
    let register = registered(&p, &provision, "export violations.geojson")?;
    audit_export(&state, &p, "violations.geojson", &period).await?;
    let name = format!("overtredingen-{}-{}.geojson", period.from, period.last());
    let head = Bytes::from_static(b"{\"type\":\"FeatureCollection\",\"features\":[\n");
    let body = stream_reports(
        &state,
        p,
        register,
        bounds,
        head,
        Bytes::from_static(b"]}\n"),
        geojson_rows,
    );
    Ok(attachment(body, "application/geo+json", name))
}

/// The period's round tracks as a GeoJSON FeatureCollection of lines (accepted fixes: accuracy
/// 50 m or better), one feature per round, for QGIS. Streamed round by round.
#[utoipa::path(
    get, path = "/api/v1/exports/tracks.geojson", operation_id = "exportTracksGeojson", tag = "exports",
    params(Period),
    responses(
        (status = 200, description = "GeoJSON", content_type = "application/geo+json"),
        (status = 422, description = "A bad period", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn tracks_geojson(
    State(state): State<AppState>,
    p: Principal,
    ApiQuery(period): ApiQuery<Period>,
) -> ApiResult<Response> {
    let (from, to) = period.bounds()?;
    audit_export(&state, &p, "tracks.geojson", &period).await?;
    let rounds = crate::records::store::list(
        &state.db.read,
        &crate::records::kinds::ROUNDS,
        &p,
        Some(from),
        Some(to),
        None,
        100_000,
    )
    .await?;
    let ids: Vec<(Uuid, String)> = rounds
        .iter()
        .map(|r| {
            (
                r.id,
                crate::records::text(&r.data, "name")
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    let st = state.clone();
    let features = stream::iter(ids.into_iter().enumerate()).then(move |(i, (id, name))| {
        let st = st.clone();
        async move {
            let mut q = Query::select();
            q.column("data")
                .from("track_segment")
                .and_where(Expr::col("deleted_seq").is_null())
                .and_where(Expr::col("retention_stage").eq(0))
                .and_where(Expr::col("parent_id").eq(id))
                .order_by("occurred_at", Order::Asc);
            let rows = match sea_orm::ConnectionTrait::query_all(&st.db.read, &q).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = ?e, "track export failed mid-stream");
                    return Err(std::io::Error::other("export failed"));
                }
            };
            let mut docs = Vec::with_capacity(rows.len());
            for r in &rows {
                match r.try_get::<Value>("", "data") {
                    Ok(d) => docs.push(d),
                    Err(e) => {
                        tracing::error!(error = ?e, "a track segment could not be read");
                        return Err(std::io::Error::other("export failed"));
                    }
                }
            }
            let max_accuracy_m = crate::rounds::derive::Params::default().max_accuracy_m;
            let mut pts: Vec<(i64, f64, f64)> = docs
                .into_iter()
                .flat_map(|d| {
                    d.get("points")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default()
                })
                .filter_map(|v| crate::rounds::point(&v))
                .filter(|p| p.accuracy_m.is_none_or(|a| a <= max_accuracy_m))
                .map(|p| (p.t_ms, p.lon, p.lat))
                .collect();
            pts.sort_by_key(|p| p.0);
            pts.dedup_by_key(|p| p.0);
            let coords: Vec<[f64; 2]> = pts.iter().map(|p| [p.1, p.2]).collect();
            let f = json!({
                "type": "Feature",
                "geometry": { "type": "LineString", "coordinates": coords },
                "properties": { "round_id": id, "name": name, "fixes": coords.len() },
            });
            let mut s = if i == 0 {
                String::new()
            } else {
                ",".to_string()
            };
            s.push_str(&f.to_string());
            s.push('\n');
            Ok(Bytes::from(s))
        }
    });
    let body = stream::once(async {
        Ok::<Bytes, std::io::Error>(Bytes::from_static(
            b"{\"type\":\"FeatureCollection\",\"features\":[\n",
        ))
    })
    .chain(features)
    .chain(stream::once(async { Ok(Bytes::from_static(b"]}\n")) }));
    let name = format!("rondes-{}-{}.geojson", period.from, period.last());
    Ok(attachment(
        Body::from_stream(body),
        "application/geo+json",
        name,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_open_as_text() {
        for f in ["=HYPERLINK(\"x\")", "+31 6", "-5", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(text_cell(f), format!("'{f}"), "{f:?}");
        }
        for t in ["Geparkeerd op de stoep", "12ABC3", "", "a=b", " =x"] {
            assert_eq!(text_cell(t), t);
        }
    }
}
