//! Why a stage stopped, in the stage contract's terms: the kind chooses the exit code, the
//! message says what failed in the user's words, the source keeps the cause for the logs.

use std::error::Error;
use std::fmt;

use nas_api::contract::Outcome;

use crate::store::StoreError;

/// The contract class of a stage failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The spec or its inputs are wrong: retrying cannot help (exit 2, fails the Job).
    Config,
    /// This shard or candidate cannot be done (exit 3, fails the index).
    Undoable,
    /// Worth a retry (exit 1): IO, the network, a full disk, a crashed thread.
    Transient,
    /// Stopped on request at a unit boundary, finished work kept (exit 143, not counted
    /// against retries); the message says what was kept.
    Interrupted,
}

impl ErrorKind {
    pub fn outcome(self) -> Outcome {
        match self {
            ErrorKind::Config => Outcome::InvalidConfig,
            ErrorKind::Undoable => Outcome::Undoable,
            ErrorKind::Transient => Outcome::Failed,
            ErrorKind::Interrupted => Outcome::Interrupted,
        }
    }
}

type Source = Box<dyn Error + Send + Sync + 'static>;

/// A stage failure: [`StageError::outcome`] follows the stage contract.
#[derive(Debug)]
pub struct StageError {
    kind: ErrorKind,
    /// What failed; empty when the source says it all.
    message: String,
    source: Option<Source>,
}

impl StageError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        StageError {
            kind,
            message: message.into(),
            source: None,
        }
    }

    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }

    pub fn undoable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Undoable, message)
    }

    pub fn transient(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Transient, message)
    }

    pub fn interrupted(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Interrupted, message)
    }

    /// `kind` caused by `source`; `message` says what was being done.
    pub fn caused_by(
        kind: ErrorKind,
        message: impl Into<String>,
        source: impl Into<Source>,
    ) -> Self {
        StageError {
            kind,
            message: message.into(),
            source: Some(source.into()),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn outcome(&self) -> Outcome {
        self.kind.outcome()
    }

    /// Prefixes the message with what was being done.
    pub fn context(mut self, what: &str) -> Self {
        self.message = if self.message.is_empty() {
            what.to_string()
        } else {
            format!("{what}: {}", self.message)
        };
        self
    }
}

impl fmt::Display for StageError {
    /// The message, then its cause: the one line a termination summary carries.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.source, self.message.is_empty()) {
            (Some(s), true) => write!(f, "{s}"),
            (Some(s), false) => write!(f, "{}: {s}", self.message),
            (None, _) => f.write_str(&self.message),
        }
    }
}

impl Error for StageError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|s| s as &(dyn Error + 'static))
    }
}

impl From<StoreError> for StageError {
    fn from(e: StoreError) -> Self {
        let kind = match e.outcome() {
            Outcome::InvalidConfig => ErrorKind::Config,
            _ => ErrorKind::Transient,
        };
        StageError::caused_by(kind, "", e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nas_api::contract::exit_code;

    #[test]
    fn kinds_choose_the_contract_exit_codes() {
        assert_eq!(
            StageError::config("x").outcome().exit_code(),
            exit_code::INVALID_CONFIG
        );
        assert_eq!(
            StageError::undoable("x").outcome().exit_code(),
            exit_code::UNDOABLE
        );
        assert_eq!(
            StageError::transient("x").outcome().exit_code(),
            exit_code::RETRY
        );
        assert_eq!(
            StageError::interrupted("x").outcome().exit_code(),
            exit_code::INTERRUPTED
        );
    }

    #[test]
    fn a_wrapped_store_error_keeps_its_source_and_its_class() {
        let e = StageError::from(StoreError::Rejected("slow down".into())).context("shard 3");
        assert_eq!(e.kind(), ErrorKind::Transient);
        assert_eq!(e.to_string(), "shard 3: slow down");
        assert_eq!(e.source().unwrap().to_string(), "slow down");
        let c = StageError::from(StoreError::Config("bad endpoint".into()));
        assert_eq!(c.kind(), ErrorKind::Config);
        assert_eq!(c.to_string(), "bad endpoint");
    }
}
