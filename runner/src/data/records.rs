//! What the readers yield: the raw records of a split, and what a visit saw besides them.
use super::image::Image;

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

/// What a visit saw besides the records: class folders (empty ones included), when the format
/// has folders.
#[derive(Debug, Default)]
pub struct VisitSummary {
    pub class_folders: Option<Vec<String>>,
}

/// The callback a visit hands each record to.
pub type Visitor<'a> = dyn FnMut(RawRecord) -> Result<(), super::DataError> + 'a;
