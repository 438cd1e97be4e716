//! Optional leader election through a `coordination.k8s.io/v1` Lease, so that several replicas
//! can run with one active controller. The decision is a pure function ([`decide`]) of the
//! Lease's spec and the clock; the IO around it is small. Optimistic concurrency (the Lease's
//! resourceVersion) settles races: a conflicting write loses and tries again later.
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::PostParams;
use kube::{Api, Client};
use tracing::{info, warn};

/// Leader election settings.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// This replica's identity (its pod name).
    pub identity: String,
    /// How long a lease holds without renewal.
    pub duration: Duration,
    /// How often the holder renews (well under `duration`).
    pub renew_every: Duration,
}

/// What to do with the Lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// No Lease: create it, holding it.
    Create,
    /// We hold it: renew.
    Renew,
    /// Another holder let it expire (or released it): take it over.
    TakeOver,
    /// Another holder has it: wait.
    Wait,
}

/// Decides from the Lease's current spec (`None`: the Lease does not exist).
pub fn decide(spec: Option<&LeaseSpec>, identity: &str, now: Timestamp) -> Decision {
    let Some(spec) = spec else {
        return Decision::Create;
    };
    match spec.holder_identity.as_deref() {
        Some(h) if h == identity => Decision::Renew,
        None | Some("") => Decision::TakeOver,
        Some(_) => {
            let secs = i64::from(spec.lease_duration_seconds.unwrap_or(15));
            let last = spec
                .renew_time
                .as_ref()
                .or(spec.acquire_time.as_ref())
                .map(|t| t.0);
            match last {
                Some(t) if t + SignedDuration::from_secs(secs) > now => Decision::Wait,
                _ => Decision::TakeOver,
            }
        }
    }
}

fn held_spec(
    cfg: &LeaseConfig,
    now: Timestamp,
    acquired: Option<MicroTime>,
    transitions: i32,
) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(cfg.identity.clone()),
        lease_duration_seconds: Some(i32::try_from(cfg.duration.as_secs()).unwrap_or(15)),
        acquire_time: Some(acquired.unwrap_or(MicroTime(now))),
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(transitions),
        ..Default::default()
    }
}

/// One attempt to acquire or renew; `Ok(true)` when we hold the Lease afterwards.
pub async fn try_acquire(api: &Api<Lease>, cfg: &LeaseConfig) -> Result<bool, kube::Error> {
    let now = Timestamp::now();
    let current = api.get_opt(&cfg.name).await?;
    let decision = decide(
        current.as_ref().and_then(|l| l.spec.as_ref()),
        &cfg.identity,
        now,
    );
    let result = match (decision, current) {
        (Decision::Wait, _) => return Ok(false),
        (Decision::Create, _) | (_, None) => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(cfg.name.clone()),
                    ..Default::default()
                },
                spec: Some(held_spec(cfg, now, None, 0)),
            };
            api.create(&PostParams::default(), &lease).await.map(|_| ())
        }
        (d, Some(mut lease)) => {
            let old = lease.spec.take().unwrap_or_default();
            let transitions = old.lease_transitions.unwrap_or(0);
            lease.spec = Some(if d == Decision::Renew {
                held_spec(cfg, now, old.acquire_time, transitions)
            } else {
                held_spec(cfg, now, None, transitions + 1)
            });
            // `replace` sends the resourceVersion we read: a concurrent writer makes this 409.
            api.replace(&cfg.name, &PostParams::default(), &lease)
                .await
                .map(|_| ())
        }
    };
    match result {
        Ok(()) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Waits until this replica holds the Lease.
pub async fn acquire(client: Client, cfg: &LeaseConfig) {
    let api: Api<Lease> = Api::namespaced(client, &cfg.namespace);
    info!(lease = %cfg.name, identity = %cfg.identity, "waiting for the leader lease");
    loop {
        match try_acquire(&api, cfg).await {
            Ok(true) => {
                info!(lease = %cfg.name, "acquired the leader lease");
                return;
            }
            Ok(false) => {}
            Err(e) => warn!(error = %e, "leader election request failed"),
        }
        tokio::time::sleep(cfg.renew_every).await;
    }
}

/// Renews the Lease until it is lost (not renewed within its duration); then returns.
pub async fn hold(client: Client, cfg: &LeaseConfig) {
    let api: Api<Lease> = Api::namespaced(client, &cfg.namespace);
    let mut last = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(cfg.renew_every).await;
        match try_acquire(&api, cfg).await {
            Ok(true) => last = tokio::time::Instant::now(),
            Ok(false) => {
                warn!(lease = %cfg.name, "another replica holds the leader lease");
                return;
            }
            Err(e) => warn!(error = %e, "could not renew the leader lease"),
        }
        if last.elapsed() >= cfg.duration {
            warn!(lease = %cfg.name, "leader lease expired");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: &str, renewed: Timestamp) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(renewed)),
            ..Default::default()
        }
    }

    #[test]
    fn decisions() {
        let now: Timestamp = "2026-01-01T00:00:30Z".parse().unwrap();
        let fresh: Timestamp = "2026-01-01T00:00:20Z".parse().unwrap();
        let stale: Timestamp = "2026-01-01T00:00:10Z".parse().unwrap();
        assert_eq!(decide(None, "a", now), Decision::Create);
        assert_eq!(decide(Some(&spec("a", stale)), "a", now), Decision::Renew);
        assert_eq!(decide(Some(&spec("b", fresh)), "a", now), Decision::Wait);
        assert_eq!(
            decide(Some(&spec("b", stale)), "a", now),
            Decision::TakeOver
        );
        assert_eq!(decide(Some(&spec("", fresh)), "a", now), Decision::TakeOver);
    }
}
