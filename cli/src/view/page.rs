//! `telemetry view`'s HTML page: every name escaped, charts as inline SVG, the style
//! inline, no script.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use telemetry_internal::Day;

use super::{DO_NOT_TRACK_NOTE, Page, approvals_sentence, approved, shown_path};
use crate::data::Entry;
use crate::html::escape;
use crate::upload::Approvals;

/// The page.
pub(super) fn html(page: &Page) -> String {
    let mut p = String::with_capacity(16 * 1024);
    p.push_str(concat!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
        // Nothing may be fetched: the page is about privacy and must not phone home.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
        "<title>Telemetry: what this machine collected</title>\n<style>\n",
        include_str!("../view.css"),
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
