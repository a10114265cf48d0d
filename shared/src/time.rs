//! Timestamps as the contract writes them: RFC 3339, UTC, millisecond precision, `Z` suffix.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serializer};

/// The current time, truncated to the millisecond so that what is stored reads back identical.
pub fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

/// Formats a timestamp the way every message and body carries it.
pub fn format(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `#[serde(with = "crate::time::rfc3339")]` for `DateTime<Utc>` fields.
pub mod rfc3339 {
    use super::*;

    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format(at))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(deserializer)?;
        DateTime::parse_from_rfc3339(&text).map(|at| at.with_timezone(&Utc)).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_with_millis_and_z() {
        let at = DateTime::parse_from_rfc3339("2026-11-25T20:28:56.123456+02:00").unwrap().with_timezone(&Utc);
        assert_eq!(format(&at), "2026-11-25T18:28:56.123Z");
    }

    #[test]
    fn now_round_trips_through_text() {
        let at = now();
        let parsed = DateTime::parse_from_rfc3339(&format(&at)).unwrap().with_timezone(&Utc);
        assert_eq!(parsed, at);
    }
}
