//! The IDX format of MNIST and Fashion-MNIST (gzipped or not): `train-images-idx3-ubyte` +
//! `train-labels-idx1-ubyte`, `t10k-*` for the test split. Big-endian header: magic
//! `0x00000803` (images) / `0x00000801` (labels), counts, rows, cols; then one byte per pixel.
//! Images are streamed one at a time; the labels file (one byte each) is read whole.
use super::tarball::open_maybe_gz;
use crate::data::image::Image;
use crate::data::records::{ClassRef, Payload, RawRecord};
use crate::data::{DataError, Split};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Fashion-MNIST class names in label order.
pub(crate) const FASHION_CLASSES: [&str; 10] = [
    "T-shirt_top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle_boot",
];

fn stem(split: Split) -> &'static str {
    match split {
        Split::Train => "train",
        Split::Test => "t10k",
    }
}

/// The images and labels files of `split` under `dir` (`.gz` or plain).
pub(crate) fn files(dir: &Path, split: Split) -> Result<(PathBuf, PathBuf), DataError> {
    let find = |name: String| -> Result<PathBuf, DataError> {
        for candidate in [dir.join(format!("{name}.gz")), dir.join(&name)] {
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
        Err(DataError::MissingSplit {
            location: dir.display().to_string(),
            split: split.to_string(),
            looked_for: format!("{name}[.gz]"),
        })
    };
    Ok((
        find(format!("{}-images-idx3-ubyte", stem(split)))?,
        find(format!("{}-labels-idx1-ubyte", stem(split)))?,
    ))
}

pub(crate) fn is_idx_dir(dir: &Path) -> bool {
    [Split::Train, Split::Test]
        .iter()
        .any(|&s| files(dir, s).is_ok())
}

fn header(r: &mut dyn Read, path: &Path, magic: u32, dims: usize) -> Result<Vec<u32>, DataError> {
    let mut buf = vec![0u8; 4 * (1 + dims)];
    r.read_exact(&mut buf).map_err(|e| DataError::Format {
        path: path.display().to_string(),
        format: "IDX",
        detail: format!("header: {e}"),
    })?;
    let words: Vec<u32> = buf
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if words[0] != magic {
        return Err(DataError::Format {
            path: path.display().to_string(),
            format: "IDX",
            detail: format!("magic {:#010x}, expected {magic:#010x}", words[0]),
        });
    }
    Ok(words[1..].to_vec())
}

/// The labels of `split`, in file order.
pub(crate) fn labels(dir: &Path, split: Split) -> Result<Vec<u8>, DataError> {
    let (_, labels_path) = files(dir, split)?;
    let mut r = open_maybe_gz(&labels_path)?;
    let n = header(&mut r, &labels_path, 0x0801, 1)?[0] as usize;
    let mut labels = Vec::with_capacity(n);
    r.read_to_end(&mut labels)
        .map_err(|e| DataError::Truncated {
            path: labels_path.display().to_string(),
            entries: labels.len(),
            detail: e.to_string(),
        })?;
    if labels.len() != n {
        return Err(DataError::Truncated {
            path: labels_path.display().to_string(),
            entries: labels.len(),
            detail: format!("header announces {n} labels"),
        });
    }
    Ok(labels)
}

/// Streams every image of `split` with its label.
pub(crate) fn visit(
    dir: &Path,
    split: Split,
    f: &mut dyn FnMut(RawRecord) -> Result<(), DataError>,
) -> Result<(), DataError> {
    let labels = labels(dir, split)?;
    let (images_path, _) = files(dir, split)?;
    let mut r = open_maybe_gz(&images_path)?;
    let h = header(&mut r, &images_path, 0x0803, 3)?;
    let (n, rows, cols) = (h[0] as usize, h[1], h[2]);
    if n != labels.len() {
        return Err(DataError::Format {
            path: images_path.display().to_string(),
            format: "IDX",
            detail: format!("{n} images but {} labels", labels.len()),
        });
    }
    let mut buf = vec![0u8; (rows * cols) as usize];
    for (i, &label) in labels.iter().enumerate() {
        r.read_exact(&mut buf).map_err(|e| DataError::Truncated {
            path: images_path.display().to_string(),
            entries: i,
            detail: e.to_string(),
        })?;
        let image = Image::new(1, rows, cols, buf.clone())?;
        f(RawRecord {
            key: format!("{}-{i:05}", stem(split)),
            class: ClassRef::Index(label as u32),
            payload: Payload::Pixels(image),
        })?;
    }
    Ok(())
}

/// IDX files (`train-images-idx3-ubyte[.gz]`, ...), taken as Fashion-MNIST: the IDX data set a
/// NASSearch names (MNIST's files are the same format and cannot be told apart).
pub(crate) struct Idx {
    pub root: PathBuf,
}

impl super::Reader for Idx {
    fn channels(&self) -> Result<u8, DataError> {
        Ok(1)
    }

    fn normalization(&self) -> Result<crate::data::Normalization, DataError> {
        Ok(crate::data::Normalization::fashion_mnist())
    }

    fn index_names(&self, _split: Split) -> Result<Option<Vec<String>>, DataError> {
        Ok(Some(
            FASHION_CLASSES.iter().map(|s| s.to_string()).collect(),
        ))
    }

    fn visit(
        &self,
        split: Split,
        f: &mut crate::data::records::Visitor<'_>,
    ) -> Result<crate::data::records::VisitSummary, DataError> {
        visit(&self.root, split, f).map(|_| Default::default())
    }
}
