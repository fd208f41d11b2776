//! The dashboard: `GET /` (the latest week) and `GET /charts/<week>` (the week ending
//! on that day), server-rendered HTML with inline SVG bars, four weeks side by side.
//!
//! Every name on the page came from a client (program, counter, bucket, frame), so
//! every one goes through [`escape`]; the page carries a Content-Security-Policy
//! that allows nothing but its own stylesheet, so even a missed escape could not run
//! a script. The page needs no JavaScript.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::future::try_join_all;
use telemetry_internal::Day;

use crate::charts::{Bar, DaySummary, ProgramSummary, top_stacks};
use crate::http::App;
use crate::merge::{dates_in, read_summary};

/// Weeks shown side by side, the newest first.
const WEEKS: usize = 4;
/// Buckets drawn per chart (the most reported); the rest are counted in a note.
const MAX_BUCKETS: usize = 40;
/// Stacks listed per program.
const TOP_STACKS: usize = 10;
/// Longest label drawn beside a bar, in characters.
const LABEL_CHARS: usize = 34;

const CSP: &str = "default-src 'none'; style-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
const STYLE: &str = include_str!("style.css");

pub(crate) async fn style() -> Response {
    let mut response = STYLE.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    response
}

/// The weeks a page can show: every day it names (four weeks back, one forward for
/// the link) is a date of years 1 to 9999, which is all `YYYY-MM-DD` can write.
fn shown_weeks() -> std::ops::RangeInclusive<Day> {
    let first_day = Day::parse("0001-01-01").expect("a date");
    let last_day = Day::parse("9999-12-31").expect("a date");
    first_day.plus(7 * WEEKS as i64 - 1)..=last_day.plus(-7)
}

pub(crate) async fn index(State(app): State<Arc<App>>) -> Response {
    match dates_in(&app.storage, "charts").await {
        Ok(dates) => match dates.iter().rev().find(|d| shown_weeks().contains(d)) {
            Some(&latest) => render_week(&app, latest, &dates).await,
            None => page(
                StatusCode::OK,
                "Telemetry",
                "<h1>Telemetry</h1>\n<p>No merged data yet: reports are merged once a day \
                 (or by <code>telemetry-server merge</code>).</p>\n<nav><a href=\"/crashes\">Crashes</a></nav>\n",
            ),
        },
        Err(err) => unavailable(&err),
    }
}

pub(crate) async fn week(State(app): State<Arc<App>>, Path(week): Path<String>) -> Response {
    let Some(week) = Day::parse(&week) else {
        return page(
            StatusCode::BAD_REQUEST,
            "Not a date",
            "<h1>Not a date</h1>\n<p>Expected <code>/charts/YYYY-MM-DD</code>.</p>\n",
        );
    };
    let range = shown_weeks();
    if !range.contains(&week) {
        let body = format!(
            "<h1>Out of range</h1>\n<p>Weeks end from {} to {}.</p>\n<nav><a href=\"/\">Latest week</a></nav>\n",
            range.start(),
            range.end()
        );
        return page(StatusCode::BAD_REQUEST, "Out of range", &body);
    }
    match dates_in(&app.storage, "charts").await {
        Ok(dates) => render_week(&app, week, &dates).await,
        Err(err) => unavailable(&err),
    }
}

fn unavailable(err: &crate::ServerError) -> Response {
    tracing::error!(error = %err, "dashboard: storage failed");
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Storage unavailable",
        "<h1>Storage unavailable</h1>\n<p>Try again later.</p>\n",
    )
}

/// The summed data of the week ending `end`, from the days that have chart data.
async fn load_week(
    app: &App,
    end: Day,
    available: &BTreeSet<Day>,
) -> Result<DaySummary, crate::ServerError> {
    let days = (0..7).map(|back| end.plus(-back));
    let reads = days
        .filter(|d| available.contains(d))
        .map(|d| read_summary(&app.storage, d));
    let mut week = DaySummary::default();
    for day in try_join_all(reads).await?.into_iter().flatten() {
        week.add(&day);
    }
    Ok(week)
}

