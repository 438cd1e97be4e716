//! Streaming over tar and tar.gz archives: class-folder trees and WebDataset shards.
//!
//! Archives are read front to back once, one entry in memory at a time. A short read inside an
//! entry or a broken gzip stream is reported as [`DataError::Truncated`] with the entry count.
use crate::data::records::{ClassRef, Payload, RawRecord};
use crate::data::{image::is_jpeg_name, DataError};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

/// Opens `path` as a byte stream, gunzipping when it starts with the gzip magic.
pub(crate) fn open_maybe_gz(path: &Path) -> Result<Box<dyn Read>, DataError> {
    let mut file = BufReader::with_capacity(
        1 << 20,
        File::open(path).map_err(DataError::io(path.display()))?,
    );
    let mut magic = [0u8; 2];
    let n = read_up_to(&mut file, &mut magic).map_err(DataError::io(path.display()))?;
    let head = std::io::Cursor::new(magic[..n].to_vec());
    let chained = head.chain(file);
    if n == 2 && magic == [0x1f, 0x8b] {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(chained)))
    } else {
        Ok(Box::new(chained))
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// One tar entry as seen by a visitor: the path without a leading `./`, and the bytes when the
/// visitor asked for them.
pub(crate) struct Entry<'a> {
    pub path: &'a str,
    pub is_dir: bool,
    pub data: Option<Vec<u8>>,
}

