//! The API server double against a real `kube::Client`: CRUD, status subresource, patches,
//! server-side apply, watches, finalizers, owner cascade, and the exact `Status` bodies.
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::watcher;
use nas_e2e::apiserver::{ApiServer, ApiServerConfig};
use serde_json::{json, Value};

async fn server() -> (ApiServer, kube::Client) {
    let s = ApiServer::start(ApiServerConfig::default())
        .await
        .expect("start double");
    let c = s.client().expect("client");
    (s, c)
}

fn nassearch_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("nas.example.dev", "v1alpha1", "NASSearch"),
        "nassearches",
    )
}

fn cm(name: &str, labels: Value) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}}),
    )
    .unwrap()
}

fn api_error(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn crud_with_conflicts_and_selectors() {
    let (_s, client) = server().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "ns1");
    let a = cms
        .create(
            &PostParams::default(),
            &cm("a", json!({"app": "nas", "tier": "x"})),
        )
        .await
        .unwrap();
    cms.create(&PostParams::default(), &cm("b", json!({"app": "other"})))
        .await
        .unwrap();
    let meta = &a.metadata;
    assert!(meta.uid.as_deref().is_some_and(|u| u.len() == 36));
    assert!(meta.creation_timestamp.is_some());
    assert_eq!(meta.namespace.as_deref(), Some("ns1"));

    let dup = api_error(
        cms.create(&PostParams::default(), &cm("a", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!((dup.code, dup.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(dup.message, "configmaps \"a\" already exists");

    let listed = cms
        .list(&ListParams::default().labels("app=nas"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert!(listed.metadata.resource_version.is_some());
    assert_eq!(
        cms.list(&ListParams::default().labels("app in (nas,other),!tier"))
            .await
            .unwrap()
            .items
            .len(),
        1
    );

    // Replace with the current resourceVersion works; with the stale one it conflicts.
    let mut fresh = cms.get("a").await.unwrap();
    fresh.data = Some([("k".to_string(), "new".to_string())].into());
    let replaced = cms
        .replace("a", &PostParams::default(), &fresh)
        .await
        .unwrap();
    assert_ne!(
        replaced.metadata.resource_version,
        a.metadata.resource_version
    );
    let stale = api_error(
        cms.replace("a", &PostParams::default(), &fresh)
            .await
            .unwrap_err(),
    );
    assert_eq!((stale.code, stale.reason.as_str()), (409, "Conflict"));
    assert!(
        stale.message.contains("the object has been modified"),
        "{}",
        stale.message
    );

    cms.delete("a", &DeleteParams::default()).await.unwrap();
    let gone = api_error(cms.get("a").await.unwrap_err());
    assert_eq!((gone.code, gone.reason.as_str()), (404, "NotFound"));
    let gone = api_error(cms.delete("a", &DeleteParams::default()).await.unwrap_err());
    assert_eq!(gone.code, 404);
}

#[tokio::test]
async fn status_bodies_are_shaped_as_the_real_server_sends_them() {
    let (_s, client) = server().await;
    let req = http::Request::get("/apis/batch/v1/namespaces/ns/jobs/missing")
        .body(kube::client::Body::empty())
        .unwrap();
    let resp = client.send(req).await.unwrap();
    assert_eq!(resp.status(), 404);
    let body = resp.into_body().collect_bytes().await.unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        v,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "jobs.batch \"missing\" not found", "reason": "NotFound",
               "details": {"name": "missing", "group": "batch", "kind": "jobs"}, "code": 404})
    );
}

#[tokio::test]
async fn custom_resource_status_subresource_and_generation() {
    let (_s, client) = server().await;
    let ar = nassearch_resource();
    let api: Api<DynamicObject> = Api::namespaced_with(client, "team", &ar);
    let mut obj = DynamicObject::new("s1", &ar);
    obj.data = json!({"spec": {"space": "nb201"}, "status": {"phase": "ignored on create"}});
    let created = api.create(&PostParams::default(), &obj).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert!(
        created.data.get("status").is_none(),
        "status is dropped on create"
    );

    let st = json!({"status": {"phase": "Running"}, "spec": {"space": "ignored via status"}});
    let after = api
        .patch_status("s1", &PatchParams::default(), &Patch::Merge(&st))
        .await
        .unwrap();
    assert_eq!(after.data["status"]["phase"], "Running");
    assert_eq!(after.data["spec"]["space"], "nb201");
    assert_eq!(
        after.metadata.generation,
        Some(1),
        "status writes keep generation"
    );

    let spec = json!({"spec": {"space": "darts"}, "status": {"phase": "ignored on main"}});
    let after = api
        .patch("s1", &PatchParams::default(), &Patch::Merge(&spec))
        .await
        .unwrap();
    assert_eq!(after.metadata.generation, Some(2));
    assert_eq!(after.data["status"]["phase"], "Running");

    // Label-only changes keep generation.
    let labels = json!({"metadata": {"labels": {"x": "y"}}});
    let after = api
        .patch("s1", &PatchParams::default(), &Patch::Merge(&labels))
        .await
        .unwrap();
    assert_eq!(after.metadata.generation, Some(2));

    // JSON patch, including a failing test op.
    let jp: json_patch::Patch =
        serde_json::from_value(json!([{"op": "replace", "path": "/spec/space", "value": "nb101"}]))
            .unwrap();
    let after = api
        .patch("s1", &PatchParams::default(), &Patch::<()>::Json(jp))
        .await
        .unwrap();
    assert_eq!(after.data["spec"]["space"], "nb101");
    let bad: json_patch::Patch =
        serde_json::from_value(json!([{"op": "test", "path": "/spec/space", "value": "no"}]))
            .unwrap();
    assert_eq!(
        api_error(
            api.patch("s1", &PatchParams::default(), &Patch::<()>::Json(bad))
                .await
                .unwrap_err()
        )
        .code,
        422
    );

    // Strategic merge patch is refused for custom resources, as the real server does.
    let smp = api
        .patch(
            "s1",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {}})),
        )
        .await
        .unwrap_err();
    assert_eq!(api_error(smp).code, 415);
}

#[tokio::test]
async fn server_side_apply_creates_merges_and_drops_omitted_fields() {
    let (_s, client) = server().await;
    let ar = nassearch_resource();
    let api: Api<DynamicObject> = Api::namespaced_with(client, "team", &ar);
    let pp = PatchParams::apply("nas-operator").force();
    let v1 = json!({"apiVersion": "nas.example.dev/v1alpha1", "kind": "NASSearch", "metadata": {"name": "s"},
                    "spec": {"a": 1, "b": 2}});
    let created = api.patch("s", &pp, &Patch::Apply(&v1)).await.unwrap();
    assert_eq!(created.data["spec"], json!({"a": 1, "b": 2}));
    // Another writer adds a field the operator does not manage.
    api.patch(
        "s",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"user": true}})),
    )
    .await
    .unwrap();
    let v2 = json!({"apiVersion": "nas.example.dev/v1alpha1", "kind": "NASSearch", "metadata": {"name": "s"},
                    "spec": {"a": 3}});
    let applied = api.patch("s", &pp, &Patch::Apply(&v2)).await.unwrap();
    assert_eq!(applied.data["spec"], json!({"a": 3, "user": true}));
    assert_eq!(applied.metadata.generation, Some(3));

    // Status via apply on the subresource.
    let st = json!({"apiVersion": "nas.example.dev/v1alpha1", "kind": "NASSearch", "metadata": {"name": "s"},
                    "status": {"phase": "Scoring"}});
    let after = api
        .patch_status("s", &pp, &Patch::Apply(&st))
        .await
        .unwrap();
    assert_eq!(after.data["status"]["phase"], "Scoring");
    assert_eq!(after.data["spec"], json!({"a": 3, "user": true}));

    // fieldManager is required.
    let no_mgr = PatchParams {
        field_manager: None,
        ..PatchParams::default()
    };
    let err = api
        .patch("s", &no_mgr, &Patch::Apply(&v2))
        .await
        .unwrap_err();
    assert_eq!(api_error(err).code, 400);
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let (_s, client) = server().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "ns");
    let mut c = cm("f", json!({}));
    c.metadata.finalizers = Some(vec!["nas.example.dev/cleanup".into()]);
    cms.create(&PostParams::default(), &c).await.unwrap();
    let pending = cms.delete("f", &DeleteParams::default()).await.unwrap();
    let kept = pending
        .left()
        .expect("object returned while finalizers remain");
    assert!(kept.metadata.deletion_timestamp.is_some());
    assert!(cms
        .get("f")
        .await
        .unwrap()
        .metadata
        .deletion_timestamp
        .is_some());
    // New finalizers cannot be added while deleting.
    let add = json!({"metadata": {"finalizers": ["nas.example.dev/cleanup", "other"]}});
    assert_eq!(
        api_error(
            cms.patch("f", &PatchParams::default(), &Patch::Merge(&add))
                .await
                .unwrap_err()
        )
        .code,
        422
    );
    let clear = json!({"metadata": {"finalizers": null}});
    cms.patch("f", &PatchParams::default(), &Patch::Merge(&clear))
        .await
        .unwrap();
    assert_eq!(api_error(cms.get("f").await.unwrap_err()).code, 404);
}

