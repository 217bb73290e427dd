//! Reading the small value syntaxes of the language: durations, business
//! hours, dates, phone numbers, e-mails. Each reader returns a sentence that
//! says what is wrong, and where inside the text when it can.

use chrono::{NaiveDate, NaiveTime, Weekday};
use serde::Serialize;

/// A reading error: a sentence, and optionally the byte range inside the
/// text that is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueError {
    /// What is wrong.
    pub message: String,
    /// Byte range inside the text, when known.
    pub at: Option<(usize, usize)>,
    /// What to do.
    pub help: Option<String>,
}

impl ValueError {
    fn new(message: impl Into<String>) -> ValueError {
        ValueError {
            message: message.into(),
            at: None,
            help: None,
        }
    }
    fn at(mut self, start: usize, end: usize) -> ValueError {
        self.at = Some((start, end));
        self
    }
    fn help(mut self, help: impl Into<String>) -> ValueError {
        self.help = Some(help.into());
        self
    }
}

const DURATION_HELP: &str =
    "write a number followed by `m` (minutes), `h` (hours), `d` (days) or `w` (weeks), such as `15m` or `1h30m`";

/// Reads `15m`, `1h30m`, `7d`, `2w`, `30s` into seconds.
pub fn duration(text: &str) -> Result<u64, ValueError> {
    if text.is_empty() {
        return Err(ValueError::new("a duration is missing").help(DURATION_HELP));
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for (i, c) in text.char_indices() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => {
                return Err(ValueError::new(format!(
                    "`{text}` is not a duration: `{c}` is not a unit"
                ))
                .at(i, i + c.len_utf8())
                .help(DURATION_HELP))
            }
        };
        if digits.is_empty() {
            return Err(ValueError::new(format!(
                "`{text}` is not a duration: `{c}` needs a number before it"
            ))
            .at(i, i + 1)
            .help(DURATION_HELP));
        }
        let n: u64 = digits
            .parse()
            .map_err(|_| ValueError::new(format!("`{text}` is too long a duration")))?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| ValueError::new(format!("`{text}` is too long a duration")))?;
        digits.clear();
    }
    if !digits.is_empty() {
        return Err(ValueError::new(format!(
            "`{text}` is not a duration: the number needs a unit"
        ))
        .at(text.len() - digits.len(), text.len())
        .help(DURATION_HELP));
    }
    if total == 0 {
        return Err(ValueError::new(format!("`{text}` is an empty duration")).help(DURATION_HELP));
    }
    Ok(total)
}

/// Writes seconds back as the shortest duration text (`5400` → `1h30m`).
pub fn format_duration(mut secs: u64) -> String {
    let mut out = String::new();
    for (unit, name) in [
        (604_800, "w"),
        (86_400, "d"),
        (3600, "h"),
        (60, "m"),
        (1, "s"),
    ] {
        // Weeks only when exact: `30d` reads better than `4w2d`.
        if unit == 604_800 && !secs.is_multiple_of(unit) {
            continue;
        }
        if secs >= unit {
            out.push_str(&format!("{}{name}", secs / unit));
            secs %= unit;
        }
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    out
}

/// Opening hours per weekday (Monday first), as minute ranges since midnight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct BusinessHours {
    /// `days[0]` is Monday; each range is `[start, end)` in minutes.
    pub days: [Vec<(u32, u32)>; 7],
}

impl BusinessHours {
    /// Open all day, every day.
    pub fn always() -> BusinessHours {
        BusinessHours {
            days: std::array::from_fn(|_| vec![(0, 24 * 60)]),
        }
    }
    /// The ranges of one weekday.
    pub fn on(&self, day: Weekday) -> &[(u32, u32)] {
        &self.days[day.num_days_from_monday() as usize]
    }
}

const DAYS: &[(&str, usize)] = &[
    ("mon", 0),
    ("tue", 1),
    ("wed", 2),
    ("thu", 3),
    ("fri", 4),
    ("sat", 5),
    ("sun", 6),
    // Portuguese, for the product's first users.
    ("seg", 0),
    ("ter", 1),
    ("qua", 2),
    ("qui", 3),
    ("sex", 4),
    ("sab", 5),
    ("sáb", 5),
    ("dom", 6),
];

