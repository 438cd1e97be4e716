//! The reconcile shell against kube's mocked-service pattern (tower-test): the requests a
//! reconcile makes, in order, and per-object backoff on API errors.
mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use http::{Method, Request, Response};
use kube::client::Body;
use kube::runtime::events::Reporter;
use kube::Client;
use nas_api::crd::NASSearch;
use nas_api::resolved::ResolvedSpec;
use nas_operator::metrics::Metrics;
use nas_operator::object::SearchObject;
use nas_operator::reconcile::{error_policy, reconcile, Backoff, Context, CONFLICT_RETRY};
use serde_json::{json, Value};

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

#[derive(Debug)]
struct Seen {
    method: Method,
    path: String,
    query: String,
    body: Value,
}

/// Answers `n` requests: lists are empty, `status` writes return the search, other writes echo
/// their body; `fail_first` answers the first request with a 500 instead.
async fn serve(handle: Handle, n: usize, search: NASSearch, fail_first: bool) -> Vec<Seen> {
    let fail = fail_first.then_some((0, 500, "boom"));
    serve_failing(handle, n, search, fail).await
}

/// As [`serve_failing`], for a search given as stored JSON (readable or not).
async fn serve_failing(
    handle: Handle,
    n: usize,
    search: NASSearch,
    fail: Option<(usize, u16, &str)>,
) -> Vec<Seen> {
    serve_stored(handle, n, serde_json::to_value(&search).unwrap(), fail).await
}

/// As [`serve`], answering request `i` of `fail = (i, code, message)` with that error.
async fn serve_stored(
    mut handle: Handle,
    n: usize,
    search: Value,
    fail: Option<(usize, u16, &str)>,
) -> Vec<Seen> {
    let mut seen = Vec::new();
    for i in 0..n {
        let Some((req, send)) = handle.next_request().await else {
            break;
        };
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or_default().to_string();
        let bytes = req.into_body().collect_bytes().await.unwrap();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let (code, reply) = if let Some((_, code, message)) = fail.filter(|f| f.0 == i) {
            (
                code,
                json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "reason": "Invalid", "code": code}),
            )
        } else if method == Method::GET {
            (
                200,
                json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"}, "items": []}),
            )
        } else if path.ends_with("/status") {
            (200, search.clone())
        } else {
            (200, body.clone())
        };
        seen.push(Seen {
            method,
            path,
            query,
            body,
        });
        let resp = Response::builder()
            .status(code)
            .body(Body::from(serde_json::to_vec(&reply).unwrap()))
            .unwrap();
        send.send_response(resp);
    }
    seen
}

fn context(client: Client) -> Arc<Context> {
    let reporter = Reporter {
        controller: "nas-operator".into(),
        instance: Some("test".into()),
    };
    let backoff = Backoff {
        base: Duration::from_secs(5),
        max: Duration::from_secs(60),
    };
    Arc::new(Context::new(
        client,
        reporter,
        Arc::new(Metrics::default()),
        backoff,
    ))
}

#[tokio::test]
async fn fresh_search_lists_applies_publishes_and_patches_status() {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(svc, "team");
    let s = search();
    let server = tokio::spawn(serve(handle, 5, s.clone(), false));
    let ctx = context(client);
    let action = reconcile(Arc::new(s.into()), ctx.clone())
        .await
        .expect("reconcile succeeds");
    assert_eq!(
        action,
        kube::runtime::controller::Action::requeue(Duration::from_secs(300))
    );
    let seen = server.await.unwrap();
    let calls: Vec<(String, String)> = seen
        .iter()
        .map(|s| (s.method.to_string(), s.path.clone()))
        .collect();
    let key = nas_operator::jobs::name_key(&ResolvedSpec::from_search(&search()).unwrap());
    let h8 = key.as_str();
    assert_eq!(
        calls,
        [
            ("GET".into(), "/apis/batch/v1/namespaces/team/jobs".into()),
            (
                "PATCH".into(),
                format!("/api/v1/namespaces/team/configmaps/s1-spec-{h8}")
            ),
            (
                "PATCH".into(),
                format!("/apis/batch/v1/namespaces/team/jobs/s1-stage-data-{h8}")
            ),
            (
                "POST".into(),
                "/apis/events.k8s.io/v1/namespaces/team/events".into()
            ),
            (
                "PATCH".into(),
                "/apis/nas.example.dev/v1alpha1/namespaces/team/nassearches/s1/status".into()
            ),
        ]
    );
    assert!(
        seen[0]
            .query
            .contains("labelSelector=nas.example.dev%2Fsearch%3Ds1"),
        "{}",
        seen[0].query
    );
    // Server-side apply with our field manager.
    for s in &seen[1..3] {
        assert!(
            s.query.contains("fieldManager=nas-operator") && s.query.contains("force=true"),
            "{}",
            s.query
        );
    }
    assert_eq!(seen[2].body["kind"], "Job");
    assert_eq!(
        seen[2].body["spec"]["template"]["spec"]["containers"][0]["command"][1],
        "stage-data"
    );
    assert_eq!(seen[3].body["reason"], "StageStarted");
    let status = &seen[4].body["status"];
    assert_eq!(status["phase"], "Running");
    assert_eq!(status["stage"], "stage-data");
    let accepted = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Accepted")
        .unwrap();
    assert_eq!(accepted["status"], "True");
    assert_eq!(ctx.metrics.reconciles.get(), 1);
}

