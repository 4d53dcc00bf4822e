//! Request extractors whose rejections are problem+json naming the field at fault.
//!
//! axum's own `Json`/`Query` reject with plain text; these read the same input but run serde
//! through `serde_path_to_error`, so `{"location": {"lat": "x"}}` answers `location.lat`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, FieldError};

/// A JSON body. Missing or wrong content type is 415, oversized 413, malformed 400, and a value
/// of the wrong type or a missing field 422, each naming the field.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        require_json(req.headers())?;
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(bytes_rejection)?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Whether the `Content-Type` names JSON (`application/json` or any `+json` type, parameters
/// such as `charset` allowed), compared case-insensitively as media types are.
pub fn is_json(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| {
            let mime = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
        .unwrap_or(false)
}

/// The one Content-Type rule of JSON bodies: 415 unless [`is_json`]. [`ApiJson`] applies it,
/// and so does the router (`app::require_json_bodies`) to every API request with a body, so a
/// handler that reads its body as bytes (the sync push) answers the same.
pub fn require_json(headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    if is_json(headers) {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(
            "send the body as JSON with Content-Type: application/json".into(),
        ))
    }
}

fn bytes_rejection(r: BytesRejection) -> ApiError {
    if r.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge(format!(
            "the body is larger than this endpoint accepts ({})",
            r.body_text()
        ))
    } else {
        ApiError::BadRequest {
            detail: format!("could not read the request body: {}", r.body_text()),
            errors: vec![],
        }
    }
}

/// Parses JSON into `T`, turning serde errors into problems that name the field. Strict: only
/// whitespace may follow the value, and a struct is read from an object only (serde would also
/// read `["handhaver","demo","x"]` as the fields in order).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value = parse_json_envelope(bytes)?;
    // JSON can carry NUL only as the escape `\u0000`; look for it only when that is there.
    if bytes.windows(6).any(|w| w == b"\\u0000")
        && let Ok(raw) = serde_json::from_slice::<serde_json::Value>(bytes)
        && let Some(field) = nul_path(&raw)
    {
        return Err(ApiError::field(field, NUL_REFUSED));
    }
    Ok(value)
}

/// As [`parse_json`], but text is not checked for NUL: for the sync push, whose records are
/// refused one by one (`sync::engine::read_record` refuses NUL per record, with these words).
pub fn parse_json_envelope<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = parse_strict(&mut de)?;
    de.end().map_err(|e| ApiError::BadRequest {
        detail: format!("the body has data after its JSON value: {e}"),
        errors: vec![],
    })?;
    Ok(value)
}

/// Why text with NUL is refused, the same words over REST and in a push's rejections.
pub const NUL_REFUSED: &str = "text with a NUL character (U+0000) is refused";

/// The dotted path (`location.note`, `officer_ids[2]`) of the first string or key holding a
/// NUL character, if any. PostgreSQL text cannot hold NUL and SQLite would store it: every
/// JSON body (REST and the sync push) is refused the same way on both, naming the field.
pub fn nul_path(v: &serde_json::Value) -> Option<String> {
    fn walk(v: &serde_json::Value, path: &str) -> Option<String> {
        use serde_json::Value;
        let here = || {
            if path.is_empty() {
                "body".to_string()
            } else {
                path.to_string()
            }
        };
        match v {
            Value::String(s) => s.contains('\0').then(here),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .find_map(|(i, x)| walk(x, &format!("{path}[{i}]"))),
            Value::Object(o) => o.iter().find_map(|(k, x)| {
                let p = if path.is_empty() {
                    k.replace('\0', "\\u0000")
                } else {
                    format!("{path}.{}", k.replace('\0', "\\u0000"))
                };
                if k.contains('\0') {
                    Some(p)
                } else {
                    walk(x, &p)
                }
            }),
            _ => None,
        }
    }
    walk(v, "")
}

fn parse_strict<'de, T: serde::Deserialize<'de>>(
    de: &mut serde_json::Deserializer<serde_json::de::SliceRead<'de>>,
) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(strict::Strict(de)).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        use serde_json::error::Category;
        match inner.classify() {
            Category::Syntax | Category::Eof | Category::Io => ApiError::BadRequest {
                detail: format!("the body is not valid JSON: {inner}"),
                errors: vec![],
            },
            Category::Data => {
                let msg = strip_position(&inner.to_string());
                ApiError::Validation(vec![FieldError::new(field_of(&path, &msg), msg)])
            }
        }
    })
}

