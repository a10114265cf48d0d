//! Extractors that answer bad input in the contract's shape: JSON bodies, query strings, the
//! client's address, and admin access.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use bytes::Bytes;
use http::header;
use http::request::Parts;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AppState;
use crate::config::{AllowedOrigins, is_loopback_host};
use crate::error::{ApiError, FieldError};

/// A JSON body: 415 without a JSON content type, 413 past the body limit, 400 when it is not JSON,
/// 422 (naming the field) when it does not fit the expected shape.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<mime_type::Essence>().ok())
            .is_some_and(|essence| essence.is_json());
        if !is_json {
            return Err(ApiError::unsupported_media_type("expected a JSON body with `Content-Type: application/json`"));
        }
        let bytes = Bytes::from_request(request, state).await.map_err(|rejection| {
            if rejection.status() == http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::payload_too_large("the request body is larger than this route accepts")
            } else {
                ApiError::bad_request("unreadable_body", rejection.body_text())
            }
        })?;
        decode_json(&bytes).map(ApiJson)
    }
}

/// Decodes JSON, telling malformed input (400) from a wrong shape (422 with the field's path).
///
/// The text is read as a JSON value first, so that only malformed text is a 400, then `T` is taken
/// from that value by [`strict::Strict`]: an object must be a JSON object (serde would also take an
/// array of the fields in order), and an enum given a number or `null` is a wrong shape (serde_json
/// calls that a syntax error).
pub fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_json::Value::deserialize(&mut deserializer)
        .map_err(|error| ApiError::bad_request("malformed_json", format!("the request body is not valid JSON: {error}")))?;
    deserializer
        .end()
        .map_err(|error| ApiError::bad_request("malformed_json", format!("unexpected content after the JSON value: {error}")))?;
    serde_path_to_error::deserialize(strict::Strict(value)).map_err(|error| {
        let path = error.path().to_string();
        let field = if path == "." { "body".to_owned() } else { path };
        ApiError::validation(vec![FieldError::new(field, strip_position(&error.into_inner().to_string()))])
    })
}

/// A JSON value that deserializes like `serde_json::Value` does, less two leniencies the contract
/// does not have: a struct comes from a JSON object only, and an enum from a string (or, for an
/// enum with data, an object).
mod strict {
    use serde::de::value::{MapDeserializer, SeqDeserializer};
    use serde::de::{self, IntoDeserializer, Unexpected, Visitor};
    use serde::forward_to_deserialize_any;
    use serde_json::{Error, Value};

    pub struct Strict(pub Value);

    impl<'de> IntoDeserializer<'de, Error> for Strict {
        type Deserializer = Strict;

        fn into_deserializer(self) -> Strict {
            self
        }
    }

    fn unexpected(value: &Value) -> Unexpected<'_> {
        match value {
            Value::Null => Unexpected::Unit,
            Value::Bool(boolean) => Unexpected::Bool(*boolean),
            Value::Number(number) => match (number.as_u64(), number.as_i64()) {
                (Some(unsigned), _) => Unexpected::Unsigned(unsigned),
                (None, Some(signed)) => Unexpected::Signed(signed),
                (None, None) => Unexpected::Float(number.as_f64().unwrap_or_default()),
            },
            Value::String(text) => Unexpected::Str(text),
            Value::Array(_) => Unexpected::Seq,
            Value::Object(_) => Unexpected::Map,
        }
    }

    impl<'de> de::Deserializer<'de> for Strict {
        type Error = Error;

        fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.0 {
                Value::Null => visitor.visit_unit(),
                Value::Bool(boolean) => visitor.visit_bool(boolean),
                Value::Number(number) => match (number.as_u64(), number.as_i64()) {
                    (Some(unsigned), _) => visitor.visit_u64(unsigned),
                    (None, Some(signed)) => visitor.visit_i64(signed),
                    (None, None) => visitor.visit_f64(number.as_f64().unwrap_or_default()),
                },
                Value::String(text) => visitor.visit_string(text),
                Value::Array(items) => {
                    let mut items = SeqDeserializer::<_, Error>::new(items.into_iter().map(Strict));
                    let value = visitor.visit_seq(&mut items)?;
                    items.end()?;
                    Ok(value)
                }
                Value::Object(entries) => {
                    let mut entries = MapDeserializer::<_, Error>::new(entries.into_iter().map(|(key, value)| (key, Strict(value))));
                    let value = visitor.visit_map(&mut entries)?;
                    entries.end()?;
                    Ok(value)
                }
            }
        }

        fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.0 {
                Value::Null => visitor.visit_none(),
                value => visitor.visit_some(Strict(value)),
            }
        }

        fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
            visitor.visit_newtype_struct(self)
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            _fields: &'static [&'static str],
            visitor: V,
        ) -> Result<V::Value, Error> {
            match &self.0 {
                Value::Object(_) => self.deserialize_any(visitor),
                other => Err(de::Error::invalid_type(unexpected(other), &"a JSON object")),
            }
        }

        fn deserialize_enum<V: Visitor<'de>>(
            self,
            name: &'static str,
            variants: &'static [&'static str],
            visitor: V,
        ) -> Result<V::Value, Error> {
            match self.0 {
                Value::String(variant) => visitor.visit_enum(variant.into_deserializer()),
                // An enum with data (`{"variant": …}`): serde_json's own rules.
                value @ Value::Object(_) => de::Deserializer::deserialize_enum(value, name, variants, visitor),
                other => Err(de::Error::invalid_type(unexpected(&other), &format!("one of {}", variants.join(", ")).as_str())),
            }
        }

        forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit unit_struct seq
            tuple tuple_struct map identifier ignored_any
        }
    }
}

