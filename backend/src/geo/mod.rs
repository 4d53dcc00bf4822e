//! Geometry without I/O: which wijk and buurt a GPS point lies in.
//!
//! Velsen is divided by CBS into 10 **wijken** (districts, codes `WK0453xx`) and 63 **buurten**
//! (neighbourhoods, `BU0453xxxx`); every point the system stores is assigned both. The boundaries
//! are CBS/Kadaster's generalised ones (attribution: "Kadaster / Centraal Bureau voor de
//! Statistiek, 2024"), so a point within ~100 m of a border may land on either side.

use geo::{BoundingRect, Intersects, MultiPolygon, Point, Polygon};
use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{AABB, RTree};

/// One area as the index needs it.
#[derive(Debug, Clone)]
pub struct Area {
    pub code: String,
    pub kind: AreaKind,
    pub name: String,
    /// For a buurt: its wijk.
    pub wijk_code: Option<String>,
    pub shape: MultiPolygon<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AreaKind {
    Wijk,
    Buurt,
}

impl AreaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AreaKind::Wijk => "wijk",
            AreaKind::Buurt => "buurt",
        }
    }
}

/// The answer to "where is this point".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<'a> {
    pub wijk: Option<&'a Area>,
    pub buurt: Option<&'a Area>,
}

impl Located<'_> {
    pub fn inside(&self) -> bool {
        self.wijk.is_some()
    }
}

impl PartialEq for Area {
    fn eq(&self, other: &Self) -> bool {
        self.code == other.code
    }
}
impl Eq for Area {}

type Entry = GeomWithData<Rectangle<[f64; 2]>, usize>;

/// Point-in-polygon behind an R-tree of bounding boxes.
pub struct AreaIndex {
    areas: Vec<Area>,
    by_code: std::collections::HashMap<String, usize>,
    wijken: RTree<Entry>,
    buurten: RTree<Entry>,
}

impl AreaIndex {
    pub fn new(areas: Vec<Area>) -> AreaIndex {
        let mut wijken = Vec::new();
        let mut buurten = Vec::new();
        for (i, a) in areas.iter().enumerate() {
            let Some(r) = a.shape.bounding_rect() else {
                continue;
            };
            let rect = Rectangle::from_corners([r.min().x, r.min().y], [r.max().x, r.max().y]);
            let e = GeomWithData::new(rect, i);
            match a.kind {
                AreaKind::Wijk => wijken.push(e),
                AreaKind::Buurt => buurten.push(e),
            }
        }
        AreaIndex {
            by_code: areas
                .iter()
                .enumerate()
                .map(|(i, a)| (a.code.clone(), i))
                .collect(),
            areas,
            wijken: RTree::bulk_load(wijken),
            buurten: RTree::bulk_load(buurten),
        }
    }

    pub fn areas(&self) -> &[Area] {
        &self.areas
    }

    pub fn get(&self, code: &str) -> Option<&Area> {
        self.by_code.get(code).map(|i| &self.areas[*i])
    }

    fn hit(&self, tree: &RTree<Entry>, p: Point<f64>) -> Option<&Area> {
        let env = AABB::from_point([p.x(), p.y()]);
        tree.locate_in_envelope_intersecting(&env)
            .map(|e| &self.areas[e.data])
            .find(|a| a.shape.intersects(&p))
    }

    /// The wijk and buurt of a WGS84 point. The buurt decides the wijk (CBS's hierarchy), so
    /// the two never disagree; a point in a sliver between generalised buurten falls back to
    /// the wijk polygons and has no buurt.
    pub fn locate(&self, lat: f64, lon: f64) -> Located<'_> {
        let p = Point::new(lon, lat);
        let buurt = self.hit(&self.buurten, p);
        let wijk = match buurt.and_then(|b| b.wijk_code.as_deref()) {
            Some(code) => self.get(code),
            None => self.hit(&self.wijken, p),
        };
        Located { wijk, buurt }
    }

    /// Whether a point lies inside the named area.
    pub fn contains(&self, code: &str, lat: f64, lon: f64) -> bool {
        self.get(code)
            .map(|a| a.shape.intersects(&Point::new(lon, lat)))
            .unwrap_or(false)
    }
}

