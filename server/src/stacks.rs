//! Stacks: raw frames named from uploaded symbols, each distinct stack counted per
//! day (`stacks/<date>.json`, written by a merge), and the list a maintainer reads —
//! on the Crashes page, from `GET /api/stacks` and from `telemetry-server stacks`.
//!
//! **Naming.** A stack counter is `prefix\nframe…`. A raw frame, `<build-id>+0x<addr>`
//! ([`stack_name::is_raw_frame`]), whose build has symbols becomes `function+0xOFF`:
//! the first frame of a `crash/signal:*` or `crash/abort` stack is the interrupted
//! instruction and is looked up at its address; every other frame is a return address,
//! looked up at `addr − 1` and printed as `addr − function start`; an address in no
//! function is unknown. When every raw frame of a `crash/*` stack is named, the stack
//! is finished by [`stack_name::finish_crash_stack`], the rule the tool applies to
//! the stacks it names itself, so the stripped build's crash and the unstripped
//! build's own report of it are one stack, byte for byte. While a frame's build has
//! no symbols the stack is left as uploaded (its frames raw, nothing skipped or cut),
//! so that it can be named whole once they arrive.
//!
//! **Identity.** A stack's ID is the first 8 hex digits of the 64-bit FNV-1a hash of
//! its named text (the counter name with ditto marks expanded): stable across merges,
//! servers and versions of this code.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use object_store::ObjectStoreExt;
use serde::{Deserialize, Serialize};
use telemetry_counter::stack_name;
use telemetry_internal::Day;
use telemetry_upload::Report;

use crate::claims::{Claim, Claims};
use crate::symbols::FunctionTable;
use crate::symbols_store::Namer;

/// How many stacks a day keeps, the most counted first.
pub const STACKS_KEPT_PER_DAY: usize = 1000;

/// The build IDs of the raw frames of a stack counter name.
pub(crate) fn raw_build_ids(stack: &str) -> impl Iterator<Item = &str> {
    stack
        .split('\n')
        .skip(1)
        .filter_map(|line| stack_name::is_raw_frame(line).map(|(id, _)| id))
}

/// Whether the first frame of a stack under `prefix` is the interrupted instruction
/// (looked up at its address) rather than a return address.
fn first_frame_is_pc(prefix: &str) -> bool {
    prefix.starts_with("crash/signal:") || prefix == "crash/abort"
}

/// `stack` with its raw frames named from `tables` (see the module documentation), or
/// `None` if it has no raw frame whose build has a table.
pub(crate) fn name_stack(
    stack: &str,
    tables: &HashMap<String, Option<Arc<FunctionTable>>>,
) -> Option<String> {
    let table = |id: &str| tables.get(id).and_then(Option::as_deref);
    if !raw_build_ids(stack).any(|id| table(id).is_some()) {
        return None;
    }
    let decoded = stack_name::decode(stack);
    let mut lines = decoded.split('\n');
    let prefix = lines.next().unwrap_or_default();
    let unknown = stack_name::frame("?", 0);
    let mut all_named = true;
    let frames: Vec<Option<String>> = lines
        .enumerate()
        .map(|(i, line)| {
            if line == unknown {
                return None;
            }
            let Some((id, addr)) = stack_name::is_raw_frame(line) else {
                return Some(line.to_owned());
            };
            let Some(table) = table(id) else {
                all_named = false;
                return Some(line.to_owned());
            };
            let lookup = if i == 0 && first_frame_is_pc(prefix) {
                addr
            } else {
                addr.wrapping_sub(1)
            };
            let (function, start) = table.function(lookup)?;
            Some(stack_name::frame(
                function,
                addr.wrapping_sub(start) as usize,
            ))
        })
        .collect();
    if all_named && prefix.starts_with("crash/") {
        return Some(stack_name::finish_crash_stack(prefix, &frames));
    }
    let spelled: Vec<String> = frames
        .into_iter()
        .map(|f| f.unwrap_or_else(|| unknown.clone()))
        .collect();
    Some(stack_name::encode(prefix, &spelled))
}

/// `stack` with its raw frames named from the symbols `namer` finds now (as it is if
/// none).
pub(crate) async fn named_now(namer: &Namer, stack: &str) -> String {
    let ids: HashSet<&str> = raw_build_ids(stack).collect();
    if ids.is_empty() {
        return stack.to_owned();
    }
    let tables = namer.tables(&ids).await;
    name_stack(stack, &tables).unwrap_or_else(|| stack.to_owned())
}