#[tokio::test]
async fn api_errors_back_off_exponentially_per_object() {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(svc, "team");
    let s = Arc::new(SearchObject::from(search()));
    let server = tokio::spawn(serve(handle, 1, search(), true));
    let ctx = context(client);
    let err = reconcile(s.clone(), ctx.clone()).await.unwrap_err();
    assert!(err.to_string().contains("boom"), "{err}");
    server.await.unwrap();
    let a1 = error_policy(s.clone(), &err, ctx.clone());
    let a2 = error_policy(s.clone(), &err, ctx.clone());
    assert_eq!(
        a1,
        kube::runtime::controller::Action::requeue(Duration::from_secs(5))
    );
    assert_eq!(
        a2,
        kube::runtime::controller::Action::requeue(Duration::from_secs(10))
    );
    assert!(ctx
        .metrics
        .render()
        .contains("nas_operator_reconcile_failures_total{error=\"api\"} 2"));
}

#[tokio::test]
async fn a_refused_action_still_leaves_the_reason_in_the_status_and_an_event() {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(svc, "team");
    let s = search();
    // List, ConfigMap, then the Job is refused; the event and the status patch follow.
    let refusal = "Job.batch \"s1-stage-data\" is invalid: spec.template.spec.tolerations[0]";
    let server = tokio::spawn(serve_failing(handle, 5, s.clone(), Some((2, 422, refusal))));
    let err = reconcile(Arc::new(s.into()), context(client))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("is invalid"), "{err}");
    let seen = server.await.unwrap();
    assert_eq!(seen.len(), 5, "{seen:#?}");
    assert_eq!(seen[3].body["reason"], "ActionFailed");
    assert_eq!(seen[3].body["type"], "Warning");
    assert!(seen[4].path.ends_with("/status"));
    let progressing = seen[4].body["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Progressing")
        .unwrap()
        .clone();
    assert_eq!(progressing["status"], "False");
    assert_eq!(progressing["reason"], "ActionFailed");
    let msg = progressing["message"].as_str().unwrap();
    assert!(
        msg.starts_with("creating Job s1-stage-data-")
            && msg.contains("tolerations[0]")
            && msg.contains("(422)"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_status_computed_from_a_stale_object_is_refused_and_redone_soon() {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(svc, "team");
    // List, ConfigMap, Job, event; then the status apply meets a newer object (409).
    let stale = "Operation cannot be fulfilled: the object has been modified";
    let server = tokio::spawn(serve_failing(handle, 5, search(), Some((4, 409, stale))));
    let ctx = context(client);
    let s = Arc::new(SearchObject::from(search()));
    let err = reconcile(s.clone(), ctx.clone()).await.unwrap_err();
    let seen = server.await.unwrap();
    assert!(seen[4].path.ends_with("/status"));
    assert_eq!(
        seen[4].body["metadata"]["resourceVersion"], "7",
        "the status apply names the version it was computed from"
    );
    // No failure report is written over the newer object, and no backoff builds up.
    assert_eq!(seen.len(), 5, "{seen:#?}");
    for _ in 0..3 {
        assert_eq!(
            error_policy(s.clone(), &err, ctx.clone()),
            kube::runtime::controller::Action::requeue(CONFLICT_RETRY)
        );
    }
    assert!(ctx
        .metrics
        .render()
        .contains("nas_operator_reconcile_failures_total{error=\"conflict\"} 3"));
}

#[tokio::test]
async fn an_unreadable_search_is_reported_on_itself_and_starts_nothing() {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(svc, "team");
    let mut stored = serde_json::to_value(search()).unwrap();
    // Stored before the schema bounded the field: no u32.
    stored["spec"]["sampling"]["candidates"] = json!(5_000_000_000u64);
    let object = SearchObject::from_value(stored.clone()).unwrap();
    assert!(object.search.is_err());
    let server = tokio::spawn(serve_stored(handle, 2, stored, None));
    let action = reconcile(Arc::new(object), context(client))
        .await
        .expect("reported, not retried");
    assert_eq!(action, kube::runtime::controller::Action::await_change());
    let seen = server.await.unwrap();
    let calls: Vec<(String, String)> = seen
        .iter()
        .map(|s| (s.method.to_string(), s.path.clone()))
        .collect();
    assert_eq!(
        calls,
        [
            (
                "POST".into(),
                "/apis/events.k8s.io/v1/namespaces/team/events".into()
            ),
            (
                "PATCH".into(),
                "/apis/nas.example.dev/v1alpha1/namespaces/team/nassearches/s1/status".into()
            ),
        ]
    );
    assert_eq!(seen[0].body["reason"], "InvalidSpec");
    let status = &seen[1].body["status"];
    assert_eq!(status["phase"], "Failed");
    let accepted = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Accepted")
        .unwrap();
    assert_eq!(accepted["status"], "False");
    let msg = accepted["message"].as_str().unwrap();
    assert!(
        msg.contains("spec.sampling.candidates") && msg.contains("5000000000"),
        "{msg}"
    );
}
