//! The HTTP side: the routes, the upload handler, and the accept loop with its
//! time-outs and graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::BodyExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use telemetry_internal::Day;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::live_config::LiveConfig;
use crate::storage::{Storage, uploaded_key};
use crate::validate::{Rejection, check_report, url_date};
use crate::{ServeConfig, dashboard};

/// What every request handler shares.
pub(crate) struct App {
    pub(crate) storage: Storage,
    pub(crate) config: Arc<LiveConfig>,
    pub(crate) settings: ServeConfig,
    /// One permit per byte of the request bodies being received at once
    /// ([`ServeConfig::max_receiving_bytes`]).
    pub(crate) receiving: Arc<Semaphore>,
    /// The stacks config, if one was given.
    pub(crate) claims: Option<Arc<crate::claims::LiveClaims>>,
    /// Symbol tables loaded for the Crashes page and the stacks API.
    pub(crate) symbols: crate::symbols_store::TableCache,
}

impl App {
    /// Now by the server's clock: the real time, or the same time of day on
    /// [`ServeConfig::today`].
    pub(crate) fn now(&self) -> SystemTime {
        let now = SystemTime::now();
        match self.settings.today {
            None => now,
            Some(today) => {
                let since_midnight = now.duration_since(Day::of(now).start()).unwrap_or_default();
                today.start() + since_midnight
            }
        }
    }
}

pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/config.json", get(config_json))
        .route("/upload/{*date}", post(upload))
        .route("/upload/", post(upload))
        .route("/healthz", get(healthz))
        .route("/", get(dashboard::index))
        .route("/charts/{week}", get(dashboard::week))
        .route("/style.css", get(dashboard::style))
        .route("/crashes", get(crate::stacks_page::crashes))
        .route("/api/stacks", get(crate::stacks_page::api))
        .fallback(not_found)
        .with_state(app)
}

/// A plain-text answer of one line.
pub(crate) fn text(status: StatusCode, line: impl std::fmt::Display) -> Response {
    let mut response = (status, format!("{line}\n")).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Any other path: logged, because a tool whose URL lacks `/upload` (or has a typo)
/// sends here, and its operator looks for that in the logs.
async fn not_found(request: Request) -> Response {
    let path: String = request.uri().path().chars().take(200).collect();
    tracing::info!(method = %request.method(), path = %path, "no such path");
    let date = path.rsplit('/').next().and_then(Day::parse);
    if request.method() == axum::http::Method::POST && date.is_some() {
        return text(
            StatusCode::NOT_FOUND,
            "not found: reports are posted to /upload/YYYY-MM-DD",
        );
    }
    text(StatusCode::NOT_FOUND, "not found")
}

async fn healthz() -> Response {
    text(StatusCode::OK, "ok")
}

async fn config_json(State(app): State<Arc<App>>) -> Response {
    let loaded = app.config.get();
    let mut response = (StatusCode::OK, loaded.bytes.clone()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // Clients fetch it at most once per upload run; a reload should reach them.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `POST /upload/<date>`: 200 stored (or stored before), 400 rejected, 408 too slow,
/// 425 week not ended yet, 503 busy or storage failed. Nothing is stored unless the
/// whole report is accepted.
async fn upload(State(app): State<Arc<App>>, request: Request) -> Response {
    let started = Instant::now();
    let segment = request
        .uri()
        .path()
        .strip_prefix("/upload/")
        .unwrap_or_default()
        .to_owned();
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let outcome = receive(&app, &segment, declared, request.into_body()).await;
    let elapsed_us = started.elapsed().as_micros() as u64;
    match outcome {
        Ok((response, week, x, stored)) => {
            tracing::debug!(week = %week, x, stored, elapsed_us, "upload accepted");
            response
        }
        Err(Refused::Rejected(why @ Rejection::InFuture { wait, .. })) => {
            tracing::info!(path = %segment, reason = %why, elapsed_us, "upload too early");
            // Not a bad report: its client's clock is ahead of ours, and the same
            // report is welcome once the week has ended here.
            let mut response = text(StatusCode::TOO_EARLY, why);
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(wait.as_secs().max(1)),
            );
            response
        }
        Err(Refused::Rejected(why)) => {
            tracing::info!(path = %segment, reason = %why, elapsed_us, "upload rejected");
            text(StatusCode::BAD_REQUEST, why)
        }
        Err(Refused::TooSlow) => {
            tracing::info!(path = %segment, elapsed_us, "upload timed out");
            let mut response = text(
                StatusCode::REQUEST_TIMEOUT,
                "the request body was not received in time",
            );
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
        Err(Refused::Busy) => {
            tracing::warn!(path = %segment, elapsed_us, "upload refused: too many bodies being received");
            let mut response = text(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server is busy receiving other reports; nothing was stored, try again later",
            );
            let headers = response.headers_mut();
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(BUSY_RETRY_AFTER_SECS),
            );
            // The body was not read: the connection cannot be used again.
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
        Err(Refused::Storage(err)) => {
            let err = err.to_string().replace('\n', " ");
            tracing::error!(path = %segment, error = %err, elapsed_us, "upload not stored");
            let mut response = text(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage is unavailable; nothing was stored, try again later",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("3600"));
            response
        }
    }
}

/// `Retry-After` of a `503` for a server busy receiving: uploaders come back the next
/// day anyway; a client that honours it waits a minute.
const BUSY_RETRY_AFTER_SECS: u64 = 60;

enum Refused {
    Rejected(Rejection),
    TooSlow,
    /// The bytes of bodies being received would exceed
    /// [`ServeConfig::max_receiving_bytes`].
    Busy,
    Storage(object_store::Error),
}

/// A body received whole, with its share of the receiving budget (given back when
/// dropped).
struct Received {
    bytes: Vec<u8>,
    _budget: OwnedSemaphorePermit,
}

/// Reads a body of at most `limit` bytes, holding budget for every byte held. A
/// declared length is reserved before the first byte is read, so a client that
/// stalls holds only what it declared, and a server that is full says so before
/// anything arrives; a chunked body takes budget as it comes.
async fn read_body(
    mut body: Body,
    declared_length: Option<u64>,
    limit: usize,
    budget: &Arc<Semaphore>,
) -> Result<Received, Refused> {
    let permits = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    let declared = declared_length.map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX));
    let mut held = Arc::clone(budget)
        .try_acquire_many_owned(permits(declared))
        .map_err(|_| Refused::Busy)?;
    let mut bytes = Vec::with_capacity(declared);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|err| {
            Refused::Rejected(Rejection::NotAReport {
                reason: format!("the body could not be read: {}", err.into_inner()),
            })
        })?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        let len = bytes.len().saturating_add(data.len());
        if len > limit {
            return Err(Refused::Rejected(Rejection::TooLarge { limit }));
        }
        let more = len.saturating_sub(held.num_permits());
        if more > 0 {
            let extra = Arc::clone(budget)
                .try_acquire_many_owned(permits(more))
                .map_err(|_| Refused::Busy)?;
            held.merge(extra);
        }
        // Copied, so that hyper's read buffer behind `data` is free to be reused.
        bytes.extend_from_slice(&data);
    }
    Ok(Received {
        bytes,
        _budget: held,
    })
}

