//! CI traces: parsing the CSV format (`arrival_s,duration_s[,labels][,project]`), the few
//! statistics the simulator needs (span, concurrency at arrival), and writing traces back.
//! Pure: text in, data out; reading files is the caller's job.

use std::fmt::Write as _;
use thiserror::Error;

/// One job of a trace, in milliseconds since the trace's first job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceJob {
    pub arrival_ms: u64,
    pub duration_ms: u64,
}

/// A parsed trace: jobs sorted by arrival.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    pub name: String,
    pub jobs: Vec<TraceJob>,
}

/// What is wrong with a trace, naming the line.
#[derive(Debug, Error, PartialEq)]
pub enum TraceError {
    #[error("trace {name}: empty (expected a header `arrival_s,duration_s[,labels][,project]` and at least one row)")]
    Empty { name: String },
    #[error("trace {name}, line 1: header must start with `arrival_s,duration_s`, found {found:?}")]
    Header { name: String, found: String },
    #[error("trace {name}, line {line}: {message}")]
    Row { name: String, line: usize, message: String },
    #[error("trace {name}: header but no job rows")]
    NoJobs { name: String },
}

/// Seconds (a non-negative finite decimal) to milliseconds.
fn seconds_to_ms(field: &[u8]) -> Result<u64, String> {
    // Whole seconds below 10^12 (what exports write) are exact as f64 and times 1000 stay
    // below 2^53: the same milliseconds as the general path, without parsing a float.
    // (Digits left by trimming ASCII whitespace are what trimming any whitespace leaves.)
    let digits = field.trim_ascii();
    if (1..=12).contains(&digits.len()) && digits.iter().all(u8::is_ascii_digit) {
        return Ok(digits.iter().fold(0u64, |n, b| n * 10 + u64::from(b - b'0')) * 1000);
    }
    let field = text(field).trim();
    let value: f64 = field.parse().map_err(|_| format!("{field:?} is not a number of seconds"))?;
    if !value.is_finite() || value < 0.0 {
        return Err(format!("{value} is not a non-negative finite number of seconds"));
    }
    if value > 1.0e12 {
        return Err(format!("{value} seconds is beyond any plausible trace"));
    }
    Ok((value * 1000.0).round() as u64)
}

/// Field `i` of a record as text, trimmed of (Unicode) whitespace. The text was a `&str`
/// and the CSV parser splits and unquotes only at ASCII bytes, so every field is UTF-8.
fn field(record: &csv::ByteRecord, i: usize) -> Option<&str> {
    record.get(i).map(|bytes| text(bytes).trim())
}

fn text(field: &[u8]) -> &str {
    std::str::from_utf8(field).expect("fields of a &str split at ASCII bytes")
}

/// Every field of a record, trimmed, joined by commas (for error messages).
fn joined(record: &csv::ByteRecord) -> String {
    (0..record.len()).filter_map(|i| field(record, i)).collect::<Vec<_>>().join(",")
}

impl Trace {
    /// Parses a CSV trace (RFC 4180 through the `csv` crate, so a quoted labels field may
    /// hold commas). Blank lines and lines starting with `#` are skipped; rows out of arrival
    /// order are sorted (stable), so any history export replays as given. Fields are
    /// trimmed of whitespace. One record buffer is reused for every row.
    pub fn parse(name: &str, text: &str) -> Result<Trace, TraceError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .comment(Some(b'#'))
            .from_reader(text.as_bytes());
        let mut record = csv::ByteRecord::new();
        match reader.read_byte_record(&mut record) {
            Ok(false) => return Err(TraceError::Empty { name: name.into() }),
            Err(e) => return Err(TraceError::Header { name: name.into(), found: e.to_string() }),
            Ok(true) => {}
        }
        let column = |i: usize| field(&record, i).map(|c| c.trim_start_matches('\u{feff}'));
        if column(0) != Some("arrival_s") || column(1) != Some("duration_s") {
            let found: String = joined(&record).chars().take(80).collect();
            return Err(TraceError::Header { name: name.into(), found });
        }
        let mut jobs = Vec::with_capacity(text.len() / 24);
        let mut sorted = true;
        loop {
            match reader.read_byte_record(&mut record) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    let line = e.position().map_or(0, |p| p.line() as usize);
                    return Err(TraceError::Row { name: name.into(), line, message: format!("not CSV: {e}") });
                }
            }
            let line = record.position().map_or(0, |p| p.line() as usize);
            let row_error = |message: String| TraceError::Row { name: name.into(), line, message };
            let (Some(arrival), Some(duration)) = (record.get(0), record.get(1)) else {
                let found = joined(&record);
                return Err(row_error(format!("expected at least 2 fields (arrival_s,duration_s), found {found:?}")));
            };
            let arrival_ms = seconds_to_ms(arrival).map_err(|e| row_error(format!("arrival_s: {e}")))?;
            let duration_ms = seconds_to_ms(duration).map_err(|e| row_error(format!("duration_s: {e}")))?;
            if let Some(last) = jobs.last() {
                let last: &TraceJob = last;
                sorted &= last.arrival_ms <= arrival_ms;
            }
            jobs.push(TraceJob { arrival_ms, duration_ms });
        }
        if jobs.is_empty() {
            return Err(TraceError::NoJobs { name: name.into() });
        }
        if !sorted {
            jobs.sort_by_key(|j| j.arrival_ms);
        }
        Ok(Trace { name: name.into(), jobs })
    }

    /// From the first arrival to the last job's end (no queueing), in milliseconds.
    pub fn span_ms(&self) -> u64 {
        let first = self.jobs.first().map_or(0, |j| j.arrival_ms);
        let last_end = self.jobs.iter().map(|j| j.arrival_ms + j.duration_ms).max().unwrap_or(0);
        last_end.saturating_sub(first)
    }

    /// Sum of job run times, in milliseconds.
    pub fn work_ms(&self) -> u64 {
        self.jobs.iter().map(|j| j.duration_ms).sum()
    }

    /// The jobs running at each job's arrival (itself included) if every job started at once;
    /// the `quantile` (0..=1) over jobs. The static fleet is sized from its 0.95 quantile.
    pub fn concurrency_at_arrival_quantile(&self, quantile: f64) -> u32 {
        let mut ends: std::collections::BinaryHeap<std::cmp::Reverse<u64>> = Default::default();
        let mut seen: Vec<u32> = Vec::with_capacity(self.jobs.len());
        for job in &self.jobs {
            while ends.peek().is_some_and(|e| e.0 <= job.arrival_ms) {
                ends.pop();
            }
            ends.push(std::cmp::Reverse(job.arrival_ms + job.duration_ms));
            seen.push(ends.len() as u32);
        }
        percentile_u32(&mut seen, quantile)
    }

    /// Writes the trace in the canonical CSV form (whole seconds), with `labels` and `project`.
    pub fn to_csv(&self, labels: &str, project: &str) -> String {
        let mut out = String::with_capacity(self.jobs.len() * 28 + 40);
        out.push_str("arrival_s,duration_s,labels,project\n");
        for job in &self.jobs {
            let _ = writeln!(out, "{},{},{labels},{project}", job.arrival_ms / 1000, job.duration_ms / 1000);
        }
        out
    }
}

