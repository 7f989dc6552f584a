//! Checksums as S3 wants them: standard base64 of SHA-256 for `x-amz-checksum-sha256`, and
//! the request signed with a payload hash we computed, so the SDK does not hash a body twice.

use crate::hash::sha256;
use aws_runtime::auth::PayloadSigningOverride;
use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::BoxError;

/// Standard base64 (RFC 4648, with padding), as S3 checksum headers use.
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The `x-amz-checksum-sha256` value of a body: base64 of its SHA-256.
pub fn checksum_sha256(body: &[u8]) -> String {
    base64(&sha256(body).0)
}

/// Signs a request with a payload hash computed by us, sparing the SDK a pass over the body.
#[derive(Debug)]
pub(super) struct PayloadHash(pub(super) String);

impl Intercept for PayloadHash {
    fn name(&self) -> &'static str {
        "glaciersync::PayloadHash"
    }

    fn modify_before_signing(
        &self,
        _context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> std::result::Result<(), BoxError> {
        cfg.interceptor_state()
            .store_put(PayloadSigningOverride::Precomputed(self.0.clone()));
        Ok(())
    }
}
