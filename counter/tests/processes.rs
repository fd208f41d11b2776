//! Counting from several processes and threads into one file, and everything that
//! can go wrong around the file, each scenario in a fresh process: the counter file
//! is process-wide state, so scenarios must not share a process.
//!
//! Each test re-runs itself in a child process with a scenario's name as its role
//! (`telemetry_test_support::child`); in the child the test's first line plays the
//! scenario ([`scenario`]) instead of the test's own part.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use std::time::Duration;

use telemetry_counter::{Counter, OpenStatus, program, read_file, testing};
#[cfg(unix)]
use telemetry_test_support::wait_until;
use telemetry_test_support::{child, eventually};

const DIR: &str = "TELEMETRY_COUNTER_TEST_DIR";
const ARG: &str = "TELEMETRY_COUNTER_TEST_ARG";

/// The calling test, re-run in a child process that plays `scenario` in `dir`.
fn command(scenario: &str, dir: &Path, arg: &str) -> Command {
    let mut cmd = child::command(scenario);
    cmd.env(DIR, dir).env(ARG, arg).env_remove("DO_NOT_TRACK");
    cmd
}

/// Runs `scenario` in a child process and returns what it printed.
fn run(scenario: &str, dir: &Path, arg: &str, env: &[(&str, Option<&str>)]) -> String {
    let mut cmd = command(scenario, dir, arg);
    for (key, value) in env {
        match value {
            Some(v) => cmd.env(key, v),
            None => cmd.env_remove(key),
        };
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "scenario {scenario} failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // The harness prints around the scenario; what the scenario says follows `> `.
    stdout
        .lines()
        .find_map(|l| l.split_once("> ").map(|(_, said)| said))
        .unwrap_or_default()
        .to_owned()
}

/// Starts `scenario` without waiting, so that several run at once.
fn spawn(scenario: &str, dir: &Path, arg: &str) -> Child {
    command(scenario, dir, arg)
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

fn wait_all(children: Vec<Child>) {
    for mut child in children {
        let status = child.wait().unwrap();
        assert!(status.success(), "child failed: {status}");
    }
}

/// The one counter file in `dir`'s `local/`.
fn only_file(dir: &Path) -> PathBuf {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("local"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".v1.count"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files.pop().unwrap()
}

fn all_paths(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path.clone());
            }
            out.push(path);
        }
    }
    out
}

// ---- the scenarios, run in the child ----------------------------------------------

static HITS: Counter = Counter::new("test/hits");
static EARLY: Counter = Counter::new("test/early");
static BIG: Counter = Counter::new("test/big");

const THREADS: usize = 4;
const PER_THREAD: u64 = 100_000;
const NAMES_PER_PROCESS: usize = 50_000;
const SHARED_NAMES: usize = 5_000;

fn open_counting(dir: &Path) {
    let status = telemetry_counter::open_dir(dir, program!());
    assert!(matches!(status, OpenStatus::Counting(_)), "{status:?}");
}