/// Nearest-rank quantile of `values` (reordered in place); 0 for none.
pub fn percentile_u32(values: &mut [u32], quantile: f64) -> u32 {
    if values.is_empty() {
        return 0;
    }
    let rank = ((quantile * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1;
    *values.select_nth_unstable(rank).1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quoted_labels_field_may_hold_commas() {
        let t = Trace::parse("t", "arrival_s,duration_s,labels\n0,10,\"os=linux,arch=arm64\"\n5,1\n").unwrap();
        assert_eq!(t.jobs.len(), 2);
        assert_eq!(t.jobs[1], TraceJob { arrival_ms: 5000, duration_ms: 1000 });
    }

    #[test]
    fn parses_rows_with_and_without_labels() {
        let t = Trace::parse("t", "arrival_s,duration_s,labels,project\n0,110,linux,a\n1.5,20\n\n# note\n3,4,x;y,p\n")
            .unwrap();
        let arrivals: Vec<u64> = t.jobs.iter().map(|j| j.arrival_ms).collect();
        assert_eq!(arrivals, vec![0, 1500, 3000]);
        assert_eq!(t.jobs[0].duration_ms, 110_000);
    }

    #[test]
    fn bad_number_names_line_and_field() {
        let err = Trace::parse("t", "arrival_s,duration_s\n0,10\n5,ten\n").unwrap_err();
        assert_eq!(err.to_string(), "trace t, line 3: duration_s: \"ten\" is not a number of seconds");
    }

    #[test]
    fn negative_arrival_and_missing_field_are_errors() {
        let err = Trace::parse("t", "arrival_s,duration_s\n-1,10\n").unwrap_err();
        assert!(matches!(err, TraceError::Row { line: 2, .. }), "{err}");
        let err = Trace::parse("t", "arrival_s,duration_s\n0,10\n7\n").unwrap_err();
        assert!(err.to_string().contains("line 3") && err.to_string().contains("at least 2 fields"), "{err}");
    }

    #[test]
    fn header_is_required() {
        let err = Trace::parse("t", "0,10\n").unwrap_err();
        assert!(matches!(err, TraceError::Header { .. }), "{err}");
        assert!(matches!(Trace::parse("t", "").unwrap_err(), TraceError::Empty { .. }));
        assert!(matches!(Trace::parse("t", "arrival_s,duration_s\n").unwrap_err(), TraceError::NoJobs { .. }));
    }

    #[test]
    fn unsorted_rows_are_sorted() {
        let t = Trace::parse("t", "arrival_s,duration_s\n10,1\n0,2\n").unwrap();
        assert_eq!(t.jobs[0], TraceJob { arrival_ms: 0, duration_ms: 2000 });
    }

    #[test]
    fn concurrency_quantile_counts_overlap() {
        let t = Trace::parse("t", "arrival_s,duration_s\n0,100\n0,100\n0,100\n500,10\n").unwrap();
        assert_eq!(t.concurrency_at_arrival_quantile(1.0), 3);
        assert_eq!(t.concurrency_at_arrival_quantile(0.25), 1);
        assert_eq!(t.span_ms(), 510_000);
    }

    /// The parser as it was before it reused one record buffer (the csv crate's trimming
    /// `StringRecord` iterator): what the fast one must match on any text.
    fn parse_reference(name: &str, text: &str) -> Result<Trace, TraceError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .comment(Some(b'#'))
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let mut records = reader.records();
        let header = match records.next() {
            None => return Err(TraceError::Empty { name: name.into() }),
            Some(Err(e)) => return Err(TraceError::Header { name: name.into(), found: e.to_string() }),
            Some(Ok(header)) => header,
        };
        let column = |i: usize| header.get(i).map(|c| c.trim_start_matches('\u{feff}'));
        if column(0) != Some("arrival_s") || column(1) != Some("duration_s") {
            let found: String = header.iter().collect::<Vec<_>>().join(",").chars().take(80).collect();
            return Err(TraceError::Header { name: name.into(), found });
        }
        let mut jobs = Vec::new();
        for record in records {
            let record = record.map_err(|e| {
                let line = e.position().map_or(0, |p| p.line() as usize);
                TraceError::Row { name: name.into(), line, message: format!("not CSV: {e}") }
            })?;
            let line = record.position().map_or(0, |p| p.line() as usize);
            let row_error = |message: String| TraceError::Row { name: name.into(), line, message };
            let (Some(arrival), Some(duration)) = (record.get(0), record.get(1)) else {
                let found = record.iter().collect::<Vec<_>>().join(",");
                return Err(row_error(format!("expected at least 2 fields (arrival_s,duration_s), found {found:?}")));
            };
            let seconds = |field: &str| -> Result<u64, String> {
                let value: f64 =
                    field.trim().parse().map_err(|_| format!("{:?} is not a number of seconds", field.trim()))?;
                if !value.is_finite() || value < 0.0 {
                    return Err(format!("{value} is not a non-negative finite number of seconds"));
                }
                if value > 1.0e12 {
                    return Err(format!("{value} seconds is beyond any plausible trace"));
                }
                Ok((value * 1000.0).round() as u64)
            };
            let arrival_ms = seconds(arrival).map_err(|e| row_error(format!("arrival_s: {e}")))?;
            let duration_ms = seconds(duration).map_err(|e| row_error(format!("duration_s: {e}")))?;
            jobs.push(TraceJob { arrival_ms, duration_ms });
        }
        if jobs.is_empty() {
            return Err(TraceError::NoJobs { name: name.into() });
        }
        jobs.sort_by_key(|j| j.arrival_ms);
        Ok(Trace { name: name.into(), jobs })
    }

    #[test]
    fn a_byte_order_mark_and_whitespace_around_fields_are_ignored() {
        let t = Trace::parse("t", "\u{feff} arrival_s ,\u{a0}duration_s\t\n 1.5 ,\u{2003}2\u{3000}, x \r\n").unwrap();
        assert_eq!(t.jobs, vec![TraceJob { arrival_ms: 1500, duration_ms: 2000 }]);
    }

    #[test]
    fn whole_seconds_give_the_milliseconds_their_decimal_form_gives() {
        for (whole, ms) in [("0", 0), ("007", 7000), ("42", 42_000), ("999999999999", 999_999_999_999_000)] {
            assert_eq!(seconds_to_ms(whole.as_bytes()), Ok(ms), "{whole}");
            assert_eq!(seconds_to_ms(format!(" {whole}.0\u{a0}").as_bytes()), Ok(ms), "{whole}.0");
        }
        assert!(seconds_to_ms(b"1000000000001").unwrap_err().contains("beyond"), "13 digits take the checked path");
        assert!(seconds_to_ms(b"").unwrap_err().contains("not a number"));
        assert!(seconds_to_ms(b"+-1").unwrap_err().contains("not a number"));
        assert_eq!(seconds_to_ms(b"\x0b12").unwrap(), 12_000, "a vertical tab is whitespace too");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        /// On any text made of the pieces a trace (or a broken one) holds, the parser gives
        /// exactly what the csv crate's trimming record iterator gave: the same jobs, or the
        /// same error on the same line.
        #[test]
        fn parsing_matches_the_string_record_reference_on_any_text(
            pieces in proptest::collection::vec(
                proptest::sample::select(vec![
                    "arrival_s,duration_s", "arrival_s", ",", "\n", "\r\n", "\r", "\"", "#", " ", "\t", "\u{b}",
                    "\u{feff}", "\u{a0}", "\u{2003}", "0", "1", "7", "12", "3.5", ".", "-", "e", "9e12", "inf",
                    "NaN", "x", "os=linux", "é", "+", "0000000000000",
                ]),
                0..40,
            ),
            header in proptest::bool::ANY,
        ) {
            let mut text = if header { "arrival_s,duration_s\n".to_string() } else { String::new() };
            text.extend(pieces);
            proptest::prop_assert_eq!(Trace::parse("p", &text), parse_reference("p", &text), "{:?}", text);
        }
    }
}
