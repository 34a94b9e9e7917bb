//! The adaptive idle timeout: a pure function from a pool's recent job arrivals, the boot
//! time and `now` to how long an idle instance should wait before leaving. It owns the
//! arithmetic and the compact history a stateless function keeps in a group tag; it does
//! no I/O and reads no clock.
//!
//! # Why it works (ski rental on the pool's own gaps)
//! An idle instance that stays pays one instance-second per second. One that leaves too
//! early makes the next job pay a cold start: `boot` seconds of a new instance booting
//! (billed, idle) plus `boot` seconds of the job waiting, weighted by `wait_weight`.
//! With the recent gaps between arrival bursts `g_1..g_n`, the expected cost of a timeout
//! `T` per idle period is `sum(min(g_i, T)) + cold * #{g_i > T}`, where
//! `cold = boot * (1 + wait_weight)`. The cost is piecewise linear in `T` and only drops at
//! a gap value, so the best `T` is one of the gaps (or the floor): we try them all. Sparse
//! pools (gaps of hours) get a timeout of 0 (the floor), since waiting never pays; busy pools (gaps
//! of a minute or two) keep instances warm as long as the gaps they actually see. The open
//! gap since the last arrival counts too, so the timeout shortens as soon as a pool goes
//! quiet. A fixed timeout is right for one load only; this one follows the load.
//!
//! # Inputs a stateless Lambda has
//! The function sees the creation time of every pending and running job each tick. It
//! keeps the recent arrival times in the group tag `forge-scaler:arrivals`
//! ([`ArrivalHistory::to_tag`], at most 256 characters as AWS allows), reads it back from
//! the DescribeAutoScalingGroups answer it fetches anyway, adds the jobs created since the
//! tag's own timestamp ([`ArrivalHistory::record`]), and writes both tags in the same tick.
//! A cold start loses nothing; a lost or unreadable tag falls back to `fallback`.

use std::time::Duration;

/// Tuning of the adaptive timeout.
#[derive(Debug, Clone, PartialEq)]
pub struct AdaptiveSettings {
    /// Launch to a working agent.
    pub boot: Duration,
    /// How many instance-seconds one second of job wait is worth.
    pub wait_weight: f64,
    /// Arrivals closer than this are one burst (one tick sees them together).
    pub burst_window: Duration,
    /// The shortest timeout it may choose. Default 30 s, not 0: an instance launched for a
    /// job must stay long enough for its freshly registered agent to be handed that job
    /// (agents poll every few seconds, the watchdog checks every few seconds, and the
    /// simulator hands a job over at once so it cannot show that race); 0 lets an instance
    /// leave as soon as it is idle when the pool's gaps say waiting never pays.
    pub floor: Duration,
    pub ceiling: Duration,
    /// Used while the history holds fewer than `min_gaps` gaps.
    pub fallback: Duration,
    pub min_gaps: usize,
}

/// The adaptive timeout's default floor (see [`AdaptiveSettings::floor`]).
pub const DEFAULT_FLOOR: Duration = Duration::from_secs(30);

impl Default for AdaptiveSettings {
    fn default() -> Self {
        AdaptiveSettings {
            boot: Duration::from_secs(60),
            wait_weight: 3.0,
            burst_window: Duration::from_secs(10),
            floor: DEFAULT_FLOOR,
            ceiling: Duration::from_secs(30 * 60),
            fallback: Duration::from_secs(10 * 60),
            min_gaps: 4,
        }
    }
}

/// The idle timeout for `now`, from recent arrival times (seconds on any epoch shared
/// with `now_s`, sorted ascending) and the instances the pool has (`instances`, at least
/// 1: each of them sees about 1/instances of the arrivals, so its idle gaps are that much
/// longer).
pub fn idle_timeout(arrivals_s: &[u64], instances: u32, now_s: u64, settings: &AdaptiveSettings) -> Duration {
    IdleTimeouts::new(arrivals_s, instances, settings).at(now_s)
}

/// [`idle_timeout`] for one history and instance count at any `now`: the closed gaps are
/// found and sorted once; only the open gap since the last burst depends on `now`. It also
/// says how long its answer holds ([`IdleTimeouts::holds_until`]), so a caller that would
/// only ask again with a later `now` (the simulator between events) need not.
#[derive(Debug, Clone, PartialEq)]
pub struct IdleTimeouts {
    /// Gaps between bursts, times the instances, ascending; None: too little history.
    closed: Option<Vec<f64>>,
    last_burst: u64,
    spread: f64,
    window: u64,
    cold: f64,
    floor: f64,
    ceiling: f64,
    fallback: Duration,
}

