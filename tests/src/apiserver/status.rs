//! `Status` failure objects, shaped exactly as the Kubernetes API server answers them
//! (`k8s.io/apimachinery/pkg/api/errors`): `{"kind":"Status","apiVersion":"v1","metadata":{},
//! "status":"Failure","message":…,"reason":…,"details":{…},"code":…}`.
use serde_json::{json, Value};

use super::resources::ResourceType;

/// A request the double refuses, with the HTTP code and the `Status` body the real server sends.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    fn details(rt: &ResourceType, name: &str) -> Value {
        let mut d = json!({ "name": name, "kind": rt.plural });
        if !rt.group.is_empty() {
            d["group"] = json!(rt.group);
        }
        d
    }

    /// 404 `pods "x" not found` / `jobs.batch "x" not found`.
    pub fn not_found(rt: &ResourceType, name: &str) -> Self {
        ApiError {
            code: 404,
            reason: "NotFound",
            message: format!("{} \"{name}\" not found", rt.qualified()),
            details: Some(Self::details(rt, name)),
        }
    }

    /// 409 on create of an existing name.
    pub fn already_exists(rt: &ResourceType, name: &str) -> Self {
        ApiError {
            code: 409,
            reason: "AlreadyExists",
            message: format!("{} \"{name}\" already exists", rt.qualified()),
            details: Some(Self::details(rt, name)),
        }
    }

    /// 409 on a stale `resourceVersion` (optimistic concurrency) or a failed precondition.
    pub fn conflict(rt: &ResourceType, name: &str, why: &str) -> Self {
        ApiError {
            code: 409,
            reason: "Conflict",
            message: format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                rt.qualified()
            ),
            details: Some(Self::details(rt, name)),
        }
    }

    /// The message the real server gives for a stale resourceVersion.
    pub fn stale(rt: &ResourceType, name: &str) -> Self {
        Self::conflict(
            rt,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError {
            code: 400,
            reason: "BadRequest",
            message: message.into(),
            details: None,
        }
    }

    /// 422 Invalid, naming the field.
    pub fn invalid(rt: &ResourceType, name: &str, field: &str, detail: &str) -> Self {
        let mut details = Self::details(rt, name);
        details["causes"] =
            json!([{ "reason": "FieldValueInvalid", "message": detail, "field": field }]);
        ApiError {
            code: 422,
            reason: "Invalid",
            message: format!(
                "{} \"{name}\" is invalid: {field}: {detail}",
                rt.qualified()
            ),
            details: Some(details),
        }
    }

    /// 404 for a path that names no resource the double serves.
    pub fn no_route(path: &str) -> Self {
        ApiError {
            code: 404,
            reason: "NotFound",
            message: format!("the server could not find the requested resource (path {path})"),
            details: None,
        }
    }

    /// 405 for a verb the resource does not support.
    pub fn method_not_allowed(what: &str) -> Self {
        ApiError {
            code: 405,
            reason: "MethodNotAllowed",
            message: format!(
                "the server does not allow this method on the requested resource ({what})"
            ),
            details: None,
        }
    }

    /// 415 for a patch type the resource does not accept.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        ApiError {
            code: 415,
            reason: "UnsupportedMediaType",
            message: format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {content_type})"),
            details: None,
        }
    }

    /// 410 Expired: the requested resourceVersion was compacted away.
    pub fn gone(rv: u64, oldest: u64) -> Self {
        ApiError {
            code: 410,
            reason: "Expired",
            message: format!("too old resource version: {rv} ({oldest})"),
            details: None,
        }
    }

    /// The `Status` JSON body.
    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s
    }
}

/// `Status` Success, as answered to a delete that removed the object at once.
pub fn success_status(rt: &ResourceType, name: &str, uid: &str) -> Value {
    let mut details = ApiError::details(rt, name);
    details["uid"] = json!(uid);
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    })
}
