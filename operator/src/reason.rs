//! The reasons the operator gives, in conditions and events, and the Job failure reasons it
//! reads: enums, so a reason is spelled once and a dashboard or alert can rely on the set.

/// A condition's or event's reason (PascalCase, as Kubernetes asks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// `Accepted=True`.
    Valid,
    /// `Accepted=False`: the spec fails validation or cannot be read.
    InvalidSpec,
    SpecChanged,
    StageStarted,
    StageSucceeded,
    StagePartiallySucceeded,
    IndexFailed,
    StageFailed,
    /// The whole search succeeded (event).
    Succeeded,
    AllStagesDone,
    InProgress,
    StageRunning,
    /// A pod of the running stage is not starting and its own reason is not a valid one.
    PodNotStarting,
    /// A pod's own Waiting or scheduling reason (`ImagePullBackOff`, `Unschedulable`, ...),
    /// passed on as it is; only alphanumeric reasons get here (see [`Reason::of_pod`]).
    Pod(String),
    SuspendRequested,
    Suspended,
    Resumed,
    CleanupStarted,
    CleanupFailed,
    CleanupSkipped,
    /// The operator could not carry out one of its actions (an API error).
    ActionFailed,
}

impl Reason {
    /// A pod's reason as a condition reason: the kubelet's and scheduler's reasons are already
    /// PascalCase; anything else becomes [`Reason::PodNotStarting`].
    pub fn of_pod(reason: &str) -> Reason {
        if !reason.is_empty() && reason.chars().all(|c| c.is_ascii_alphanumeric()) {
            Reason::Pod(reason.to_string())
        } else {
            Reason::PodNotStarting
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Reason::Valid => "Valid",
            Reason::InvalidSpec => "InvalidSpec",
            Reason::SpecChanged => "SpecChanged",
            Reason::StageStarted => "StageStarted",
            Reason::StageSucceeded => "StageSucceeded",
            Reason::StagePartiallySucceeded => "StagePartiallySucceeded",
            Reason::IndexFailed => "IndexFailed",
            Reason::StageFailed => "StageFailed",
            Reason::Succeeded => "Succeeded",
            Reason::AllStagesDone => "AllStagesDone",
            Reason::InProgress => "InProgress",
            Reason::StageRunning => "StageRunning",
            Reason::PodNotStarting => "PodNotStarting",
            Reason::Pod(r) => r,
            Reason::SuspendRequested => "SuspendRequested",
            Reason::Suspended => "Suspended",
            Reason::Resumed => "Resumed",
            Reason::CleanupStarted => "CleanupStarted",
            Reason::CleanupFailed => "CleanupFailed",
            Reason::CleanupSkipped => "CleanupSkipped",
            Reason::ActionFailed => "ActionFailed",
        }
    }
}

impl PartialEq<&str> for Reason {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why Kubernetes failed a Job (its `Failed` condition's reason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobFailure {
    BackoffLimitExceeded,
    /// Some indexes failed and the rest finished (`backoffLimitPerIndex`).
    FailedIndexes,
    MaxFailedIndexesExceeded,
    DeadlineExceeded,
    PodFailurePolicy,
    /// A reason this release does not know, kept as Kubernetes wrote it.
    Other(String),
}

impl JobFailure {
    pub fn as_str(&self) -> &str {
        match self {
            JobFailure::BackoffLimitExceeded => "BackoffLimitExceeded",
            JobFailure::FailedIndexes => "FailedIndexes",
            JobFailure::MaxFailedIndexesExceeded => "MaxFailedIndexesExceeded",
            JobFailure::DeadlineExceeded => "DeadlineExceeded",
            JobFailure::PodFailurePolicy => "PodFailurePolicy",
            JobFailure::Other(r) => r,
        }
    }
}

impl From<&str> for JobFailure {
    fn from(reason: &str) -> Self {
        [
            JobFailure::BackoffLimitExceeded,
            JobFailure::FailedIndexes,
            JobFailure::MaxFailedIndexesExceeded,
            JobFailure::DeadlineExceeded,
            JobFailure::PodFailurePolicy,
        ]
        .into_iter()
        .find(|known| known.as_str() == reason)
        .unwrap_or_else(|| JobFailure::Other(reason.to_string()))
    }
}

impl std::fmt::Display for JobFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_job_failures_round_trip_and_unknown_ones_are_kept() {
        for r in ["FailedIndexes", "BackoffLimitExceeded", "PodFailurePolicy"] {
            let f = JobFailure::from(r);
            assert!(!matches!(f, JobFailure::Other(_)), "{r}");
            assert_eq!(f.as_str(), r);
        }
        assert_eq!(
            JobFailure::from("SomethingNew"),
            JobFailure::Other("SomethingNew".into())
        );
    }

    #[test]
    fn a_pod_reason_passes_only_when_it_is_a_valid_condition_reason() {
        assert_eq!(
            Reason::of_pod("ImagePullBackOff"),
            Reason::Pod("ImagePullBackOff".into())
        );
        assert_eq!(Reason::of_pod("bad reason!"), Reason::PodNotStarting);
        assert_eq!(Reason::of_pod(""), Reason::PodNotStarting);
    }
}
