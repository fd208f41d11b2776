//! The upload config: which programs, versions, platforms and counters may leave the
//! machine, and at what sampling rate.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::UploadError;

/// The public list of what may be uploaded, in the JSON format of Go's upload config.
///
/// Field names are ours (`OS`, `Arch`, `Toolchain`), and Go's (`GOOS`, `GOARCH`,
/// `GoVersion`) are accepted too, so Go's real config parses. Everything not listed is
/// refused: an empty or missing list approves nothing.
#[derive(Clone, Debug)]
pub struct UploadConfig {
    raw: RawConfig,
    index: Index,
    version: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct RawConfig {
    #[serde(rename = "OS", alias = "GOOS", default)]
    os: Vec<String>,
    #[serde(rename = "Arch", alias = "GOARCH", default)]
    arch: Vec<String>,
    #[serde(rename = "Toolchain", alias = "GoVersion", default)]
    toolchain: Vec<String>,
    // Go decodes a missing number as 0, which approves nothing; so do we.
    #[serde(rename = "SampleRate", default)]
    sample_rate: f64,
    #[serde(rename = "Programs", default)]
    programs: Vec<RawProgram>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct RawProgram {
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "Versions", default)]
    versions: Vec<String>,
    #[serde(rename = "Counters", default)]
    counters: Vec<RawCounter>,
    #[serde(rename = "Stacks", default)]
    stacks: Vec<RawCounter>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct RawCounter {
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "Rate", default)]
    rate: f64,
    // Stacks only; Go does not use it when uploading either.
    #[serde(rename = "Depth", default)]
    #[allow(dead_code)]
    depth: u32,
}

/// Lookup tables built once per parse, so filtering a report costs one hash lookup
/// per counter.
#[derive(Clone, Debug, Default)]
struct Index {
    os: HashSet<String>,
    arch: HashSet<String>,
    toolchain: HashSet<String>,
    programs: HashMap<String, ProgramIndex>,
}

#[derive(Clone, Debug, Default)]
struct ProgramIndex {
    versions: HashSet<String>,
    /// Counter name (after `{a,b}` expansion) → rate.
    counters: HashMap<String, f64>,
    /// Stack counter prefix → rate.
    stacks: HashMap<String, f64>,
}

/// The identity of a program report: whose counters these are.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Origin<'a> {
    pub(crate) program: &'a str,
    pub(crate) version: &'a str,
    pub(crate) toolchain: &'a str,
    pub(crate) os: &'a str,
    pub(crate) arch: &'a str,
}

impl<'a> Origin<'a> {
    /// Reads the identity from counter file metadata, ours or Go's.
    pub(crate) fn from_meta(meta: &'a BTreeMap<String, String>) -> Origin<'a> {
        let get = |ours: &str, go: &str| {
            meta.get(ours)
                .or_else(|| meta.get(go))
                .map_or("", String::as_str)
        };
        Origin {
            program: get("Program", "Program"),
            version: get("Version", "Version"),
            toolchain: get("Toolchain", "GoVersion"),
            os: get("OS", "GOOS"),
            arch: get("Arch", "GOARCH"),
        }
    }
}

/// The rates for one program on one platform, or nothing if it is not approved.
pub(crate) struct Approved<'c> {
    program: &'c ProgramIndex,
}

impl Approved<'_> {
    /// The rate of a counter or, for a stack counter (`prefix\nframes…`), of its prefix.
    pub(crate) fn rate(&self, counter: &str) -> Option<f64> {
        match counter.split_once('\n') {
            Some((prefix, _)) => self.program.stacks.get(prefix).copied(),
            None => self.program.counters.get(counter).copied(),
        }
    }
}

