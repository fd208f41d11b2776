//! Merging a day: every report of `uploaded/<date>/` into `merged/<date>.json` (one
//! JSON line per report, as Go's worker writes), its rows into
//! `parquet/date=<date>/part-*.parquet` ([`crate::parquet`]) and its chart data into
//! `charts/<date>.json`.
//!
//! Idempotent: the reports are read in key order and the outputs replaced whole, so
//! merging a day twice writes the same bytes. `charts/<date>.json` is written last
//! and records how many objects it saw, so a day counts as merged only when every
//! output is complete and no report arrived since. One merge of a day runs at a time
//! over every process sharing the store ([`crate::merge_lock`]): collectors merging
//! at once leave the outputs of one listing, never a mix.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt, stream};
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload};
use telemetry_internal::Day;
use telemetry_upload::Report;
use tokio::io::AsyncWriteExt;

use crate::ServerError;
use crate::charts::DaySummary;
use crate::merge_lock::MergeLock;
use crate::parquet::{DayParquet, generation};
use crate::stacks::{DayStacks, name_report, read_day_stacks};
use crate::storage::{Storage, charts_key, date_of, merged_key, stacks_key, uploaded_dir};
use crate::symbols_store::{Namer, stored_build_ids};

/// How many reports are fetched at once: enough to hide S3's latency, few enough
/// that memory stays flat (each is at most the upload limit).
const FETCH_CONCURRENCY: usize = 32;
/// The merged file is written in parts of about this size.
const WRITE_CHUNK: usize = 4 << 20;

/// What a merge did for one day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergedDay {
    /// The week (the reports' `Week`).
    pub date: Day,
    /// Reports merged.
    pub reports: u64,
    /// Stored objects that were not reports (logged and left out).
    pub skipped: u64,
}

impl std::fmt::Display for MergedDay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: merged {} reports", self.date, self.reports)?;
        if self.skipped > 0 {
            write!(f, " ({} objects skipped)", self.skipped)?;
        }
        Ok(())
    }
}

/// Merges `date`, or with `None` every day with reports that are not merged yet (no
/// chart data, chart data from fewer reports than are stored now, or raw stack frames
/// of a build whose symbols have been added since). Returns what was merged, oldest
/// first.
///
/// Raw frames are named from the stored symbols (tables loaded once per merge): in
/// the merged lines, the chart data and `stacks/<date>.json` alike.
///
/// Each day is merged under its merge lock, listed once the lock is held; a day found
/// merged by then (another process did it while this one waited) is skipped when
/// `date` is `None`.
pub async fn merge(storage: &Storage, date: Option<Day>) -> Result<Vec<MergedDay>, ServerError> {
    let (days, with_symbols) = match date {
        Some(date) => (vec![date], Vec::new()),
        None => unmerged_days(storage).await?,
    };
    let namer = Arc::new(Namer::new(storage, None));
    let mut merged = Vec::new();
    for day in days {
        let lock = MergeLock::acquire(&storage.store, day).await?;
        let result = async {
            let objects = list(storage, &uploaded_dir(day)).await?;
            if date.is_none() && !needs_merge(storage, day, &objects, &with_symbols).await? {
                return Ok(None);
            }
            merge_day(storage, day, objects, &namer, &lock)
                .await
                .map(Some)
        }
        .await;
        lock.release().await;
        merged.extend(result?);
    }
    Ok(merged)
}

fn storage_error(action: String) -> impl FnOnce(object_store::Error) -> ServerError {
    move |source| ServerError::Storage { action, source }
}

/// Every object under `prefix`, in key order.
async fn list(storage: &Storage, prefix: &Path) -> Result<Vec<ObjectMeta>, ServerError> {
    let mut objects: Vec<ObjectMeta> = match storage.store.list(Some(prefix)).try_collect().await {
        Ok(objects) => objects,
        Err(object_store::Error::NotFound { .. }) => Vec::new(),
        Err(err) => return Err(storage_error(format!("listing {prefix}/"))(err)),
    };
    objects.sort_by(|a, b| a.location.cmp(&b.location));
    Ok(objects)
}

