//! Symbols in the object store: `symbols add` and `symbols list`, and the loader that
//! naming uses, with its cache.
//!
//! Each build has `symbols/<build-id>/functions` (the table, see [`crate::symbols`])
//! and then `symbols/<build-id>/info.json` ([`SymbolsInfo`]): written in that order,
//! so a build is listed only once its table is whole. Adding a build ID again
//! replaces both.

use std::collections::{HashMap, HashSet};
use std::path::Path as FilePath;
use std::sync::{Arc, Mutex};

use futures_util::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use telemetry_internal::Day;

use crate::ServerError;
use crate::storage::{Storage, symbols_functions_key, symbols_info_key};
use crate::symbols::{FunctionTable, read_symbol_file};

/// The most bytes `symbols add` reads of one file (debug files of large programs are
/// a few hundred megabytes).
pub const MAX_SYMBOL_FILE_BYTES: u64 = 4 << 30;

/// What `symbols list` shows of one stored build.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SymbolsInfo {
    /// The build ID.
    #[serde(rename = "BuildId")]
    pub build_id: String,
    /// `elf`, `macho` or `pe`.
    #[serde(rename = "Format")]
    pub format: String,
    /// The machine.
    #[serde(rename = "Arch")]
    pub arch: String,
    /// How many functions the table holds.
    #[serde(rename = "Functions")]
    pub functions: u64,
    /// The name (not the path) of the file it was read from.
    #[serde(rename = "File")]
    pub file: String,
    /// The day it was added (UTC).
    #[serde(rename = "Added")]
    pub added: String,
}

impl std::fmt::Display for SymbolsInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}  {} {}  {} functions  {}  added {}",
            self.build_id, self.format, self.arch, self.functions, self.file, self.added
        )
    }
}

/// Reads each file and stores its symbols (one build per module: a universal Mach-O
/// file gives one per slice). Stops at the first file that cannot be read or gives no
/// symbols, with a typed error naming it; builds stored before it stay.
pub async fn add_symbols(
    storage: &Storage,
    files: &[impl AsRef<FilePath>],
    today: Day,
) -> Result<Vec<SymbolsInfo>, ServerError> {
    let mut added = Vec::new();
    for file in files {
        let file = file.as_ref().to_owned();
        let reading = file.clone();
        let modules = tokio::task::spawn_blocking(move || {
            let error = |source| ServerError::SymbolFileRead {
                path: reading.clone(),
                source,
            };
            // Links are followed (`/usr/lib/debug/.build-id/` is made of them), then
            // the target is read as a regular file of bounded size.
            let target = std::fs::canonicalize(&reading).map_err(error)?;
            let data = telemetry_internal::fs::read_bounded(&target, MAX_SYMBOL_FILE_BYTES)
                .map_err(error)?;
            read_symbol_file(&data).map_err(|problem| ServerError::SymbolFile {
                path: reading,
                problem,
            })
        })
        .await
        .map_err(|err| ServerError::SymbolFileRead {
            path: file.clone(),
            source: std::io::Error::other(err.to_string()),
        })??;
        for module in modules {
            let info = SymbolsInfo {
                build_id: module.build_id.clone(),
                format: module.format.to_owned(),
                arch: module.arch.clone(),
                functions: module.table.len() as u64,
                file: file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                added: today.to_string(),
            };
            put(
                storage,
                &symbols_functions_key(&module.build_id),
                module.table.to_text().into_bytes(),
            )
            .await?;
            let json = serde_json::to_vec(&info).unwrap_or_default();
            put(storage, &symbols_info_key(&module.build_id), json).await?;
            tracing::info!(build_id = %info.build_id, functions = info.functions, file = %info.file, "symbols added");
            added.push(info);
        }
    }
    Ok(added)
}

async fn put(storage: &Storage, key: &Path, bytes: Vec<u8>) -> Result<(), ServerError> {
    storage
        .store
        .put(key, PutPayload::from(bytes))
        .await
        .map(drop)
        .map_err(|source| ServerError::Storage {
            action: format!("writing {key}"),
            source,
        })
}

/// The build IDs with stored symbols (whole ones: with their `info.json`), sorted.
pub(crate) async fn stored_build_ids(storage: &Storage) -> Result<Vec<String>, ServerError> {
    let listed: Vec<_> = match storage
        .store
        .list(Some(&Path::from("symbols")))
        .try_collect()
        .await
    {
        Ok(listed) => listed,
        Err(object_store::Error::NotFound { .. }) => Vec::new(),
        Err(source) => {
            return Err(ServerError::Storage {
                action: "listing symbols/".to_owned(),
                source,
            });
        }
    };
    let mut ids: Vec<String> = listed
        .iter()
        .filter_map(|meta| {
            let mut parts = meta.location.parts();
            let (_, id, name) = (parts.next()?, parts.next()?, parts.next()?);
            (name.as_ref() == "info.json").then(|| id.as_ref().to_owned())
        })
        .collect();
    ids.sort();
    Ok(ids)
}