#[tokio::test]
async fn owner_references_cascade_recursively_and_respect_policy() {
    let (s, client) = server().await;
    let ar = nassearch_resource();
    let searches: Api<DynamicObject> = Api::namespaced_with(client.clone(), "ns", &ar);
    let jobs: Api<Job> = Api::namespaced(client.clone(), "ns");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "ns");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "ns");
    let owner_ref = |kind: &str, av: &str, name: &str, uid: &str| json!([{"apiVersion": av, "kind": kind, "name": name, "uid": uid, "controller": true}]);
    let search = searches
        .create(&PostParams::default(), &DynamicObject::new("s", &ar))
        .await
        .unwrap();
    let suid = search.metadata.uid.clone().unwrap();
    let job: Job = serde_json::from_value(json!({"metadata": {"name": "j", "ownerReferences": owner_ref("NASSearch", "nas.example.dev/v1alpha1", "s", &suid)},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}], "restartPolicy": "Never"}}}})).unwrap();
    let job = jobs.create(&PostParams::default(), &job).await.unwrap();
    let juid = job.metadata.uid.clone().unwrap();
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p", "ownerReferences": owner_ref("Job", "batch/v1", "j", &juid)},
        "spec": {"containers": [{"name": "c", "image": "i"}]}})).unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    // A ConfigMap owned by the search and by another live owner survives, minus the reference.
    let other = cms
        .create(&PostParams::default(), &cm("other-owner", json!({})))
        .await
        .unwrap();
    let mut shared = cm("shared", json!({}));
    shared.metadata.owner_references = Some(serde_json::from_value(json!([
        {"apiVersion": "nas.example.dev/v1alpha1", "kind": "NASSearch", "name": "s", "uid": suid},
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "other-owner", "uid": other.metadata.uid.clone().unwrap()}
    ])).unwrap());
    cms.create(&PostParams::default(), &shared).await.unwrap();

    searches
        .delete("s", &DeleteParams::background())
        .await
        .unwrap();
    assert!(
        s.object("batch", "jobs", "ns", "j").is_none(),
        "job cascaded"
    );
    assert!(
        s.object("", "pods", "ns", "p").is_none(),
        "pod cascaded through the job"
    );
    let kept = cms.get("shared").await.unwrap();
    assert_eq!(kept.metadata.owner_references.unwrap().len(), 1);

    // Jobs orphan their pods by default (batch/v1 default policy), like the real server.
    let job: Job = serde_json::from_value(json!({"metadata": {"name": "j2"},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}], "restartPolicy": "Never"}}}})).unwrap();
    let j2 = jobs.create(&PostParams::default(), &job).await.unwrap();
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p2", "ownerReferences": owner_ref("Job", "batch/v1", "j2", j2.metadata.uid.as_deref().unwrap())},
        "spec": {"containers": [{"name": "c", "image": "i"}]}})).unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    jobs.delete("j2", &DeleteParams::default()).await.unwrap();
    let orphan = pods.get("p2").await.unwrap();
    assert!(orphan
        .metadata
        .owner_references
        .unwrap_or_default()
        .is_empty());

    // A dependent created after its only owner was deleted (a controller acting on a stale
    // cache) is collected, as the real garbage collector does.
    let late: Job = serde_json::from_value(json!({"metadata": {"name": "late", "ownerReferences": owner_ref("NASSearch", "nas.example.dev/v1alpha1", "s", &suid)},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}], "restartPolicy": "Never"}}}})).unwrap();
    jobs.create(&PostParams::default(), &late).await.unwrap();
    assert!(
        s.object("batch", "jobs", "ns", "late").is_none(),
        "a Job whose owner is gone was kept"
    );
}