/// Names the raw frames of every stack in `report` (two stacks that become one are
/// summed). Returns whether anything changed, and the build IDs of raw frames that
/// had no symbols.
pub(crate) async fn name_report(namer: &Namer, report: &mut Report) -> (bool, BTreeSet<String>) {
    let ids: HashSet<&str> = report
        .programs
        .iter()
        .flat_map(|p| p.stacks.keys())
        .flat_map(|name| raw_build_ids(name))
        .collect();
    if ids.is_empty() {
        return (false, BTreeSet::new());
    }
    let tables = namer.tables(&ids).await;
    let missing: BTreeSet<String> = tables
        .iter()
        .filter(|(_, t)| t.is_none())
        .map(|(id, _)| id.clone())
        .collect();
    let mut changed = false;
    for program in &mut report.programs {
        if !program
            .stacks
            .keys()
            .any(|name| raw_build_ids(name).next().is_some())
        {
            continue;
        }
        let stacks = std::mem::take(&mut program.stacks);
        for (name, count) in stacks {
            let name = match name_stack(&name, &tables) {
                Some(named) => {
                    changed = true;
                    named
                }
                None => name,
            };
            let total = program.stacks.entry(name).or_default();
            *total = total.saturating_add(count);
        }
    }
    (changed, missing)
}

/// The 8-hex-digit ID of a stack (see the module documentation).
pub fn stack_id(stack: &str) -> String {
    let text = stack_name::decode(stack);
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in text.as_bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:016x}", hash)[..8].to_owned()
}

/// One day's stacks: `stacks/<date>.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DayStacks {
    /// By stack counter name (after naming).
    #[serde(rename = "Stacks")]
    pub stacks: BTreeMap<String, StackSeen>,
    /// Build IDs of raw frames that had no symbols when the day was merged: the day is
    /// merged again once one of them has.
    #[serde(rename = "Unnamed")]
    pub unnamed: BTreeSet<String>,
}

/// Where and how often one stack was seen.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StackSeen {
    /// Reports that counted it.
    #[serde(rename = "Reports")]
    pub reports: u64,
    /// Its counts, summed (saturating).
    #[serde(rename = "Count")]
    pub count: u64,
    /// Program → versions.
    #[serde(rename = "Programs")]
    pub programs: BTreeMap<String, BTreeSet<String>>,
    /// `os/arch`.
    #[serde(rename = "Platforms")]
    pub platforms: BTreeSet<String>,
}

impl StackSeen {
    fn add(&mut self, other: &StackSeen) {
        self.reports = self.reports.saturating_add(other.reports);
        self.count = self.count.saturating_add(other.count);
        for (program, versions) in &other.programs {
            self.programs
                .entry(program.clone())
                .or_default()
                .extend(versions.iter().cloned());
        }
        self.platforms.extend(other.platforms.iter().cloned());
    }
}

impl DayStacks {
    /// Adds one report (already named); a stack it lists under several programs or
    /// builds counts as one report.
    pub fn add_report(&mut self, report: &Report) {
        let mut seen: BTreeMap<&str, StackSeen> = BTreeMap::new();
        for p in &report.programs {
            for (name, &count) in &p.stacks {
                if count == 0 {
                    continue;
                }
                let entry = seen.entry(name).or_default();
                entry.reports = 1;
                entry.count = entry.count.saturating_add(count);
                entry
                    .programs
                    .entry(p.program.clone())
                    .or_default()
                    .insert(p.version.clone());
                entry.platforms.insert(format!("{}/{}", p.os, p.arch));
            }
        }
        for (name, one) in seen {
            match self.stacks.get_mut(name) {
                Some(total) => total.add(&one),
                None => {
                    self.stacks.insert(name.to_owned(), one);
                }
            }
        }
    }

    /// Keeps the [`STACKS_KEPT_PER_DAY`] most counted stacks.
    pub fn trim(&mut self) {
        if self.stacks.len() <= STACKS_KEPT_PER_DAY {
            return;
        }
        let mut by_count: Vec<(String, StackSeen)> =
            std::mem::take(&mut self.stacks).into_iter().collect();
        by_count.sort_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(&b.0)));
        by_count.truncate(STACKS_KEPT_PER_DAY);
        self.stacks = by_count.into_iter().collect();
    }
}

