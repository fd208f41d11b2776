//! `POST /upload/<date>` against a real collector on 127.0.0.1: what is stored, and
//! every kind of bad input, each refused with a one-line reason and nothing stored.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::*;
use telemetry_internal::Day;
use telemetry_test_support::eventually;

fn assert_rejected(server: &TestServer, (status, body): (u16, String), wanted: &str) {
    assert_eq!(status, 400, "{body}");
    assert!(body.contains(wanted), "{body:?} does not say {wanted:?}");
    assert_eq!(body.lines().count(), 1, "one line: {body:?}");
    assert_eq!(
        files_under(&server.data()),
        Vec::<String>::new(),
        "nothing stored"
    );
}

#[test]
fn an_approved_report_is_stored_once() {
    let server = TestServer::start();
    let report = report(week(), 0.25);
    let (status, body) = server.upload(&report);
    assert_eq!((status, body.as_str()), (200, "stored\n"));
    // The client did not see our answer and sends it again.
    let (status, body) = server.upload(&report);
    assert_eq!((status, body.as_str()), (200, "already stored\n"));
    assert_eq!(
        files_under(&server.data()),
        ["uploaded/2026-11-20/0.25.json"]
    );
    let stored = std::fs::read(server.data().join("uploaded/2026-11-20/0.25.json")).unwrap();
    let stored = telemetry_upload::Report::parse(&stored).unwrap();
    assert_eq!(stored.programs[0].counters["mytool/runs"], 3);
    // A second report of the same week is another object.
    assert_eq!(server.upload(&common::report(week(), 0.5)).0, 200);
    assert_eq!(files_under(&server.data()).len(), 2);
}

#[test]
fn the_same_report_sent_at_once_from_many_connections_is_stored_once() {
    let server = TestServer::start();
    let body = json(&report(week(), 0.375));
    let url = server.url("/upload/2026-11-20");
    let answers: Vec<(u16, String)> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..8).map(|_| scope.spawn(|| post(&url, &body))).collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert!(
        answers.iter().all(|(status, _)| *status == 200),
        "{answers:?}"
    );
    let stored = answers
        .iter()
        .filter(|(_, body)| body == "stored\n")
        .count();
    assert_eq!(stored, 1, "{answers:?}");
    // One object, and no staging file left behind by the losers.
    assert_eq!(
        files_under(&server.data()),
        ["uploaded/2026-11-20/0.375.json"]
    );
}

#[test]
fn reports_from_go_uploaders_are_accepted() {
    let server = TestServer::start_with(|_| {});
    std::fs::write(
        &server.config_file,
        r#"{"GOOS": ["linux"], "GOARCH": ["amd64"], "GoVersion": ["go1.23.0"], "SampleRate": 1,
            "Programs": [{"Name": "cmd/go", "Versions": ["go1.23.0"],
            "Counters": [{"Name": "go/invocations", "Rate": 1}]}]}"#,
    )
    .unwrap();
    wait_for(|| server.get("/config.json").1.contains("GOOS"));
    let go = r#"{"Week": "2026-11-20", "LastWeek": "", "X": 0.125, "Config": "v0.0.1",
        "Programs": [{"Program": "cmd/go", "Version": "go1.23.0", "GoVersion": "go1.23.0",
        "GOOS": "linux", "GOARCH": "amd64", "Counters": {"go/invocations": 3}, "Stacks": {}}]}"#;
    let (status, body) = server.post("/upload/2026-11-20", go.as_bytes());
    assert_eq!((status, body.as_str()), (200, "stored\n"));
}

#[test]
fn garbage_and_truncated_bodies_are_refused() {
    let server = TestServer::start();
    let good = json(&report(week(), 0.25));
    for (body, wanted) in [
        (&b""[..], "not a report"),
        (b"garbage", "not a report"),
        (b"[]", "not a report"),
        (b"{}", "not a report"),
        (b"\xff\xfe{", "not a report"),
        (&good[..good.len() / 2], "not a report"),
        (&good[..good.len() - 1], "not a report"),
    ] {
        assert_rejected(&server, server.post("/upload/2026-11-20", body), wanted);
    }
    // Numbers that are not counts.
    let negative = String::from_utf8(good.clone())
        .unwrap()
        .replace(":3", ":-3");
    assert_rejected(
        &server,
        server.post("/upload/2026-11-20", negative.as_bytes()),
        "not a report",
    );
}