impl UploadConfig {
    /// Parses a config from JSON.
    pub fn parse(bytes: &[u8]) -> Result<UploadConfig, UploadError> {
        // serde would also take a JSON array for a struct; a config is an object.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(UploadError::ConfigParse {
                origin: String::new(),
                reason: "expected a JSON object".to_owned(),
            });
        }
        let raw: RawConfig =
            serde_json::from_slice(bytes).map_err(|err| UploadError::ConfigParse {
                origin: String::new(),
                reason: err.to_string(),
            })?;
        if !(0.0..=1.0).contains(&raw.sample_rate) {
            return Err(UploadError::ConfigParse {
                origin: String::new(),
                reason: format!("SampleRate {} is not between 0 and 1", raw.sample_rate),
            });
        }
        let index = Index::build(&raw);
        Ok(UploadConfig {
            raw,
            index,
            version: format!("fnv1a64:{:016x}", fnv1a64(bytes)),
        })
    }

    /// Whether a counter (or a stack counter, by its prefix) from a counter file with
    /// this metadata (keys `Program`, `Version`, `OS`, `Arch`, `Toolchain`, or Go's
    /// `GOOS`, `GOARCH`, `GoVersion`) is approved, ignoring the sampling rate.
    pub fn approves(&self, meta: &BTreeMap<String, String>, counter: &str) -> bool {
        self.approved(Origin::from_meta(meta))
            .is_some_and(|a| a.rate(counter).is_some())
    }

    /// The fraction of reports that may be uploaded: a report is sent only if its
    /// random `X` is at most this.
    pub fn sample_rate(&self) -> f64 {
        self.raw.sample_rate
    }

    /// What reports record as their `Config`: a hash of the config's bytes, so the
    /// server can tell which config a report was filtered with.
    pub fn version(&self) -> &str {
        &self.version
    }

    pub(crate) fn approved(&self, origin: Origin<'_>) -> Option<Approved<'_>> {
        let index = &self.index;
        if !index.os.contains(origin.os)
            || !index.arch.contains(origin.arch)
            || !index.toolchain.contains(origin.toolchain)
        {
            return None;
        }
        let program = index.programs.get(origin.program)?;
        program
            .versions
            .contains(origin.version)
            .then_some(Approved { program })
    }
}

impl Index {
    fn build(raw: &RawConfig) -> Index {
        let set = |v: &[String]| v.iter().cloned().collect::<HashSet<_>>();
        let mut programs: HashMap<String, ProgramIndex> = HashMap::new();
        for p in &raw.programs {
            let entry = programs.entry(p.name.clone()).or_default();
            entry.versions.extend(p.versions.iter().cloned());
            for c in &p.counters {
                for name in expand(&c.name) {
                    let rate = entry.counters.entry(name).or_insert(c.rate);
                    *rate = rate.max(c.rate);
                }
            }
            for s in &p.stacks {
                let rate = entry.stacks.entry(s.name.clone()).or_insert(s.rate);
                *rate = rate.max(s.rate);
            }
        }
        Index {
            os: set(&raw.os),
            arch: set(&raw.arch),
            toolchain: set(&raw.toolchain),
            programs,
        }
    }
}

/// `chart:{a,b}` names the counters `chart:a` and `chart:b`; a name without braces
/// names itself.
fn expand(name: &str) -> Vec<String> {
    match name.split_once('{') {
        Some((prefix, rest)) => {
            let buckets = rest.strip_suffix('}').unwrap_or(rest);
            buckets.split(',').map(|b| format!("{prefix}{b}")).collect()
        }
        None => vec![name.to_owned()],
    }
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Where the upload config comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigSource {
    /// Downloaded (https, or http to a loopback host) when a report needs it.
    Url(String),
    /// Read from a local file, for tests and for tools that ship their config.
    File(std::path::PathBuf),
}

impl ConfigSource {
    /// Loads and parses the config; the bytes are returned too, to be saved.
    pub(crate) fn load(&self, timeout: Duration) -> Result<(UploadConfig, Vec<u8>), UploadError> {
        let (bytes, origin) = match self {
            ConfigSource::File(path) => {
                let bytes = std::fs::read(path).map_err(|source| UploadError::ConfigRead {
                    path: path.clone(),
                    source,
                })?;
                (bytes, path.display().to_string())
            }
            ConfigSource::Url(url) => (fetch(url, timeout)?, url.clone()),
        };
        let config = UploadConfig::parse(&bytes).map_err(|err| match err {
            UploadError::ConfigParse { reason, .. } => UploadError::ConfigParse { origin, reason },
            other => other,
        })?;
        Ok((config, bytes))
    }
}

/// The largest config we accept; Go's real one is about 30 KB.
const MAX_CONFIG_BYTES: u64 = 8 << 20;

fn fetch(url: &str, timeout: Duration) -> Result<Vec<u8>, UploadError> {
    check_url(url)?;
    let failed = |reason: String| UploadError::ConfigFetch {
        url: url.to_owned(),
        reason,
    };
    let mut response = crate::http::agent(url, timeout, true)
        .get(url)
        .call()
        .map_err(|err| failed(err.to_string()))?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(failed(format!("the server answered {status}")));
    }
    response
        .body_mut()
        .with_config()
        .limit(MAX_CONFIG_BYTES)
        .read_to_vec()
        .map_err(|err| failed(err.to_string()))
}