#[tokio::test]
async fn watcher_sees_adds_modifies_and_deletes() {
    for streaming in [false, true] {
        let (_s, client) = server().await;
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "w");
        cms.create(&PostParams::default(), &cm("before", json!({"app": "nas"})))
            .await
            .unwrap();
        let mut cfg = watcher::Config::default().labels("app=nas");
        if streaming {
            cfg = cfg.streaming_lists();
        }
        let mut stream = watcher(cms.clone(), cfg).boxed();
        let mut seen: Vec<String> = Vec::new();
        let mut next = async || -> String {
            let ev = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
                .await
                .expect("event in time");
            match ev.unwrap().unwrap() {
                watcher::Event::Init => "init".into(),
                watcher::Event::InitApply(o) => format!("init-apply {}", o.metadata.name.unwrap()),
                watcher::Event::InitDone => "init-done".into(),
                watcher::Event::Apply(o) => format!(
                    "apply {} {}",
                    o.metadata.name.unwrap(),
                    o.data.unwrap()["k"]
                ),
                watcher::Event::Delete(o) => format!("delete {}", o.metadata.name.unwrap()),
            }
        };
        for _ in 0..3 {
            seen.push(next().await);
        }
        cms.create(&PostParams::default(), &cm("new", json!({"app": "nas"})))
            .await
            .unwrap();
        cms.create(
            &PostParams::default(),
            &cm("unrelated", json!({"app": "x"})),
        )
        .await
        .unwrap();
        cms.patch(
            "new",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"k": "v2"}})),
        )
        .await
        .unwrap();
        cms.delete("new", &DeleteParams::default()).await.unwrap();
        for _ in 0..3 {
            seen.push(next().await);
        }
        assert_eq!(
            seen,
            [
                "init",
                "init-apply before",
                "init-done",
                "apply new v",
                "apply new v2",
                "delete new"
            ],
            "streaming={streaming}"
        );
    }
}

