//! Cost estimates from list prices: one table, [`PRICES`], with the date it was taken from
//! AWS's price pages, [`PRICES_AS_OF`]. Estimates only: regions, free tiers and price changes
//! differ. Storage is charged per GB-month (GB = 2^30 bytes here), each archived object carries
//! metadata overhead, uploads per request, reads by retrieval fees and transfer out.

use serde::Serialize;

/// The date every price of [`PRICES`] was taken from AWS's published price pages (Amazon S3
/// pricing, Amazon Glacier pricing, and the worked examples of AWS's knowledge center article
/// `s3-manage-data-retrieval`), for [`PRICES_REGION`].
pub const PRICES_AS_OF: &str = "2026-12-01";

/// The region of [`PRICES`].
pub const PRICES_REGION: &str = "us-east-1 (N. Virginia)";

/// What retrieving from one place costs with one tier.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RetrievalPrice {
    /// USD per GB retrieved.
    pub per_gb: f64,
    /// USD per 1,000 retrieval requests.
    pub per_1000_requests: f64,
}

/// How the retrieval price of a place is charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Retrieval {
    /// Nothing to pay (a local directory).
    Free,
    /// Read at once; the retrieval price applies to each read (GET) and the bytes it reads,
    /// whatever the tier (S3 `STANDARD`, `STANDARD_IA`, `GLACIER_IR`).
    OnRead,
    /// Thawed first by a retrieval request in a tier; the price applies to each request and
    /// the bytes it thaws (S3 `GLACIER`, `DEEP_ARCHIVE`, a Glacier vault).
    Thaw,
}

/// The prices of one storage place: a backend, and for S3 a storage class.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PlacePrices {
    /// `local`, `glacier` or `s3:<CLASS>`.
    pub place: &'static str,
    /// USD per GB-month of data.
    pub storage_gb_month: f64,
    /// Days an object is billed for at least (deleting it earlier costs the rest).
    pub min_storage_days: u32,
    /// USD per 1,000 upload requests (PUT, part, complete).
    pub upload_per_1000: f64,
    /// Overhead per object billed at the data's rate, in bytes.
    pub overhead_bytes: u64,
    /// Overhead per object billed at the S3 `STANDARD` rate, in bytes.
    pub overhead_standard_bytes: u64,
    pub retrieval: Retrieval,
    /// Retrieval by tier: expedited, standard, bulk (see [`PlacePrices::retrieval_price`]).
    pub retrieval_by_tier: [RetrievalPrice; 3],
    /// USD per GB transferred out to the internet (first 10 TB a month; the monthly free
    /// 100 GB is not counted, so quotes err high).
    pub transfer_out_gb: f64,
}

const fn rp(per_gb: f64, per_1000_requests: f64) -> RetrievalPrice {
    RetrievalPrice {
        per_gb,
        per_1000_requests,
    }
}

/// The same retrieval price in every tier.
const fn any_tier(per_gb: f64, per_1000_requests: f64) -> [RetrievalPrice; 3] {
    [rp(per_gb, per_1000_requests); 3]
}

/// USD per GB out of AWS to the internet.
const AWS_TRANSFER_OUT_GB: f64 = 0.09;

