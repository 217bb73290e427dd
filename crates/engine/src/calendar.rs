//! Business time: a pipe's hours, holidays and time zone, and the arithmetic
//! SLA clocks need — whether an instant is open, when `n` business seconds
//! after an instant fall, and how many business seconds lie between two
//! instants.
//!
//! Hours are local wall-clock ranges `[start, end)` in the pipe's zone. Each
//! local day's ranges are turned into UTC intervals with that day's real
//! offsets, so a 23- or 25-hour day counts its real elapsed seconds. The
//! mapping of a bound that does not name exactly one instant:
//!
//! - a bound inside a spring-forward gap (a wall time that never happens)
//!   maps to the instant the gap ends, for starts and ends alike; a range
//!   that lies wholly inside a gap has no business time that day;
//! - an ambiguous bound (a wall time that happens twice when clocks fall
//!   back) maps to its earliest instant when it starts a range and to its
//!   latest when it ends one, so a range covers every instant whose wall
//!   clock reads inside it (`Sun 01:00-01:30` on a fall-back night spanning
//!   the repeated hour lasts 90 minutes). Intervals that overlap as a result
//!   are counted once.
//!
//! Holidays are local dates: their whole local day has no hours. The walk goes
//! day by day from the start, never second by second, and examines at most
//! [`MAX_DAYS`] local days; past that it gives up: [`Calendar::try_add`] and
//! [`Calendar::next_open`] return `None`, [`Calendar::add`] saturates to
//! `DateTime::<Utc>::MAX_UTC`, and [`Calendar::elapsed`] counts only the
//! business time of the days examined. A calendar with no hours on any day
//! has no business time: `try_add`/`next_open` are `None`, `add` is
//! `MAX_UTC`, `elapsed` is 0 and `is_open` is false, all without walking.

use chrono::{
    DateTime, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone, Utc,
};
use chrono::{Datelike, Offset};
use chrono_tz::{GapInfo, Tz};
use switchboard_lang::model::Pipe;
use switchboard_lang::values::BusinessHours;

/// The most local days one walk examines (about ten years) before giving up.
pub const MAX_DAYS: u32 = 3660;

const DAY_MINUTES: u32 = 24 * 60;

/// A pipe's business calendar: its hours per weekday, its holidays, its time zone.
#[derive(Debug, Clone, PartialEq)]
pub struct Calendar {
    tz: Tz,
    /// Monday first; sorted, non-empty, non-touching minute ranges within a day.
    days: [Vec<(u32, u32)>; 7],
    /// Sorted, without repeats.
    holidays: Vec<NaiveDate>,
    /// Whether any weekday has hours.
    has_hours: bool,
}

impl Calendar {
    /// A calendar from business hours, holiday dates (local) and a time zone.
    pub fn new(hours: &BusinessHours, holidays: &[NaiveDate], tz: Tz) -> Calendar {
        let days: [Vec<(u32, u32)>; 7] = std::array::from_fn(|d| normalize(&hours.days[d]));
        let mut holidays = holidays.to_vec();
        holidays.sort_unstable();
        holidays.dedup();
        let has_hours = days.iter().any(|d| !d.is_empty());
        Calendar {
            tz,
            days,
            holidays,
            has_hours,
        }
    }

    /// The calendar of a pipe: its hours, holidays and time zone.
    pub fn for_pipe(pipe: &Pipe) -> Calendar {
        Calendar::new(&pipe.hours, &pipe.holidays, pipe.timezone)
    }

