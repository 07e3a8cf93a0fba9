//! Standard cron schedules (five fields, names, ranges, steps, `@hourly`-style macros) as
//! robfig/cron's `ParseStandard`, which kube-controller-manager uses.

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    /// Day-of-month or day-of-week given as `*`: then both must match, else either.
    day_star: bool,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn value(s: &str, names: &[&str], offset: u32) -> Result<u32, String> {
    let lower = s.to_ascii_lowercase();
    if let Some(i) = names.iter().position(|n| *n == lower) {
        return Ok(i as u32 + offset);
    }
    s.parse()
        .map_err(|_| format!("failed to parse int from {s}"))
}

fn field(
    spec: &str,
    min: u32,
    max: u32,
    names: &[&str],
    offset: u32,
) -> Result<(u64, bool), String> {
    let mut bits = 0u64;
    let mut star = false;
    for part in spec.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                Some(
                    s.parse::<u32>()
                        .map_err(|_| format!("failed to parse int from {s}"))?,
                ),
            ),
            None => (part, None),
        };
        let (lo, hi) = if range == "*" || range == "?" {
            star = step.is_none();
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a, names, offset)?, value(b, names, offset)?)
        } else {
            let v = value(range, names, offset)?;
            (v, if step.is_some() { max } else { v })
        };
        if lo < min || hi > max || lo > hi {
            return Err(format!("end of range ({hi}) above maximum ({max}) or beginning of range ({lo}) below minimum ({min}): {part}"));
        }
        let step = step.unwrap_or(1);
        if step == 0 {
            return Err(format!("step of range should be a positive number: {part}"));
        }
        for v in (lo..=hi).step_by(step as usize) {
            bits |= 1 << v;
        }
    }
    Ok((bits, star))
}

impl Schedule {
    pub fn parse(spec: &str) -> Result<Schedule, String> {
        let spec = spec.trim();
        let expanded = match spec {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            s if s.starts_with('@') => return Err(format!("unrecognized descriptor: {s}")),
            s => s,
        };
        let f: Vec<&str> = expanded.split_whitespace().collect();
        if f.len() != 5 {
            return Err(format!(
                "expected exactly 5 fields, found {}: [{}]",
                f.len(),
                f.join(" ")
            ));
        }
        let (minutes, _) = field(f[0], 0, 59, &[], 0)?;
        let (hours, _) = field(f[1], 0, 23, &[], 0)?;
        let (days, dom_star) = field(f[2], 1, 31, &[], 0)?;
        let (months, _) = field(f[3], 1, 12, &MONTHS, 1)?;
        let (mut weekdays, dow_star) = field(f[4], 0, 7, &DAYS, 0)?;
        if weekdays & (1 << 7) != 0 {
            weekdays |= 1;
        }
        Ok(Schedule {
            minutes,
            hours,
            days,
            months,
            weekdays,
            day_star: dom_star || dow_star,
        })
    }

    fn day_matches(&self, d: Date) -> bool {
        let dom = self.days & (1 << d.day()) != 0;
        let dow = self.weekdays & (1 << d.weekday().to_sunday_zero_offset()) != 0;
        self.months & (1 << d.month()) != 0
            && if self.day_star {
                dom && dow
            } else {
                dom || dow
            }
    }

    /// The first activation strictly after `after`, in `tz` (within five years).
    pub fn next_after(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let start = tz.to_datetime(after);
        let mut day = start.date();
        for _ in 0..(366 * 5) {
            if self.day_matches(day) {
                for h in (0..24).filter(|h| self.hours & (1 << h) != 0) {
                    for m in (0..60).filter(|m| self.minutes & (1 << m) != 0) {
                        let dt =
                            DateTime::from_parts(day, jiff::civil::time(h as i8, m as i8, 0, 0));
                        if let Ok(z) = tz.to_ambiguous_zoned(dt).compatible() {
                            if z.timestamp() > after {
                                return Some(z.timestamp());
                            }
                        }
                    }
                }
            }
            day = day.checked_add(1.day()).ok()?;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_steps() {
        let utc = TimeZone::UTC;
        let t: Timestamp = "2024-01-01T10:07:30Z".parse().unwrap_or_default();
        let every = Schedule::parse("*/1 * * * *").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            every.next_after(t, &utc).map(|t| t.to_string()),
            Some("2024-01-01T10:08:00Z".into())
        );
        let hourly = Schedule::parse("@hourly").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            hourly.next_after(t, &utc).map(|t| t.to_string()),
            Some("2024-01-01T11:00:00Z".into())
        );
        let weekday = Schedule::parse("30 9 * * mon-fri").unwrap_or_else(|e| panic!("{e}"));
        // 2024-01-06 is a Saturday: next is Monday the 8th.
        let sat: Timestamp = "2024-01-06T12:00:00Z".parse().unwrap_or_default();
        assert_eq!(
            weekday.next_after(sat, &utc).map(|t| t.to_string()),
            Some("2024-01-08T09:30:00Z".into())
        );
        assert!(Schedule::parse("61 * * * *").is_err());
        assert!(Schedule::parse("* * *").is_err());
        let tokyo = TimeZone::get("Asia/Tokyo").unwrap_or(TimeZone::UTC);
        let daily = Schedule::parse("0 0 * * *").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            daily.next_after(t, &tokyo).map(|t| t.to_string()),
            Some("2024-01-01T15:00:00Z".into())
        );
    }
}
