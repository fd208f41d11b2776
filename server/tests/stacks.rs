//! Crash stacks at the collector, through the real binary: a small Rust program is
//! built unstripped (non-PIE, so its functions' run-time addresses are their link-time
//! ones), its symbols stored with `symbols add` from its split debug file (its
//! stripped copy refused), a report with its frames spelled raw
//! (`<build-id>+0x<addr>`, as a stripped build records them) and the same crash named
//! by the build itself are uploaded to `serve` on 127.0.0.1, merged, and shown by the
//! API, the Crashes page and `stacks`: one stack, named exactly as
//! `telemetry_counter::stack_name` names it on the user's machine. Claims by
//! predicates, conflicts, and a bad stacks config (refused at start, the last good one
//! kept on reload).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use telemetry_counter::stack_name::{finish_crash_stack, frame};
use telemetry_internal::Day;
use telemetry_upload::{ProgramReport, testing};

/// The build ID the test program is linked with.
const BUILD_ID: &str = "0123456789abcdef0123456789abcdef01234567";

const PROGRAM: &str = r#"
mod parse {
    #[inline(never)]
    pub fn input(x: u64) -> u64 {
        std::hint::black_box(x).wrapping_mul(3).rotate_left(5) ^ std::hint::black_box(7)
    }
}
pub struct Parser;
impl Parser {
    #[inline(never)]
    pub fn run(&self) -> u64 {
        parse::input(std::hint::black_box(2)) + parse::input(std::hint::black_box(3))
    }
}
fn main() {
    println!(
        "{:x} {:x} {:x}",
        parse::input as fn(u64) -> u64 as usize,
        Parser::run as fn(&Parser) -> u64 as usize,
        std::process::abort as fn() -> ! as usize,
    );
    std::hint::black_box(Parser.run());
}
"#;

const CONFIG: &str = r#"{
    "OS": ["linux"], "Arch": ["x86_64"], "Toolchain": ["1.95.0"], "SampleRate": 1,
    "Programs": [{"Name": "stacktool", "Versions": ["1.0.0", "1.1.0"],
        "Counters": [{"Name": "stacktool/runs", "Rate": 1}],
        "Stacks": [{"Name": "crash/panic", "Rate": 1, "Depth": 32},
                   {"Name": "crash/signal:SIGSEGV", "Rate": 1, "Depth": 32},
                   {"Name": "stacktool/<b>bug</b>", "Rate": 1, "Depth": 16}]}]
}"#;

/// The test program, built into `dir`, and the link-time addresses of
/// `stacktool::parse::input`, `<stacktool::Parser>::run` and `std::process::abort`.
fn build_program(dir: &Path) -> (PathBuf, [u64; 3]) {
    let source = dir.join("stacktool.rs");
    std::fs::write(&source, PROGRAM).unwrap();
    let binary = dir.join("stacktool");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let built = output_within_20s(
        Command::new(rustc)
            .args(["--crate-name", "stacktool", "--edition", "2021"])
            // Not position-independent: run-time addresses are link-time addresses.
            .args(["-C", "relocation-model=static"])
            // v0 names the method `<stacktool::Parser>::run`, which frames spell
            // `stacktool::Parser::run`.
            .args(["-C", "symbol-mangling-version=v0"])
            .arg("-C")
            .arg(format!("link-arg=-Wl,--build-id=0x{BUILD_ID}"))
            .arg(&source)
            .arg("-o")
            .arg(&binary),
    );
    assert!(built.status.success(), "{built:?}");
    let ran = output_within_20s(&mut Command::new(&binary));
    assert!(ran.status.success(), "{ran:?}");
    let text = String::from_utf8(ran.stdout).unwrap();
    let addrs: Vec<u64> = text
        .split_whitespace()
        .map(|a| u64::from_str_radix(a, 16).unwrap())
        .collect();
    (binary, addrs.try_into().unwrap())
}

fn raw(addr: u64) -> String {
    format!("{BUILD_ID}+{addr:#x}")
}

fn stacktool(version: &str, stacks: &[(&str, u64)]) -> ProgramReport {
    testing::program_report("stacktool", version)
        .with_counters(&[("stacktool/runs", 1)])
        .with_stacks(stacks)
}

fn recent_week() -> Day {
    Day::of(std::time::SystemTime::now()).plus(-2)
}

