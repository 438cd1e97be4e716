//! Data-set formats: detection from a location, and one streaming visit over the raw records of
//! a split. Nothing here holds more than one image (or one tar entry) at a time.
//!
//! Labels: folder- and tar-tree formats name classes by folder; their indices are the sorted
//! names. WebDataset, CIFAR-10 binary and IDX store indices; those are kept as they are.
use super::image::{is_jpeg_name, Image};
use super::shards::ShardIndex;
use super::{cifar_bin, idx, tarball, DataError, Normalization, Split};
use crate::store::{LocalStore, ObjectStore};
use std::path::{Path, PathBuf};
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

/// How a record names its class.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ClassRef {
    Name(String),
    Index(u32),
}

/// A record's image: still encoded, or already pixels.
#[derive(Debug, Clone)]
pub enum Payload {
    Jpeg(Vec<u8>),
    Pixels(Image),
}

/// One raw record of a split; `key` names it in logs and errors.
#[derive(Debug, Clone)]
pub struct RawRecord {
    pub key: String,
    pub class: ClassRef,
    pub payload: Payload,
}

/// A detected data set at a local path.
#[derive(Clone)]
pub struct DataSource {
    pub location: PathBuf,
    pub format: Format,
    /// Staged shards read through an object store (the pipeline's `data/` prefix) rather than
    /// from a local folder: the store and the prefix that holds `train/`, `test/`.
    staged_in: Option<(Arc<dyn ObjectStore>, String)>,
}

impl std::fmt::Debug for DataSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataSource")
            .field("location", &self.shown())
            .field("format", &self.format)
            .finish()
    }
}

/// What a visit saw besides the records: class folders (empty ones included), when the format
/// has folders.
#[derive(Debug, Default)]
pub struct VisitSummary {
    pub class_folders: Option<Vec<String>>,
}

