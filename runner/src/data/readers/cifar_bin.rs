//! The CIFAR-10 binary format: `data_batch_{1..5}.bin` (train) and `test_batch.bin`, records of
//! one label byte and 3072 pixel bytes (red, green, blue planes of 32x32), optionally with
//! `batches.meta.txt` naming the classes (label order).
use crate::data::image::Image;
use crate::data::records::{ClassRef, Payload, RawRecord};
use crate::data::{DataError, Split};
use std::io::Read;
use std::path::{Path, PathBuf};

const SIDE: usize = 32;
const RECORD: usize = 1 + 3 * SIDE * SIDE;
/// CIFAR-10 names in label order (also alphabetical).
pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// The folder holding the batches: `dir` itself or its `cifar-10-batches-bin/`.
pub(crate) fn batches_dir(dir: &Path) -> Option<PathBuf> {
    [dir.to_path_buf(), dir.join("cifar-10-batches-bin")]
        .into_iter()
        .find(|d| d.join("data_batch_1.bin").is_file() || d.join("test_batch.bin").is_file())
}

pub(crate) fn classes(dir: &Path) -> Vec<String> {
    let meta = batches_dir(dir).map(|d| d.join("batches.meta.txt"));
    match meta.and_then(|m| std::fs::read_to_string(m).ok()) {
        Some(text) => text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect(),
        None => CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect(),
    }
}

fn files(dir: &Path, split: Split) -> Result<Vec<PathBuf>, DataError> {
    let base = batches_dir(dir).unwrap_or_else(|| dir.to_path_buf());
    let names: Vec<String> = match split {
        Split::Train => (1..=5).map(|i| format!("data_batch_{i}.bin")).collect(),
        Split::Test => vec!["test_batch.bin".into()],
    };
    let found: Vec<PathBuf> = names
        .iter()
        .map(|n| base.join(n))
        .filter(|p| p.is_file())
        .collect();
    if found.is_empty() {
        return Err(DataError::MissingSplit {
            location: dir.display().to_string(),
            split: split.to_string(),
            looked_for: names.join(", "),
        });
    }
    Ok(found)
}

pub(crate) fn visit(
    dir: &Path,
    split: Split,
    f: &mut dyn FnMut(RawRecord) -> Result<(), DataError>,
) -> Result<(), DataError> {
    let mut record = vec![0u8; RECORD];
    for path in files(dir, split)? {
        let len = std::fs::metadata(&path)
            .map_err(DataError::io(path.display()))?
            .len() as usize;
        if !len.is_multiple_of(RECORD) {
            return Err(DataError::Truncated {
                path: path.display().to_string(),
                entries: len / RECORD,
                detail: format!("{len} bytes is not a multiple of the {RECORD}-byte record"),
            });
        }
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut r = std::io::BufReader::new(
            std::fs::File::open(&path).map_err(DataError::io(path.display()))?,
        );
        for i in 0..len / RECORD {
            r.read_exact(&mut record)
                .map_err(DataError::io(path.display()))?;
            let plane = SIDE * SIDE;
            let mut hwc = vec![0u8; 3 * plane];
            for p in 0..plane {
                for c in 0..3 {
                    hwc[3 * p + c] = record[1 + c * plane + p];
                }
            }
            let image = Image::new(3, SIDE as u32, SIDE as u32, hwc)?;
            f(RawRecord {
                key: format!("{stem}/{i:05}"),
                class: ClassRef::Index(record[0] as u32),
                payload: Payload::Pixels(image),
            })?;
        }
    }
    Ok(())
}

/// CIFAR-10 binary batches (`data_batch_*.bin`, `test_batch.bin`).
pub(crate) struct CifarBinary {
    pub root: PathBuf,
}

impl super::Reader for CifarBinary {
    fn normalization(&self) -> Result<crate::data::Normalization, DataError> {
        Ok(crate::data::Normalization::cifar10())
    }

    fn index_names(&self, _split: Split) -> Result<Option<Vec<String>>, DataError> {
        Ok(Some(classes(&self.root)))
    }

    fn visit(
        &self,
        split: Split,
        f: &mut crate::data::records::Visitor<'_>,
    ) -> Result<crate::data::records::VisitSummary, DataError> {
        visit(&self.root, split, f).map(|_| Default::default())
    }
}
