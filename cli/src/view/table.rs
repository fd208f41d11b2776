//! `telemetry view --text`: the same data as a table for the terminal, every untrusted
//! name made safe for it.

use std::fmt::Write as _;

use super::{DO_NOT_TRACK_NOTE, Page, approvals_sentence, approved, shown_path};
use crate::data::Entry;
use crate::terminal_safe;
use crate::upload::Approvals;

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
