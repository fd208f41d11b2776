//! A merged day as Parquet, for query engines (DuckDB, Spark, Trino, Athena,
//! BigQuery): `parquet/date=<date>/part-<generation>-<n>.parquet`, Hive-style
//! partitioned by the reports' week, one row per (report, program, counter).
//!
//! | column      | type             | content                                              |
//! |-------------|------------------|------------------------------------------------------|
//! | `week`      | `DATE`           | the report's `Week` (also the partition's `date`)    |
//! | `x`         | `DOUBLE`         | the report's `X`: with `week`, the report's identity |
//! | `program`   | `STRING`         | `Program`                                            |
//! | `version`   | `STRING`         | `Version`                                            |
//! | `toolchain` | `STRING`         | `Toolchain`                                          |
//! | `os`        | `STRING`         | `OS`                                                 |
//! | `arch`      | `STRING`         | `Arch`                                               |
//! | `counter`   | `STRING` (null)  | the counter's name; null on the one row of a program entry with no counter |
//! | `count`     | `BIGINT`         | its count (saturated at 2⁶³−1; 0 is kept as uploaded) |
//! | `is_stack`  | `BOOLEAN`        | a stack counter (`Stacks`: `prefix\nframe…`), not a plain one |
//!
//! Every program entry of a report has at least one row, so `count(DISTINCT x)`
//! grouped by any build column counts reports as the dashboard does. Strings are
//! dictionary-encoded, pages Snappy-compressed.
//!
//! **Generations.** A merge names its parts after a hash of the sorted list of the
//! objects it merged (its *generation*): merging the same reports again writes the
//! same names with the same bytes. Once every part is written, the merge deletes the
//! day's parts of any other generation, then writes `charts/<date>.json`. Merges of
//! one day never run at once (the merge lock under `locks/merge/<date>/`), so a day
//! is left with exactly one generation; a reader that lists the directory while a
//! merge of new reports is between its first part and its clean-up may see both the
//! old and the new generation, and should filter on one `generation` (the file
//! name's) if it cannot tolerate that moment.

use std::sync::Arc;

use ::parquet::arrow::ArrowWriter;
use ::parquet::basic::Compression;
use ::parquet::file::properties::WriterProperties;
use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, StringBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use futures_util::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload};
use telemetry_internal::Day;
use telemetry_upload::Report;

use crate::ServerError;

/// Rows gathered before they are encoded as one record batch.
const BATCH_ROWS: usize = 64 * 1024;
/// Rows in one row group (engines parallelise over row groups).
const ROW_GROUP_ROWS: usize = 1024 * 1024;
/// A part is closed and stored once its encoded bytes pass this size, so a merge holds
/// at most one part in memory.
const PART_BYTES: usize = 128 << 20;

/// `parquet/date=<date>/`.
pub(crate) fn day_dir(date: Day) -> Path {
    Path::from(format!("parquet/date={date}"))
}

/// The columns, in order (see the module documentation).
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("week", DataType::Date32, false),
        Field::new("x", DataType::Float64, false),
        Field::new("program", DataType::Utf8, false),
        Field::new("version", DataType::Utf8, false),
        Field::new("toolchain", DataType::Utf8, false),
        Field::new("os", DataType::Utf8, false),
        Field::new("arch", DataType::Utf8, false),
        Field::new("counter", DataType::Utf8, true),
        Field::new("count", DataType::Int64, false),
        Field::new("is_stack", DataType::Boolean, false),
    ]))
}

