//! The retention policy, as restic's `forget` reads it: keep the newest `keep_last`
//! snapshots, the newest snapshot of each of the newest `keep_hourly` hours (`keep_daily` days,
//! `keep_weekly` ISO weeks, `keep_monthly` months, `keep_yearly` years; buckets in local time),
//! and every snapshot within `keep_within` of the newest one. A snapshot is kept if any rule
//! keeps it; the newest is always kept; an empty policy keeps everything.

use chrono::{DateTime, Datelike, Local, Months, TimeZone, Timelike};

/// A calendar duration such as `30d`, `6m`, `1y`, `2y3m`, `12h`, `2w`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CalendarSpan {
    pub years: u32,
    pub months: u32,
    pub days: u32,
    pub hours: u32,
}

impl CalendarSpan {
    /// Parses `<n><unit>` pieces, units `y`, `m` (months), `w`, `d`, `h`. `None` when malformed.
    pub fn parse(text: &str) -> Option<CalendarSpan> {
        let mut span = CalendarSpan::default();
        let mut digits = String::new();
        let mut any = false;
        for c in text.trim().chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let n: u32 = digits.parse().ok()?;
            digits.clear();
            match c.to_ascii_lowercase() {
                'y' => span.years = span.years.checked_add(n)?,
                'm' => span.months = span.months.checked_add(n)?,
                'w' => span.days = span.days.checked_add(n.checked_mul(7)?)?,
                'd' => span.days = span.days.checked_add(n)?,
                'h' => span.hours = span.hours.checked_add(n)?,
                _ => return None,
            }
            any = true;
        }
        (any && digits.is_empty()).then_some(span)
    }

    /// `t` (seconds) minus this span, in calendar terms (local time).
    pub fn before(&self, t: i64) -> i64 {
        let Some(at) = Local.timestamp_opt(t, 0).earliest() else {
            return i64::MIN;
        };
        let months = self.years.saturating_mul(12).saturating_add(self.months);
        let back = at
            .checked_sub_months(Months::new(months))
            .and_then(|d| d.checked_sub_signed(chrono::Duration::days(i64::from(self.days))))
            .and_then(|d| d.checked_sub_signed(chrono::Duration::hours(i64::from(self.hours))));
        back.map_or(i64::MIN, |d| d.timestamp())
    }
}

/// The bucket of a local time under one rule (hour, day, ISO week, month, year).
type Bucket = fn(DateTime<Local>) -> i64;

/// The retention rules of a profile. All zero / `None`: keep everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    pub last: u32,
    pub hourly: u32,
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
    pub yearly: u32,
    pub within: Option<CalendarSpan>,
}

impl Retention {
    /// No rule set: `prune` forgets nothing.
    pub fn is_empty(&self) -> bool {
        *self == Retention::default()
    }

    /// Which of `times` (seconds, any order) are kept, index for index.
    pub fn keep(&self, times: &[i64]) -> Vec<bool> {
        let mut keep = vec![self.is_empty(); times.len()];
        if times.is_empty() || self.is_empty() {
            return keep;
        }
        let mut order: Vec<usize> = (0..times.len()).collect();
        // Newest first; equal times by index, the later one first.
        order.sort_by(|&a, &b| times[b].cmp(&times[a]).then(b.cmp(&a)));
        keep[order[0]] = true;
        let rules: [(u32, Bucket); 5] = [
            (self.hourly, |d| day_key(d) * 100 + i64::from(d.hour())),
            (self.daily, day_key),
            (self.weekly, |d| {
                let w = d.iso_week();
                i64::from(w.year()) * 100 + i64::from(w.week())
            }),
            (self.monthly, |d| {
                i64::from(d.year()) * 100 + i64::from(d.month())
            }),
            (self.yearly, |d| i64::from(d.year())),
        ];
        let mut left: Vec<u32> = rules.iter().map(|r| r.0).collect();
        let mut last: Vec<Option<i64>> = vec![None; rules.len()];
        let within_from = self.within.map(|s| s.before(times[order[0]]));
        for (rank, &i) in order.iter().enumerate() {
            if rank < self.last as usize {
                keep[i] = true;
            }
            let local = Local
                .timestamp_opt(times[i], 0)
                .earliest()
                .unwrap_or_default();
            for (r, (_, bucket)) in rules.iter().enumerate() {
                let key = bucket(local);
                if left[r] > 0 && last[r] != Some(key) {
                    keep[i] = true;
                    last[r] = Some(key);
                    left[r] -= 1;
                }
            }
            if within_from.is_some_and(|from| times[i] >= from) {
                keep[i] = true;
            }
        }
        keep
    }
}