const HOURS_HELP: &str = "write days and times such as \"Mon-Fri 09:00-18:00, Sat 09:00-13:00\"";

/// Reads `"Mon-Fri 09:00-12:00 13:00-18:00, Sat 09:00-13:00"`.
pub fn business_hours(text: &str) -> Result<BusinessHours, ValueError> {
    let mut hours = BusinessHours::default();
    let mut offset = 0;
    if text.trim().is_empty() {
        return Err(ValueError::new("the business hours are empty").help(HOURS_HELP));
    }
    for group in text.split(',') {
        let start = offset;
        offset += group.len() + 1;
        let mut words = Vec::new();
        let mut pos = start;
        for w in group.split(' ') {
            if !w.is_empty() {
                words.push((pos, w));
            }
            pos += w.len() + 1;
        }
        let Some(&(dpos, dayspec)) = words.first() else {
            return Err(
                ValueError::new("an empty part between commas in the business hours")
                    .at(start, start + group.len())
                    .help(HOURS_HELP),
            );
        };
        let days = day_range(dayspec).map_err(|e| e.at(dpos, dpos + dayspec.len()))?;
        if words.len() < 2 {
            return Err(ValueError::new(format!(
                "`{dayspec}` needs opening hours after it, such as `09:00-18:00`"
            ))
            .at(dpos, dpos + dayspec.len())
            .help(HOURS_HELP));
        }
        for &(tpos, range) in &words[1..] {
            let (a, b) = time_range(range).map_err(|e| e.at(tpos, tpos + range.len()))?;
            for &d in &days {
                if hours.days[d].iter().any(|&(s, e)| a < e && s < b) {
                    return Err(ValueError::new(format!(
                        "`{range}` overlaps hours already given for the same day"
                    ))
                    .at(tpos, tpos + range.len()));
                }
                hours.days[d].push((a, b));
                hours.days[d].sort();
            }
        }
    }
    Ok(hours)
}

fn day(word: &str) -> Result<usize, ValueError> {
    let lower = word.to_lowercase();
    DAYS.iter()
        .find(|(n, _)| *n == lower || lower.len() > 3 && lower.starts_with(n))
        .map(|(_, d)| *d)
        .ok_or_else(|| {
            let names: Vec<&str> = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"].to_vec();
            let help = crate::diagnostic::did_you_mean(word, names)
                .unwrap_or_else(|| "days are Mon, Tue, Wed, Thu, Fri, Sat, Sun".to_string());
            ValueError::new(format!("`{word}` is not a day of the week")).help(help)
        })
}

fn day_range(spec: &str) -> Result<Vec<usize>, ValueError> {
    match spec.split_once('-') {
        None => Ok(vec![day(spec)?]),
        Some((a, b)) => {
            let (a, b) = (day(a)?, day(b)?);
            let mut out = vec![a];
            let mut d = a;
            while d != b {
                d = (d + 1) % 7;
                out.push(d);
            }
            Ok(out)
        }
    }
}

/// Reads `09:00` (or `24:00` as the end of the day) into minutes.
pub fn time_of_day(text: &str) -> Result<u32, ValueError> {
    if text == "24:00" {
        return Ok(24 * 60);
    }
    NaiveTime::parse_from_str(text, "%H:%M")
        .map(|t| chrono::Timelike::hour(&t) * 60 + chrono::Timelike::minute(&t))
        .map_err(|_| {
            ValueError::new(format!(
                "`{text}` is not a time of day: write it as HH:MM, such as `09:00`"
            ))
        })
}

fn time_range(range: &str) -> Result<(u32, u32), ValueError> {
    let Some((a, b)) = range.split_once('-') else {
        return Err(ValueError::new(format!(
            "`{range}` is not a range of hours: write it as `09:00-18:00`"
        )));
    };
    let (a, b) = (time_of_day(a)?, time_of_day(b)?);
    if a >= b {
        return Err(ValueError::new(format!("`{range}` ends before it starts"))
            .help("hours past midnight go on the next day: `Fri 22:00-24:00, Sat 00:00-06:00`"));
    }
    Ok((a, b))
}

