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

/// The date the retrieval and transfer prices below were taken from AWS's published price
/// pages (Amazon S3 pricing, Amazon Glacier pricing, and the worked examples of AWS's knowledge
/// center article `s3-manage-data-retrieval`), US East (N. Virginia).
pub const RETRIEVAL_PRICES_DATE: &str = "2026-12-01";

/// USD per GB transferred out of AWS to the internet (first 10 TB a month; the monthly free
/// 100 GB is not counted, so quotes err high).
pub const TRANSFER_OUT_GB: f64 = 0.09;

/// Prices of retrieving from one storage place with one tier.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RetrievalPrice {
    /// USD per GB thawed (retrieved).
    pub per_gb: f64,
    /// USD per 1,000 retrieval requests.
    pub per_1000_requests: f64,
}

/// The one retrieval price table: `(place, tier, price)`. A place is `s3:<CLASS>` or `glacier`.
/// S3 `DEEP_ARCHIVE` has no expedited tier (AWS refuses it); it is quoted at the standard price.
pub const RETRIEVAL_PRICES: &[(&str, &str, RetrievalPrice)] = &[
    ("s3:GLACIER", "expedited", price(0.03, 10.0)),
    ("s3:GLACIER", "standard", price(0.01, 0.05)),
    ("s3:GLACIER", "bulk", price(0.0, 0.0)),
    ("s3:DEEP_ARCHIVE", "expedited", price(0.02, 0.10)),
    ("s3:DEEP_ARCHIVE", "standard", price(0.02, 0.10)),
    ("s3:DEEP_ARCHIVE", "bulk", price(0.0025, 0.025)),
    ("glacier", "expedited", price(0.03, 10.0)),
    ("glacier", "standard", price(0.01, 0.05)),
    ("glacier", "bulk", price(0.0025, 0.025)),
];

const fn price(per_gb: f64, per_1000_requests: f64) -> RetrievalPrice {
    RetrievalPrice {
        per_gb,
        per_1000_requests,
    }
}

/// What a restore would cost: thawing (retrieval) and transfer out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RestoreQuote {
    pub tier: String,
    /// `s3:<CLASS>`, `glacier` or `local`.
    pub place: String,
    pub bytes_to_thaw: u64,
    pub thaw_requests: u64,
    pub bytes_to_download: u64,
    pub thaw_usd: f64,
    pub transfer_usd: f64,
    pub total_usd: f64,
    /// Which table priced it: its date and region.
    pub price_table: String,
}

/// Quotes thawing `bytes_to_thaw` in `thaw_requests` requests with `tier`, then downloading
/// `bytes_to_download`, from `backend` (`local`, `s3`, `glacier`) and S3 class `class`.
pub fn restore_quote(
    backend: &str,
    class: Option<&str>,
    tier: &str,
    bytes_to_thaw: u64,
    thaw_requests: u64,
    bytes_to_download: u64,
) -> RestoreQuote {
    let place = match backend {
        "s3" => format!("s3:{}", class.unwrap_or("DEEP_ARCHIVE")),
        other => other.to_string(),
    };
    let p = RETRIEVAL_PRICES
        .iter()
        .find(|(pl, t, _)| *pl == place && *t == tier)
        .map_or(price(0.0, 0.0), |e| e.2);
    let thaw_usd =
        bytes_to_thaw as f64 / GB * p.per_gb + thaw_requests as f64 / 1000.0 * p.per_1000_requests;
    let transfer_usd = if backend == "local" {
        0.0
    } else {
        bytes_to_download as f64 / GB * TRANSFER_OUT_GB
    };
    RestoreQuote {
        tier: tier.to_string(),
        place,
        bytes_to_thaw,
        thaw_requests,
        bytes_to_download,
        thaw_usd,
        transfer_usd,
        total_usd: thaw_usd + transfer_usd,
        price_table: format!(
            "AWS list prices, us-east-1, taken {RETRIEVAL_PRICES_DATE} (thaw ${}/GB + ${}/1,000 requests, transfer ${TRANSFER_OUT_GB}/GB)",
            p.per_gb, p.per_1000_requests
        ),
    }
}

impl std::fmt::Display for RestoreQuote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "${:.2} (thaw {} with the {} tier in {} requests from {}: ${:.2}; transfer {}: ${:.2}; {})",
            self.total_usd,
            crate::units::bytes(self.bytes_to_thaw),
            self.tier,
            self.thaw_requests,
            self.place,
            self.thaw_usd,
            crate::units::bytes(self.bytes_to_download),
            self.transfer_usd,
            self.price_table
        )
    }
}

/// Minimum storage days of an archive: local 0; S3 by class; a Glacier vault 90. An unknown
/// S3 class is taken as the longest (`DEEP_ARCHIVE`), so no deletion is ever early.
pub fn min_storage_days(backend: &str, class: Option<&str>) -> u32 {
    match backend {
        "glacier" => 90,
        "s3" => match class.unwrap_or("DEEP_ARCHIVE") {
            "STANDARD" => 0,
            "STANDARD_IA" => 30,
            "GLACIER_IR" | "GLACIER" => 90,
            _ => 180,
        },
        _ => 0,
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

    #[test]
    fn restore_quotes_price_thaw_requests_and_transfer() {
        let gb = 1u64 << 30;
        // 10 GB in 1,000 objects from DEEP_ARCHIVE, bulk: 10 × 0.0025 + 0.025 + 10 × 0.09.
        let q = restore_quote("s3", Some("DEEP_ARCHIVE"), "bulk", 10 * gb, 1000, 10 * gb);
        assert!((q.thaw_usd - 0.05).abs() < 1e-9, "{q:?}");
        assert!((q.transfer_usd - 0.9).abs() < 1e-9, "{q:?}");
        assert!((q.total_usd - 0.95).abs() < 1e-9, "{q:?}");
        assert!(q.price_table.contains(RETRIEVAL_PRICES_DATE));
        let text = q.to_string();
        assert!(
            text.starts_with("$0.95 (thaw 10 GiB with the bulk tier in 1000 requests"),
            "{text}"
        );
        // Expedited from a vault: $10 per 1,000 requests.
        let e = restore_quote("glacier", None, "expedited", 0, 1000, 0);
        assert!((e.total_usd - 10.0).abs() < 1e-9);
        assert_eq!(
            restore_quote("local", None, "bulk", gb, 5, gb).total_usd,
            0.0
        );
    }

    #[test]
    fn minimum_storage_days_follow_the_class() {
        assert_eq!(min_storage_days("local", None), 0);
        assert_eq!(min_storage_days("glacier", None), 90);
        assert_eq!(min_storage_days("s3", Some("STANDARD")), 0);
        assert_eq!(min_storage_days("s3", Some("STANDARD_IA")), 30);
        assert_eq!(min_storage_days("s3", Some("GLACIER_IR")), 90);
        assert_eq!(min_storage_days("s3", Some("GLACIER")), 90);
        assert_eq!(min_storage_days("s3", Some("DEEP_ARCHIVE")), 180);
        assert_eq!(min_storage_days("s3", None), 180);
    }
}