/// Whether a stack is claimed by an issue, and how.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum ClaimStatus {
    /// No predicate matches it.
    Unclaimed,
    /// Exactly one issue's predicates match it.
    Claimed,
    /// Predicates of two or more issues match it.
    Conflict,
}

/// One distinct stack over the days asked for, as the page, the API and `stacks`
/// show it.
#[derive(Clone, Debug, Serialize)]
pub struct StackRow {
    /// [`stack_id`].
    #[serde(rename = "Id")]
    pub id: String,
    /// The counter name's prefix (`crash/panic`, `mytool/bug`, …).
    #[serde(rename = "Prefix")]
    pub prefix: String,
    /// The frames, ditto marks expanded.
    #[serde(rename = "Frames")]
    pub frames: Vec<String>,
    /// The stack's text: the prefix and the frames, one per line.
    #[serde(rename = "Stack")]
    pub stack: String,
    /// Counts summed.
    #[serde(rename = "Count")]
    pub count: u64,
    /// Reports that counted it.
    #[serde(rename = "Reports")]
    pub reports: u64,
    /// Program → versions.
    #[serde(rename = "Programs")]
    pub programs: BTreeMap<String, BTreeSet<String>>,
    /// `os/arch`.
    #[serde(rename = "Platforms")]
    pub platforms: BTreeSet<String>,
    /// The first week (the reports' `Week`) it was seen in.
    #[serde(rename = "FirstWeek")]
    pub first_week: String,
    /// The last.
    #[serde(rename = "LastWeek")]
    pub last_week: String,
    /// Whether it still has raw frames (no symbols for their build).
    #[serde(rename = "Raw")]
    pub raw: bool,
    /// See [`ClaimStatus`].
    #[serde(rename = "Status")]
    pub status: ClaimStatus,
    /// The issues whose predicates match it.
    #[serde(rename = "Issues")]
    pub issues: Vec<String>,
    /// A predicate that would claim it, to paste into the stacks config.
    #[serde(rename = "Predicate")]
    pub predicate: String,
}

impl StackRow {
    /// The configuration line a predicate also sees: `program@version` for each,
    /// then each `os/arch`, separated by spaces.
    pub fn config_line(&self) -> String {
        let mut words: Vec<String> = Vec::new();
        for (program, versions) in &self.programs {
            for version in versions {
                words.push(format!("{program}@{version}"));
            }
        }
        words.extend(self.platforms.iter().cloned());
        words.join(" ")
    }

    /// What predicates are matched against: the stack's text, a line break, then
    /// [`StackRow::config_line`].
    pub fn predicate_text(&self) -> String {
        format!("{}\n{}", self.stack, self.config_line())
    }
}

/// A predicate that picks out a stack: its prefix and its first known frame's
/// function (offset left out, so a rebuild that moves code stays claimed).
fn suggest_predicate(prefix: &str, frames: &[String]) -> String {
    let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let function = frames
        .iter()
        .filter(|f| !f.starts_with('?') && stack_name::is_raw_frame(f).is_none())
        .find_map(|f| f.rfind("+0x").map(|at| &f[..at + 3]));
    match function {
        Some(function) => format!("{} && {}", quote(prefix), quote(function)),
        None => quote(prefix),
    }
}

