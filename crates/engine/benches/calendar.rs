//! How long one SLA due-time computation (`Calendar::add`) takes, beside a
//! baseline measured in the same run: plain wall-clock `start + duration` and
//! one chrono-tz UTC→local conversion. Target: at most 2 µs per `add()` in
//! release. Run with `cargo bench -p switchboard-engine --bench calendar`.

use std::hint::black_box;
use std::time::Instant;

use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone, Utc};
use chrono_tz::America::Sao_Paulo;
use switchboard_engine::calendar::Calendar;
use switchboard_lang::values::business_hours;

const BATCHES: usize = 31;
const PER_BATCH: usize = 20_000;

/// Median nanoseconds per call of `f` over `BATCHES` batches.
fn median_ns(mut f: impl FnMut(usize) -> u64) -> f64 {
    // Warm up.
    let mut sink = 0u64;
    for i in 0..PER_BATCH {
        sink = sink.wrapping_add(f(i));
    }
    black_box(sink);
    let mut per_call: Vec<f64> = (0..BATCHES)
        .map(|_| {
            let t = Instant::now();
            let mut sink = 0u64;
            for i in 0..PER_BATCH {
                sink = sink.wrapping_add(f(i));
            }
            black_box(sink);
            t.elapsed().as_nanos() as f64 / PER_BATCH as f64
        })
        .collect();
    per_call.sort_by(f64::total_cmp);
    per_call[BATCHES / 2]
}

fn main() {
    let hours = business_hours("Mon-Fri 09:00-18:00, Sat 09:00-13:00").expect("hours");
    // Ten Brazilian holidays of 2026.
    let holidays: Vec<NaiveDate> = [
        "2026-01-01",
        "2026-02-16",
        "2026-02-17",
        "2026-04-03",
        "2026-04-21",
        "2026-05-01",
        "2026-06-04",
        "2026-09-07",
        "2026-10-12",
        "2026-12-25",
    ]
    .iter()
    .map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").expect("date"))
    .collect();
    let cal = Calendar::new(&hours, &holidays, Sao_Paulo);

    // Friday afternoons (15:00 local) through the year, cycled.
    let starts: Vec<DateTime<Utc>> = (0..52)
        .map(|w| {
            let day = NaiveDate::from_ymd_opt(2026, 1, 2).expect("a Friday") + TimeDelta::weeks(w);
            Sao_Paulo
                .from_local_datetime(&day.and_hms_opt(15, 0, 0).expect("15:00"))
                .single()
                .expect("no DST in São Paulo")
                .with_timezone(&Utc)
        })
        .collect();
    let start = |i: usize| black_box(starts[i % starts.len()]);

    let ts = |t: DateTime<Utc>| t.timestamp() as u64;
    let build = median_ns(|_| {
        let c = Calendar::new(black_box(&hours), black_box(&holidays), Sao_Paulo);
        black_box(&c);
        0
    });
    let plain = median_ns(|i| ts(start(i) + black_box(TimeDelta::minutes(15))));
    let convert = median_ns(|i| {
        let local = Sao_Paulo.from_utc_datetime(&start(i).naive_utc());
        local.timestamp() as u64 ^ u64::from(chrono::Timelike::hour(&local))
    });
    let to_utc = median_ns(|i| {
        let local = start(i).naive_utc() - TimeDelta::hours(3);
        Sao_Paulo
            .from_local_datetime(black_box(&local))
            .single()
            .map_or(0, |t| t.timestamp() as u64)
    });
    let add_15m = median_ns(|i| ts(cal.add(start(i), black_box(15 * 60))));
    let add_8h = median_ns(|i| ts(cal.add(start(i), black_box(8 * 3600))));
    let add_30d = median_ns(|i| ts(cal.add(start(i), black_box(30 * 24 * 3600))));
    let elapsed_week = median_ns(|i| {
        let s = start(i);
        cal.elapsed(s, s + TimeDelta::days(7))
    });

    println!("calendar benchmark (median of {BATCHES} batches × {PER_BATCH} calls, São Paulo, 10 holidays, starts Friday 15:00)");
    println!("  baseline  start + Duration (wall clock)   {plain:>9.1} ns");
    println!("  baseline  one UTC→local conversion          {convert:>9.1} ns");
    println!("  (for scale) one local→UTC conversion       {to_utc:>9.1} ns");
    println!("  add()     15-minute window                {add_15m:>9.1} ns");
    println!("  add()     8-hour window (→ Monday)         {add_8h:>9.1} ns");
    println!("  add()     30-day window (business seconds) {add_30d:>9.1} ns");
    println!("  elapsed() over 7 days                     {elapsed_week:>9.1} ns");
    println!("  Calendar::new (10 holidays)               {build:>9.1} ns");
    let worst = add_15m.max(add_8h);
    println!(
        "  target ≤ 2000 ns per due time: {} ({worst:.0} ns)",
        if worst <= 2000.0 { "met" } else { "NOT met" }
    );
}
