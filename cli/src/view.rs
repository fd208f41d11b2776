//! `telemetry view`: the local data as a self-contained HTML page, or as a table.
//!
//! The page loads nothing from anywhere: styles are inline, charts are inline SVG,
//! there is no script, and a Content-Security-Policy forbids any fetch, so opening it
//! tells no server that it was opened.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use telemetry_internal::{Day, Dir, EffectiveMode};

use super::data::{self, Entry, LocalData};
use super::html::escape;
use super::upload::Approvals;
use super::{CmdResult, Context, Failure, Target, terminal_safe};

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

/// Counters grouped for display: `chart:bucket` names by chart, the rest alone.
struct Grouped<'a> {
    charts: BTreeMap<&'a str, Vec<(&'a str, &'a str, u64)>>,
    plain: Vec<(&'a str, u64)>,
}

fn group(entry: &Entry) -> Grouped<'_> {
    let mut grouped = Grouped {
        charts: BTreeMap::new(),
        plain: Vec::new(),
    };
    for (name, &n) in &entry.counters {
        match name.split_once(':') {
            Some((chart, bucket)) if !chart.is_empty() => {
                grouped
                    .charts
                    .entry(chart)
                    .or_default()
                    .push((name, bucket, n));
            }
            _ => grouped.plain.push((name, n)),
        }
    }
    grouped
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

/// The page.
pub(super) fn html(page: &Page) -> String {
    let mut p = String::with_capacity(16 * 1024);
    p.push_str(concat!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
        // Nothing may be fetched: the page is about privacy and must not phone home.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
        "<title>Telemetry: what this machine collected</title>\n<style>\n",
        include_str!("view.css"),
        "</style>\n</head>\n<body>\n"
    ));
    let _ = write!(
        p,
        "<header>\n<h1>Telemetry: what this machine collected</h1>\n<p>{} <code>{}</code>",
        if page.switch.is_some() {
            "Telemetry root"
        } else {
            "Directory"
        },
        escape(&shown_path(&page.place)),
    );
    match (&page.switch, page.shown.as_slice()) {
        (Some(switch), _) => {
            let _ = write!(p, " · user-wide switch {}", escape(switch));
        }
        (None, [one]) => {
            let _ = write!(
                p,
                " · mode <strong id=\"mode\">{}</strong> ({})",
                escape(&one.effective.mode.to_string()),
                escape(&one.mode_line)
            );
        }
        (None, _) => {}
    }
    let _ = writeln!(
        p,
        " · page written {}</p>",
        Day::of(std::time::SystemTime::now())
    );
    if page.do_not_track {
        let _ = writeln!(
            p,
            "<p class=\"warning\" id=\"do-not-track\">{DO_NOT_TRACK_NOTE}</p>"
        );
    }
    let first_approvals = page.shown.iter().find_map(|s| s.approvals.as_ref());
    match first_approvals {
        Some(a) => {
            let _ = writeln!(
                p,
                "<p>Counters marked <span class=\"approved\">approved</span> are named in \
                 {}: with the mode on, only they may be uploaded, and only for days after \
                 the opt-in date.</p>",
                approvals_sentence(page, a, true)
            );
        }
        None => p.push_str(
            "<p>No upload config has been fetched yet, so no counter is marked approved. \
             Nothing is uploaded unless the mode is on, and then only counters a config \
             approves.</p>\n",
        ),
    }
    for shown in &page.shown {
        for skipped in &shown.data.skipped {
            let _ = writeln!(p, "<p class=\"warning\">Skipped {}</p>", escape(skipped));
        }
    }
    p.push_str("</header>\n<main>\n");
    if page.shown.iter().all(|s| s.data.entries.is_empty()) {
        p.push_str("<p id=\"empty\">No counters have been collected in this directory.</p>\n");
    }
    for shown in &page.shown {
        if let Some(tool) = &shown.tool {
            let _ = writeln!(
                p,
                "<section class=\"tool\">\n<h2 class=\"tool\">Tool <code>{}</code></h2>\n\
                 <p class=\"meta\"><code>{}</code> · mode <strong>{}</strong> ({})</p>",
                escape(tool),
                escape(&shown_path(shown.dir.root())),
                escape(&shown.effective.mode.to_string()),
                escape(&shown.mode_line),
            );
        }
        let mut current_program: Option<&str> = None;
        for entry in &shown.data.entries {
            if current_program != Some(&entry.program) {
                if current_program.is_some() {
                    p.push_str("</section>\n");
                }
                current_program = Some(&entry.program);
                let _ = writeln!(
                    p,
                    "<section class=\"program\">\n<h2>{}</h2>",
                    escape(&entry.program)
                );
            }
            entry_html(&mut p, entry, shown.approvals.as_ref());
        }
        if current_program.is_some() {
            p.push_str("</section>\n");
        }
        if shown.tool.is_some() {
            p.push_str("</section>\n");
        }
    }
    p.push_str("</main>\n</body>\n</html>\n");
    p
}