/// What a child process of a test does: the scenario named by its role, in the
/// directory [`DIR`] names, with the argument [`ARG`] gives. Only ever run in a child
/// (every test starts with `child::play_role(scenario)`); what it has to say it prints
/// after `> `.
#[allow(clippy::print_stdout)] // What the child prints is what the parent reads.
fn scenario(scenario: &str) {
    let dir = PathBuf::from(std::env::var_os(DIR).unwrap());
    let arg = std::env::var(ARG).unwrap_or_default();
    match scenario {
        "threads" => {
            open_counting(&dir);
            std::thread::scope(|s| {
                for _ in 0..THREADS {
                    s.spawn(|| {
                        for _ in 0..PER_THREAD {
                            HITS.inc();
                        }
                    });
                }
            });
        }
        "names" => {
            open_counting(&dir);
            for i in 0..NAMES_PER_PROCESS {
                telemetry_counter::inc(&format!("test/{arg}/{i}"));
                if i % 10 == 0 {
                    telemetry_counter::inc(&format!("test/shared/{}", i / 10));
                }
            }
        }
        "pending" => {
            EARLY.add(7);
            telemetry_counter::inc("test/early-dynamic");
            open_counting(&dir);
            EARLY.inc();
            assert_eq!(testing::read(&EARLY), 8);
        }
        "in-memory" => {
            // Whatever is wrong with the dir, counting goes on in memory.
            let status = match arg.as_str() {
                "default-dir" => telemetry_counter::open(program!()),
                _ => telemetry_counter::open_dir(&dir, program!()),
            };
            HITS.add(3);
            telemetry_counter::inc("test/dynamic");
            assert_eq!(testing::read(&HITS), 3);
            assert_eq!(testing::read_named("test/dynamic"), 1);
            println!("> {status:?}");
        }
        "first-count" => {
            // Opened by the first count, not before; told once, then never again.
            let told = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            let tell = |told: &std::sync::Arc<std::sync::Mutex<Vec<String>>>| {
                let told = told.clone();
                move |opened: telemetry_counter::Opened| {
                    told.lock().unwrap().push(format!(
                        "{} {:?}",
                        opened.created,
                        opened.status.path()
                    ));
                }
            };
            let program = program!();
            let ambient = telemetry_internal::Ambient::from_process();
            let dir = telemetry_internal::Dir::new(&dir);
            let mode = telemetry_internal::Mode::Local;
            telemetry_counter::open_with_mode_at_first_count(
                &dir,
                program.clone(),
                mode,
                &ambient,
                tell(&told),
            );
            assert!(!dir.local().exists(), "nothing made before the first count");
            assert!(told.lock().unwrap().is_empty());
            HITS.inc();
            let path = testing::current_file().expect("counting into a file");
            assert_eq!(
                *told.lock().unwrap(),
                [format!("true {:?}", Some(&path))],
                "told once, with the file made"
            );
            HITS.inc();
            telemetry_counter::inc("test/dynamic");
            assert_eq!(told.lock().unwrap().len(), 1);
            // An open before the next first count wins; the one put off is forgotten.
            let other = telemetry_internal::Dir::new(PathBuf::from(&arg));
            telemetry_counter::open_with_mode_at_first_count(
                &other,
                program.clone(),
                mode,
                &ambient,
                tell(&told),
            );
            open_counting(dir.root());
            telemetry_counter::inc("test/after-the-open");
            assert_eq!(told.lock().unwrap().len(), 1);
            assert!(!other.local().exists(), "the forgotten open made nothing");
            println!("> {}", path.display());
        }
        "first-count-hostile" => {
            // The put-off open meets what an open at once meets: the first count
            // neither hangs nor follows the file, and counting stays in memory.
            let told = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
            let tell = told.clone();
            telemetry_counter::open_with_mode_at_first_count(
                &telemetry_internal::Dir::new(&dir),
                program!(),
                telemetry_internal::Mode::Local,
                &telemetry_internal::Ambient::from_process(),
                move |opened| *tell.lock().unwrap() = format!("{:?}", opened.status),
            );
            HITS.add(3);
            assert_eq!(testing::read(&HITS), 3);
            println!("> {}", told.lock().unwrap());
        }
        "saturate" => {
            open_counting(&dir);
            BIG.add(u64::MAX - 1);
            BIG.add(5);
            BIG.inc();
            assert_eq!(testing::read(&BIG), u64::MAX);
        }
        "long-names" => {
            open_counting(&dir);
            let longest = "x".repeat(telemetry_counter::MAX_NAME_LEN);
            let too_long = "y".repeat(telemetry_counter::MAX_NAME_LEN + 1);
            telemetry_counter::add(&longest, 2);
            telemetry_counter::add(&too_long, 3);
            assert_eq!(testing::read_named(&too_long), 3, "kept in memory");
        }
        #[cfg(target_os = "linux")]
        "threads-started" => {
            let threads = || std::fs::read_dir("/proc/self/task").unwrap().count();
            let before = threads();
            open_counting(&dir);
            HITS.inc();
            assert_eq!(threads(), before, "open_dir starts no thread");
            let status = telemetry_counter::open_and_rotate(&dir, program!());
            assert!(matches!(status, OpenStatus::Counting(_)), "{status:?}");
            telemetry_counter::open_and_rotate(&dir, program!());
            assert_eq!(
                threads(),
                before + 1,
                "open_and_rotate starts one thread, once"
            );
            HITS.inc();
            assert_eq!(testing::read(&HITS), 2);
        }
        "truncate" => {
            // Threads count into every page while another process cuts the file to
            // `arg` bytes: each access to a cut page faults with SIGBUS, which must
            // not kill us (golang/go#74651).
            open_counting(&dir);
            let path = testing::current_file().unwrap();
            let counters: Vec<&'static Counter> = (0..2_000)
                .map(|i| {
                    let name: &'static str = Box::leak(format!("test/t/{i}").into_boxed_str());
                    &*Box::leak(Box::new(Counter::new(name)))
                })
                .collect();
            counters.iter().for_each(|c| c.inc());
            let stop = std::sync::atomic::AtomicBool::new(false);
            // Rounds over every counter, all threads together.
            let done = std::sync::atomic::AtomicUsize::new(0);
            let done_now = || done.load(std::sync::atomic::Ordering::Relaxed);
            std::thread::scope(|s| {
                for _ in 0..THREADS {
                    s.spawn(|| {
                        let mut rounds = 0;
                        while !stop.load(std::sync::atomic::Ordering::Relaxed) && rounds < 100_000 {
                            counters.iter().for_each(|c| c.inc());
                            rounds += 1;
                            done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    });
                }
                eventually(Duration::from_secs(20), "the threads to count", || {
                    done_now() >= THREADS
                });
                let status = Command::new("truncate")
                    .args(["-s", &arg])
                    .arg(&path)
                    .status()
                    .unwrap();
                assert!(status.success());
                // More rounds after the cut than there are threads: one thread
                // finished two, so a whole round began after the cut and touched
                // every cut page.
                let at_cut = done_now();
                eventually(Duration::from_secs(20), "rounds after the cut", || {
                    done_now() > at_cut + THREADS
                });
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
            });
            // New names after the cut: the file is damaged, so they stay in memory.
            for i in 0..500 {
                telemetry_counter::inc(&format!("test/after/{i}"));
            }
            assert_eq!(testing::read_named("test/after/499"), 1);
            println!("> survived");
        }
        "full-disk" => {
            // Far more new names than the file system has room for.
            let status = telemetry_counter::open_dir(&dir, program!());
            for i in 0..3_000 {
                telemetry_counter::inc(&format!("test/full-disk/name-{i:05}"));
            }
            for i in (0..3_000).step_by(97) {
                let name = format!("test/full-disk/name-{i:05}");
                assert_eq!(testing::read_named(&name), 1, "{name}");
            }
            println!("> {}", status.path().is_some());
        }
        #[cfg(unix)]
        "umask-0" => {
            // SAFETY: umask takes an integer and cannot fail.
            unsafe { libc::umask(0) };
            open_counting(&dir);
            HITS.inc();
        }
        "rotate-off" => {
            let status = telemetry_counter::open_and_rotate(&dir, program!());
            assert!(matches!(status, OpenStatus::Counting(_)), "{status:?}");
            std::fs::write(dir.join("mode"), "off\n").unwrap();
            std::fs::remove_file(dir.join("local/weekends")).unwrap();
            let tomorrow = telemetry_internal::today().next_day().unwrap();
            let rotated = testing::rotate(tomorrow);
            assert!(rotated.is_none(), "{rotated:?}");
            assert!(!dir.join("local/weekends").exists(), "mode off wrote");
        }
        "rotate-follows" => {
            let status = telemetry_counter::open_and_rotate(&dir, program!());
            assert!(matches!(status, OpenStatus::Counting(_)), "{status:?}");
            let b = PathBuf::from(&arg);
            open_counting(&b);
            let today = telemetry_internal::today();
            let rotated = testing::rotate(today);
            assert!(rotated.is_none(), "nothing to do today: {rotated:?}");
            assert!(testing::current_file().unwrap().starts_with(&b));
            let tomorrow = today.next_day().unwrap();
            let rotated = testing::rotate(tomorrow).expect("a new day, a new file");
            let path = rotated.path().expect("counting").to_owned();
            assert!(path.starts_with(&b), "rotated back to {path:?}");
            HITS.inc();
            println!("> {}", path.display());
        }
        #[cfg(unix)]
        "closed-stdio" => {
            // A daemon that closed its stdio: the counter file must not become its
            // stdin, stdout or stderr.
            let open_low = || {
                (0..3)
                    // SAFETY: F_GETFD on a descriptor number only reads its flags.
                    .filter(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0)
                    .count()
            };
            // SAFETY: close takes integers; nothing in this process uses fds 0-2 now.
            unsafe {
                libc::close(0);
                libc::close(1);
                libc::close(2);
            }
            let status = telemetry_counter::open_dir(&dir, program!());
            HITS.inc();
            let low = open_low();
            if status.path().is_none() || low != 0 {
                std::process::exit(3);
            }
        }
        #[cfg(unix)]
        "foreign-sigbus" => {
            // A SIGBUS outside our mappings is not ours to repair: it must reach the
            // previous handler (std's, which restores the default) and kill.
            open_counting(&dir);
            HITS.inc();
            let path = dir.join("other-mapping");
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .unwrap();
            file.set_len(4096).unwrap();
            // SAFETY: none for the read below, on purpose: the file is cut under the
            // mapping, so reading it faults with SIGBUS, which is the test.
            let map = unsafe { memmap2::Mmap::map(&file).unwrap() };
            file.set_len(0).unwrap();
            let byte = std::hint::black_box(&map[..])[100];
            println!("> survived {byte}");
        }
        "chain" => {
            // Computed once by the harness: finding names for one bucket takes a while
            // in a debug build.
            let names = std::fs::read_to_string(dir.join("names")).unwrap();
            let mut names: Vec<&str> = names.lines().collect();
            // Each process starts at another name, so that at any moment several
            // processes create different names in the one chain, each growing the
            // file, while the others walk it.
            let index: usize = arg.parse().unwrap();
            names.rotate_left(index * CHAIN_NAMES / CHAIN_PROCESSES);
            let go = dir.join("go");
            eventually(Duration::from_secs(20), "the go file", || go.exists());
            open_counting(&dir);
            for _ in 0..CHAIN_PASSES {
                for name in &names {
                    telemetry_counter::inc(name);
                }
            }
        }
        #[cfg(unix)]
        "cut-and-rebuilt" => {
            // Process P of the sequence in `a_repaired_page_never_takes_a_new_record`.
            open_counting(&dir);
            let path = testing::current_file().unwrap();
            for i in 0..REBUILT_NAMES {
                telemetry_counter::inc(&format!("test/p/{i:02}"));
            }
            // Someone truncates the file to nothing.
            let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            file.set_len(0).unwrap();
            // P touches a late record: SIGBUS, and a private zero page in its place.
            telemetry_counter::inc(&format!("test/p/{:02}", REBUILT_NAMES - 1));
            // Process Q opens the empty file, rewrites the header and counts.
            let q = command("count-names", &dir, "q").output().unwrap();
            assert!(q.status.success(), "{q:?}");
            // P counts a new name (in a hash chain that Q's names left empty, so
            // that nothing but the allocation stops it).
            telemetry_counter::inc(&arg);
            assert_eq!(testing::read_named(&arg), 1, "kept in memory");
            // And P counts its old names again. Their records were at the offsets
            // where Q's now are, in pages P still shares with Q: P's cached pointers
            // must not land there.
            for i in 0..REBUILT_NAMES {
                telemetry_counter::inc(&format!("test/p/{i:02}"));
            }
            println!("> survived");
        }
        "count-names" => {
            open_counting(&dir);
            for i in 0..REBUILT_NAMES {
                telemetry_counter::inc(&format!("test/{arg}/{i:02}"));
            }
        }
        #[cfg(target_os = "linux")]
        "sent-sigbus" => {
            // A handler installed before the library's: where a SIGBUS that is not a
            // fault must go.
            // SAFETY: `previous_sigbus` has the SA_SIGINFO signature; the sigaction
            // is zeroed and its mask emptied before use.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = previous_sigbus as *const () as usize;
                action.sa_flags = libc::SA_SIGINFO;
                libc::sigemptyset(&mut action.sa_mask);
                assert_eq!(
                    libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()),
                    0
                );
            }
            open_counting(&dir);
            HITS.add(5);
            // The first page of the counter file's mapping holds HITS's record.
            let path = testing::current_file().unwrap();
            let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
            let line = maps
                .lines()
                .find(|l| l.ends_with(path.to_str().unwrap()))
                .unwrap();
            let start = usize::from_str_radix(line.split('-').next().unwrap(), 16).unwrap();
            println!("> {} {:#x}", std::process::id(), start + 100);
            eventually(
                Duration::from_secs(20),
                "the previous handler to run",
                || SENT_SIGBUS_CODE.load(std::sync::atomic::Ordering::SeqCst) != 0,
            );
            assert_eq!(testing::read(&HITS), 5, "the counter page was zeroed");
            HITS.inc();
            let code = SENT_SIGBUS_CODE.load(std::sync::atomic::Ordering::SeqCst);
            println!("> previous handler saw si_code {code}");
        }
        other => panic!("unknown scenario {other}"),
    }
}

