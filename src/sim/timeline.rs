//! The timeline the plots draw: over a window of a run, per time bucket, the time-weighted
//! mean and the maximum of pending jobs, desired and in-service instances. The engine reports
//! each change of state; this turns the step function into buckets (pure bookkeeping).

use super::engine::{Millis, SECOND};

/// Buckets a window is cut into (the plot's horizontal resolution).
pub const BUCKETS: u64 = 1500;

/// The part of a run a timeline covers, in virtual milliseconds `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: Millis,
    pub to: Millis,
}

/// A `--window` that cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WindowError {
    #[error("--window {0:?}: expected LENGTH@START, e.g. 7d@30d (30 days after the trace's first job) or 7d@2024-03-04 (with --trace-start)")]
    Shape(String),
    #[error("--window {text:?}: {what} {value:?} is not a duration such as 7d or 36h")]
    Duration { text: String, what: &'static str, value: String },
    #[error("--window {0:?}: a date needs --trace-start DATE (the date of the trace's first job); or give START as a duration after it")]
    DateWithoutStart(String),
    #[error("--window {0:?}: starts before the trace's first job")]
    BeforeTrace(String),
    #[error("--window {0:?}: its length must be more than zero")]
    Empty(String),
}

/// A UTC date (`2024-03-04`, midnight) or an RFC 3339 time; None when it is neither.
pub fn parse_utc(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .or_else(|| chrono::DateTime::parse_from_rfc3339(text).ok().map(|t| t.to_utc()))
}

impl Window {
    /// Reads `LENGTH@START`: START is a duration after the trace's first job (`30d`) or a UTC
    /// date or RFC 3339 time (`2024-03-04`), which needs `trace_start`, the first job's time.
    pub fn parse(text: &str, trace_start: Option<chrono::DateTime<chrono::Utc>>) -> Result<Window, WindowError> {
        let (length, start) = text.split_once('@').ok_or_else(|| WindowError::Shape(text.into()))?;
        let duration = |what: &'static str, value: &str| {
            humantime::parse_duration(value.trim()).map_err(|_| WindowError::Duration {
                text: text.into(),
                what,
                value: value.into(),
            })
        };
        let length = duration("length", length)?;
        if length.is_zero() {
            return Err(WindowError::Empty(text.into()));
        }
        let start = start.trim();
        let from = match parse_utc(start) {
            Some(at) => {
                let first = trace_start.ok_or_else(|| WindowError::DateWithoutStart(text.into()))?;
                let after = (at - first).num_milliseconds();
                u64::try_from(after).map_err(|_| WindowError::BeforeTrace(text.into()))?
            }
            None => duration("start", start)?.as_millis() as Millis,
        };
        Ok(Window { from, to: from + length.as_millis() as Millis })
    }
}

/// One bucket of the timeline.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    /// The bucket's start, seconds since the trace's first job.
    pub at_s: f64,
    /// Maxima within the bucket.
    pub pending: u32,
    pub desired: u32,
    pub in_service: u32,
    /// Time-weighted means over the bucket.
    pub mean_pending: f32,
    pub mean_desired: f32,
    pub mean_in_service: f32,
}

/// The counts one state holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct State {
    pub pending: u32,
    pub desired: u32,
    pub in_service: u32,
}

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    sums: [f64; 3],
    max: [u32; 3],
}

/// Accumulates a step function of [`State`] into the window's buckets.
#[derive(Debug, Clone)]
pub struct Timeline {
    window: Window,
    bucket_ms: Millis,
    buckets: Vec<Bucket>,
    /// The state since `since` (it holds until the next change).
    held: State,
    since: Millis,
    /// The whole run: buckets are added past `window.to` as the run goes on, and the
    /// timeline ends where the run ends.
    growing: bool,
}

impl Timeline {
    /// A timeline over `window` (state zero before the first change).
    pub fn new(window: Window) -> Self {
        let span = window.to.saturating_sub(window.from).max(SECOND);
        let bucket_ms = span.div_ceil(BUCKETS).max(SECOND);
        let count = span.div_ceil(bucket_ms) as usize;
        Timeline {
            window,
            bucket_ms,
            buckets: vec![Bucket::default(); count],
            held: State::default(),
            since: 0,
            growing: false,
        }
    }

