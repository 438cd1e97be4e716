//! Searches the runner cannot be given: a spec that fails validation, or a stored object this
//! release cannot read at all. Both are reported on the search (`Accepted=False`, an event)
//! and wait for the spec to change.
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use nas_api::crd::{condition, NASSearchStatus, Phase};

use super::{Action, Plan};
use crate::reason::Reason;
use crate::status::set_condition;

/// A spec the runner cannot be given: `Accepted=False` naming why, phase Failed, one event per
/// message. No requeue: only a spec change can fix it.
pub(super) fn plan_invalid(
    old: &NASSearchStatus,
    generation: Option<i64>,
    msg: &str,
    now: &Time,
    p: &mut Plan,
) {
    let mut st = old.clone();
    st.observed_generation = generation;
    let already = old.condition(condition::ACCEPTED).is_some_and(|c| {
        c.status == "False" && c.observed_generation == generation && c.message == msg
    });
    set_condition(
        &mut st,
        condition::ACCEPTED,
        false,
        &Reason::InvalidSpec,
        msg,
        generation,
        now,
    );
    set_condition(
        &mut st,
        condition::PROGRESSING,
        false,
        &Reason::InvalidSpec,
        "the spec is invalid",
        generation,
        now,
    );
    st.phase = Phase::Failed;
    if !already {
        p.event(true, Reason::InvalidSpec, msg);
    }
    if st != *old {
        p.actions.push(Action::PatchStatus(Box::new(st)));
    }
}

/// What is known of a stored search this release cannot read (a value stored before the schema
/// bounded its field): its metadata, its status if readable, and why.
#[derive(Debug, Clone, Copy)]
pub struct Unreadable<'a> {
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// Whether it is being deleted.
    pub deleting: bool,
    /// Whether it holds [`FINALIZER`].
    pub has_finalizer: bool,
    /// Its status, where readable.
    pub status: Option<&'a NASSearchStatus>,
    /// The field's path and what was expected.
    pub why: &'a str,
}

/// Plans for a search that cannot be read: reported on it alone (`Accepted=False`, an event),
/// and let go when deleted, since its artifacts cannot be located.
pub fn plan_unreadable(search: Unreadable<'_>, now: &Time) -> Plan {
    let mut p = Plan::default();
    if search.deleting {
        if search.has_finalizer {
            p.event(
                true,
                Reason::CleanupSkipped,
                format!(
                    "the spec cannot be read ({}): artifacts were not deleted",
                    search.why
                ),
            );
            p.actions.push(Action::RemoveFinalizer);
        }
        return p;
    }
    let msg = format!("the spec cannot be read: {}", search.why);
    let old = search.status.cloned().unwrap_or_default();
    plan_invalid(&old, search.generation, &msg, now, &mut p);
    p
}