/// What the handler installed before the library's saw: the signal's `si_code`
/// (never 0 for a queued signal), or 0 while it has not run.
#[cfg(target_os = "linux")]
static SENT_SIGBUS_CODE: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

#[cfg(target_os = "linux")]
extern "C" fn previous_sigbus(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel's siginfo for this handler.
    let code = unsafe { (*info).si_code };
    SENT_SIGBUS_CODE.store(code, std::sync::atomic::Ordering::SeqCst);
}

/// Names each process counts in the cut-and-rebuilt sequence.
const REBUILT_NAMES: usize = 100;

/// The v1 format's hash bucket of `name`: FNV-1a, folded, modulo the 512 slots.
#[cfg(unix)]
fn bucket(name: &str) -> u32 {
    let h = fnv(2_166_136_261, name.as_bytes());
    (h ^ (h >> 16)) % 512
}

fn fnv(mut h: u32, bytes: &[u8]) -> u32 {
    for &b in bytes {
        h = (h ^ u32::from(b)).wrapping_mul(16_777_619);
    }
    h
}

const CHAIN_NAMES: usize = 800;
const CHAIN_PASSES: u64 = 3;
const CHAIN_PROCESSES: usize = 10;
const CHAIN_ROUNDS: usize = 5;
/// The hash bucket every contention name falls into.
const CHAIN_BUCKET: u32 = 77;

