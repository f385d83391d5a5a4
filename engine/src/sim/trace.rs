use crate::{Error, Result};

/// A request-rate (or arrival) series with a fixed step, replayed in a loop.
#[derive(Clone, Debug)]
pub struct Trace {
    pub name: String,
    pub step_secs: f64,
    pub values: Vec<f64>,
}

impl Trace {
    /// Reads the second column of a `timestamp,value` CSV with a header row.
    pub fn from_csv(name: &str, text: &str, step_secs: f64) -> Result<Self> {
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let mut values = Vec::new();
        for (i, record) in reader.records().enumerate() {
            let record = record.map_err(|e| Error::invalid(format!("trace {name} row {}", i + 2), e.to_string()))?;
            let value = record
                .get(1)
                .and_then(|v| v.trim().parse::<f64>().ok())
                .ok_or_else(|| Error::invalid(format!("trace {name} row {}", i + 2), "second column must be a number"))?;
            values.push(value);
        }
        if values.is_empty() {
            return Err(Error::invalid(format!("trace {name}"), "has no rows"));
        }
        Ok(Trace { name: name.to_string(), step_secs, values })
    }

    pub fn duration_secs(&self) -> f64 {
        self.values.len() as f64 * self.step_secs
    }

    /// The value at `t` seconds into the trace, linearly interpolated, wrapping at the end.
    pub fn value_at(&self, t: f64) -> f64 {
        let pos = (t.rem_euclid(self.duration_secs())) / self.step_secs;
        let i = pos.floor() as usize % self.values.len();
        let j = (i + 1) % self.values.len();
        let frac = pos - pos.floor();
        self.values[i] * (1.0 - frac) + self.values[j] * frac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_and_wraps() {
        let t = Trace::from_csv("t", "ts,v\na,10\nb,20\n", 60.0).unwrap();
        assert_eq!(t.value_at(0.0), 10.0);
        assert_eq!(t.value_at(30.0), 15.0);
        assert_eq!(t.value_at(60.0), 20.0);
        assert_eq!(t.value_at(90.0), 15.0, "wraps back towards the first value");
        assert_eq!(t.value_at(120.0), 10.0);
    }

    #[test]
    fn bad_rows_are_named() {
        let err = Trace::from_csv("t", "ts,v\na,10\nb,x\n", 60.0).unwrap_err().to_string();
        assert!(err.contains("row 3"), "{err}");
    }

    #[test]
    fn shipped_traces_load() {
        for name in ["nasa-http-1995", "mongo-01-2018"] {
            let t = crate::sim::builtin_trace(name).unwrap();
            assert_eq!(t.values.len(), 4320, "{name}: three days of minutes");
        }
    }
}