    /// The calendar's time zone.
    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// Whether `at` is within business hours (a holiday has none); starts are inclusive, ends exclusive.
    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        if !self.has_hours {
            return false;
        }
        // An interval containing `at` belongs to the local day of `at` or to
        // a neighbour (ambiguous or skipped midnights).
        for (s, e) in self.walk(at, 2) {
            if s > at {
                // Intervals come in order of their local days; a later day
                // could only start earlier in exotic zones, so keep looking.
                continue;
            }
            if at < e {
                return true;
            }
        }
        false
    }

    /// The instant at which `secs` seconds of business time have passed since `start`; `None` past [`MAX_DAYS`] or with no hours.
    ///
    /// `try_add(t, 0)` is `t` when open, else the next opening. When the
    /// last second falls just before a closing, the result is the closing
    /// instant itself (not the next opening).
    pub fn try_add(&self, start: DateTime<Utc>, secs: u64) -> Option<DateTime<Utc>> {
        if !self.has_hours {
            return None;
        }
        let mut remaining = TimeDelta::try_seconds(i64::try_from(secs).ok()?)?;
        let mut cursor = start;
        for (s, e) in self.walk(start, MAX_DAYS) {
            let s = s.max(cursor);
            if e <= s {
                continue;
            }
            let len = e - s;
            if remaining <= len {
                return s.checked_add_signed(remaining);
            }
            remaining -= len;
            cursor = e;
        }
        None
    }

    /// The instant at which `secs` seconds of business time have passed since `start`; saturates to `MAX_UTC` (see [`Calendar::try_add`]).
    pub fn add(&self, start: DateTime<Utc>, secs: u64) -> DateTime<Utc> {
        self.try_add(start, secs)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// Business seconds between `from` and `to` (0 if `to <= from`; counts at most [`MAX_DAYS`] days after `from`).
    pub fn elapsed(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> u64 {
        if to <= from || !self.has_hours {
            return 0;
        }
        let mut total = TimeDelta::zero();
        let mut cursor = from;
        for (s, e) in self.walk(from, MAX_DAYS) {
            if s >= to {
                break;
            }
            let s = s.max(cursor);
            let e = e.min(to);
            if e <= s {
                continue;
            }
            total += e - s;
            cursor = e;
        }
        u64::try_from(total.num_seconds()).unwrap_or(0)
    }

    /// The next instant `>= at` when business hours start or are in progress; `None` with no hours (or none within [`MAX_DAYS`]).
    pub fn next_open(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.try_add(at, 0)
    }

    /// The UTC intervals of business hours, local day by local day, from
    /// the day before the local date of `at`, for `days + 1` days at most.
    fn walk(&self, at: DateTime<Utc>, days: u32) -> Walk<'_> {
        let today = self.local(at).map_or(at.date_naive(), |l| l.date());
        let date = today.pred_opt().unwrap_or(today);
        Walk {
            cal: self,
            date,
            ranges: self.ranges_on(date),
            idx: 0,
            days_left: days,
        }
    }

    /// The local wall time of an instant, if representable.
    fn local(&self, at: DateTime<Utc>) -> Option<NaiveDateTime> {
        let naive = at.naive_utc();
        naive.checked_add_offset(self.tz.offset_from_utc_datetime(&naive).fix())
    }

    /// The local minute ranges of one local date (none on a holiday).
    fn ranges_on(&self, date: NaiveDate) -> &[(u32, u32)] {
        if self.holidays.binary_search(&date).is_ok() {
            return &[];
        }
        &self.days[date.weekday().num_days_from_monday() as usize]
    }

    /// The UTC interval of one local range on one local date, if not empty.
    fn interval(
        &self,
        date: NaiveDate,
        (s, e): (u32, u32),
    ) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let start = self.bound(date, s, true)?;
        let end = self.bound(date, e, false)?;
        (start < end).then_some((start, end))
    }

    /// The instant of a local wall time `minute` minutes after midnight of
    /// `date` (1440 is the next midnight), by the rules in the module docs.
    fn bound(&self, date: NaiveDate, minute: u32, is_start: bool) -> Option<DateTime<Utc>> {
        let local = if minute >= DAY_MINUTES {
            date.succ_opt()?.and_time(NaiveTime::MIN)
        } else {
            date.and_time(NaiveTime::from_hms_opt(minute / 60, minute % 60, 0)?)
        };
        match self.tz.from_local_datetime(&local) {
            LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
            LocalResult::Ambiguous(a, b) => {
                let (a, b) = (a.with_timezone(&Utc), b.with_timezone(&Utc));
                Some(if is_start { a.min(b) } else { a.max(b) })
            }
            LocalResult::None => self.gap_end(local),
        }
    }

    /// The instant a spring-forward gap containing the wall time `local`
    /// ends (the first instant after it), from the zone's own tables.
    fn gap_end(&self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        GapInfo::new(&local, &self.tz)?
            .end
            .map(|t| t.with_timezone(&Utc))
    }
}

/// Business intervals in UTC, one local range at a time, day by day.
struct Walk<'a> {
    cal: &'a Calendar,
    date: NaiveDate,
    ranges: &'a [(u32, u32)],
    idx: usize,
    days_left: u32,
}

impl Iterator for Walk<'_> {
    type Item = (DateTime<Utc>, DateTime<Utc>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(&range) = self.ranges.get(self.idx) {
                self.idx += 1;
                if let Some(iv) = self.cal.interval(self.date, range) {
                    return Some(iv);
                }
                continue;
            }
            if self.days_left == 0 {
                return None;
            }
            self.days_left -= 1;
            self.date = self.date.succ_opt()?;
            self.ranges = self.cal.ranges_on(self.date);
            self.idx = 0;
        }
    }
}

