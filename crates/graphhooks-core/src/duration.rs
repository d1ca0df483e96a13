//! The duration syntax used by flags, the TOML file and API calls: a number with a unit
//! (`ms`, `s`, `m`, `h`, `d`, also combined as `1h30m`), and comma lists of them for
//! `--retry-schedule`.

use std::time::Duration;

use crate::CoreError;

/// Parses one duration such as `250ms`, `10s`, `1h30m` or `2d`. A bare `0` is zero.
pub fn parse_duration(text: &str) -> Result<Duration, CoreError> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(text).map_err(|error| {
        CoreError::invalid(format!(
            "invalid duration `{text}` ({error}); use a number with a unit, like 500ms, 10s, 5m, 1h or 2d"
        ))
    })
}

/// Parses a comma list of durations (`0s,10s,1m`). The list must not be empty.
pub fn parse_schedule(text: &str) -> Result<Vec<Duration>, CoreError> {
    let items: Vec<Duration> = text
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(parse_duration)
        .collect::<Result<_, _>>()?;
    if items.is_empty() {
        return Err(CoreError::invalid(
            "the retry schedule is empty; give at least one delay, like 0s,10s,1m",
        ));
    }
    Ok(items)
}

/// Formats a duration the way [`parse_duration`] reads it back.
pub fn format_duration(duration: Duration) -> String {
    if duration.is_zero() {
        return "0s".to_owned();
    }
    humantime::format_duration(duration)
        .to_string()
        .replace(' ', "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_combinations_parse() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(
            parse_duration("36h").unwrap(),
            Duration::from_secs(36 * 3600)
        );
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration(" 0s ").unwrap(), Duration::ZERO);
    }

    #[test]
    fn garbage_is_refused_with_a_hint() {
        let error = parse_duration("soon").unwrap_err().to_string();
        assert!(error.contains("`soon`"), "{error}");
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn schedules_are_comma_lists() {
        assert_eq!(
            parse_schedule("0s,1s, 2s").unwrap(),
            vec![
                Duration::ZERO,
                Duration::from_secs(1),
                Duration::from_secs(2)
            ]
        );
        assert!(parse_schedule("").is_err());
        assert!(parse_schedule("1s,x").is_err());
    }

    #[test]
    fn formatting_round_trips() {
        for text in ["0s", "10s", "1m", "1h30m", "250ms"] {
            let parsed = parse_duration(text).unwrap();
            assert_eq!(parse_duration(&format_duration(parsed)).unwrap(), parsed);
        }
    }
}
