//! The retention policy, exactly as restic's `forget` applies it (`ApplyPolicy` in restic's
//! internal/data/snapshot_policy.go, with the "oldest" rule of restic 0.16.0, PR #4366): keep the newest
//! `keep_last` snapshots, the newest snapshot of each of the newest `keep_hourly` hours
//! (`keep_daily` days, `keep_weekly` ISO weeks, `keep_monthly` months, `keep_yearly` years;
//! buckets in local time, counting only buckets that hold a snapshot), and every snapshot
//! strictly after `keep_within` before the newest one that is not in the future. When a
//! bucket rule still has counts left at the oldest snapshot, the oldest is kept too ("oldest
//! daily snapshot" in restic): three syncs on one day with `keep_daily = 7` keep the newest and
//! the oldest. A snapshot is kept if any rule keeps it; the newest is always kept; an empty
//! policy keeps everything.

use chrono::{Datelike, Local, NaiveDate, NaiveDateTime, TimeZone, Timelike};

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
        self.before_in(t, &Local)
    }

    /// `t` minus this span as restic computes it (Go's `AddDate(-y, -m, -d)` in `tz`, then
    /// minus the hours): years, months and days come off the wall-clock date and an impossible
    /// date rolls over (March 31 minus 1m is March 3, as February 31), then the hours come off
    /// the instant. `i64::MIN` when out of range.
    pub fn before_in<Tz: TimeZone>(&self, t: i64, tz: &Tz) -> i64 {
        let Some(at) = tz.timestamp_opt(t, 0).earliest() else {
            return i64::MIN;
        };
        let wall = at.naive_local();
        let months = i64::from(wall.year()) * 12 + i64::from(wall.month0())
            - i64::from(self.years) * 12
            - i64::from(self.months);
        let back = i32::try_from(months.div_euclid(12))
            .ok()
            .and_then(|y| NaiveDate::from_ymd_opt(y, months.rem_euclid(12) as u32 + 1, 1))
            .and_then(|first| {
                let days = i64::from(wall.day()) - 1 - i64::from(self.days);
                first.checked_add_signed(chrono::Duration::try_days(days)?)
            })
            .map(|date| date.and_time(wall.time()))
            .and_then(|wall| {
                // A wall time skipped by a clock change: an hour later, as Go normalizes it.
                tz.from_local_datetime(&wall).earliest().or_else(|| {
                    tz.from_local_datetime(&(wall + chrono::Duration::hours(1)))
                        .earliest()
                })
            })
            .and_then(|d| d.checked_sub_signed(chrono::Duration::hours(i64::from(self.hours))));
        back.map_or(i64::MIN, |d| d.timestamp())
    }
}