/// Long names (300 to 900 bytes, so that the file grows a page every 20 to 50 records)
/// that all hash to [`CHAIN_BUCKET`]: every creation races for one chain head.
fn chain_names() -> Vec<String> {
    (0..CHAIN_NAMES)
        .map(|i| {
            let base = format!("test/chain/{i:04}/{}", "y".repeat(500 + (i % 11) * 150));
            let h = fnv(2_166_136_261, base.as_bytes());
            let suffix = (0u32..)
                .map(|j| format!("{j:06x}"))
                .find(|s| {
                    let h = fnv(h, s.as_bytes());
                    (h ^ (h >> 16)) % 512 == CHAIN_BUCKET
                })
                .unwrap();
            base + &suffix
        })
        .collect()
}

// ---- the tests, run by the harness ------------------------------------------------

#[test]
fn processes_and_threads_count_exactly() {
    if child::play_role(scenario) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let children = (0..3).map(|_| spawn("threads", tmp.path(), "")).collect();
    wait_all(children);
    let file = read_file(only_file(tmp.path())).unwrap();
    assert_eq!(file.count["test/hits"], 3 * THREADS as u64 * PER_THREAD);
}

/// Two processes racing to add names, and to add the same names: every name ends up in
/// exactly one record (the parser rejects duplicates) with the exact total, while both
/// extend the file over hundreds of pages.
#[test]
fn processes_racing_to_add_names() {
    if child::play_role(scenario) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    wait_all(vec![
        spawn("names", tmp.path(), "a"),
        spawn("names", tmp.path(), "b"),
    ]);
    let path = only_file(tmp.path());
    let file = read_file(&path).unwrap();
    for process in ["a", "b"] {
        for i in 0..NAMES_PER_PROCESS {
            let name = format!("test/{process}/{i}");
            assert_eq!(file.count.get(&name), Some(&1), "{name}");
        }
    }
    for i in 0..SHARED_NAMES {
        assert_eq!(file.count[&format!("test/shared/{i}")], 2);
    }
    assert_eq!(file.count.len(), 2 * NAMES_PER_PROCESS + SHARED_NAMES);
    let pages = std::fs::metadata(&path).unwrap().len() / (16 * 1024);
    assert!(pages > 100, "extended over many pages: {pages}");
}