/// The list: every stack of the days from `since` on (all days if `None`), named
/// again with today's symbols, claimed by `claims`; unclaimed first, then
/// conflicts, then claimed ones, each the newest first (last seen, then first seen),
/// then the most counted.
pub(crate) async fn stack_rows(
    storage: &crate::Storage,
    since: Option<Day>,
    namer: &Namer,
    claims: &Claims,
) -> Result<Vec<StackRow>, crate::ServerError> {
    let days: Vec<Day> = crate::merge::dates_in(storage, "stacks")
        .await?
        .into_iter()
        .filter(|d| since.is_none_or(|since| *d >= since))
        .collect();
    let mut merged: BTreeMap<String, (StackSeen, Day, Day)> = BTreeMap::new();
    for day in days {
        let Some(mut stacks) = read_day_stacks(storage, day).await? else {
            continue;
        };
        // Named again: symbols may have come since the day was merged.
        let ids: HashSet<&str> = stacks
            .stacks
            .keys()
            .flat_map(|s| raw_build_ids(s))
            .collect();
        if !ids.is_empty() {
            let tables = namer.tables(&ids).await;
            let renamed: Vec<(String, StackSeen)> = std::mem::take(&mut stacks.stacks)
                .into_iter()
                .map(|(name, seen)| (name_stack(&name, &tables).unwrap_or(name), seen))
                .collect();
            for (name, seen) in renamed {
                stacks.stacks.entry(name).or_default().add(&seen);
            }
        }
        for (name, seen) in stacks.stacks {
            let entry = merged
                .entry(name)
                .or_insert_with(|| (StackSeen::default(), day, day));
            entry.0.add(&seen);
            entry.1 = entry.1.min(day);
            entry.2 = entry.2.max(day);
        }
    }
    let mut rows: Vec<StackRow> = merged
        .into_iter()
        .map(|(name, (seen, first, last))| {
            let text = stack_name::decode(&name);
            let mut lines = text.split('\n');
            let prefix = lines.next().unwrap_or_default().to_owned();
            let frames: Vec<String> = lines.map(str::to_owned).collect();
            let mut row = StackRow {
                id: stack_id(&name),
                raw: raw_build_ids(&name).next().is_some(),
                predicate: suggest_predicate(&prefix, &frames),
                prefix,
                frames,
                stack: text,
                count: seen.count,
                reports: seen.reports,
                programs: seen.programs,
                platforms: seen.platforms,
                first_week: first.to_string(),
                last_week: last.to_string(),
                status: ClaimStatus::Unclaimed,
                issues: Vec::new(),
            };
            let matched: Vec<&Claim> = claims.matching(&row.predicate_text());
            let mut issues: Vec<String> = matched.iter().map(|c| c.issue.clone()).collect();
            issues.sort();
            issues.dedup();
            row.status = match issues.len() {
                0 => ClaimStatus::Unclaimed,
                1 => ClaimStatus::Claimed,
                _ => ClaimStatus::Conflict,
            };
            row.issues = issues;
            row
        })
        .collect();
    rows.sort_by(|a, b| {
        let rank = |r: &StackRow| match r.status {
            ClaimStatus::Unclaimed => 0,
            ClaimStatus::Conflict => 1,
            ClaimStatus::Claimed => 2,
        };
        rank(a)
            .cmp(&rank(b))
            .then_with(|| b.last_week.cmp(&a.last_week))
            .then_with(|| b.first_week.cmp(&a.first_week))
            .then_with(|| b.count.cmp(&a.count))
            .then_with(|| a.id.cmp(&b.id))
    });
    Ok(rows)
}

/// The list of stacks since `since` (every stored day if `None`), named with the
/// symbols stored now and claimed by `claims`, as the Crashes page shows it: what
/// `telemetry-server stacks` prints.
pub async fn list_stacks(
    storage: &crate::Storage,
    since: Option<Day>,
    claims: &Claims,
) -> Result<Vec<StackRow>, crate::ServerError> {
    stack_rows(storage, since, &Namer::new(storage, None), claims).await
}

/// `stacks/<date>.json`, or `None` if there is none or it does not parse.
pub(crate) async fn read_day_stacks(
    storage: &crate::Storage,
    date: Day,
) -> Result<Option<DayStacks>, crate::ServerError> {
    let key = crate::storage::stacks_key(date);
    let bytes = match storage.store.get(&key).await {
        Ok(got) => got.bytes().await,
        Err(err) => Err(err),
    };
    match bytes {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(source) => Err(crate::ServerError::Storage {
            action: format!("reading {key}"),
            source,
        }),
    }
}

/// The list as JSON, as `GET /api/stacks` answers: `{"Since": …, "Stacks": [...]}`.
pub fn rows_json(since: Option<Day>, rows: &[StackRow]) -> String {
    #[derive(Serialize)]
    struct Answer<'a> {
        #[serde(rename = "Since")]
        since: Option<String>,
        #[serde(rename = "Stacks")]
        stacks: &'a [StackRow],
    }
    let answer = Answer {
        since: since.map(|d| d.to_string()),
        stacks: rows,
    };
    serde_json::to_string_pretty(&answer).unwrap_or_default()
}

