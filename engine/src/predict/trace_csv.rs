//! A recorded trace from a CSV with a header: a time column (RFC 3339 or unix seconds; or
//! none, then a fixed step) and a value column, onto a [`Series`] whose gaps stay gaps.

use chrono::DateTime;

use super::features::Series;
use crate::{Error, Result};

/// Which columns to read.
#[derive(Clone, Debug, Default)]
pub struct Columns {
    /// The time column's name; `None`: the first column if it parses as time, else no time.
    pub time: Option<String>,
    /// The value column's name; `None`: the first numeric column that is not the time.
    pub value: Option<String>,
    /// Seconds per row when there is no time column, and the slot width of the series
    /// (`None`: the most common gap between rows).
    pub step: Option<i64>,
}

/// RFC 3339, `YYYY-MM-DD HH:MM:SS[.f]` (taken as UTC, NAB's form) or unix seconds.
pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp())
        .ok()
        .or_else(|| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").ok().map(|t| t.and_utc().timestamp()))
        .or_else(|| s.parse::<f64>().ok().filter(|v| *v > 1e8).map(|v| v as i64))
}

/// Reads `text` (named `name` in errors) into a series; errors name the row and column.
/// The most slots a trace may span: ten million (115 days at 1 s, 19 years at 1 min).
pub const MAX_SLOTS: i64 = 10_000_000;

pub fn read(name: &str, text: &str, cols: &Columns) -> Result<Series> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|e| Error::invalid(format!("trace {name}"), format!("header: {e}")))?.clone();
    let find = |want: &str, what: &str| {
        headers.iter().position(|h| h.trim() == want).ok_or_else(|| {
            Error::invalid(format!("--{what}-column"), format!("{want:?} is not a column of {name} (columns: {})", headers.iter().collect::<Vec<_>>().join(", ")))
        })
    };
    let records: Vec<csv::StringRecord> = reader
        .records()
        .enumerate()
        .map(|(i, r)| r.map_err(|e| Error::invalid(format!("trace {name} row {}", i + 2), e.to_string())))
        .collect::<Result<_>>()?;
    let first = records.first().ok_or_else(|| Error::invalid(format!("trace {name}"), "has no rows"))?;
    let time_col = match &cols.time {
        Some(c) => Some(find(c, "time")?),
        None => (first.get(0).and_then(parse_time).is_some()).then_some(0),
    };
    let value_col = match &cols.value {
        Some(c) => find(c, "value")?,
        None => (0..headers.len())
            .find(|i| Some(*i) != time_col && first.get(*i).is_some_and(|v| v.trim().parse::<f64>().is_ok()))
            .ok_or_else(|| Error::invalid("--value-column", format!("no numeric column in {name}; name one")))?,
    };
    let mut samples = Vec::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        let row = format!("trace {name} row {}", i + 2);
        let value: f64 = r.get(value_col).unwrap_or("").trim().parse().map_err(|_| Error::invalid(&row, format!("column {:?} is not a number", &headers[value_col])))?;
        let t = match time_col {
            Some(c) => parse_time(r.get(c).unwrap_or("")).ok_or_else(|| Error::invalid(&row, format!("column {:?} is neither RFC 3339 nor unix seconds", &headers[c])))?,
            None => {
                let step = cols.step.ok_or_else(|| Error::invalid("--step", format!("{name} has no time column: give the seconds per row")))?;
                (i as i64).checked_mul(step).ok_or_else(|| Error::invalid("--step", format!("{step} s per row is too large")))?
            }
        };
        samples.push((t, value));
    }
    let step = cols.step.unwrap_or_else(|| common_gap(&samples));
    if step <= 0 {
        return Err(Error::invalid("--step", format!("{step} is not a positive number of seconds")));
    }
    // One slot per step from the first time to the last: a far-off timestamp must be an
    // error, not gigabytes of empty slots.
    let (first_t, last_t) = samples.iter().fold((i64::MAX, i64::MIN), |(lo, hi), (t, _)| (lo.min(*t), hi.max(*t)));
    let slots = (last_t as i128 - first_t as i128) / step as i128 + 1;
    if slots > MAX_SLOTS as i128 {
        return Err(Error::invalid(
            format!("trace {name}"),
            format!("its times span {slots} slots of {step} s (from {first_t} to {last_t}); at most {MAX_SLOTS}: check the time column, or give a larger --step"),
        ));
    }
    Ok(Series::from_samples(&samples, step))
}

/// The most common gap between consecutive times (at least 1 s).
fn common_gap(samples: &[(i64, f64)]) -> i64 {
    let mut counts = std::collections::BTreeMap::new();
    for w in samples.windows(2) {
        *counts.entry((w[1].0 - w[0].0).max(1)).or_insert(0usize) += 1;
    }
    counts.into_iter().max_by_key(|(gap, n)| (*n, std::cmp::Reverse(*gap))).map_or(60, |(gap, _)| gap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_columns_gaps_and_errors() {
        let csv = "timestamp,requests\n1995-07-01T00:00:00-04:00,42\n1995-07-01T00:01:00-04:00,61\n1995-07-01T00:04:00-04:00,7\n";
        let s = read("nasa", csv, &Columns::default()).unwrap();
        assert_eq!((s.step, s.values.clone()), (60, vec![Some(42.0), Some(61.0), None, None, Some(7.0)]));
        assert_eq!(s.start, 804_571_200);
        let s = read("plain", "v\n1\n2\n3\n", &Columns { step: Some(300), ..Default::default() }).unwrap();
        assert_eq!((s.step, s.len()), (300, 3));
        let nab = read("nab", "timestamp,value\n2014-04-01 00:00:00,20.0\n2014-04-01 00:05:00,21.0\n", &Columns::default()).unwrap();
        assert_eq!((nab.start, nab.step), (1_396_310_400, 300));
        let unix = read("unix", "t,x,y\n1700000000,a,5\n1700000060,b,6\n", &Columns::default()).unwrap();
        assert_eq!(unix.values, vec![Some(5.0), Some(6.0)]);
        let err = read("nasa", csv, &Columns { value: Some("rps".into()), ..Default::default() }).unwrap_err().to_string();
        assert!(err.contains("--value-column") && err.contains("requests"), "{err}");
        let err = read("plain", "v\n1\n", &Columns::default()).unwrap_err().to_string();
        assert!(err.contains("--step"), "{err}");
        let err = read("bad", "timestamp,v\n2016-01-01T00:00:00Z,1\n2016-01-01T01:00:00Z,x\n", &Columns::default()).unwrap_err().to_string();
        assert!(err.contains("row 3"), "{err}");
        // Found by fuzzing: one far-off time made gigabytes of empty slots.
        let err = read("far", "t,v\n1700000000,1\n1700000060,2\n99999999999,3\n", &Columns::default()).unwrap_err().to_string();
        assert!(err.contains("trace far") && err.contains("slots of 60 s"), "{err}");
        let err = read("plain", "v\n1\n2\n3\n", &Columns { step: Some(i64::MAX), ..Default::default() }).unwrap_err().to_string();
        assert!(err.contains("--step"), "{err}");
    }
}