/// The one price table ([`PRICES_AS_OF`], [`PRICES_REGION`]). S3 `DEEP_ARCHIVE` has no
/// expedited tier (AWS refuses it); it is quoted at the standard price. Reads of `STANDARD`,
/// `STANDARD_IA` and `GLACIER_IR` are GET requests.
pub const PRICES: &[PlacePrices] = &[
    PlacePrices {
        place: "local",
        storage_gb_month: 0.0,
        min_storage_days: 0,
        upload_per_1000: 0.0,
        overhead_bytes: 0,
        overhead_standard_bytes: 0,
        retrieval: Retrieval::Free,
        retrieval_by_tier: any_tier(0.0, 0.0),
        transfer_out_gb: 0.0,
    },
    PlacePrices {
        place: "s3:STANDARD",
        storage_gb_month: 0.023,
        min_storage_days: 0,
        upload_per_1000: 0.005,
        overhead_bytes: 0,
        overhead_standard_bytes: 0,
        retrieval: Retrieval::OnRead,
        retrieval_by_tier: any_tier(0.0, 0.0004),
        transfer_out_gb: AWS_TRANSFER_OUT_GB,
    },
    PlacePrices {
        place: "s3:STANDARD_IA",
        storage_gb_month: 0.0125,
        min_storage_days: 30,
        upload_per_1000: 0.01,
        overhead_bytes: 0,
        overhead_standard_bytes: 0,
        retrieval: Retrieval::OnRead,
        retrieval_by_tier: any_tier(0.01, 0.001),
        transfer_out_gb: AWS_TRANSFER_OUT_GB,
    },
    PlacePrices {
        place: "s3:GLACIER_IR",
        storage_gb_month: 0.004,
        min_storage_days: 90,
        upload_per_1000: 0.02,
        overhead_bytes: 0,
        overhead_standard_bytes: 0,
        retrieval: Retrieval::OnRead,
        retrieval_by_tier: any_tier(0.03, 0.01),
        transfer_out_gb: AWS_TRANSFER_OUT_GB,
    },
    PlacePrices {
        place: "s3:GLACIER",
        storage_gb_month: 0.0036,
        min_storage_days: 90,
        upload_per_1000: 0.03,
        overhead_bytes: 32 * 1024,
        overhead_standard_bytes: 8 * 1024,
        retrieval: Retrieval::Thaw,
        retrieval_by_tier: [rp(0.03, 10.0), rp(0.01, 0.05), rp(0.0, 0.0)],
        transfer_out_gb: AWS_TRANSFER_OUT_GB,
    },
    PlacePrices {
        place: "s3:DEEP_ARCHIVE",
        storage_gb_month: 0.00099,
        min_storage_days: 180,
        upload_per_1000: 0.05,
        overhead_bytes: 32 * 1024,
        overhead_standard_bytes: 8 * 1024,
        retrieval: Retrieval::Thaw,
        retrieval_by_tier: [rp(0.02, 0.10), rp(0.02, 0.10), rp(0.0025, 0.025)],
        transfer_out_gb: AWS_TRANSFER_OUT_GB,
    },
    PlacePrices {
        place: "glacier",
        storage_gb_month: 0.0036,
        min_storage_days: 90,
        upload_per_1000: 0.05,
        overhead_bytes: 32 * 1024,
        overhead_standard_bytes: 8 * 1024,
        retrieval: Retrieval::Thaw,
        retrieval_by_tier: [rp(0.03, 10.0), rp(0.01, 0.05), rp(0.0025, 0.025)],
        transfer_out_gb: AWS_TRANSFER_OUT_GB,
    },
];

const GB: f64 = (1u64 << 30) as f64;

/// The place of a backend (`local`, `s3`, `glacier`) and, for S3, a storage class: `s3:<CLASS>`
/// (no class: `DEEP_ARCHIVE`, the default), `glacier` or `local`.
pub fn place(backend: &str, class: Option<&str>) -> String {
    match backend {
        "s3" => format!("s3:{}", class.unwrap_or("DEEP_ARCHIVE")),
        other => other.to_string(),
    }
}

/// The prices of a backend and, for S3, a storage class. A class the table does not know is
/// priced as `DEEP_ARCHIVE` (the longest minimum storage duration: no deletion is ever early);
/// an unknown backend as `local`.
pub fn prices(backend: &str, class: Option<&str>) -> &'static PlacePrices {
    let wanted = place(backend, class);
    let fallback = if backend == "s3" {
        "s3:DEEP_ARCHIVE"
    } else {
        "local"
    };
    PRICES
        .iter()
        .find(|p| p.place == wanted)
        .or_else(|| PRICES.iter().find(|p| p.place == fallback))
        .expect("the table has every fallback")
}

