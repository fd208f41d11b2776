//! What a `metrics::Counter` or `metrics::Histogram` handle holds: counters of the
//! counter crate, leaked so they live as long as the process (as `static`s do).

use std::sync::atomic::{AtomicU64, Ordering};

use metrics::{CounterFn, HistogramFn};
use telemetry_counter::Counter;

use crate::options::Buckets;

/// A counter for a name made at run time. Each distinct name is leaked once: the
/// counter crate keeps a pointer to every counter for the life of the process, and the
/// recorder makes one per distinct name only.
pub(crate) fn leak_counter(name: String) -> &'static Counter {
    let name: &'static str = Box::leak(name.into_boxed_str());
    Box::leak(Box::new(Counter::new(name)))
}

/// A `metrics` counter: increments add to the file's counter.
pub(crate) struct CounterHandle {
    counter: &'static Counter,
    /// The largest value `absolute` set, which the file's counter has been raised to.
    absolute: AtomicU64,
}

impl CounterHandle {
    pub(crate) fn new(name: String) -> CounterHandle {
        CounterHandle {
            counter: leak_counter(name),
            absolute: AtomicU64::new(0),
        }
    }
}

impl CounterFn for CounterHandle {
    #[inline]
    fn increment(&self, value: u64) {
        self.counter.add(value);
    }

    /// Raises the count by what `value` exceeds the largest value set before in this
    /// process; a smaller one changes nothing.
    fn absolute(&self, value: u64) {
        let before = self.absolute.fetch_max(value, Ordering::Relaxed);
        if value > before {
            self.counter.add(value - before);
        }
    }
}

/// A `metrics` histogram: one counter per bucket, named `{name}:{bucket}`.
pub(crate) struct HistogramHandle {
    buckets: Buckets,
    counters: Box<[&'static Counter]>,
}

impl HistogramHandle {
    pub(crate) fn new(name: &str, buckets: &Buckets) -> HistogramHandle {
        let counters = buckets
            .names()
            .iter()
            .map(|bucket| leak_counter(format!("{name}:{bucket}")))
            .collect();
        HistogramHandle {
            buckets: buckets.clone(),
            counters,
        }
    }
}

impl HistogramFn for HistogramHandle {
    fn record(&self, value: f64) {
        self.record_many(value, 1);
    }

    fn record_many(&self, value: f64, count: usize) {
        let counter = self.buckets.index(value).and_then(|i| self.counters.get(i));
        if let Some(counter) = counter {
            counter.add(u64::try_from(count).unwrap_or(u64::MAX));
        }
    }
}
