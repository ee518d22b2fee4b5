//! Human durations as pipelines write them: `"100ms"`, `"10s"`, `"1m"`, `"1h"`, `"1m30s"`.

use std::time::Duration;

/// A duration string that could not be read, with the reason.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid duration '{input}': {reason}")]
pub struct DurationError {
    pub input: String,
    pub reason: &'static str,
}

/// Parses a sequence of `<number><unit>` parts; units are `ms`, `s`, `m`, `h`.
pub fn parse(input: &str) -> Result<Duration, DurationError> {
    let fail = |reason| DurationError { input: input.to_owned(), reason };
    let text = input.trim();
    if text.is_empty() {
        return Err(fail("empty"));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if digits == 0 {
            return Err(fail("expected a number such as '10s'"));
        }
        let number: f64 = rest[..digits].parse().map_err(|_| fail("malformed number"))?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(fail("missing unit (ms, s, m or h)")),
            _ => return Err(fail("unknown unit (expected ms, s, m or h)")),
        };
        rest = &rest[unit_len..];
        total += Duration::try_from_secs_f64(number * seconds_per_unit).map_err(|_| fail("out of range"))?;
    }
    Ok(total)
}

/// Formats a duration compactly for humans: `850ms`, `1.20s`, `2m05s`.
pub fn format(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis < 1000 {
        format!("{millis}ms")
    } else if millis < 60_000 {
        format!("{:.2}s", duration.as_secs_f64())
    } else {
        let secs = duration.as_secs();
        format!("{}m{:02}s", secs / 60, secs % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit_and_combinations() {
        assert_eq!(parse("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("0.5s"), Ok(Duration::from_millis(500)));
    }

    #[test]
    fn rejects_malformed_input_with_a_reason() {
        assert_eq!(parse("10").map_err(|e| e.reason), Err("missing unit (ms, s, m or h)"));
        assert_eq!(parse("ten s").map_err(|e| e.reason), Err("expected a number such as '10s'"));
        assert_eq!(parse("5 days").map_err(|e| e.reason), Err("unknown unit (expected ms, s, m or h)"));
        assert!(parse("").is_err());
    }

    #[test]
    fn formats_compactly() {
        assert_eq!(format(Duration::from_millis(850)), "850ms");
        assert_eq!(format(Duration::from_millis(1200)), "1.20s");
        assert_eq!(format(Duration::from_secs(125)), "2m05s");
    }
}
