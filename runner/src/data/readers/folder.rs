//! ImageNet-style folders: `<root>/<split>/<class>/*.JPEG` (`val` serves the test split).
use std::path::PathBuf;

use super::{file_name, missing_split, sorted_entries, Reader};
use crate::data::image::is_jpeg_name;
use crate::data::records::{ClassRef, Payload, RawRecord, VisitSummary, Visitor};
use crate::data::{DataError, Split};

pub(crate) struct ImageFolder {
    pub root: PathBuf,
}

impl ImageFolder {
    fn split_dir(&self, split: Split) -> Result<PathBuf, DataError> {
        split
            .aliases()
            .iter()
            .map(|a| self.root.join(a))
            .find(|p| p.is_dir())
            .ok_or_else(|| {
                missing_split(
                    &self.root.display().to_string(),
                    split,
                    format!("{}/", split.aliases().join("|")),
                )
            })
    }
}

impl Reader for ImageFolder {
    fn classes(&self, split: Split) -> Result<Vec<String>, DataError> {
        Ok(sorted_entries(&self.split_dir(split)?)?
            .iter()
            .filter(|p| p.is_dir())
            .map(|p| file_name(p))
            .collect())
    }

    fn visit(&self, split: Split, f: &mut Visitor<'_>) -> Result<VisitSummary, DataError> {
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
                f(RawRecord {
                    key: format!("{}/{class}/{name}", file_name(&dir)),
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
}