/// Reads `2026-12-25`.
pub fn date(text: &str) -> Result<NaiveDate, ValueError> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|e| {
        let why = match e.kind() {
            chrono::format::ParseErrorKind::OutOfRange => "that day does not exist",
            _ => "write it as YYYY-MM-DD, such as `2026-12-25`",
        };
        ValueError::new(format!("`{text}` is not a date: {why}"))
    })
}

/// The digits of a phone number written for people (`+55 11 4000-1000` →
/// `551140001000`), which is how WhatsApp names numbers.
pub fn phone_digits(text: &str) -> Result<String, ValueError> {
    let t = text.trim();
    let Some(rest) = t.strip_prefix('+') else {
        return Err(ValueError::new(format!(
            "`{text}` is not a phone number: it must start with `+` and the country code"
        ))
        .help("write it as \"+55 11 4000-1000\""));
    };
    let mut digits = String::new();
    for (i, c) in rest.char_indices() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '(' | ')' | '.' => {}
            _ => {
                let at = i + 1 + (text.len() - text.trim_start().len());
                return Err(ValueError::new(format!(
                    "`{text}` is not a phone number: `{c}` is not a digit"
                ))
                .at(at, at + c.len_utf8()));
            }
        }
    }
    if !(8..=15).contains(&digits.len()) {
        return Err(ValueError::new(format!(
            "`{text}` is not a phone number: it has {} digits, and numbers have 8 to 15 with the country code",
            digits.len()
        )));
    }
    Ok(digits)
}

/// The digits of a phone prefix in a route table (`"+55 11"` → `5511`).
pub fn phone_prefix(text: &str) -> Result<String, ValueError> {
    let Some(rest) = text.trim().strip_prefix('+') else {
        return Err(ValueError::new(format!(
            "`{text}` is not a phone prefix: it must start with `+` and the country code"
        ))
        .help("write it as \"+5511\" for São Paulo or \"+351\" for Portugal"));
    };
    let digits: String = rest
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
        .collect();
    if digits.is_empty() || digits.len() > 15 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(ValueError::new(format!(
            "`{text}` is not a phone prefix: after `+` only digits are allowed"
        )));
    }
    Ok(digits)
}

/// Checks an agent e-mail such as `ana@acme.com`.
pub fn email(text: &str) -> Result<(), ValueError> {
    let ok = text.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains('@')
    }) && !text.contains(char::is_whitespace);
    if ok {
        Ok(())
    } else {
        Err(
            ValueError::new(format!("`{text}` is not an e-mail address"))
                .help("agents are named by e-mail, such as `ana@acme.com`"),
        )
    }
}

/// Reads a number such as `42`, `-3` or `1.5`.
pub fn number(text: &str) -> Result<f64, ValueError> {
    text.parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
        .ok_or_else(|| ValueError::new(format!("`{text}` is not a number")))
}

/// Reads a cron expression. Five fields (minute hour day month weekday) get
/// a `0` seconds field in front; six or seven are taken as they are.
pub fn cron(text: &str) -> Result<(String, cron::Schedule), ValueError> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let fields = parts.len();
    let normalized = match fields {
        5..=7 => {
            // The weekday is the 5th field (the 6th when seconds are given).
            let dow = if fields == 5 { 4 } else { 5 };
            let mut out: Vec<String> = parts.iter().map(|p| p.to_string()).collect();
            out[dow] = weekdays_for_cron(parts[dow]);
            if fields == 5 {
                out.insert(0, "0".to_string());
            }
            out.join(" ")
        }
        _ => {
            return Err(ValueError::new(format!(
                "`{text}` is not a schedule: it has {fields} parts, and a schedule has 5 (minute hour day month weekday)"
            ))
            .help("for 8:00 on weekdays write \"0 8 * * Mon-Fri\""))
        }
    };
    let schedule = normalized.parse::<cron::Schedule>().map_err(|e| {
        // The cron crate's message repeats the expression over several
        // lines; its last line says what is wrong.
        let msg = e.to_string();
        let why = msg
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .unwrap_or("it cannot be read");
        let why = why
            .trim_end_matches('.')
            .replace(". (", " (")
            .replace(".)", ")")
            // The crate says "less than 23" where it means "at most 23".
            .replace("must be less than", "must be at most");
        let mut chars = why.chars();
        let why = match chars.next() {
            Some(c) => c.to_lowercase().chain(chars).collect::<String>(),
            None => why,
        };
        ValueError::new(format!("`{text}` is not a schedule: {why}"))
            .help("for 8:00 on weekdays write \"0 8 * * Mon-Fri\"")
    })?;
    Ok((normalized, schedule))
}