/// The dates under `dir/` (`dir/<date>/` or `dir/<date>.json`), sorted.
pub(crate) async fn dates_in(storage: &Storage, dir: &str) -> Result<Vec<Day>, ServerError> {
    let prefix = Path::from(dir);
    let listed = match storage.store.list_with_delimiter(Some(&prefix)).await {
        Ok(listed) => listed,
        Err(object_store::Error::NotFound { .. }) => return Ok(Vec::new()),
        Err(err) => return Err(storage_error(format!("listing {dir}/"))(err)),
    };
    let mut dates: Vec<Day> = listed
        .common_prefixes
        .iter()
        .chain(listed.objects.iter().map(|o| &o.location))
        .filter_map(date_of)
        .collect();
    dates.sort();
    dates.dedup();
    Ok(dates)
}

/// The days to merge, and the build IDs with stored symbols (as `needs_merge` takes
/// them).
async fn unmerged_days(storage: &Storage) -> Result<(Vec<Day>, Vec<String>), ServerError> {
    let mut days = Vec::new();
    let dates = dates_in(storage, "uploaded").await?;
    let with_symbols = if dates.is_empty() {
        Vec::new()
    } else {
        stored_build_ids(storage).await?
    };
    for date in dates {
        let objects = list(storage, &uploaded_dir(date)).await?;
        if needs_merge(storage, date, &objects, &with_symbols).await? {
            days.push(date);
        }
    }
    Ok((days, with_symbols))
}

/// Whether `date` has no chart data, chart data from another number of objects than
/// `objects`, or raw frames of a build among `with_symbols` (sorted build IDs whose
/// symbols are stored).
async fn needs_merge(
    storage: &Storage,
    date: Day,
    objects: &[ObjectMeta],
    with_symbols: &[String],
) -> Result<bool, ServerError> {
    let merged = read_summary(storage, date).await?;
    let mut redo = merged.is_none_or(|summary| summary.objects != objects.len() as u64);
    if !redo && !with_symbols.is_empty() {
        // Symbols added since the merge can name frames it left raw.
        redo = read_day_stacks(storage, date).await?.is_some_and(|stacks| {
            stacks
                .unnamed
                .iter()
                .any(|id| with_symbols.binary_search(id).is_ok())
        });
    }
    Ok(redo)
}

/// `charts/<date>.json`, or `None` if there is none or it does not parse.
pub(crate) async fn read_summary(
    storage: &Storage,
    date: Day,
) -> Result<Option<DaySummary>, ServerError> {
    let key = charts_key(date);
    let bytes = match storage.store.get(&key).await {
        Ok(got) => got.bytes().await,
        Err(err) => Err(err),
    };
    match bytes {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(err) => Err(storage_error(format!("reading {key}"))(err)),
    }
}

