//! Claims: which issue a stack belongs to, in the spirit of Go's `cmd/stacks`
//! (<https://pkg.go.dev/golang.org/x/tools/gopls/internal/telemetry/cmd/stacks>).
//!
//! The stacks config (`serve --stacks-config FILE`) is a JSON list of claims:
//!
//! ```json
//! [{"Issue": "https://example.com/mytool/issues/12",
//!   "Predicate": "\"crash/panic\" && \"mytool::parse+0x\""}]
//! ```
//!
//! A predicate is a boolean expression over quoted words, each true when it occurs
//! (as a substring) in the stack's text followed by its configuration line
//! (`program@version …` and `os/arch …`, see [`crate::StackRow::config_line`]):
//!
//! ```text
//! expr    = or
//! or      = and { "||" and }
//! and     = unary { "&&" unary }
//! unary   = "!" unary | "(" expr ")" | word
//! word    = '"' { any character but '"' and '\', or '\"', or '\\' } '"'
//! ```
//!
//! A stack matched by one issue's predicates is claimed by it; by two or more, a
//! conflict. Nothing here talks to an issue tracker.
//!
//! The file is read like the upload config (`live_config.rs`: links resolved, a
//! regular file of at most [`MAX_STACKS_CONFIG_BYTES`]) and reloaded the same way;
//! a version with a bad entry is refused with the entry named, and the last good one
//! stays.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::Deserialize;

use crate::ServerError;

/// The largest stacks config read.
pub(crate) const MAX_STACKS_CONFIG_BYTES: u64 = 4 << 20;

/// A parsed predicate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Predicate {
    /// A quoted word: true if it occurs in the text.
    Word(String),
    /// `!p`.
    Not(Box<Predicate>),
    /// `p && q`.
    And(Box<Predicate>, Box<Predicate>),
    /// `p || q`.
    Or(Box<Predicate>, Box<Predicate>),
}

/// Why a predicate does not parse: what was wrong, at which character (from 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PredicateError {
    /// The character (counted from 1) where the problem was found.
    pub column: usize,
    /// What was expected or found there.
    pub reason: String,
}

impl std::fmt::Display for PredicateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "at character {}: {}", self.column, self.reason)
    }
}

impl std::error::Error for PredicateError {}

/// The deepest nesting of `!` and parentheses parsed (a hostile config must not
/// overflow the parser's stack).
const MAX_DEPTH: usize = 64;

impl Predicate {
    /// Parses `text` (see the module documentation).
    pub fn parse(text: &str) -> Result<Predicate, PredicateError> {
        let chars: Vec<char> = text.chars().collect();
        let mut parser = Parser { chars, at: 0 };
        let predicate = parser.or(0)?;
        parser.skip_space();
        if parser.at < parser.chars.len() {
            return Err(parser.error("expected `&&`, `||` or the end"));
        }
        Ok(predicate)
    }

    /// Whether it holds for `text`.
    pub fn matches(&self, text: &str) -> bool {
        match self {
            Predicate::Word(word) => text.contains(word.as_str()),
            Predicate::Not(p) => !p.matches(text),
            Predicate::And(p, q) => p.matches(text) && q.matches(text),
            Predicate::Or(p, q) => p.matches(text) || q.matches(text),
        }
    }
}

struct Parser {
    chars: Vec<char>,
    at: usize,
}

impl Parser {
    fn error(&self, reason: &str) -> PredicateError {
        PredicateError {
            column: self.at + 1,
            reason: reason.to_owned(),
        }
    }

    fn skip_space(&mut self) {
        while self.chars.get(self.at).is_some_and(|c| c.is_whitespace()) {
            self.at += 1;
        }
    }

    /// Skips spaces and takes `token` if it comes next.
    fn take(&mut self, token: &str) -> bool {
        self.skip_space();
        let n = token.chars().count();
        let next: String = self.chars.iter().skip(self.at).take(n).collect();
        if next == token {
            self.at += n;
            true
        } else {
            false
        }
    }