/// serde_json appends "at line 1 column 17" to data errors; the field path says it better.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_owned(),
        None => message.to_owned(),
    }
}

/// Tiny media-type check, so `application/json; charset=utf-8` and `application/vnd.x+json` pass.
mod mime_type {
    pub struct Essence(String);

    impl std::str::FromStr for Essence {
        type Err = ();

        fn from_str(value: &str) -> Result<Self, ()> {
            let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
            if essence.contains('/') { Ok(Essence(essence)) } else { Err(()) }
        }
    }

    impl Essence {
        pub fn is_json(&self) -> bool {
            self.0 == "application/json" || (self.0.starts_with("application/") && self.0.ends_with("+json"))
        }
    }
}

/// A query string: 422 naming the parameter when it does not fit.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer).map(ApiQuery).map_err(|error| {
            let path = error.path().to_string();
            let field = if path == "." { "query".to_owned() } else { path };
            ApiError::validation(vec![FieldError::new(field, error.into_inner().to_string())])
        })
    }
}

/// Where a request comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr {
    /// The socket peer, when the host knows it (the node does).
    pub peer: Option<IpAddr>,
    /// The client: the last `X-Forwarded-For` address (the one the proxy added) when
    /// `TRUST_FORWARDED_FOR` is on, else the peer.
    pub client: Option<IpAddr>,
}

/// The source address a host that sees no socket (Lambda) found in its request context.
#[derive(Debug, Clone, Copy)]
pub struct SourceIp(pub IpAddr);

impl ClientAddr {
    /// Reads the addresses from a request's parts.
    pub fn from_parts(parts: &Parts, trust_forwarded_for: bool) -> Self {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip())
            .or_else(|| parts.extensions.get::<SourceIp>().map(|source| source.0));
        // The last address is the one our (trusted) proxy appended; earlier ones are whatever the
        // client claimed.
        let forwarded = || {
            parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|value| value.to_str().ok())
                .flat_map(|value| value.split(','))
                .next_back()
                .and_then(|last| last.trim().parse::<IpAddr>().ok())
        };
        let client = if trust_forwarded_for { forwarded().or(peer) } else { peer };
        ClientAddr { peer, client }
    }
}

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr::from_parts(parts, state.settings.trust_forwarded_for))
    }
}

/// Proof that the caller may use admin routes: the admin token (Bearer or `X-API-Key`, compared in
/// constant time), or, when no token is configured, a request made on this machine by a local tool
/// or one of the node's own pages. A loopback peer alone is not enough: a browser page from
/// anywhere can make one (a cross-site form or `fetch`, a DNS-rebinding page), and so does a reverse
/// proxy on the same host. See [`is_local_request`].
#[derive(Debug, Clone)]
pub struct AdminAccess {
    /// `token` or `loopback`.
    pub granted_by: &'static str,
}

