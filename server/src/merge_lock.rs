//! One merge of a day at a time, across every process on one store: a lock object
//! `locks/merge/<date>/<epoch>` taken with a create-only PUT (S3's
//! `If-None-Match: *`, a hard link on local files), so that two collectors (or a
//! collector and `telemetry-server merge`) merging one day never interleave their
//! outputs.
//!
//! Without it, two merges of a day that listed different reports (one landed in
//! between) could leave `merged/<date>.json` from one and `charts/<date>.json` from
//! the other, and the Parquet parts of both.
//!
//! - **Taking it**: list the day's lock objects; if the highest epoch was written
//!   within [`LEASE`], someone holds it: wait and look again. Otherwise create the
//!   next epoch; of several processes creating it at once exactly one succeeds.
//! - **Holding it**: the holder rewrites its object every [`LEASE`]/4, so a lock
//!   whose writer died is free after at most [`LEASE`]. Before it publishes
//!   `merged/` and again before `charts/`, a holder checks that its epoch is still
//!   there and no higher one exists (it was not taken over while stalled). Object
//!   stores offer no fencing, so a holder stalled between that check and its PUT
//!   could still overwrite a newer output; a lease of minutes against checks
//!   milliseconds apart makes that a stall of minutes at one exact instant, and
//!   `merge --date D` rewrites the day whole.
//! - **Giving it back**: delete the object. Older epochs (of dead holders) are
//!   deleted by whoever takes the lock next.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use telemetry_internal::Day;

use crate::ServerError;

/// How long a lock stays held without being rewritten.
pub(crate) const LEASE: Duration = Duration::from_secs(5 * 60);
/// How often a waiting process looks at the lock again.
const POLL: Duration = Duration::from_millis(250);

/// `locks/merge/<date>/`.
fn lock_dir(date: Day) -> Path {
    Path::from(format!("locks/merge/{date}"))
}

fn storage_error(action: String) -> impl FnOnce(object_store::Error) -> ServerError {
    move |source| ServerError::Storage { action, source }
}

/// A held merge lock; give it back with [`MergeLock::release`] (dropping it stops
/// the rewriting, so it expires after [`LEASE`]).
pub(crate) struct MergeLock {
    store: Arc<dyn ObjectStore>,
    date: Day,
    epoch: u64,
    key: Path,
    heartbeat: tokio::task::JoinHandle<()>,
}

/// The epochs of the day's lock objects, with when each was last written.
async fn epochs(
    store: &Arc<dyn ObjectStore>,
    date: Day,
) -> Result<Vec<(u64, ObjectMeta)>, ServerError> {
    let dir = lock_dir(date);
    let listed: Vec<ObjectMeta> = match store.list(Some(&dir)).try_collect().await {
        Ok(listed) => listed,
        Err(object_store::Error::NotFound { .. }) => Vec::new(),
        Err(err) => return Err(storage_error(format!("listing {dir}/"))(err)),
    };
    let mut epochs: Vec<(u64, ObjectMeta)> = listed
        .into_iter()
        .filter_map(|meta| Some((meta.location.filename()?.parse().ok()?, meta)))
        .collect();
    epochs.sort_by_key(|(epoch, _)| *epoch);
    Ok(epochs)
}

/// Whether `meta` was written within [`LEASE`] (by the store's clock against ours;
/// a lease of minutes absorbs ordinary skew).
fn is_live(meta: &ObjectMeta) -> bool {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    now.saturating_sub(meta.last_modified.timestamp()) < LEASE.as_secs() as i64
}

fn holder() -> PutPayload {
    PutPayload::from(format!("pid {}\n", std::process::id()))
}

impl MergeLock {
    /// Takes the lock of `date`, waiting while another process holds it.
    pub(crate) async fn acquire(
        store: &Arc<dyn ObjectStore>,
        date: Day,
    ) -> Result<MergeLock, ServerError> {
        let mut waiting_logged = false;
        loop {
            let held = epochs(store, date).await?;
            let top = held.last();
            if let Some((epoch, meta)) = top.filter(|(_, meta)| is_live(meta)) {
                if !waiting_logged {
                    tracing::info!(date = %date, epoch, lock = %meta.location, "waiting for another merge of the day");
                    waiting_logged = true;
                }
                tokio::time::sleep(POLL).await;
                continue;
            }
            let epoch = top.map_or(1, |(epoch, _)| epoch + 1);
            let key = Path::from(format!("{}/{epoch:020}", lock_dir(date)));
            let create = PutOptions {
                mode: PutMode::Create,
                ..PutOptions::default()
            };
            match store.put_opts(&key, holder(), create).await {
                Ok(_) => {}
                // Someone else took this epoch first.
                Err(object_store::Error::AlreadyExists { .. }) => continue,
                Err(err) => return Err(storage_error(format!("writing {key}"))(err)),
            }
            // Locks of dead holders: no longer needed to order epochs.
            for (_, stale) in &held {
                let _ = store.delete(&stale.location).await;
            }
            let heartbeat = tokio::spawn({
                let store = Arc::clone(store);
                let key = key.clone();
                async move {
                    loop {
                        tokio::time::sleep(LEASE / 4).await;
                        // Taken over (whoever took it deleted this epoch): do not
                        // bring it back.
                        if let Err(object_store::Error::NotFound { .. }) = store.head(&key).await {
                            tracing::warn!(lock = %key, "merge lock taken over by another process");
                            return;
                        }
                        if let Err(err) = store.put(&key, holder()).await {
                            tracing::warn!(lock = %key, error = %err, "merge lock not renewed");
                        }
                    }
                }
            });
            return Ok(MergeLock {
                store: Arc::clone(store),
                date,
                epoch,
                key,
                heartbeat,
            });
        }
    }

    /// `Ok` if no other process has taken the lock over (after this one stalled past
    /// its lease): this epoch is still there (a taker deletes it) and no later one.
    pub(crate) async fn check_held(&self) -> Result<(), ServerError> {
        let held = epochs(&self.store, self.date).await?;
        let ours = held.iter().any(|(epoch, _)| *epoch == self.epoch);
        let later = held.last().is_some_and(|(epoch, _)| *epoch > self.epoch);
        if ours && !later {
            return Ok(());
        }
        Err(ServerError::Storage {
            action: format!("merging {}", self.date),
            source: object_store::Error::Precondition {
                path: self.key.to_string(),
                source: "the merge lock was taken over by another process".into(),
            },
        })
    }

    /// Gives the lock back.
    pub(crate) async fn release(self) {
        self.heartbeat.abort();
        if let Err(err) = self.store.delete(&self.key).await {
            tracing::warn!(lock = %self.key, error = %err, "merge lock not removed; it expires by itself");
        }
    }
}

impl Drop for MergeLock {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}