async fn render_week(app: &App, end: Day, dates: &[Day]) -> Response {
    let available: BTreeSet<Day> = dates.iter().copied().collect();
    let ends: Vec<Day> = (0..WEEKS as i64).map(|i| end.plus(-7 * i)).collect();
    let weeks = match try_join_all(ends.iter().map(|&e| load_week(app, e, &available))).await {
        Ok(weeks) => weeks,
        Err(err) => return unavailable(&err),
    };
    let title = format!("Telemetry: the week ending {end}");
    if weeks[0].reports == 0 {
        let body = format!(
            "<h1>{}</h1>\n<p>No merged reports for this week.</p>\n<nav><a href=\"/\">Latest week</a></nav>\n",
            escape(&title)
        );
        return page(StatusCode::NOT_FOUND, &title, &body);
    }
    let mut html = String::with_capacity(64 * 1024);
    let _ = writeln!(html, "<h1>{}</h1>", escape(&title));
    let _ = writeln!(
        html,
        "<p class=\"muted\">{} reports, from {} to {}. Bars: the share of a program's reports that counted the bucket; \
         numbers: reports, then the counts summed.</p>",
        weeks[0].reports,
        end.plus(-6),
        end
    );
    html.push_str("<nav>");
    {
        let prev = end.plus(-7);
        let _ = write!(
            html,
            "<a href=\"/charts/{0}\">\u{2190} week ending {0}</a>",
            prev
        );
    }
    {
        let next = end.plus(7);
        if dates.last().is_some_and(|&last| last >= next.plus(-6)) {
            let _ = write!(
                html,
                "<a href=\"/charts/{0}\">week ending {0} \u{2192}</a>",
                next
            );
        }
    }
    html.push_str(
        "<a href=\"/\">latest</a><a href=\"/crashes\">Crashes</a></nav>\n<p class=\"legend\">",
    );
    for (i, e) in ends.iter().enumerate() {
        let _ = write!(
            html,
            "<span><span class=\"swatch w{i}\"></span>week ending {} ({} reports)</span>",
            e, weeks[i].reports
        );
    }
    html.push_str("</p>\n");

    let empty = ProgramSummary::default();
    for (name, program) in &weeks[0].programs {
        let per_week: Vec<&ProgramSummary> = weeks
            .iter()
            .map(|w| w.programs.get(name).unwrap_or(&empty))
            .collect();
        let _ = writeln!(html, "<section>\n<h2>{}</h2>", escape(name));
        let _ = writeln!(
            html,
            "<p class=\"muted\">{} reports this week.</p>",
            program.reports
        );
        html.push_str("<h3>Builds</h3>\n");
        for kind in ["Version", "Toolchain", "OS", "Arch"] {
            let charts: Vec<Option<&BTreeMap<String, Bar>>> =
                per_week.iter().map(|p| p.builds.get(kind)).collect();
            chart(&mut html, kind, &charts, &per_week, false);
        }
        if !program.charts.is_empty() {
            html.push_str("<h3>Counters</h3>\n");
            for chart_name in program.charts.keys() {
                let charts: Vec<Option<&BTreeMap<String, Bar>>> =
                    per_week.iter().map(|p| p.charts.get(chart_name)).collect();
                chart(&mut html, chart_name, &charts, &per_week, true);
            }
        }
        if !program.stacks.is_empty() {
            // Named again (symbols may have been added since the day was merged); two
            // that become one are summed.
            let namer = crate::symbols_store::Namer::new(&app.storage, Some(app.symbols.clone()));
            let mut named: BTreeMap<String, Bar> = BTreeMap::new();
            for (stack, bar) in &program.stacks {
                let stack = crate::stacks::named_now(&namer, stack).await;
                let total = named.entry(stack).or_default();
                total.reports = total.reports.saturating_add(bar.reports);
                total.count = total.count.saturating_add(bar.count);
            }
            let top = top_stacks(&named, TOP_STACKS);
            let _ = writeln!(
                html,
                "<h3>Top stacks</h3>\n<table>\n<tr><th>count</th><th>reports</th><th>stack</th></tr>"
            );
            for (stack, bar) in top {
                let _ = writeln!(
                    html,
                    "<tr><td class=\"n\">{}</td><td class=\"n\">{}</td><td><pre>{}</pre></td></tr>",
                    bar.count,
                    bar.reports,
                    escape(stack)
                );
            }
            html.push_str("</table>\n");
        }
        html.push_str("</section>\n");
    }
    page(StatusCode::OK, &title, &html)
}

