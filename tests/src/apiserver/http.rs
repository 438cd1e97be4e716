//! The REST surface: routing of Kubernetes API paths to the store, list and watch responses.
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use serde_json::{json, Value};

use super::discovery;
use super::resources::Propagation;
use super::selector::{FieldSelector, LabelSelector};
use super::status::{success_status, ApiError};
use super::store::{DeleteOptions, Deleted, EventType, PatchKind, Store, TypeId};

pub type Body = BoxBody<Bytes, Infallible>;

/// Shared by every connection.
pub struct Shared {
    pub store: Arc<Store>,
    pub addr: String,
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// How often a watch that allows bookmarks gets one.
    pub bookmark_interval: Duration,
}

fn json_response(code: StatusCode, v: &Value) -> Response<Body> {
    let body = serde_json::to_vec(v).unwrap_or_default();
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)).boxed())
        .expect("static response parts are valid")
}

fn error_response(e: &ApiError) -> Response<Body> {
    let code = StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(code, &e.to_status())
}

/// What a path names.
struct Target {
    ty: TypeId,
    ns: Option<String>,
    name: Option<String>,
    status: bool,
}

/// Resolves a resource path, or None when it is not one.
fn target(store: &Store, segs: &[&str]) -> Result<Option<Target>, ApiError> {
    let (group, version, rest) = match segs {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Ok(None),
    };
    let (ns, plural, name, sub) = match rest {
        [plural] => (None, *plural, None, None),
        ["namespaces", ns, plural] => (Some(*ns), *plural, None, None),
        ["namespaces", ns, plural, name] => (Some(*ns), *plural, Some(*name), None),
        ["namespaces", ns, plural, name, sub] => (Some(*ns), *plural, Some(*name), Some(*sub)),
        _ => return Ok(None),
    };
    let Some(ty) = store.type_id(group, plural) else {
        return Ok(None);
    };
    if store.types[ty].version != version {
        return Ok(None);
    }
    let status = match sub {
        None => false,
        Some("status") if store.types[ty].status_subresource => true,
        Some(_) => return Ok(None),
    };
    Ok(Some(Target {
        ty,
        ns: ns.map(String::from),
        name: name.map(String::from),
        status,
    }))
}

fn query(req: &Request<Incoming>) -> HashMap<String, String> {
    req.uri()
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

/// Answers one request.
pub async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    Ok(match route(shared, req).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    })
}

