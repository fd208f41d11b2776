//! Counters for the arguments and subcommands a person gave on the command line, read
//! from clap's `ArgMatches` (feature `clap`), as Go's `counter.CountFlags` does for
//! its `flag` package.
//!
//! Names, for a prefix `P` (say `mytool/flag:`):
//!
//! | given | counted |
//! |---|---|
//! | a top-level argument `--name SECRET` (id `name`) | `Pname` |
//! | a subcommand `build` | `Pbuild` |
//! | an argument of `build`, `--release` (id `release`) | `Pbuild/release` |
//! | a nested subcommand `remote add` | `Premote`, `Premote/add` |
//! | an argument of `remote add`, `--force` | `Premote/add/force` |
//!
//! Only an argument's *id* (the name the program gave it in its clap definition, the
//! field's name with the derive API) ever enters a name, never a value: `SECRET` above
//! appears nowhere. Arguments given only by a default value or an environment variable
//! are not counted (clap's `ValueSource::CommandLine` only), nor are argument groups
//! (the derive API makes one per struct) or external subcommands, whose names the
//! person typed and the program never declared.

use clap::ArgMatches;
use clap::parser::ValueSource;

/// Adds one to `{prefix}{id}` for each argument given on the command line (not by a
/// default, not by an environment variable), and for the chosen subcommands to
/// `{prefix}{sub}`, then `{prefix}{sub}/{id}` for each of their own arguments (nested
/// subcommands join with `/`: `{prefix}remote/add/force`). Values are never read.
///
/// ```
/// use clap::{Arg, ArgAction, Command};
///
/// let matches = Command::new("mytool")
///     .arg(Arg::new("verbose").long("verbose").action(ArgAction::SetTrue))
///     .subcommand(Command::new("build").arg(Arg::new("target").long("target")))
///     .get_matches_from(["mytool", "--verbose", "build", "--target", "SECRET"]);
/// // Counts mytool/flag:verbose, mytool/flag:build, mytool/flag:build/target.
/// telemetry::count_flags("mytool/flag:", &matches);
/// ```
///
/// Never panics and never prints; costs a short walk over the matches and one
/// counter lookup per name, once per run.
pub fn count_flags(prefix: &str, matches: &ArgMatches) {
    count(prefix, matches, true);
}

/// Adds one to `{prefix}{sub}` for each subcommand in the chain the person chose
/// (`{prefix}remote`, `{prefix}remote/add`), and nothing for arguments: for tools
/// that want to know which commands are used and no more.
///
/// ```
/// use clap::Command;
///
/// let matches = Command::new("mytool")
///     .subcommand(Command::new("build"))
///     .get_matches_from(["mytool", "build"]);
/// telemetry::count_subcommands("mytool/command:", &matches); // mytool/command:build
/// ```
pub fn count_subcommands(prefix: &str, matches: &ArgMatches) {
    count(prefix, matches, false);
}

/// Walks the top level, then each chosen subcommand, naming counters under `prefix`.
fn count(prefix: &str, matches: &ArgMatches, with_args: bool) {
    let mut name = String::from(prefix);
    if with_args {
        count_args(&mut name, matches);
    }
    let mut level = matches;
    while let Some((sub, sub_matches)) = level.subcommand() {
        if is_external(sub_matches) {
            break;
        }
        if name.len() > prefix.len() {
            name.push('/');
        }
        name.push_str(sub);
        telemetry_counter::inc(&name);
        if with_args {
            name.push('/');
            count_args(&mut name, sub_matches);
            name.pop();
        }
        level = sub_matches;
    }
}

/// Counts `{name}{id}` for each argument of this level given on the command line;
/// `name` is restored before returning.
fn count_args(name: &mut String, matches: &ArgMatches) {
    let base = name.len();
    for id in matches.ids() {
        let id = id.as_str();
        if matches.value_source(id) != Some(ValueSource::CommandLine) || is_group(matches, id) {
            continue;
        }
        name.push_str(id);
        telemetry_counter::inc(name);
        name.truncate(base);
    }
}

/// Whether `id` names an argument group. clap records a group present on the command
/// line like an argument, whose values are the ids of its members: an argument's own
/// values are of its value parser's type, never `clap::Id`.
fn is_group(matches: &ArgMatches, id: &str) -> bool {
    matches
        .try_get_one::<clap::Id>(id)
        .is_ok_and(|v| v.is_some())
}

/// Whether these are the matches of an external subcommand (a name the program did not
/// declare): clap puts its arguments under the empty id.
fn is_external(matches: &ArgMatches) -> bool {
    matches.ids().any(|id| id.as_str().is_empty())
}