/// One chart: a row per bucket, a bar per week; `sums` adds the summed counts
/// (a build chart's sums are just its report counts).
fn chart(
    html: &mut String,
    name: &str,
    weeks: &[Option<&BTreeMap<String, Bar>>],
    programs: &[&ProgramSummary],
    sums: bool,
) {
    let Some(newest) = weeks[0] else { return };
    // The buckets most reported this week, then by name.
    let mut buckets: Vec<(&String, &Bar)> = newest.iter().collect();
    buckets.sort_by(|a, b| b.1.reports.cmp(&a.1.reports).then(a.0.cmp(b.0)));
    let hidden = buckets.len().saturating_sub(MAX_BUCKETS);
    buckets.truncate(MAX_BUCKETS);

    const LABEL_W: usize = 250;
    const BAR_W: usize = 360;
    const BAR_H: usize = 9;
    let row_h = WEEKS * (BAR_H + 1) + 8;
    let width = LABEL_W + BAR_W + 230;
    let height = buckets.len() * row_h + 4;
    let _ = writeln!(html, "<h4>{}</h4>", escape(name));
    let _ = writeln!(
        html,
        "<svg width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"{}\">",
        escape(name)
    );
    for (row, (bucket, _)) in buckets.iter().enumerate() {
        let top = row * row_h + 2;
        let label = if bucket.is_empty() {
            name
        } else {
            bucket.as_str()
        };
        let _ = writeln!(
            html,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            LABEL_W - 8,
            top + row_h / 2 + 2,
            escape(&shorten(label))
        );
        for (w, week) in weeks.iter().enumerate() {
            let bar = week
                .and_then(|m| m.get(*bucket))
                .copied()
                .unwrap_or_default();
            let total = programs[w].reports.max(1);
            let share = bar.reports as f64 / total as f64;
            let len = (share * BAR_W as f64).round() as usize;
            let y = top + w * (BAR_H + 1);
            let _ = writeln!(
                html,
                "<rect class=\"w{w}\" x=\"{LABEL_W}\" y=\"{y}\" width=\"{}\" height=\"{BAR_H}\" fill=\"{}\"><title>{}: {} of {} reports, count {}</title></rect>",
                len.max(usize::from(bar.reports > 0)),
                COLORS[w],
                escape(&shorten(label)),
                bar.reports,
                programs[w].reports,
                bar.count
            );
            if w == 0 {
                let _ = write!(
                    html,
                    "<text x=\"{}\" y=\"{}\">{:.0}% \u{b7} {} reports",
                    LABEL_W + BAR_W + 8,
                    y + BAR_H,
                    share * 100.0,
                    bar.reports,
                );
                if sums {
                    let _ = write!(html, " \u{b7} \u{3a3} {}", bar.count);
                }
                html.push_str("</text>\n");
            }
        }
    }
    html.push_str("</svg>\n");
    if hidden > 0 {
        let _ = writeln!(html, "<p class=\"muted\">and {hidden} more buckets.</p>");
    }
}

const COLORS: [&str; WEEKS] = ["#1f5fa8", "#5b8fd0", "#93b7e3", "#c9dbf1"];

fn shorten(label: &str) -> String {
    // A stack counter's name or a long bucket: one line, bounded.
    let one_line: String = label
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() > LABEL_CHARS {
        let mut short: String = one_line.chars().take(LABEL_CHARS - 1).collect();
        short.push('\u{2026}');
        short
    } else {
        one_line
    }
}

/// Escapes text for HTML and SVG content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub(crate) fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<link rel=\"stylesheet\" href=\"/style.css\">\n</head>\n<body>\n{body}</body>\n</html>\n",
        escape(title)
    );
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_that_could_be_markup() {
        assert_eq!(
            escape("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
    }

    #[test]
    fn shortens_long_and_multiline_labels() {
        assert_eq!(shorten("a\nb"), "a b");
        let long = "x".repeat(100);
        assert_eq!(shorten(&long).chars().count(), LABEL_CHARS);
    }
}