/// A query string. Wrong values are 422 naming the parameter.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        parse_query(q).map(ApiQuery)
    }
}

pub fn parse_query<T: DeserializeOwned>(q: &str) -> Result<T, ApiError> {
    if let Some((k, _)) =
        form_urlencoded_parse(q).find(|(k, v)| k.contains('\0') || v.contains('\0'))
    {
        return Err(ApiError::field(k.replace('\0', "\\u0000"), NUL_REFUSED));
    }
    let de = serde_urlencoded::Deserializer::new(form_urlencoded_parse(q));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let msg = e.into_inner().to_string();
        ApiError::Validation(vec![FieldError::new(field_of(&path, &msg), msg)])
    })
}

fn form_urlencoded_parse(q: &str) -> form_urlencoded::Parse<'_> {
    form_urlencoded::parse(q.as_bytes())
}

/// serde reports a missing field at its parent's path with the name in the message
/// ("missing field `category`"); join the two so the client gets the full path.
fn field_of(path: &str, msg: &str) -> String {
    let missing = msg
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    match (path, missing) {
        (".", Some(name)) | ("", Some(name)) => name.to_string(),
        (p, Some(name)) => format!("{p}.{name}"),
        (".", None) | ("", None) => "body".to_string(),
        (p, None) => p.to_string(),
    }
}

fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Loc {
        lat: f64,
    }
    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Body {
        category: String,
        location: Loc,
    }

    fn field(e: ApiError) -> String {
        match e {
            ApiError::Validation(f) => f[0].field.clone(),
            other => panic!("expected validation, got {other:?}"),
        }
    }

    #[test]
    fn missing_field_is_named() {
        let e = parse_json::<Body>(br#"{"location":{"lat":1}}"#).unwrap_err();
        assert_eq!(field(e), "category");
        let e = parse_json::<Body>(br#"{"category":"x","location":{}}"#).unwrap_err();
        assert_eq!(field(e), "location.lat");
    }

    #[test]
    fn wrong_type_is_named() {
        let e = parse_json::<Body>(br#"{"category":"x","location":{"lat":"north"}}"#).unwrap_err();
        assert_eq!(field(e), "location.lat");
    }

    #[test]
    fn syntax_error_is_bad_request() {
        let e = parse_json::<Body>(br#"{"category":"#).unwrap_err();
        assert!(matches!(e, ApiError::BadRequest { .. }));
    }

    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Q {
        limit: Option<u32>,
    }

    #[test]
    fn query_errors_name_the_parameter() {
        let e = parse_query::<Q>("limit=many").unwrap_err();
        assert_eq!(field(e), "limit");
        assert_eq!(parse_query::<Q>("limit=5").unwrap().limit, Some(5));
    }
}

/// A path parameter; a malformed one (say, not a UUID) is 400 naming the parameter.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(r: axum::extract::rejection::PathRejection) -> Self {
        ApiError::BadRequest {
            detail: r.body_text(),
            errors: vec![FieldError::new("path", r.body_text())],
        }
    }
}

/// A deserializer adapter that reads structs from maps only: serde's derived structs accept a
/// sequence of their fields too, which for a JSON API means `["a","b"]` is taken for
/// `{"x":"a","y":"b"}`. Every nested value goes through the adapter, so the rule holds at any
/// depth. serde_json's raw values pass through untouched.
mod strict {
    use serde::de::{self, DeserializeSeed, Deserializer, Visitor};

    pub struct Strict<D>(pub D);

    struct Seed<S>(S);
    struct V<T>(T);
    struct Access<A>(A);

    const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

    impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<S> {
        type Value = S::Value;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            self.0.deserialize(Strict(d))
        }
    }

    macro_rules! forward {
        ($($m:ident),* $(,)?) => {
            $(fn $m<W: Visitor<'de>>(self, v: W) -> Result<W::Value, D::Error> {
                self.0.$m(V(v))
            })*
        };
    }

    impl<'de, D: Deserializer<'de>> Deserializer<'de> for Strict<D> {
        type Error = D::Error;
        forward!(
            deserialize_any,
            deserialize_bool,
            deserialize_i8,
            deserialize_i16,
            deserialize_i32,
            deserialize_i64,
            deserialize_i128,
            deserialize_u8,
            deserialize_u16,
            deserialize_u32,
            deserialize_u64,
            deserialize_u128,
            deserialize_f32,
            deserialize_f64,
            deserialize_char,
            deserialize_str,
            deserialize_string,
            deserialize_bytes,
            deserialize_byte_buf,
            deserialize_option,
            deserialize_unit,
            deserialize_seq,
            deserialize_map,
            deserialize_identifier,
            deserialize_ignored_any,
        );
        fn deserialize_unit_struct<W: Visitor<'de>>(
            self,
            name: &'static str,
            v: W,
        ) -> Result<W::Value, D::Error> {
            self.0.deserialize_unit_struct(name, V(v))
        }
        fn deserialize_newtype_struct<W: Visitor<'de>>(
            self,
            name: &'static str,
            v: W,
        ) -> Result<W::Value, D::Error> {
            if name == RAW_VALUE_TOKEN {
                return self.0.deserialize_newtype_struct(name, v);
            }
            self.0.deserialize_newtype_struct(name, V(v))
        }
        fn deserialize_tuple<W: Visitor<'de>>(
            self,
            len: usize,
            v: W,
        ) -> Result<W::Value, D::Error> {
            self.0.deserialize_tuple(len, V(v))
        }
        fn deserialize_tuple_struct<W: Visitor<'de>>(
            self,
            name: &'static str,
            len: usize,
            v: W,
        ) -> Result<W::Value, D::Error> {
            self.0.deserialize_tuple_struct(name, len, V(v))
        }
        /// The point of the adapter: a struct is read as a map, so a sequence is refused as
        /// "invalid type: sequence, expected struct …".
        fn deserialize_struct<W: Visitor<'de>>(
            self,
            _name: &'static str,
            _fields: &'static [&'static str],
            v: W,
        ) -> Result<W::Value, D::Error> {
            self.0.deserialize_map(V(v))
        }
        fn deserialize_enum<W: Visitor<'de>>(
            self,
            name: &'static str,
            variants: &'static [&'static str],
            v: W,
        ) -> Result<W::Value, D::Error> {
            self.0.deserialize_enum(name, variants, V(v))
        }
        fn is_human_readable(&self) -> bool {
            self.0.is_human_readable()
        }
    }

    macro_rules! visit {
        ($($m:ident($t:ty)),* $(,)?) => {
            $(fn $m<E: de::Error>(self, x: $t) -> Result<T::Value, E> { self.0.$m(x) })*
        };
    }

    impl<'de, T: Visitor<'de>> Visitor<'de> for V<T> {
        type Value = T::Value;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            self.0.expecting(f)
        }
        visit!(
            visit_bool(bool),
            visit_i8(i8),
            visit_i16(i16),
            visit_i32(i32),
            visit_i64(i64),
            visit_i128(i128),
            visit_u8(u8),
            visit_u16(u16),
            visit_u32(u32),
            visit_u64(u64),
            visit_u128(u128),
            visit_f32(f32),
            visit_f64(f64),
            visit_char(char),
            visit_str(&str),
            visit_borrowed_str(&'de str),
            visit_string(String),
            visit_bytes(&[u8]),
            visit_borrowed_bytes(&'de [u8]),
            visit_byte_buf(Vec<u8>),
        );
        fn visit_none<E: de::Error>(self) -> Result<T::Value, E> {
            self.0.visit_none()
        }
        fn visit_unit<E: de::Error>(self) -> Result<T::Value, E> {
            self.0.visit_unit()
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<T::Value, D::Error> {
            self.0.visit_some(Strict(d))
        }
        fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<T::Value, D::Error> {
            self.0.visit_newtype_struct(Strict(d))
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, a: A) -> Result<T::Value, A::Error> {
            self.0.visit_seq(Access(a))
        }
        fn visit_map<A: de::MapAccess<'de>>(self, a: A) -> Result<T::Value, A::Error> {
            self.0.visit_map(Access(a))
        }
        fn visit_enum<A: de::EnumAccess<'de>>(self, a: A) -> Result<T::Value, A::Error> {
            self.0.visit_enum(Access(a))
        }
    }

    impl<'de, A: de::SeqAccess<'de>> de::SeqAccess<'de> for Access<A> {
        type Error = A::Error;
        fn next_element_seed<S: DeserializeSeed<'de>>(
            &mut self,
            s: S,
        ) -> Result<Option<S::Value>, A::Error> {
            self.0.next_element_seed(Seed(s))
        }
        fn size_hint(&self) -> Option<usize> {
            self.0.size_hint()
        }
    }

    impl<'de, A: de::MapAccess<'de>> de::MapAccess<'de> for Access<A> {
        type Error = A::Error;
        fn next_key_seed<K: DeserializeSeed<'de>>(
            &mut self,
            k: K,
        ) -> Result<Option<K::Value>, A::Error> {
            self.0.next_key_seed(Seed(k))
        }
        fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, s: S) -> Result<S::Value, A::Error> {
            self.0.next_value_seed(Seed(s))
        }
        fn size_hint(&self) -> Option<usize> {
            self.0.size_hint()
        }
    }

    impl<'de, A: de::EnumAccess<'de>> de::EnumAccess<'de> for Access<A> {
        type Error = A::Error;
        type Variant = Access<A::Variant>;
        fn variant_seed<S: DeserializeSeed<'de>>(
            self,
            s: S,
        ) -> Result<(S::Value, Self::Variant), A::Error> {
            self.0
                .variant_seed(Seed(s))
                .map(|(value, variant)| (value, Access(variant)))
        }
    }

    impl<'de, A: de::VariantAccess<'de>> de::VariantAccess<'de> for Access<A> {
        type Error = A::Error;
        fn unit_variant(self) -> Result<(), A::Error> {
            self.0.unit_variant()
        }
        fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, s: S) -> Result<S::Value, A::Error> {
            self.0.newtype_variant_seed(Seed(s))
        }
        fn tuple_variant<W: Visitor<'de>>(self, len: usize, v: W) -> Result<W::Value, A::Error> {
            self.0.tuple_variant(len, V(v))
        }
        fn struct_variant<W: Visitor<'de>>(
            self,
            fields: &'static [&'static str],
            v: W,
        ) -> Result<W::Value, A::Error> {
            // Struct variants too are read from maps only.
            self.0.struct_variant(fields, V(v))
        }
    }
}