/// Every stored build's [`SymbolsInfo`], by build ID.
pub async fn list_symbols(storage: &Storage) -> Result<Vec<SymbolsInfo>, ServerError> {
    let mut infos = Vec::new();
    for id in stored_build_ids(storage).await? {
        let key = symbols_info_key(&id);
        // Removed since the listing: not listed.
        let Some(bytes) = get(storage, &key).await? else {
            continue;
        };
        match serde_json::from_slice::<SymbolsInfo>(&bytes) {
            Ok(info) => infos.push(info),
            Err(err) => {
                tracing::warn!(object = %key, error = %err, "not a symbols info; left out")
            }
        }
    }
    Ok(infos)
}

async fn get(storage: &Storage, key: &Path) -> Result<Option<bytes::Bytes>, ServerError> {
    let got = match storage.store.get(key).await {
        Ok(got) => got.bytes().await,
        Err(err) => Err(err),
    };
    match got {
        Ok(bytes) => Ok(Some(bytes)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(source) => Err(ServerError::Storage {
            action: format!("reading {key}"),
            source,
        }),
    }
}

/// Loaded tables kept between uses, for a long-running server: a build's symbols
/// never change meaning (a build ID names one build), so a table once loaded stays
/// right. Bounded: past [`TableCache::MAX_TABLES`] the cache starts again empty.
#[derive(Clone, Debug, Default)]
pub(crate) struct TableCache {
    tables: Arc<Mutex<HashMap<String, Arc<FunctionTable>>>>,
}

impl TableCache {
    const MAX_TABLES: usize = 64;

    fn get(&self, id: &str) -> Option<Arc<FunctionTable>> {
        let tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        tables.get(id).cloned()
    }

    fn insert(&self, id: &str, table: Arc<FunctionTable>) {
        let mut tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        if tables.len() >= Self::MAX_TABLES {
            tables.clear();
        }
        tables.insert(id.to_owned(), table);
    }
}

/// The symbol tables of one naming job (a merge, a page): each build ID is looked up
/// in storage once, found or not, and shared by every task of the job.
#[derive(Debug)]
pub(crate) struct Namer {
    storage: Storage,
    /// Tables kept across jobs, if any.
    shared: Option<TableCache>,
    /// This job's answers: a table, or `None` for a build ID with no symbols.
    loaded: Mutex<HashMap<String, Option<Arc<FunctionTable>>>>,
    /// Held while loading, so that tasks asking for the same build wait for the
    /// first load instead of repeating it.
    loading: tokio::sync::Mutex<()>,
}

impl Namer {
    pub(crate) fn new(storage: &Storage, shared: Option<TableCache>) -> Namer {
        Namer {
            storage: storage.clone(),
            shared,
            loaded: Default::default(),
            loading: Default::default(),
        }
    }

    /// The tables of `ids` (those that have symbols). A table that does not load is
    /// logged and treated as missing: its frames stay raw.
    pub(crate) async fn tables(
        &self,
        ids: &HashSet<&str>,
    ) -> HashMap<String, Option<Arc<FunctionTable>>> {
        let mut out = HashMap::with_capacity(ids.len());
        let known = |out: &mut HashMap<String, Option<Arc<FunctionTable>>>| {
            let loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
            for &id in ids {
                if let Some(table) = loaded.get(id) {
                    out.insert(id.to_owned(), table.clone());
                }
            }
        };
        // Most calls of a merge find every table loaded: no waiting on a load.
        known(&mut out);
        if out.len() == ids.len() {
            return out;
        }
        let _loading = self.loading.lock().await;
        known(&mut out);
        for &id in ids {
            if out.contains_key(id) {
                continue;
            }
            let table = match self.shared.as_ref().and_then(|c| c.get(id)) {
                Some(table) => Some(table),
                None => self.load(id).await,
            };
            let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
            loaded.insert(id.to_owned(), table.clone());
            out.insert(id.to_owned(), table);
        }
        out
    }

    async fn load(&self, id: &str) -> Option<Arc<FunctionTable>> {
        let key = symbols_functions_key(id);
        let bytes = match get(&self.storage, &key).await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return None,
            Err(err) => {
                tracing::warn!(error = %err, "symbols not loaded; frames stay raw");
                return None;
            }
        };
        let parsed = tokio::task::spawn_blocking(move || {
            std::str::from_utf8(&bytes)
                .map_err(|e| e.to_string())
                .and_then(FunctionTable::from_text)
        })
        .await
        .unwrap_or_else(|err| Err(err.to_string()));
        match parsed {
            Ok(table) => {
                let table = Arc::new(table);
                if let Some(cache) = &self.shared {
                    cache.insert(id, Arc::clone(&table));
                }
                Some(table)
            }
            Err(reason) => {
                tracing::warn!(object = %key, reason = %reason, "not a symbol table; frames stay raw");
                None
            }
        }
    }
}