/// Many processes creating the same long names, all in one hash chain, at once: each
/// creation races for the chain head while the file grows a page every few records,
/// so walks keep meeting records past the end of their mapping. A race is not
/// corruption: every count must be exact, in every round (a walk retried only once lost
/// increments in one round in five).
#[test]
fn processes_racing_on_one_hash_chain() {
    if child::play_role(scenario) {
        return;
    }
    let names = chain_names();
    for round in 0..CHAIN_ROUNDS {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("names"), names.join("\n")).unwrap();
        let children = (0..CHAIN_PROCESSES)
            .map(|i| spawn("chain", tmp.path(), &i.to_string()))
            .collect();
        std::fs::write(tmp.path().join("go"), "").unwrap();
        wait_all(children);
        let file = read_file(only_file(tmp.path())).unwrap();
        let want = CHAIN_PROCESSES as u64 * CHAIN_PASSES;
        let wrong: Vec<_> = names
            .iter()
            .enumerate()
            .filter(|(_, n)| file.count.get(*n) != Some(&want))
            .map(|(i, n)| (i, file.count.get(n).copied()))
            .collect();
        assert!(
            wrong.is_empty(),
            "round {round}: want {want} of each, got {wrong:?}"
        );
        assert_eq!(file.count.len(), CHAIN_NAMES);
    }
}

#[test]
fn counts_before_open_move_into_the_file() {
    if child::play_role(scenario) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    run("pending", tmp.path(), "", &[]);
    let file = read_file(only_file(tmp.path())).unwrap();
    assert_eq!(file.count["test/early"], 8);
    assert_eq!(file.count["test/early-dynamic"], 1);
}

/// Go's rotation timer ran in every program and broke deadlock detection
/// (golang/go#68497); ours is a thread that only `open_and_rotate` starts.
#[cfg(target_os = "linux")]
#[test]
fn only_open_and_rotate_starts_a_thread() {
    if child::play_role(scenario) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    run("threads-started", tmp.path(), "", &[]);
}

/// An open put off until the first count makes nothing before it, counts every
/// increment after it, tells its caller once, and gives way to an open that comes
/// first.
#[test]
fn an_open_put_off_happens_at_the_first_count() {
    if child::play_role(scenario) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let path = run(
        "first-count",
        tmp.path(),
        other.path().to_str().unwrap(),
        &[],
    );
    let file = read_file(&path).unwrap();
    assert_eq!(file.count["test/hits"], 2);
    assert_eq!(file.count["test/dynamic"], 1);
    assert_eq!(file.count["test/after-the-open"], 1);
}

/// Under mode `off` the rotation thread must not write `local/weekends` again.
#[test]
fn rotation_under_mode_off_writes_nothing() {
    if child::play_role(scenario) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    run("rotate-off", tmp.path(), "", &[]);
}

/// After `open_and_rotate(a)` and `open_dir(b)`, rotation must keep counting in `b`,
/// never switch back to `a` on its next wake.
#[test]
fn rotation_follows_the_last_opened_dir() {
    if child::play_role(scenario) {
        return;
    }
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let path = run("rotate-follows", a.path(), b.path().to_str().unwrap(), &[]);
    let file = read_file(&path).unwrap();
    assert_eq!(file.count["test/hits"], 1);
}

#[test]
fn mode_off_writes_nothing() {
    if child::play_role(scenario) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("mode"), "off\n").unwrap();
    let status = run("in-memory", tmp.path(), "", &[]);
    assert_eq!(status, "Off");
    assert_eq!(all_paths(tmp.path()), vec![tmp.path().join("mode")]);
}

#[test]
fn do_not_track_writes_nothing() {
    if child::play_role(scenario) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let status = run("in-memory", tmp.path(), "", &[("DO_NOT_TRACK", Some("1"))]);
    assert_eq!(status, "Off");
    assert!(all_paths(tmp.path()).is_empty());
}