/// Calls `f` on every entry of the archive at `path`; `want(path)` says whether the entry's
/// bytes are needed (others are skipped without being kept).
pub(crate) fn for_each_entry(
    path: &Path,
    want: &dyn Fn(&str) -> bool,
    f: &mut dyn FnMut(Entry<'_>) -> Result<(), DataError>,
) -> Result<usize, DataError> {
    let shown = path.display().to_string();
    let truncated = |entries: usize, e: &dyn std::fmt::Display| DataError::Truncated {
        path: shown.clone(),
        entries,
        detail: e.to_string(),
    };
    let mut archive = tar::Archive::new(open_maybe_gz(path)?);
    let mut count = 0usize;
    let entries = archive.entries().map_err(|e| truncated(0, &e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| truncated(count, &e))?;
        let raw = entry
            .path()
            .map_err(|e| truncated(count, &e))?
            .to_string_lossy()
            .into_owned();
        let name = raw.trim_start_matches("./").trim_end_matches('/');
        let kind = entry.header().entry_type();
        if name.is_empty() || !(kind.is_file() || kind.is_dir()) {
            continue;
        }
        let data = if kind.is_file() && want(name) {
            let size = entry.header().size().map_err(|e| truncated(count, &e))?;
            let mut buf = Vec::with_capacity(size as usize);
            entry
                .read_to_end(&mut buf)
                .map_err(|e| truncated(count, &e))?;
            if (buf.len() as u64) < size {
                return Err(truncated(
                    count,
                    &format!("entry {name} has {} of {size} bytes", buf.len()),
                ));
            }
            Some(buf)
        } else {
            None
        };
        f(Entry {
            path: name,
            is_dir: kind.is_dir(),
            data,
        })?;
        count += 1;
    }
    Ok(count)
}

/// True when the first entries of the archive look like WebDataset (`key.cls` files).
pub(crate) fn looks_like_webdataset(path: &Path) -> Result<bool, DataError> {
    let mut archive = tar::Archive::new(open_maybe_gz(path)?);
    let entries = archive.entries().map_err(DataError::io(path.display()))?;
    for entry in entries.take(16) {
        let Ok(entry) = entry else { break };
        let Ok(p) = entry.path() else { break };
        if p.to_string_lossy().ends_with(".cls") {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Visits the JPEGs of a class-folder tree inside a tar: `[.../]<class>/<file>.jpg`. When
/// `split_dir` is given, only paths whose class folder sits in a folder of one of those names
/// count (a tar of a whole `<split>/<class>/` tree). Returns every class folder of the tree,
/// including folders without images (a sibling of a class folder that holds none), so that the
/// caller can report empty classes.
pub(crate) fn visit_tree(
    path: &Path,
    split_dir: Option<&[&str]>,
    f: &mut dyn FnMut(RawRecord) -> Result<(), DataError>,
) -> Result<Vec<String>, DataError> {
    let in_split = |class_dir: &[&str]| match split_dir {
        None => true,
        Some(aliases) => class_dir.len() >= 2 && aliases.contains(&class_dir[class_dir.len() - 2]),
    };
    let want = |p: &str| {
        let parts: Vec<&str> = p.split('/').collect();
        parts.len() >= 2 && is_jpeg_name(p) && in_split(&parts[..parts.len() - 1])
    };
    let mut dirs: Vec<String> = Vec::new();
    let mut parents = std::collections::BTreeSet::new();
    for_each_entry(path, &want, &mut |e| {
        if e.is_dir {
            dirs.push(e.path.to_string());
            return Ok(());
        }
        if let Some(data) = e.data {
            let (parent, _) = e.path.rsplit_once('/').expect("want() checked two parts");
            let class = parent.rsplit('/').next().unwrap_or(parent).to_string();
            if !parents.contains(parent) {
                parents.insert(parent.to_string());
            }
            f(RawRecord {
                key: e.path.to_string(),
                class: ClassRef::Name(class),
                payload: Payload::Jpeg(data),
            })?;
        }
        Ok(())
    })?;
    // Class folders are the parents of images and their sibling folders.
    let grandparents: std::collections::BTreeSet<&str> = parents
        .iter()
        .map(|p| p.rsplit_once('/').map(|(g, _)| g).unwrap_or(""))
        .collect();
    let mut classes: std::collections::BTreeSet<String> = parents
        .iter()
        .map(|p| p.rsplit('/').next().unwrap_or(p).to_string())
        .collect();
    for d in &dirs {
        let (g, name) = d.rsplit_once('/').unwrap_or(("", d));
        let parts: Vec<&str> = d.split('/').collect();
        if grandparents.contains(g) && in_split(&parts) {
            classes.insert(name.to_string());
        }
    }
    if parents.is_empty() && split_dir.is_none() {
        // No image at all: every top-level folder is an (empty) class.
        classes.extend(dirs.iter().filter(|d| !d.contains('/')).cloned());
    }
    Ok(classes.into_iter().collect())
}

/// Visits one WebDataset shard: consecutive entries sharing a key (the name up to the first dot
/// of the file name) form a sample; it needs an image (`jpg`/`jpeg`) and a `cls` holding the
/// class index as text.
pub(crate) fn visit_webdataset(
    path: &Path,
    f: &mut dyn FnMut(RawRecord) -> Result<(), DataError>,
) -> Result<(), DataError> {
    struct Pending {
        key: String,
        image: Option<Vec<u8>>,
        cls: Option<Vec<u8>>,
    }
    let shown = path.display().to_string();
    let finish = |p: Pending,
                  f: &mut dyn FnMut(RawRecord) -> Result<(), DataError>|
     -> Result<(), DataError> {
        let bad = |detail: String| DataError::Format {
            path: shown.clone(),
            format: "WebDataset",
            detail,
        };
        let image = p
            .image
            .ok_or_else(|| bad(format!("sample '{}' has no .jpg", p.key)))?;
        let cls = p
            .cls
            .ok_or_else(|| bad(format!("sample '{}' has no .cls", p.key)))?;
        let text = String::from_utf8_lossy(&cls);
        let index: u32 = text.trim().parse().map_err(|_| {
            bad(format!(
                "sample '{}': .cls holds '{}', not a class index",
                p.key,
                text.trim()
            ))
        })?;
        f(RawRecord {
            key: p.key,
            class: ClassRef::Index(index),
            payload: Payload::Jpeg(image),
        })
    };
    let split_key = |p: &str| -> (String, String) {
        let (dir, file) = p
            .rsplit_once('/')
            .map(|(d, f)| (format!("{d}/"), f))
            .unwrap_or((String::new(), p));
        let (stem, ext) = file.split_once('.').unwrap_or((file, ""));
        (format!("{dir}{stem}"), ext.to_ascii_lowercase())
    };
    let want = |p: &str| {
        let ext = split_key(p).1;
        ext == "cls" || ext == "jpg" || ext == "jpeg"
    };
    let mut current: Option<Pending> = None;
    for_each_entry(path, &want, &mut |e| {
        if e.is_dir {
            return Ok(());
        }
        let (key, ext) = split_key(e.path);
        if current.as_ref().is_some_and(|c| c.key != key) {
            finish(current.take().expect("checked"), f)?;
        }
        let cur = current.get_or_insert(Pending {
            key,
            image: None,
            cls: None,
        });
        match ext.as_str() {
            "cls" => cur.cls = e.data,
            "jpg" | "jpeg" => cur.image = e.data,
            _ => {}
        }
        Ok(())
    })?;
    if let Some(p) = current {
        finish(p, f)?;
    }
    Ok(())
}
