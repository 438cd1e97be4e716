//! Shards written by `stage-data`: `<prefix>/<split>/index.json` and its shards, in a local
//! folder or in the artifact store.
use std::sync::Arc;

use super::{missing_split, Reader};
use crate::data::records::{VisitSummary, Visitor};
use crate::data::shards::{join_key, ShardIndex};
use crate::data::{DataError, Normalization, Split};
use crate::store::ObjectStore;

pub(crate) struct Staged {
    pub store: Arc<dyn ObjectStore>,
    /// The key prefix that holds `train/`, `test/`.
    pub prefix: String,
    /// How the location is shown in errors.
    pub shown: String,
}

impl Staged {
    pub(crate) fn index(&self, split: Split) -> Result<ShardIndex, DataError> {
        for alias in split.aliases() {
            let dir = join_key(&self.prefix, alias);
            if self.store.exists(&join_key(&dir, "index.json"))? {
                return ShardIndex::load(self.store.as_ref(), &dir);
            }
        }
        Err(missing_split(
            &self.shown,
            split,
            format!("{}/index.json", split.aliases().join("|")),
        ))
    }

    /// The index of whichever split is there (the format's facts are the same in each).
    fn any_index(&self) -> Result<ShardIndex, DataError> {
        self.index(Split::Train)
            .or_else(|_| self.index(Split::Test))
    }
}

impl Reader for Staged {
    fn channels(&self) -> Result<u8, DataError> {
        Ok(self.any_index()?.channels)
    }

    fn normalization(&self) -> Result<Normalization, DataError> {
        Ok(self.any_index()?.normalization)
    }

    fn index_names(&self, split: Split) -> Result<Option<Vec<String>>, DataError> {
        Ok(Some(self.index(split)?.classes))
    }

    fn visit(&self, split: Split, f: &mut Visitor<'_>) -> Result<VisitSummary, DataError> {
        self.index(split)?.visit(self.store.as_ref(), f)?;
        Ok(VisitSummary::default())
    }
}