impl IdleTimeouts {
    pub fn new(arrivals_s: &[u64], instances: u32, settings: &AdaptiveSettings) -> Self {
        let window = settings.burst_window.as_secs();
        let mut bursts: Vec<u64> = Vec::with_capacity(arrivals_s.len());
        for &t in arrivals_s {
            match bursts.last() {
                Some(&last) if t.saturating_sub(last) <= window => {}
                _ => bursts.push(t),
            }
        }
        let spread = instances.max(1) as f64;
        let closed = (bursts.len() > settings.min_gaps).then(|| {
            // Sorted as whole seconds, then stretched: multiplying by spread >= 1 keeps the order.
            let mut seconds: Vec<u64> = bursts.windows(2).map(|w| w[1] - w[0]).collect();
            seconds.sort_unstable();
            seconds.into_iter().map(|g| g as f64 * spread).collect()
        });
        let floor = settings.floor.as_secs_f64();
        IdleTimeouts {
            closed,
            last_burst: bursts.last().copied().unwrap_or(0),
            spread,
            window,
            cold: settings.boot.as_secs_f64() * (1.0 + settings.wait_weight.max(0.0)),
            floor,
            ceiling: settings.ceiling.as_secs_f64().max(floor),
            fallback: settings.fallback,
        }
    }

    /// The open gap at `now_s`: a quiet pool already waited this long (a lower bound on
    /// its next gap), counted once it is longer than a burst.
    fn open_gap(&self, now_s: u64) -> Option<f64> {
        let open = now_s.saturating_sub(self.last_burst) as f64;
        (open > self.window as f64).then_some(open * self.spread)
    }

    /// The timeout at `now_s`, and the choice it was made from.
    fn choose(&self, now_s: u64) -> (Duration, Option<Choice>) {
        let Some(closed) = &self.closed else {
            return (self.fallback, None);
        };
        // The gaps in ascending order with the open gap among them (after equal ones).
        let open = self.open_gap(now_s);
        let split = open.map_or(closed.len(), |o| closed.partition_point(|&g| g <= o));
        let gaps = || closed[..split].iter().chain(open.as_ref()).chain(&closed[split..]).copied();
        let total = closed.len() + open.is_some() as usize;
        let (cold, floor, ceiling) = (self.cold, self.floor, self.ceiling);
        // cost(T) = sum(min(g, T)) + cold * #{g > T}, evaluated at T = floor and every gap in
        // [floor, ceiling] and at the ceiling, with prefix sums.
        let mut best = (f64::INFINITY, floor);
        // The least cost among the candidates below the open gap (their costs stay as time
        // passes: the open gap is above them).
        let mut best_below_open = f64::INFINITY;
        let mut below_sum = 0.0; // sum of gaps <= T
        let mut below = 0usize; // count of gaps <= T
        let mut ascending = gaps().peekable();
        let candidates = std::iter::once(floor).chain(gaps().filter(|&g| g > floor && g < ceiling)).chain([ceiling]);
        for t in candidates {
            while let Some(&g) = ascending.peek().filter(|&&g| g <= t) {
                below_sum += g;
                below += 1;
                ascending.next();
            }
            let above = (total - below) as f64;
            let cost = below_sum + above * t + cold * above;
            if cost < best.0 {
                best = (cost, t);
            }
            if open.is_some_and(|o| t < o) {
                best_below_open = best_below_open.min(cost);
            }
        }
        let choice = Choice { timeout: best.1, cost: best.0, best_below_open };
        (Duration::from_secs_f64(best.1), Some(choice))
    }

    /// The idle timeout at `now_s` (as [`idle_timeout`]).
    pub fn at(&self, now_s: u64) -> Duration {
        self.choose(now_s).0
    }

    /// [`at`](Self::at) and [`holds_until`](Self::holds_until) from one computation.
    pub fn at_and_until(&self, now_s: u64) -> (Duration, Option<u64>) {
        let (timeout, chosen) = self.choose(now_s);
        (timeout, self.until(now_s, chosen))
    }

