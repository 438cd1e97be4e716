//! Where a store lives: `s3://bucket/key`, `file:///path` or a plain path.
//!
//! The operator writes these into the resolved spec and the runner opens them, so both sides
//! parse them with this one function.
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use thiserror::Error;

/// A parsed store location. For S3 `key` is the object key or key prefix inside the bucket,
/// without leading or trailing `/` (empty for the bucket root).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StoreUri {
    S3 { bucket: String, key: String },
    File { path: PathBuf },
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum UriError {
    #[error("empty store URI: expected s3://bucket/key, file:///path or a path")]
    Empty,
    #[error("unsupported scheme '{scheme}' in '{uri}': expected s3://, file:// or a plain path")]
    UnsupportedScheme { uri: String, scheme: String },
    #[error("invalid bucket name '{bucket}' in '{uri}': {reason}")]
    InvalidBucket {
        uri: String,
        bucket: String,
        reason: &'static str,
    },
    #[error("invalid key in '{uri}': {reason}")]
    InvalidKey { uri: String, reason: String },
    #[error("file URI '{uri}' names host '{host}': only local files (file:///path) are supported")]
    RemoteFileHost { uri: String, host: String },
    #[error("file URI '{uri}' has a bad percent escape at byte {position}")]
    BadEscape { uri: String, position: usize },
}

impl StoreUri {
    pub fn parse(s: &str) -> Result<StoreUri, UriError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(UriError::Empty);
        }
        if let Some(rest) = s.strip_prefix("s3://") {
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            validate_bucket(s, bucket)?;
            let key = normalize_key(key).map_err(|reason| UriError::InvalidKey {
                uri: s.into(),
                reason,
            })?;
            return Ok(StoreUri::S3 {
                bucket: bucket.into(),
                key,
            });
        }
        if let Some(rest) = s.strip_prefix("file://") {
            let (host, path) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, ""),
            };
            if !(host.is_empty() || host == "localhost") {
                return Err(UriError::RemoteFileHost {
                    uri: s.into(),
                    host: host.into(),
                });
            }
            if path.is_empty() {
                return Err(UriError::InvalidKey {
                    uri: s.into(),
                    reason: "no path after file://".into(),
                });
            }
            let decoded = percent_decode(path).map_err(|position| UriError::BadEscape {
                uri: s.into(),
                position,
            })?;
            return Ok(StoreUri::File {
                path: PathBuf::from(decoded),
            });
        }
        if let Some(i) = s.find("://") {
            return Err(UriError::UnsupportedScheme {
                uri: s.into(),
                scheme: s[..i].into(),
            });
        }
        Ok(StoreUri::File {
            path: PathBuf::from(s),
        })
    }

    /// The location of `key` below this one (`s3://b/p` + `x/y` = `s3://b/p/x/y`).
    pub fn join(&self, key: &str) -> StoreUri {
        let key = key.trim_matches('/');
        match self {
            StoreUri::S3 { bucket, key: base } => StoreUri::S3 {
                bucket: bucket.clone(),
                key: if base.is_empty() {
                    key.to_string()
                } else if key.is_empty() {
                    base.clone()
                } else {
                    format!("{base}/{key}")
                },
            },
            StoreUri::File { path } => StoreUri::File {
                path: if key.is_empty() {
                    path.clone()
                } else {
                    path.join(key)
                },
            },
        }
    }

    /// Splits an object's location into the location of its parent and its last key component,
    /// e.g. `s3://b/p/spec.json` into (`s3://b/p`, `spec.json`). `None` for a bucket root or `/`.
    pub fn split_last(&self) -> Option<(StoreUri, String)> {
        match self {
            StoreUri::S3 { bucket, key } => {
                if key.is_empty() {
                    return None;
                }
                let (parent, name) = key.rsplit_once('/').unwrap_or(("", key.as_str()));
                Some((
                    StoreUri::S3 {
                        bucket: bucket.clone(),
                        key: parent.into(),
                    },
                    name.into(),
                ))
            }
            StoreUri::File { path } => {
                let name = path.file_name()?.to_string_lossy().into_owned();
                let parent = path.parent().map(Path::to_path_buf).unwrap_or_default();
                let parent = if parent.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    parent
                };
                Some((StoreUri::File { path: parent }, name))
            }
        }
    }
}

impl FromStr for StoreUri {
    type Err = UriError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StoreUri::parse(s)
    }
}

impl fmt::Display for StoreUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUri::S3 { bucket, key } if key.is_empty() => write!(f, "s3://{bucket}"),
            StoreUri::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
            StoreUri::File { path } if path.is_absolute() => write!(f, "file://{}", path.display()),
            StoreUri::File { path } => write!(f, "{}", path.display()),
        }
    }
}

