//! `Options`: which labels may enter a counter name, and each histogram's buckets.

use std::collections::BTreeMap;

/// What [`install`](crate::install) is told: allowed labels and histogram buckets.
/// `Options::default()` allows no label and gives every histogram
/// [`Buckets::default`] (durations in seconds).
///
/// ```
/// use telemetry_metrics::{Buckets, Options};
///
/// let options = Options::default()
///     .allow_label("kind", &["disk", "network"])
///     .histogram("mytool/files", Buckets::values(&[10.0, 100.0, 1000.0]))
///     .histogram("mytool/startup", Buckets::durations(&[0.01, 0.1]));
/// # let _ = options;
/// ```
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Allowed label keys, each with its allowed values.
    pub(crate) labels: BTreeMap<String, Vec<String>>,
    /// Buckets by histogram name.
    pub(crate) histograms: BTreeMap<String, Buckets>,
    /// Buckets of every histogram not named above.
    pub(crate) default_buckets: Buckets,
}

impl Options {
    /// Lets the label `key` into counter names when its value is one of `values`
    /// (compared exactly). Calling it again for the same key adds values.
    pub fn allow_label(mut self, key: &str, values: &[&str]) -> Options {
        let allowed = self.labels.entry(key.to_owned()).or_default();
        allowed.extend(values.iter().map(|v| (*v).to_owned()));
        self
    }

    /// Gives the histogram `name` these buckets.
    pub fn histogram(mut self, name: &str, buckets: Buckets) -> Options {
        self.histograms.insert(name.to_owned(), buckets);
        self
    }

    /// Gives every histogram not named by [`Options::histogram`] these buckets.
    pub fn default_buckets(mut self, buckets: Buckets) -> Options {
        self.default_buckets = buckets;
        self
    }

    pub(crate) fn buckets(&self, name: &str) -> &Buckets {
        self.histograms.get(name).unwrap_or(&self.default_buckets)
    }

    pub(crate) fn allows(&self, key: &str, value: &str) -> bool {
        self.labels
            .get(key)
            .is_some_and(|values| values.iter().any(|v| v == value))
    }
}

/// A histogram's bucket bounds, increasing, and the spelling of each bucket: a value
/// lands in `<{bound}` for the first bound above it, or in `>={last bound}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Buckets {
    bounds: Vec<f64>,
    /// `bounds.len() + 1` names: `<b0`, `<b1`, …, `>=b_last`.
    names: Vec<String>,
}

impl Default for Buckets {
    /// Durations in seconds: `<1ms`, `<10ms`, `<100ms`, `<1s`, `<10s`, `>=10s`.
    fn default() -> Buckets {
        Buckets::durations(&[0.001, 0.01, 0.1, 1.0, 10.0])
    }
}

impl Buckets {
    /// Bounds for durations recorded in seconds (as `metrics` histograms of time are),
    /// spelled in `us`, `ms` or `s`: `[0.01, 0.5, 2.0]` gives `<10ms`, `<500ms`, `<2s`,
    /// `>=2s`. Bounds that are not finite are left out; the rest are sorted.
    pub fn durations(bounds: &[f64]) -> Buckets {
        Buckets::new(bounds, format_duration)
    }

    /// Bounds for plain values, spelled as numbers: `[10.0, 100.0]` gives `<10`,
    /// `<100`, `>=100`. Bounds that are not finite are left out; the rest are sorted.
    pub fn values(bounds: &[f64]) -> Buckets {
        Buckets::new(bounds, format_number)
    }

    fn new(bounds: &[f64], spell: fn(f64) -> String) -> Buckets {
        let mut bounds: Vec<f64> = bounds.iter().copied().filter(|b| b.is_finite()).collect();
        bounds.sort_by(f64::total_cmp);
        bounds.dedup();
        let mut names: Vec<String> = bounds.iter().map(|b| format!("<{}", spell(*b))).collect();
        match bounds.last() {
            Some(last) => names.push(format!(">={}", spell(*last))),
            None => names.push("all".to_owned()),
        }
        Buckets { bounds, names }
    }

    /// The bucket names, lowest first.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The index into [`names`](Buckets::names) of `value`'s bucket; `None` for NaN.
    pub(crate) fn index(&self, value: f64) -> Option<usize> {
        if value.is_nan() {
            return None;
        }
        Some(self.bounds.partition_point(|bound| value >= *bound))
    }
}

/// Seconds in the largest unit that keeps the number at least 1: `0.01` → `10ms`.
fn format_duration(seconds: f64) -> String {
    let abs = seconds.abs();
    if abs >= 1.0 || abs == 0.0 {
        format!("{}s", format_number(seconds))
    } else if abs >= 1e-3 {
        format!("{}ms", format_number(seconds * 1e3))
    } else {
        format!("{}us", format_number(seconds * 1e6))
    }
}

/// A number without the float noise of a unit conversion (`0.1 * 1e3`).
fn format_number(value: f64) -> String {
    let rounded = (value * 1e6).round() / 1e6;
    format!("{rounded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_buckets_are_durations() {
        assert_eq!(
            Buckets::default().names(),
            ["<1ms", "<10ms", "<100ms", "<1s", "<10s", ">=10s"]
        );
    }

    #[test]
    fn values_land_below_the_first_bound_above_them() {
        let b = Buckets::values(&[100.0, 10.0]);
        assert_eq!(b.names(), ["<10", "<100", ">=100"]);
        assert_eq!(b.index(-1.0), Some(0));
        assert_eq!(b.index(9.99), Some(0));
        assert_eq!(b.index(10.0), Some(1));
        assert_eq!(b.index(100.0), Some(2));
        assert_eq!(b.index(f64::INFINITY), Some(2));
        assert_eq!(b.index(f64::NAN), None);
    }

    #[test]
    fn durations_are_spelled_in_their_unit() {
        let b = Buckets::durations(&[0.000_25, 0.5, 2.0, f64::NAN]);
        assert_eq!(b.names(), ["<250us", "<500ms", "<2s", ">=2s"]);
    }

    #[test]
    fn no_bounds_is_one_bucket() {
        let b = Buckets::values(&[]);
        assert_eq!(b.names(), ["all"]);
        assert_eq!(b.index(5.0), Some(0));
    }
}