impl PlacePrices {
    /// The retrieval price with `tier` (`expedited`, `standard`, `bulk`; another name is
    /// priced as the dearest of the three).
    pub fn retrieval_price(&self, tier: &str) -> RetrievalPrice {
        let [e, s, b] = self.retrieval_by_tier;
        match tier {
            "expedited" => e,
            "standard" => s,
            "bulk" => b,
            _ => self
                .retrieval_by_tier
                .into_iter()
                .fold(rp(0.0, 0.0), |m, p| {
                    rp(
                        m.per_gb.max(p.per_gb),
                        m.per_1000_requests.max(p.per_1000_requests),
                    )
                }),
        }
    }
}

/// Prices of one storage place for storing: what `sync` and `status` estimate with.
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

/// Storage prices for a backend (`local`, `s3`, `glacier`) and, for S3, its storage class,
/// from [`PRICES`].
pub fn pricing(backend: &str, storage_class: Option<&str>) -> Pricing {
    let p = prices(backend, storage_class);
    Pricing {
        storage_gb_month: p.storage_gb_month,
        upload_per_1000: p.upload_per_1000,
        overhead_bytes: p.overhead_bytes,
        overhead_standard_bytes: p.overhead_standard_bytes,
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
        let standard = prices("s3", Some("STANDARD")).storage_gb_month;
        let data = (bytes + objects * self.overhead_bytes) as f64 / GB * self.storage_gb_month;
        let meta = (objects * self.overhead_standard_bytes) as f64 / GB * standard;
        data + meta
    }

    /// Cost of `requests` upload requests.
    pub fn uploads(&self, requests: u64) -> f64 {
        requests as f64 / 1000.0 * self.upload_per_1000
    }
}

/// What a restore reads from one place: the retrievals to request (thawed places) and the
/// bytes and reads to download.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PlaceUse {
    /// `s3:<CLASS>`, `glacier` or `local`.
    pub place: String,
    /// Bytes to thaw, in `thaw_requests` retrieval requests not requested yet.
    pub bytes_to_thaw: u64,
    pub thaw_requests: u64,
    /// Bytes to download, in `reads` downloads.
    pub bytes_to_download: u64,
    pub reads: u64,
}

/// One place's part of a quote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlaceQuote {
    #[serde(flatten)]
    pub usage: PlaceUse,
    /// The retrieval price applied (by tier for a thawed place, per read otherwise).
    pub retrieval: Retrieval,
    pub per_gb: f64,
    pub per_1000_requests: f64,
    pub retrieval_usd: f64,
    pub transfer_usd: f64,
}

/// What a restore would cost: thawing or reading (retrieval fees) and transfer out, each
/// place at its own prices.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RestoreQuote {
    pub tier: String,
    /// The places read, joined with `+` (`s3:DEEP_ARCHIVE+s3:GLACIER`); the backend's place
    /// when nothing is read.
    pub place: String,
    pub bytes_to_thaw: u64,
    pub thaw_requests: u64,
    pub bytes_to_download: u64,
    /// Retrieval fees: thaws, and reads of places that charge for them.
    pub thaw_usd: f64,
    pub transfer_usd: f64,
    pub total_usd: f64,
    /// Which table priced it: its date and region.
    pub price_table: String,
    /// Per place, with the prices used.
    pub places: Vec<PlaceQuote>,
}

