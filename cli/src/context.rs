//! What a subcommand works with: the [`Context`] (where to print, which directory or
//! root, what to call itself), the [`Target`] it resolves to, and the checks every
//! command makes before it reads or removes anything in a directory.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use telemetry::Config;
use telemetry_internal::{Dir, Root};

use crate::args::{Command, build_command};
use crate::failure::{CmdResult, Failure};
use crate::text::{shell_quote, terminal_safe};
use crate::{Ambient, Options, clean, csv, dump, env, generate, log, mode, upload, view};

/// What the command works on.
pub(crate) enum Target {
    /// The telemetry root: every tool, and the user-wide switch.
    Root(Root),
    /// One telemetry directory.
    Tool(Dir),
}

/// Everything a subcommand needs: where to print, which directory, what to call itself.
pub(crate) struct Context<'a> {
    /// The command's name for messages: `telemetry`, or e.g. `mytool telemetry`.
    pub(crate) name: String,
    pub(crate) dir_flag: Option<PathBuf>,
    pub(crate) tool_flag: Option<String>,
    pub(crate) config: &'a Config,
    pub(crate) options: &'a Options,
    pub(crate) ambient: &'a Ambient,
    pub(crate) out: &'a mut dyn Write,
    pub(crate) err: &'a mut dyn Write,
    pub(crate) err_is_terminal: bool,
}

impl Context<'_> {
    pub(crate) fn dispatch(&mut self, command: Command) -> CmdResult {
        match command {
            Command::On(args) => mode::on(self, &args),
            Command::Off(args) => mode::off(self, &args),
            Command::Local(args) => mode::local(self, &args),
            Command::Env => env::run(self),
            Command::Dump { files } => dump::run(self, &files),
            Command::View(args) => view::run(self, &args),
            Command::Csv => csv::run(self),
            Command::Clean => clean::run(self),
            Command::Upload(args) => upload::run(self, &args),
            Command::Log(args) => log::run(self, &args),
            Command::Completions { shell } => generate::completions(self, shell),
            Command::Man => generate::man(self),
        }
    }

    /// The telemetry root, `<config dir>/telemetry`.
    pub(crate) fn root(&self) -> Result<Root, Failure> {
        self.ambient.root().ok_or_else(|| {
            Failure::Message("no telemetry root: there is no home directory; use --dir PATH".into())
        })
    }

    /// What to work on: `--dir`, `--tool`, else the root (standalone) or the tool's
    /// own directory (embedded). Nothing is checked on disk.
    pub(crate) fn target(&self) -> Result<Target, Failure> {
        if let Some(path) = &self.dir_flag {
            return Ok(Target::Tool(Dir::new(path.clone())));
        }
        if let Some(tool) = &self.tool_flag {
            check_tool_name(tool)?;
            let root = self.root()?;
            let dir = root.tool(tool);
            if std::fs::symlink_metadata(dir.root()).is_err() {
                // A tool with its own directory elsewhere, listed by `start`.
                if let Some((_, listed)) =
                    root.registered().into_iter().rev().find(|(n, _)| n == tool)
                {
                    return Ok(Target::Tool(listed));
                }
            }
            return Ok(Target::Tool(dir));
        }
        if self.options.machine_wide {
            return Ok(Target::Root(self.root()?));
        }
        Ok(Target::Tool(self.own_dir()?))
    }

    /// The embedding tool's directory: the one its config names, else
    /// `<root>/<program>`.
    pub(crate) fn own_dir(&self) -> Result<Dir, Failure> {
        let name = self.config.get_program().name();
        if self.config.get_dir().is_some() {
            // Set with `.dir(..)`; made absolute as the facade does.
            if let Some(dir) = self.config.telemetry_dir_in(self.ambient) {
                return Ok(dir);
            }
        }
        self.root().map(|root| root.tool(name))
    }

    /// The directories to read: one, or every tool's under the root. A directory named
    /// with `--dir` or `--tool` must exist; a missing default is simply empty.
    pub(crate) fn read_targets(&self) -> Result<Vec<Dir>, Failure> {
        match self.target()? {
            Target::Tool(dir) => {
                self.check_readable(&dir)?;
                Ok(vec![dir])
            }
            Target::Root(root) => {
                check_not_a_file(root.path())?;
                let tools: Vec<Dir> = listed_tools(&root)?.into_iter().map(|(_, d)| d).collect();
                for dir in &tools {
                    check_dir(dir)?;
                }
                Ok(tools)
            }
        }
    }

    /// A directory read by a command: a plain file there is an error, and so is a
    /// missing directory named with `--dir` or `--tool` (a typo should not look like
    /// an empty directory).
    pub(crate) fn check_readable(&self, dir: &Dir) -> Result<(), Failure> {
        check_dir(dir)?;
        let explicit = self.dir_flag.is_some() || self.tool_flag.is_some();
        if explicit && !dir.root().exists() {
            let hint = match (&self.tool_flag, self.root()) {
                (Some(_), Ok(root)) => match known_tools(&root) {
                    Some(names) => format!(" (tools with a directory: {names})"),
                    None => String::new(),
                },
                _ => String::new(),
            };
            return Err(Failure::Message(format!(
                "no telemetry directory at {}{hint}",
                dir.root().display()
            )));
        }
        Ok(())
    }

    /// How to run another subcommand against the same directory, for hints:
    /// `telemetry view` or `telemetry --dir '/tmp/x' view`.
    pub(crate) fn hint(&self, subcommand: &str) -> String {
        match (&self.dir_flag, &self.tool_flag) {
            (Some(dir), _) => format!("{} --dir {} {subcommand}", self.name, shell_quote(dir)),
            (None, Some(tool)) => format!(
                "{} --tool {} {subcommand}",
                self.name,
                shell_quote(Path::new(tool))
            ),
            (None, None) => format!("{} {subcommand}", self.name),
        }
    }

    /// `telemetry --tool NAME SUBCOMMAND`, for hints given on the root.
    pub(crate) fn tool_hint(&self, tool: &str, subcommand: &str) -> String {
        format!(
            "{} --tool {} {subcommand}",
            self.name,
            shell_quote(Path::new(tool))
        )
    }

    /// Bad usage found after parsing (an option required only in some cases): clap's
    /// message and the subcommand's usage on stderr, status 2.
    pub(crate) fn usage_error(
        &mut self,
        subcommand: &str,
        message: impl std::fmt::Display,
    ) -> CmdResult {
        let mut command = build_command(&self.name, self.config, self.options);
        command.build();
        let error = match command.find_subcommand_mut(subcommand) {
            Some(sub) => sub.error(clap::error::ErrorKind::MissingRequiredArgument, message),
            None => command.error(clap::error::ErrorKind::MissingRequiredArgument, message),
        };
        self.err.write_all(error.render().to_string().as_bytes())?;
        Ok(ExitCode::from(2))
    }

    /// A warning that does not change the exit status.
    pub(crate) fn warn(&mut self, message: impl std::fmt::Display) {
        let message = terminal_safe(&message.to_string());
        let _ = writeln!(self.err, "{}: warning: {message}", self.name);
    }

    /// An error about one item (a file) that does not stop the command: one line,
    /// escaped like every other line shown.
    pub(crate) fn error_line(&mut self, message: impl std::fmt::Display) {
        let message = terminal_safe(&message.to_string());
        let _ = writeln!(self.err, "{}: {message}", self.name);
    }
}