fn day_key(d: DateTime<Local>) -> i64 {
    i64::from(d.year()) * 10_000 + i64::from(d.month()) * 100 + i64::from(d.day())
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3600;
    const D: i64 = 86_400;

    fn kept(r: &Retention, times: &[i64]) -> Vec<i64> {
        let k = r.keep(times);
        times
            .iter()
            .zip(k)
            .filter(|(_, k)| *k)
            .map(|(t, _)| *t)
            .collect()
    }

    /// Local noon of day `n` after 2026-01-05 (a Monday).
    fn day(n: i64) -> i64 {
        Local
            .with_ymd_and_hms(2026, 1, 5, 12, 0, 0)
            .earliest()
            .unwrap()
            .timestamp()
            + n * D
    }

    #[test]
    fn no_policy_keeps_everything() {
        let times = [day(0), day(1), day(2)];
        assert_eq!(kept(&Retention::default(), &times), times.to_vec());
        assert!(Retention::default().keep(&[]).is_empty());
    }

    #[test]
    fn keep_last_keeps_the_newest_n_in_any_order() {
        let r = Retention {
            last: 2,
            ..Default::default()
        };
        assert_eq!(
            kept(&r, &[day(2), day(0), day(3), day(1)]),
            vec![day(2), day(3)]
        );
    }

    #[test]
    fn daily_keeps_the_newest_of_each_day() {
        let r = Retention {
            daily: 2,
            ..Default::default()
        };
        let times = [day(0), day(0) + H, day(1), day(1) + H, day(2), day(2) + H];
        assert_eq!(kept(&r, &times), vec![day(1) + H, day(2) + H]);
    }

    #[test]
    fn hourly_weekly_monthly_yearly_bucket_by_calendar() {
        let hourly = Retention {
            hourly: 2,
            ..Default::default()
        };
        let t = [day(0), day(0) + 60, day(0) + H, day(0) + 2 * H];
        assert_eq!(kept(&hourly, &t), vec![day(0) + H, day(0) + 2 * H]);
        let weekly = Retention {
            weekly: 2,
            ..Default::default()
        };
        // Days 0..6 are one ISO week (Monday to Sunday), 7..13 the next.
        let t = [day(0), day(6), day(7), day(13), day(14)];
        assert_eq!(kept(&weekly, &t), vec![day(13), day(14)]);
        let monthly = Retention {
            monthly: 2,
            ..Default::default()
        };
        // 2026-01-05 + 20 days is in January; + 30 in February; + 60 in March.
        let t = [day(0), day(20), day(30), day(60)];
        assert_eq!(kept(&monthly, &t), vec![day(30), day(60)]);
        let yearly = Retention {
            yearly: 5,
            ..Default::default()
        };
        let t = [day(0), day(100), day(400)];
        assert_eq!(kept(&yearly, &t), vec![day(100), day(400)]);
    }

    #[test]
    fn rules_combine_and_the_newest_is_always_kept() {
        let r = Retention {
            last: 1,
            monthly: 3,
            ..Default::default()
        };
        let t = [day(0), day(20), day(30), day(31), day(60), day(61)];
        assert_eq!(kept(&r, &t), vec![day(20), day(31), day(61)]);
        let within = Retention {
            within: CalendarSpan::parse("2d"),
            ..Default::default()
        };
        let t = [day(0), day(1), day(2), day(3)];
        assert_eq!(kept(&within, &t), vec![day(1), day(2), day(3)]);
    }

    #[test]
    fn spans_parse_and_count_in_calendar_units() {
        assert_eq!(
            CalendarSpan::parse("1y6m"),
            Some(CalendarSpan {
                years: 1,
                months: 6,
                ..Default::default()
            })
        );
        assert_eq!(CalendarSpan::parse("2w").unwrap().days, 14);
        for bad in ["", "30", "d", "3x", "-1d", "1.5d", "99999999999d"] {
            assert_eq!(CalendarSpan::parse(bad), None, "{bad}");
        }
        let m = CalendarSpan::parse("1m").unwrap();
        let t = day(60); // in March
        let back = m.before(t);
        assert!((28 * D..=31 * D).contains(&(t - back)), "{}", t - back);
    }
}