/// Parses a GeoJSON geometry (Polygon or MultiPolygon) into a `MultiPolygon`.
pub fn parse_shape(geojson_geometry: &str) -> anyhow::Result<MultiPolygon<f64>> {
    let g: geojson::Geometry = geojson_geometry.parse()?;
    let g: geo::Geometry<f64> = g.try_into()?;
    match g {
        geo::Geometry::Polygon(p) => Ok(MultiPolygon(vec![p])),
        geo::Geometry::MultiPolygon(m) => Ok(m),
        other => anyhow::bail!("expected a polygon, got {other:?}"),
    }
}

/// How far [`outline_geojson`] lets an outline move from the boundary, in degrees (≈ 5 m in
/// Velsen): enough to draw a wijk on a phone, a fraction of the full outline's size.
pub const OUTLINE_TOLERANCE_DEG: f64 = 0.000_05;

/// A shape as a GeoJSON geometry (text), simplified (Douglas–Peucker) to
/// [`OUTLINE_TOLERANCE_DEG`], for phones that draw the map themselves (the synced `areas`).
pub fn outline_geojson(shape: &MultiPolygon<f64>) -> String {
    use geo::Simplify;
    let simple = shape.simplify(OUTLINE_TOLERANCE_DEG);
    geojson::Geometry::new(geojson::GeometryValue::from(&simple)).to_string()
}

/// The polygons of a shape, for sampling and drawing.
pub fn polygons(shape: &MultiPolygon<f64>) -> &[Polygon<f64>] {
    &shape.0
}

/// Geodesic distance in metres between two `(lat, lon)` points on WGS84.
pub fn distance_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    use geo::{Distance, Geodesic, Point};
    Geodesic.distance(Point::new(a.1, a.0), Point::new(b.1, b.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square(code: &str, kind: AreaKind, wijk: Option<&str>, x0: f64, y0: f64, s: f64) -> Area {
        let poly = Polygon::new(
            geo::LineString::from(vec![
                (x0, y0),
                (x0 + s, y0),
                (x0 + s, y0 + s),
                (x0, y0 + s),
                (x0, y0),
            ]),
            vec![],
        );
        Area {
            code: code.into(),
            kind,
            name: code.into(),
            wijk_code: wijk.map(str::to_string),
            shape: MultiPolygon(vec![poly]),
        }
    }

    fn index() -> AreaIndex {
        AreaIndex::new(vec![
            square("W1", AreaKind::Wijk, None, 0.0, 0.0, 2.0),
            square("W2", AreaKind::Wijk, None, 2.0, 0.0, 2.0),
            square("B1", AreaKind::Buurt, Some("W1"), 0.0, 0.0, 1.0),
            square("B2", AreaKind::Buurt, Some("W2"), 2.0, 0.0, 2.0),
        ])
    }

    #[test]
    fn a_point_gets_its_buurt_and_the_buurts_wijk() {
        let idx = index();
        let l = idx.locate(0.5, 0.5); // lat, lon
        assert_eq!(l.buurt.unwrap().code, "B1");
        assert_eq!(l.wijk.unwrap().code, "W1");
        let l = idx.locate(1.0, 3.0);
        assert_eq!(l.buurt.unwrap().code, "B2");
        assert_eq!(l.wijk.unwrap().code, "W2");
    }

    #[test]
    fn a_point_in_a_wijk_without_buurt_falls_back_to_the_wijk() {
        let idx = index();
        let l = idx.locate(1.5, 1.5);
        assert!(l.buurt.is_none());
        assert_eq!(l.wijk.unwrap().code, "W1");
        assert!(l.inside());
    }

    #[test]
    fn a_point_outside_everything_is_outside() {
        let idx = index();
        let l = idx.locate(10.0, 10.0);
        assert!(!l.inside());
        assert!(l.buurt.is_none());
    }

    #[test]
    fn an_outline_survives_its_simplification_as_geojson() {
        let square = r#"{"type":"Polygon","coordinates":[[[4.6,52.4],[4.61,52.4],[4.61,52.41],[4.6050001,52.41],[4.6,52.41],[4.6,52.4]]]}"#;
        let shape = parse_shape(square).unwrap();
        let text = outline_geojson(&shape);
        let back = parse_shape(&text).unwrap();
        // The point on the straight top edge is gone; the four corners stay.
        assert_eq!(back.0[0].exterior().0.len(), 5, "{text}");
        assert!(back.intersects(&Point::new(4.605, 52.405)));
    }

    #[test]
    fn parses_geojson_polygons() {
        let s =
            parse_shape(r#"{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}"#).unwrap();
        assert_eq!(s.0.len(), 1);
        assert!(parse_shape(r#"{"type":"Point","coordinates":[0,0]}"#).is_err());
    }
}
