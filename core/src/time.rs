//! Points in time as milliseconds since the Unix epoch (UTC), with the calendar questions the rules
//! ask: which month, which day, which weekday, which minute of the day.

use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(
    Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize,
)]
pub struct Timestamp(pub i64);

pub const MILLIS_PER_SECOND: i64 = 1_000;
pub const MILLIS_PER_DAY: i64 = 86_400_000;

/// Room for `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub const RFC3339_TEXT_BYTES: usize = 24;

impl Timestamp {
    pub fn from_millis(millis: i64) -> Timestamp {
        Timestamp(millis)
    }
    pub fn millis(self) -> i64 {
        self.0
    }

    /// Parses an RFC 3339 time with any offset; the result is UTC.
    pub fn parse_rfc3339(text: &str) -> Option<Timestamp> {
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| Timestamp(t.timestamp_millis()))
    }

    /// RFC 3339 in UTC with a `Z`, with milliseconds only when there are some.
    pub fn to_rfc3339(self) -> String {
        self.datetime().to_rfc3339_opts(SecondsFormat::AutoSi, true)
    }

    /// [`Timestamp::to_rfc3339`] written into `buffer` without an allocation, for answers that
    /// show several times each. Years outside 0 to 9999 (which chrono writes with a sign) take
    /// the allocating form; a test compares the two.
    pub fn rfc3339_text(self, buffer: &mut [u8; RFC3339_TEXT_BYTES]) -> Option<&str> {
        let t = self.datetime();
        let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
        let millis = t.timestamp_subsec_millis();
        let mut at = 0;
        let mut put = |value: u32, width: u32, buffer: &mut [u8; RFC3339_TEXT_BYTES]| {
            let mut divisor = 10u32.pow(width - 1);
            for _ in 0..width {
                if let Some(byte) = buffer.get_mut(at) {
                    // A digit: value / divisor % 10 is below 10.
                    *byte = b'0' + (value / divisor % 10) as u8;
                }
                at += 1;
                divisor /= 10;
            }
        };
        put(year, 4, buffer);
        put(t.month(), 3, buffer);
        put(t.day(), 3, buffer);
        put(t.hour(), 3, buffer);
        put(t.minute(), 3, buffer);
        put(t.second(), 3, buffer);
        if millis > 0 {
            put(millis, 4, buffer);
        }
        // The separators over the leading digit each field above wrote as its zero.
        for (index, separator) in [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')] {
            *buffer.get_mut(index)? = separator;
        }
        if millis > 0 {
            *buffer.get_mut(19)? = b'.';
        }
        *buffer.get_mut(at)? = b'Z';
        std::str::from_utf8(buffer.get(..at + 1)?).ok()
    }

    fn datetime(self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.0).unwrap_or_default()
    }

    pub fn plus_seconds(self, seconds: i64) -> Timestamp {
        Timestamp(
            self.0
                .saturating_add(seconds.saturating_mul(MILLIS_PER_SECOND)),
        )
    }
    pub fn plus_days(self, days: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(days.saturating_mul(MILLIS_PER_DAY)))
    }

    /// The calendar month as `year * 12 + month0`: equal for two times in the same UTC month.
    pub fn month_key(self) -> u32 {
        let t = self.datetime();
        (t.year() as u32) * 12 + t.month0()
    }

    /// The calendar day (UTC) as days since the epoch.
    pub fn day_key(self) -> i64 {
        self.0.div_euclid(MILLIS_PER_DAY)
    }

    /// ISO weekday: 1 = Monday ... 7 = Sunday.
    pub fn iso_weekday(self) -> u8 {
        self.datetime().weekday().number_from_monday() as u8
    }

    /// Minutes since midnight UTC.
    pub fn minute_of_day(self) -> u16 {
        let t = self.datetime();
        (t.hour() * 60 + t.minute()) as u16
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_questions() {
        let t = Timestamp::parse_rfc3339("2026-11-22T10:30:00+01:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-22T09:30:00Z");
        assert_eq!(t.iso_weekday(), 7);
        assert_eq!(t.minute_of_day(), 9 * 60 + 30);
        let next_month = Timestamp::parse_rfc3339("2026-12-01T00:00:00Z").unwrap();
        assert_eq!(next_month.month_key(), t.month_key() + 1);
        assert_eq!(t.plus_days(1).day_key(), t.day_key() + 1);
        assert_eq!(Timestamp(1500).to_rfc3339(), "1970-01-01T00:00:01.500Z");
        assert!(Timestamp::parse_rfc3339("yesterday").is_none());
    }

    fn both_forms(t: Timestamp) {
        let mut buffer = [0u8; RFC3339_TEXT_BYTES];
        match t.rfc3339_text(&mut buffer) {
            Some(text) => assert_eq!(text, t.to_rfc3339(), "{t:?}"),
            None => assert!(t.to_rfc3339().starts_with(['+', '-']), "{t:?}"),
        }
    }

    #[test]
    fn the_stack_form_writes_what_chrono_writes() {
        for millis in [
            0,
            1,
            999,
            1_000,
            1_500,
            -1,
            -62_167_219_200_000,
            -62_167_219_200_001,
            253_402_300_799_999,
            253_402_300_800_000,
            i64::MAX,
            i64::MIN,
        ] {
            both_forms(Timestamp(millis));
        }
    }

    proptest::proptest! {
        #[test]
        fn the_stack_form_writes_what_chrono_writes_anywhere(millis in -70_000_000_000_000i64..260_000_000_000_000) {
            both_forms(Timestamp(millis));
        }
    }
}