    fn or(&mut self, depth: usize) -> Result<Predicate, PredicateError> {
        let mut left = self.and(depth)?;
        while self.take("||") {
            let right = self.and(depth)?;
            left = Predicate::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self, depth: usize) -> Result<Predicate, PredicateError> {
        let mut left = self.unary(depth)?;
        while self.take("&&") {
            let right = self.unary(depth)?;
            left = Predicate::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self, depth: usize) -> Result<Predicate, PredicateError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        self.skip_space();
        match self.chars.get(self.at) {
            Some('!') => {
                self.at += 1;
                Ok(Predicate::Not(Box::new(self.unary(depth + 1)?)))
            }
            Some('(') => {
                self.at += 1;
                let inner = self.or(depth + 1)?;
                if !self.take(")") {
                    return Err(self.error("expected `)`"));
                }
                Ok(inner)
            }
            Some('"') => self.word(),
            Some(_) => Err(self.error("expected a quoted word, `!` or `(`")),
            None => Err(self.error("expected a quoted word, `!` or `(`, found the end")),
        }
    }

    fn word(&mut self) -> Result<Predicate, PredicateError> {
        let open = self.at;
        self.at += 1;
        let mut word = String::new();
        loop {
            match self.chars.get(self.at) {
                None => {
                    self.at = open;
                    return Err(self.error("this quoted word is not closed"));
                }
                Some('"') => {
                    self.at += 1;
                    break;
                }
                Some('\\') => match self.chars.get(self.at + 1) {
                    Some(&c @ ('"' | '\\')) => {
                        word.push(c);
                        self.at += 2;
                    }
                    _ => return Err(self.error("only `\\\"` and `\\\\` are escapes")),
                },
                Some(&c) => {
                    word.push(c);
                    self.at += 1;
                }
            }
        }
        if word.is_empty() {
            self.at = open;
            return Err(self.error("an empty word matches everything"));
        }
        Ok(Predicate::Word(word))
    }
}

/// One claim: an issue and the predicate that picks its stacks.
#[derive(Clone, Debug)]
pub struct Claim {
    /// The issue's URL (`http://` or `https://`).
    pub issue: String,
    /// The predicate as written.
    pub text: String,
    /// Parsed.
    pub predicate: Predicate,
}

/// Every claim of a stacks config.
#[derive(Clone, Debug, Default)]
pub struct Claims {
    /// In file order.
    pub claims: Vec<Claim>,
}

impl Claims {
    /// Parses a stacks config's bytes; the reason names the entry that is wrong.
    pub fn parse(bytes: &[u8]) -> Result<Claims, String> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Entry {
            #[serde(rename = "Issue")]
            issue: String,
            #[serde(rename = "Predicate")]
            predicate: String,
        }
        let entries: Vec<Entry> = serde_json::from_slice(bytes)
            .map_err(|err| format!("not a JSON list of {{\"Issue\", \"Predicate\"}}: {err}"))?;
        let mut claims = Vec::with_capacity(entries.len());
        for (i, entry) in entries.into_iter().enumerate() {
            let name = format!("entry {} ({:?})", i + 1, entry.issue);
            let url_ok = (entry.issue.starts_with("https://")
                || entry.issue.starts_with("http://"))
                && !entry
                    .issue
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control());
            if !url_ok {
                return Err(format!("{name}: the issue must be an http(s) URL"));
            }
            let predicate = Predicate::parse(&entry.predicate)
                .map_err(|err| format!("{name}: predicate {:?} {err}", entry.predicate))?;
            claims.push(Claim {
                issue: entry.issue,
                text: entry.predicate,
                predicate,
            });
        }
        Ok(Claims { claims })
    }

    /// The claims whose predicate holds for `text`.
    pub fn matching(&self, text: &str) -> Vec<&Claim> {
        self.claims
            .iter()
            .filter(|c| c.predicate.matches(text))
            .collect()
    }
}

/// The stacks config in use, reloaded when its file changes or on SIGHUP.
#[derive(Debug)]
pub(crate) struct LiveClaims {
    path: PathBuf,
    current: RwLock<(Vec<u8>, Arc<Claims>)>,
}

fn read(path: &Path) -> Result<Vec<u8>, ServerError> {
    let error = |source| ServerError::ConfigRead {
        path: path.to_owned(),
        source,
    };
    let target = std::fs::canonicalize(path).map_err(error)?;
    telemetry_internal::fs::read_bounded(&target, MAX_STACKS_CONFIG_BYTES).map_err(error)
}

fn parse(path: &Path, bytes: &[u8]) -> Result<Claims, ServerError> {
    Claims::parse(bytes).map_err(|reason| ServerError::StacksConfig {
        path: path.to_owned(),
        reason,
    })
}

/// Reads and checks a stacks config file as `serve` does at start. Blocking.
pub fn check_stacks_config(path: &Path) -> Result<Claims, ServerError> {
    parse(path, &read(path)?)
}

impl LiveClaims {
    pub(crate) fn load(path: &Path) -> Result<LiveClaims, ServerError> {
        let bytes = read(path)?;
        let claims = parse(path, &bytes)?;
        Ok(LiveClaims {
            path: path.to_owned(),
            current: RwLock::new((bytes, Arc::new(claims))),
        })
    }

    pub(crate) fn get(&self) -> Arc<Claims> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()).1)
    }

    /// Reads the file again; `Ok(true)` if it changed and was taken.
    fn reload(&self) -> Result<bool, ServerError> {
        let bytes = read(&self.path)?;
        if bytes == self.current.read().unwrap_or_else(|e| e.into_inner()).0 {
            return Ok(false);
        }
        let claims = parse(&self.path, &bytes)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = (bytes, Arc::new(claims));
        Ok(true)
    }
}