/// The bucket of a snapshot under one rule, from its wall-clock time and its rank (newest 0).
type Bucket = fn(NaiveDateTime, usize) -> i64;

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

    /// Which of `times` (seconds, any order) are kept, index for index, at `now` (buckets in
    /// local time).
    pub fn keep(&self, times: &[i64], now: i64) -> Vec<bool> {
        self.keep_in(times, now, &Local)
    }

    /// [`keep`](Self::keep) with buckets in `tz`. Restic's `ApplyPolicy`: newest first, each
    /// rule with counts left keeps a snapshot whose bucket differs from the last one it kept,
    /// or that is the oldest of all. `keep_within` counts back from the newest snapshot before
    /// `now` (one dated in the future by a wrong clock does not move it) and keeps what is
    /// strictly later; with none before `now` it keeps everything.
    pub fn keep_in<Tz: TimeZone>(&self, times: &[i64], now: i64, tz: &Tz) -> Vec<bool> {
        let mut keep = vec![self.is_empty(); times.len()];
        if times.is_empty() || self.is_empty() {
            return keep;
        }
        let mut order: Vec<usize> = (0..times.len()).collect();
        // Newest first; equal times by index, the later one first.
        order.sort_by(|&a, &b| times[b].cmp(&times[a]).then(b.cmp(&a)));
        keep[order[0]] = true;
        let rules: [(u32, Bucket); 6] = [
            (self.last, |_, rank| rank as i64),
            (self.hourly, |d, _| day_key(d) * 100 + i64::from(d.hour())),
            (self.daily, |d, _| day_key(d)),
            (self.weekly, |d, _| {
                let w = d.iso_week();
                i64::from(w.year()) * 100 + i64::from(w.week())
            }),
            (self.monthly, |d, _| {
                i64::from(d.year()) * 100 + i64::from(d.month())
            }),
            (self.yearly, |d, _| i64::from(d.year())),
        ];
        let mut left: Vec<u32> = rules.iter().map(|r| r.0).collect();
        let mut last: Vec<Option<i64>> = vec![None; rules.len()];
        let latest = times.iter().copied().filter(|&t| t < now).max();
        let within_from = self
            .within
            .map(|s| latest.map_or(i64::MIN, |l| s.before_in(l, tz)));
        let oldest = order.len() - 1;
        for (rank, &i) in order.iter().enumerate() {
            let wall = tz
                .timestamp_opt(times[i], 0)
                .earliest()
                .map(|d| d.naive_local())
                .unwrap_or_default();
            for (r, (_, bucket)) in rules.iter().enumerate() {
                if left[r] == 0 {
                    continue;
                }
                let key = bucket(wall, rank);
                if last[r] != Some(key) || rank == oldest {
                    keep[i] = true;
                    last[r] = Some(key);
                    left[r] -= 1;
                }
            }
            if within_from.is_some_and(|from| times[i] > from) {
                keep[i] = true;
            }
        }
        keep
    }
}