impl FromRequestParts<AppState> for AdminAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match state.settings.admin_token() {
            Some(expected) => {
                let presented = presented_token(parts)
                    .ok_or_else(|| ApiError::unauthorized("this route needs the admin token (Authorization: Bearer … or X-API-Key)"))?;
                if tokens_match(presented, expected) {
                    Ok(AdminAccess { granted_by: "token" })
                } else {
                    Err(ApiError::unauthorized("the admin token is not valid"))
                }
            }
            None => {
                if is_local_request(parts, &state.settings.allowed_origins) {
                    Ok(AdminAccess { granted_by: "loopback" })
                } else {
                    Err(ApiError::forbidden(
                        "admin_token_required",
                        "admin routes are open to local requests only while no admin token is set",
                    )
                    .with_hint("set ADMIN_TOKEN on the server and send it as `Authorization: Bearer <token>`"))
                }
            }
        }
    }
}

/// Whether a request comes from this machine and not through a browser page of another site:
/// a loopback socket peer, a loopback `Host` (a DNS-rebinding page names its own host), no proxy headers,
/// no cross-site fetch metadata, and either no `Origin` (curl, scripts) or an allowed one.
pub fn is_local_request(parts: &Parts, allowed_origins: &AllowedOrigins) -> bool {
    let headers = &parts.headers;
    // Only a socket this process accepted counts: a Lambda function has no local callers, whatever
    // the request context says.
    let peer_is_loopback = parts.extensions.get::<ConnectInfo<SocketAddr>>().is_some_and(|info| info.0.ip().is_loopback());
    let host = headers.get(header::HOST).and_then(|value| value.to_str().ok());
    let host_is_loopback = host.is_some_and(is_loopback_host);
    let proxied = ["x-forwarded-for", "forwarded", "x-real-ip"].iter().any(|name| headers.contains_key(*name));
    let cross_site = headers.get("sec-fetch-site").and_then(|value| value.to_str().ok()).is_some_and(|site| site == "cross-site");
    let origin_ok = match headers.get(header::ORIGIN).and_then(|value| value.to_str().ok()) {
        None => true,
        Some(origin) => allowed_origins.allows(origin, host),
    };
    peer_is_loopback && host_is_loopback && !proxied && !cross_site && origin_ok
}

/// Whether the request presents `expected` (`Authorization: Bearer …` or `X-API-Key`), compared
/// in constant time.
pub fn presents_token(parts: &Parts, expected: &str) -> bool {
    presented_token(parts).is_some_and(|presented| tokens_match(presented, expected))
}

fn presented_token(parts: &Parts) -> Option<&str> {
    let bearer = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")))
        .map(str::trim);
    bearer.or_else(|| parts.headers.get("x-api-key").and_then(|value| value.to_str().ok()).map(str::trim))
}

