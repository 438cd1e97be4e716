//! Data-set formats: detection from a location, and the reader of the detected format
//! (`readers/`), one per format.
//!
//! Labels: folder- and tar-tree formats name classes by folder; their indices are the sorted
//! names. WebDataset, CIFAR-10 binary and IDX store indices; those are kept as they are.
use super::readers::{self, cifar_bin, file_name, idx, sorted_entries, tar_ext, tarball, Reader};
use super::records::{VisitSummary, Visitor};
use super::{DataError, Normalization, Split};
use crate::store::{LocalStore, ObjectStore};
use std::path::PathBuf;
use std::sync::Arc;

/// A data-set format the readers know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// `<root>/<split>/<class>/*.JPEG` (`val` is accepted for the test split).
    ImageFolder,
    /// One tar or tar.gz holding a `<split>/<class>/*.jpg` tree (possibly under a top folder).
    TarTree,
    /// A folder of `<split>.tar[.gz]` archives of class folders (the CIFAR-10 JPEG folder).
    TarPerSplit,
    /// WebDataset shards: `<split>*.tar` files (or `<split>/*.tar`) of `key.jpg` + `key.cls`.
    WebDataset,
    /// CIFAR-10 binary batches.
    CifarBinary,
    /// MNIST / Fashion-MNIST IDX files.
    Idx,
    /// Shards written by [`super::stage_data`]: `<root>/<split>/index.json`.
    Staged,
}

/// A detected data set: where it is, its format and that format's reader.
#[derive(Clone)]
pub struct DataSource {
    pub location: PathBuf,
    pub format: Format,
    reader: Arc<dyn Reader>,
    /// How the location is shown in errors and logs (a store's description for staged shards).
    shown: String,
}

impl std::fmt::Debug for DataSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataSource")
            .field("location", &self.shown)
            .field("format", &self.format)
            .finish()
    }
}

impl DataSource {
    /// Detects the format of the data set at `location` (a local path).
    pub fn open(location: &str) -> Result<Self, DataError> {
        let path = PathBuf::from(location);
        let unknown = || DataError::UnknownFormat {
            path: location.to_string(),
        };
        let meta = std::fs::metadata(&path).map_err(DataError::io(location))?;
        let found = |format| Ok(DataSource::local(path.clone(), format));
        if meta.is_file() {
            if tar_ext(&file_name(&path)).is_none() {
                return Err(unknown());
            }
            return if tarball::looks_like_webdataset(&path)? {
                found(Format::WebDataset)
            } else {
                found(Format::TarTree)
            };
        }
        if ["train", "test", "val"]
            .iter()
            .any(|s| path.join(s).join("index.json").is_file())
        {
            return found(Format::Staged);
        }
        if idx::is_idx_dir(&path) {
            return found(Format::Idx);
        }
        if cifar_bin::batches_dir(&path).is_some() {
            return found(Format::CifarBinary);
        }
        let entries = sorted_entries(&path)?;
        let tars: Vec<&PathBuf> = entries
            .iter()
            .filter(|p| p.is_file() && tar_ext(&file_name(p)).is_some())
            .collect();
        if let Some(first) = tars.first() {
            if tarball::looks_like_webdataset(first)? {
                return found(Format::WebDataset);
            }
            let per_split = tars.iter().any(|t| {
                let stem = tar_ext(&file_name(t)).unwrap_or_default().to_string();
                ["train", "test", "val"].contains(&stem.as_str())
            });
            if per_split {
                return found(Format::TarPerSplit);
            }
            return Err(unknown());
        }
        for split in ["train", "val", "test"] {
            let dir = path.join(split);
            if dir.is_dir() {
                let inner = sorted_entries(&dir)?;
                if inner.iter().any(|p| p.is_dir()) {
                    return found(Format::ImageFolder);
                }
                if let Some(t) = inner
                    .iter()
                    .find(|p| p.is_file() && tar_ext(&file_name(p)).is_some())
                {
                    if tarball::looks_like_webdataset(t)? {
                        return found(Format::WebDataset);
                    }
                }
            }
        }
        Err(unknown())
    }

    /// The reader of `format` for the data set at `location`.
    fn local(location: PathBuf, format: Format) -> DataSource {
        let reader: Arc<dyn Reader> = match format {
            Format::ImageFolder => Arc::new(readers::ImageFolder {
                root: location.clone(),
            }),
            Format::TarTree => Arc::new(readers::TarTree {
                archive: location.clone(),
            }),
            Format::TarPerSplit => Arc::new(readers::TarPerSplit {
                root: location.clone(),
            }),
            Format::WebDataset => Arc::new(readers::WebDataset {
                location: location.clone(),
            }),
            Format::CifarBinary => Arc::new(readers::CifarBinary {
                root: location.clone(),
            }),
            Format::Idx => Arc::new(readers::Idx {
                root: location.clone(),
            }),
            Format::Staged => Arc::new(readers::Staged {
                store: Arc::new(LocalStore::new(&location)),
                prefix: String::new(),
                shown: location.display().to_string(),
            }),
        };
        DataSource {
            shown: location.display().to_string(),
            location,
            format,
            reader,
        }
    }

    /// Staged shards under `prefix` of `store` (as `stage-data` writes them), for stages that
    /// read the pipeline's own copy of the data set rather than the raw files.
    pub fn staged(store: Arc<dyn ObjectStore>, prefix: &str) -> Self {
        let prefix = prefix.trim_end_matches('/').to_string();
        let shown = format!("{}/{prefix}", store.describe());
        DataSource {
            location: PathBuf::from(&prefix),
            format: Format::Staged,
            reader: Arc::new(readers::Staged {
                store,
                prefix,
                shown: shown.clone(),
            }),
            shown,
        }
    }

    pub(crate) fn shown(&self) -> String {
        self.shown.clone()
    }

    /// Image channels the format decodes to (1 for IDX, 3 otherwise).
    pub fn channels(&self) -> Result<u8, DataError> {
        self.reader.channels()
    }

    /// The normalisation the detected format implies (a caller that knows the data set, as
    /// the pipeline does from `spec.dataset.format`, passes its own): CIFAR-10 statistics for
    /// CIFAR-10's own layouts (binary batches, `train.tar.gz`/`test.tar.gz`), Fashion-MNIST's for
    /// IDX (the IDX data set NASSearch names), the staged index's for shards, else ImageNet's.
    /// Never the location's name: renaming a folder must not change training.
    pub fn normalization(&self) -> Result<Normalization, DataError> {
        self.reader.normalization()
    }

    /// Names for index-labelled formats, in index order (`None` for name-labelled ones).
    pub fn index_names(&self, split: Split) -> Result<Option<Vec<String>>, DataError> {
        self.reader.index_names(split)
    }

    /// Class names of `split` in index order: sorted folder names, or the format's own names.
    /// Tar-based formats are read once (headers only, for trees; `.cls` entries for WebDataset).
    pub fn classes(&self, split: Split) -> Result<Vec<String>, DataError> {
        self.reader.classes(split)
    }

    /// Streams every record of `split` in the format's order (deterministic: sorted folders and
    /// files, archive order for tars).
    pub fn visit(&self, split: Split, f: &mut Visitor<'_>) -> Result<VisitSummary, DataError> {
        self.reader.visit(split, f)
    }
}