/// Quotes a restore with `tier` from `backend` that reads `uses` (one per place; the places
/// come from [`place`]).
pub fn restore_quote(backend: &str, tier: &str, uses: Vec<PlaceUse>) -> RestoreQuote {
    let mut places: Vec<PlaceQuote> = Vec::new();
    for usage in uses {
        let (b, class) = match usage.place.split_once(':') {
            Some((b, c)) => (b, Some(c)),
            None => (usage.place.as_str(), None),
        };
        let table = prices(b, class);
        let price = table.retrieval_price(tier);
        let (gb, requests) = match table.retrieval {
            Retrieval::Free => (0, 0),
            Retrieval::OnRead => (usage.bytes_to_download, usage.reads),
            Retrieval::Thaw => (usage.bytes_to_thaw, usage.thaw_requests),
        };
        let retrieval_usd =
            gb as f64 / GB * price.per_gb + requests as f64 / 1000.0 * price.per_1000_requests;
        let transfer_usd = usage.bytes_to_download as f64 / GB * table.transfer_out_gb;
        places.push(PlaceQuote {
            usage,
            retrieval: table.retrieval,
            per_gb: price.per_gb,
            per_1000_requests: price.per_1000_requests,
            retrieval_usd,
            transfer_usd,
        });
    }
    let sum = |f: fn(&PlaceQuote) -> f64| places.iter().map(f).sum::<f64>();
    let (thaw_usd, transfer_usd) = (sum(|p| p.retrieval_usd), sum(|p| p.transfer_usd));
    let names: Vec<&str> = places.iter().map(|p| p.usage.place.as_str()).collect();
    let prices_used: Vec<String> = places
        .iter()
        .map(|p| {
            format!(
                "{} retrieval ${}/GB + ${}/1,000 {}",
                p.usage.place,
                p.per_gb,
                p.per_1000_requests,
                match p.retrieval {
                    Retrieval::Thaw => "requests",
                    _ => "reads",
                }
            )
        })
        .collect();
    let transfer = prices(backend, None).transfer_out_gb;
    RestoreQuote {
        tier: tier.to_string(),
        place: if names.is_empty() {
            place(backend, None)
        } else {
            names.join("+")
        },
        bytes_to_thaw: places.iter().map(|p| p.usage.bytes_to_thaw).sum(),
        thaw_requests: places.iter().map(|p| p.usage.thaw_requests).sum(),
        bytes_to_download: places.iter().map(|p| p.usage.bytes_to_download).sum(),
        thaw_usd,
        transfer_usd,
        total_usd: thaw_usd + transfer_usd,
        price_table: format!(
            "AWS list prices, {PRICES_REGION}, taken {PRICES_AS_OF} ({}transfer ${transfer}/GB)",
            prices_used
                .iter()
                .map(|p| format!("{p}, "))
                .collect::<String>()
        ),
        places,
    }
}

impl std::fmt::Display for RestoreQuote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "${:.2} (thaw {} with the {} tier in {} requests from {}; retrieval fees ${:.2}; transfer {}: ${:.2}; {})",
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

