//! The bookkeeping of one Job, as the Kubernetes Job controller keeps it: which indexes or
//! completions are done, failure counting under backoffLimit, backoffLimitPerIndex,
//! maxFailedIndexes and podFailurePolicy, and the Job status it implies. Pure: no IO.
use std::collections::{BTreeMap, BTreeSet};

use chrono::{SecondsFormat, Utc};
use k8s_openapi::api::batch::v1::{JobSpec, JobStatus, PodFailurePolicy};
use serde_json::{json, Value};

use super::indexes;

/// The parts of a Job's spec the controller acts on, with the API server's defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct JobPlan {
    pub indexed: bool,
    pub completions: Option<i32>,
    pub parallelism: i32,
    pub backoff_limit: i32,
    pub backoff_limit_per_index: Option<i32>,
    pub max_failed_indexes: Option<i32>,
    pub pod_failure_policy: Option<PodFailurePolicy>,
    pub suspend: bool,
}

impl JobPlan {
    /// Reads a JobSpec with the defaults of the real API server.
    pub fn from_spec(spec: &JobSpec) -> Self {
        let per_index = spec.backoff_limit_per_index;
        JobPlan {
            indexed: spec.completion_mode.as_deref() == Some("Indexed"),
            completions: spec.completions,
            parallelism: spec.parallelism.unwrap_or(1).max(0),
            // backoffLimit defaults to 6, or to MaxInt32 when backoffLimitPerIndex is set.
            backoff_limit: spec.backoff_limit.unwrap_or(if per_index.is_some() {
                i32::MAX
            } else {
                6
            }),
            backoff_limit_per_index: per_index,
            max_failed_indexes: spec.max_failed_indexes,
            pod_failure_policy: spec.pod_failure_policy.clone(),
            suspend: spec.suspend.unwrap_or(false),
        }
    }
}

/// How one pod ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodOutcome {
    pub pod: String,
    pub namespace: String,
    pub container: String,
    pub index: Option<i32>,
    pub exit_code: i32,
    /// The pod carried the DisruptionTarget condition (evicted, preempted).
    pub disrupted: bool,
}

/// How the Job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finish {
    pub complete: bool,
    pub reason: String,
    pub message: String,
}

/// The running tally of one Job.
#[derive(Debug, Clone)]
pub struct Tracker {
    pub plan: JobPlan,
    pub succeeded_indexes: BTreeSet<i32>,
    pub failed_indexes: BTreeSet<i32>,
    pub index_failures: BTreeMap<i32, i32>,
    pub succeeded: i32,
    pub failed: i32,
    /// Running pods and their index.
    pub active: BTreeMap<String, Option<i32>>,
    /// Set once the Job's outcome is decided; the terminal condition follows when no pod runs.
    pub finish: Option<Finish>,
    pub start_time: Option<String>,
    pub completion_time: Option<String>,
    pub conditions: Vec<Value>,
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn condition(kind: &str, status: &str, reason: &str, message: &str) -> Value {
    let t = now();
    json!({"type": kind, "status": status, "reason": reason, "message": message,
           "lastProbeTime": t, "lastTransitionTime": t})
}

impl Tracker {
    /// A tracker for a Job, resuming from the counts its status already records.
    pub fn new(spec: &JobSpec, status: Option<&JobStatus>) -> Self {
        let plan = JobPlan::from_spec(spec);
        let mut t = Tracker {
            plan,
            succeeded_indexes: BTreeSet::new(),
            failed_indexes: BTreeSet::new(),
            index_failures: BTreeMap::new(),
            succeeded: 0,
            failed: 0,
            active: BTreeMap::new(),
            finish: None,
            start_time: None,
            completion_time: None,
            conditions: Vec::new(),
        };
        if let Some(s) = status {
            t.succeeded = s.succeeded.unwrap_or(0);
            t.failed = s.failed.unwrap_or(0);
            t.succeeded_indexes = indexes::parse(s.completed_indexes.as_deref().unwrap_or(""));
            t.failed_indexes = indexes::parse(s.failed_indexes.as_deref().unwrap_or(""));
            t.start_time = s
                .start_time
                .as_ref()
                .and_then(|x| serde_json::to_value(x).ok())
                .and_then(|v| v.as_str().map(String::from));
            t.conditions = s
                .conditions
                .iter()
                .flatten()
                .filter_map(|c| serde_json::to_value(c).ok())
                .collect();
        }
        if t.plan.suspend && !t.conditions.iter().any(|c| c["type"] == "Suspended") {
            t.set_condition("Suspended", "True", "JobSuspended", "Job suspended");
        }
        t
    }

