//! Tar-based formats: one archive of a `<split>/<class>/` tree, a folder of `<split>.tar[.gz]`
//! archives of class folders (the CIFAR-10 JPEG folder), and WebDataset shards.
use std::collections::BTreeSet;
use std::path::PathBuf;

use super::{file_name, missing_split, numbered_classes, sorted_entries, tar_ext, tarball, Reader};
use crate::data::records::{ClassRef, VisitSummary, Visitor};
use crate::data::{DataError, Normalization, Split};

/// One tar or tar.gz holding a `<split>/<class>/*.jpg` tree (possibly under a top folder).
pub(crate) struct TarTree {
    pub archive: PathBuf,
}

/// A folder of `<split>.tar[.gz]` archives of class folders.
pub(crate) struct TarPerSplit {
    pub root: PathBuf,
}

/// WebDataset shards: `<split>*.tar` files (or `<split>/*.tar`) of `key.jpg` + `key.cls`; or
/// one shard whose name carries the split (`imagenet-val-0000.tar`).
pub(crate) struct WebDataset {
    pub location: PathBuf,
}

impl Reader for TarTree {
    fn visit(&self, split: Split, f: &mut Visitor<'_>) -> Result<VisitSummary, DataError> {
        let dirs = tarball::visit_tree(&self.archive, Some(split.aliases()), f)?;
        if dirs.is_empty() {
            return Err(missing_split(
                &self.archive.display().to_string(),
                split,
                format!("{}/<class>/ in the archive", split.aliases().join("|")),
            ));
        }
        Ok(VisitSummary {
            class_folders: Some(dirs),
        })
    }
}

impl Reader for TarPerSplit {
    /// CIFAR-10's statistics: this is the layout of the CIFAR-10 JPEG folder.
    fn normalization(&self) -> Result<Normalization, DataError> {
        Ok(Normalization::cifar10())
    }

    fn visit(&self, split: Split, f: &mut Visitor<'_>) -> Result<VisitSummary, DataError> {
        let mut all = BTreeSet::new();
        for t in split_tars(&self.root, split)? {
            all.extend(tarball::visit_tree(&t, None, f)?);
        }
        Ok(VisitSummary {
            class_folders: Some(all.into_iter().collect()),
        })
    }
}

impl Reader for WebDataset {
    fn classes(&self, split: Split) -> Result<Vec<String>, DataError> {
        let mut max: Option<u32> = None;
        self.visit(split, &mut |r| {
            if let ClassRef::Index(i) = r.class {
                max = Some(max.map_or(i, |m| m.max(i)));
            }
            Ok(())
        })?;
        match max {
            Some(m) => numbered_classes(m, &self.location.display().to_string()),
            None => Ok(Vec::new()),
        }
    }

    fn visit(&self, split: Split, f: &mut Visitor<'_>) -> Result<VisitSummary, DataError> {
        for t in split_tars(&self.location, split)? {
            tarball::visit_webdataset(&t, f)?;
        }
        Ok(VisitSummary::default())
    }
}

/// The archives of `split` at `location`: a single archive whose name carries the split, or,
/// in a folder, `<split>.tar[.gz]`, `<split>-*.tar` and `<split>/*.tar`.
fn split_tars(location: &std::path::Path, split: Split) -> Result<Vec<PathBuf>, DataError> {
    let shown = location.display().to_string();
    if location.is_file() {
        let name = file_name(location);
        let tokens: Vec<&str> = name.split(['-', '_', '.']).collect();
        if split.aliases().iter().any(|a| tokens.contains(a)) {
            return Ok(vec![location.to_path_buf()]);
        }
        return Err(missing_split(
            &shown,
            split,
            format!("'{}' in the archive's name", split.aliases().join("|")),
        ));
    }
    let mut out = Vec::new();
    for alias in split.aliases() {
        for p in sorted_entries(location)? {
            let name = file_name(&p);
            if p.is_file()
                && tar_ext(&name)
                    .is_some_and(|s| s == *alias || s.starts_with(&format!("{alias}-")))
            {
                out.push(p);
            }
        }
        let sub = location.join(alias);
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
        return Err(missing_split(&shown, split, looked.join(", ")));
    }
    Ok(out)
}