/// S3 bucket naming rules (3 to 63 of `a-z 0-9 . -`, starting and ending with a letter or
/// digit), which S3-compatible stores also follow.
fn validate_bucket(uri: &str, bucket: &str) -> Result<(), UriError> {
    let err = |reason| {
        Err(UriError::InvalidBucket {
            uri: uri.into(),
            bucket: bucket.into(),
            reason,
        })
    };
    if bucket.is_empty() {
        return err("bucket name is empty");
    }
    if !(3..=63).contains(&bucket.len()) {
        return err("must be 3 to 63 characters long");
    }
    if !bucket
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return err("only lowercase letters, digits, '.' and '-' are allowed");
    }
    let first_last_ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !first_last_ok(bucket.as_bytes()[0]) || !first_last_ok(bucket.as_bytes()[bucket.len() - 1]) {
        return err("must start and end with a letter or digit");
    }
    if bucket.contains("..") {
        return err("must not contain '..'");
    }
    Ok(())
}

/// Trims surrounding `/` and rejects empty, `.` and `..` components in between.
pub(crate) fn normalize_key(key: &str) -> Result<String, String> {
    let key = key.trim_matches('/');
    if key.is_empty() {
        return Ok(String::new());
    }
    for (i, c) in key.split('/').enumerate() {
        match c {
            "" => return Err(format!("component {i} is empty (double '/')")),
            "." | ".." => return Err(format!("component {i} is '{c}'")),
            _ => {}
        }
    }
    Ok(key.to_string())
}

/// Decodes `%XX` escapes; returns the byte position of a malformed escape.
fn percent_decode(s: &str) -> Result<String, usize> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(i)?;
            let hex = std::str::from_utf8(hex).map_err(|_| i)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| i)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(bucket: &str, key: &str) -> StoreUri {
        StoreUri::S3 {
            bucket: bucket.into(),
            key: key.into(),
        }
    }

    #[test]
    fn parses_s3() {
        assert_eq!(
            StoreUri::parse("s3://my-bucket/a/b/spec.json").unwrap(),
            s3("my-bucket", "a/b/spec.json")
        );
        assert_eq!(
            StoreUri::parse("s3://my-bucket").unwrap(),
            s3("my-bucket", "")
        );
        assert_eq!(
            StoreUri::parse("s3://my-bucket/").unwrap(),
            s3("my-bucket", "")
        );
        assert_eq!(StoreUri::parse("s3://b.c-1/x/").unwrap(), s3("b.c-1", "x"));
    }

    #[test]
    fn rejects_bad_s3() {
        assert!(matches!(
            StoreUri::parse("s3://"),
            Err(UriError::InvalidBucket { .. })
        ));
        assert!(matches!(
            StoreUri::parse("s3://My_Bucket/x"),
            Err(UriError::InvalidBucket { .. })
        ));
        assert!(matches!(
            StoreUri::parse("s3://ab/x"),
            Err(UriError::InvalidBucket { .. })
        ));
        assert!(matches!(
            StoreUri::parse("s3://-abc/x"),
            Err(UriError::InvalidBucket { .. })
        ));
        assert!(matches!(
            StoreUri::parse("s3://abc/x//y"),
            Err(UriError::InvalidKey { .. })
        ));
        assert!(matches!(
            StoreUri::parse("s3://abc/x/../y"),
            Err(UriError::InvalidKey { .. })
        ));
    }

    #[test]
    fn parses_files_and_plain_paths() {
        assert_eq!(
            StoreUri::parse("file:///tmp/out").unwrap(),
            StoreUri::File {
                path: "/tmp/out".into()
            }
        );
        assert_eq!(
            StoreUri::parse("file://localhost/tmp/a%20b").unwrap(),
            StoreUri::File {
                path: "/tmp/a b".into()
            }
        );
        assert_eq!(
            StoreUri::parse("out/dir").unwrap(),
            StoreUri::File {
                path: "out/dir".into()
            }
        );
        assert_eq!(
            StoreUri::parse("/abs").unwrap(),
            StoreUri::File {
                path: "/abs".into()
            }
        );
        assert!(matches!(
            StoreUri::parse("file://server/x"),
            Err(UriError::RemoteFileHost { .. })
        ));
        assert!(matches!(
            StoreUri::parse("file:///a%2"),
            Err(UriError::BadEscape { .. })
        ));
        assert!(matches!(
            StoreUri::parse("gs://b/k"),
            Err(UriError::UnsupportedScheme { .. })
        ));
        assert_eq!(StoreUri::parse("  "), Err(UriError::Empty));
    }

    #[test]
    fn display_round_trips() {
        for s in ["s3://bucket/a/b", "s3://bucket", "file:///tmp/x", "rel/dir"] {
            assert_eq!(StoreUri::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn join_and_split() {
        let u = StoreUri::parse("s3://bucket/p").unwrap();
        assert_eq!(u.join("x/spec.json"), s3("bucket", "p/x/spec.json"));
        let (parent, name) = u.join("x/spec.json").split_last().unwrap();
        assert_eq!((parent, name.as_str()), (s3("bucket", "p/x"), "spec.json"));
        assert_eq!(s3("bucket", "").split_last(), None);
        let (parent, name) = StoreUri::parse("spec.json").unwrap().split_last().unwrap();
        assert_eq!(
            (parent, name.as_str()),
            (StoreUri::File { path: ".".into() }, "spec.json")
        );
    }
}