#[tokio::test]
async fn watch_from_a_compacted_version_gets_410_and_label_transitions_are_events() {
    let (s, client) = server().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "w");
    let c = cms
        .create(&PostParams::default(), &cm("a", json!({"app": "nas"})))
        .await
        .unwrap();
    let rv = c.metadata.resource_version.clone().unwrap();
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "2"}})),
    )
    .await
    .unwrap();
    s.compact();
    let mut stream = cms
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    match stream.try_next().await.unwrap().unwrap() {
        WatchEvent::Error(e) => assert_eq!((e.code, e.reason.as_str()), (410, "Expired")),
        other => panic!("expected 410, got {other:?}"),
    }

    // A label change moving an object out of the selector reads as DELETED, and back in as ADDED.
    let now = s.store().resource_version().to_string();
    let mut stream = cms
        .watch(&WatchParams::default().labels("app=nas"), &now)
        .await
        .unwrap()
        .boxed();
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "x"}}})),
    )
    .await
    .unwrap();
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "nas"}}})),
    )
    .await
    .unwrap();
    let first = stream.try_next().await.unwrap().unwrap();
    assert!(matches!(first, WatchEvent::Deleted(_)), "{first:?}");
    let second = stream.try_next().await.unwrap().unwrap();
    assert!(matches!(second, WatchEvent::Added(_)), "{second:?}");
}

#[tokio::test]
async fn discovery_and_version_work_for_kube() {
    let (_s, client) = server().await;
    let v = client.apiserver_version().await.unwrap();
    assert_eq!(v.major, "1");
    let d = kube::discovery::Discovery::new(client).run().await.unwrap();
    let (ar, caps) = d
        .groups()
        .flat_map(|g| g.recommended_resources())
        .find(|(ar, _)| ar.plural == "nassearches")
        .expect("NASSearch discovered");
    assert_eq!(ar.group, "nas.example.dev");
    assert!(caps
        .subresources
        .iter()
        .any(|(sr, _)| sr.plural == "status"));
    assert!(d.groups().any(|g| g.name() == "batch"));
}