/// Compares digests in constant time, so neither the content nor the length of the token leaks
/// through timing.
fn tokens_match(presented: &str, expected: &str) -> bool {
    let presented = Sha256::digest(presented.as_bytes());
    let expected = Sha256::digest(expected.as_bytes());
    presented.ct_eq(&expected).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        query: String,
        context: Option<Context>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Context {
        project_id: String,
    }

    #[test]
    fn malformed_json_is_400_and_a_wrong_shape_is_422_naming_the_field() {
        assert_eq!(decode_json::<Body>(b"{\"query\": ").unwrap_err().status(), http::StatusCode::BAD_REQUEST);
        assert_eq!(decode_json::<Body>(b"{\"query\": \"a\"} trailing").unwrap_err().code(), "malformed_json");
        let error = decode_json::<Body>(br#"{"query": "a", "context": {"project_id": 7}}"#).unwrap_err();
        assert_eq!(error.status(), http::StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(error.field_errors()[0].field, "context.project_id");
        assert!(!error.field_errors()[0].message.contains("line 1"));
        let missing = decode_json::<Body>(b"{}").unwrap_err();
        assert_eq!(missing.field_errors()[0].field, "body");
        assert!(missing.field_errors()[0].message.contains("query"));
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "lowercase")]
    #[allow(dead_code)]
    enum Kind {
        Notification,
        Error,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Tagged {
        kind: Kind,
        data: Option<serde_json::Map<String, serde_json::Value>>,
    }

    // Found by schemathesis (tests/blackbox/api_fuzz.rs): serde takes a struct from an array of its
    // fields, so `["hi"]` was asked as a question, and serde_json calls a number or `null` given for
    // an enum a syntax error, so valid JSON got 400 `malformed_json`.
    #[test]
    fn only_an_object_is_a_struct_and_a_wrong_enum_is_a_wrong_shape() {
        let array = decode_json::<Body>(br#"["hi"]"#).unwrap_err();
        assert_eq!((array.status(), array.field_errors()[0].field.as_str()), (http::StatusCode::UNPROCESSABLE_ENTITY, "body"));
        assert!(array.field_errors()[0].message.contains("expected a JSON object"), "{}", array.field_errors()[0].message);
        let nested = decode_json::<Body>(br#"{"query": "a", "context": ["default"]}"#).unwrap_err();
        assert_eq!(nested.field_errors()[0].field, "context");
        for body in [&br#"{"kind": 1}"#[..], br#"{"kind": null}"#, br#"[null, null]"#, br#"{"kind": "pong"}"#] {
            let error = decode_json::<Tagged>(body).unwrap_err();
            assert_eq!(error.status(), http::StatusCode::UNPROCESSABLE_ENTITY, "{}", String::from_utf8_lossy(body));
        }
        let tagged = decode_json::<Tagged>(br#"{"kind": "error", "data": {"n": [1, -2, 2.5, true, null, "x"]}}"#).unwrap();
        assert!(matches!(tagged.kind, Kind::Error));
        assert_eq!(tagged.data.unwrap()["n"], serde_json::json!([1, -2, 2.5, true, null, "x"]));
        let wrong_data = decode_json::<Tagged>(br#"{"kind": "error", "data": [1]}"#).unwrap_err();
        assert_eq!(wrong_data.field_errors()[0].field, "data");
    }

    fn parts(headers: &[(&str, &str)], peer: &str) -> Parts {
        let mut request = http::Request::builder().uri("/admin/restart");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let (mut parts, ()) = request.body(()).unwrap().into_parts();
        parts.extensions.insert(ConnectInfo::<SocketAddr>(peer.parse().unwrap()));
        parts
    }

    #[test]
    fn only_requests_made_on_this_machine_count_as_local() {
        let allowed: AllowedOrigins = "https://dash.example.com".parse().unwrap();
        let local = |headers: &[(&str, &str)], peer: &str| is_local_request(&parts(headers, peer), &allowed);
        assert!(local(&[("host", "127.0.0.1:8000")], "127.0.0.1:5000"), "curl on the machine");
        assert!(local(&[("host", "localhost:8000"), ("origin", "http://localhost:8000")], "127.0.0.1:5000"), "the node's own page");
        assert!(local(&[("host", "[::1]:8000")], "[::1]:5000"));
        assert!(!local(&[("host", "127.0.0.1:8000")], "10.0.0.7:5000"), "another machine");
        assert!(!local(&[("host", "rebind.example:8000")], "127.0.0.1:5000"), "a DNS-rebinding page");
        assert!(!local(&[("host", "127.0.0.1:8000"), ("origin", "https://evil.example")], "127.0.0.1:5000"), "a cross-site fetch");
        assert!(!local(&[("host", "127.0.0.1:8000"), ("sec-fetch-site", "cross-site")], "127.0.0.1:5000"), "a cross-site form");
        assert!(!local(&[("host", "127.0.0.1:8000"), ("x-forwarded-for", "203.0.113.9")], "127.0.0.1:5000"), "a local reverse proxy");
    }

    #[test]
    fn the_forwarded_client_is_the_address_the_proxy_appended() {
        let forwarded = parts(&[("x-forwarded-for", "6.6.6.6, 203.0.113.9")], "127.0.0.1:5000");
        assert_eq!(ClientAddr::from_parts(&forwarded, true).client, Some("203.0.113.9".parse().unwrap()));
        assert_eq!(ClientAddr::from_parts(&forwarded, false).client, Some("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn tokens_compare_by_content() {
        assert!(tokens_match("s3cret", "s3cret"));
        assert!(!tokens_match("s3cre", "s3cret"));
        assert!(!tokens_match("", "s3cret"));
    }
}
