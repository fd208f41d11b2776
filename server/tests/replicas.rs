//! Three `telemetry-server serve` processes (the real binary) on one S3 bucket (moto,
//! `common::Moto`), as they run behind a load balancer: overlapping reports sent to
//! all three at once are each stored exactly once and whole, and `merge` run by two
//! processes at the same moment leaves one complete result, the one a single merge
//! gives, even while reports keep arriving. Skipped without `moto_server` (required
//! in CI). On file storage: a re-merge replaces the day's Parquet parts, and the
//! merge lock is waited for while held and taken over once its holder is dead.

mod common;

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arrow_array::{Array, Float64Array};
use common::*;
use telemetry_internal::Day;
use telemetry_test_support::wait_until;
use telemetry_upload::Report;

const PREFIX: &str = "collector";
const REPLICAS: usize = 3;

fn storage_url() -> String {
    format!("s3://{BUCKET}/{PREFIX}")
}

/// A week the real clock accepts (the binary has no pretended today).
fn recent_week() -> Day {
    Day::of(SystemTime::now()).plus(-2)
}

/// Report `i`: distinct by `X`, two versions, `mytool/flag:json` counted by every
/// third.
fn nth_report(week: Day, i: usize) -> Report {
    let mut report = report(week, (i + 1) as f64 / 4096.0);
    report.programs[0].version = if i % 2 == 0 { "1.0.0" } else { "1.1.0" }.into();
    if i % 3 == 0 {
        report.programs[0].counters.remove("mytool/flag:json");
    }
    report
}

fn replica(dir: &std::path::Path, moto: &Moto) -> Served {
    let mut command = telemetry_test_support::serve_command(
        std::path::Path::new(BIN),
        &dir.join("config.json"),
        &storage_url(),
    );
    command.env_clear().envs(moto.env());
    Served::spawn(command)
}

fn merge_command(moto: &Moto, date: Option<Day>) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(["merge", "--storage", &storage_url()])
        .env_clear()
        .envs(moto.env())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(date) = date {
        command.args(["--date", &date.to_string()]);
    }
    command
}

/// Waits (at most 60 s each) for `children` and returns their stdout; each must
/// succeed.
fn finish(children: Vec<Child>) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    children
        .into_iter()
        .map(|mut child| {
            let left = deadline.saturating_duration_since(Instant::now());
            if !wait_until(left, || child.try_wait().unwrap().is_some()) {
                let _ = child.kill();
                panic!("merge still running after 60 s");
            }
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        })
        .collect()
}

/// Sends every report of `reports` to every replica, each (report, replica) pair
/// from its own thread group, so that the same report reaches the three replicas at
/// the same moment. Returns every answer.
fn upload_everywhere(replicas: &[String], reports: &Arc<Vec<Report>>) -> Vec<(u16, String)> {
    const GROUPS: usize = 3;
    let mut threads = Vec::new();
    for group in 0..GROUPS {
        for (r, base) in replicas.iter().enumerate() {
            let reports = Arc::clone(reports);
            let base = base.clone();
            threads.push(std::thread::spawn(move || {
                reports
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| i % GROUPS == group)
                    // Each replica's thread starts at another point of the list, so
                    // the overlap comes in every order.
                    .map(|(_, report)| report)
                    .cycle()
                    .skip(r * 7)
                    .take(reports.len().div_ceil(GROUPS))
                    .map(|report| post(&format!("{base}/upload/{}", report.week), &json(report)))
                    .collect::<Vec<_>>()
            }));
        }
    }
    threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect()
}

/// What a merge left in the bucket for `week`: the merged file, the chart data,
/// and every Parquet part with its bytes.
#[derive(Debug, PartialEq)]
struct MergeOutputs {
    merged: Vec<u8>,
    charts: Vec<u8>,
    parquet: Vec<(String, Vec<u8>)>,
}

fn outputs(moto: &Moto, week: Day) -> MergeOutputs {
    let parquet = moto
        .keys(&format!("{PREFIX}/parquet/date={week}/"))
        .into_iter()
        .map(|key| {
            let bytes = moto.get(&key);
            (key, bytes)
        })
        .collect();
    MergeOutputs {
        merged: moto.get(&format!("{PREFIX}/merged/{week}.json")),
        charts: moto.get(&format!("{PREFIX}/charts/{week}.json")),
        parquet,
    }
}