/// Minimum storage days of an archive, from [`PRICES`]: local 0; S3 by class; a Glacier vault
/// 90. An unknown S3 class is taken as the longest (`DEEP_ARCHIVE`), so no deletion is ever
/// early.
pub fn min_storage_days(backend: &str, class: Option<&str>) -> u32 {
    prices(backend, class).min_storage_days
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn usage(place: &str, thaw: u64, thaw_requests: u64, download: u64, reads: u64) -> PlaceUse {
        PlaceUse {
            place: place.into(),
            bytes_to_thaw: thaw,
            thaw_requests,
            bytes_to_download: download,
            reads,
        }
    }

    #[test]
    fn one_table_prices_everything() {
        // Every place once, and every lookup reads the table.
        for (i, p) in PRICES.iter().enumerate() {
            assert!(
                PRICES[i + 1..].iter().all(|q| q.place != p.place),
                "{}",
                p.place
            );
            let (b, c) = p
                .place
                .split_once(':')
                .map_or((p.place, None), |(b, c)| (b, Some(c)));
            assert_eq!(prices(b, c), p);
            assert_eq!(min_storage_days(b, c), p.min_storage_days);
            assert_eq!(pricing(b, c).storage_gb_month, p.storage_gb_month);
        }
        assert!(
            PRICES_AS_OF.len() == 10 && PRICES_AS_OF.starts_with("20"),
            "{PRICES_AS_OF}"
        );
        // Unknown: S3 as DEEP_ARCHIVE, anything else as local.
        assert_eq!(
            prices("s3", Some("REDUCED_REDUNDANCY")).place,
            "s3:DEEP_ARCHIVE"
        );
        assert_eq!(prices("s3", None).place, "s3:DEEP_ARCHIVE");
        assert_eq!(prices("ftp", None).place, "local");
    }

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
        // 10 GB in 1,000 objects from DEEP_ARCHIVE, bulk: 10 × 0.0025 + 0.025 + 10 × 0.09.
        let deep = usage("s3:DEEP_ARCHIVE", 10 * GIB, 1000, 10 * GIB, 1000);
        let q = restore_quote("s3", "bulk", vec![deep.clone()]);
        assert!((q.thaw_usd - 0.05).abs() < 1e-9, "{q:?}");
        assert!((q.transfer_usd - 0.9).abs() < 1e-9, "{q:?}");
        assert!((q.total_usd - 0.95).abs() < 1e-9, "{q:?}");
        assert_eq!(q.place, "s3:DEEP_ARCHIVE");
        assert!(q.price_table.contains(PRICES_AS_OF));
        let text = q.to_string();
        assert!(
            text.starts_with("$0.95 (thaw 10 GiB with the bulk tier in 1000 requests"),
            "{text}"
        );
        // Expedited from a vault: $10 per 1,000 requests.
        let e = restore_quote(
            "glacier",
            "expedited",
            vec![usage("glacier", 0, 1000, 0, 0)],
        );
        assert!((e.total_usd - 10.0).abs() < 1e-9);
        let local = restore_quote("local", "bulk", vec![usage("local", GIB, 5, GIB, 5)]);
        assert_eq!(local.total_usd, 0.0);
        // Nothing to read: the backend's place, $0.
        let none = restore_quote("s3", "bulk", Vec::new());
        assert_eq!(
            (none.place.as_str(), none.total_usd),
            ("s3:DEEP_ARCHIVE", 0.0)
        );
    }

    #[test]
    fn instant_classes_charge_retrieval_on_every_read() {
        // GLACIER_IR: $0.03/GB read, STANDARD_IA: $0.01/GB, whatever the tier; no thaw.
        for (class, per_gb) in [("GLACIER_IR", 0.03), ("STANDARD_IA", 0.01)] {
            let place = format!("s3:{class}");
            for tier in ["bulk", "standard", "expedited"] {
                let q = restore_quote("s3", tier, vec![usage(&place, 0, 0, 10 * GIB, 1000)]);
                let reads = prices("s3", Some(class)).retrieval_by_tier[0].per_1000_requests;
                assert!((q.thaw_usd - (10.0 * per_gb + reads)).abs() < 1e-9, "{q:?}");
                assert!((q.transfer_usd - 0.9).abs() < 1e-9, "{q:?}");
            }
        }
        // STANDARD: no retrieval fee per GB.
        let q = restore_quote("s3", "bulk", vec![usage("s3:STANDARD", 0, 0, 10 * GIB, 1)]);
        assert!(q.thaw_usd < 1e-6, "{q:?}");
    }

    #[test]
    fn each_place_is_priced_at_its_own_rates() {
        // 10 GB stored as DEEP_ARCHIVE, 10 GB as GLACIER, standard tier.
        let q = restore_quote(
            "s3",
            "standard",
            vec![
                usage("s3:DEEP_ARCHIVE", 10 * GIB, 1000, 10 * GIB, 1000),
                usage("s3:GLACIER", 10 * GIB, 1000, 10 * GIB, 1000),
            ],
        );
        // DEEP_ARCHIVE: 10 × 0.02 + 0.10; GLACIER: 10 × 0.01 + 0.05.
        assert!((q.places[0].retrieval_usd - 0.30).abs() < 1e-9, "{q:?}");
        assert!((q.places[1].retrieval_usd - 0.15).abs() < 1e-9, "{q:?}");
        assert!((q.thaw_usd - 0.45).abs() < 1e-9, "{q:?}");
        assert_eq!(q.place, "s3:DEEP_ARCHIVE+s3:GLACIER");
        assert_eq!((q.bytes_to_thaw, q.thaw_requests), (20 * GIB, 2000));
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
        assert_eq!(min_storage_days("s3", Some("ONEZONE_IA")), 180);
    }
}
