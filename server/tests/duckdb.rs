//! The merged day's Parquet files read by a real query engine: DuckDB (Python's
//! `duckdb` package, `.ci/install-duckdb`) runs the README's query — the share of
//! reports per version that counted a counter — over `parquet/date=*/part-*.parquet`
//! and gets the numbers of the dashboard's chart data and of the merged reports.
//! Skipped without `python3 -c "import duckdb"` (required in CI).

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::*;
use telemetry_server::DaySummary;
use telemetry_upload::Report;

/// The README's query, with the glob, the day and the counter as parameters.
const SHARE_BY_VERSION: &str = "
SELECT version,
       count(DISTINCT x) AS reports,
       count(DISTINCT x) FILTER (WHERE counter = $counter AND count > 0) AS counted,
       counted / reports AS share
FROM read_parquet($glob, hive_partitioning = true)
WHERE date = CAST($date AS DATE) AND program = 'mytool'
GROUP BY version
ORDER BY version";

/// The whole program's chart bar for the counter, and the rows that are stacks.
const PROGRAM_TOTALS: &str = "
SELECT count(DISTINCT x) FILTER (WHERE counter = $counter AND count > 0) AS counted,
       sum(count) FILTER (WHERE counter = $counter) AS total,
       count(*) FILTER (WHERE is_stack) AS stack_rows
FROM read_parquet($glob, hive_partitioning = true)
WHERE date = CAST($date AS DATE) AND program = 'mytool'";

/// Runs `query` in DuckDB with `params`, and returns its rows as JSON arrays.
fn duckdb(python: &str, query: &str, params: &serde_json::Value) -> Vec<Vec<serde_json::Value>> {
    let script = "import duckdb, json, sys\n\
        rows = duckdb.connect().execute(sys.argv[1], json.loads(sys.argv[2])).fetchall()\n\
        print(json.dumps([list(r) for r in rows], default=str))";
    let out = Command::new(python)
        .args(["-c", script, query, &params.to_string()])
        .output()
        .unwrap();
    serde_json::from_str(&succeeded(out)).unwrap()
}

/// `python3`, if it can import duckdb; `None` when the test is skipped.
fn python_with_duckdb() -> Option<&'static str> {
    let usable = Command::new("python3")
        .args(["-c", "import duckdb"])
        .output()
        .is_ok_and(|out| out.status.success());
    telemetry_test_support::Tool::DUCKDB
        .available(usable)
        .then_some("python3")
}

/// Forty reports over two versions; `mytool/flag:json` counted by some, present
/// with 0 in others; a stack in a few; one report with both versions.
fn reports() -> Vec<Report> {
    (0..40)
        .map(|i| {
            let mut r = report(week(), (i + 1) as f64 / 64.0);
            let p = &mut r.programs[0];
            p.version = if i % 3 == 0 { "1.1.0" } else { "1.0.0" }.into();
            match i % 4 {
                0 => drop(p.counters.remove("mytool/flag:json")),
                1 => drop(p.counters.insert("mytool/flag:json".into(), 0)),
                2 => drop(p.counters.insert("mytool/flag:json".into(), i as u64)),
                _ => {}
            }
            if i % 5 == 0 {
                p.stacks.insert("mytool/bug\nmytool::parse+0x1f".into(), 2);
            }
            if i == 7 {
                let mut other = program(&[("mytool/flag:json", 5)]);
                other.version = "1.1.0".into();
                r.programs.push(other);
            }
            r
        })
        .collect()
}

#[test]
fn duckdb_reads_the_parquet_files_and_agrees_with_the_dashboard() {
    let Some(python) = python_with_duckdb() else {
        return;
    };
    let server = TestServer::start();
    let reports = reports();
    for r in &reports {
        assert_eq!(server.upload(r).0, 200);
    }
    let merged = server
        .runtime
        .block_on(telemetry_server::merge(&server.storage, Some(week())))
        .unwrap();
    assert_eq!(merged[0].reports, reports.len() as u64);

    let data = server.data();
    let params = serde_json::json!({
        "glob": format!("{}/parquet/date=*/part-*.parquet", data.display()),
        "date": week().to_string(),
        "counter": "mytool/flag:json",
    });
    let by_version = duckdb(python, SHARE_BY_VERSION, &params);

    // The same numbers from the merged reports, and from the dashboard's data.
    let merged = std::fs::read_to_string(data.join(format!("merged/{}.json", week()))).unwrap();
    let mut expected: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for line in merged.lines() {
        let report = Report::parse(line.as_bytes()).unwrap();
        let mut seen: BTreeMap<&str, bool> = BTreeMap::new();
        for p in &report.programs {
            let counted = p.counters.get("mytool/flag:json").is_some_and(|&n| n > 0);
            *seen.entry(&p.version).or_default() |= counted;
        }
        for (version, counted) in seen {
            let entry = expected.entry(version.to_owned()).or_default();
            entry.0 += 1;
            entry.1 += u64::from(counted);
        }
    }
    let charts: DaySummary = serde_json::from_slice(
        &std::fs::read(data.join(format!("charts/{}.json", week()))).unwrap(),
    )
    .unwrap();
    let program = &charts.programs["mytool"];
    assert_eq!(by_version.len(), 2, "{by_version:?}");
    for row in &by_version {
        let version = row[0].as_str().unwrap();
        let (reports, counted) = (row[1].as_u64().unwrap(), row[2].as_u64().unwrap());
        assert_eq!((reports, counted), expected[version], "{version}");
        assert_eq!(
            reports, program.builds["Version"][version].reports,
            "{version}"
        );
        let share = row[3].as_f64().unwrap();
        assert!(
            (share - counted as f64 / reports as f64).abs() < 1e-12,
            "{row:?}"
        );
    }

    let totals = &duckdb(python, PROGRAM_TOTALS, &params)[0];
    let bar = program.charts["mytool/flag"]["json"];
    assert_eq!(totals[0].as_u64(), Some(bar.reports));
    assert_eq!(totals[1].as_u64(), Some(bar.count));
    let stacks: u64 = program.stacks.values().map(|bar| bar.reports).sum();
    assert_eq!(totals[2].as_u64(), Some(stacks));
}
