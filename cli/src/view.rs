//! `telemetry view`: the local data as a self-contained HTML page, or as a table.
//!
//! The page loads nothing from anywhere: styles are inline, charts are inline SVG,
//! there is no script, and a Content-Security-Policy forbids any fetch, so opening it
//! tells no server that it was opened.
//!
//! This module gathers what is shown ([`Page`]) and writes or prints it; `page`
//! renders the HTML and `table` the text, from the same [`Page`].

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use telemetry_internal::{Dir, EffectiveMode};

use super::data::{self, Entry, LocalData};
use super::html::escape;
use super::upload::Approvals;
use super::{CmdResult, Context, Failure, Target, terminal_safe};

mod page;
mod table;

use page::html;
use table::text;

/// Arguments of `telemetry view`.
#[derive(Debug, clap::Args)]
pub(super) struct ViewArgs {
    /// Print a table to the terminal instead of writing a page.
    #[arg(long, conflicts_with_all = ["open", "output"])]
    text: bool,
    /// Open the page in the web browser after writing it.
    #[arg(long)]
    open: bool,
    /// Where to write the page [default: view.html in the telemetry directory].
    #[arg(long, value_name = "PATH")]
    output: Option<PathBuf>,
    /// Mark approved counters by the upload config at this URL instead of the last
    /// one fetched (nothing is uploaded).
    #[arg(long, value_name = "URL", conflicts_with = "config_file")]
    config_url: Option<String>,
    /// Mark approved counters by the upload config in this file.
    #[arg(long, value_name = "PATH")]
    config_file: Option<PathBuf>,
}

/// One telemetry directory as shown.
pub(super) struct Shown {
    dir: Dir,
    /// The tool's name, when the root is shown.
    tool: Option<String>,
    effective: EffectiveMode,
    /// The mode and the switch that decided it, for people.
    mode_line: String,
    data: LocalData,
    approvals: Option<Approvals>,
}

/// Everything on the page.
pub(super) struct Page {
    /// The directory or root shown.
    place: PathBuf,
    /// The user-wide switch, when the root is shown.
    switch: Option<String>,
    do_not_track: bool,
    /// Where the approvals come from: `None` for the last fetched config.
    config_origin: Option<String>,
    shown: Vec<Shown>,
}

pub(super) fn run(ctx: &mut Context<'_>, args: &ViewArgs) -> CmdResult {
    let (place, switch, dirs) = match ctx.target()? {
        Target::Tool(dir) => {
            ctx.check_readable(&dir)?;
            (dir.root().to_owned(), None, vec![(None, dir)])
        }
        Target::Root(root) => {
            // The same directories, and the same check, as `read_targets`.
            let tools = super::listed_tools(&root)?;
            for (_, dir) in &tools {
                super::check_dir(dir)?;
            }
            let switch = if root.is_off() {
                format!("off ({}): every tool is off", root.mode_file().display())
            } else {
                "not off: each tool's own mode applies".to_owned()
            };
            let dirs = tools.into_iter().map(|(name, d)| (Some(name), d)).collect();
            (root.path().to_owned(), Some(switch), dirs)
        }
    };
    let given = match (&args.config_url, &args.config_file) {
        (Some(url), _) => Some((super::upload::fetch_config(url)?, url.clone())),
        (None, Some(file)) => Some((
            super::upload::read_config(file)?,
            file.display().to_string(),
        )),
        (None, None) => None,
    };
    let mut shown = Vec::new();
    for (tool, dir) in dirs {
        let data = data::load(&dir)?;
        for skipped in &data.skipped {
            ctx.warn(format!("skipped {}", terminal_safe(skipped)));
        }
        let approvals = match &given {
            Some((config, _)) => Some(Approvals(config.clone())),
            None => super::upload::approvals(dir.root()),
        };
        let effective = dir.effective_mode(ctx.ambient);
        shown.push(Shown {
            mode_line: super::env::why(&dir, ctx.ambient, effective),
            effective,
            tool,
            dir,
            data,
            approvals,
        });
    }
    let page = Page {
        place,
        switch,
        do_not_track: ctx.ambient.do_not_track,
        config_origin: given.map(|(_, origin)| origin),
        shown,
    };
    if args.text {
        ctx.out.write_all(text(&page).as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    let html = html(&page);
    let path = match &args.output {
        Some(path) => path.clone(),
        // `view.html` beside the data; `Dir` names it, also at the root. Do not create
        // a telemetry directory just to show that it is empty.
        None if page.place.is_dir() => Dir::new(page.place.clone()).view_html(),
        None => std::env::temp_dir().join("telemetry-view.html"),
    };
    // Never written through a link planted at the path (invariant 7 of ARCHITECTURE.md).
    telemetry_internal::write_atomic(&path, html.as_bytes())
        .map_err(|err| Failure::io(format!("cannot write {}", path.display()), &err))?;
    writeln!(ctx.out, "{}", path.display())?;
    if args.open {
        if let Err(message) = open_in_browser(&path) {
            ctx.warn(format!(
                "could not open a browser ({message}); open the file above yourself"
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Starts the user's browser on `path` without waiting for it: `$BROWSER` if set (its
/// first `:`-separated entry, with `%s` replaced), else the platform's opener.
fn open_in_browser(path: &Path) -> Result<(), String> {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let target = path.to_string_lossy().into_owned();
    let (program, args): (String, Vec<String>) = match std::env::var("BROWSER") {
        Ok(browser) if !browser.trim().is_empty() => {
            let first = browser
                .split(':')
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned();
            let mut words = first.split_whitespace().map(str::to_owned);
            let program = words.next().unwrap_or_default();
            let mut args: Vec<String> = words.collect();
            if args.iter().any(|a| a.contains("%s")) {
                args = args.iter().map(|a| a.replace("%s", &target)).collect();
            } else {
                args.push(target);
            }
            (program, args)
        }
        _ if cfg!(target_os = "macos") => ("open".into(), vec![target]),
        _ if cfg!(windows) => (
            "cmd".into(),
            vec!["/C".into(), "start".into(), String::new(), target],
        ),
        _ => ("xdg-open".into(), vec![target]),
    };
    std::process::Command::new(&program)
        .args(&args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(drop)
        .map_err(|err| format!("{program}: {err}"))
}

/// The directory as a person should see it: absolute, so the page still says where
/// the data is when it is opened from elsewhere.
fn shown_path(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_owned())
        .display()
        .to_string()
}

/// A counter's upload status under the last fetched config.
fn approved(approvals: Option<&Approvals>, entry: &Entry, name: &str) -> bool {
    approvals.is_some_and(|a| a.approves(&entry.meta(), name))
}

/// Why the mode is off under `DO_NOT_TRACK`, for people who did not know it was set.
const DO_NOT_TRACK_NOTE: &str = "DO_NOT_TRACK is set in the environment this ran in: \
     programs started from it count nothing and send nothing, whatever the mode files say. \
     That is why the mode shows as off.";

/// Where approval marks come from, in a sentence.
fn approvals_sentence(page: &Page, approvals: &Approvals, html: bool) -> String {
    let code = |t: &str| {
        if html {
            format!("<code>{}</code>", escape(t))
        } else {
            terminal_safe(t)
        }
    };
    match &page.config_origin {
        Some(origin) => format!(
            "the upload config from {} (version {})",
            code(origin),
            code(approvals.version())
        ),
        None => format!(
            "the last fetched upload config (version {})",
            code(approvals.version())
        ),
    }
}
