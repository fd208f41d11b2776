//! Chart data: what the dashboard draws, computed by a merge from one day's reports
//! and stored as `charts/<date>.json`.
//!
//! Every number in it is a sum over distinct reports, so the data of several days
//! adds up: the dashboard's week ending on day D is the sum of the seven days
//! D-6..=D (each installation reports once a week, on its own weekday).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use telemetry_upload::Report;

/// How many stack counters a day keeps per program, the most counted first.
pub const STACKS_KEPT: usize = 100;

/// The chart data of the reports of one day (or, summed, of a week).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DaySummary {
    /// How many objects the merge read from `uploaded/<date>/`, including any that
    /// did not parse: a later merge redoes the day when this differs from the count
    /// it lists, so an upload that landed during a merge is not left out.
    #[serde(rename = "Objects")]
    pub objects: u64,
    /// How many reports were merged.
    #[serde(rename = "Reports")]
    pub reports: u64,
    /// By program name.
    #[serde(rename = "Programs")]
    pub programs: BTreeMap<String, ProgramSummary>,
}

/// One program's charts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProgramSummary {
    /// How many reports hold this program.
    #[serde(rename = "Reports")]
    pub reports: u64,
    /// `Version`, `Toolchain`, `OS` and `Arch`, each by value.
    #[serde(rename = "Builds")]
    pub builds: BTreeMap<String, BTreeMap<String, Bar>>,
    /// Counters `chart:bucket` by chart, then bucket (a name without `:` is a chart
    /// whose only bucket is empty).
    #[serde(rename = "Charts")]
    pub charts: BTreeMap<String, BTreeMap<String, Bar>>,
    /// Stack counters (`prefix\nframe…`), at most [`STACKS_KEPT`] of them.
    #[serde(rename = "Stacks")]
    pub stacks: BTreeMap<String, Bar>,
}

/// One bucket: how many reports saw it, and their counts summed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bar {
    /// Reports in which the count was not zero.
    #[serde(rename = "Reports")]
    pub reports: u64,
    /// The counts, summed (saturating).
    #[serde(rename = "Count")]
    pub count: u64,
}

impl Bar {
    fn add(&mut self, other: Bar) {
        self.reports = self.reports.saturating_add(other.reports);
        self.count = self.count.saturating_add(other.count);
    }
}

/// `chart:bucket` → (`chart`, `bucket`); a name without `:` is its own chart.
pub(crate) fn split_counter(name: &str) -> (&str, &str) {
    name.split_once(':').unwrap_or((name, ""))
}

impl DaySummary {
    /// Adds one report. A report that lists a program twice (two versions, two
    /// platforms) counts once for it.
    pub fn add_report(&mut self, report: &Report) {
        self.reports = self.reports.saturating_add(1);
        // Per program: what this report saw, summed over its entries.
        type Seen<'r> = (
            BTreeMap<(&'static str, &'r str), u64>,
            HashMap<(&'r str, &'r str), u64>,
            HashMap<&'r str, u64>,
        );
        let mut by_program: BTreeMap<&str, Seen<'_>> = BTreeMap::new();
        for p in &report.programs {
            let (builds, charts, stacks) = by_program.entry(&p.program).or_default();
            for (kind, value) in [
                ("Version", &p.version),
                ("Toolchain", &p.toolchain),
                ("OS", &p.os),
                ("Arch", &p.arch),
            ] {
                builds.insert((kind, value.as_str()), 1);
            }
            for (name, &n) in &p.counters {
                let total = charts.entry(split_counter(name)).or_default();
                *total = total.saturating_add(n);
            }
            for (name, &n) in &p.stacks {
                let total = stacks.entry(name.as_str()).or_default();
                *total = total.saturating_add(n);
            }
        }
        for (program, (builds, charts, stacks)) in by_program {
            let summary = self.programs.entry(program.to_owned()).or_default();
            summary.reports = summary.reports.saturating_add(1);
            for ((kind, value), n) in builds {
                let bar = Bar {
                    reports: 1,
                    count: n,
                };
                entry(entry(&mut summary.builds, kind), value).add(bar);
            }
            for ((chart, bucket), n) in charts {
                if n > 0 {
                    let bar = Bar {
                        reports: 1,
                        count: n,
                    };
                    entry(entry(&mut summary.charts, chart), bucket).add(bar);
                }
            }
            for (name, n) in stacks {
                if n > 0 {
                    let bar = Bar {
                        reports: 1,
                        count: n,
                    };
                    entry(&mut summary.stacks, name).add(bar);
                }
            }
        }
    }

    /// Adds another day's data (the dashboard sums a week). Every sum saturates at
    /// `u64::MAX`: chart files are read from storage, where anything may have been
    /// put.
    pub fn add(&mut self, other: &DaySummary) {
        self.objects = self.objects.saturating_add(other.objects);
        self.reports = self.reports.saturating_add(other.reports);
        for (name, theirs) in &other.programs {
            let ours = self.programs.entry(name.clone()).or_default();
            ours.reports = ours.reports.saturating_add(theirs.reports);
            for (into, from) in [
                (&mut ours.builds, &theirs.builds),
                (&mut ours.charts, &theirs.charts),
            ] {
                for (chart, buckets) in from {
                    let chart = entry(into, chart);
                    for (bucket, bar) in buckets {
                        entry(chart, bucket).add(*bar);
                    }
                }
            }
            for (stack, bar) in &theirs.stacks {
                entry(&mut ours.stacks, stack).add(*bar);
            }
        }
        self.trim_stacks();
    }

    /// Keeps the [`STACKS_KEPT`] most counted stacks of each program.
    pub(crate) fn trim_stacks(&mut self) {
        for program in self.programs.values_mut() {
            if program.stacks.len() > STACKS_KEPT {
                let top: BTreeMap<String, Bar> = top_stacks(&program.stacks, STACKS_KEPT)
                    .into_iter()
                    .map(|(name, bar)| (name.to_owned(), bar))
                    .collect();
                program.stacks = top;
            }
        }
    }
}

