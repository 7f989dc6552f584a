//! The AWS connection of a profile: region, endpoint, credentials (both keys or neither) and
//! the named AWS profile.

use super::context::Scope;
use crate::backend::aws::{AwsOptions, Timeouts};
use crate::error::Result;
use std::time::Duration;

pub(super) fn aws_options(scope: &Scope<'_>) -> Result<AwsOptions> {
    check_key_pair(scope)?;
    let endpoint_url = endpoint_url(scope)?;
    Ok(AwsOptions {
        region: scope.opt_str("aws_region_name")?,
        endpoint_url,
        access_key: scope.opt_str("aws_access_key")?,
        secret_key: scope.opt_str("aws_secret_key")?,
        profile: scope.opt_str("aws_profile")?,
        timeouts: timeouts(scope)?,
    })
}

/// `connect_timeout`, `read_timeout`, `stall_timeout` and `request_timeout`.
fn timeouts(scope: &Scope<'_>) -> Result<Timeouts> {
    let d = Timeouts::DEFAULT;
    Ok(Timeouts {
        connect: seconds(scope, "connect_timeout", d.connect)?,
        read: seconds(scope, "read_timeout", d.read)?,
        stall: seconds(scope, "stall_timeout", d.stall)?,
        request: seconds(scope, "request_timeout", d.request)?,
    })
}

/// A duration key: seconds, or a number with `s`, `m` or `h`; 1 s to 24 h.
fn seconds(scope: &Scope<'_>, key: &str, default: Duration) -> Result<Duration> {
    let Some(v) = scope.get(key) else {
        return Ok(default);
    };
    let text = scope.ctx.single(&v, false)?;
    match parse_duration(text) {
        Some(d) if (1..=86_400).contains(&d.as_secs()) => Ok(d),
        _ => Err(scope.err(
            v.line(),
            format!(
                "`{key}` = {}: write a duration from 1 second to 24 hours, such as 30, 30s, 5m \
                 or 1h",
                scope.ctx.shown(&v)
            ),
        )),
    }
}

/// `30`, `30s`, `5m`, `1h` (whole numbers).
pub(super) fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim().to_ascii_lowercase();
    let (num, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t.as_str(), "s"),
    };
    let n: u64 = num.parse().ok()?;
    let factor = match unit.trim() {
        "s" | "sec" | "secs" | "seconds" => 1,
        "m" | "min" | "minutes" => 60,
        "h" | "hours" => 3600,
        _ => return None,
    };
    Some(Duration::from_secs(n.checked_mul(factor)?))
}

/// `aws_access_key` and `aws_secret_key` come together or not at all.
fn check_key_pair(scope: &Scope<'_>) -> Result<()> {
    let (set, missing) = match (scope.get("aws_access_key"), scope.get("aws_secret_key")) {
        (Some(v), None) => (v, "aws_secret_key"),
        (None, Some(v)) => (v, "aws_access_key"),
        _ => return Ok(()),
    };
    Err(scope.err(
        set.line(),
        format!(
            "`{}` is set but `{missing}` is not{}: set both, or neither to use the AWS chain",
            set.entry.key,
            scope.where_from(&set)
        ),
    ))
}

/// `endpoint_url`, which must be an http:// or https:// URL.
fn endpoint_url(scope: &Scope<'_>) -> Result<Option<String>> {
    let Some(v) = scope.get("endpoint_url") else {
        return Ok(None);
    };
    let url = scope.ctx.single(&v, false)?;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(scope.err(
            v.line(),
            format!(
                "`endpoint_url` = {}: write a URL starting with http:// or https://",
                scope.ctx.shown(&v)
            ),
        ));
    }
    Ok(Some(url.to_string()))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_are_seconds_or_take_a_unit() {
        let s = Duration::from_secs;
        assert_eq!(parse_duration("30"), Some(s(30)));
        assert_eq!(parse_duration("30s"), Some(s(30)));
        assert_eq!(parse_duration("5m"), Some(s(300)));
        assert_eq!(parse_duration("1h"), Some(s(3600)));
        assert_eq!(parse_duration(" 2 min "), Some(s(120)));
        for bad in ["", "soon", "5 weeks", "-1", "1.5s", "s"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}