fn upload(served: &Served, x: f64, program: ProgramReport) {
    let report = testing::report(&recent_week().to_string(), x, vec![program]);
    let (status, body) = post(
        &served.url(&format!("/upload/{}", report.week)),
        &serde_json::to_vec(&report).unwrap(),
    );
    assert_eq!(status, 200, "{body}");
}

fn run(args: &[&str], storage: &str) -> String {
    let output = output_within_20s(Command::new(BIN).args(args).args(["--storage", storage]));
    assert!(output.status.success(), "{args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

fn api(served: &Served) -> serde_json::Value {
    let since = recent_week().plus(-7);
    let (status, body) = get(&served.url(&format!("/api/stacks?since={since}")));
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn stack_texts(answer: &serde_json::Value) -> Vec<String> {
    answer["Stacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["Stack"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_stripped_builds_raw_frames_are_named_from_uploaded_symbols_into_the_builds_own_stack() {
    let dir = tempfile::tempdir().unwrap();
    let (binary, [input, run_fn, abort]) = build_program(dir.path());
    std::fs::write(dir.path().join("config.json"), CONFIG).unwrap();
    let storage = file_url(&dir.path().join("data"));
    let served = start_served(dir.path());

    // What the tool writes: the stripped build raw (panic: from the first recorded
    // frame, libc and std included; a fault: the faulting instruction first), the
    // unstripped build named and finished by the shared rule.
    let raw_panic = [
        "?+0x0".to_owned(),
        raw(abort + 5),
        raw(input + 8),
        raw(run_fn + 5),
        "?+0x0".to_owned(),
    ]
    .join("\n");
    let raw_segv = [raw(input + 4), raw(run_fn + 5)].join("\n");
    let panic = finish_crash_stack(
        "crash/panic",
        &[
            None,
            Some(frame("std::process::abort", 5)),
            Some(frame("stacktool::parse::input", 8)),
            Some(frame("<stacktool::Parser>::run", 5)),
            None,
        ],
    );
    let segv = finish_crash_stack(
        "crash/signal:SIGSEGV",
        &[
            Some(frame("stacktool::parse::input", 4)),
            Some(frame("<stacktool::Parser>::run", 5)),
        ],
    );
    assert_eq!(
        panic,
        "crash/panic\nstacktool::parse::input+0x8\nstacktool::Parser::run+0x5\n?+0x0"
    );
    upload(
        &served,
        0.25,
        stacktool(
            "1.0.0",
            &[
                (&format!("crash/panic\n{raw_panic}"), 2),
                (&format!("crash/signal:SIGSEGV\n{raw_segv}"), 1),
            ],
        ),
    );
    upload(&served, 0.5, stacktool("1.1.0", &[(&panic, 3)]));
    let merged = run(&["merge"], &storage);
    assert!(merged.contains("merged 2 reports"), "{merged}");

    // No symbols yet: the raw stacks stay as uploaded, apart from the named one.
    let before = api(&served);
    let texts = stack_texts(&before);
    assert_eq!(texts.len(), 3, "{before:#}");
    assert!(
        texts.contains(&format!("crash/panic\n{raw_panic}")),
        "{texts:?}"
    );
    let raw_rows = before["Stacks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["Raw"] == true)
        .count();
    assert_eq!(raw_rows, 2, "{before:#}");

    // The stripped executable has nothing to give: a one-line error.
    let stripped = dir.path().join("stacktool-stripped");
    telemetry_test_support::stripped_copy(&binary, &stripped);
    let refused = output_within_20s(
        Command::new(BIN)
            .args(["symbols", "add", "--storage", &storage])
            .arg(&stripped),
    );
    assert!(!refused.status.success());
    let stderr = String::from_utf8(refused.stderr).unwrap();
    assert!(
        stderr.contains("it has no function symbols (stripped?)"),
        "{stderr}"
    );

    // The vendor stores the build's symbols from its split debug file, as the
    // unstripped executable would give them.
    let debug = dir.path().join("stacktool.debug");
    let status = Command::new("objcopy")
        .arg("--only-keep-debug")
        .arg(&binary)
        .arg(&debug)
        .status()
        .expect("run objcopy (binutils)");
    assert!(status.success());
    let from_binary = telemetry_server::read_symbol_file(&std::fs::read(&binary).unwrap()).unwrap();
    let from_debug = telemetry_server::read_symbol_file(&std::fs::read(&debug).unwrap()).unwrap();
    assert_eq!(from_debug[0].table, from_binary[0].table);
    let added = run(&["symbols", "add", debug.to_str().unwrap()], &storage);
    assert!(
        added.starts_with(&format!("{BUILD_ID}  elf x86_64  ")),
        "{added}"
    );
    assert!(added.contains("  stacktool.debug  added "), "{added}");
    let listed = run(&["symbols", "list"], &storage);
    assert_eq!(listed, added);

    // Shown at once, named with the stored symbols: one panic stack for both builds.
    let after = api(&served);
    let texts = stack_texts(&after);
    assert_eq!(texts.len(), 2, "{after:#}");
    let panic_row = after["Stacks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Prefix"] == "crash/panic")
        .unwrap();
    assert_eq!(panic_row["Stack"], panic.as_str());
    assert_eq!(panic_row["Id"], telemetry_server::stack_id(&panic).as_str());
    assert_eq!(panic_row["Count"], 5);
    assert_eq!(panic_row["Reports"], 2);
    assert_eq!(panic_row["Raw"], false);
    assert_eq!(
        panic_row["Programs"]["stacktool"],
        serde_json::json!(["1.0.0", "1.1.0"])
    );
    assert_eq!(panic_row["Platforms"], serde_json::json!(["linux/x86_64"]));
    assert_eq!(panic_row["FirstWeek"], recent_week().to_string().as_str());
    assert_eq!(panic_row["Status"], "Unclaimed");
    assert!(texts.contains(&segv), "{texts:?}");
    // The dashboard's top stacks too, the two forms summed.
    let (_, dashboard) = get(&served.url("/"));
    assert!(
        dashboard.contains(&format!(
            "<td class=\"n\">5</td><td class=\"n\">2</td><td><pre>{panic}</pre>"
        )),
        "{dashboard}"
    );
    assert!(!dashboard.contains(BUILD_ID), "{dashboard}");

    // The next merge redoes the day (its raw frames now have symbols): the merged
    // lines and the dashboard's chart data are named too.
    let merged = run(&["merge"], &storage);
    assert!(merged.contains("merged 2 reports"), "{merged}");
    let day = std::fs::read_to_string(
        dir.path()
            .join(format!("data/merged/{}.json", recent_week())),
    )
    .unwrap();
    assert!(!day.contains(BUILD_ID), "{day}");
    let charts = std::fs::read_to_string(
        dir.path()
            .join(format!("data/charts/{}.json", recent_week())),
    )
    .unwrap();
    let charts: telemetry_server::DaySummary = serde_json::from_str(&charts).unwrap();
    assert_eq!(charts.programs["stacktool"].stacks[&panic].count, 5);
    assert_eq!(run(&["merge"], &storage), "", "nothing left to merge");

    // The page shows the named frames, and links to it from the dashboard.
    let (status, page) = get(&served.url("/crashes"));
    assert_eq!(status, 200);
    assert!(
        page.contains("stacktool::parse::input+0x8\nstacktool::Parser::run+0x5"),
        "{page}"
    );
    assert!(page.contains(&format!("id=\"{}\"", telemetry_server::stack_id(&panic))));
    assert!(get(&served.url("/")).1.contains("href=\"/crashes\""));

    // `stacks` prints the same list.
    let since = recent_week().plus(-7).to_string();
    let printed = run(&["stacks", "--since", &since, "--format", "json"], &storage);
    let printed: serde_json::Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(printed["Stacks"], after["Stacks"]);
    let markdown = run(&["stacks", "--since", &since], &storage);
    assert!(
        markdown.contains(&format!(
            "### Stack `{}`: `crash/panic` (unclaimed)",
            telemetry_server::stack_id(&panic)
        )),
        "{markdown}"
    );
    assert!(markdown.contains("- predicate: `\"crash/panic\" && \"stacktool::parse::input+0x\"`"));
}

#[test]
fn a_file_without_symbols_or_build_id_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let storage = file_url(&dir.path().join("data"));
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not an executable").unwrap();
    let output = output_within_20s(
        Command::new(BIN)
            .args(["symbols", "add", "--storage", &storage])
            .arg(&text),
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.starts_with("telemetry-server: no symbols taken from ")
            && stderr.contains("not an ELF, Mach-O or PE"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(run(&["symbols", "list"], &storage), "");
}

fn claims_file(dir: &Path, claims: &str) -> PathBuf {
    let path = dir.join("stacks.json");
    std::fs::write(&path, claims).unwrap();
    path
}

const CLAIMS: &str = r#"[
    {"Issue": "https://example.com/stacktool/issues/1", "Predicate": "\"crash/panic\" && \"stacktool::parse+0x\""},
    {"Issue": "https://example.com/stacktool/issues/2", "Predicate": "\"SIGSEGV\" && \"stacktool@1.1.0\""},
    {"Issue": "https://example.com/stacktool/issues/3", "Predicate": "\"SIGSEGV\" && (\"linux/\" || \"macos/\") && !\"windows\""}
]"#;

#[test]
fn stacks_are_claimed_by_predicates_and_conflicts_are_shown() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), CONFIG).unwrap();
    let claims = claims_file(dir.path(), CLAIMS);
    let mut command = serve_command(dir.path());
    command.arg("--stacks-config").arg(&claims);
    let mut served = Served::spawn(command);
    let storage = file_url(&dir.path().join("data"));
    let hostile = "stacktool/<b>bug</b>\n<img src=x onerror=alert(1)>+0x1";
    upload(
        &served,
        0.25,
        stacktool(
            "1.1.0",
            &[
                (
                    "crash/panic\nstacktool::parse+0x1f\nstacktool::main+0x10",
                    4,
                ),
                ("crash/signal:SIGSEGV\nstacktool::read+0x2", 1),
                (hostile, 1),
            ],
        ),
    );
    run(&["merge"], &storage);

    assert_eq!(get(&served.url("/api/stacks?since=2026-13-01")).0, 400);
    assert_eq!(get(&served.url("/crashes?since=yesterday")).0, 400);
    let answer = api(&served);
    let rows = answer["Stacks"].as_array().unwrap();
    let status: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r["Prefix"].as_str().unwrap(), r["Status"].as_str().unwrap()))
        .collect();
    // Unclaimed and conflicting first.
    assert_eq!(
        status,
        [
            ("stacktool/<b>bug</b>", "Unclaimed"),
            ("crash/signal:SIGSEGV", "Conflict"),
            ("crash/panic", "Claimed")
        ]
    );
    assert_eq!(
        rows[1]["Issues"],
        serde_json::json!([
            "https://example.com/stacktool/issues/2",
            "https://example.com/stacktool/issues/3"
        ])
    );
    let (_, page) = get(&served.url("/crashes"));
    assert!(page.contains(
        "<a href=\"https://example.com/stacktool/issues/1\">https://example.com/stacktool/issues/1</a>"
    ));
    assert!(
        page.contains("<span class=\"conflict\">conflict</span>"),
        "{page}"
    );
    assert!(!page.contains("<img"), "{page}");
    assert!(
        page.contains("&lt;img src=x onerror=alert(1)&gt;+0x1"),
        "{page}"
    );
    assert!(page.contains("stacktool/&lt;b&gt;bug&lt;/b&gt;"), "{page}");

    // A bad predicate on reload: logged with its entry, the last good claims kept.
    let skip = served.seen.len();
    std::fs::write(
        &claims,
        r#"[{"Issue": "https://example.com/stacktool/issues/9", "Predicate": "\"crash/panic\" &&"}]"#,
    )
    .unwrap();
    let line = served.wait_for_log_after(skip, "stacks config not reloaded");
    assert!(line.contains("entry 1"), "{line}");
    assert_eq!(api(&served)["Stacks"], answer["Stacks"]);

    // A good one is taken.
    std::fs::write(
        &claims,
        r#"[{"Issue": "https://example.com/stacktool/issues/9", "Predicate": "\"crash/\""}]"#,
    )
    .unwrap();
    let mut rows = serde_json::Value::Null;
    let loaded = telemetry_test_support::wait_until(Duration::from_secs(20), || {
        rows = api(&served)["Stacks"].clone();
        let claimed = rows
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                r["Issues"] == serde_json::json!(["https://example.com/stacktool/issues/9"])
            })
            .count();
        claimed == 2
    });
    assert!(loaded, "the new claims were not loaded: {rows:#}");

    // At start, a bad stacks config is a one-line error naming the entry.
    let bad = claims_file(
        dir.path(),
        r#"[{"Issue": "https://x/1", "Predicate": "\"a\""}, {"Issue": "https://x/2", "Predicate": "(\"a\""}]"#,
    );
    let mut refused = serve_command(dir.path());
    refused.arg("--stacks-config").arg(&bad);
    let output = output_within_20s(&mut refused);
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    let last = stderr.lines().last().unwrap();
    assert!(
        last.starts_with("telemetry-server: the stacks config ")
            && last.contains("entry 2 (\"https://x/2\")")
            && last.contains("expected `)`"),
        "{stderr}"
    );
}
