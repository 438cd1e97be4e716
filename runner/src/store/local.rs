//! Local-folder backend with the S3 backend's semantics.
//!
//! Writes go to a temporary file beside the target, are fsynced, then renamed over it, and the
//! folder is fsynced, so a crash leaves the old object or the new one, never a torn file (a
//! `_SUCCESS` marker that survives a power cut means its data did too). Temporary files carry
//! [`TEMP_MARKER`](super::TEMP_MARKER) and are invisible to `list`.
use super::{validate_key, validate_prefix, ObjectStore, StoreError, TEMP_MARKER};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Distinguishes temporary files of concurrent writers in one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// A store at `root`, which is created on the first write.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalStore { root: root.into() }
    }

    /// A store at `root`, created now; fails with `Config` if `root` exists and is not a folder
    /// or cannot be created (the local counterpart of a missing bucket).
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        if root.exists() && !root.is_dir() {
            return Err(StoreError::Config(format!(
                "store folder {} exists and is not a folder",
                root.display()
            )));
        }
        fs::create_dir_all(&root).map_err(|e| {
            StoreError::Config(format!(
                "cannot create store folder {}: {e}",
                root.display()
            ))
        })?;
        Ok(LocalStore { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        validate_key(key)?;
        Ok(self.root.join(key))
    }

    fn not_found(&self, key: &str) -> StoreError {
        StoreError::NotFound {
            location: self.describe(),
            key: key.into(),
        }
    }

    fn create_parent(path: &Path) -> Result<(), StoreError> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)
                .map_err(io_err(format!("creating folder {}", dir.display())))?;
        }
        Ok(())
    }
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> StoreError {
    let context = context.into();
    move |source| StoreError::Io { context, source }
}

pub(crate) fn temp_beside(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!("{TEMP_MARKER}{}.{n}.{name}", std::process::id()))
}

/// Writes `path` atomically: `fill` writes a temporary file, which is fsynced and renamed over
/// `path`; the folder is then fsynced so the rename itself survives a crash.
pub(crate) fn write_atomically(
    path: &Path,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> Result<(), StoreError> {
    let tmp = temp_beside(path);
    let result = (|| {
        let mut f = File::create(&tmp).map_err(io_err(format!("creating {}", tmp.display())))?;
        fill(&mut f).map_err(io_err(format!("writing {}", tmp.display())))?;
        f.sync_all()
            .map_err(io_err(format!("syncing {}", tmp.display())))?;
        drop(f);
        fs::rename(&tmp, path).map_err(io_err(format!(
            "renaming {} to {}",
            tmp.display(),
            path.display()
        )))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

#[cfg(unix)]
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(format!("syncing folder {}", dir.display())))
}

#[cfg(not(unix))]
pub(crate) fn sync_dir(_dir: &Path) -> Result<(), StoreError> {
    Ok(())
}

impl ObjectStore for LocalStore {
    fn describe(&self) -> String {
        let abs = std::path::absolute(&self.root).unwrap_or_else(|_| self.root.clone());
        format!("file://{}", abs.display())
    }

    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.path(key)?;
        Self::create_parent(&path)?;
        write_atomically(&path, |f| f.write_all(bytes))
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        let path = self.path(key)?;
        match fs::read(&path) {
            Ok(bytes) => Ok(bytes),
            // A folder is a key prefix, not an object, as on S3.
            Err(e) if e.kind() == io::ErrorKind::NotFound || path.is_dir() => {
                Err(self.not_found(key))
            }
            Err(e) => Err(StoreError::Io {
                context: format!("reading {}", path.display()),
                source: e,
            }),
        }
    }

    fn put_file(&self, key: &str, src: &Path) -> Result<(), StoreError> {
        let path = self.path(key)?;
        let mut input = File::open(src).map_err(io_err(format!("opening {}", src.display())))?;
        Self::create_parent(&path)?;
        write_atomically(&path, |f| io::copy(&mut input, f).map(drop))
    }

    fn get_to_file(&self, key: &str, dest: &Path) -> Result<(), StoreError> {
        let path = self.path(key)?;
        let mut input = match File::open(&path) {
            Ok(f) if path.is_file() => f,
            Ok(_) => return Err(self.not_found(key)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(self.not_found(key)),
            Err(e) => {
                return Err(StoreError::Io {
                    context: format!("opening {}", path.display()),
                    source: e,
                })
            }
        };
        Self::create_parent(dest)?;
        write_atomically(dest, |f| io::copy(&mut input, f).map(drop))
    }

    fn exists(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.path(key)?.is_file())
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        validate_prefix(prefix)?;
        // Walk only the deepest folder the prefix names in full.
        let start_rel = prefix.rsplit_once('/').map(|(dir, _)| dir).unwrap_or("");
        let mut out = Vec::new();
        let mut stack = vec![self.root.join(start_rel)];
        while let Some(dir) = stack.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e)
                    if e.kind() == io::ErrorKind::NotFound
                        || e.kind() == io::ErrorKind::NotADirectory =>
                {
                    continue
                }
                Err(e) => {
                    return Err(StoreError::Io {
                        context: format!("listing {}", dir.display()),
                        source: e,
                    })
                }
            };
            for entry in entries {
                let entry = entry.map_err(io_err(format!("listing {}", dir.display())))?;
                let name = entry.file_name();
                if name.to_string_lossy().starts_with(TEMP_MARKER) {
                    continue;
                }
                let p = entry.path();
                let file_type = entry
                    .file_type()
                    .map_err(io_err(format!("inspecting {}", p.display())))?;
                if file_type.is_dir() {
                    stack.push(p);
                } else if let Ok(rel) = p.strip_prefix(&self.root) {
                    let key = rel
                        .to_string_lossy()
                        .replace(std::path::MAIN_SEPARATOR, "/");
                    if key.starts_with(prefix) {
                        out.push(key);
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path(key)?;
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(_) if path.is_dir() => Ok(()),
            Err(e) => Err(StoreError::Io {
                context: format!("deleting {}", path.display()),
                source: e,
            }),
        }
    }
}
