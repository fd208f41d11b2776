//! `TelemetryRecorder`: the `metrics::Recorder` that hands out counter-file handles.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};

use crate::handles::{CounterHandle, HistogramHandle};
use crate::naming::counter_name;
use crate::options::Options;
use crate::table::KeyTable;

/// Counts the registrations of keys that carried a label the options do not allow.
static DROPPED_LABEL: telemetry_counter::Counter =
    telemetry_counter::Counter::new("telemetry/metrics-dropped-label");

/// Keys remembered for the lock-free path; more than this many distinct keys still
/// count, through the slower first-use path.
const COUNTER_KEYS: usize = 1024;
const HISTOGRAM_KEYS: usize = 256;

/// A `metrics::Recorder` that counts into the telemetry counter file (see the crate
/// docs for what becomes what). [`install`](crate::install) makes one the global
/// recorder; `metrics::with_local_recorder` can use one for a scope.
pub struct TelemetryRecorder {
    options: Options,
    counters: KeyTable<Counter>,
    histograms: KeyTable<Histogram>,
    /// Handles by counter name, so keys that name the same counter (a label dropped)
    /// share one, and each name's counters are leaked once.
    counters_by_name: Mutex<HashMap<String, Counter>>,
    histograms_by_name: Mutex<HashMap<String, Histogram>>,
}

impl fmt::Debug for TelemetryRecorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelemetryRecorder")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl TelemetryRecorder {
    /// A recorder with these options.
    pub fn new(options: Options) -> TelemetryRecorder {
        TelemetryRecorder {
            options,
            counters: KeyTable::new(COUNTER_KEYS),
            histograms: KeyTable::new(HISTOGRAM_KEYS),
            counters_by_name: Mutex::new(HashMap::new()),
            histograms_by_name: Mutex::new(HashMap::new()),
        }
    }

    #[cold]
    #[inline(never)]
    fn first_counter(&self, key: &Key) -> Counter {
        let (name, dropped) = counter_name(key, &self.options);
        let handle = by_name(&self.counters_by_name, name, |name| {
            Counter::from_arc(Arc::new(CounterHandle::new(name.to_owned())))
        });
        self.remember(&self.counters, key, handle, dropped)
    }

    #[cold]
    #[inline(never)]
    fn first_histogram(&self, key: &Key) -> Histogram {
        let (name, dropped) = counter_name(key, &self.options);
        let buckets = self.options.buckets(key.name());
        let handle = by_name(&self.histograms_by_name, name, |name| {
            Histogram::from_arc(Arc::new(HistogramHandle::new(name, buckets)))
        });
        self.remember(&self.histograms, key, handle, dropped)
    }

    /// Remembers `handle` for `key`, unless a label was dropped: such a key's values
    /// may be anything (a path, a user name), and none of it is kept.
    fn remember<V: Clone>(&self, table: &KeyTable<V>, key: &Key, handle: V, dropped: bool) -> V {
        if dropped {
            DROPPED_LABEL.inc();
            return handle;
        }
        match table.insert(key, handle.clone()) {
            Some(remembered) => remembered.clone(),
            None => handle,
        }
    }
}

/// The handle for counter name `name` in `map`, made by `make` the first time.
fn by_name<V: Clone>(
    map: &Mutex<HashMap<String, V>>,
    name: String,
    make: impl FnOnce(&str) -> V,
) -> V
where
    String: Hash,
{
    let mut map = map.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(handle) = map.get(&name) {
        return handle.clone();
    }
    let handle = make(&name);
    map.insert(name, handle.clone());
    handle
}

impl Recorder for TelemetryRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    #[inline]
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        match self.counters.get(key) {
            Some(handle) => handle.clone(),
            None => self.first_counter(key),
        }
    }

    /// Gauges are ignored: a level at one instant means nothing summed over a week.
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    #[inline]
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        match self.histograms.get(key) {
            Some(handle) => handle.clone(),
            None => self.first_histogram(key),
        }
    }
}