#[test]
fn oversized_bodies_are_refused_declared_or_not() {
    let server = TestServer::start_with(|c| c.max_body_bytes = 64 * 1024);
    // Declared too long: refused before the body is read.
    let answer = raw(
        server.addr,
        b"POST /upload/2026-11-20 HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status_of(&answer), 400, "{answer}");
    assert!(
        answer.contains("larger than the limit of 65536 bytes"),
        "{answer}"
    );
    // Chunked, so only counting shows it: a valid report padded with spaces.
    let mut big = json(&report(week(), 0.25));
    big.extend(std::iter::repeat_n(b' ', 70 * 1024));
    let mut request = b"POST /upload/2026-11-20 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for chunk in big.chunks(8192) {
        request.extend(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend(chunk);
        request.extend(b"\r\n");
    }
    request.extend(b"0\r\n\r\n");
    let answer = raw(server.addr, &request);
    assert_eq!(status_of(&answer), 400, "{answer}");
    assert!(answer.contains("larger than the limit"), "{answer}");
    assert_eq!(files_under(&server.data()), Vec::<String>::new());
    // Just under the limit is fine.
    let mut fits = json(&report(week(), 0.25));
    fits.extend(std::iter::repeat_n(b' ', 60 * 1024));
    assert_eq!(server.post("/upload/2026-11-20", &fits).0, 200);
}

#[test]
fn paths_that_are_not_a_date_are_refused() {
    let server = TestServer::start();
    let body = json(&report(week(), 0.25));
    for path in [
        "/upload/..",
        "/upload/../../etc/passwd",
        "/upload/%2e%2e%2f%2e%2e%2fetc",
        "/upload/2026-11-20/..",
        "/upload/2026-11-20/extra",
        "/upload/2026-13-01",
        "/upload/2026-11-20%00",
        "/upload/yesterday",
        "/upload/",
    ] {
        let answer = raw(
            server.addr,
            &[
                format!(
                    "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
                &body,
            ]
            .concat(),
        );
        assert_eq!(status_of(&answer), 400, "{path}: {answer}");
        assert!(answer.contains("is not a date"), "{path}: {answer}");
    }
    assert_eq!(files_under(&server.data()), Vec::<String>::new());
    assert_eq!(
        files_under(server.dir.path()),
        ["config.json"],
        "nothing written anywhere"
    );
}

#[test]
fn unapproved_contents_are_refused_by_the_uploaders_rule() {
    let server = TestServer::start();
    let mut counter = report(week(), 0.25);
    counter.programs[0]
        .counters
        .insert("mytool/secret".into(), 1);
    assert_rejected(
        &server,
        server.upload(&counter),
        "counter \"mytool/secret\" is not approved",
    );

    let mut bucket = report(week(), 0.25);
    bucket.programs[0]
        .counters
        .insert("mytool/flag:yaml".into(), 1);
    assert_rejected(
        &server,
        server.upload(&bucket),
        "\"mytool/flag:yaml\" is not approved",
    );

    let mut stack = report(week(), 0.25);
    stack.programs[0]
        .stacks
        .insert("mytool/other\nmain.rs:1".into(), 1);
    assert_rejected(
        &server,
        server.upload(&stack),
        "counter \"mytool/other\\nmain.rs:1\" is not approved",
    );

    let mut as_counter = report(week(), 0.25);
    as_counter.programs[0]
        .counters
        .insert("mytool/bug\nmain.rs:1".into(), 1);
    assert_rejected(&server, server.upload(&as_counter), "is not approved");

    for (field, value) in [
        ("program", "othertool"),
        ("version", "9.9.9"),
        ("toolchain", "nightly"),
        ("os", "windows"),
        ("arch", "riscv64"),
    ] {
        let mut build = report(week(), 0.25);
        let p = &mut build.programs[0];
        match field {
            "program" => p.program = value.into(),
            "version" => p.version = value.into(),
            "toolchain" => p.toolchain = value.into(),
            "os" => p.os = value.into(),
            _ => p.arch = value.into(),
        }
        assert_rejected(
            &server,
            server.upload(&build),
            "on its platform is not in the upload config",
        );
    }

    // Approved at a rate of 0.1: only in reports whose X is at most that, as the
    // uploader itself would have kept it.
    let mut rare = report(week(), 0.25);
    rare.programs[0].counters.insert("mytool/rare".into(), 1);
    assert_rejected(
        &server,
        server.upload(&rare),
        "counter \"mytool/rare\" is not approved",
    );
    rare.x = 0.0625;
    assert_eq!(server.upload(&rare).0, 200);
    std::fs::remove_file(server.data().join("uploaded/2026-11-20/0.0625.json")).unwrap();

    let mut empty = report(week(), 0.25);
    empty.programs[0].counters.clear();
    assert_rejected(&server, server.upload(&empty), "no counters");
}

#[test]
fn weeks_and_x_are_checked() {
    let server = TestServer::start();
    let r = report(week(), 0.25);
    // The URL says one week, the report another.
    assert_rejected(
        &server,
        server.post("/upload/2026-11-19", &json(&r)),
        "is not the date in the URL, 2026-11-19",
    );
    let mut bad_week = report(week(), 0.25);
    bad_week.week = "last week".into();
    assert_rejected(
        &server,
        server.post("/upload/2026-11-20", &json(&bad_week)),
        "Week \"last week\"",
    );
    // Today is 2026-11-23: 23 days back is the oldest accepted, tomorrow the latest.
    let old = Day::parse("2026-10-30").unwrap();
    assert_rejected(&server, server.upload(&report(old, 0.25)), "too old");
    assert_eq!(
        server
            .upload(&report(Day::parse("2026-10-31").unwrap(), 0.25))
            .0,
        200
    );
    assert_eq!(
        server
            .upload(&report(Day::parse("2026-11-24").unwrap(), 0.25))
            .0,
        200
    );
    // A week not ended by our clock is not a bad report: 425 Too Early, with how
    // long until it is welcome (the day before it ends, for clocks a little fast).
    for (future, days) in [("2026-11-25", 1), ("2026-11-30", 6)] {
        let (status, headers, body) = post_with_headers(
            &server.url(&format!("/upload/{future}")),
            &json(&report(Day::parse(future).unwrap(), 0.25)),
        );
        assert_eq!(status, 425, "{future}: {body}");
        assert_eq!(body, format!("week {future} has not ended yet\n"));
        let retry_after: u64 = header(&headers, "retry-after").parse().unwrap();
        assert!(
            (days - 1) * 86_400 < retry_after && retry_after <= days * 86_400,
            "{future}: Retry-After {retry_after}"
        );
    }
    for x in [0.0, -0.5, 1.5] {
        let (status, body) = server.upload(&report(week(), x));
        assert_eq!(status, 400, "{x}");
        assert!(body.contains("is not in (0, 1]"), "{body}");
    }
    assert_eq!(server.upload(&report(week(), 1.0)).0, 200);
    assert_eq!(
        files_under(&server.data()),
        [
            "uploaded/2026-10-31/0.25.json",
            "uploaded/2026-11-20/1.0.json",
            "uploaded/2026-11-24/0.25.json"
        ]
    );
}

#[test]
fn a_slow_body_times_out_and_stores_nothing() {
    let server = TestServer::start_with(|c| c.read_timeout = Duration::from_millis(500));
    let body = json(&report(week(), 0.25));
    let started = Instant::now();
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "POST /upload/2026-11-20 HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(&body[..10]).unwrap();
    let mut answer = String::new();
    let _ = std::io::Read::read_to_string(&mut stream, &mut answer);
    assert_eq!(status_of(&answer), 408, "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(files_under(&server.data()), Vec::<String>::new());
}

#[test]
fn slow_headers_are_cut_off() {
    let server = TestServer::start_with(|c| c.read_timeout = Duration::from_millis(500));
    let started = Instant::now();
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
        .write_all(b"POST /upload/2026-11-20 HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = std::io::Read::read_to_end(&mut stream, &mut answer);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(400) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.is_empty() || status_of(&answer) == 408, "{answer}");
    // The server still serves others.
    assert_eq!(server.get("/healthz"), (200, "ok\n".to_owned()));
}

#[test]
fn unwritable_storage_is_503_and_nothing_half_written() {
    let server = TestServer::start();
    // `uploaded` is a file, so no report can be stored under it (root ignores
    // permission bits, so a read-only directory would not do).
    std::fs::write(server.data().join("uploaded"), "not a directory").unwrap();
    let (status, body) = server.upload(&report(week(), 0.25));
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("nothing was stored"), "{body}");
    assert_eq!(files_under(&server.data()), ["uploaded"]);
    // Once storage works again, the retried report is stored.
    std::fs::remove_file(server.data().join("uploaded")).unwrap();
    assert_eq!(server.upload(&report(week(), 0.25)).0, 200);
}

#[test]
fn health_config_and_unknown_paths() {
    let server = TestServer::start();
    assert_eq!(server.get("/healthz"), (200, "ok\n".to_owned()));
    let (status, headers, body) = get_with_headers(&server.url("/config.json"));
    assert_eq!(status, 200);
    assert_eq!(body, CONFIG, "served byte for byte");
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "content-type" && v == "application/json")
    );
    assert_eq!(server.get("/nothing-here").0, 404);
    assert_eq!(server.get("/upload/2026-11-20").0, 405);
    // A tool whose upload URL lacks /upload is told where reports go.
    let (status, body) = server.post("/2026-11-20", &json(&report(week(), 0.25)));
    assert_eq!(status, 404);
    assert_eq!(
        body,
        "not found: reports are posted to /upload/YYYY-MM-DD\n"
    );
}

#[test]
fn config_changes_are_picked_up_and_bad_ones_ignored() {
    // Listening before the server starts, so that it logs from its first event.
    server_log();
    let server = TestServer::start();
    let mut runs = report(week(), 0.25);
    runs.programs[0].counters.insert("mytool/new".into(), 1);
    assert_eq!(server.upload(&runs).0, 400);

    let approving_new = CONFIG.replace(
        "\"mytool/runs\"",
        "\"mytool/new\", \"Rate\": 1}, {\"Name\": \"mytool/runs\"",
    );
    std::fs::write(&server.config_file, &approving_new).unwrap();
    wait_for(|| server.get("/config.json").1 == approving_new);
    assert_eq!(server.upload(&runs).0, 200);

    // A broken file is not served nor used; the last good one stays. The server says
    // so once it has read it.
    let skip = server_log().lock().unwrap().len();
    std::fs::write(&server.config_file, "{\"SampleRate\": ").unwrap();
    let path = server.config_file.display().to_string();
    wait_for(|| {
        logged_since(skip)
            .lines()
            .any(|l| l.contains("keeping the old one") && l.contains(&path))
    });
    assert_eq!(server.get("/config.json").1, approving_new);
    assert_eq!(server.upload(&report(week(), 0.5)).0, 200);
}

#[test]
fn a_bad_config_at_start_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    std::fs::write(&config, "{\"Programs\": 3}").unwrap();
    let storage = telemetry_server::Storage::open(&file_url(&dir.path().join("data")), []).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let err = runtime
        .block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            telemetry_server::serve(
                listener,
                telemetry_server::ServeConfig::new(&config, storage),
                async {},
            )
            .await
        })
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("is not valid"), "{message}");
    assert_eq!(message.lines().count(), 1);
    let missing = dir.path().join("missing.json");
    let storage = telemetry_server::Storage::open(&file_url(&dir.path().join("data")), []).unwrap();
    let err = runtime
        .block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            telemetry_server::serve(
                listener,
                telemetry_server::ServeConfig::new(&missing, storage),
                async {},
            )
            .await
        })
        .unwrap_err();
    assert!(
        err.to_string().contains("cannot read the upload config"),
        "{err}"
    );
}

