//! Cost estimates from list prices (US East, N. Virginia, as published for 2025). Estimates
//! only: regions, free tiers and price changes differ. Storage is charged per GB-month (GB =
//! 2^30 bytes here), each archived object carries metadata overhead, uploads per request.

use serde::Serialize;

/// Prices of one storage place.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pricing {
    /// USD per GB-month of data.
    pub storage_gb_month: f64,
    /// USD per 1,000 upload requests (PUT, part, complete).
    pub upload_per_1000: f64,
    /// Overhead per object billed at the data's rate, in bytes.
    pub overhead_bytes: u64,
    /// Overhead per object billed at the STANDARD rate, in bytes.
    pub overhead_standard_bytes: u64,
}

const GB: f64 = (1u64 << 30) as f64;
const STANDARD_GB_MONTH: f64 = 0.023;

/// Prices for a backend (`local`, `s3`, `glacier`) and, for S3, its storage class.
pub fn pricing(backend: &str, storage_class: Option<&str>) -> Pricing {
    let free = Pricing {
        storage_gb_month: 0.0,
        upload_per_1000: 0.0,
        overhead_bytes: 0,
        overhead_standard_bytes: 0,
    };
    match backend {
        "glacier" => Pricing {
            storage_gb_month: 0.0036,
            upload_per_1000: 0.05,
            overhead_bytes: 32 * 1024,
            overhead_standard_bytes: 8 * 1024,
        },
        "s3" => match storage_class.unwrap_or("DEEP_ARCHIVE") {
            "DEEP_ARCHIVE" => Pricing {
                storage_gb_month: 0.00099,
                upload_per_1000: 0.05,
                overhead_bytes: 32 * 1024,
                overhead_standard_bytes: 8 * 1024,
            },
            "GLACIER" => Pricing {
                storage_gb_month: 0.0036,
                upload_per_1000: 0.03,
                overhead_bytes: 32 * 1024,
                overhead_standard_bytes: 8 * 1024,
            },
            "GLACIER_IR" => Pricing {
                storage_gb_month: 0.004,
                upload_per_1000: 0.02,
                ..free
            },
            "STANDARD_IA" => Pricing {
                storage_gb_month: 0.0125,
                upload_per_1000: 0.01,
                ..free
            },
            _ => Pricing {
                storage_gb_month: STANDARD_GB_MONTH,
                upload_per_1000: 0.005,
                ..free
            },
        },
        _ => free,
    }
}

/// A cost estimate in USD.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Estimate {
    pub monthly_storage_usd: f64,
    pub upload_requests_usd: f64,
}

impl Pricing {
    /// Monthly cost of keeping `bytes` in `objects` objects.
    pub fn monthly(&self, bytes: u64, objects: u64) -> f64 {
        let data = (bytes + objects * self.overhead_bytes) as f64 / GB * self.storage_gb_month;
        let meta = (objects * self.overhead_standard_bytes) as f64 / GB * STANDARD_GB_MONTH;
        data + meta
    }

    /// Cost of `requests` upload requests.
    pub fn uploads(&self, requests: u64) -> f64 {
        requests as f64 / 1000.0 * self.upload_per_1000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_archive_is_cheapest_and_local_is_free() {
        let tb = 1u64 << 40;
        let deep = pricing("s3", Some("DEEP_ARCHIVE")).monthly(tb, 0);
        assert!((deep - 1.01376).abs() < 1e-3, "{deep}");
        assert!(pricing("glacier", None).monthly(tb, 0) > deep);
        assert_eq!(pricing("local", None).monthly(tb, 1000), 0.0);
        // Overhead makes many small objects cost more than few large ones.
        let p = pricing("s3", Some("GLACIER"));
        assert!(p.monthly(1 << 30, 100_000) > p.monthly(1 << 30, 10));
        assert!((p.uploads(1000) - 0.03).abs() < 1e-12);
    }
}
