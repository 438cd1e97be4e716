//! One reader per data-set format behind [`Reader`]. [`super::DataSource`] detects the format
//! and holds its reader; a new format is one file here and one detection rule in
//! `source.rs`.
pub(crate) mod cifar_bin;
mod folder;
pub(crate) mod idx;
mod staged;
pub(crate) mod tarball;
mod tars;

use std::path::{Path, PathBuf};

use super::records::{VisitSummary, Visitor};
use super::{DataError, Normalization, Split};

pub(crate) use cifar_bin::CifarBinary;
pub(crate) use folder::ImageFolder;
pub(crate) use idx::Idx;
pub(crate) use staged::Staged;
pub(crate) use tars::{TarPerSplit, TarTree, WebDataset};

/// What every format answers. Nothing here holds more than one image (or one tar entry) at a
/// time.
pub(crate) trait Reader: Send + Sync {
    /// Image channels the format decodes to.
    fn channels(&self) -> Result<u8, DataError> {
        Ok(3)
    }

    /// The normalisation the format implies (a caller that knows the data set passes its
    /// own); ImageNet's statistics unless the format is one data set's own.
    fn normalization(&self) -> Result<Normalization, DataError> {
        Ok(Normalization::imagenet())
    }

    /// Names of the classes of an index-labelled format that knows them, in index order
    /// (`None`: the records name their classes, or the format stores bare indices).
    fn index_names(&self, _split: Split) -> Result<Option<Vec<String>>, DataError> {
        Ok(None)
    }

    /// Class names in index order. Formats that store indices and know their names say them
    /// ([`Reader::index_names`]); folder formats give the sorted class folders that a pass over
    /// the split finds (a reader that lists them more cheaply says so itself).
    fn classes(&self, split: Split) -> Result<Vec<String>, DataError> {
        if let Some(names) = self.index_names(split)? {
            return Ok(names);
        }
        let summary = self.visit(split, &mut |_| Ok(()))?;
        Ok(summary.class_folders.unwrap_or_default())
    }

    /// Streams every record of `split` in the format's order (deterministic: sorted folders
    /// and files, archive order for tars).
    fn visit(&self, split: Split, f: &mut Visitor<'_>) -> Result<VisitSummary, DataError>;
}

/// The error for a split the data set does not hold.
pub(crate) fn missing_split(location: &str, split: Split, looked_for: String) -> DataError {
    DataError::MissingSplit {
        location: location.to_string(),
        split: split.to_string(),
        looked_for,
    }
}

/// The stem of a tar archive's name (`train` of `train.tar.gz`), if it is one.
pub(crate) fn tar_ext(name: &str) -> Option<&str> {
    [".tar.gz", ".tgz", ".tar"]
        .iter()
        .find_map(|e| name.strip_suffix(e))
}

/// The entries of `dir`, sorted, hidden ones left out.
pub(crate) fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
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

pub(crate) fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The largest class index a data set may use (ImageNet-21k has 21,841 classes): a larger label
/// is a corrupt record, and naming every class below it would allocate without bound.
pub(crate) const MAX_CLASS_INDEX: u32 = 99_999;

/// Class names `0..=max_index` (zero-padded to one width) for index-labelled data without names.
pub(crate) fn numbered_classes(max_index: u32, location: &str) -> Result<Vec<String>, DataError> {
    if max_index > MAX_CLASS_INDEX {
        return Err(DataError::Invalid(format!(
            "{location}: class index {max_index} is above {MAX_CLASS_INDEX}, the largest a data set \
             may use (a corrupt label?)"
        )));
    }
    let width = max_index.to_string().len();
    Ok((0..=max_index).map(|i| format!("{i:0width$}")).collect())
}