#[test]
fn a_report_whose_counts_are_all_zero_is_refused() {
    let server = TestServer::start();
    let mut zeros = report(week(), 0.25);
    zeros.programs[0].counters = [("mytool/runs".to_owned(), 0)].into();
    zeros.programs[0]
        .stacks
        .insert("mytool/bug\nmain.rs:1".into(), 0);
    assert_rejected(&server, server.upload(&zeros), "no counters above 0");
    // One count above 0 is enough; the zeros beside it are harmless.
    zeros.programs[0]
        .counters
        .insert("mytool/flag:json".into(), 1);
    assert_eq!(server.upload(&zeros).0, 200);
}

#[test]
fn a_counter_named_twice_is_refused() {
    let server = TestServer::start();
    let body = |counters: &str, stacks: &str| {
        format!(
            r#"{{"Week": "2026-11-20", "X": 0.25, "Programs": [{{"Program": "mytool", "Version": "1.0.0",
            "Toolchain": "1.95.0", "OS": "linux", "Arch": "x86_64",
            "Counters": {{{counters}}}, "Stacks": {{{stacks}}}}}]}}"#
        )
    };
    for (counters, stacks, twice) in [
        (r#""mytool/runs": 1, "mytool/runs": 2"#, "", "mytool/runs"),
        (
            r#""mytool/runs": 1, "mytool/flag:json": 1, "mytool/runs": 1"#,
            "",
            "mytool/runs",
        ),
        (
            r#""mytool/runs": 1"#,
            r#""mytool/bug\nf": 1, "mytool/bug\nf": 1"#,
            "mytool/bug\\nf",
        ),
    ] {
        let (status, answer) = server.post("/upload/2026-11-20", body(counters, stacks).as_bytes());
        assert_rejected(&server, (status, answer.clone()), "appears twice");
        assert!(answer.contains(twice), "{answer}");
    }
    assert_eq!(
        server
            .post(
                "/upload/2026-11-20",
                body(r#""mytool/runs": 1"#, "").as_bytes()
            )
            .0,
        200
    );
}

#[test]
fn uploads_past_the_receiving_budget_are_told_to_come_back() {
    let server = TestServer::start_with(|c| c.max_receiving_bytes = 4096);
    // A client that declares 4000 bytes and stalls holds most of the budget.
    let mut stalled = TcpStream::connect(server.addr).unwrap();
    stalled
        .write_all(b"POST /upload/2026-11-20 HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\n\r\n{")
        .unwrap();
    // Until the server has taken that connection's request, a report may still fit.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut x = 0.5;
    let (status, headers, body) = loop {
        x /= 2.0;
        let answer =
            post_with_headers(&server.url("/upload/2026-11-20"), &json(&report(week(), x)));
        if answer.0 != 200 {
            break answer;
        }
        assert!(Instant::now() < deadline, "the budget never ran out");
    };
    assert_eq!(status, 503, "{body}");
    assert_eq!(body.lines().count(), 1, "{body}");
    assert!(body.contains("nothing was stored"), "{body}");
    assert_eq!(header(&headers, "retry-after"), "60");
    let stored = files_under(&server.data());
    assert!(!stored.contains(&format!("uploaded/2026-11-20/{x:?}.json")));

    // A chunked body takes budget as it comes: past it, the same answer.
    let mut request = b"POST /upload/2026-11-20 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    request.extend(format!("{:x}\r\n", 2048).as_bytes());
    request.extend([b' '; 2048]);
    request.extend(b"\r\n0\r\n\r\n");
    let answer = raw(server.addr, &request);
    assert_eq!(status_of(&answer), 503, "{answer}");

    // Once the stalled client goes, its budget comes back.
    drop(stalled);
    let mut status = 0;
    wait_for(|| {
        status = server.upload(&report(week(), 0.75)).0;
        status == 200
    });
}

/// Waits (at most 10 s) for what a test asked of the server to show.
fn wait_for(condition: impl FnMut() -> bool) {
    eventually(
        Duration::from_secs(10),
        "the server to get there",
        condition,
    );
}

/// What the in-process servers of this test binary log: a subscriber installed once,
/// writing into memory, so that a test can wait for the line that says the server
/// did what it asked.
fn server_log() -> Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Arc::new(Mutex::new(Vec::new()));
        let writer = Arc::clone(&log);
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || LogWriter(Arc::clone(&writer)))
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other subscriber in this test binary");
        log
    })
    .clone()
}

/// The lines [`server_log`] holds past its first `skip` bytes.
fn logged_since(skip: usize) -> String {
    let log = server_log();
    let bytes = log.lock().unwrap_or_else(|e| e.into_inner());
    String::from_utf8_lossy(bytes.get(skip..).unwrap_or_default()).into_owned()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut log = self.0.lock().unwrap_or_else(|e| e.into_inner());
        log.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
