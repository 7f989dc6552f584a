//! The AWS connection of a profile: region, endpoint, credentials (both keys or neither) and
//! the named AWS profile.

use super::context::Scope;
use crate::backend::aws::AwsOptions;
use crate::error::Result;

pub(super) fn aws_options(scope: &Scope<'_>) -> Result<AwsOptions> {
    check_key_pair(scope)?;
    let endpoint_url = endpoint_url(scope)?;
    Ok(AwsOptions {
        region: scope.opt_str("aws_region_name")?,
        endpoint_url,
        access_key: scope.opt_str("aws_access_key")?,
        secret_key: scope.opt_str("aws_secret_key")?,
        profile: scope.opt_str("aws_profile")?,
    })
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