/// The distinct `X`s of the Parquet parts, and how many rows they hold.
fn parquet_reports(parts: &[(String, Vec<u8>)]) -> (BTreeSet<u64>, usize) {
    let mut xs = BTreeSet::new();
    let mut rows = 0;
    for (_, bytes) in parts {
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            bytes::Bytes::from(bytes.clone()),
        )
        .unwrap()
        .build()
        .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            rows += batch.num_rows();
            let x = batch
                .column_by_name("x")
                .unwrap()
                .as_any()
                .downcast_ref::<Float64Array>()
                .unwrap();
            xs.extend(x.values().iter().map(|x| x.to_bits()));
        }
    }
    (xs, rows)
}

/// The generation part of `parquet/date=D/part-<generation>-<n>.parquet`.
fn generation(key: &str) -> &str {
    let name = key.rsplit('/').next().unwrap();
    name.strip_prefix("part-")
        .unwrap()
        .split('-')
        .next()
        .unwrap()
}

#[test]
fn three_replicas_on_one_bucket_store_once_and_merge_once() {
    let Some(moto) = Moto::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), CONFIG).unwrap();
    let replicas: Vec<Served> = (0..REPLICAS).map(|_| replica(dir.path(), &moto)).collect();
    let urls: Vec<String> = replicas.iter().map(|r| r.url("")).collect();
    let week = recent_week();

    // Every report to every replica at once.
    let first: Arc<Vec<Report>> = Arc::new((0..150).map(|i| nth_report(week, i)).collect());
    let answers = upload_everywhere(&urls, &first);
    assert_eq!(answers.len(), first.len() * REPLICAS);
    assert!(
        answers.iter().all(|(status, _)| *status == 200),
        "{answers:?}"
    );
    let stored = answers.iter().filter(|(_, a)| a == "stored\n").count();
    assert_eq!(
        stored,
        first.len(),
        "each report stored by exactly one replica"
    );
    let keys = moto.keys(&format!("{PREFIX}/uploaded/"));
    assert_eq!(keys.len(), first.len(), "{keys:?}");
    for report in first.iter() {
        let key = format!("{PREFIX}/uploaded/{week}/{:?}.json", report.x);
        // Whole: the object is the report, parsed back equal.
        let object = Report::parse(&moto.get(&key)).unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(&object, report);
    }

    // Two merges at the same moment, then one alone: the same outputs, byte for byte.
    let outs = finish(vec![
        merge_command(&moto, Some(week)).spawn().unwrap(),
        merge_command(&moto, Some(week)).spawn().unwrap(),
    ]);
    let line = format!("{week}: merged {} reports\n", first.len());
    assert_eq!(outs, [line.clone(), line.clone()]);
    let at_once = outputs(&moto, week);
    assert_eq!(
        at_once.merged.iter().filter(|&&b| b == b'\n').count(),
        first.len()
    );
    let (xs, _) = parquet_reports(&at_once.parquet);
    assert_eq!(xs.len(), first.len());
    assert_eq!(
        finish(vec![merge_command(&moto, Some(week)).spawn().unwrap()]),
        [line]
    );
    assert_eq!(outputs(&moto, week), at_once);
    assert!(moto.keys(&format!("{PREFIX}/locks/")).is_empty());

    // Reports keep arriving while two merges of every unmerged day run: whatever
    // each merge listed, the day is left with the outputs of one listing. (Without
    // the merge lock, each merge deleted the other's Parquet generation about one
    // round in three, or left the charts of one listing beside the other's file.)
    let mut sent = first.len();
    for _round in 0..3 {
        let more: Arc<Vec<Report>> =
            Arc::new((sent..sent + 50).map(|i| nth_report(week, i)).collect());
        sent += more.len();
        let uploading = {
            let urls = urls.clone();
            std::thread::spawn(move || upload_everywhere(&urls, &more))
        };
        let merging: Vec<Child> = (0..2)
            .map(|_| merge_command(&moto, None).spawn().unwrap())
            .collect();
        let answers = uploading.join().unwrap();
        assert!(
            answers.iter().all(|(status, _)| *status == 200),
            "{answers:?}"
        );
        finish(merging);
        let during = outputs(&moto, week);
        let charts: telemetry_server::DaySummary = serde_json::from_slice(&during.charts).unwrap();
        let merged_lines = during.merged.iter().filter(|&&b| b == b'\n').count() as u64;
        let (xs, _) = parquet_reports(&during.parquet);
        assert_eq!(charts.objects, charts.reports);
        assert_eq!(
            (merged_lines, xs.len() as u64),
            (charts.reports, charts.reports)
        );
        let generations: BTreeSet<&str> =
            during.parquet.iter().map(|(k, _)| generation(k)).collect();
        assert_eq!(generations.len(), 1, "{generations:?}");
    }

    // Now a merge takes every report, once.
    finish(vec![merge_command(&moto, None).spawn().unwrap()]);
    let all = outputs(&moto, week);
    let (xs, _) = parquet_reports(&all.parquet);
    assert_eq!(xs.len(), sent);
    assert_eq!(all.merged.iter().filter(|&&b| b == b'\n').count(), sent);
    assert_eq!(
        all.parquet
            .iter()
            .map(|(k, _)| generation(k))
            .collect::<BTreeSet<_>>()
            .len(),
        1
    );
    assert!(moto.keys(&format!("{PREFIX}/locks/")).is_empty());
    drop(replicas);
}