/// A tool's name as used below the root: one plain path component.
fn check_tool_name(tool: &str) -> Result<(), Failure> {
    let plain = !tool.is_empty()
        && tool != "."
        && tool != ".."
        && !tool.contains(['/', '\\'])
        && !tool.chars().any(char::is_control);
    if plain {
        Ok(())
    } else {
        Err(Failure::Message(format!(
            "{:?} is not a tool name (a tool's directory is <telemetry root>/NAME)",
            terminal_safe(tool)
        )))
    }
}

/// Every tool a person can find from the root, with its name: the directories under
/// the root, then those elsewhere (`Config::dir`) that `start` listed in the root's
/// registry.
pub(crate) fn listed_tools(root: &Root) -> Result<Vec<(String, Dir)>, Failure> {
    let mut tools: Vec<(String, Dir)> = root
        .tools()
        .map_err(|err| Failure::io(format!("cannot read {}", root.path().display()), &err))?
        .into_iter()
        .map(|dir| (tool_name(&dir), dir))
        .collect();
    for (name, dir) in root.registered() {
        if !tools.iter().any(|(_, known)| *known == dir) {
            tools.push((terminal_safe(&name), dir));
        }
    }
    Ok(tools)
}

/// `a, b, c`: the tools [`listed_tools`] finds, or `None` if there is none.
pub(crate) fn known_tools(root: &Root) -> Option<String> {
    let names: Vec<String> = listed_tools(root)
        .ok()?
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    (!names.is_empty()).then(|| names.join(", "))
}

/// The tool's name: its directory's last component.
fn tool_name(dir: &Dir) -> String {
    dir.root()
        .file_name()
        .map(|n| terminal_safe(&n.to_string_lossy()))
        .unwrap_or_default()
}

/// The one check before any command reads or removes anything in a telemetry
/// directory: it is not a file, and its `local/`, `upload/` and `debug/` are real
/// directories of this user where they exist ([`Dir::check_areas`], which the
/// uploader applies too). A link planted there is an error, never followed.
pub(crate) fn check_dir(dir: &Dir) -> Result<(), Failure> {
    check_not_a_file(dir.root())?;
    dir.check_areas()
        .map_err(|err| Failure::Message(format!("refusing to use {}: {err}", dir.root().display())))
}

/// A telemetry directory or root that exists as something other than a directory is
/// a one-line error.
pub(crate) fn check_not_a_file(path: &Path) -> Result<(), Failure> {
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_dir() => Err(Failure::Message(format!(
            "cannot read {}: not a directory",
            path.display()
        ))),
        Ok(_) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(Failure::io(format!("cannot read {}", path.display()), &err)),
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_names_are_one_component() {
        assert!(check_tool_name("mytool").is_ok());
        assert!(check_tool_name("my.tool-2").is_ok());
        for bad in ["", ".", "..", "a/b", "..\\x", "a\nb"] {
            assert!(check_tool_name(bad).is_err(), "{bad:?}");
        }
    }
}