#[test]
fn unwritable_dir_counts_in_memory() {
    if child::play_role(scenario) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // A plain file where a directory must go: fails even for root.
    let blocker = tmp.path().join("not-a-dir");
    std::fs::write(&blocker, "").unwrap();
    let status = run("in-memory", &blocker.join("telemetry"), "", &[]);
    assert!(status.starts_with("InMemory(Io"), "{status}");
}

#[test]
fn no_home_means_no_dir() {
    if child::play_role(scenario) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let unset = [("HOME", None), ("XDG_CONFIG_HOME", None), ("APPDATA", None)];
    let status = run("in-memory", tmp.path(), "default-dir", &unset);
    assert_eq!(status, "InMemory(NoDefaultDir)");
    assert!(all_paths(tmp.path()).is_empty());
}

#[test]
fn saturates_at_max() {
    if child::play_role(scenario) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    run("saturate", tmp.path(), "", &[]);
    let file = read_file(only_file(tmp.path())).unwrap();
    assert_eq!(file.count["test/big"], u64::MAX);
}

#[test]
fn names_up_to_4_kib() {
    if child::play_role(scenario) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    run("long-names", tmp.path(), "", &[]);
    let file = read_file(only_file(tmp.path())).unwrap();
    assert_eq!(file.count[&"x".repeat(4096)], 2);
    assert_eq!(
        file.count.len(),
        1,
        "the 4097-byte name stays out of the file"
    );
}

/// A file system with room for a few pages only. CI runs as root, so this mounts a
/// real one; elsewhere the test is skipped (and says so), but never under CI.
#[cfg(target_os = "linux")]
struct TinyFs(tempfile::TempDir);

#[cfg(target_os = "linux")]
impl TinyFs {
    fn mount(size: &str) -> Option<TinyFs> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        telemetry_test_support::Tool::TMPFS
            .available(mounted)
            .then(|| TinyFs(dir))
    }
}

#[cfg(target_os = "linux")]
impl Drop for TinyFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

/// A full disk: a counter file grown sparse would raise SIGBUS at the first write into
/// a new page on a full file system and kill the host (exit 135). Blocks are allocated
/// when the file grows; when that fails, counting goes on in memory.
#[cfg(target_os = "linux")]
#[test]
fn full_disk_counts_in_memory() {
    if child::play_role(scenario) {
        return;
    }
    let Some(fs) = TinyFs::mount("96k") else {
        return;
    };
    let dir = fs.0.path().join("telemetry");
    let opened = run("full-disk", &dir, "", &[]);
    assert_eq!(opened, "true", "the file opened before the disk filled up");
    let file = read_file(only_file(&dir)).unwrap();
    assert!(
        file.count.len() < 3_000,
        "the disk cannot hold them all: {}",
        file.count.len()
    );
    assert!(file.count.values().all(|&n| n == 1));
}

/// Another process truncates the file under counting threads: the host must live.
/// Unix only: Windows refuses to shorten a mapped file (`ERROR_USER_MAPPED_FILE`), so
/// the damage cannot happen there.
#[cfg(unix)]
#[test]
fn truncated_under_counting_threads() {
    if child::play_role(scenario) {
        return;
    }
    for size in ["0", "20000"] {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(run("truncate", tmp.path(), size, &[]), "survived", "{size}");
    }
}

/// The fault handler repairs only faults inside counter mappings; any other SIGBUS
/// goes on to the handler before it and kills as it would have.
#[cfg(unix)]
#[test]
fn foreign_sigbus_still_kills() {
    if child::play_role(scenario) {
        return;
    }
    use std::os::unix::process::ExitStatusExt;
    let tmp = tempfile::tempdir().unwrap();
    let out = command("foreign-sigbus", tmp.path(), "").output().unwrap();
    assert_eq!(out.status.signal(), Some(libc::SIGBUS), "{:?}", out.status);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("> survived"));
}

/// The sequence that lost a week for every process: P counts 100 names; the file is
/// truncated to nothing; P touches a late record (SIGBUS, repaired with a private
/// zero page); Q opens the empty file, rewrites the header and counts 100 names; P
/// counts a new name. P's new record went at the shared allocation limit, into its
/// private page, and was linked into the shared chain: every reader then failed with
/// "bad record at offset …". After a repair P places no record: the new name counts
/// in memory. P's old counters, counted again, must not add to Q's records that
/// now sit where P's were: the file holds exactly Q's counts.
#[cfg(unix)]
#[test]
fn a_repaired_page_never_takes_a_new_record() {
    if child::play_role(scenario) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let q_buckets: std::collections::HashSet<u32> = (0..REBUILT_NAMES)
        .map(|i| bucket(&format!("test/q/{i:02}")))
        .collect();
    let new_name = (0..)
        .map(|j| format!("test/p/new-{j}"))
        .find(|name| !q_buckets.contains(&bucket(name)))
        .unwrap();
    let said = run("cut-and-rebuilt", tmp.path(), &new_name, &[]);
    assert_eq!(said, "survived");
    let file = read_file(only_file(tmp.path())).unwrap();
    let want: std::collections::BTreeMap<String, u64> = (0..REBUILT_NAMES)
        .map(|i| (format!("test/q/{i:02}"), 1))
        .collect();
    assert_eq!(file.count, want);
}

