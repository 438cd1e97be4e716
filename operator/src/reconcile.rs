//! The IO shell around the planner: read the search's Jobs and pods, plan, carry the actions out
//! (server-side apply, deletes, patches, events), and back off per object on errors.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action as ControllerAction;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Client, Resource, ResourceExt};
use nas_api::crd::NASSearch;
use serde_json::json;
use tracing::{info, instrument, warn};

use crate::jobs::{ANNOTATION_SEARCH_UID, LABEL_SEARCH, MANAGER};
use crate::metrics::Metrics;
use crate::object::SearchObject;
use crate::observed::ObservedJob;
use crate::planner::{self, Action, FINALIZER};
use crate::reason::Reason;

/// Why a reconcile failed (all transient: the object is retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request to the API server failed.
    #[error("Kubernetes API request failed: {0}")]
    Kube(#[from] kube::Error),
    /// The search has no namespace (it is a namespaced resource; this cannot come from a real
    /// API server).
    #[error("NASSearch {0} has no namespace")]
    NoNamespace(String),
}

impl Error {
    /// Short label for the failures metric.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Kube(kube::Error::Api(_)) => "api",
            Error::Kube(_) => "client",
            Error::NoNamespace(_) => "no_namespace",
        }
    }
}

/// Delay before a reconcile refused for a stale resource version is redone (the watch usually
/// brings the new version sooner).
pub const CONFLICT_RETRY: Duration = Duration::from_secs(1);

/// Per-object exponential backoff on errors.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// Delay after the first failure.
    pub base: Duration,
    /// Longest delay.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(5),
            max: Duration::from_secs(300),
        }
    }
}

impl Backoff {
    /// Delay after the `failures`-th consecutive failure (1-based).
    pub fn delay(&self, failures: u32) -> Duration {
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
        self.base.saturating_mul(factor).min(self.max)
    }
}

/// What every reconcile shares.
pub struct Context {
    /// The API client.
    pub client: Client,
    /// Who publishes events.
    pub reporter: Reporter,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Backoff policy.
    pub backoff: Backoff,
    /// One recorder for the controller, so that repeats of an event are aggregated.
    recorder: Recorder,
    failures: Mutex<HashMap<String, u32>>,
}

/// Longest event note events.k8s.io/v1 accepts (bytes).
pub const EVENT_NOTE_MAX: usize = 1024;

impl Context {
    /// A context with no failures recorded.
    pub fn new(
        client: Client,
        reporter: Reporter,
        metrics: Arc<Metrics>,
        backoff: Backoff,
    ) -> Self {
        Self {
            recorder: Recorder::new(client.clone(), reporter.clone()),
            client,
            reporter,
            metrics,
            backoff,
            failures: Mutex::new(HashMap::new()),
        }
    }
}

fn key(search: &impl ResourceExt) -> String {
    format!(
        "{}/{}",
        search.namespace().unwrap_or_default(),
        search.name_any()
    )
}