fn day_key(d: NaiveDateTime) -> i64 {
    i64::from(d.year()) * 10_000 + i64::from(d.month()) * 100 + i64::from(d.day())
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3600;
    const D: i64 = 86_400;

    /// A "now" after every time of these tests.
    const NOW: i64 = 4_000_000_000;

    fn kept(r: &Retention, times: &[i64]) -> Vec<i64> {
        let k = r.keep(times, NOW);
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
        assert!(Retention::default().keep(&[], NOW).is_empty());
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
        // 2026, 2026, 2027: counts are left at the oldest, so it is kept too.
        let t = [day(0), day(100), day(400)];
        assert_eq!(kept(&yearly, &t), vec![day(0), day(100), day(400)]);
        let yearly = Retention {
            yearly: 2,
            ..Default::default()
        };
        assert_eq!(kept(&yearly, &t), vec![day(100), day(400)]);
    }

    #[test]
    fn the_oldest_is_kept_while_a_rule_has_counts_left() {
        let daily = Retention {
            daily: 7,
            ..Default::default()
        };
        // Three syncs on one day: the newest keeps the day, the oldest is kept additionally
        // (restic's "oldest daily snapshot"), the one between goes.
        let t = [day(0), day(0) + H, day(0) + 2 * H];
        assert_eq!(kept(&daily, &t), vec![day(0), day(0) + 2 * H]);
        // Two on one day: both stay.
        assert_eq!(kept(&daily, &t[1..]), t[1..].to_vec());
        // Counts used up before the oldest: it goes.
        let two = Retention {
            daily: 2,
            ..Default::default()
        };
        let t = [day(0), day(0) + H, day(1), day(2)];
        assert_eq!(kept(&two, &t), vec![day(1), day(2)]);
        // keep_last counts snapshots, not buckets: the oldest rule never adds one.
        let last = Retention {
            last: 5,
            ..Default::default()
        };
        assert_eq!(kept(&last, &t), t.to_vec());
    }

    /// restic's policy test data (`testdata/restic_policy.txt`, which says where it is from):
    /// the snapshot times, and per policy (number, rules) the times restic keeps.
    #[allow(clippy::type_complexity)]
    fn restic_golden() -> (
        Vec<&'static str>,
        Vec<(u32, &'static str, Vec<&'static str>)>,
    ) {
        let text = include_str!("testdata/restic_policy.txt");
        let mut times = Vec::new();
        let mut kept: Vec<(u32, &str, Vec<&str>)> = Vec::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && *l != "times")
        {
            match line.strip_prefix("policy ") {
                Some(rest) => {
                    let (n, rules) = rest.split_once(' ').expect("policy N RULES");
                    kept.push((n.parse().expect("policy number"), rules, Vec::new()));
                }
                None => match kept.last_mut() {
                    Some((_, _, want)) => want.push(line),
                    None => times.push(line),
                },
            }
        }
        (times, kept)
    }

    #[test]
    fn restics_own_golden_results_are_reproduced() {
        let (times_text, kept) = restic_golden();
        let secs = |s: &str| {
            let whole = s.strip_suffix(".1").unwrap_or(s);
            chrono::NaiveDateTime::parse_from_str(whole, "%Y-%m-%d %H:%M:%S")
                .unwrap()
                .and_utc()
                .timestamp()
        };
        let times: Vec<i64> = times_text.iter().map(|t| secs(t)).collect();
        assert_eq!(
            (times.len(), kept.len()),
            (103, 26),
            "all of restic's data read"
        );
        for (n, policy, want) in &kept {
            let mut r = Retention::default();
            for rule in policy.split(' ') {
                let (key, value) = rule.split_once('=').unwrap();
                let count = || value.parse::<u32>().unwrap();
                match key {
                    "last" => r.last = count(),
                    "hourly" => r.hourly = count(),
                    "daily" => r.daily = count(),
                    "weekly" => r.weekly = count(),
                    "monthly" => r.monthly = count(),
                    "yearly" => r.yearly = count(),
                    "within" => r.within = CalendarSpan::parse(value),
                    _ => panic!("{key}"),
                }
            }
            let keep = r.keep_in(&times, NOW, &chrono::Utc);
            let mut got: Vec<i64> = times
                .iter()
                .zip(&keep)
                .filter(|(_, k)| **k)
                .map(|(t, _)| *t)
                .collect();
            let mut want: Vec<i64> = want.iter().map(|t| secs(t)).collect();
            got.sort_unstable();
            want.sort_unstable();
            assert_eq!(got, want, "restic's policy_keep_snapshots_{n} ({policy})");
        }
    }

    #[test]
    fn a_snapshot_dated_in_the_future_moves_no_window() {
        // The newest snapshot before "now" is day(3); one a wrong clock dated years ahead
        // is kept (nothing forgets it) but keep_within still counts back from day(3).
        let now = day(3) + H;
        let future = day(3000);
        let within = Retention {
            within: CalendarSpan::parse("2d"),
            ..Default::default()
        };
        let t = [day(0), day(1) + H, day(2), future, day(3)];
        let k = within.keep(&t, now);
        assert_eq!(k, vec![false, true, true, true, true]);
        // Everything in the future: nothing to count back from, everything kept (restic).
        assert_eq!(within.keep(&[future, future + D], now), vec![true, true]);
        // Far out of range: no panic, the newest kept.
        let last = Retention {
            last: 1,
            ..Default::default()
        };
        assert_eq!(
            last.keep(&[i64::MAX, i64::MIN, 0], now),
            vec![true, false, false]
        );
        assert!(within.keep(&[i64::MAX, i64::MIN], now)[0]);
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
        // Strictly later than two days before the newest, as restic: day(1) itself goes.
        let t = [day(0), day(1), day(1) + 1, day(2), day(3)];
        assert_eq!(kept(&within, &t), vec![day(1) + 1, day(2), day(3)]);
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
        // As Go's AddDate: March 31 minus a month is "February 31", which is March 3.
        let utc = |y, mo, d, h| {
            chrono::Utc
                .with_ymd_and_hms(y, mo, d, h, 0, 0)
                .unwrap()
                .timestamp()
        };
        assert_eq!(
            m.before_in(utc(2026, 3, 31, 12), &chrono::Utc),
            utc(2026, 3, 3, 12)
        );
        let span = CalendarSpan::parse("1y2m3d4h").unwrap();
        assert_eq!(
            span.before_in(utc(2026, 1, 2, 12), &chrono::Utc),
            utc(2024, 10, 30, 8)
        );
    }
}
