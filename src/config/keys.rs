//! The key registry's building blocks: a key's definition (name, where it applies, documented
//! default, one-line doc and reader together), the reader that parses one section's strings
//! while collecting problems, and the checks every section shares (unknown keys with a
//! suggestion, keys set where they do nothing).

use super::{split_list, ForgeKind, Problem};
use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

/// One configuration key. A section's keys are a `&[Key<D>]` table: adding a key is adding
/// one entry. `D` is the section's draft, which starts from the section's defaults; `read`
/// runs only when the key is present and writes the parsed value into the draft.
pub struct Key<D> {
    pub name: &'static str,
    pub applies: Applies,
    /// The default as it would be written in the configuration; empty when the key has none
    /// (or its default depends on another key). A test reads every default back into a fresh
    /// draft and checks it changes nothing, so this text cannot drift from the real default.
    pub default: &'static str,
    pub doc: &'static str,
    pub read: fn(&mut Reader<'_>, &mut D),
}

/// Where a key does something. Setting a key where it does nothing is a problem, so a typo'd
/// section or a key for another forge kind is never silently ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applies {
    Always,
    /// A forge key used by these forge kinds only.
    ForgeKinds(&'static [ForgeKind]),
    /// A pool key used only when the pool's forge is one of these kinds.
    PoolsOf(&'static [ForgeKind]),
    /// A pool key used only with `fleet = command`.
    CommandFleet,
    /// A pool key used only with `fleet = asg` (the default).
    AsgFleet,
    /// A pool key used only with `policy = vespene`.
    VespenePolicy,
}

/// What a section knows about itself before its keys are read, to judge `Applies`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context {
    /// The forge's kind (forge section) or the pool's forge's kind (pool section), when known.
    pub forge_kind: Option<ForgeKind>,
    pub command_fleet: bool,
    pub vespene: bool,
}

impl Applies {
    /// Why a key set here does nothing, or `Ok` when it is used. Unknown context passes.
    pub fn check(self, ctx: &Context) -> Result<(), String> {
        match self {
            Applies::Always => Ok(()),
            Applies::ForgeKinds(kinds) => match ctx.forge_kind {
                Some(kind) if !kinds.contains(&kind) => Err(format!("not used by {kind} forges")),
                _ => Ok(()),
            },
            Applies::PoolsOf(kinds) => match ctx.forge_kind {
                Some(kind) if !kinds.contains(&kind) => {
                    let only: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
                    Err(format!("only used by {} pools, this pool's forge is {kind}", only.join(" or ")))
                }
                _ => Ok(()),
            },
            Applies::CommandFleet if !ctx.command_fleet => Err("only used with fleet = command".to_string()),
            Applies::AsgFleet if ctx.command_fleet => Err("not used with fleet = command".to_string()),
            Applies::VespenePolicy if !ctx.vespene => Err("only used with policy = vespene".to_string()),
            _ => Ok(()),
        }
    }
}

/// Reads one section's raw strings (`forges/<name>`, `pools/<name>`, `settings`), collecting
/// problems that name the full key. `current` is the key a `Key::read` is reading.
pub struct Reader<'a> {
    base: String,
    keys: &'a BTreeMap<String, String>,
    problems: &'a mut Vec<Problem>,
    current: &'static str,
}

impl<'a> Reader<'a> {
    pub fn new(base: impl Into<String>, keys: &'a BTreeMap<String, String>, problems: &'a mut Vec<Problem>) -> Self {
        Reader { base: base.into(), keys, problems, current: "" }
    }

    /// The full name of a key of this section, e.g. `pools/linux/slots`.
    pub fn full_key(&self, k: &str) -> String {
        format!("{}/{k}", self.base)
    }

    /// A key's trimmed value, when present.
    pub fn get(&self, k: &str) -> Option<&'a str> {
        self.keys.get(k).map(|s| s.trim())
    }

    pub fn has(&self, k: &str) -> bool {
        self.keys.contains_key(k)
    }

    /// Whether a problem was already recorded for this full key (e.g. by the file reader).
    pub fn has_problem(&self, full_key: &str) -> bool {
        self.problems.iter().any(|p| p.key == full_key)
    }

    /// A problem with key `k` of this section.
    pub fn problem_at(&mut self, k: &str, message: impl Into<String>) {
        let key = self.full_key(k);
        self.problems.push(Problem::new(key, message));
    }

    /// A problem with the key being read.
    pub fn problem(&mut self, message: impl Into<String>) {
        self.problem_at(self.current, message);
    }

    /// The value of the key being read.
    pub fn text(&self) -> &'a str {
        self.get(self.current).unwrap_or("")
    }

    /// The value parsed as `T`; a problem ("... is not {what}") when it does not parse.
    pub fn parse<T: FromStr>(&mut self, what: &str) -> Option<T> {
        let v = self.text();
        let parsed = v.parse::<T>().ok();
        if parsed.is_none() {
            self.problem(format!("{v:?} is not {what}"));
        }
        parsed
    }

    /// A humantime duration ("90s", "10m").
    pub fn duration(&mut self) -> Option<Duration> {
        let v = self.text();
        match humantime::parse_duration(v) {
            Ok(d) => Some(d),
            Err(e) => {
                self.problem(format!("{v:?} is not a duration ({e}); write e.g. \"90s\" or \"10m\""));
                None
            }
        }
    }

    /// A duration that must be longer than zero.
    pub fn positive_duration(&mut self) -> Option<Duration> {
        let d = self.duration()?;
        if d.is_zero() {
            self.problem("must be longer than 0s");
            return None;
        }
        Some(d)
    }

    /// `true` or `false`, case-insensitively.
    pub fn bool(&mut self) -> Option<bool> {
        match self.text().to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            v => {
                let v = v.to_string();
                self.problem(format!("{v:?} is not true or false"));
                None
            }
        }
    }

    /// A finite number >= 0.
    pub fn non_negative(&mut self) -> Option<f64> {
        let x: f64 = self.parse("a number")?;
        if !x.is_finite() || x < 0.0 {
            self.problem("must be a finite number >= 0");
            return None;
        }
        Some(x)
    }

    /// A comma-separated list (see `split_list`).
    pub fn list(&self) -> Vec<String> {
        split_list(self.text())
    }

    /// Reads every present key of the section through `registry`: an unknown key is a problem
    /// (with a suggestion when a known key is close), a key set where it does nothing is a
    /// problem, and every other key's `read` runs.
    pub fn read_keys<D>(&mut self, registry: &[Key<D>], ctx: &Context, draft: &mut D) {
        let names: Vec<&'a String> = self.keys.keys().collect();
        for name in names {
            match registry.iter().find(|k| k.name == name) {
                None => {
                    let message = unknown_key_message(name, registry.iter().map(|k| k.name));
                    self.problem_at(name, message)
                }
                Some(key) => match key.applies.check(ctx) {
                    Err(message) => self.problem_at(name, message),
                    Ok(()) => {
                        self.current = key.name;
                        (key.read)(self, draft);
                    }
                },
            }
        }
    }
}