/// Weekdays as people write them in cron (0 or 7 = Sunday, 1 = Monday … 6 =
/// Saturday; English or Portuguese names; ranges that run past Saturday such
/// as `Sat-Sun`) into the cron crate's own numbering (1 = Sunday … 7 =
/// Saturday, no wrapping ranges). Anything it does not understand is left
/// for the cron crate to report.
fn weekdays_for_cron(field: &str) -> String {
    if field == "*" || field == "?" {
        return field.to_string();
    }
    // With steps (`*/2`, `1-5/2`) only the numbers are renumbered.
    if let Some((days, step)) = field.split_once('/') {
        let days = match days.split_once('-').map(|(a, b)| (weekday(a), weekday(b))) {
            Some((Some(a), Some(b))) if a <= b => format!("{}-{}", a + 1, b + 1),
            None => weekday(days)
                .map(|d| (d + 1).to_string())
                .unwrap_or_else(|| days.to_string()),
            _ => days.to_string(),
        };
        return format!("{days}/{step}");
    }
    let mut days: Vec<u32> = Vec::new();
    for part in field.split(',') {
        let parsed = match part.split_once('-') {
            None => weekday(part).map(|d| vec![d]),
            Some((a, b)) => match (weekday(a), weekday(b)) {
                (Some(a), Some(b)) => {
                    let mut out = vec![a];
                    let mut d = a;
                    while d != b {
                        d = (d + 1) % 7;
                        out.push(d);
                    }
                    Some(out)
                }
                _ => None,
            },
        };
        match parsed {
            Some(ds) => days.extend(ds),
            None => return field.to_string(),
        }
    }
    days.sort_unstable();
    days.dedup();
    days.iter()
        .map(|d| (d + 1).to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// A weekday as people write it, as 0 = Sunday … 6 = Saturday.
fn weekday(word: &str) -> Option<u32> {
    const NAMES: &[(&str, u32)] = &[
        ("sun", 0),
        ("mon", 1),
        ("tue", 2),
        ("wed", 3),
        ("thu", 4),
        ("fri", 5),
        ("sat", 6),
        ("dom", 0),
        ("seg", 1),
        ("ter", 2),
        ("qua", 3),
        ("qui", 4),
        ("sex", 5),
        ("sab", 6),
        ("sáb", 6),
    ];
    let lower = word.trim().to_lowercase();
    if let Ok(n) = lower.parse::<u32>() {
        return (n <= 7).then_some(n % 7);
    }
    NAMES.iter().find(|(n, _)| *n == lower).map(|(_, d)| *d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_and_write_back() {
        assert_eq!(duration("15m"), Ok(900));
        assert_eq!(duration("1h30m"), Ok(5400));
        assert_eq!(duration("7d"), Ok(604_800));
        assert_eq!(format_duration(5400), "1h30m");
        assert!(duration("15").is_err());
        assert!(duration("15x")
            .unwrap_err()
            .message
            .contains("`x` is not a unit"));
        assert!(duration("m").is_err());
        assert!(duration("0m").is_err());
        assert!(duration("99999999999999999999w").is_err());
    }

    #[test]
    fn business_hours_read_days_and_ranges() {
        let h = business_hours("Mon-Fri 09:00-12:00 13:00-18:00, Sat 09:00-13:00").expect("valid");
        assert_eq!(h.on(Weekday::Mon), &[(540, 720), (780, 1080)]);
        assert_eq!(h.on(Weekday::Sat), &[(540, 780)]);
        assert!(h.on(Weekday::Sun).is_empty());
        let pt = business_hours("Seg-Sex 08:00-17:00").expect("Portuguese days");
        assert_eq!(pt.on(Weekday::Fri), &[(480, 1020)]);
        let e = business_hours("Mon-Fri 09:00-18:00, Sta 09:00-13:00").unwrap_err();
        assert_eq!(e.at, Some((21, 24)));
        assert_eq!(e.help.as_deref(), Some("did you mean `Sat`?"));
        assert!(business_hours("Mon 18:00-09:00").is_err());
        assert!(business_hours("Mon 09:00-25:00").is_err());
        assert!(business_hours("Mon").is_err());
        assert!(business_hours("Mon 09:00-12:00 11:00-13:00").is_err());
    }

    #[test]
    fn phone_numbers_become_digits() {
        assert_eq!(
            phone_digits("+55 11 4000-1000").as_deref(),
            Ok("551140001000")
        );
        assert!(phone_digits("11 4000-1000").is_err());
        assert!(phone_digits("+55 11 4000-100O")
            .unwrap_err()
            .message
            .contains("`O` is not a digit"));
        assert!(phone_digits("+55 11").is_err());
        assert_eq!(phone_prefix("+55 11").as_deref(), Ok("5511"));
        assert!(phone_prefix("5511").is_err());
    }

    #[test]
    fn dates_emails_numbers_and_schedules() {
        assert!(date("2026-12-25").is_ok());
        assert!(date("2026-02-30")
            .unwrap_err()
            .message
            .contains("does not exist"));
        assert!(date("25/12/2026").is_err());
        assert!(email("ana@acme.com").is_ok());
        assert!(email("ana.acme.com").is_err());
        assert!(email("ana@acme").is_err());
        assert_eq!(number("1.5"), Ok(1.5));
        assert!(number("abc").is_err());
        assert_eq!(
            cron("0 8 * * Mon-Fri").map(|c| c.0),
            Ok("0 0 8 * * 2,3,4,5,6".to_string())
        );
        assert!(cron("0 0 8 * * Mon-Fri").is_ok());
        assert!(cron("0 99 * * *").is_err());
        // People's weekday numbers (1 = Monday) and Portuguese names.
        assert_eq!(
            cron("0 8 * * 1-5").map(|c| c.0),
            Ok("0 0 8 * * 2,3,4,5,6".to_string())
        );
        assert_eq!(
            cron("0 8 * * Sat-Sun").map(|c| c.0),
            Ok("0 0 8 * * 1,7".to_string())
        );
        assert_eq!(
            cron("0 8 * * 6-7").map(|c| c.0),
            Ok("0 0 8 * * 1,7".to_string())
        );
        assert_eq!(
            cron("0 8 * * Mon-Sun").map(|c| c.0),
            Ok("0 0 8 * * 1,2,3,4,5,6,7".to_string())
        );
        assert_eq!(
            cron("0 8 * * 1-5/2").map(|c| c.0),
            Ok("0 0 8 * * 2-6/2".to_string())
        );
        assert_eq!(
            cron("0 8 * * 0").map(|c| c.0),
            Ok("0 0 8 * * 1".to_string())
        );
        assert_eq!(
            cron("0 8 * * seg-sex").map(|c| c.0),
            Ok("0 0 8 * * 2,3,4,5,6".to_string())
        );
        assert!(cron("0 8 * * 8").is_err());
        assert_eq!(
            cron("0 8 * * */2").map(|c| c.0),
            Ok("0 0 8 * * */2".to_string())
        );
        let e = cron("0 24 * * *").unwrap_err().message;
        assert!(e.contains("must be at most 23"), "{e}");
        assert!(cron("every day").is_err());
    }
}
