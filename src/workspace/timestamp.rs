//! Modification times with nanoseconds: they travel with every entry, both ways, so that
//! make, ninja and anything else that compares times sees on either side exactly the picture
//! it would see on the other.

/// Seconds and nanoseconds since the Unix epoch (negative seconds before it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    pub secs: i64,
    /// Always below 1,000,000,000.
    pub nanos: u32,
}

impl Timestamp {
    /// The time now.
    pub fn now() -> Self {
        Self::from_system(std::time::SystemTime::now()).unwrap_or_default()
    }

    /// `time`, when it is after the epoch.
    pub fn from_system(time: std::time::SystemTime) -> Option<Self> {
        let since = time.duration_since(std::time::UNIX_EPOCH).ok()?;
        Some(Self { secs: i64::try_from(since.as_secs()).unwrap_or(i64::MAX), nanos: since.subsec_nanos() })
    }

    /// Nanoseconds since the epoch.
    pub fn as_nanos(self) -> i128 {
        i128::from(self.secs) * 1_000_000_000 + i128::from(self.nanos)
    }

    /// From `stat`'s fields; out-of-range nanoseconds are clamped.
    pub fn new(secs: i64, nanos: i64) -> Self {
        Self { secs, nanos: u32::try_from(nanos.clamp(0, 999_999_999)).unwrap_or(0) }
    }

    /// As PAX writes it: `secs.nnnnnnnnn`.
    pub fn to_pax(self) -> String {
        if self.secs < 0 && self.nanos > 0 {
            // PAX times are decimal fractions of the epoch: -1.5 is secs -2, nanos 5e8.
            let whole = self.secs + 1;
            let frac = 1_000_000_000 - self.nanos;
            return format!("-{}.{frac:09}", whole.unsigned_abs());
        }
        format!("{}.{:09}", self.secs, self.nanos)
    }

    /// Reads a PAX time (`secs[.fraction]`, possibly negative).
    pub fn from_pax(text: &str) -> Option<Self> {
        let (negative, text) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
        let whole: i64 = whole.parse().ok()?;
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut digits: String = frac.chars().take(9).collect();
        while digits.len() < 9 {
            digits.push('0');
        }
        let nanos: u32 = digits.parse().ok()?;
        if !negative {
            return Some(Self { secs: whole, nanos });
        }
        if nanos == 0 {
            return Some(Self { secs: -whole, nanos: 0 });
        }
        Some(Self { secs: -whole - 1, nanos: 1_000_000_000 - nanos })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_round_trips() {
        for time in [
            Timestamp { secs: 0, nanos: 0 },
            Timestamp { secs: 1_700_000_000, nanos: 123_456_789 },
            Timestamp { secs: -2, nanos: 500_000_000 },
            Timestamp { secs: -3, nanos: 0 },
        ] {
            assert_eq!(Timestamp::from_pax(&time.to_pax()), Some(time), "{}", time.to_pax());
        }
        assert_eq!(Timestamp::from_pax("12.5"), Some(Timestamp { secs: 12, nanos: 500_000_000 }));
        assert_eq!(Timestamp::from_pax("x"), None);
    }
}