async fn route(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let path = req.uri().path().to_string();
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let store = shared.store.clone();
    let types = &store.types;
    if req.method() == Method::GET {
        let doc = match segs.as_slice() {
            ["version"] => Some(discovery::version()),
            ["api"] => Some(discovery::core_versions(&shared.addr)),
            ["apis"] => Some(discovery::group_list(types)),
            ["api", v] => discovery::resource_list(types, "", v),
            ["apis", g] => discovery::group(types, g),
            ["apis", g, v] => discovery::resource_list(types, g, v),
            _ => None,
        };
        if let Some(d) = doc {
            return Ok(json_response(StatusCode::OK, &d));
        }
    }
    let Some(t) = target(&store, &segs)? else {
        return Err(ApiError::no_route(&path));
    };
    let q = query(&req);
    let rt = store.types[t.ty].clone();
    let method = req.method().clone();
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    let body = req
        .into_body()
        .collect()
        .await
        .map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?
        .to_bytes();
    let parse_body = || -> Result<Value, ApiError> {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("error decoding the request body: {e}")))
    };
    match (method, t.name.as_deref()) {
        (Method::GET, None) => {
            let label = LabelSelector::parse(q.get("labelSelector").map_or("", String::as_str))?;
            let field = FieldSelector::parse(q.get("fieldSelector").map_or("", String::as_str))?;
            if q.get("watch").is_some_and(|w| w == "true" || w == "1") {
                return watch(shared, t.ty, t.ns, label, field, &q);
            }
            let (items, rv) = store.list(t.ty, t.ns.as_deref());
            let items: Vec<Value> = items
                .into_iter()
                .filter(|o| label.matches(o) && field.matches(o))
                .collect();
            Ok(json_response(
                StatusCode::OK,
                &json!({
                    "kind": rt.list_kind(),
                    "apiVersion": rt.api_version(),
                    "metadata": {"resourceVersion": rv.to_string()},
                    "items": items,
                }),
            ))
        }
        (Method::GET, Some(name)) => Ok(json_response(
            StatusCode::OK,
            &store.get(t.ty, t.ns.as_deref().unwrap_or_default(), name)?,
        )),
        (Method::POST, None) => {
            let ns =
                t.ns.ok_or_else(|| ApiError::method_not_allowed("create needs a namespace"))?;
            let obj = store.create(t.ty, &ns, parse_body()?, Default::default())?;
            Ok(json_response(StatusCode::CREATED, &obj))
        }
        (Method::PUT, Some(name)) => {
            let obj = store.replace(
                t.ty,
                t.ns.as_deref().unwrap_or_default(),
                name,
                parse_body()?,
                t.status,
            )?;
            Ok(json_response(StatusCode::OK, &obj))
        }
        (Method::PATCH, Some(name)) => {
            let kind = match content_type.as_str() {
                "application/merge-patch+json" => PatchKind::Merge,
                "application/json-patch+json" => PatchKind::Json,
                "application/strategic-merge-patch+json" => PatchKind::Strategic,
                "application/apply-patch+yaml" | "application/apply-patch+yaml+cbor" => {
                    PatchKind::Apply
                }
                other => return Err(ApiError::unsupported_media_type(other)),
            };
            let ns = t.ns.as_deref().unwrap_or_default();
            let existed = store.get(t.ty, ns, name).is_ok();
            let manager = q.get("fieldManager").map(String::as_str);
            let obj = store.patch(t.ty, ns, name, kind, &body, t.status, manager)?;
            let code = if existed {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            Ok(json_response(code, &obj))
        }
        (Method::DELETE, name) => {
            let mut opts = DeleteOptions::default();
            let parsed: Value = if body.is_empty() {
                Value::Null
            } else {
                parse_body()?
            };
            let policy = parsed
                .get("propagationPolicy")
                .and_then(Value::as_str)
                .map(String::from)
                .or_else(|| q.get("propagationPolicy").cloned());
            if let Some(p) = policy {
                opts.propagation = Some(Propagation::parse(&p).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "propagationPolicy: Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
                    ))
                })?);
            } else if let Some(orphan) = parsed.get("orphanDependents").and_then(Value::as_bool) {
                opts.propagation = Some(if orphan {
                    Propagation::Orphan
                } else {
                    Propagation::Background
                });
            }
            opts.precondition_uid = parsed
                .pointer("/preconditions/uid")
                .and_then(Value::as_str)
                .map(String::from);
            opts.precondition_rv = parsed
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str)
                .map(String::from);
            let ns = t.ns.clone().unwrap_or_default();
            match name {
                Some(name) => match store.delete(t.ty, &ns, name, &opts)? {
                    Deleted::Pending(obj) => Ok(json_response(StatusCode::OK, &obj)),
                    // Pods answer with the deleted object; other types with a Status.
                    Deleted::Now(obj) if rt.plural == "pods" && rt.group.is_empty() => {
                        Ok(json_response(StatusCode::OK, &obj))
                    }
                    Deleted::Now(obj) => {
                        let uid = obj
                            .pointer("/metadata/uid")
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        Ok(json_response(
                            StatusCode::OK,
                            &success_status(&rt, name, uid),
                        ))
                    }
                },
                None => {
                    let label =
                        LabelSelector::parse(q.get("labelSelector").map_or("", String::as_str))?;
                    let field =
                        FieldSelector::parse(q.get("fieldSelector").map_or("", String::as_str))?;
                    let (items, _) = store.list(t.ty, t.ns.as_deref());
                    let mut deleted = Vec::new();
                    for o in items
                        .into_iter()
                        .filter(|o| label.matches(o) && field.matches(o))
                    {
                        let name = o
                            .pointer("/metadata/name")
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        let ons = o
                            .pointer("/metadata/namespace")
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        match store.delete(t.ty, ons, name, &opts) {
                            Ok(Deleted::Now(d) | Deleted::Pending(d)) => deleted.push(d),
                            Err(e) if e.code == 404 => {}
                            Err(e) => return Err(e),
                        }
                    }
                    Ok(json_response(
                        StatusCode::OK,
                        &json!({
                            "kind": rt.list_kind(),
                            "apiVersion": rt.api_version(),
                            "metadata": {"resourceVersion": store.resource_version().to_string()},
                            "items": deleted,
                        }),
                    ))
                }
            }
        }
        (m, _) => Err(ApiError::method_not_allowed(&format!("{m} {path}"))),
    }
}

