//! The Crashes page (`GET /crashes?since=YYYY-MM-DD`) and its data as JSON
//! (`GET /api/stacks?since=YYYY-MM-DD`): every distinct stack since that day, named
//! with the symbols stored now, with its claim.
//!
//! Same rules as the dashboard: server-rendered, no script, the dashboard's
//! Content-Security-Policy, and every name (frames, programs, versions, issue URLs)
//! through the dashboard's one escaper.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use telemetry_internal::Day;

use crate::claims::Claims;
use crate::dashboard::{escape, page};
use crate::http::App;
use crate::stacks::{ClaimStatus, StackRow, rows_json, stack_rows};
use crate::symbols_store::Namer;

/// How far back the list goes when no `since` is given: twelve weeks.
pub const DEFAULT_SINCE_DAYS: i64 = 84;

/// `since` from a query string: `Ok(None)` when absent, `Err` when not a date.
fn since_of(uri: &Uri) -> Result<Option<Day>, ()> {
    let Some(query) = uri.query() else {
        return Ok(None);
    };
    for pair in query.split('&') {
        if let Some(value) = pair.strip_prefix("since=") {
            return Day::parse(value).map(Some).ok_or(());
        }
    }
    Ok(None)
}

async fn rows(app: &App, uri: &Uri) -> Result<(Day, Vec<StackRow>, bool), Response> {
    let since = match since_of(uri) {
        Ok(Some(since)) => since,
        Ok(None) => Day::of(app.now()).plus(-DEFAULT_SINCE_DAYS),
        Err(()) => {
            return Err(crate::http::text(
                StatusCode::BAD_REQUEST,
                "since must be a YYYY-MM-DD date",
            ));
        }
    };
    let (claims, configured) = match &app.claims {
        Some(live) => (live.get(), true),
        None => (Arc::new(Claims::default()), false),
    };
    let namer = Namer::new(&app.storage, Some(app.symbols.clone()));
    match stack_rows(&app.storage, Some(since), &namer, &claims).await {
        Ok(rows) => Ok((since, rows, configured)),
        Err(err) => {
            tracing::error!(error = %err, "stacks: storage failed");
            Err(crate::http::text(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage is unavailable; try again later",
            ))
        }
    }
}

/// `GET /api/stacks`.
pub(crate) async fn api(State(app): State<Arc<App>>, uri: Uri) -> Response {
    match rows(&app, &uri).await {
        Ok((since, rows, _)) => {
            let mut response = (StatusCode::OK, rows_json(Some(since), &rows)).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(response) => response,
    }
}

/// `GET /crashes`.
pub(crate) async fn crashes(State(app): State<Arc<App>>, uri: Uri) -> Response {
    let (since, rows, configured) = match rows(&app, &uri).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let title = format!("Crashes since {since}");
    let mut html = String::with_capacity(32 * 1024);
    let _ = writeln!(html, "<h1>{}</h1>", escape(&title));
    let _ = writeln!(
        html,
        "<nav><a href=\"/\">Dashboard</a><a href=\"/api/stacks?since={since}\">JSON</a></nav>"
    );
    let unclaimed = rows
        .iter()
        .filter(|r| r.status == ClaimStatus::Unclaimed)
        .count();
    let conflicts = rows
        .iter()
        .filter(|r| r.status == ClaimStatus::Conflict)
        .count();
    let _ = writeln!(
        html,
        "<p class=\"muted\">{} distinct stacks: {unclaimed} unclaimed, {conflicts} claimed by more than one issue. {} \
         Unclaimed first, then the most recently seen.</p>",
        rows.len(),
        if configured {
            "Claims come from the stacks config."
        } else {
            "No stacks config: start the server with <code>--stacks-config FILE</code> to claim stacks for issues."
        }
    );
    if rows.is_empty() {
        html.push_str("<p>No stacks in the merged reports of these weeks.</p>\n");
        return page(StatusCode::OK, &title, &html);
    }
    html.push_str(
        "<table class=\"stacks\">\n<tr><th>stack</th><th>claim</th><th>count</th><th>reports</th>\
         <th>programs</th><th>OS/arch</th><th>weeks</th></tr>\n",
    );
    for row in &rows {
        let _ = write!(
            html,
            "<tr id=\"{0}\" class=\"head\"><td class=\"id\"><a href=\"#{0}\"><code>{0}</code></a><br><code>{1}</code></td><td>",
            escape(&row.id),
            escape(&row.prefix)
        );
        match row.status {
            ClaimStatus::Unclaimed => {
                let _ = write!(
                    html,
                    "<span class=\"unclaimed\">unclaimed</span><br><span class=\"muted\">predicate:</span> <code>{}</code>",
                    escape(&row.predicate)
                );
            }
            ClaimStatus::Claimed => {
                let _ = write!(html, "<a href=\"{0}\">{0}</a>", escape(&row.issues[0]));
            }
            ClaimStatus::Conflict => {
                html.push_str("<span class=\"conflict\">conflict</span>");
                for issue in &row.issues {
                    let _ = write!(html, "<br><a href=\"{0}\">{0}</a>", escape(issue));
                }
            }
        }
        let programs: Vec<String> = row
            .programs
            .iter()
            .map(|(program, versions)| {
                let versions: Vec<&str> = versions.iter().map(String::as_str).collect();
                format!("{} {}", escape(program), escape(&versions.join(", ")))
            })
            .collect();
        let platforms: Vec<&str> = row.platforms.iter().map(String::as_str).collect();
        let weeks = if row.first_week == row.last_week {
            escape(&row.first_week)
        } else {
            format!("{} to {}", escape(&row.first_week), escape(&row.last_week))
        };
        let _ = write!(
            html,
            "</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td><td class=\"weeks\">{weeks}</td></tr>\n\
             <tr class=\"frames\"><td></td><td colspan=\"6\"><pre>{}</pre>",
            row.count,
            row.reports,
            programs.join("<br>"),
            escape(&platforms.join(" ")),
            escape(&row.frames.join("\n"))
        );
        if row.raw {
            html.push_str("<span class=\"muted\">raw frames: no symbols stored for their build yet (<code>telemetry-server symbols add</code>)</span>");
        }
        html.push_str("</td></tr>\n");
    }
    html.push_str("</table>\n");
    page(StatusCode::OK, &title, &html)
}