/// The list as Markdown, for a maintainer to paste into an issue: a heading per
/// stack with its numbers, claim and frames.
pub fn rows_markdown(rows: &[StackRow]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if rows.is_empty() {
        out.push_str("No stacks.\n");
    }
    for row in rows {
        let status = match row.status {
            ClaimStatus::Unclaimed => "unclaimed".to_owned(),
            ClaimStatus::Claimed => format!("claimed by {}", row.issues[0]),
            ClaimStatus::Conflict => format!("CONFLICT: claimed by {}", row.issues.join(", ")),
        };
        let _ = writeln!(out, "### Stack `{}`: `{}` ({status})\n", row.id, row.prefix);
        let _ = writeln!(
            out,
            "- count {}, {} reports, weeks {} to {}",
            row.count, row.reports, row.first_week, row.last_week
        );
        let _ = writeln!(out, "- {}", row.config_line());
        let _ = writeln!(out, "- predicate: `{}`\n", row.predicate);
        out.push_str("```\n");
        for frame in &row.frames {
            let _ = writeln!(out, "{}", frame.replace("```", "'''"));
        }
        out.push_str("```\n\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef01234567";

    fn tables() -> HashMap<String, Option<Arc<FunctionTable>>> {
        let text = "telemetry-symbols v1\n\
                    1000 100 std::panicking::begin_panic\n\
                    2000 1000 <mytool::Parser>::run\n\
                    3000 100 mytool::main\n";
        let table = FunctionTable::from_text(text).unwrap();
        let mut tables = HashMap::new();
        tables.insert(ID.to_owned(), Some(Arc::new(table)));
        tables.insert("ff".repeat(20), None);
        tables
    }

    #[test]
    fn a_raw_panic_is_named_and_finished_like_the_tools_own() {
        let raw = format!("crash/panic\n?+0x0\n{ID}+0x1010\n{ID}+0x2020\n{ID}+0x3000\n?+0x0");
        // The return address 0x3000 is the first byte after mytool::main's call: it
        // is looked up at 0x2fff, in the function before.
        let named = name_stack(&raw, &tables()).unwrap();
        let own = stack_name::finish_crash_stack(
            "crash/panic",
            &[
                None,
                Some(stack_name::frame("std::panicking::begin_panic", 0x10)),
                Some(stack_name::frame("<mytool::Parser>::run", 0x20)),
                Some(stack_name::frame("<mytool::Parser>::run", 0x1000)),
                None,
            ],
        );
        assert_eq!(named, own);
        assert_eq!(
            named,
            "crash/panic\nmytool::Parser::run+0x20\nmytool::Parser::run+0x1000\n?+0x0"
        );
    }

    #[test]
    fn a_signals_first_frame_is_looked_up_at_its_address() {
        let raw = format!("crash/signal:SIGSEGV\n{ID}+0x3000\n{ID}+0x3000");
        assert_eq!(
            name_stack(&raw, &tables()).unwrap(),
            "crash/signal:SIGSEGV\nmytool::main+0x0\nmytool::Parser::run+0x1000"
        );
        let outside = format!("crash/abort\n{ID}+0x5000");
        assert_eq!(name_stack(&outside, &tables()).unwrap(), "crash/no-frames");
    }

    #[test]
    fn without_symbols_a_stack_stays_as_uploaded() {
        let other = "ff".repeat(20);
        let raw = format!("crash/panic\n?+0x0\n{other}+0x10");
        assert_eq!(name_stack(&raw, &tables()), None);
        let named = "crash/panic\nmytool::main+0x10";
        assert_eq!(name_stack(named, &tables()), None);
        // One build named, one not: named frames in place, nothing skipped or cut.
        let mixed = format!("crash/panic\n?+0x0\n{ID}+0x1010\n{other}+0x10");
        assert_eq!(
            name_stack(&mixed, &tables()).unwrap(),
            format!("crash/panic\n?+0x0\nstd::panicking::begin_panic+0x10\n{other}+0x10")
        );
    }

    #[test]
    fn ids_are_short_and_stable() {
        assert_eq!(
            stack_id("crash/panic\nmytool::main+0x10"),
            stack_id("crash/panic\nmytool::main+0x10")
        );
        assert_eq!(stack_id("a").len(), 8);
        // FNV-1a 64 of "a" is af63dc4c8601ec8c.
        assert_eq!(stack_id("a"), "af63dc4c");
        assert_ne!(
            stack_id("crash/panic\nx+0x1"),
            stack_id("crash/panic\nx+0x2")
        );
    }

    #[test]
    fn predicates_are_suggested_from_the_first_known_frame() {
        let frames = ["?+0x0".to_owned(), "mytool::parse+0x1f".to_owned()];
        assert_eq!(
            suggest_predicate("crash/panic", &frames),
            "\"crash/panic\" && \"mytool::parse+0x\""
        );
        assert_eq!(
            suggest_predicate("crash/no-frames", &[]),
            "\"crash/no-frames\""
        );
    }
}
