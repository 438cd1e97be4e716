//! Local-folder backend: atomic writes through a temporary file and rename.
use super::{ObjectStore, StoreError};
use std::path::{Path, PathBuf};

pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalStore { root: root.into() }
    }

    fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        if key.split('/').any(|c| c == ".." || c == ".") || key.starts_with('/') || key.is_empty() {
            return Err(StoreError::Config(format!("invalid object key '{key}'")));
        }
        Ok(self.root.join(key))
    }

    fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> StoreError {
        let context = context.into();
        move |source| StoreError::Io { context, source }
    }

    fn temp_beside(path: &Path) -> PathBuf {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
    }
}

impl ObjectStore for LocalStore {
    fn describe(&self) -> String {
        format!("file://{}", self.root.display())
    }

    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.path(key)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(Self::io(format!("creating {}", dir.display())))?;
        }
        let tmp = Self::temp_beside(&path);
        std::fs::write(&tmp, bytes).map_err(Self::io(format!("writing {}", tmp.display())))?;
        std::fs::rename(&tmp, &path).map_err(Self::io(format!("renaming to {}", path.display())))
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        let path = self.path(key)?;
        std::fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StoreError::NotFound {
                location: self.describe(),
                key: key.into(),
            },
            _ => StoreError::Io {
                context: format!("reading {}", path.display()),
                source: e,
            },
        })
    }

    fn put_file(&self, key: &str, src: &Path) -> Result<(), StoreError> {
        let path = self.path(key)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(Self::io(format!("creating {}", dir.display())))?;
        }
        let tmp = Self::temp_beside(&path);
        std::fs::copy(src, &tmp).map_err(Self::io(format!("copying {}", src.display())))?;
        std::fs::rename(&tmp, &path).map_err(Self::io(format!("renaming to {}", path.display())))
    }

    fn get_to_file(&self, key: &str, dest: &Path) -> Result<(), StoreError> {
        let path = self.path(key)?;
        if !path.exists() {
            return Err(StoreError::NotFound {
                location: self.describe(),
                key: key.into(),
            });
        }
        let tmp = Self::temp_beside(dest);
        std::fs::copy(&path, &tmp).map_err(Self::io(format!("copying {}", path.display())))?;
        std::fs::rename(&tmp, dest).map_err(Self::io(format!("renaming to {}", dest.display())))
    }

    fn exists(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.path(key)?.is_file())
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        let mut stack = vec![self.root.clone()];
        while let Some(dir) = stack.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(StoreError::Io {
                        context: format!("listing {}", dir.display()),
                        source: e,
                    })
                }
            };
            for entry in entries {
                let entry = entry.map_err(Self::io(format!("listing {}", dir.display())))?;
                let p = entry.path();
                if p.is_dir() {
                    stack.push(p);
                } else if let Ok(rel) = p.strip_prefix(&self.root) {
                    let key = rel.to_string_lossy().replace('\\', "/");
                    let hidden = key.rsplit('/').next().is_some_and(|n| n.starts_with('.'));
                    if !hidden && key.starts_with(prefix) {
                        out.push(key);
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        match std::fs::remove_file(self.path(key)?) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::Io {
                context: format!("deleting {key}"),
                source: e,
            }),
        }
    }
}