fn entry_html(p: &mut String, entry: &Entry, approvals: Option<&Approvals>) {
    let uploaded = if entry.uploaded { " · uploaded" } else { "" };
    let _ = write!(
        p,
        "<article class=\"week\">\n<h3>{} {} · week ending {}</h3>\n\
         <p class=\"meta\">{} · {}/{} · from {} <code>{}</code>{uploaded}</p>\n",
        escape(&entry.program),
        escape(&entry.version),
        escape(&entry.week),
        escape(&entry.toolchain),
        escape(&entry.os),
        escape(&entry.arch),
        entry.source,
        escape(
            &entry
                .file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        ),
    );
    let grouped = group(entry);
    for (chart, buckets) in &grouped.charts {
        chart_svg(p, chart, buckets, |name| approved(approvals, entry, name));
    }
    if !grouped.plain.is_empty() {
        p.push_str(
            "<table class=\"counters\">\n<thead><tr><th>counter</th><th>count</th><th>upload</th></tr></thead>\n<tbody>\n",
        );
        for (name, n) in &grouped.plain {
            let _ = writeln!(
                p,
                "<tr><td><code>{}</code></td><td class=\"n\">{n}</td><td>{}</td></tr>",
                escape(name),
                status(approved(approvals, entry, name)),
            );
        }
        p.push_str("</tbody>\n</table>\n");
    }
    if !entry.stacks.is_empty() {
        p.push_str(
            "<table class=\"stacks\">\n<thead><tr><th>stack counter</th><th>count</th><th>upload</th></tr></thead>\n<tbody>\n",
        );
        for (name, n) in &entry.stacks {
            let mut lines = name.split('\n');
            let prefix = lines.next().unwrap_or_default();
            let frames = lines.clone().count();
            let _ = write!(
                p,
                "<tr><td><details><summary><code>{}</code> ({frames} frame{})</summary><ol class=\"frames\">",
                escape(prefix),
                if frames == 1 { "" } else { "s" },
            );
            for frame in lines {
                let _ = write!(p, "<li><code>{}</code></li>", escape(frame));
            }
            let _ = writeln!(
                p,
                "</ol></details></td><td class=\"n\">{n}</td><td>{}</td></tr>",
                status(approved(approvals, entry, name)),
            );
        }
        p.push_str("</tbody>\n</table>\n");
    }
    if entry.counters.is_empty() && entry.stacks.is_empty() {
        p.push_str("<p>No counters yet.</p>\n");
    }
    p.push_str("</article>\n");
}

fn status(approved: bool) -> &'static str {
    if approved {
        "<span class=\"approved\">approved</span>"
    } else {
        "<span class=\"local\">local only</span>"
    }
}