/// Only `https`, or `http` to this machine (for tests), may carry telemetry.
pub(crate) fn check_url(url: &str) -> Result<(), UploadError> {
    let lower = url.to_ascii_lowercase();
    let bad = || UploadError::BadUrl {
        url: url.to_owned(),
    };
    if let Some(rest) = lower.strip_prefix("https://") {
        return if host_of(rest).is_some_and(|h| !h.is_empty()) {
            Ok(())
        } else {
            Err(bad())
        };
    }
    let rest = lower.strip_prefix("http://").ok_or_else(bad)?;
    let host = host_of(rest).ok_or_else(bad)?;
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Ok(())
    } else {
        Err(UploadError::InsecureUrl {
            url: url.to_owned(),
        })
    }
}

/// The host of `host[:port]/path…`, without brackets for IPv6.
fn host_of(rest: &str) -> Option<&str> {
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(v6) = host_port.strip_prefix('[') {
        return v6.split_once(']').map(|(h, _)| h);
    }
    Some(host_port.split(':').next().unwrap_or(""))
}

/// The file that keeps the last config a run used.
pub(crate) fn saved_config_path(dir: &Path) -> std::path::PathBuf {
    telemetry_internal::Dir::new(dir)
        .upload()
        .join("config.json")
}

/// The config saved by the last run that fetched (or read) one: after loading it,
/// [`run`](crate::run) saves it to `<dir>/upload/config.json`. `None` if there is
/// none or it does not parse.
pub fn last_config(dir: &Path) -> Option<UploadConfig> {
    let bytes = std::fs::read(saved_config_path(dir)).ok()?;
    UploadConfig::parse(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const CONFIG: &str = r#"{
        "OS": ["linux"], "Arch": ["x86_64"], "Toolchain": ["1.95.0"], "SampleRate": 1,
        "Programs": [{"Name": "tool", "Versions": ["1.0.0"],
            "Counters": [{"Name": "tool/flag:{a,b}", "Rate": 1}, {"Name": "tool/runs", "Rate": 0.5}],
            "Stacks": [{"Name": "tool/bug", "Rate": 1, "Depth": 16}]}]
    }"#;

    fn tool_meta() -> BTreeMap<String, String> {
        meta(&[
            ("Program", "tool"),
            ("Version", "1.0.0"),
            ("OS", "linux"),
            ("Arch", "x86_64"),
            ("Toolchain", "1.95.0"),
        ])
    }

    #[test]
    fn approves_expanded_counters_and_stack_prefixes() {
        let c = UploadConfig::parse(CONFIG.as_bytes()).unwrap();
        let m = tool_meta();
        assert!(c.approves(&m, "tool/flag:a"));
        assert!(c.approves(&m, "tool/flag:b"));
        assert!(!c.approves(&m, "tool/flag:c"));
        assert!(!c.approves(&m, "tool/flag:{a,b}"));
        assert!(c.approves(&m, "tool/runs"));
        assert!(c.approves(&m, "tool/bug\nmain.rs:1\nlib.rs:2"));
        assert!(
            !c.approves(&m, "tool/bug"),
            "a plain counter is not a stack"
        );
        assert!(!c.approves(&m, "tool/bugs\nmain.rs:1"));
    }

    #[test]
    fn refuses_other_programs_versions_and_platforms() {
        let c = UploadConfig::parse(CONFIG.as_bytes()).unwrap();
        for (key, value) in [
            ("Program", "other"),
            ("Version", "1.0.1"),
            ("OS", "windows"),
            ("Arch", "aarch64"),
            ("Toolchain", "nightly"),
        ] {
            let mut m = tool_meta();
            m.insert(key.into(), value.into());
            assert!(!c.approves(&m, "tool/runs"), "{key}={value}");
        }
        let mut missing = tool_meta();
        missing.remove("OS");
        assert!(!c.approves(&missing, "tool/runs"));
    }

    #[test]
    fn go_field_names_are_aliases() {
        let go = r#"{"GOOS": ["linux"], "GOARCH": ["amd64"], "GoVersion": ["go1.23.0"],
            "SampleRate": 1, "Programs": [{"Name": "cmd/go", "Versions": ["go1.23.0"],
            "Counters": [{"Name": "go/invocations", "Rate": 1}]}]}"#;
        let c = UploadConfig::parse(go.as_bytes()).unwrap();
        let m = meta(&[
            ("Program", "cmd/go"),
            ("Version", "go1.23.0"),
            ("GOOS", "linux"),
            ("GOARCH", "amd64"),
            ("GoVersion", "go1.23.0"),
        ]);
        assert!(c.approves(&m, "go/invocations"));
    }

    #[test]
    fn go_real_config_parses() {
        // The repository's copy of shared/fixtures/go-upload-config.json, Go's real config.
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../testdata/go-upload-config.json"
        );
        let bytes = std::fs::read(path).unwrap();
        let c = UploadConfig::parse(&bytes).unwrap();
        assert_eq!(c.sample_rate(), 1.0);
        let m = meta(&[
            ("Program", "golang.org/x/tools/gopls"),
            ("Version", "v0.16.1"),
            ("GOOS", "linux"),
            ("GOARCH", "amd64"),
            ("GoVersion", "go1.22.5"),
        ]);
        assert!(c.approves(&m, "gopls/client:vscode"));
        assert!(c.approves(
            &m,
            "gopls/bug\ngolang.org/x/tools/gopls/internal/cache.f:+12"
        ));
        assert!(!c.approves(&m, "gopls/client:notepad"));
        assert!(c.version().starts_with("fnv1a64:"));
    }

    #[test]
    fn garbage_is_an_error() {
        for bad in [
            "",
            "[]",
            "{\"SampleRate\": \"high\"}",
            "{\"SampleRate\": 2}",
            "{",
        ] {
            let err = UploadConfig::parse(bad.as_bytes()).unwrap_err();
            assert!(matches!(err, UploadError::ConfigParse { .. }), "{bad:?}");
            assert!(err.to_string().contains("not valid"));
        }
    }

    #[test]
    fn only_https_or_loopback() {
        for ok in [
            "https://telemetry.example.com/config.json",
            "http://127.0.0.1:8080/upload",
            "http://127.1.2.3/upload",
            "http://localhost:99/x",
            "http://[::1]:80/x",
            "HTTP://LOCALHOST/x",
        ] {
            assert!(check_url(ok).is_ok(), "{ok}");
        }
        for insecure in [
            "http://example.com/upload",
            "http://10.0.0.1/upload",
            "http://127.0.0.1.example.com/",
            "http://localhost@example.com/",
        ] {
            assert!(
                matches!(check_url(insecure), Err(UploadError::InsecureUrl { .. })),
                "{insecure}"
            );
        }
        for bad in ["", "ftp://x/y", "https://", "127.0.0.1:80/x"] {
            assert!(
                matches!(check_url(bad), Err(UploadError::BadUrl { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn expands_buckets() {
        assert_eq!(expand("a:{x,y}"), ["a:x", "a:y"]);
        assert_eq!(expand("plain"), ["plain"]);
    }
}