    /// Whether a Complete or Failed condition is set.
    pub fn terminal(&self) -> bool {
        self.conditions.iter().any(|c| {
            matches!(c["type"].as_str(), Some("Complete" | "Failed")) && c["status"] == "True"
        })
    }

    fn set_condition(&mut self, kind: &str, status: &str, reason: &str, message: &str) {
        if let Some(c) = self.conditions.iter_mut().find(|c| c["type"] == kind) {
            if c["status"] != status {
                *c = condition(kind, status, reason, message);
            }
        } else {
            self.conditions
                .push(condition(kind, status, reason, message));
        }
    }

    fn fail(&mut self, reason: &str, message: String) {
        if self.finish.is_none() {
            self.set_condition("FailureTarget", "True", reason, &message);
            self.finish = Some(Finish {
                complete: false,
                reason: reason.into(),
                message,
            });
        }
    }

    /// Marks the Job started (now), as the controller does when it first runs pods.
    pub fn start(&mut self) {
        if self.start_time.is_none() {
            self.start_time = Some(now());
        }
    }

    /// Applies a spec change (suspend, parallelism); returns true when the Job just became
    /// suspended and its running pods must be stopped without counting as failures.
    pub fn update_plan(&mut self, spec: &JobSpec) -> bool {
        let plan = JobPlan::from_spec(spec);
        let was = self.plan.suspend;
        self.plan = plan;
        match (was, self.plan.suspend) {
            (false, true) => {
                self.set_condition("Suspended", "True", "JobSuspended", "Job suspended");
                self.start_time = None;
                true
            }
            (true, false) => {
                self.set_condition("Suspended", "False", "JobResumed", "Job resumed");
                false
            }
            _ => false,
        }
    }

    /// The first podFailurePolicy rule that matches a failed pod: (index, action).
    fn matching_rule(&self, o: &PodOutcome) -> Option<(usize, String, String)> {
        let rules = &self.plan.pod_failure_policy.as_ref()?.rules;
        rules.iter().enumerate().find_map(|(i, r)| {
            if let Some(req) = &r.on_exit_codes {
                if req.container_name.as_deref().is_some_and(|c| c != o.container) {
                    return None;
                }
                let listed = req.values.contains(&o.exit_code);
                let hit = match req.operator.as_str() {
                    "In" => listed,
                    "NotIn" => o.exit_code != 0 && !listed,
                    _ => false,
                };
                let why = format!(
                    "Container {} for pod {}/{} failed with exit code {} matching {} rule at index {i}",
                    o.container, o.namespace, o.pod, o.exit_code, r.action
                );
                return hit.then(|| (i, r.action.clone(), why));
            }
            let hit = r.on_pod_conditions.iter().flatten().any(|p| {
                p.type_ == "DisruptionTarget" && o.disrupted && p.status.as_deref().unwrap_or("True") == "True"
            });
            let why = format!(
                "Pod {}/{} has condition DisruptionTarget matching {} rule at index {i}",
                o.namespace, o.pod, r.action
            );
            hit.then(|| (i, r.action.clone(), why))
        })
    }

    /// Records a pod's end. `stopped` pods were stopped by the controller itself (suspension):
    /// they count neither as success nor failure.
    pub fn pod_finished(&mut self, o: &PodOutcome, stopped: bool) {
        self.active.remove(&o.pod);
        if stopped {
            return;
        }
        let ok = o.exit_code == 0 && !o.disrupted;
        if self.finish.is_some() {
            // Pods ended by the Job's termination count as failed, without any policy.
            if !ok {
                self.failed += 1;
            }
            return;
        }
        if ok {
            self.succeeded += 1;
            if let Some(i) = o.index {
                self.succeeded_indexes.insert(i);
            }
        } else {
            let action = self.matching_rule(o);
            match action.as_ref().map(|(_, a, w)| (a.as_str(), w.clone())) {
                Some(("Ignore", _)) => {}
                Some(("FailJob", why)) => {
                    self.failed += 1;
                    self.fail("PodFailurePolicy", why);
                }
                Some(("FailIndex", _)) => {
                    self.failed += 1;
                    if let Some(i) = o.index {
                        self.failed_indexes.insert(i);
                    }
                }
                _ => {
                    self.failed += 1;
                    if let (Some(i), Some(limit)) = (o.index, self.plan.backoff_limit_per_index) {
                        let n = self.index_failures.entry(i).or_insert(0);
                        *n += 1;
                        if *n > limit {
                            self.failed_indexes.insert(i);
                        }
                    }
                }
            }
        }
        self.evaluate();
    }

