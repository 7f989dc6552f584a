//! The lifecycle keys: the retention policy `prune` applies (`keep_*`), how many catalog copies
//! it keeps, a longer minimum hold (`min_storage_days`) and the default restore cost cap.

use super::context::Scope;
use crate::error::Result;
use crate::prune::{CalendarSpan, Retention};

/// Default of `keep_catalog_copies`.
pub const DEFAULT_KEEP_CATALOG_COPIES: u32 = 3;

/// What `prune` and `restore` read from a profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Lifecycle {
    pub retention: Retention,
    /// Catalog copies kept in the backend (at least 1).
    pub keep_catalog_copies: u32,
    /// Days an archive is held at least, whatever its class allows (never shortens the hold).
    pub min_storage_days: u32,
    /// Default of `restore --max-cost`, in USD.
    pub max_restore_cost: Option<f64>,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            retention: Retention::default(),
            keep_catalog_copies: DEFAULT_KEEP_CATALOG_COPIES,
            min_storage_days: 0,
            max_restore_cost: None,
        }
    }
}

/// A whole number of `key`, if set; `min` is the least accepted.
fn count(scope: &Scope<'_>, key: &str, min: u32) -> Result<Option<u32>> {
    let Some(v) = scope.get(key) else {
        return Ok(None);
    };
    let text = scope.ctx.single(&v, false)?.trim();
    match text.parse::<u32>() {
        Ok(n) if n >= min => Ok(Some(n)),
        _ => Err(scope.err(
            v.line(),
            format!(
                "`{key}` = `{text}`: not a whole number of at least {min}: write a count such as 7{}",
                scope.where_from(&v)
            ),
        )),
    }
}

/// `keep_within`: a calendar span such as `30d`, `6m`, `1y`.
fn within(scope: &Scope<'_>) -> Result<Option<CalendarSpan>> {
    let Some(v) = scope.get("keep_within") else {
        return Ok(None);
    };
    let text = scope.ctx.single(&v, false)?;
    CalendarSpan::parse(text).map(Some).ok_or_else(|| {
        scope.err(
            v.line(),
            format!(
                "`keep_within` = `{text}`: not a duration: write a number and a unit (h, d, w, m \
                 for months, y), such as 30d, 6m, 1y or 1y6m{}",
                scope.where_from(&v)
            ),
        )
    })
}

/// `max_restore_cost`: US dollars, zero or more.
fn max_cost(scope: &Scope<'_>) -> Result<Option<f64>> {
    let Some(v) = scope.get("max_restore_cost") else {
        return Ok(None);
    };
    let text = scope.ctx.single(&v, false)?.trim();
    let usd = text.strip_prefix('$').unwrap_or(text).trim();
    match usd.parse::<f64>() {
        Ok(n) if n.is_finite() && n >= 0.0 => Ok(Some(n)),
        _ => Err(scope.err(
            v.line(),
            format!(
                "`max_restore_cost` = `{text}`: not an amount of US dollars: write one such as 5 or 12.50{}",
                scope.where_from(&v)
            ),
        )),
    }
}

/// The profile's lifecycle keys (its own, else `[global]`'s).
pub(super) fn lifecycle(scope: &Scope<'_>) -> Result<Lifecycle> {
    let retention = Retention {
        last: count(scope, "keep_last", 0)?.unwrap_or(0),
        hourly: count(scope, "keep_hourly", 0)?.unwrap_or(0),
        daily: count(scope, "keep_daily", 0)?.unwrap_or(0),
        weekly: count(scope, "keep_weekly", 0)?.unwrap_or(0),
        monthly: count(scope, "keep_monthly", 0)?.unwrap_or(0),
        yearly: count(scope, "keep_yearly", 0)?.unwrap_or(0),
        within: within(scope)?,
    };
    Ok(Lifecycle {
        retention,
        keep_catalog_copies: count(scope, "keep_catalog_copies", 1)?
            .unwrap_or(DEFAULT_KEEP_CATALOG_COPIES),
        min_storage_days: count(scope, "min_storage_days", 0)?.unwrap_or(0),
        max_restore_cost: max_cost(scope)?,
    })
}