/// A SIGBUS that another process sends (`sigqueue`, here its system call, which
/// lets the sender fill in the fault address) naming a live counter page is not a
/// fault: the page must not be replaced by a zero page (the process's counts through
/// it would vanish), and the signal goes to the handler installed before ours.
#[cfg(target_os = "linux")]
#[test]
fn a_sent_sigbus_is_not_repaired() {
    if child::play_role(scenario) {
        return;
    }
    use std::io::BufRead;
    let tmp = tempfile::tempdir().unwrap();
    let mut child = command("sent-sigbus", tmp.path(), "")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let said = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.split_once("> ").map(|(_, said)| said.to_owned()))
        .expect("the child names its page");
    let (pid, addr) = said.split_once(' ').unwrap();
    let pid: libc::pid_t = pid.parse().unwrap();
    let addr = usize::from_str_radix(addr.trim_start_matches("0x"), 16).unwrap();
    // siginfo as `sigqueue` sends it (SI_QUEUE), with a forged fault address where
    // a fault's siginfo holds it: 16 bytes in, on 64-bit Linux.
    let mut info = [0u64; 16];
    info[0] = libc::SIGBUS as u32 as u64; // si_signo, then si_errno 0
    info[1] = libc::SI_QUEUE as u32 as u64; // si_code, then padding
    info[2] = addr as u64; // the union: si_addr for a fault
    // SAFETY: rt_sigqueueinfo reads 128 bytes of siginfo from `info`.
    let sent =
        unsafe { libc::syscall(libc::SYS_rt_sigqueueinfo, pid, libc::SIGBUS, info.as_ptr()) };
    assert_eq!(sent, 0, "{}", std::io::Error::last_os_error());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}: {rest:?}");
    assert!(
        rest.iter()
            .any(|l| l.contains("> previous handler saw si_code -1")),
        "{rest:?}"
    );
    let file = read_file(only_file(tmp.path())).unwrap();
    assert_eq!(file.count["test/hits"], 6);
}

/// Today's counter file, which must not be followed, opened or waited on when it is
/// a symlink, a FIFO or a directory: counting goes on in memory.
#[cfg(unix)]
#[test]
fn hostile_counter_files_mean_in_memory() {
    if child::play_role(scenario) {
        return;
    }
    let today = telemetry_internal::today();
    let name = telemetry_counter::file_name(&program!(), today);
    let hostile = |make: &dyn Fn(&Path)| {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("local")).unwrap();
        make(&tmp.path().join("local").join(&name));
        let status = run_within("in-memory", tmp.path(), "", 20);
        (tmp, status)
    };
    let victim = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(victim.path(), "precious").unwrap();
    let (_tmp, status) = hostile(&|p| std::os::unix::fs::symlink(victim.path(), p).unwrap());
    assert!(status.starts_with("InMemory(Io"), "symlink: {status}");
    assert_eq!(std::fs::read_to_string(victim.path()).unwrap(), "precious");

    let (_tmp, status) = hostile(&|p| {
        let made = Command::new("mkfifo").arg(p).status().unwrap();
        assert!(made.success());
    });
    assert!(status.starts_with("InMemory("), "fifo: {status}");

    let (_tmp, status) = hostile(&|p| std::os::unix::fs::symlink("/dev/zero", p).unwrap());
    assert!(status.starts_with("InMemory("), "device: {status}");

    let (_tmp, status) = hostile(&|p| std::fs::create_dir(p).unwrap());
    assert!(status.starts_with("InMemory("), "directory: {status}");

    // The same, with the open put off until the first count.
    let put_off = |make: &dyn Fn(&Path)| {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("local")).unwrap();
        make(&tmp.path().join("local").join(&name));
        run_within("first-count-hostile", tmp.path(), "", 20)
    };
    let status = put_off(&|p| std::os::unix::fs::symlink(victim.path(), p).unwrap());
    assert!(
        status.starts_with("InMemory(Io"),
        "put off, symlink: {status}"
    );
    assert_eq!(std::fs::read_to_string(victim.path()).unwrap(), "precious");
    let status = put_off(&|p| {
        let made = Command::new("mkfifo").arg(p).status().unwrap();
        assert!(made.success());
    });
    assert!(status.starts_with("InMemory("), "put off, fifo: {status}");
}

#[cfg(unix)]
#[test]
fn counter_file_never_takes_fds_0_to_2() {
    if child::play_role(scenario) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    run("closed-stdio", tmp.path(), "", &[]);
    let file = read_file(only_file(tmp.path())).unwrap();
    assert_eq!(file.count["test/hits"], 1);
}