/// Reconciles one search: plans and carries the plan out, or, for an object this release
/// cannot read, reports that on it alone.
#[instrument(skip_all, fields(namespace = object.namespace().unwrap_or_default(), name = %object.name_any()))]
pub async fn reconcile(
    object: Arc<SearchObject>,
    ctx: Arc<Context>,
) -> Result<ControllerAction, Error> {
    let started = Instant::now();
    ctx.metrics.reconciles.inc();
    let name = object.name_any();
    let ns = object
        .namespace()
        .ok_or_else(|| Error::NoNamespace(name.clone()))?;
    let search = match &object.search {
        Ok(search) => search,
        Err(why) => return reconcile_unreadable(&object, &ns, why, &ctx).await,
    };
    let uid = search.uid();

    let selector = ListParams::default().labels(&format!("{LABEL_SEARCH}={name}"));
    let jobs_api: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
    let jobs: Vec<Job> = jobs_api
        .list(&selector)
        .await?
        .items
        .into_iter()
        // Only Jobs of this search (a re-created search of the same name has another UID): those
        // it owns, and its cleanup Job, which names it in an annotation.
        .filter(|j| {
            j.owner_references()
                .iter()
                .any(|o| Some(&o.uid) == uid.as_ref())
                || j.annotations().get(ANNOTATION_SEARCH_UID) == uid.as_ref()
        })
        .collect();
    let pods: Vec<Pod> = if jobs.is_empty() {
        Vec::new()
    } else {
        Api::<Pod>::namespaced(ctx.client.clone(), &ns)
            .list(&selector)
            .await?
            .items
    };
    let observed: Vec<ObservedJob> = jobs
        .iter()
        .map(|j| ObservedJob::from_job(j, &pods))
        .collect();

    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let plan = planner::plan(search, &observed, &now);
    execute(&object, &ns, &plan.actions, &ctx).await?;

    for (stage, secs) in &plan.finished_stages {
        ctx.metrics
            .stage_duration
            .get_or_create(&Metrics::stage_labels(stage.as_str()))
            .observe(*secs);
    }
    if let Some(Action::PatchStatus(st)) = plan
        .actions
        .iter()
        .rev()
        .find(|a| matches!(a, Action::PatchStatus(_)))
    {
        if let Some(n) = st.candidates_scored {
            ctx.metrics
                .candidates_scored
                .get_or_create(&Metrics::search_labels(&ns, &name))
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }
    ctx.metrics
        .reconcile_duration
        .observe(started.elapsed().as_secs_f64());
    if let Ok(mut f) = ctx.failures.lock() {
        f.remove(&key(object.as_ref()));
    }
    Ok(match plan.requeue {
        Some(d) => ControllerAction::requeue(d),
        None => ControllerAction::await_change(),
    })
}

/// Reports a search this release cannot read (`Accepted=False` with the field's path, an
/// event; the finalizer let go on deletion) and waits for it to change.
async fn reconcile_unreadable(
    object: &SearchObject,
    ns: &str,
    why: &str,
    ctx: &Context,
) -> Result<ControllerAction, Error> {
    warn!(search = %key(object), %why, "the search cannot be read");
    ctx.metrics
        .failures
        .get_or_create(&Metrics::error_labels("unreadable"))
        .inc();
    let unreadable = planner::Unreadable {
        generation: object.metadata.generation,
        deleting: object.metadata.deletion_timestamp.is_some(),
        has_finalizer: object.finalizers().iter().any(|f| f == FINALIZER),
        status: object.status.as_ref(),
        why,
    };
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let plan = planner::plan_unreadable(unreadable, &now);
    execute(object, ns, &plan.actions, ctx).await?;
    Ok(ControllerAction::await_change())
}

/// On error: count it, and retry the object after an exponentially growing delay.
pub fn error_policy(search: Arc<SearchObject>, err: &Error, ctx: Arc<Context>) -> ControllerAction {
    if is_conflict(err) {
        ctx.metrics
            .failures
            .get_or_create(&Metrics::error_labels("conflict"))
            .inc();
        tracing::debug!(search = %key(search.as_ref()), "the search changed while it was reconciled; again");
        return ControllerAction::requeue(CONFLICT_RETRY);
    }
    ctx.metrics
        .failures
        .get_or_create(&Metrics::error_labels(err.kind()))
        .inc();
    let n = ctx
        .failures
        .lock()
        .map(|mut f| {
            let n = f.entry(key(search.as_ref())).or_insert(0);
            *n = n.saturating_add(1);
            *n
        })
        .unwrap_or(1);
    let delay = ctx.backoff.delay(n);
    warn!(search = %key(search.as_ref()), error = %err, attempt = n, ?delay, "reconcile failed; retrying");
    ControllerAction::requeue(delay)
}

/// Carries the actions out in order. When one fails, the status still says why (the planned
/// status, or the current one, with `Progressing=False` naming the action and the API server's
/// answer) and a Warning event is published; then the error goes to the retry.
async fn execute(
    search: &SearchObject,
    ns: &str,
    actions: &[Action],
    ctx: &Context,
) -> Result<(), Error> {
    // The search's resource version as this reconcile last wrote it: a status computed from a
    // stale cache is refused (409) instead of rolling a newer one back.
    let mut version = search.resource_version();
    for action in actions {
        if let Err(err) = execute_one(search, ns, action, ctx, &mut version).await {
            if is_conflict(&err) {
                return Err(err);
            }
            if search.metadata.deletion_timestamp.is_some() && namespace_terminating(&err) {
                return let_go_in_a_terminating_namespace(search, ns, ctx).await;
            }
            if !matches!(action, Action::PatchStatus(_) | Action::Event(_)) {
                report_failure(search, ns, actions, action, &err, ctx, &mut version).await;
            }
            return Err(err);
        }
    }
    Ok(())
}

/// The search changed since it was read (409): the watch brings the new version, and the
/// reconcile is redone from it.
pub fn is_conflict(err: &Error) -> bool {
    matches!(err, Error::Kube(kube::Error::Api(e)) if e.code == 409)
}

/// The API server refuses new objects in a namespace that is being deleted (403, cause
/// `NamespaceTerminating`).
fn namespace_terminating(err: &Error) -> bool {
    match err {
        Error::Kube(kube::Error::Api(e)) => {
            e.code == 403
                && (e.message.contains("because it is being terminated")
                    || e.details.as_ref().is_some_and(|d| {
                        d.causes.iter().any(|c| c.reason == "NamespaceTerminating")
                    }))
        }
        _ => false,
    }
}

/// The cleanup Job cannot be created while the namespace goes away: holding the finalizer would
/// hold the namespace forever. Let go, and say what remains (the event may be refused too, in
/// which case the log says it).
async fn let_go_in_a_terminating_namespace(
    search: &SearchObject,
    ns: &str,
    ctx: &Context,
) -> Result<(), Error> {
    let root = search
        .search
        .as_ref()
        .ok()
        .and_then(|s| nas_api::resolved::ResolvedSpec::from_search(s).ok())
        .map(|r| r.artifacts_root)
        .unwrap_or_else(|| "the search's artifact root".into());
    let note = format!(
        "the namespace is being deleted, so no cleanup Job can run: artifacts under {root} were not deleted"
    );
    warn!(search = %key(search), %note, "artifacts left behind");
    let event = Action::Event(crate::planner::EventSpec {
        warning: true,
        reason: Reason::CleanupSkipped,
        note,
    });
    let mut version = search.resource_version();
    let _ = execute_one(search, ns, &event, ctx, &mut version).await;
    execute_one(search, ns, &Action::RemoveFinalizer, ctx, &mut version).await
}

/// What an action does, for messages.
fn describe(action: &Action) -> String {
    match action {
        Action::AddFinalizer => "adding the finalizer".into(),
        Action::RemoveFinalizer => "removing the finalizer".into(),
        Action::ApplyConfigMap(cm) => format!("applying ConfigMap {}", cm.name_any()),
        Action::ApplyJob(job) => format!("creating Job {}", job.name_any()),
        Action::ApplyCleanupConfigMap { job, .. } => format!("applying ConfigMap {job}"),
        Action::DeleteJob(job) => format!("deleting Job {job}"),
        Action::SuspendJob { name, suspend } => {
            format!(
                "{} Job {name}",
                if *suspend { "suspending" } else { "resuming" }
            )
        }
        Action::Event(_) => "publishing an event".into(),
        Action::PatchStatus(_) => "patching the status".into(),
    }
}

async fn report_failure(
    search: &SearchObject,
    ns: &str,
    actions: &[Action],
    failed: &Action,
    err: &Error,
    ctx: &Context,
    version: &mut Option<String>,
) {
    let why = match err {
        Error::Kube(kube::Error::Api(e)) => format!("{} ({})", e.message, e.code),
        other => other.to_string(),
    };
    let note = format!("{} failed: {why}", describe(failed));
    let mut st = actions
        .iter()
        .rev()
        .find_map(|a| match a {
            Action::PatchStatus(st) => Some(st.as_ref().clone()),
            _ => None,
        })
        .or_else(|| search.status.clone())
        .unwrap_or_default();
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let generation = search.metadata.generation;
    crate::status::set_condition(
        &mut st,
        nas_api::crd::condition::PROGRESSING,
        false,
        &Reason::ActionFailed,
        &note,
        generation,
        &now,
    );
    let event = Action::Event(crate::planner::EventSpec {
        warning: true,
        reason: Reason::ActionFailed,
        note,
    });
    for a in [event, Action::PatchStatus(Box::new(st))] {
        if let Err(e) = execute_one(search, ns, &a, ctx, version).await {
            warn!(error = %e, "could not report a failed action");
        }
    }
}

async fn execute_one(
    search: &SearchObject,
    ns: &str,
    action: &Action,
    ctx: &Context,
    version: &mut Option<String>,
) -> Result<(), Error> {
    let name = search.name_any();
    // Read back leniently: the answer holds the spec, which may be unreadable.
    let searches: Api<SearchObject> = Api::namespaced(ctx.client.clone(), ns);
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), ns);
    let apply = PatchParams::apply(MANAGER).force();
    let reference = search.object_ref(&());
    match action {
        Action::AddFinalizer | Action::RemoveFinalizer => {
            let mut finalizers = search.finalizers().to_vec();
            finalizers.retain(|f| f != FINALIZER);
            if matches!(action, Action::AddFinalizer) {
                finalizers.push(FINALIZER.into());
            }
            // The resourceVersion makes this fail (and retry) if someone changed the list.
            let patch = json!({"metadata": {
                "finalizers": finalizers,
                "resourceVersion": version,
            }});
            let written = searches
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
            *version = written.resource_version();
        }
        Action::ApplyConfigMap(cm) => {
            let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), ns);
            api.patch(&cm.name_any(), &apply, &Patch::Apply(cm.as_ref()))
                .await?;
        }
        Action::ApplyJob(job) => {
            info!(job = %job.name_any(), "creating Job");
            jobs.patch(&job.name_any(), &apply, &Patch::Apply(job.as_ref()))
                .await?;
        }
        Action::ApplyCleanupConfigMap { job, resolved } => {
            let uid = jobs.get(job).await?.metadata.uid.unwrap_or_default();
            let cm = crate::jobs::cleanup_configmap(resolved, job, &uid);
            let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), ns);
            api.patch(job, &apply, &Patch::Apply(&cm)).await?;
        }
        Action::DeleteJob(job) => {
            info!(%job, "deleting Job of an old spec");
            match jobs.delete(job, &DeleteParams::background()).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
        Action::SuspendJob { name: job, suspend } => {
            let patch = json!({"spec": {"suspend": suspend}});
            jobs.patch(job, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
        }
        Action::Event(ev) => {
            let event = Event {
                type_: if ev.warning {
                    EventType::Warning
                } else {
                    EventType::Normal
                },
                reason: ev.reason.to_string(),
                note: Some(crate::termination::truncate(&ev.note, EVENT_NOTE_MAX)),
                action: "Reconcile".into(),
                secondary: None,
            };
            // An event that cannot be published must not stop the reconcile.
            if let Err(e) = ctx.recorder.publish(&event, &reference).await {
                warn!(error = %e, reason = %ev.reason, "could not publish event");
            }
        }
        Action::PatchStatus(st) => {
            // With the resource version, the apply is refused (409) when the status was
            // computed from an object that has changed since.
            let body = json!({
                "apiVersion": NASSearch::api_version(&()),
                "kind": NASSearch::kind(&()),
                "metadata": {"resourceVersion": version},
                "status": st,
            });
            let written = searches
                .patch_status(&name, &apply, &Patch::Apply(&body))
                .await?;
            *version = written.resource_version();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let b = Backoff {
            base: Duration::from_secs(5),
            max: Duration::from_secs(60),
        };
        assert_eq!(b.delay(1), Duration::from_secs(5));
        assert_eq!(b.delay(2), Duration::from_secs(10));
        assert_eq!(b.delay(4), Duration::from_secs(40));
        assert_eq!(b.delay(5), Duration::from_secs(60));
        assert_eq!(b.delay(1000), Duration::from_secs(60));
    }
}