/// The generation of a merge of `objects` (sorted by key): 16 hex digits of the
/// FNV-1a hash of their keys, so equal inputs give equal part names.
pub(crate) fn generation(objects: &[ObjectMeta]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for object in objects {
        for &byte in object.location.as_ref().as_bytes().iter().chain(b"\n") {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

/// The rows not yet encoded, column by column.
struct Rows {
    week: Date32Builder,
    x: Float64Builder,
    program: StringBuilder,
    version: StringBuilder,
    toolchain: StringBuilder,
    os: StringBuilder,
    arch: StringBuilder,
    counter: StringBuilder,
    count: Int64Builder,
    is_stack: BooleanBuilder,
    len: usize,
}

impl Rows {
    fn new() -> Rows {
        Rows {
            week: Date32Builder::with_capacity(BATCH_ROWS),
            x: Float64Builder::with_capacity(BATCH_ROWS),
            program: StringBuilder::new(),
            version: StringBuilder::new(),
            toolchain: StringBuilder::new(),
            os: StringBuilder::new(),
            arch: StringBuilder::new(),
            counter: StringBuilder::new(),
            count: Int64Builder::with_capacity(BATCH_ROWS),
            is_stack: BooleanBuilder::with_capacity(BATCH_ROWS),
            len: 0,
        }
    }

    fn batch(&mut self) -> RecordBatch {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.week.finish()),
            Arc::new(self.x.finish()),
            Arc::new(self.program.finish()),
            Arc::new(self.version.finish()),
            Arc::new(self.toolchain.finish()),
            Arc::new(self.os.finish()),
            Arc::new(self.arch.finish()),
            Arc::new(self.counter.finish()),
            Arc::new(self.count.finish()),
            Arc::new(self.is_stack.finish()),
        ];
        self.len = 0;
        RecordBatch::try_new(schema(), columns).expect("the columns follow the schema")
    }
}

/// Writes one day's parts as reports stream in; [`DayParquet::finish`] stores the
/// last part and removes the parts of other generations.
pub(crate) struct DayParquet {
    store: Arc<dyn ObjectStore>,
    date: Day,
    /// Days since 1970-01-01, as `DATE` stores it.
    week_days: i32,
    generation: String,
    rows: Rows,
    writer: Option<ArrowWriter<Vec<u8>>>,
    parts: Vec<Path>,
    /// Rows written, over every part.
    pub(crate) written_rows: u64,
}

fn write_error(key: impl std::fmt::Display, err: impl std::fmt::Display) -> ServerError {
    ServerError::Storage {
        action: format!("writing {key}"),
        source: object_store::Error::Generic {
            store: "parquet",
            source: err.to_string().into(),
        },
    }
}

impl DayParquet {
    /// A writer for `date`'s parts, named after `generation`.
    pub(crate) fn new(store: Arc<dyn ObjectStore>, date: Day, generation: String) -> DayParquet {
        let week_days = i32::try_from(Day::parse("1970-01-01").expect("a date").days_until(date))
            .unwrap_or(i32::MAX);
        DayParquet {
            store,
            date,
            week_days,
            generation,
            rows: Rows::new(),
            writer: None,
            parts: Vec::new(),
            written_rows: 0,
        }
    }

    fn part_key(&self, n: usize) -> Path {
        Path::from(format!(
            "{}/part-{}-{n:05}.parquet",
            day_dir(self.date),
            self.generation
        ))
    }

    /// Adds a report's rows; stores a part when it is full.
    pub(crate) async fn add(&mut self, report: &Report) -> Result<(), ServerError> {
        for p in &report.programs {
            let counters = p.counters.iter().map(|(name, &n)| (name, n, false));
            let stacks = p.stacks.iter().map(|(name, &n)| (name, n, true));
            let mut rows = counters.chain(stacks).peekable();
            let empty = rows.peek().is_none();
            let mut push = |counter: Option<&String>, count: u64, is_stack: bool| {
                let r = &mut self.rows;
                r.week.append_value(self.week_days);
                r.x.append_value(report.x);
                r.program.append_value(&p.program);
                r.version.append_value(&p.version);
                r.toolchain.append_value(&p.toolchain);
                r.os.append_value(&p.os);
                r.arch.append_value(&p.arch);
                r.counter.append_option(counter);
                r.count
                    .append_value(i64::try_from(count).unwrap_or(i64::MAX));
                r.is_stack.append_value(is_stack);
                r.len += 1;
            };
            if empty {
                push(None, 0, false);
            }
            for (name, n, is_stack) in rows {
                push(Some(name), n, is_stack);
            }
        }
        if self.rows.len >= BATCH_ROWS {
            self.encode_batch().await?;
        }
        Ok(())
    }

    /// Encodes the gathered rows into the open part, storing it if it is full.
    async fn encode_batch(&mut self) -> Result<(), ServerError> {
        if self.rows.len == 0 {
            return Ok(());
        }
        let batch = self.rows.batch();
        self.written_rows += batch.num_rows() as u64;
        let key = self.part_key(self.parts.len());
        if self.writer.is_none() {
            let properties = WriterProperties::builder()
                .set_compression(Compression::SNAPPY)
                .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
                .set_created_by(format!("telemetry-server {}", env!("CARGO_PKG_VERSION")))
                .build();
            let writer = ArrowWriter::try_new(Vec::new(), schema(), Some(properties))
                .map_err(|err| write_error(&key, err))?;
            self.writer = Some(writer);
        }
        let writer = self.writer.as_mut().expect("opened above");
        writer.write(&batch).map_err(|err| write_error(&key, err))?;
        if writer.bytes_written() + writer.in_progress_size() >= PART_BYTES {
            self.store_part().await?;
        }
        Ok(())
    }

    /// Closes the open part and stores it (one PUT: it appears whole).
    async fn store_part(&mut self) -> Result<(), ServerError> {
        let Some(writer) = self.writer.take() else {
            return Ok(());
        };
        let key = self.part_key(self.parts.len());
        let bytes = writer.into_inner().map_err(|err| write_error(&key, err))?;
        self.store
            .put(&key, PutPayload::from(bytes))
            .await
            .map_err(|err| ServerError::Storage {
                action: format!("writing {key}"),
                source: err,
            })?;
        self.parts.push(key);
        Ok(())
    }

    /// Stores the last part, then deletes every other part of the day (earlier
    /// generations, or parts past this merge's last). Returns how many parts the day
    /// has (none for a day without reports).
    pub(crate) async fn finish(mut self) -> Result<usize, ServerError> {
        self.encode_batch().await?;
        self.store_part().await?;
        let dir = day_dir(self.date);
        let listed: Vec<ObjectMeta> = match self.store.list(Some(&dir)).try_collect().await {
            Ok(listed) => listed,
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(source) => {
                return Err(ServerError::Storage {
                    action: format!("listing {dir}/"),
                    source,
                });
            }
        };
        for stale in listed.iter().filter(|meta| {
            let name = meta.location.filename().unwrap_or_default();
            name.starts_with("part-")
                && name.ends_with(".parquet")
                && !self.parts.contains(&meta.location)
        }) {
            match self.store.delete(&stale.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(source) => {
                    return Err(ServerError::Storage {
                        action: format!("deleting {}", stale.location),
                        source,
                    });
                }
            }
        }
        Ok(self.parts.len())
    }
}