#[cfg(test)]
mod strict_tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Login {
        username: String,
        password: String,
        device_id: String,
    }

    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Outer {
        inner: Login,
        list: Vec<Login>,
        opt: Option<Login>,
    }

    #[test]
    fn an_array_is_not_an_object() {
        let e = parse_json::<Login>(br#"["handhaver","demo","x"]"#).unwrap_err();
        assert!(matches!(e, ApiError::Validation(_)), "{e:?}");
        let obj = r#"{"username":"a","password":"b","device_id":"c"}"#;
        for body in [
            r#"{"inner":["a","b","c"],"list":[],"opt":null}"#.to_string(),
            format!(r#"{{"inner":{obj},"list":[["a","b","c"]],"opt":null}}"#),
            format!(r#"{{"inner":{obj},"list":[],"opt":["a","b","c"]}}"#),
        ] {
            let e = parse_json::<Outer>(body.as_bytes()).unwrap_err();
            assert!(matches!(e, ApiError::Validation(_)), "{body}: {e:?}");
        }
        let ok = format!(r#"{{"inner":{obj},"list":[{obj}],"opt":{obj}}}"#);
        assert!(parse_json::<Outer>(ok.as_bytes()).is_ok());
    }

    #[test]
    fn trailing_data_is_refused() {
        let obj = r#"{"username":"a","password":"b","device_id":"c"}"#;
        assert!(parse_json::<Login>(format!("{obj} \n").as_bytes()).is_ok());
        for tail in ["x", "{}", " 1", "\n{\"a\":1}"] {
            let e = parse_json::<Login>(format!("{obj}{tail}").as_bytes()).unwrap_err();
            assert!(matches!(e, ApiError::BadRequest { .. }), "{tail}: {e:?}");
        }
    }

    #[test]
    fn raw_values_and_untyped_values_still_parse() {
        #[derive(Deserialize)]
        struct WithRaw {
            rows: Vec<Box<serde_json::value::RawValue>>,
        }
        let w: WithRaw = parse_json(br#"{"rows":[{"a":1},[1,2]]}"#).unwrap();
        assert_eq!(w.rows[1].get(), "[1,2]");
        let v: serde_json::Value = parse_json(br#"[1,{"a":[2]}]"#).unwrap();
        assert_eq!(v[1]["a"][0], 2);
    }

    #[test]
    fn json_content_types() {
        let h = |v: &str| {
            let mut m = axum::http::HeaderMap::new();
            m.insert(header::CONTENT_TYPE, v.parse().unwrap());
            m
        };
        assert!(is_json(&h("application/json")));
        assert!(is_json(&h("Application/JSON; charset=utf-8")));
        assert!(is_json(&h("application/merge-patch+json")));
        assert!(!is_json(&h("text/plain")));
        assert!(!is_json(&h("text/json+json")));
        assert!(!is_json(&axum::http::HeaderMap::new()));
    }
}