    /// The first second after `now_s` at which [`at`](Self::at) may answer something else
    /// (None: never). As time passes only the open gap grows: the cost of a candidate below
    /// it stays, the cost of one above it grows by the open gap's growth (the open gap's own
    /// candidate faster). So a choice below the open gap stands until the open gap passes a
    /// gap, the floor or the ceiling; a choice above it stands until then too, or until its
    /// cost reaches the best cost below the open gap; the open gap's own may change at the
    /// next second.
    pub fn holds_until(&self, now_s: u64) -> Option<u64> {
        self.until(now_s, self.choose(now_s).1)
    }

    fn until(&self, now_s: u64, choice: Option<Choice>) -> Option<u64> {
        let (Some(closed), Some(choice)) = (&self.closed, choice) else {
            return None;
        };
        let Some(open) = self.open_gap(now_s) else {
            // No open gap yet: the answer stands until there is one.
            return Some(self.last_burst + self.window + 1);
        };
        // The open gap reaches `p` at last_burst + p / spread (rounded down: never late).
        let reaches = |p: f64| (self.last_burst + (p / self.spread).floor() as u64).max(now_s + 1);
        let chosen = choice.timeout;
        if chosen == open {
            // The open gap's own candidate: its cost grows faster than any other's.
            return Some(now_s + 1);
        }
        // A point the open gap passes moves between the two groups below; one it sits on
        // may move at the next second.
        let from_open = |p: f64| if chosen > open { p >= open } else { p > open };
        let next_point =
            closed.iter().copied().chain([self.floor, self.ceiling]).filter(|&p| from_open(p)).min_by(f64::total_cmp);
        let mut until = next_point.map(reaches);
        if chosen > open {
            // Every candidate above the open gap (but the open gap's own) costs the open
            // gap's growth more as time passes, so their order stands; those below it cost
            // the same. The choice stands while its cost stays below theirs; a second early
            // absorbs rounding.
            let margin = choice.best_below_open - choice.cost;
            if margin.is_finite() {
                let switch = reaches(open + margin - self.spread);
                until = Some(until.map_or(switch, |u| u.min(switch)));
            }
        }
        until
    }
}

/// What [`IdleTimeouts::choose`] chose, and what [`IdleTimeouts::holds_until`] needs of it.
#[derive(Debug, Clone, Copy)]
struct Choice {
    timeout: f64,
    cost: f64,
    /// The least cost among candidates below the open gap (infinite: none, or no open gap).
    best_below_open: f64,
}

/// Recent arrival times (Unix seconds), bounded to fit one Auto Scaling Group tag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArrivalHistory {
    /// When the history was last updated: jobs created after it are new.
    pub seen_until_s: u64,
    pub arrivals_s: Vec<u64>,
}

/// AWS tag values hold at most 256 characters.
pub const TAG_VALUE_MAX: usize = 256;

/// Appends `n` in base 36 (lower case) without allocating.
fn push_base36(out: &mut Vec<u8>, mut n: u64) {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut digits = [0u8; 13]; // 36^13 > u64::MAX
    let mut first = digits.len();
    loop {
        first -= 1;
        digits[first] = DIGITS[(n % 36) as usize];
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[first..]);
}

fn base36_len(n: u64) -> usize {
    // 36^1 ..= 36^12 (36^13 > u64::MAX): one digit more for each power reached.
    const POWERS: [u64; 12] = {
        let mut powers = [36u64; 12];
        let mut i = 1;
        while i < 12 {
            powers[i] = powers[i - 1] * 36;
            i += 1;
        }
        powers
    };
    1 + POWERS.iter().take_while(|&&p| n >= p).count()
}

impl ArrivalHistory {
    /// Adds the jobs (creation times) created after `seen_until_s` and up to `now_s`, keeps
    /// the most recent `keep` arrivals, and moves `seen_until_s` to `now_s`. Returns how
    /// many arrivals it added.
    pub fn record(&mut self, created_s: impl IntoIterator<Item = u64>, now_s: u64, keep: usize) -> usize {
        let since = self.seen_until_s;
        let mut fresh: Vec<u64> = created_s.into_iter().filter(|&c| c > since && c <= now_s).collect();
        fresh.sort_unstable();
        let added = fresh.len();
        self.arrivals_s.extend(fresh);
        if self.arrivals_s.len() > keep {
            let cut = self.arrivals_s.len() - keep;
            self.arrivals_s.drain(..cut);
        }
        self.seen_until_s = self.seen_until_s.max(now_s);
        added
    }

