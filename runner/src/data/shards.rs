//! The packed shard format `stage-data` writes and the loader reads.
//!
//! A shard is a plain concatenation of records: label (`u32` LE), height and width (`u16` LE
//! each), then `height * width * channels` bytes of interleaved pixels. Shards hold a fixed
//! number of images (the last one fewer). `index.json` beside them lists the classes, counts,
//! image geometry, normalisation and every shard's size and SHA-256; `_SUCCESS` is written last.
use super::image::Image;
use super::{DataError, Normalization};
use crate::data::records::{ClassRef, Payload, RawRecord};
use crate::store::ObjectStore;
use sha2::{Digest, Sha256};

pub const INDEX_VERSION: u32 = 1;
const HEADER: usize = 8;

/// One shard as listed in the index.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ShardInfo {
    /// Object name relative to the split's prefix (`shard-00000.bin`).
    pub name: String,
    pub count: usize,
    pub bytes: u64,
    pub sha256: String,
}

/// `index.json` of one staged split.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ShardIndex {
    pub version: u32,
    pub split: String,
    /// Where the raw data came from (a path, never credentials).
    pub source: String,
    pub classes: Vec<String>,
    /// Images per class, in class order.
    pub counts: Vec<usize>,
    pub total: usize,
    /// Corrupt images skipped.
    pub bad: usize,
    pub channels: u8,
    /// Short side images were resized to (`None`: kept as decoded).
    pub short_side: Option<u32>,
    /// Centre crop applied (evaluation splits).
    pub center_crop_side: Option<u32>,
    /// `[C, H, W]` when every image has the same shape.
    pub shape: Option<[u32; 3]>,
    pub images_per_shard: usize,
    pub normalization: Normalization,
    pub shards: Vec<ShardInfo>,
    /// Seconds the split took to stage (absent in indexes of earlier releases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// The prefix the index was loaded from (not stored).
    #[serde(skip)]
    pub prefix: String,
}

/// Joins a prefix and a name with one `/` (an empty prefix is the root).
pub fn join_key(prefix: &str, name: &str) -> String {
    let p = prefix.trim_end_matches('/');
    if p.is_empty() {
        name.to_string()
    } else {
        format!("{p}/{name}")
    }
}

pub fn shard_name(i: usize) -> String {
    format!("shard-{i:05}.bin")
}

/// Accumulates records of one shard in memory (bounded by `images_per_shard`).
#[derive(Default)]
pub struct ShardWriter {
    bytes: Vec<u8>,
    count: usize,
}

impl ShardWriter {
    pub fn push(&mut self, label: u32, image: &Image) -> Result<(), DataError> {
        let (h, w) = (u16::try_from(image.height), u16::try_from(image.width));
        let (Ok(h), Ok(w)) = (h, w) else {
            return Err(DataError::Invalid(format!(
                "image {}x{} too large for a shard",
                image.height, image.width
            )));
        };
        self.bytes.extend_from_slice(&label.to_le_bytes());
        self.bytes.extend_from_slice(&h.to_le_bytes());
        self.bytes.extend_from_slice(&w.to_le_bytes());
        self.bytes.extend_from_slice(&image.data);
        self.count += 1;
        Ok(())
    }
    pub fn len(&self) -> usize {
        self.count
    }
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
    /// The shard's bytes and its index entry; the writer is empty again.
    pub fn finish(&mut self, name: String) -> (Vec<u8>, ShardInfo) {
        let bytes = std::mem::take(&mut self.bytes);
        let info = ShardInfo {
            name,
            count: self.count,
            bytes: bytes.len() as u64,
            sha256: sha256_hex(&bytes),
        };
        self.count = 0;
        (bytes, info)
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Parses a shard's bytes into `(label, image)` records.
pub fn parse_shard(bytes: &[u8], channels: u8, name: &str) -> Result<Vec<(u32, Image)>, DataError> {
    let bad = |detail: String| DataError::Format {
        path: name.to_string(),
        format: "shard",
        detail,
    };
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < bytes.len() {
        if bytes.len() - pos < HEADER {
            return Err(bad(format!(
                "record {} header cut at byte {pos}",
                out.len()
            )));
        }
        let label = u32::from_le_bytes(bytes[pos..pos + 4].try_into().expect("4 bytes"));
        let h = u16::from_le_bytes([bytes[pos + 4], bytes[pos + 5]]) as u32;
        let w = u16::from_le_bytes([bytes[pos + 6], bytes[pos + 7]]) as u32;
        let n = (h * w) as usize * channels as usize;
        pos += HEADER;
        if bytes.len() - pos < n {
            return Err(bad(format!(
                "record {} has {} of {n} pixel bytes",
                out.len(),
                bytes.len() - pos
            )));
        }
        out.push((
            label,
            Image::new(channels, h, w, bytes[pos..pos + n].to_vec())?,
        ));
        pos += n;
    }
    Ok(out)
}

impl ShardIndex {
    /// Reads `{prefix}/index.json`; fails when `{prefix}/_SUCCESS` is absent (staging unfinished).
    pub fn load(store: &dyn ObjectStore, prefix: &str) -> Result<ShardIndex, DataError> {
        if !store.exists(&join_key(prefix, nas_api::layout::SUCCESS_MARKER))? {
            return Err(DataError::Invalid(format!(
                "{}: {} has no _SUCCESS: staging did not finish",
                store.describe(),
                join_key(prefix, "")
            )));
        }
        let key = join_key(prefix, "index.json");
        let bytes = store.get(&key)?;
        let mut index: ShardIndex =
            serde_json::from_slice(&bytes).map_err(|e| DataError::Format {
                path: key.clone(),
                format: "shard index",
                detail: e.to_string(),
            })?;
        if index.version != INDEX_VERSION {
            return Err(DataError::Format {
                path: key,
                format: "shard index",
                detail: format!("version {}, expected {INDEX_VERSION}", index.version),
            });
        }
        index.prefix = prefix.to_string();
        Ok(index)
    }

    /// Fetches shard `i`, checks its checksum and parses it.
    pub fn read_shard(
        &self,
        store: &dyn ObjectStore,
        i: usize,
    ) -> Result<Vec<(u32, Image)>, DataError> {
        let info = &self.shards[i];
        let key = join_key(&self.prefix, &info.name);
        let bytes = store.get(&key)?;
        let actual = sha256_hex(&bytes);
        if actual != info.sha256 {
            return Err(DataError::Checksum {
                key,
                expected: info.sha256.clone(),
                actual,
            });
        }
        parse_shard(&bytes, self.channels, &key)
    }

    /// Streams every record, shard by shard, as pixels with index labels.
    pub fn visit(
        &self,
        store: &dyn ObjectStore,
        f: &mut dyn FnMut(RawRecord) -> Result<(), DataError>,
    ) -> Result<(), DataError> {
        for i in 0..self.shards.len() {
            for (j, (label, image)) in self.read_shard(store, i)?.into_iter().enumerate() {
                let key = format!("{}#{j}", join_key(&self.prefix, &self.shards[i].name));
                f(RawRecord {
                    key,
                    class: ClassRef::Index(label),
                    payload: Payload::Pixels(image),
                })?;
            }
        }
        Ok(())
    }
}