/// Ranges clipped to the day, empty ones dropped, sorted, and overlapping or
/// touching ones joined.
fn normalize(ranges: &[(u32, u32)]) -> Vec<(u32, u32)> {
    let mut v: Vec<(u32, u32)> = ranges
        .iter()
        .map(|&(s, e)| (s.min(DAY_MINUTES), e.min(DAY_MINUTES)))
        .filter(|(s, e)| s < e)
        .collect();
    v.sort_unstable();
    let mut out: Vec<(u32, u32)> = Vec::with_capacity(v.len());
    for (s, e) in v {
        if let Some(last) = out.last_mut() {
            if s <= last.1 {
                last.1 = last.1.max(e);
                continue;
            }
        }
        out.push((s, e));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::America::{Havana, New_York, Sao_Paulo};
    use chrono_tz::Europe::Lisbon;
    use proptest::prelude::*;
    use switchboard_lang::values::business_hours;

    const SP_HOURS: &str = "Mon-Fri 09:00-18:00, Sat 09:00-13:00";
    const MIN: u64 = 60;
    const HOUR: u64 = 3600;

    fn cal(hours: &str, holidays: &[&str], tz: Tz) -> Calendar {
        let hours = business_hours(hours).expect("valid hours");
        let holidays: Vec<NaiveDate> = holidays
            .iter()
            .map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").expect("date"))
            .collect();
        Calendar::new(&hours, &holidays, tz)
    }

    fn sao_paulo() -> Calendar {
        cal(SP_HOURS, &["2026-12-25"], Sao_Paulo)
    }

    /// A local wall time that names exactly one instant, as UTC.
    fn at(c: &Calendar, text: &str) -> DateTime<Utc> {
        let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
            .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M"))
            .expect("local time");
        c.timezone()
            .from_local_datetime(&naive)
            .single()
            .expect("an unambiguous local time")
            .with_timezone(&Utc)
    }

    fn utc(text: &str) -> DateTime<Utc> {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
            .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M"))
            .expect("utc time")
            .and_utc()
    }

    /// Local wall time with weekday and offset, for readable failures.
    fn show(c: &Calendar, t: DateTime<Utc>) -> String {
        t.with_timezone(&c.timezone())
            .format("%a %Y-%m-%d %H:%M:%S %:z")
            .to_string()
    }

    #[test]
    fn sao_paulo_friday_evening_rolls_into_saturday_morning() {
        let c = sao_paulo();
        let start = at(&c, "2026-06-05 17:55");
        assert_eq!(show(&c, start), "Fri 2026-06-05 17:55:00 -03:00");
        assert_eq!(
            show(&c, c.add(start, 15 * MIN)),
            "Sat 2026-06-06 09:10:00 -03:00"
        );
        assert_eq!(c.add(start, 15 * MIN), utc("2026-06-06 12:10"));
        assert_eq!(c.elapsed(start, c.add(start, 15 * MIN)), 15 * MIN);
    }

    #[test]
    fn sao_paulo_saturday_noon_rolls_into_monday() {
        let c = sao_paulo();
        let start = at(&c, "2026-06-06 12:50");
        assert_eq!(
            show(&c, c.add(start, 30 * MIN)),
            "Mon 2026-06-08 09:20:00 -03:00"
        );
    }

    #[test]
    fn a_holiday_friday_is_skipped() {
        let c = sao_paulo();
        let start = at(&c, "2026-12-24 17:50");
        assert_eq!(show(&c, start), "Thu 2026-12-24 17:50:00 -03:00");
        assert_eq!(
            show(&c, c.add(start, 20 * MIN)),
            "Sat 2026-12-26 09:10:00 -03:00"
        );
        assert!(!c.is_open(at(&c, "2026-12-25 10:00")));
        assert_eq!(
            c.elapsed(at(&c, "2026-12-24 00:00"), at(&c, "2026-12-27 00:00")),
            9 * HOUR + 4 * HOUR
        );
        // The same Friday without the holiday is an ordinary day.
        let plain = cal(SP_HOURS, &[], Sao_Paulo);
        assert_eq!(
            show(&plain, plain.add(start, 20 * MIN)),
            "Fri 2026-12-25 09:10:00 -03:00"
        );
    }

    #[test]
    fn a_start_before_opening_waits_for_it() {
        let c = sao_paulo();
        let start = at(&c, "2026-06-08 07:00");
        assert_eq!(
            show(&c, c.add(start, HOUR)),
            "Mon 2026-06-08 10:00:00 -03:00"
        );
        assert_eq!(show(&c, c.add(start, 0)), "Mon 2026-06-08 09:00:00 -03:00");
        assert_eq!(c.next_open(start), Some(at(&c, "2026-06-08 09:00")));
        // Sunday waits for Monday.
        let sunday = at(&c, "2026-06-07 11:00");
        assert_eq!(show(&c, c.add(sunday, 0)), "Mon 2026-06-08 09:00:00 -03:00");
        assert_eq!(c.elapsed(sunday, at(&c, "2026-06-08 09:30")), 30 * MIN);
    }

    #[test]
    fn a_start_at_the_closing_minute_counts_from_the_next_opening() {
        let c = sao_paulo();
        let close = at(&c, "2026-06-08 18:00");
        assert!(!c.is_open(close));
        assert_eq!(
            show(&c, c.add(close, MIN)),
            "Tue 2026-06-09 09:01:00 -03:00"
        );
        assert_eq!(show(&c, c.add(close, 0)), "Tue 2026-06-09 09:00:00 -03:00");
        // Ending exactly at a closing gives the closing, not the next opening.
        let before = at(&c, "2026-06-08 17:00");
        assert_eq!(c.add(before, HOUR), close);
        assert_eq!(c.add(at(&c, "2026-06-08 09:00"), 9 * HOUR), close);
    }

    #[test]
    fn a_lunch_gap_does_not_count() {
        let c = cal("Mon-Fri 09:00-12:00 13:00-18:00", &[], Sao_Paulo);
        let lunch = at(&c, "2026-06-08 12:30");
        assert!(!c.is_open(lunch));
        assert_eq!(
            show(&c, c.add(lunch, 30 * MIN)),
            "Mon 2026-06-08 13:30:00 -03:00"
        );
        assert_eq!(c.next_open(lunch), Some(at(&c, "2026-06-08 13:00")));
        let morning = at(&c, "2026-06-08 11:50");
        assert_eq!(
            show(&c, c.add(morning, 20 * MIN)),
            "Mon 2026-06-08 13:10:00 -03:00"
        );
        assert_eq!(
            c.elapsed(at(&c, "2026-06-08 00:00"), at(&c, "2026-06-09 00:00")),
            8 * HOUR
        );
    }

    #[test]
    fn is_open_includes_the_start_and_excludes_the_end() {
        let c = sao_paulo();
        assert!(c.is_open(at(&c, "2026-06-08 09:00:00")));
        assert!(!c.is_open(at(&c, "2026-06-08 08:59:59")));
        assert!(c.is_open(at(&c, "2026-06-08 17:59:59")));
        assert!(!c.is_open(at(&c, "2026-06-08 18:00:00")));
        assert!(c.is_open(at(&c, "2026-06-06 12:59:59")));
        assert!(!c.is_open(at(&c, "2026-06-06 13:00:00")));
        assert!(!c.is_open(at(&c, "2026-06-07 10:00:00")));
        // Sub-second precision at the end.
        let end = at(&c, "2026-06-08 18:00:00");
        assert!(c.is_open(end - TimeDelta::milliseconds(1)));
    }

    #[test]
    fn ranges_that_touch_across_midnight_are_continuous() {
        let c = cal("Fri 22:00-24:00, Sat 00:00-06:00", &[], Sao_Paulo);
        let start = at(&c, "2026-06-05 23:00");
        assert!(c.is_open(at(&c, "2026-06-06 00:00")));
        assert_eq!(
            show(&c, c.add(start, 2 * HOUR)),
            "Sat 2026-06-06 01:00:00 -03:00"
        );
        assert_eq!(c.elapsed(start, at(&c, "2026-06-06 08:00")), 7 * HOUR);
    }

    #[test]
    fn elapsed_counts_business_seconds_only() {
        let c = sao_paulo();
        let fri = at(&c, "2026-06-05 17:00");
        let mon = at(&c, "2026-06-08 10:00");
        assert_eq!(c.elapsed(fri, mon), HOUR + 4 * HOUR + HOUR);
        assert_eq!(c.elapsed(mon, fri), 0);
        assert_eq!(c.elapsed(mon, mon), 0);
        // A whole week: five days of nine hours and a Saturday of four.
        let week = at(&c, "2026-06-08 00:00");
        assert_eq!(
            c.elapsed(week, week + TimeDelta::days(7)),
            5 * 9 * HOUR + 4 * HOUR
        );
    }

    #[test]
    fn lisbon_friday_to_monday_across_spring_forward() {
        let c = cal("Mon-Fri 09:00-18:00", &[], Lisbon);
        let start = at(&c, "2027-03-26 17:55");
        assert_eq!(start, utc("2027-03-26 17:55"));
        let due = c.add(start, 15 * MIN);
        assert_eq!(show(&c, due), "Mon 2027-03-29 09:10:00 +01:00");
        assert_eq!(due, utc("2027-03-29 08:10"));
        assert_eq!(c.elapsed(start, due), 15 * MIN);
    }

    #[test]
    fn lisbon_friday_to_monday_across_fall_back() {
        let c = cal("Mon-Fri 09:00-18:00", &[], Lisbon);
        let start = at(&c, "2026-10-23 17:55");
        assert_eq!(start, utc("2026-10-23 16:55"));
        let due = c.add(start, 15 * MIN);
        assert_eq!(show(&c, due), "Mon 2026-10-26 09:10:00 +00:00");
        assert_eq!(due, utc("2026-10-26 09:10"));
    }

    #[test]
    fn new_york_friday_to_monday_across_both_changes() {
        let c = cal("Mon-Fri 09:00-18:00", &[], New_York);
        let spring = c.add(at(&c, "2027-03-12 17:55"), 15 * MIN);
        assert_eq!(show(&c, spring), "Mon 2027-03-15 09:10:00 -04:00");
        assert_eq!(spring, utc("2027-03-15 13:10"));
        let fall = c.add(at(&c, "2026-10-30 17:55"), 15 * MIN);
        assert_eq!(show(&c, fall), "Mon 2026-11-02 09:10:00 -05:00");
        assert_eq!(fall, utc("2026-11-02 14:10"));
    }

    #[test]
    fn a_24_7_calendar_counts_real_hours_across_dst_nights() {
        for tz in [Lisbon, New_York] {
            let c = Calendar::new(&BusinessHours::always(), &[], tz);
            let (spring_sat, spring_sun) = if tz == Lisbon {
                ("2027-03-27", "2027-03-28")
            } else {
                ("2027-03-13", "2027-03-14")
            };
            let (fall_sat, fall_sun) = if tz == Lisbon {
                ("2026-10-24", "2026-10-25")
            } else {
                ("2026-10-31", "2026-11-01")
            };
            let s = at(&c, &format!("{spring_sat} 12:00"));
            let e = at(&c, &format!("{spring_sun} 12:00"));
            assert_eq!(c.elapsed(s, e), 23 * HOUR, "{tz}");
            assert_eq!(c.add(s, 23 * HOUR), e, "{tz}");
            let s = at(&c, &format!("{fall_sat} 12:00"));
            let e = at(&c, &format!("{fall_sun} 12:00"));
            assert_eq!(c.elapsed(s, e), 25 * HOUR, "{tz}");
            assert_eq!(c.add(s, 25 * HOUR), e, "{tz}");
            // The local days themselves.
            let day = |d: &str| {
                let date = NaiveDate::parse_from_str(d, "%Y-%m-%d").expect("date");
                let next = date.succ_opt().expect("next day");
                c.elapsed(
                    at(&c, &format!("{date} 00:00")),
                    at(&c, &format!("{next} 00:00")),
                )
            };
            assert_eq!(day(spring_sun), 23 * HOUR, "{tz}");
            assert_eq!(day(fall_sun), 25 * HOUR, "{tz}");
            assert_eq!(day(spring_sat), 24 * HOUR, "{tz}");
        }
    }

    #[test]
    fn hours_that_start_inside_the_spring_forward_gap_start_when_it_ends() {
        // Lisbon, 2027-03-28: 01:00 WET becomes 02:00 WEST (01:00 UTC).
        let c = cal("Sun 01:30-03:00", &[], Lisbon);
        let sunday = at(&c, "2027-03-28 00:00");
        assert_eq!(c.next_open(sunday), Some(utc("2027-03-28 01:00")));
        assert!(!c.is_open(utc("2027-03-28 00:59:59")));
        assert!(c.is_open(utc("2027-03-28 01:00:00")));
        assert!(c.is_open(utc("2027-03-28 01:59:59")));
        assert!(!c.is_open(utc("2027-03-28 02:00:00")));
        // Only one real hour: 02:00 to 03:00 WEST.
        assert_eq!(c.elapsed(sunday, sunday + TimeDelta::days(1)), HOUR);
        let due = c.add(sunday, 30 * MIN);
        assert_eq!(show(&c, due), "Sun 2027-03-28 02:30:00 +01:00");
        // The next Sunday is an ordinary 90 minutes.
        let next = at(&c, "2027-04-04 00:00");
        assert_eq!(c.elapsed(next, next + TimeDelta::days(1)), 90 * MIN);
        // New York: 02:00 EST becomes 03:00 EDT (07:00 UTC).
        let ny = cal("Sun 02:30-04:00", &[], New_York);
        let sunday = at(&ny, "2027-03-14 00:00");
        assert_eq!(ny.next_open(sunday), Some(utc("2027-03-14 07:00")));
        assert_eq!(ny.elapsed(sunday, sunday + TimeDelta::days(1)), HOUR);
    }

    #[test]
    fn a_midnight_inside_the_gap_opens_when_the_gap_ends() {
        // São Paulo, 2018-11-04 (it had DST then): 00:00 -03:00 became
        // 01:00 -02:00 (03:00 UTC); that Sunday has no midnight.
        let c = Calendar::new(&BusinessHours::always(), &[], Sao_Paulo);
        let sat = at(&c, "2018-11-03 00:00");
        let sun_noon = at(&c, "2018-11-04 12:00");
        let mon = at(&c, "2018-11-05 00:00");
        assert_eq!(c.elapsed(sat, sun_noon), 24 * HOUR + 11 * HOUR);
        assert_eq!(c.elapsed(sun_noon, mon), 12 * HOUR);
        assert_eq!(c.add(sat, 24 * HOUR), utc("2018-11-04 03:00"));
        let c = cal("Sun 00:00-02:00", &[], Sao_Paulo);
        let sat = at(&c, "2018-11-03 12:00");
        assert_eq!(c.next_open(sat), Some(utc("2018-11-04 03:00")));
        assert_eq!(c.elapsed(sat, sat + TimeDelta::days(2)), HOUR);
    }

    #[test]
    fn a_range_wholly_inside_the_gap_has_no_time_that_day() {
        let c = cal("Sun 01:15-01:45", &[], Lisbon);
        let sunday = at(&c, "2027-03-28 00:00");
        assert_eq!(c.elapsed(sunday, sunday + TimeDelta::days(1)), 0);
        assert_eq!(show(&c, c.add(sunday, 0)), "Sun 2027-04-04 01:15:00 +01:00");
    }

    #[test]
    fn ambiguous_bounds_take_the_earliest_start_and_the_latest_end() {
        // Lisbon, 2026-10-25: 02:00 WEST becomes 01:00 WET (01:00 UTC);
        // 01:00-02:00 happens twice.
        let c = cal("Sun 01:30-03:00", &[], Lisbon);
        let sunday = at(&c, "2026-10-25 00:00");
        // Opens at the first 01:30 (00:30 UTC), closes at 03:00 WET.
        assert_eq!(c.next_open(sunday), Some(utc("2026-10-25 00:30")));
        assert_eq!(c.elapsed(sunday, sunday + TimeDelta::days(1)), 150 * MIN);
        let c = cal("Sun 00:30-01:30", &[], Lisbon);
        // Opens at 00:30 WEST (23:30 UTC Saturday), closes at the second
        // 01:30 (01:30 UTC): both passes of 01:00-01:30 are open.
        assert_eq!(c.next_open(sunday), Some(utc("2026-10-24 23:30")));
        assert!(c.is_open(utc("2026-10-25 00:45")));
        assert!(c.is_open(utc("2026-10-25 01:29:59")));
        assert!(!c.is_open(utc("2026-10-25 01:30")));
        assert_eq!(c.elapsed(sunday, sunday + TimeDelta::days(1)), 2 * HOUR);
        // Overlapping intervals are counted once.
        let c = cal("Sun 00:30-01:30 01:45-03:00", &[], Lisbon);
        // [23:30, 01:30 UTC) and [00:45, 03:00 UTC) overlap: 3.5 hours.
        assert_eq!(c.elapsed(sunday, sunday + TimeDelta::days(1)), 210 * MIN);
        assert_eq!(
            c.add(utc("2026-10-24 23:30"), 210 * MIN),
            utc("2026-10-25 03:00")
        );
    }

    #[test]
    fn a_range_ending_at_an_ambiguous_midnight_covers_both_passes() {
        // Havana, 2026-11-01: 01:00 CDT becomes 00:00 CST (05:00 UTC), so
        // Sunday's 00:00-01:00 happens twice and Saturday's 24:00 is ambiguous.
        let c = cal("Sat 22:00-24:00", &[], Havana);
        let sat = at(&c, "2026-10-31 22:00");
        assert_eq!(sat, utc("2026-11-01 02:00"));
        // Closes at the second midnight (05:00 UTC), three real hours later.
        assert!(c.is_open(utc("2026-11-01 04:30")));
        assert!(!c.is_open(utc("2026-11-01 05:00")));
        assert_eq!(c.elapsed(sat, sat + TimeDelta::days(1)), 3 * HOUR);
        // An instant whose local date is Sunday, inside Saturday's hours.
        let sunday_first_pass = utc("2026-11-01 04:30");
        assert_eq!(
            show(&c, sunday_first_pass),
            "Sun 2026-11-01 00:30:00 -04:00"
        );
        assert_eq!(c.add(sunday_first_pass, 0), sunday_first_pass);
        assert_eq!(c.add(sunday_first_pass, 30 * MIN), utc("2026-11-01 05:00"));
        // Round the clock, the ambiguous midnight is not counted twice.
        let c = Calendar::new(&BusinessHours::always(), &[], Havana);
        assert_eq!(c.elapsed(sat, sat + TimeDelta::days(1)), 24 * HOUR);
        assert_eq!(
            c.elapsed(at(&c, "2026-10-31 12:00"), at(&c, "2026-11-01 12:00")),
            25 * HOUR
        );
    }

    #[test]
    fn an_empty_calendar_never_opens_and_add_saturates() {
        let c = Calendar::new(&BusinessHours::default(), &[], Sao_Paulo);
        let t = utc("2026-06-05 12:00");
        assert_eq!(c.next_open(t), None);
        assert_eq!(c.try_add(t, 0), None);
        assert_eq!(c.try_add(t, 60), None);
        assert_eq!(c.add(t, 60), DateTime::<Utc>::MAX_UTC);
        assert_eq!(c.elapsed(t, t + TimeDelta::days(365)), 0);
        assert!(!c.is_open(t));
    }

    #[test]
    fn durations_past_the_walk_bound_saturate() {
        let c = Calendar::new(&BusinessHours::always(), &[], Lisbon);
        let t = utc("2026-06-05 12:00");
        assert_eq!(c.add(t, u64::MAX), DateTime::<Utc>::MAX_UTC);
        assert_eq!(c.try_add(t, 20 * 366 * 24 * HOUR), None);
        // One year is well within the bound.
        let year = c.add(t, 365 * 24 * HOUR);
        assert_eq!(year, t + TimeDelta::days(365));
        // Elapsed over a span longer than the bound counts the bound.
        let long = c.elapsed(t, t + TimeDelta::days(20 * 366));
        assert!(long <= u64::from(MAX_DAYS) * 24 * HOUR, "{long}");
        assert!(long >= u64::from(MAX_DAYS - 2) * 24 * HOUR, "{long}");
        // A calendar whose only weekday is a holiday for years: found within
        // the bound (500 weeks), given up on past it (600 weeks).
        let first = NaiveDate::from_ymd_opt(2026, 6, 5).expect("date");
        let fridays =
            |n: i64| -> Vec<NaiveDate> { (0..n).map(|w| first + TimeDelta::weeks(w)).collect() };
        let hours = business_hours("Fri 09:00-10:00").expect("hours");
        let near = Calendar::new(&hours, &fridays(500), Sao_Paulo);
        let start = at(&near, "2026-06-05 08:00");
        assert_eq!(near.next_open(start), Some(at(&near, "2036-01-04 09:00")));
        let far = Calendar::new(&hours, &fridays(600), Sao_Paulo);
        assert_eq!(far.next_open(start), None);
        assert_eq!(far.add(start, 60), DateTime::<Utc>::MAX_UTC);
    }

    #[test]
    fn extreme_instants_do_not_panic() {
        for c in [
            sao_paulo(),
            Calendar::new(&BusinessHours::always(), &[], Lisbon),
            cal("Sun 01:30-03:00", &[], New_York),
        ] {
            for t in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC] {
                let _ = c.is_open(t);
                let _ = c.next_open(t);
                let _ = c.add(t, 3600);
                let _ = c.elapsed(t, t);
            }
            let _ = c.add(DateTime::<Utc>::MAX_UTC - TimeDelta::seconds(1), 10);
            let e = c.elapsed(DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC);
            assert!(e <= u64::from(MAX_DAYS + 2) * 25 * HOUR);
        }
    }

    #[test]
    fn sub_second_starts_stay_exact() {
        let c = sao_paulo();
        let start = at(&c, "2026-06-08 17:59") + TimeDelta::milliseconds(500);
        let due = c.add(start, 60);
        // 59.5 s on Monday, 0.5 s on Tuesday.
        assert_eq!(
            due,
            at(&c, "2026-06-09 09:00") + TimeDelta::milliseconds(500)
        );
        assert_eq!(c.elapsed(start, due), 60);
    }

    #[test]
    fn hours_are_normalized() {
        let hours = BusinessHours {
            days: [
                vec![(600, 700), (540, 620), (700, 720), (900, 900), (1400, 2000)],
                vec![],
                vec![],
                vec![],
                vec![],
                vec![],
                vec![],
            ],
        };
        let c = Calendar::new(&hours, &[], Sao_Paulo);
        assert_eq!(c.days[0], vec![(540, 720), (1400, 1440)]);
        let monday = at(&c, "2026-06-08 00:00");
        assert_eq!(
            c.elapsed(monday, monday + TimeDelta::days(1)),
            3 * HOUR + 40 * MIN
        );
    }

    #[test]
    fn for_pipe_reads_hours_holidays_and_zone() {
        use switchboard_lang::{check, MemoryLoader, Sources};
        let text = "pipe p \"P\" {\n  number \"+55 11 4000-1000\"\n  timezone \"America/Sao_Paulo\"\n  hours \"Mon-Fri 09:00-18:00, Sat 09:00-13:00\"\n  holidays \"2026-12-25\", \"2027-01-01\"\n  status new open initial\n  status done done final\n}\n";
        let mut sources = Sources::new();
        sources.add("p.flow", text.to_string());
        let checked = check(&mut sources, &MemoryLoader::default());
        assert!(!checked.has_errors(), "{:#?}", checked.diagnostics);
        let c = Calendar::for_pipe(&checked.workflow.pipes[0]);
        assert_eq!(c.timezone(), Sao_Paulo);
        let start = at(&c, "2026-12-24 17:50");
        assert_eq!(
            show(&c, c.add(start, 20 * MIN)),
            "Sat 2026-12-26 09:10:00 -03:00"
        );
        assert!(!c.is_open(at(&c, "2027-01-01 10:00")));
    }

    fn lisbon() -> Calendar {
        cal(
            "Mon-Fri 09:00-18:00, Sat 09:00-13:00",
            &["2026-12-25", "2027-01-01"],
            Lisbon,
        )
    }

    /// Nights around the DST changes, to stress gaps and repeats.
    fn lisbon_nights() -> Calendar {
        cal(
            "Sun 00:30-01:30 01:45-03:00, Mon-Sat 22:00-24:00",
            &[],
            Lisbon,
        )
    }

    fn always_lisbon() -> Calendar {
        Calendar::new(&BusinessHours::always(), &[], Lisbon)
    }

    fn calendars() -> Vec<Calendar> {
        vec![sao_paulo(), lisbon(), lisbon_nights()]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn add_and_elapsed_agree(
            which in 0usize..3,
            start in 1_767_225_600i64..1_861_920_000i64, // 2026-01-01 .. 2029-01-01
            d in 0u64..=30 * 24 * 3600,
            d2 in 0u64..=30 * 24 * 3600,
        ) {
            let c = &calendars()[which];
            let s = DateTime::<Utc>::from_timestamp(start, 0).expect("in range");
            let due = c.add(s, d);
            prop_assert!(due >= s);
            prop_assert!(due < DateTime::<Utc>::MAX_UTC);
            prop_assert_eq!(c.elapsed(s, due), d, "{} + {}", show(c, s), d);
            if d > 0 {
                prop_assert!(c.is_open(due - TimeDelta::seconds(1)), "{} + {} = {}", show(c, s), d, show(c, due));
            } else {
                prop_assert_eq!(Some(due), c.next_open(s));
                prop_assert!(c.is_open(due));
            }
            let (lo, hi) = (d.min(d2), d.max(d2));
            prop_assert!(c.add(s, lo) <= c.add(s, hi));
        }

        #[test]
        fn dst_nights_keep_add_and_elapsed_in_step(
            which in 0usize..4,
            night in 0usize..4,
            offset in -3 * 24 * 3600i64..3 * 24 * 3600i64,
            d in 0u64..=4 * 24 * 3600,
        ) {
            let cals = [lisbon(), lisbon_nights(), cal("Sun 01:30-03:00, Sat 23:00-24:00", &[], Lisbon), always_lisbon()];
            let c = &cals[which];
            // Lisbon's changes, at 01:00 UTC.
            let nights = ["2026-03-29 01:00", "2026-10-25 01:00", "2027-03-28 01:00", "2027-10-31 01:00"];
            let s = utc(nights[night]) + TimeDelta::seconds(offset);
            let due = c.add(s, d);
            prop_assert!(due >= s);
            prop_assert_eq!(c.elapsed(s, due), d, "{} + {}", show(c, s), d);
            if d > 0 {
                prop_assert!(c.is_open(due - TimeDelta::seconds(1)));
            }
            if which == 3 {
                // Open always: business time is real time.
                prop_assert_eq!(due, s + TimeDelta::seconds(i64::try_from(d).expect("small")));
            }
        }

        #[test]
        fn is_open_matches_elapsed(
            which in 0usize..3,
            start in 1_767_225_600i64..1_861_920_000i64,
        ) {
            let c = &calendars()[which];
            let s = DateTime::<Utc>::from_timestamp(start, 0).expect("in range");
            let open = c.elapsed(s, s + TimeDelta::seconds(1)) == 1;
            prop_assert_eq!(c.is_open(s), open, "{}", show(c, s));
        }
    }
}