    /// [`record`](Self::record) then [`fit_tag`](Self::fit_tag), for a history that fits
    /// one tag value already (`fitted`): only new arrivals or a longer clock can make it too
    /// long, so it fits again only then. Returns how many arrivals it added.
    pub fn record_fitted(
        &mut self,
        created_s: impl IntoIterator<Item = u64>,
        now_s: u64,
        keep: usize,
        fitted: bool,
    ) -> usize {
        let clock = self.fits_alike_until();
        let added = self.record(created_s, now_s, keep);
        if added > 0 || !fitted || self.fits_alike_until() != clock {
            self.fit_tag();
        }
        added
    }

    /// The first `seen_until_s` whose tag head is longer than this one's (from then on
    /// [`fit_tag`](Self::fit_tag) may keep fewer arrivals).
    pub fn fits_alike_until(&self) -> u64 {
        36u64.saturating_pow(base36_len(self.seen_until_s) as u32)
    }

    /// How many of the newest arrivals fit in one tag value.
    fn fitting(&self) -> usize {
        let head = base36_len(self.seen_until_s) + 1;
        let arrivals = &self.arrivals_s;
        let mut first = arrivals.len();
        let mut deltas_len = 0usize;
        while first > 0 {
            let candidate = first - 1;
            let extra = match arrivals.get(candidate + 1) {
                Some(&next) => base36_len(next.saturating_sub(arrivals[candidate])) + 1,
                None => 0,
            };
            if head + base36_len(arrivals[candidate]) + deltas_len + extra > TAG_VALUE_MAX {
                break;
            }
            deltas_len += extra;
            first = candidate;
        }
        arrivals.len() - first
    }

    /// Drops the oldest arrivals that would not fit in the tag (what a round trip through
    /// [`to_tag`](Self::to_tag) and [`from_tag`](Self::from_tag) keeps).
    pub fn fit_tag(&mut self) {
        let cut = self.arrivals_s.len() - self.fitting();
        self.arrivals_s.drain(..cut);
    }

    /// `seen:first.delta.delta...` in base 36, dropping the oldest arrivals until it fits.
    pub fn to_tag(&self) -> String {
        // A fitted history (the usual case) is written as it is.
        let whole = self.render(&self.arrivals_s);
        if whole.len() <= TAG_VALUE_MAX {
            return whole;
        }
        self.render(&self.arrivals_s[self.arrivals_s.len() - self.fitting()..])
    }

    fn render(&self, kept: &[u64]) -> String {
        let mut out = Vec::with_capacity(TAG_VALUE_MAX);
        push_base36(&mut out, self.seen_until_s);
        out.push(b':');
        if let Some(&start) = kept.first() {
            push_base36(&mut out, start);
            for w in kept.windows(2) {
                out.push(b'.');
                push_base36(&mut out, w[1].saturating_sub(w[0]));
            }
        }
        String::from_utf8(out).unwrap_or_default()
    }

    /// Parses [`to_tag`](Self::to_tag)'s form; None for anything else (the caller starts over).
    pub fn from_tag(tag: &str) -> Option<ArrivalHistory> {
        let (seen, rest) = tag.split_once(':')?;
        let seen_until_s = parse_base36(seen.as_bytes())?;
        let mut arrivals_s = Vec::with_capacity(rest.len() / 2 + 1);
        if !rest.is_empty() {
            let mut parts = rest.as_bytes().split(|&b| b == b'.');
            let mut t = parse_base36(parts.next()?)?;
            arrivals_s.push(t);
            for p in parts {
                t = t.checked_add(parse_base36(p)?)?;
                arrivals_s.push(t);
            }
        }
        Some(ArrivalHistory { seen_until_s, arrivals_s })
    }
}