/// Files are 0600 whatever the umask: under umask 000 any local user could otherwise
/// write into them.
#[cfg(unix)]
#[test]
fn counter_files_are_0600_under_umask_0() {
    if child::play_role(scenario) {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    run("umask-0", tmp.path(), "", &[]);
    let mode = std::fs::metadata(only_file(tmp.path()))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
}

/// [`run`] that fails instead of hanging when the scenario does not end in `secs`.
#[cfg(unix)]
fn run_within(scenario: &str, dir: &Path, arg: &str, secs: u64) -> String {
    let mut child = command(scenario, dir, arg)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    if !wait_until(Duration::from_secs(secs), || {
        child.try_wait().unwrap().is_some()
    }) {
        let _ = child.kill();
        let _ = child.wait();
        panic!("scenario {scenario} hung");
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", out.status);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.split_once("> ").map(|(_, said)| said.to_owned()))
        .unwrap_or_default()
}

// ---- damaged files ---------------------------------------------------------------

/// Today's file, written by a first run and then damaged by `damage`; a second run must
/// carry on counting in memory, without hanging or crashing.
fn damaged(damage: impl FnOnce(&mut Vec<u8>)) -> (tempfile::TempDir, String) {
    let tmp = tempfile::tempdir().unwrap();
    run("saturate", tmp.path(), "", &[]);
    let path = only_file(tmp.path());
    let mut bytes = std::fs::read(&path).unwrap();
    damage(&mut bytes);
    std::fs::write(&path, &bytes).unwrap();
    let status = run("in-memory", tmp.path(), "", &[]);
    (tmp, status)
}

fn put32(bytes: &mut [u8], off: usize, v: u32) {
    bytes[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn header_len(bytes: &[u8]) -> usize {
    u32::from_le_bytes(bytes[28..32].try_into().unwrap()) as usize
}

#[test]
fn truncated_file_is_rejected() {
    if child::play_role(scenario) {
        return;
    }
    // Within the first page: the hash table has entries, so this is not a new file.
    let (tmp, status) = damaged(|b| b.truncate(5000));
    assert!(status.starts_with("InMemory(Corrupt"), "{status}");
    assert!(read_file(only_file(tmp.path())).is_err());
    // Mid-file: the allocation limit now points past the end.
    let (tmp, status) = damaged(|b| {
        let h = header_len(b);
        put32(b, h, 40_000);
        b.resize(40_000, 0);
        b.truncate(20_000);
    });
    assert!(status.starts_with("InMemory(Corrupt"), "{status}");
    // Reported as damaged, with the records before the cut kept.
    let err = read_file(only_file(tmp.path())).unwrap_err();
    assert!(
        err.to_string().starts_with("truncated counter file"),
        "{err}"
    );
    assert_eq!(err.intact().unwrap().count["test/big"], u64::MAX);
}

#[test]
fn foreign_header_is_rejected() {
    if child::play_role(scenario) {
        return;
    }
    let (_tmp, status) = damaged(|b| b[2] = b'X');
    assert!(status.starts_with("InMemory(Corrupt"), "{status}");
}

/// An allocation limit inside the header or hash table would make the next record
/// overwrite the header, destroying the file for every process: it is corruption.
#[test]
fn limit_inside_the_header_is_rejected() {
    if child::play_role(scenario) {
        return;
    }
    for limit in [1, 100, 2000] {
        let (tmp, status) = damaged(|b| {
            let h = header_len(b);
            put32(b, h, limit);
        });
        assert!(status.starts_with("InMemory(Corrupt"), "{limit}: {status}");
        let bytes = std::fs::read(only_file(tmp.path())).unwrap();
        assert!(bytes.starts_with(b"# telemetry/counter file v1\n"));
        assert_eq!(&bytes[header_len(&bytes)..][..4], &limit.to_le_bytes());
    }
}

#[test]
fn limit_past_the_file_is_rejected() {
    if child::play_role(scenario) {
        return;
    }
    let (_tmp, status) = damaged(|b| {
        let h = header_len(b);
        put32(b, h, 1 << 30);
    });
    assert!(status.starts_with("InMemory(Corrupt"), "{status}");
}

#[test]
fn cycles_and_wild_pointers_are_bounded() {
    if child::play_role(scenario) {
        return;
    }
    // Every bucket points at the first record, which points at itself: every lookup
    // meets the cycle. New counters stay in memory; nothing hangs.
    let (tmp, status) = damaged(|b| {
        let h = header_len(b);
        let first = (h + 4 + 2048).next_multiple_of(32);
        for bucket in 0..512 {
            put32(b, h + 4 + 4 * bucket, first as u32);
        }
        put32(b, first + 12, first as u32);
    });
    assert!(status.starts_with("Counting"), "{status}");
    let err = read_file(only_file(tmp.path())).expect_err("the parser sees the cycle too");
    assert!(err.intact().is_some(), "{err}");

    // Chain heads pointing past the end of the file.
    let (tmp, status) = damaged(|b| {
        let h = header_len(b);
        for bucket in 0..512 {
            put32(b, h + 4 + 4 * bucket, 0xfff0);
        }
    });
    assert!(status.starts_with("Counting"), "{status}");
    assert!(read_file(only_file(tmp.path())).is_err());
}
