//! How sizes and durations read in messages: one formatter each, used by every summary,
//! progress line and settings error.

const KIB: u64 = 1 << 10;
const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];

/// `512 B`, `1.5 MiB`, `64 MiB` (binary units; whole multiples without a decimal, others
/// rounded to one decimal).
pub fn bytes(n: u64) -> String {
    let mut unit = 0;
    let mut size = 1u64;
    while unit < UNITS.len() - 1 && n >= size * KIB {
        size *= KIB;
        unit += 1;
    }
    if n.is_multiple_of(size) {
        format!("{} {}", n / size, UNITS[unit])
    } else {
        format!("{:.1} {}", n as f64 / size as f64, UNITS[unit])
    }
}

/// `3 h 20 min`, `5 min`, `40 s` (rounded down).
pub fn duration(secs: u64) -> String {
    if secs >= 3600 {
        format!("{} h {} min", secs / 3600, (secs % 3600) / 60)
    } else if secs >= 60 {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_in_binary_units() {
        for (n, shown) in [
            (0, "0 B"),
            (1023, "1023 B"),
            (1024, "1 KiB"),
            (1536, "1.5 KiB"),
            (1_000_000, "976.6 KiB"),
            (64 << 20, "64 MiB"),
            ((64 << 20) + 1, "64.0 MiB"),
            (3 << 30, "3 GiB"),
            (5 << 40, "5 TiB"),
            (5000 << 40, "5000 TiB"),
            (u64::MAX, "16777216.0 TiB"),
        ] {
            assert_eq!(bytes(n), shown, "{n}");
        }
    }

    #[test]
    fn durations_in_hours_minutes_or_seconds() {
        for (s, shown) in [
            (0, "0 s"),
            (59, "59 s"),
            (60, "1 min"),
            (3599, "59 min"),
            (3600, "1 h 0 min"),
            (5 * 3600 + 20 * 60 + 7, "5 h 20 min"),
        ] {
            assert_eq!(duration(s), shown, "{s}");
        }
    }
}