    /// A timeline of the whole run: buckets of `expected_span / BUCKETS` from time 0, added
    /// for as long as the run lasts; it ends at the run's end.
    pub fn whole_run(expected_span: Millis) -> Self {
        let mut timeline = Timeline::new(Window { from: 0, to: expected_span });
        timeline.growing = true;
        timeline
    }

    /// The state changed to `state` at `now` (times never go back).
    pub fn change(&mut self, now: Millis, state: State) {
        if state == self.held {
            return;
        }
        self.hold_until(now);
        self.held = state;
        self.touch(now);
    }

    /// Ends the run at `end`: the last state holds until then.
    pub fn finish(mut self, end: Millis) -> Vec<Sample> {
        self.hold_until(end);
        if self.growing {
            let count = (end.saturating_sub(self.window.from) / self.bucket_ms + 1) as usize;
            self.buckets.truncate(count);
            self.window.to = self.window.from + self.buckets.len() as Millis * self.bucket_ms;
        }
        let (window, bucket_ms) = (self.window, self.bucket_ms);
        self.buckets
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let start = window.from + i as Millis * bucket_ms;
                let len = (bucket_ms.min(window.to.saturating_sub(start))).max(1) as f64;
                let mean = |k: usize| (b.sums[k] / len) as f32;
                Sample {
                    at_s: start as f64 / 1000.0,
                    pending: b.max[0],
                    desired: b.max[1],
                    in_service: b.max[2],
                    mean_pending: mean(0),
                    mean_desired: mean(1),
                    mean_in_service: mean(2),
                }
            })
            .collect()
    }

    fn index(&mut self, t: Millis) -> Option<usize> {
        if self.growing && t >= self.window.to {
            let count = ((t - self.window.from) / self.bucket_ms + 1) as usize;
            self.buckets.resize(count, Bucket::default());
            self.window.to = self.window.from + count as Millis * self.bucket_ms;
        }
        (self.window.from <= t && t < self.window.to).then(|| ((t - self.window.from) / self.bucket_ms) as usize)
    }

    /// Counts the held state in the bucket holding `t` (for the maxima).
    fn touch(&mut self, t: Millis) {
        let Some(i) = self.index(t) else { return };
        let values = [self.held.pending, self.held.desired, self.held.in_service];
        let bucket = &mut self.buckets[i];
        for (max, v) in bucket.max.iter_mut().zip(values) {
            *max = (*max).max(v);
        }
    }

    /// Adds the held state over `[since, now)`, clipped to the window, bucket by bucket.
    fn hold_until(&mut self, now: Millis) {
        let from = self.since.max(self.window.from);
        let to = if self.growing { now } else { now.min(self.window.to) };
        self.since = self.since.max(now);
        if from >= to {
            return;
        }
        let values = [self.held.pending as f64, self.held.desired as f64, self.held.in_service as f64];
        let mut t = from;
        while t < to {
            let Some(i) = self.index(t) else { break };
            let bucket_end = self.window.from + (i as Millis + 1) * self.bucket_ms;
            let end = bucket_end.min(to);
            let bucket = &mut self.buckets[i];
            for (k, v) in values.iter().enumerate() {
                bucket.sums[k] += v * (end - t) as f64;
                bucket.max[k] = bucket.max[k].max(values[k] as u32);
            }
            t = end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(pending: u32, desired: u32, in_service: u32) -> State {
        State { pending, desired, in_service }
    }

    #[test]
    fn a_window_is_a_length_at_a_start_given_as_an_offset_or_a_date() {
        let day = 86_400_000;
        assert_eq!(Window::parse("7d@30d", None), Ok(Window { from: 30 * day, to: 37 * day }));
        let first = chrono::DateTime::parse_from_rfc3339("2024-03-01T00:00:00Z").unwrap().to_utc();
        assert_eq!(Window::parse("7d@2024-03-04", Some(first)), Ok(Window { from: 3 * day, to: 10 * day }));
        assert_eq!(
            Window::parse("12h@2024-03-01T06:00:00Z", Some(first)),
            Ok(Window { from: day / 4, to: day / 4 + day / 2 })
        );
        assert!(matches!(Window::parse("7d@2024-03-04", None), Err(WindowError::DateWithoutStart(_))));
        assert!(matches!(Window::parse("7d@2024-02-04", Some(first)), Err(WindowError::BeforeTrace(_))));
        assert!(matches!(Window::parse("7d", None), Err(WindowError::Shape(_))));
        assert!(matches!(Window::parse("week@1d", None), Err(WindowError::Duration { what: "length", .. })));
        assert!(matches!(Window::parse("0s@1d", None), Err(WindowError::Empty(_))));
    }

    #[test]
    fn a_state_held_half_a_bucket_has_half_its_value_as_mean_and_its_value_as_maximum() {
        // 1,500 buckets of 2 s over 3,000 s.
        let mut t = Timeline::new(Window { from: 0, to: 3_000_000 });
        t.change(500, state(4, 2, 0));
        t.change(1_500, state(0, 2, 2));
        let samples = t.finish(3_000_000);
        assert_eq!(samples.len(), 1500);
        let first = samples[0];
        assert_eq!((first.pending, first.desired, first.in_service), (4, 2, 2));
        assert_eq!(first.mean_pending, 2.0, "4 for 1 s of the 2 s bucket");
        assert_eq!(first.mean_desired, 1.5, "2 for 1.5 s");
        assert_eq!(first.mean_in_service, 0.5, "2 for 0.5 s");
        let later = samples[10];
        assert_eq!(later.at_s, 20.0);
        assert_eq!((later.pending, later.desired, later.in_service), (0, 2, 2), "the last state holds");
        assert_eq!(later.mean_in_service, 2.0);
    }

    #[test]
    fn a_window_keeps_only_its_part_of_the_run_at_its_own_resolution() {
        let mut t = Timeline::new(Window { from: 86_400_000, to: 86_400_000 + 1_500_000 });
        t.change(1_000, state(9, 9, 9)); // before the window: only what still holds in it counts
        t.change(86_400_000 + 500_000, state(1, 1, 1));
        t.change(86_400_000 + 2_000_000, state(7, 7, 7)); // after the window: ignored
        let samples = t.finish(90_000_000);
        assert_eq!(samples.len(), 1500, "1 s buckets");
        assert_eq!(samples[0].at_s, 86_400.0);
        assert_eq!(samples[0].pending, 9, "the state from before the window holds at its start");
        assert_eq!(samples[500].pending, 1);
        assert_eq!(samples[1499].pending, 1);
        assert!(samples.iter().all(|s| s.pending != 7));
    }

    #[test]
    fn a_whole_run_timeline_goes_on_past_its_expected_span_and_ends_where_the_run_ends() {
        let mut t = Timeline::whole_run(1_500_000); // 1 s buckets
        t.change(0, state(1, 1, 1));
        t.change(2_000_000, state(0, 0, 0));
        let samples = t.finish(2_500_000);
        assert_eq!(samples.len(), 2500, "up to the run's end, not the expected span");
        assert_eq!(samples[1999].in_service, 1);
        assert_eq!(samples[2000].in_service, 0);
        assert_eq!(samples.last().unwrap().at_s, 2499.0);
    }

    #[test]
    fn a_spike_shorter_than_a_bucket_shows_in_the_maximum_but_hardly_in_the_mean() {
        let mut t = Timeline::new(Window { from: 0, to: 15_000_000 }); // 10 s buckets
        t.change(1_000, state(100, 0, 0));
        t.change(1_100, state(0, 0, 0));
        let samples = t.finish(15_000_000);
        assert_eq!(samples[0].pending, 100);
        assert!((samples[0].mean_pending - 1.0).abs() < 1e-6, "{}", samples[0].mean_pending);
    }
}