fn tar_ext(name: &str) -> Option<&str> {
    [".tar.gz", ".tgz", ".tar"]
        .iter()
        .find_map(|e| name.strip_suffix(e))
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(DataError::io(dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    out.sort();
    Ok(out)
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl DataSource {
    /// Detects the format of the data set at `location` (a local path).
    pub fn open(location: &str) -> Result<Self, DataError> {
        let path = PathBuf::from(location);
        let unknown = || DataError::UnknownFormat {
            path: location.to_string(),
        };
        let meta = std::fs::metadata(&path).map_err(DataError::io(location))?;
        let found = |format| {
            Ok(DataSource {
                location: path.clone(),
                format,
                staged_in: None,
            })
        };
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

    /// Staged shards under `prefix` of `store` (as `stage-data` writes them), for stages that
    /// read the pipeline's own copy of the data set rather than the raw files.
    pub fn staged(store: Arc<dyn ObjectStore>, prefix: &str) -> Self {
        DataSource {
            location: PathBuf::from(prefix),
            format: Format::Staged,
            staged_in: Some((store, prefix.trim_end_matches('/').to_string())),
        }
    }

    pub(crate) fn shown(&self) -> String {
        match &self.staged_in {
            Some((store, prefix)) => format!("{}/{prefix}", store.describe()),
            None => self.location.display().to_string(),
        }
    }

    /// The store and key prefix the staged splits live under.
    fn staged_root(&self) -> (Arc<dyn ObjectStore>, String) {
        match &self.staged_in {
            Some((store, prefix)) => (store.clone(), prefix.clone()),
            None => (Arc::new(LocalStore::new(&self.location)), String::new()),
        }
    }

    fn missing_split(&self, split: Split, looked_for: String) -> DataError {
        DataError::MissingSplit {
            location: self.shown(),
            split: split.to_string(),
            looked_for,
        }
    }

    /// Image channels the format decodes to (1 for IDX, 3 otherwise).
    pub fn channels(&self) -> Result<u8, DataError> {
        Ok(match self.format {
            Format::Idx => 1,
            Format::Staged => {
                self.staged_index(Split::Train)
                    .or_else(|_| self.staged_index(Split::Test))?
                    .channels
            }
            _ => 3,
        })
    }

    /// The normalisation the detected format implies (a caller that knows the data set, as
    /// the pipeline does from `spec.dataset.format`, passes its own): CIFAR-10 statistics for
    /// CIFAR-10's own layouts (binary batches, `train.tar.gz`/`test.tar.gz`), Fashion-MNIST's for
    /// IDX (the IDX data set NASSearch names), the staged index's for shards, else ImageNet's.
    /// Never the location's name: renaming a folder must not change training.
    pub fn normalization(&self) -> Result<Normalization, DataError> {
        Ok(match self.format {
            Format::CifarBinary | Format::TarPerSplit => Normalization::cifar10(),
            Format::Idx => Normalization::fashion_mnist(),
            Format::Staged => {
                self.staged_index(Split::Train)
                    .or_else(|_| self.staged_index(Split::Test))?
                    .normalization
            }
            Format::ImageFolder | Format::TarTree | Format::WebDataset => Normalization::imagenet(),
        })
    }

    /// Names for index-labelled formats, in index order (`None` for name-labelled ones).
    pub fn index_names(&self, split: Split) -> Result<Option<Vec<String>>, DataError> {
        Ok(match self.format {
            Format::CifarBinary => Some(cifar_bin::classes(&self.location)),
            Format::Idx => Some(idx::FASHION_CLASSES.iter().map(|s| s.to_string()).collect()),
            Format::Staged => Some(self.staged_index(split)?.classes),
            _ => None,
        })
    }

    pub(crate) fn staged_index(&self, split: Split) -> Result<ShardIndex, DataError> {
        let (store, prefix) = self.staged_root();
        for alias in split.aliases() {
            let dir = super::shards::join_key(&prefix, alias);
            if store.exists(&super::shards::join_key(&dir, "index.json"))? {
                return ShardIndex::load(store.as_ref(), &dir);
            }
        }
        Err(self.missing_split(split, format!("{}/index.json", split.aliases().join("|"))))
    }

    /// Class names of `split` in index order: sorted folder names, or the format's own names.
    /// Tar-based formats are read once (headers only, for trees; `.cls` entries for WebDataset).
    pub fn classes(&self, split: Split) -> Result<Vec<String>, DataError> {
        if let Some(names) = self.index_names(split)? {
            return Ok(names);
        }
        match self.format {
            Format::ImageFolder => {
                let dir = self.split_dir(split)?;
                Ok(sorted_entries(&dir)?
                    .iter()
                    .filter(|p| p.is_dir())
                    .map(|p| file_name(p))
                    .collect())
            }
            Format::WebDataset | Format::Idx => {
                let mut max: Option<u32> = None;
                self.visit(split, &mut |r| {
                    if let ClassRef::Index(i) = r.class {
                        max = Some(max.map_or(i, |m| m.max(i)));
                    }
                    Ok(())
                })?;
                let n = max.map_or(0, |m| m + 1);
                let width = n.saturating_sub(1).to_string().len();
                Ok((0..n).map(|i| format!("{i:0width$}")).collect())
            }
            _ => {
                let summary = self.visit_headers(split)?;
                Ok(summary.class_folders.unwrap_or_default())
            }
        }
    }

    fn visit_headers(&self, split: Split) -> Result<VisitSummary, DataError> {
        // Tar trees: the class folders come back from a pass over the headers (bytes of images
        // are skipped by `want`, which only the full visit sets).
        self.visit(split, &mut |_| Ok(()))
    }

    fn split_dir(&self, split: Split) -> Result<PathBuf, DataError> {
        split
            .aliases()
            .iter()
            .map(|a| self.location.join(a))
            .find(|p| p.is_dir())
            .ok_or_else(|| self.missing_split(split, format!("{}/", split.aliases().join("|"))))
    }

    fn split_tars(&self, split: Split) -> Result<Vec<PathBuf>, DataError> {
        if self.location.is_file() {
            // A single archive serves the split its name carries (`imagenet-val-0000.tar`).
            let name = file_name(&self.location);
            let tokens: Vec<&str> = name.split(['-', '_', '.']).collect();
            if split.aliases().iter().any(|a| tokens.contains(a)) || self.format == Format::TarTree
            {
                return Ok(vec![self.location.clone()]);
            }
            return Err(self.missing_split(
                split,
                format!("'{}' in the archive's name", split.aliases().join("|")),
            ));
        }
        let mut out = Vec::new();
        for alias in split.aliases() {
            for p in sorted_entries(&self.location)? {
                let name = file_name(&p);
                if p.is_file()
                    && tar_ext(&name)
                        .is_some_and(|s| s == *alias || s.starts_with(&format!("{alias}-")))
                {
                    out.push(p);
                }
            }
            let sub = self.location.join(alias);
            if sub.is_dir() {
                out.extend(
                    sorted_entries(&sub)?
                        .into_iter()
                        .filter(|p| p.is_file() && tar_ext(&file_name(p)).is_some()),
                );
            }
            if !out.is_empty() {
                break;
            }
        }
        if out.is_empty() {
            let looked: Vec<String> = split
                .aliases()
                .iter()
                .map(|a| format!("{a}.tar[.gz], {a}-*.tar, {a}/*.tar"))
                .collect();
            return Err(self.missing_split(split, looked.join(", ")));
        }
        Ok(out)
    }

    /// Streams every record of `split` in the format's order (deterministic: sorted folders and
    /// files, archive order for tars).
    pub fn visit(
        &self,
        split: Split,
        f: &mut dyn FnMut(RawRecord) -> Result<(), DataError>,
    ) -> Result<VisitSummary, DataError> {
        match self.format {
            Format::ImageFolder => {
                let dir = self.split_dir(split)?;
                let mut classes = Vec::new();
                for class_dir in sorted_entries(&dir)?.into_iter().filter(|p| p.is_dir()) {
                    let class = file_name(&class_dir);
                    for file in sorted_entries(&class_dir)? {
                        let name = file_name(&file);
                        if !file.is_file() || !is_jpeg_name(&name) {
                            continue;
                        }
                        let bytes = std::fs::read(&file).map_err(DataError::io(file.display()))?;
                        let key = format!("{}/{class}/{name}", file_name(&dir));
                        f(RawRecord {
                            key,
                            class: ClassRef::Name(class.clone()),
                            payload: Payload::Jpeg(bytes),
                        })?;
                    }
                    classes.push(class);
                }
                Ok(VisitSummary {
                    class_folders: Some(classes),
                })
            }
            Format::TarTree => {
                let dirs = tarball::visit_tree(&self.location, Some(split.aliases()), f)?;
                if dirs.is_empty() {
                    return Err(self.missing_split(
                        split,
                        format!("{}/<class>/ in the archive", split.aliases().join("|")),
                    ));
                }
                Ok(VisitSummary {
                    class_folders: Some(dirs),
                })
            }
            Format::TarPerSplit => {
                let tars = self.split_tars(split)?;
                let mut all = std::collections::BTreeSet::new();
                for t in tars {
                    all.extend(tarball::visit_tree(&t, None, f)?);
                }
                Ok(VisitSummary {
                    class_folders: Some(all.into_iter().collect()),
                })
            }
            Format::WebDataset => {
                for t in self.split_tars(split)? {
                    tarball::visit_webdataset(&t, f)?;
                }
                Ok(VisitSummary::default())
            }
            Format::CifarBinary => {
                cifar_bin::visit(&self.location, split, f).map(|_| VisitSummary::default())
            }
            Format::Idx => idx::visit(&self.location, split, f).map(|_| VisitSummary::default()),
            Format::Staged => {
                let (store, _) = self.staged_root();
                let index = self.staged_index(split)?;
                index.visit(store.as_ref(), f)?;
                Ok(VisitSummary::default())
            }
        }
    }
}
