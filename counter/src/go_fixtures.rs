//! Agreement with Go's implementation, checked against files Go wrote
//! (`testdata/go-v1/`, each beside the JSON Go's parser makes of it).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use crate::layout::{self, HEADER_LEN_OFFSET, NUM_HASH};
use crate::mapped::MappedFile;

const FIXTURES: [&str; 3] = ["empty", "small", "large"];

fn fixture(name: &str, ext: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/go-v1")
        .join(format!("{name}.{ext}"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn load32(data: &[u8], off: u32) -> u32 {
    let off = off as usize;
    u32::from_le_bytes(data[off..off + 4].try_into().unwrap())
}

/// Every record in chain order of buckets: (offset, raw name, value).
fn raw_records(data: &[u8]) -> Vec<(u32, String, u64)> {
    let header_len = load32(data, HEADER_LEN_OFFSET as u32);
    let mut records = Vec::new();
    for bucket in 0..NUM_HASH {
        let mut off = load32(data, layout::bucket_offset(header_len, bucket));
        while off != 0 {
            let name_len = (load32(data, off + 8) & !layout::NAME_LEN_MARK) as usize;
            let start = off as usize + 16;
            let name = String::from_utf8(data[start..start + name_len].to_vec()).unwrap();
            assert_eq!(
                layout::bucket(name.as_bytes()),
                bucket,
                "{name:?} in the wrong bucket"
            );
            let value =
                u64::from_le_bytes(data[off as usize..off as usize + 8].try_into().unwrap());
            records.push((off, name, value));
            off = load32(data, off + 12);
        }
    }
    records
}

#[test]
fn go_files_parse_to_go_json() {
    for name in FIXTURES {
        let parsed = crate::parse(&fixture(name, "v1.count")).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&fixture(name, "json")).unwrap();
        let meta: BTreeMap<String, String> = serde_json::from_value(json["Meta"].clone()).unwrap();
        let count: BTreeMap<String, u64> = serde_json::from_value(json["Count"].clone()).unwrap();
        assert_eq!(parsed.meta, meta, "{name}: metadata");
        assert_eq!(parsed.count, count, "{name}: counts");
    }
}

/// Writing Go's records, in Go's order, into a file with Go's header must give Go's
/// file byte for byte: the hash, each record's placement (including the bump past each
/// page's reserved last 4 bytes), chain linking and extension all agree.
#[test]
fn writing_go_records_reproduces_go_bytes() {
    for name in FIXTURES {
        let go = fixture(name, "v1.count");
        let header_len = load32(&go, HEADER_LEN_OFFSET as u32) as usize;
        let mut records = raw_records(&go);
        records.sort_by_key(|r| r.0);
        if name == "large" {
            assert!(
                go.len() > 4 * layout::PAGE_SIZE as usize,
                "large spans several pages"
            );
        }

        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(format!("{name}.v1.count"));
        let mut file = MappedFile::open(&path, &go[..header_len]).unwrap();
        for (_, raw_name, value) in &records {
            let slot = file.get_or_create(raw_name).unwrap();
            slot.0.store(*value, Ordering::Relaxed);
        }
        drop(file);
        let ours = std::fs::read(&path).unwrap();
        assert_eq!(ours.len(), go.len(), "{name}: length");
        if let Some(at) = ours.iter().zip(&go).position(|(a, b)| a != b) {
            panic!("{name}: first difference at byte {at:#x}");
        }
    }
}

#[test]
fn fixture_names_hash_like_go() {
    // Spot checks of the FNV-1a fold against Go's placement of real names.
    let go = fixture("small", "v1.count");
    let records = raw_records(&go);
    assert_eq!(records.len(), 4);
    let header_len = load32(&go, HEADER_LEN_OFFSET as u32);
    let first = records.iter().map(|r| r.0).min().unwrap();
    assert_eq!(header_len, 0xe0);
    assert_eq!(
        first, 0x900,
        "first record right after the hash table, 32-aligned"
    );
}