/// The `n` most counted stacks, most first (ties by name, so the order is stable).
pub(crate) fn top_stacks(stacks: &BTreeMap<String, Bar>, n: usize) -> Vec<(&str, Bar)> {
    let mut all: Vec<(&str, Bar)> = stacks.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    all.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.0.cmp(b.0)));
    all.truncate(n);
    all
}

/// The map's value for `key`, inserted if missing, without allocating when present.
fn entry<'m, V: Default>(map: &'m mut BTreeMap<String, V>, key: &str) -> &'m mut V {
    if !map.contains_key(key) {
        map.insert(key.to_owned(), V::default());
    }
    map.get_mut(key).expect("inserted above")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(programs: &str) -> Report {
        Report::parse(
            format!(r#"{{"Week": "2026-11-20", "X": 0.5, "Programs": {programs}}}"#).as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn counts_reports_once_and_sums_counts() {
        let mut day = DaySummary::default();
        day.add_report(&report(
            r#"[{"Program": "t", "Version": "1", "OS": "linux", "Arch": "x86_64", "Toolchain": "1.95.0",
                 "Counters": {"t/flag:a": 2, "t/flag:b": 0, "t/runs": 5}, "Stacks": {"t/bug\nf": 1}},
                {"Program": "t", "Version": "2", "OS": "linux", "Arch": "x86_64", "Toolchain": "1.95.0",
                 "Counters": {"t/flag:a": 3}}]"#,
        ));
        day.add_report(&report(
            r#"[{"Program": "t", "Version": "2", "OS": "macos", "Arch": "aarch64", "Toolchain": "1.95.0",
                 "Counters": {"t/flag:a": 1}}]"#,
        ));
        let t = &day.programs["t"];
        assert_eq!((day.reports, t.reports), (2, 2));
        let flag = &t.charts["t/flag"];
        assert_eq!(
            flag["a"],
            Bar {
                reports: 2,
                count: 6
            }
        );
        assert!(!flag.contains_key("b"), "a zero count is not seen");
        assert_eq!(
            t.charts["t/runs"][""],
            Bar {
                reports: 1,
                count: 5
            }
        );
        assert_eq!(
            t.builds["Version"]["2"],
            Bar {
                reports: 2,
                count: 2
            }
        );
        assert_eq!(
            t.builds["Version"]["1"],
            Bar {
                reports: 1,
                count: 1
            }
        );
        assert_eq!(
            t.builds["OS"]["linux"],
            Bar {
                reports: 1,
                count: 1
            }
        );
        assert_eq!(
            t.stacks["t/bug\nf"],
            Bar {
                reports: 1,
                count: 1
            }
        );

        let mut week = DaySummary::default();
        week.add(&day);
        week.add(&day);
        assert_eq!(
            week.programs["t"].charts["t/flag"]["a"],
            Bar {
                reports: 4,
                count: 12
            }
        );
        assert_eq!(week.reports, 4);
    }

    #[test]
    fn keeps_the_most_counted_stacks() {
        let mut day = DaySummary::default();
        let stacks: Vec<String> = (0..STACKS_KEPT + 5)
            .map(|i| format!("\"t/bug\\nf{i}\": {}", i + 1))
            .collect();
        day.add_report(&report(&format!(
            r#"[{{"Program": "t", "Stacks": {{{}}}}}]"#,
            stacks.join(",")
        )));
        day.trim_stacks();
        let kept = &day.programs["t"].stacks;
        assert_eq!(kept.len(), STACKS_KEPT);
        assert!(!kept.contains_key("t/bug\nf0"));
        assert_eq!(
            top_stacks(kept, 1)[0].0,
            format!("t/bug\nf{}", STACKS_KEPT + 4)
        );
    }
}