async fn merge_day(
    storage: &Storage,
    date: Day,
    objects: Vec<ObjectMeta>,
    namer: &Arc<Namer>,
    lock: &MergeLock,
) -> Result<MergedDay, ServerError> {
    let store: Arc<dyn ObjectStore> = Arc::clone(&storage.store);
    let mut parquet = DayParquet::new(Arc::clone(&store), date, generation(&objects));
    let merged_path = merged_key(date);
    let mut summary = DaySummary {
        objects: objects.len() as u64,
        ..DaySummary::default()
    };
    let mut stacks = DayStacks::default();
    let mut result = MergedDay {
        date,
        reports: 0,
        skipped: 0,
    };
    let mut writer = BufWriter::with_capacity(Arc::clone(&store), merged_path.clone(), WRITE_CHUNK);
    let written = async {
        // Each object is fetched and parsed in its own task, so parsing (the bulk of a
        // merge's CPU) runs on every worker thread; `buffered` keeps key order.
        let mut fetched = stream::iter(objects)
            .map(|meta| {
                let store = Arc::clone(&store);
                let namer = Arc::clone(namer);
                tokio::spawn(async move {
                    let got = match store.get(&meta.location).await {
                        Ok(got) => got.bytes().await,
                        Err(err) => Err(err),
                    };
                    match got {
                        Ok(bytes) => {
                            let report = match Report::parse(&bytes) {
                                Ok(mut report) => {
                                    let named = name_report(&namer, &mut report).await;
                                    Ok((report, named))
                                }
                                Err(err) => Err(err),
                            };
                            Ok(Some((meta.location, bytes, report)))
                        }
                        // Deleted since the listing: nothing to merge.
                        Err(object_store::Error::NotFound { .. }) => Ok(None),
                        Err(err) => Err(storage_error(format!("reading {}", meta.location))(err)),
                    }
                })
            })
            .buffered(FETCH_CONCURRENCY);
        let mut chunk = Vec::with_capacity(WRITE_CHUNK);
        while let Some(fetched) = fetched.next().await {
            let fetched = fetched.map_err(|err| ServerError::Storage {
                action: format!("reading uploaded/{date}/"),
                source: object_store::Error::JoinError { source: err },
            })?;
            let Some((location, bytes, report)) = fetched? else {
                result.skipped += 1;
                continue;
            };
            match report {
                Ok((report, (renamed, unnamed))) => {
                    summary.add_report(&report);
                    parquet.add(&report).await?;
                    stacks.add_report(&report);
                    stacks.unnamed.extend(unnamed);
                    // Stored reports are this server's own compact JSON, one line;
                    // anything else, and a report whose frames were named, is
                    // written again as one.
                    if renamed || bytes.contains(&b'\n') {
                        serde_json::to_writer(&mut chunk, &report).unwrap_or_default();
                    } else {
                        chunk.extend_from_slice(&bytes);
                    }
                    chunk.push(b'\n');
                    result.reports += 1;
                }
                Err(err) => {
                    tracing::warn!(object = %location, error = %err, "not a report; left out of the merge");
                    result.skipped += 1;
                }
            }
            if chunk.len() >= WRITE_CHUNK {
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(WRITE_CHUNK));
                writer
                    .put(Bytes::from(full))
                    .await
                    .map_err(storage_error(format!("writing {merged_path}")))?;
            }
        }
        if !chunk.is_empty() {
            writer
                .put(Bytes::from(chunk))
                .await
                .map_err(storage_error(format!("writing {merged_path}")))?;
        }
        Ok(())
    }
    .await;
    if let Err(err) = written {
        // Nothing was made visible; drop the parts already sent.
        let _ = writer.abort().await;
        return Err(err);
    }
    // A merge that stalled past its lease publishes nothing.
    if let Err(err) = lock.check_held().await {
        let _ = writer.abort().await;
        return Err(err);
    }
    // Completing the upload is what makes the merged file appear, whole. If it
    // fails, the writer has cleaned up after itself.
    writer
        .shutdown()
        .await
        .map_err(|err| ServerError::Storage {
            action: format!("writing {merged_path}"),
            source: object_store::Error::Generic {
                store: "merge",
                source: Box::new(err),
            },
        })?;
    let parts = parquet.finish().await?;
    // Before the chart data, whose presence marks the day merged.
    stacks.trim();
    let key = stacks_key(date);
    store
        .put(
            &key,
            PutPayload::from(serde_json::to_vec(&stacks).unwrap_or_default()),
        )
        .await
        .map_err(storage_error(format!("writing {key}")))?;
    // Again before the output that marks the day merged.
    lock.check_held().await?;
    summary.trim_stacks();
    let charts = serde_json::to_vec(&summary).unwrap_or_default();
    let key = charts_key(date);
    store
        .put(&key, PutPayload::from(charts))
        .await
        .map_err(storage_error(format!("writing {key}")))?;
    tracing::info!(date = %date, reports = result.reports, skipped = result.skipped, parquet_parts = parts, "merged");
    Ok(result)
}