/// "unknown key", with "(did you mean `x`?)" when a known key is a small edit away.
pub fn unknown_key_message<'k>(name: &str, known: impl IntoIterator<Item = &'k str>) -> String {
    match suggestion(name, known) {
        Some(close) => format!("unknown key (did you mean `{close}`?)"),
        None => "unknown key".to_string(),
    }
}

/// The known name closest to `name`, when it is within a third of `name`'s length (at least
/// one edit, at most three): close enough to be a typo, not a different word.
pub fn suggestion<'k>(name: &str, known: impl IntoIterator<Item = &'k str>) -> Option<&'k str> {
    let allowed = (name.chars().count() / 3).clamp(1, 3);
    known
        .into_iter()
        .map(|k| (edit_distance(&name.to_ascii_lowercase(), k), k))
        .filter(|(d, _)| *d <= allowed)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance over chars (insertions, deletions, substitutions).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if ca == *cb { diagonal } else { 1 + diagonal.min(above).min(row[j]) };
            diagonal = above;
        }
    }
    row[b.len()]
}

/// A byte count: a whole number, optionally followed by `B`, `KiB`, `MiB` or `GiB`.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits_end = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(digits_end);
    let multiplier: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => return Err(format!("unknown unit {other:?} (write bytes, or KiB, MiB, GiB)")),
    };
    let count: u64 = digits.parse().map_err(|_| "not a whole number of bytes".to_string())?;
    count.checked_mul(multiplier).ok_or_else(|| "too large".to_string())
}

/// Reads `value` as key `key` into `draft` the way a section would; the problems it finds.
#[cfg(test)]
pub fn read_one<D>(key: &Key<D>, value: &str, draft: &mut D) -> Vec<Problem> {
    let keys: BTreeMap<String, String> = [(key.name.to_string(), value.to_string())].into();
    let mut problems = Vec::new();
    let mut r = Reader::new("test", &keys, &mut problems);
    r.current = key.name;
    (key.read)(&mut r, draft);
    problems
}

/// Every key's documented default, read into a fresh draft, changes nothing: the doc cannot
/// drift from the default a missing key gets. Returns the keys that failed.
#[cfg(test)]
pub fn defaults_that_disagree<D: Default + PartialEq>(registry: &[Key<D>]) -> Vec<&'static str> {
    registry
        .iter()
        .filter(|k| !k.default.is_empty())
        .filter(|k| {
            let mut draft = D::default();
            !read_one(k, k.default, &mut draft).is_empty() || draft != D::default()
        })
        .map(|k| k.name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_insertions_deletions_and_substitutions() {
        assert_eq!(edit_distance("slots", "slots"), 0);
        assert_eq!(edit_distance("slot", "slots"), 1);
        assert_eq!(edit_distance("idle_timout", "idle_timeout"), 1);
        assert_eq!(edit_distance("spare", "share"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn a_typo_gets_the_closest_known_key_and_a_different_word_gets_none() {
        let known = ["max_instances", "max_step", "slots", "spare"];
        assert_eq!(suggestion("max_instance", known), Some("max_instances"));
        assert_eq!(suggestion("Slots", known), Some("slots"));
        assert_eq!(suggestion("colour", known), None);
        assert_eq!(unknown_key_message("colour", known), "unknown key");
        assert_eq!(unknown_key_message("max_stpe", known), "unknown key (did you mean `max_step`?)");
    }

    #[test]
    fn byte_counts_take_plain_numbers_and_binary_units() {
        assert_eq!(parse_bytes("8388608"), Ok(8 * 1024 * 1024));
        assert_eq!(parse_bytes("8MiB"), Ok(8 * 1024 * 1024));
        assert_eq!(parse_bytes("512 KiB"), Ok(512 * 1024));
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert!(parse_bytes("8MB").unwrap_err().contains("unknown unit"));
        assert!(parse_bytes("-1").is_err());
        assert!(parse_bytes("MiB").is_err());
        assert_eq!(parse_bytes("99999999999999999999GiB"), Err("not a whole number of bytes".to_string()));
        assert_eq!(parse_bytes("18446744073709551615KiB"), Err("too large".to_string()));
    }
}
