//! Deletion: preconditions, finalizers (deletionTimestamp until the last one is removed), and the
//! garbage collector's owner-reference cascade (Background, Foreground, Orphan).
use serde_json::{json, Value};

use super::{
    finalizers, meta_mut, meta_str, now, owner_uids, DeleteOptions, Deleted, EventType, Inner, Key,
    Store, TypeId,
};
use crate::apiserver::resources::Propagation;
use crate::apiserver::status::ApiError;

impl Store {
    /// DELETE of one object.
    pub fn delete(
        &self,
        ty: TypeId,
        ns: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Deleted, ApiError> {
        let mut g = self.lock();
        let (key, old) = self.locate(&g, ty, ns, name)?;
        let t = &self.types[ty];
        if let Some(uid) = &opts.precondition_uid {
            if Some(uid.as_str()) != meta_str(&old, "uid") {
                return Err(ApiError::conflict(
                    t,
                    name,
                    &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        meta_str(&old, "uid").unwrap_or_default()
                    ),
                ));
            }
        }
        if let Some(rv) = &opts.precondition_rv {
            if Some(rv.as_str()) != meta_str(&old, "resourceVersion") {
                return Err(ApiError::conflict(t, name, &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    meta_str(&old, "resourceVersion").unwrap_or_default()
                )));
            }
        }
        let policy = opts.propagation.unwrap_or(t.default_propagation);
        Ok(self.delete_locked(&mut g, ty, &key, policy))
    }

    pub(super) fn delete_locked(
        &self,
        g: &mut Inner,
        ty: TypeId,
        key: &Key,
        policy: Propagation,
    ) -> Deleted {
        let Some(old) = g.objects[ty].get(key).map(|s| s.obj.clone()) else {
            return Deleted::Now(Value::Null);
        };
        if !finalizers(&old).is_empty() {
            if old.pointer("/metadata/deletionTimestamp").is_some() {
                return Deleted::Pending(old);
            }
            let mut new = old.clone();
            let generation = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let m = meta_mut(&mut new);
            m.insert("deletionTimestamp".into(), json!(now()));
            m.insert("deletionGracePeriodSeconds".into(), json!(0));
            m.insert("generation".into(), json!(generation + 1));
            return Deleted::Pending(self.commit(g, ty, key, new));
        }
        if policy == Propagation::Foreground {
            let uid = meta_str(&old, "uid").unwrap_or_default().to_string();
            for (dty, dkey) in self.dependents(g, &key.0, &uid) {
                self.delete_locked(g, dty, &dkey, Propagation::Foreground);
            }
        }
        Deleted::Now(self.remove(g, ty, key, policy))
    }

    /// Objects in namespace `ns` that name `uid` among their owners.
    pub(super) fn dependents(&self, g: &Inner, ns: &str, uid: &str) -> Vec<(TypeId, Key)> {
        let mut out = Vec::new();
        for (ty, objs) in g.objects.iter().enumerate() {
            for (k, s) in objs {
                if k.0 == ns && owner_uids(&s.obj).iter().any(|u| u == uid) {
                    out.push((ty, k.clone()));
                }
            }
        }
        out
    }

    pub(super) fn uid_exists(g: &Inner, ns: &str, uid: &str) -> bool {
        g.objects
            .iter()
            .flat_map(|o| o.iter())
            .any(|((n, _), s)| n == ns && meta_str(&s.obj, "uid") == Some(uid))
    }

    /// Removes an object for good and runs the garbage collector over its dependents.
    pub(super) fn remove(
        &self,
        g: &mut Inner,
        ty: TypeId,
        key: &Key,
        policy: Propagation,
    ) -> Value {
        let Some(stored) = g.objects[ty].remove(key) else {
            return Value::Null;
        };
        let rv = Self::next_rv(g);
        let mut obj = stored.obj;
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
        self.record(g, ty, EventType::Deleted, obj.clone(), None);
        let uid = meta_str(&obj, "uid").unwrap_or_default().to_string();
        for (dty, dkey) in self.dependents(g, &key.0, &uid) {
            let Some(dep) = g.objects[dty].get(&dkey).map(|s| s.obj.clone()) else {
                continue;
            };
            let other_owner_alive = owner_uids(&dep)
                .iter()
                .any(|u| *u != uid && Self::uid_exists(g, &key.0, u));
            if policy == Propagation::Orphan || other_owner_alive {
                let mut new = dep.clone();
                if let Some(refs) = new
                    .pointer_mut("/metadata/ownerReferences")
                    .and_then(Value::as_array_mut)
                {
                    refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid.as_str()));
                }
                self.commit(g, dty, &dkey, new);
            } else {
                self.delete_locked(g, dty, &dkey, Propagation::Background);
            }
        }
        obj
    }
}
