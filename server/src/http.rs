//! The HTTP side: the routes, the upload handler, and the accept loop with its
//! time-outs and graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use object_store::{PutMode, PutOptions, PutPayload};
use telemetry_internal::Day;
use tokio::net::TcpListener;

use crate::live_config::LiveConfig;
use crate::storage::{Storage, uploaded_key};
use crate::validate::{Rejection, check_report, url_date};
use crate::{ServeConfig, dashboard};

/// What every request handler shares.
pub(crate) struct App {
    pub(crate) storage: Storage,
    pub(crate) config: Arc<LiveConfig>,
    pub(crate) settings: ServeConfig,
}

impl App {
    pub(crate) fn today(&self) -> Day {
        self.settings
            .today
            .unwrap_or_else(|| Day::of(std::time::SystemTime::now()))
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

async fn not_found() -> Response {
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
/// 503 storage failed. Nothing is stored unless the whole report is accepted.
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

enum Refused {
    Rejected(Rejection),
    TooSlow,
    Storage(object_store::Error),
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
    let bytes =
        match tokio::time::timeout(app.settings.read_timeout, axum::body::to_bytes(body, limit))
            .await
        {
            Err(_) => return Err(Refused::TooSlow),
            Ok(Err(err)) => {
                // to_bytes fails for an over-long body or a broken connection.
                let err = err.into_inner();
                return Err(Refused::Rejected(
                    if err.is::<http_body_util::LengthLimitError>() {
                        Rejection::TooLarge { limit }
                    } else {
                        Rejection::NotAReport {
                            reason: format!("the body could not be read: {err}"),
                        }
                    },
                ));
            }
            Ok(Ok(bytes)) => bytes,
        };
    let config = app.config.get();
    let report =
        check_report(&bytes, date, &config.parsed, app.today()).map_err(Refused::Rejected)?;
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
        Err(err) => return Err(Refused::Storage(err)),
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