    /// Decides the outcome when the counts allow it.
    pub fn evaluate(&mut self) {
        if self.finish.is_some() {
            return;
        }
        if let Some(max) = self.plan.max_failed_indexes {
            if self.failed_indexes.len() as i64 > i64::from(max) {
                return self.fail(
                    "MaxFailedIndexesExceeded",
                    "Job has exceeded the specified maximal number of failed indexes".into(),
                );
            }
        }
        if self.failed > self.plan.backoff_limit {
            return self.fail(
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit".into(),
            );
        }
        let done = if self.plan.indexed {
            let total = self.plan.completions.unwrap_or(1);
            if (self.succeeded_indexes.len() + self.failed_indexes.len()) as i64 >= i64::from(total)
            {
                if !self.failed_indexes.is_empty() {
                    return self.fail("FailedIndexes", "Job has failed indexes".into());
                }
                true
            } else {
                false
            }
        } else {
            match self.plan.completions {
                Some(c) => self.succeeded >= c,
                None => self.succeeded >= 1 && self.active.is_empty(),
            }
        };
        if done {
            let message = "Reached expected number of succeeded pods".to_string();
            self.set_condition("SuccessCriteriaMet", "True", "CompletionsReached", &message);
            self.finish = Some(Finish {
                complete: true,
                reason: "CompletionsReached".into(),
                message,
            });
        }
    }

    /// Pods to start now (their index, or None for a non-indexed Job).
    pub fn to_start(&self) -> Vec<Option<i32>> {
        if self.finish.is_some() || self.plan.suspend {
            return Vec::new();
        }
        let room = (self.plan.parallelism as usize).saturating_sub(self.active.len());
        if self.plan.indexed {
            let running: BTreeSet<i32> = self.active.values().flatten().copied().collect();
            (0..self.plan.completions.unwrap_or(1))
                .filter(|i| {
                    !self.succeeded_indexes.contains(i)
                        && !self.failed_indexes.contains(i)
                        && !running.contains(i)
                })
                .take(room)
                .map(Some)
                .collect()
        } else {
            let wanted = match self.plan.completions {
                Some(c) => (c - self.succeeded).max(0) as usize,
                None if self.succeeded == 0 => self.plan.parallelism as usize,
                None => 0,
            };
            let n = wanted
                .min(self.plan.parallelism as usize)
                .saturating_sub(self.active.len());
            vec![None; n]
        }
    }

    /// Writes the terminal condition once the outcome is decided and no pod runs any more.
    pub fn settle(&mut self) {
        let Some(f) = self.finish.clone() else { return };
        if !self.active.is_empty() || self.terminal() {
            return;
        }
        if f.complete {
            self.completion_time = Some(now());
            self.set_condition("Complete", "True", &f.reason, &f.message);
        } else {
            self.set_condition("Failed", "True", &f.reason, &f.message);
        }
    }

    /// The Job status these counts imply, as a JSON merge patch body for `/status` (absent
    /// fields as null so that stale values go).
    pub fn status(&self) -> Value {
        let mut s = json!({
            "active": self.active.len(),
            "ready": self.active.len(),
            "terminating": 0,
            "succeeded": if self.plan.indexed { self.succeeded_indexes.len() as i32 } else { self.succeeded },
            "failed": self.failed,
            "startTime": self.start_time,
            "completionTime": self.completion_time,
            "conditions": if self.conditions.is_empty() { Value::Null } else { json!(self.conditions) },
            "uncountedTerminatedPods": {},
        });
        s["completedIndexes"] = if self.plan.indexed {
            json!(indexes::format(&self.succeeded_indexes))
        } else {
            Value::Null
        };
        s["failedIndexes"] = if self.plan.indexed && self.plan.backoff_limit_per_index.is_some() {
            json!(indexes::format(&self.failed_indexes))
        } else {
            Value::Null
        };
        s
    }
}