/// The Parquet part files of `week` under file storage `data`, with their bytes.
fn local_parts(data: &std::path::Path, week: Day) -> Vec<(String, Vec<u8>)> {
    let dir = data.join(format!("parquet/date={week}"));
    files_under(&dir)
        .into_iter()
        .map(|name| {
            let bytes = std::fs::read(dir.join(&name)).unwrap();
            (name, bytes)
        })
        .collect()
}

#[test]
fn a_re_merge_replaces_the_days_parquet_parts() {
    let server = TestServer::start();
    let merge = || {
        server
            .runtime
            .block_on(telemetry_server::merge(&server.storage, Some(week())))
            .unwrap()
    };
    for i in 0..3 {
        assert_eq!(server.upload(&nth_report(week(), i)).0, 200);
    }
    merge();
    let first = local_parts(&server.data(), week());
    assert_eq!(first.len(), 1);
    // A part of some other generation, and a file that is not a part.
    let dir = server.data().join(format!("parquet/date={}", week()));
    std::fs::write(dir.join("part-0000000000000000-00000.parquet"), b"old").unwrap();
    std::fs::write(dir.join("README"), b"not ours").unwrap();
    assert_eq!(server.upload(&nth_report(week(), 3)).0, 200);
    merge();
    let second = local_parts(&server.data(), week());
    let names: Vec<&str> = second.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"README"));
    let parts: Vec<(String, Vec<u8>)> = second.into_iter().filter(|(n, _)| n != "README").collect();
    assert_ne!(parts[0].0, first[0].0, "a new generation");
    assert_eq!(parquet_reports(&parts).0.len(), 4);
    // Merged again unchanged: the same names, the same bytes.
    merge();
    let again: Vec<(String, Vec<u8>)> = local_parts(&server.data(), week())
        .into_iter()
        .filter(|(n, _)| n != "README")
        .collect();
    assert_eq!(again, parts);
}

#[test]
fn a_merge_waits_for_a_live_merge_lock_and_takes_over_a_dead_ones() {
    let server = TestServer::start();
    assert_eq!(server.upload(&nth_report(week(), 0)).0, 200);
    let locks = server.data().join(format!("locks/merge/{}", week()));
    std::fs::create_dir_all(&locks).unwrap();
    let lock = locks.join(format!("{:020}", 7));
    std::fs::write(&lock, b"pid 1\n").unwrap();

    // Held (just written): `merge` waits, and goes on once it is given back.
    let mut merging = Command::new(BIN)
        .args([
            "merge",
            "--log-format",
            "text",
            "--storage",
            &file_url(&server.data()),
        ])
        .args(["--date", &week().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(merging.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("waiting for another merge of the day") {
        line.clear();
        let read = std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
        assert!(read > 0, "merge ended without waiting");
    }
    assert!(
        !server
            .data()
            .join(format!("charts/{}.json", week()))
            .exists()
    );
    std::fs::remove_file(&lock).unwrap();
    assert_eq!(
        finish(vec![merging]),
        [format!("{}: merged 1 reports\n", week())]
    );

    // Not rewritten for longer than the lease: its holder died; taken over.
    std::fs::write(&lock, b"pid 1\n").unwrap();
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&lock)
        .unwrap()
        .set_modified(an_hour_ago)
        .unwrap();
    assert_eq!(server.upload(&nth_report(week(), 1)).0, 200);
    let merged = server
        .runtime
        .block_on(telemetry_server::merge(&server.storage, None))
        .unwrap();
    assert_eq!(merged[0].reports, 2);
    assert_eq!(
        files_under(&locks),
        Vec::<String>::new(),
        "the dead holder's lock is gone"
    );
}