/// `u64::from_str_radix(text, 36)` on bytes: an optional `+`, then at least one digit
/// (either case), no overflow.
fn parse_base36(text: &[u8]) -> Option<u64> {
    let digits = match text {
        [b'+', rest @ ..] if !rest.is_empty() => rest,
        _ => text,
    };
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| n.checked_mul(36)?.checked_add((b as char).to_digit(36)? as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> AdaptiveSettings {
        AdaptiveSettings::default()
    }

    /// The timeout as first written (one pass, sorting the open gap in): the reference
    /// [`IdleTimeouts`] must equal.
    fn reference(arrivals_s: &[u64], instances: u32, now_s: u64, settings: &AdaptiveSettings) -> Duration {
        let window = settings.burst_window.as_secs();
        let mut bursts: Vec<u64> = Vec::new();
        for &t in arrivals_s {
            match bursts.last() {
                Some(&last) if t.saturating_sub(last) <= window => {}
                _ => bursts.push(t),
            }
        }
        if bursts.len() <= settings.min_gaps {
            return settings.fallback;
        }
        let spread = instances.max(1) as f64;
        let mut gaps: Vec<f64> = bursts.windows(2).map(|w| (w[1] - w[0]) as f64 * spread).collect();
        if let Some(&last) = bursts.last() {
            let open = now_s.saturating_sub(last) as f64;
            if open > window as f64 {
                gaps.push(open * spread);
            }
        }
        gaps.sort_by(f64::total_cmp);
        let cold = settings.boot.as_secs_f64() * (1.0 + settings.wait_weight.max(0.0));
        let floor = settings.floor.as_secs_f64();
        let ceiling = settings.ceiling.as_secs_f64().max(floor);
        let total = gaps.len();
        let mut best = (f64::INFINITY, floor);
        let (mut below_sum, mut below) = (0.0, 0usize);
        let mut candidates: Vec<f64> = vec![floor];
        candidates.extend(gaps.iter().copied().filter(|&g| g > floor && g < ceiling));
        candidates.push(ceiling);
        for t in candidates {
            while below < total && gaps[below] <= t {
                below_sum += gaps[below];
                below += 1;
            }
            let above = (total - below) as f64;
            let cost = below_sum + above * t + cold * above;
            if cost < best.0 {
                best = (cost, t);
            }
        }
        Duration::from_secs_f64(best.1)
    }

    fn arb_settings() -> impl proptest::strategy::Strategy<Value = AdaptiveSettings> {
        use proptest::prelude::*;
        (0u64..120, 0.0f64..5.0, 0u64..30, 0u64..120, 60u64..2400, 1usize..6).prop_map(
            |(boot, wait_weight, window, floor, ceiling, min_gaps)| AdaptiveSettings {
                boot: Duration::from_secs(boot),
                wait_weight,
                burst_window: Duration::from_secs(window),
                floor: Duration::from_millis(floor * 500),
                ceiling: Duration::from_secs(ceiling),
                fallback: Duration::from_secs(600),
                min_gaps,
            },
        )
    }

    proptest::proptest! {
        #[test]
        fn base36_length_is_the_number_of_digits(n in proptest::prelude::any::<u64>(), small in 0u64..100_000) {
            for n in [n, small] {
                let mut digits = Vec::new();
                push_base36(&mut digits, n);
                proptest::prop_assert_eq!(base36_len(n), digits.len());
            }
        }

        #[test]
        fn base36_parsing_accepts_exactly_what_from_str_radix_accepts(text in "[+\\-0-9a-zA-Z.:]{0,16}") {
            proptest::prop_assert_eq!(parse_base36(text.as_bytes()), u64::from_str_radix(&text, 36).ok());
        }

        #[test]
        fn the_timeouts_of_one_history_equal_the_one_pass_computation_and_hold_as_they_say(
            settings in arb_settings(),
            gaps in proptest::collection::vec(0u64..900, 0..40),
            instances in 1u32..12,
            after in 0u64..3000,
        ) {
            let mut arrivals = vec![1_000u64];
            for g in gaps {
                let next = arrivals[arrivals.len() - 1] + g;
                arrivals.push(next);
            }
            let last = arrivals[arrivals.len() - 1];
            let timeouts = IdleTimeouts::new(&arrivals, instances, &settings);
            let mut now = last;
            let mut held: Option<(Duration, Option<u64>)> = None;
            while now <= last + after {
                let at = timeouts.at(now);
                proptest::prop_assert_eq!(at, reference(&arrivals, instances, now, &settings), "at {}", now);
                if let Some((was, until)) = held {
                    if until.is_none_or(|u| now < u) {
                        proptest::prop_assert_eq!(at, was, "held until {:?}, changed at {}", until, now);
                    } else {
                        held = None;
                    }
                }
                if held.is_none() {
                    let until = timeouts.holds_until(now);
                    proptest::prop_assert!(until.is_none_or(|u| u > now));
                    held = Some((at, until));
                }
                now += 1;
            }
        }
    }

    #[test]
    fn too_little_history_falls_back() {
        assert_eq!(idle_timeout(&[0, 100], 1, 200, &settings()), Duration::from_secs(600));
    }

    #[test]
    fn a_sparse_pool_leaves_at_once() {
        // Jobs hours apart: staying idle never pays, not even a minute.
        let arrivals: Vec<u64> = (0..20).map(|i| i * 7200).collect();
        let no_floor = AdaptiveSettings { floor: Duration::ZERO, ..settings() };
        assert_eq!(idle_timeout(&arrivals, 1, 19 * 7200 + 30, &no_floor), Duration::ZERO);
        assert_eq!(idle_timeout(&arrivals, 1, 19 * 7200 + 30, &settings()), DEFAULT_FLOOR, "the default floor");
    }

    #[test]
    fn a_sparse_pool_gets_a_configured_floor() {
        let arrivals: Vec<u64> = (0..20).map(|i| i * 7200).collect();
        let floored = AdaptiveSettings { floor: Duration::from_secs(60), ..settings() };
        assert_eq!(idle_timeout(&arrivals, 1, 19 * 7200 + 30, &floored), Duration::from_secs(60));
    }

    #[test]
    fn busy_pool_covers_its_gaps() {
        // A job every 3 minutes: the timeout covers a 3-minute gap, well under 10 minutes.
        let arrivals: Vec<u64> = (0..30).map(|i| i * 180).collect();
        let t = idle_timeout(&arrivals, 1, 29 * 180 + 20, &settings());
        assert_eq!(t, Duration::from_secs(180));
    }

    #[test]
    fn gaps_spread_over_instances_are_longer() {
        let arrivals: Vec<u64> = (0..30).map(|i| i * 60).collect();
        // One instance sees a job a minute; spread over 3, each sees one every 3 minutes.
        assert_eq!(idle_timeout(&arrivals, 1, 29 * 60 + 5, &settings()), Duration::from_secs(60));
        assert_eq!(idle_timeout(&arrivals, 3, 29 * 60 + 5, &settings()), Duration::from_secs(180));
    }

    #[test]
    fn a_pool_gone_quiet_gets_a_shorter_timeout() {
        let arrivals: Vec<u64> = (0..30).map(|i| i * 180).collect();
        let busy = idle_timeout(&arrivals, 1, 29 * 180 + 20, &settings());
        let quiet = idle_timeout(&arrivals, 1, 29 * 180 + 6 * 3600, &settings());
        assert!(quiet <= busy, "{quiet:?} > {busy:?}");
    }

    #[test]
    fn bursts_count_as_one_arrival() {
        // Ten jobs at once every two hours are sparse, not busy.
        let arrivals: Vec<u64> = (0..10).flat_map(|i| std::iter::repeat_n(i * 7200, 10)).collect();
        assert_eq!(idle_timeout(&arrivals, 1, 9 * 7200 + 30, &settings()), DEFAULT_FLOOR, "sparse: the floor");
    }

    #[test]
    fn history_round_trips_through_a_tag_and_fits() {
        let mut h = ArrivalHistory::default();
        h.record((0..400).map(|i| 1_760_000_000 + i * 97), 1_760_000_000 + 400 * 97, 400);
        let tag = h.to_tag();
        assert!(tag.len() <= TAG_VALUE_MAX, "{}", tag.len());
        let back = ArrivalHistory::from_tag(&tag).unwrap();
        assert_eq!(back.seen_until_s, h.seen_until_s);
        assert!(back.arrivals_s.len() >= 40, "{}", back.arrivals_s.len());
        assert_eq!(back.arrivals_s.last(), h.arrivals_s.last());
        assert_eq!(ArrivalHistory::from_tag("garbage"), None);
        let mut fitted = h.clone();
        fitted.fit_tag();
        assert_eq!(fitted, back);
    }

    #[test]
    fn record_adds_only_jobs_created_since_last_time() {
        let mut h = ArrivalHistory { seen_until_s: 100, arrivals_s: vec![90] };
        h.record([95, 101, 105, 200], 110, 10);
        assert_eq!(h.arrivals_s, vec![90, 101, 105]);
        assert_eq!(h.seen_until_s, 110);
    }
}