fn line(v: &Value) -> Frame<Bytes> {
    let mut b = serde_json::to_vec(v).unwrap_or_default();
    b.push(b'\n');
    Frame::data(Bytes::from(b))
}

fn bookmark(kind: &str, api_version: &str, rv: u64, initial_end: bool) -> Value {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    json!({"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": api_version, "metadata": meta}})
}

/// A watch: JSON lines of `{type, object}`, with the resourceVersion semantics of the real
/// server (unset or "0": synthetic ADDED of the current state first; N: every change after N;
/// compacted N: one ERROR event carrying 410 Expired), `sendInitialEvents` with its closing
/// bookmark, periodic bookmarks when allowed, and `timeoutSeconds`.
fn watch(
    shared: Arc<Shared>,
    ty: TypeId,
    ns: Option<String>,
    label: LabelSelector,
    field: FieldSelector,
    q: &HashMap<String, String>,
) -> Result<Response<Body>, ApiError> {
    let store = shared.store.clone();
    let rt = store.types[ty].clone();
    let rv_param = q.get("resourceVersion").map(String::as_str).unwrap_or("");
    let send_initial = q.get("sendInitialEvents").is_some_and(|v| v == "true");
    let bookmarks = q.get("allowWatchBookmarks").is_some_and(|v| v == "true");
    if send_initial && q.get("resourceVersionMatch").map(String::as_str) != Some("NotOlderThan") {
        return Err(ApiError {
            code: 422,
            reason: "Invalid",
            message: "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan".into(),
            details: None,
        });
    }
    let start: Option<u64> = match rv_param {
        "" | "0" => None,
        s => Some(
            s.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {s}")))?,
        ),
    };
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(1800);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Frame<Bytes>>(256);
    let mut notify = store.subscribe();
    let mut shutdown = shared.shutdown.clone();
    let interval = shared.bookmark_interval;
    tokio::spawn(async move {
        let kind = rt.kind.clone();
        let av = rt.api_version();
        let in_scope = |o: &Value| {
            ns.as_deref()
                .is_none_or(|n| o.pointer("/metadata/namespace").and_then(Value::as_str) == Some(n))
                && label.matches(o)
                && field.matches(o)
        };
        let mut cursor = match start {
            Some(rv) if !send_initial => rv,
            _ => {
                let (items, rv) = store.list(ty, ns.as_deref());
                for o in items.into_iter().filter(|o| in_scope(o)) {
                    if tx
                        .send(line(&json!({"type": "ADDED", "object": o})))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                if send_initial
                    && tx
                        .send(line(&bookmark(&kind, &av, rv, true)))
                        .await
                        .is_err()
                {
                    return;
                }
                rv
            }
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        loop {
            match store.events_since(cursor) {
                Err(gone) => {
                    let _ = tx
                        .send(line(&json!({"type": "ERROR", "object": gone.to_status()})))
                        .await;
                    return;
                }
                Ok(events) => {
                    for e in events {
                        cursor = e.rv;
                        if e.ty != ty {
                            continue;
                        }
                        let now_in = in_scope(&e.object);
                        let was_in = e.old.as_ref().is_some_and(&in_scope);
                        let kind = match e.kind {
                            EventType::Added if now_in => "ADDED",
                            EventType::Deleted if now_in => "DELETED",
                            EventType::Modified if now_in && was_in => "MODIFIED",
                            EventType::Modified if now_in => "ADDED",
                            EventType::Modified if was_in => "DELETED",
                            _ => continue,
                        };
                        if tx
                            .send(line(&json!({"type": kind, "object": e.object})))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                }
            }
            tokio::select! {
                r = notify.changed() => if r.is_err() { return },
                _ = tick.tick() => {
                    if bookmarks && tx.send(line(&bookmark(&kind, &av, cursor, false))).await.is_err() {
                        return;
                    }
                }
                _ = tokio::time::sleep_until(deadline) => return,
                _ = shutdown.changed() => return,
                _ = tx.closed() => return,
            }
        }
    });
    let stream =
        futures::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|f| f.map(Ok::<_, Infallible>)));
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(BodyExt::boxed(StreamBody::new(stream)))
        .expect("static response parts are valid"))
}