async fn receive(
    app: &App,
    segment: &str,
    declared_length: Option<u64>,
    body: Body,
) -> Result<(Response, Day, f64, bool), Refused> {
    let date = url_date(segment).map_err(Refused::Rejected)?;
    let limit = app.settings.max_body_bytes;
    // Refuse a declared oversize body before reading a byte of it.
    if declared_length.is_some_and(|n| n > limit as u64) {
        return Err(Refused::Rejected(Rejection::TooLarge { limit }));
    }
    // A whole-body deadline, so a client that trickles bytes cannot hold a task and
    // a connection for ever (headers have hyper's own deadline).
    let received = tokio::time::timeout(
        app.settings.read_timeout,
        read_body(body, declared_length, limit, &app.receiving),
    )
    .await
    .map_err(|_| Refused::TooSlow)??;
    let config = app.config.get();
    let report = check_report(&received.bytes, date, &config.parsed, app.now())
        .map_err(Refused::Rejected)?;
    drop(received);
    // Store our own serialization: what was validated, in one canonical form.
    let stored = serde_json::to_vec(&report).unwrap_or_default();
    let key = uploaded_key(date, report.x);
    let options = PutOptions {
        mode: PutMode::Create,
        ..PutOptions::default()
    };
    let created = match app
        .storage
        .store
        .put_opts(&key, PutPayload::from(stored), options)
        .await
    {
        Ok(_) => true,
        // A report sent again (its client never saw our answer): it is stored.
        Err(object_store::Error::AlreadyExists { .. }) => false,
        // Storage that cannot take a write (read-only, full) may still hold the
        // report from the first time it was sent: then the client is done.
        Err(err) => match app.storage.store.head(&key).await {
            Ok(_) => false,
            Err(_) => return Err(Refused::Storage(err)),
        },
    };
    let line = if created { "stored" } else { "already stored" };
    Ok((text(StatusCode::OK, line), date, report.x, created))
}

/// Accepts connections until `shutdown` resolves, then lets the requests in flight
/// finish (up to the grace period) and returns.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    router: Router,
    settings: &ServeConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), crate::ServerError> {
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        // Slow-loris: the whole header must arrive within the read time-out.
        .header_read_timeout(Some(settings.read_timeout))
        .max_buf_size(64 * 1024);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, _peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of descriptors or a connection reset before accept: wait a
                // moment instead of spinning, and go on serving.
                tracing::warn!(error = %err, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let connection = http.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!("shutting down: waiting for requests in flight");
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(settings.shutdown_grace) => {
            tracing::warn!("requests still in flight after the grace period; stopping anyway");
        }
    }
    Ok(())
}