/// Reloads `live` every `every` and on SIGHUP (if asked), keeping the last good
/// version when the file is wrong (logged once per distinct error).
pub(crate) fn watch(
    live: Arc<LiveClaims>,
    every: Duration,
    on_sighup: bool,
) -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let mut hangup = if on_sighup {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()
    } else {
        None
    };
    #[cfg(not(unix))]
    let _ = on_sighup;
    // Listening for SIGHUP starts here, before the task is spawned: a SIGHUP
    // sent as soon as the server says it is serving must not meet the default
    // action, which ends the process.
    async move {
        let mut last_error: Option<String> = None;
        loop {
            #[cfg(unix)]
            match hangup.as_mut() {
                Some(hangup) => tokio::select! {
                    _ = hangup.recv() => {},
                    () = tokio::time::sleep(every) => {},
                },
                None => tokio::time::sleep(every).await,
            }
            #[cfg(not(unix))]
            tokio::time::sleep(every).await;
            let reloading = Arc::clone(&live);
            let reloaded = tokio::task::spawn_blocking(move || reloading.reload())
                .await
                .unwrap_or_else(|err| {
                    Err(ServerError::StacksConfig {
                        path: live.path.clone(),
                        reason: err.to_string(),
                    })
                });
            match reloaded {
                Ok(true) => {
                    last_error = None;
                    tracing::info!(path = %live.path.display(), "stacks config reloaded");
                }
                Ok(false) => last_error = None,
                Err(err) => {
                    let message = err.to_string();
                    if last_error.as_deref() != Some(message.as_str()) {
                        tracing::error!(error = %message, "stacks config not reloaded; keeping the old one");
                    }
                    last_error = Some(message);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(w: &str) -> Box<Predicate> {
        Box::new(Predicate::Word(w.to_owned()))
    }

    #[test]
    fn parses_with_precedence_and_escapes() {
        assert_eq!(
            Predicate::parse(r#""a" || "b" && !"c""#).unwrap(),
            Predicate::Or(
                word("a"),
                Box::new(Predicate::And(
                    word("b"),
                    Box::new(Predicate::Not(word("c")))
                ))
            )
        );
        assert_eq!(
            Predicate::parse(r#" ( "a" || "b" ) && "q\"\\" "#).unwrap(),
            Predicate::And(Box::new(Predicate::Or(word("a"), word("b"))), word("q\"\\"))
        );
        assert_eq!(
            Predicate::parse(r#"!!"x""#).unwrap(),
            Predicate::Not(Box::new(Predicate::Not(word("x"))))
        );
    }

    #[test]
    fn bad_predicates_say_where() {
        for (text, column, reason) in [
            ("", 1, "found the end"),
            (r#""a" &&"#, 7, "found the end"),
            (r#""a" "b""#, 5, "expected `&&`, `||` or the end"),
            (r#"("a""#, 5, "expected `)`"),
            (r#""a"#, 1, "not closed"),
            (r#""""#, 1, "empty word"),
            (r#"a"#, 1, "expected a quoted word"),
            (r#""a" & "b""#, 5, "expected `&&`"),
            (r#""\n""#, 2, "escapes"),
        ] {
            let err = Predicate::parse(text).unwrap_err();
            assert_eq!(err.column, column, "{text}: {err}");
            assert!(err.reason.contains(reason), "{text}: {err}");
        }
        let deep = format!("{}\"a\"{}", "(".repeat(1000), ")".repeat(1000));
        assert!(
            Predicate::parse(&deep)
                .unwrap_err()
                .reason
                .contains("deeply")
        );
        let nots = format!("{}\"a\"", "!".repeat(100_000));
        assert!(Predicate::parse(&nots).is_err());
    }

    #[test]
    fn evaluates_over_the_stack_and_its_configuration() {
        let text = "crash/panic\nmytool::parse+0x1f\nmytool::main+0x10\nmytool@1.2.0 linux/x86_64";
        for (predicate, want) in [
            (r#""crash/panic" && "mytool::parse+0x""#, true),
            (r#""crash/panic" && !"mytool::parse+0x""#, false),
            (r#""SIGSEGV" || "mytool@1.2.0""#, true),
            (r#"("SIGSEGV" || "windows/") && "parse""#, false),
            (r#"!("SIGSEGV" || "windows/")"#, true),
        ] {
            assert_eq!(
                Predicate::parse(predicate).unwrap().matches(text),
                want,
                "{predicate}"
            );
        }
    }

    #[test]
    fn a_config_names_its_bad_entry() {
        let good = br#"[{"Issue": "https://example.com/i/1", "Predicate": "\"a\""}]"#;
        assert_eq!(Claims::parse(good).unwrap().claims.len(), 1);
        let bad = br#"[{"Issue": "https://example.com/i/1", "Predicate": "\"a\""},
                      {"Issue": "https://example.com/i/2", "Predicate": "\"a\" &&"}]"#;
        let err = Claims::parse(bad).unwrap_err();
        assert!(
            err.starts_with("entry 2 (\"https://example.com/i/2\")"),
            "{err}"
        );
        assert!(err.contains("at character 7"), "{err}");
        let not_a_url = br#"[{"Issue": "javascript:alert(1)", "Predicate": "\"a\""}]"#;
        assert!(
            Claims::parse(not_a_url)
                .unwrap_err()
                .contains("http(s) URL")
        );
        assert!(Claims::parse(b"{}").unwrap_err().contains("JSON list"));
        assert!(Claims::parse(br#"[{"Issue": "https://x/", "Predicat": ""}]"#).is_err());
    }
}