/// A horizontal bar chart: one bar per bucket, longest for the largest count.
fn chart_svg(
    p: &mut String,
    chart: &str,
    buckets: &[(&str, &str, u64)],
    approved: impl Fn(&str) -> bool,
) {
    const ROW: u64 = 24;
    const LABEL: u64 = 220;
    const BAR: u64 = 360;
    const WIDTH: u64 = LABEL + BAR + 140;
    let max = buckets.iter().map(|b| b.2).max().unwrap_or(0).max(1);
    let height = ROW * buckets.len() as u64 + 8;
    let _ = write!(
        p,
        "<figure class=\"chart\">\n<figcaption><code>{}</code></figcaption>\n\
         <svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" \
         viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-label=\"{}\">\n",
        escape(chart),
        escape(chart),
    );
    for (i, (name, bucket, n)) in buckets.iter().enumerate() {
        let y = 4 + ROW * i as u64;
        // u128: n * BAR cannot overflow even at u64::MAX.
        let width = (u128::from(*n) * u128::from(BAR) / u128::from(max)) as u64;
        let width = width.max(u64::from(*n > 0));
        let class = if approved(name) {
            "bar approved"
        } else {
            "bar"
        };
        let mark = if approved(name) { " ✓" } else { "" };
        let shown: String = if bucket.chars().count() > 30 {
            bucket.chars().take(29).chain(['…']).collect()
        } else {
            (*bucket).to_owned()
        };
        let _ = writeln!(
            p,
            "<g><title>{} = {n}</title>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\
             <rect class=\"{class}\" x=\"{LABEL}\" y=\"{y}\" width=\"{width}\" height=\"{}\"/>\
             <text x=\"{}\" y=\"{}\" class=\"value\">{n}{mark}</text></g>",
            escape(name),
            LABEL - 8,
            y + 16,
            escape(&shown),
            ROW - 6,
            LABEL + width + 6,
            y + 16,
        );
    }
    p.push_str("</svg>\n</figure>\n");
}

/// The table for `--text`. Untrusted names are made safe for the terminal.
pub(super) fn text(page: &Page) -> String {
    let mut t = String::new();
    match (&page.switch, page.shown.as_slice()) {
        (Some(switch), _) => {
            let _ = writeln!(
                t,
                "Telemetry root {} (user-wide switch {})",
                terminal_safe(&shown_path(&page.place)),
                terminal_safe(switch)
            );
        }
        (None, [one]) => {
            let _ = writeln!(
                t,
                "Telemetry data in {} (mode {}: {})",
                terminal_safe(&shown_path(&page.place)),
                one.effective.mode,
                terminal_safe(&one.mode_line)
            );
        }
        (None, _) => {}
    }
    if page.do_not_track {
        let _ = writeln!(t, "{DO_NOT_TRACK_NOTE}");
    }
    match page.shown.iter().find_map(|s| s.approvals.as_ref()) {
        Some(a) => {
            let _ = writeln!(t, "Upload config: {}", approvals_sentence(page, a, false));
        }
        None => t.push_str("Upload config: none fetched yet (nothing is marked approved)\n"),
    }
    if page.shown.iter().all(|s| s.data.entries.is_empty()) {
        t.push_str("\nNo counters have been collected.\n");
    }
    for shown in &page.shown {
        if let Some(tool) = &shown.tool {
            let _ = writeln!(
                t,
                "\n== {}: {} (mode {}: {})",
                terminal_safe(tool),
                terminal_safe(&shown_path(shown.dir.root())),
                shown.effective.mode,
                terminal_safe(&shown.mode_line)
            );
        }
        let approvals = shown.approvals.as_ref();
        for entry in &shown.data.entries {
            text_entry(&mut t, entry, approvals);
        }
    }
    t
}

fn text_entry(t: &mut String, entry: &Entry, approvals: Option<&Approvals>) {
    let _ = writeln!(
        t,
        "\n{} {}, week ending {} ({} {}/{}; {}{})",
        terminal_safe(&entry.program),
        terminal_safe(&entry.version),
        terminal_safe(&entry.week),
        terminal_safe(&entry.toolchain),
        terminal_safe(&entry.os),
        terminal_safe(&entry.arch),
        entry.source,
        if entry.uploaded { ", uploaded" } else { "" },
    );
    let width = entry
        .counters
        .values()
        .chain(entry.stacks.values())
        .map(|n| n.to_string().len())
        .max()
        .unwrap_or(1)
        .max(5);
    let _ = writeln!(t, "  {:>width$}  {:<8}  name", "count", "upload");
    let row = |t: &mut String, name: &str, n: u64| {
        let upload = if approved(approvals, entry, name) {
            "approved"
        } else {
            "local"
        };
        let mut lines = name.split('\n');
        let first = lines.next().unwrap_or_default();
        let _ = writeln!(t, "  {n:>width$}  {upload:<8}  {}", terminal_safe(first));
        for frame in lines {
            let _ = writeln!(t, "  {:>width$}  {:<8}    {}", "", "", terminal_safe(frame));
        }
    };
    for (name, &n) in &entry.counters {
        row(t, name, n);
    }
    for (name, &n) in &entry.stacks {
        row(t, name, n);
    }
}
