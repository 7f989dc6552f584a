//! TIME arguments: RFC 3339 (`2026-11-26T10:00:00Z`) or a date (`2026-11-26`, the end of that
//! day in local time). Times are handled as seconds since the Unix epoch.

use crate::error::{Error, Result};
use chrono::{DateTime, Local, NaiveDate, TimeZone, Utc};

/// Parses a TIME argument into seconds since the epoch.
pub fn parse(s: &str) -> Result<i64> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp());
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let end = d.and_hms_opt(23, 59, 59).expect("valid time of day");
        let local = Local
            .from_local_datetime(&end)
            .latest()
            .ok_or_else(|| Error::Usage(format!("{s}: no such local time")))?;
        return Ok(local.timestamp());
    }
    Err(Error::Usage(format!(
        "bad time {s:?}: use RFC 3339 (2026-11-26T10:00:00Z) or a date (2026-11-26)"
    )))
}

/// RFC 3339 in UTC with seconds, e.g. `2026-11-26T10:00:00Z`.
pub fn format(secs: i64) -> String {
    Utc.timestamp_opt(secs, 0)
        .single()
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| secs.to_string())
}

/// RFC 3339 in UTC with nanoseconds when there are any.
pub fn format_ns(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000) as u32;
    Utc.timestamp_opt(secs, nanos)
        .single()
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| ns.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_forms() {
        assert_eq!(parse("2026-11-26T10:00:00Z").unwrap(), 1_795_687_200);
        assert_eq!(parse("2026-11-26T11:00:00+01:00").unwrap(), 1_795_687_200);
        let end_of_day = parse("2026-11-26").unwrap();
        let start = Local
            .from_local_datetime(
                &NaiveDate::from_ymd_opt(2026, 11, 26)
                    .unwrap()
                    .and_hms_opt(0, 0, 0)
                    .unwrap(),
            )
            .earliest()
            .unwrap()
            .timestamp();
        assert_eq!(end_of_day - start, 86_399);
        assert!(parse("yesterday").is_err());
    }

    #[test]
    fn formats() {
        assert_eq!(format(1_795_687_200), "2026-11-26T10:00:00Z");
        assert_eq!(
            format_ns(1_795_687_200_000_000_001),
            "2026-11-26T10:00:00.000000001Z"
        );
        assert_eq!(format_ns(1_795_687_200_000_000_000), "2026-11-26T10:00:00Z");
    }
}
