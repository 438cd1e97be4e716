//! A `NASSearch` as the API server stores it: its metadata always, its typed form when this
//! operator can read it. The watch lists every search in one response; one object this release
//! cannot read (stored before the schema bounded a field, or by a newer release) would fail the
//! whole list and stall every other search, so reading it is deferred to the reconcile, which
//! reports it on that object alone.
use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::NamespaceResourceScope;
use kube::Resource;
use nas_api::crd::{NASSearch, NASSearchStatus};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// One stored `NASSearch`, read as far as it can be.
#[derive(Debug, Clone)]
pub struct SearchObject {
    /// The object's metadata (always readable: the API server writes it).
    pub metadata: ObjectMeta,
    /// The status, when it can be read.
    pub status: Option<NASSearchStatus>,
    /// The typed search, or why it cannot be read (the field's path and what was expected).
    pub search: Result<NASSearch, String>,
}

impl SearchObject {
    /// Reads a stored object; never fails once its metadata is readable.
    pub fn from_value(value: Value) -> Result<Self, serde_json::Error> {
        let metadata = ObjectMeta::deserialize(value.get("metadata").unwrap_or(&Value::Null))?;
        let status = value
            .get("status")
            .and_then(|s| NASSearchStatus::deserialize(s).ok());
        let search = serde_path_to_error::deserialize::<_, NASSearch>(&value).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path.is_empty() || path == "." {
                inner.to_string()
            } else {
                format!("{path}: {inner}")
            }
        });
        Ok(SearchObject {
            metadata,
            status,
            search,
        })
    }
}

impl From<NASSearch> for SearchObject {
    fn from(search: NASSearch) -> Self {
        SearchObject {
            metadata: search.metadata.clone(),
            status: search.status.clone(),
            search: Ok(search),
        }
    }
}

impl<'de> Deserialize<'de> for SearchObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        SearchObject::from_value(value).map_err(serde::de::Error::custom)
    }
}

impl Resource for SearchObject {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(dt: &()) -> Cow<'_, str> {
        NASSearch::kind(dt)
    }
    fn group(dt: &()) -> Cow<'_, str> {
        NASSearch::group(dt)
    }
    fn version(dt: &()) -> Cow<'_, str> {
        NASSearch::version(dt)
    }
    fn plural(dt: &()) -> Cow<'_, str> {
        NASSearch::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stored(candidates: Value) -> Value {
        json!({
            "apiVersion": "nas.example.dev/v1alpha1",
            "kind": "NASSearch",
            "metadata": {"name": "s", "namespace": "ns", "uid": "u", "generation": 2},
            "spec": {
                "runner": {"image": "r:1"},
                "dataset": {"source": "s3://d/c", "format": "cifar10"},
                "space": {"name": "nb201"},
                "sampling": {"candidates": candidates},
                "artifacts": {"bucket": "b", "credentials": {"secretRef": {"name": "c"}}}
            },
            "status": {"phase": "Running"}
        })
    }

    #[test]
    fn a_readable_object_is_typed() {
        let o = SearchObject::from_value(stored(json!(10))).unwrap();
        let s = o.search.expect("readable");
        assert_eq!(s.spec.sampling.candidates, 10);
        assert_eq!(o.metadata.generation, Some(2));
    }

    #[test]
    fn an_unreadable_object_keeps_its_metadata_and_names_the_field() {
        let o: SearchObject = serde_json::from_value(stored(json!(5_000_000_000u64))).unwrap();
        let why = o.search.expect_err("unreadable");
        assert!(why.contains("spec.sampling.candidates"), "{why}");
        assert!(why.contains("5000000000"), "{why}");
        assert_eq!(o.metadata.name.as_deref(), Some("s"));
        assert!(o.status.is_some());
    }

    #[test]
    fn a_list_with_one_unreadable_object_lists_every_object() {
        let list = json!([stored(json!(10)), stored(json!(-1)), stored(json!(12))]);
        let objects: Vec<SearchObject> = serde_json::from_value(list).unwrap();
        let readable: Vec<bool> = objects.iter().map(|o| o.search.is_ok()).collect();
        assert_eq!(readable, [true, false, true]);
    }
}
