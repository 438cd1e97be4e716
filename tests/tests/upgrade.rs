//! An operator upgrade meets objects the previous release stored: a search stored before the
//! schema bounded its integers (`candidates: 5000000000`, which the API server accepted under
//! `format: uint32`) is reported on itself, and every other search in the watch still runs.
//! This binary has a control plane of its own: it swaps the cluster's CRD.
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::{CustomResourceExt, Resource};
use nas_api::crd::NASSearch;
use nas_e2e::cluster::{Cluster, RunnerSetup};
use nas_e2e::scenario::*;
use serde_json::{json, Value};

/// Installs `crd` and waits until the API server says it is established (its handlers take
/// the new schema a moment later: callers poll for the behaviour they need).
async fn install_crd(client: &kube::Client, crd: &CustomResourceDefinition) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = crd.metadata.name.clone().unwrap();
    api.patch(
        &name,
        &PatchParams::apply("e2e-upgrade").force(),
        &Patch::Apply(crd),
    )
    .await
    .expect("CRD applied");
    for _ in 0..100 {
        let got = api.get(&name).await.expect("CRD read");
        if got
            .status
            .and_then(|s| s.conditions)
            .into_iter()
            .flatten()
            .any(|c| c.type_ == "Established" && c.status == "True")
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the CRD {name} was not established");
}

/// Creates `object`, retrying while the API server still validates with the previous schema;
/// returns the last answer.
async fn create_until(
    api: &Api<DynamicObject>,
    object: &DynamicObject,
    done: impl Fn(&Result<DynamicObject, kube::Error>) -> bool,
) -> Result<DynamicObject, kube::Error> {
    let mut answer = api.create(&PostParams::default(), object).await;
    for _ in 0..100 {
        if done(&answer) {
            break;
        }
        if answer.is_ok() {
            let name = object.metadata.name.as_deref().unwrap_or_default();
            let _ = api.delete(name, &Default::default()).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        answer = api.create(&PostParams::default(), object).await;
    }
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_stored_before_the_schema_bounded_its_integers_stalls_no_other_search() {
    let mut cluster = Cluster::start(&["upgrade"], RunnerSetup::default()).await;
    let client = cluster.client.clone();
    // The previous release's CRD: integers typed by `format` alone, which the API server ignores.
    install_crd(&client, &NASSearch::crd()).await;
    let resource = ApiResource::erase::<NASSearch>(&());
    let dynamic: Api<DynamicObject> = Api::namespaced_with(client.clone(), "upgrade", &resource);
    let mut stored: Value =
        serde_yaml::from_str(&search_yaml(&cluster, "upgrade", "huge", "")).unwrap();
    stored["spec"]["sampling"]["candidates"] = json!(5_000_000_000u64);
    let object: DynamicObject = serde_json::from_value(stored).unwrap();
    create_until(&dynamic, &object, Result::is_ok)
        .await
        .expect("the previous CRD stores the value");
    // The upgrade: this release's CRD, then an operator that starts by listing every search.
    install_crd(&client, &nas_api::schema::definition()).await;
    let again: DynamicObject = serde_json::from_value(json!({
        "apiVersion": NASSearch::api_version(&()),
        "kind": "NASSearch",
        "metadata": {"name": "huge-again", "namespace": "upgrade"},
        "spec": object.data["spec"],
    }))
    .unwrap();
    let refused = create_until(&dynamic, &again, Result::is_err).await;
    assert!(
        matches!(&refused, Err(kube::Error::Api(e)) if e.code == 422 && e.message.contains("spec.sampling.candidates")),
        "this release's CRD refuses the value: {refused:?}"
    );
    cluster.kill_operator();
    cluster.start_operator();

    cluster
        .apply(&search_yaml(&cluster, "upgrade", "fine", ""))
        .await;
    let fine = cluster.wait_ended("upgrade", "fine", SEARCH_TIMEOUT).await;
    assert_succeeded(&cluster, &fine);

    // The unreadable search is reported on itself: Accepted=False naming the field, an event.
    let mut message = String::new();
    for _ in 0..300 {
        let huge = dynamic
            .get("huge")
            .await
            .expect("the search is still there");
        let accepted = huge.data["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "Accepted")
            .cloned();
        if let Some(c) = accepted.filter(|c| c["status"] == "False") {
            message = c["message"].as_str().unwrap_or_default().to_string();
            assert_eq!(huge.data["status"]["phase"], "Failed");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        message.contains("spec.sampling.candidates") && message.contains("5000000000"),
        "Accepted=False naming the field, got {message:?}\n{}",
        cluster.diagnostics("upgrade")
    );
    let events = cluster.kubectl(&[
        "get",
        "events",
        "-n",
        "upgrade",
        "--field-selector",
        "involvedObject.name=huge,reason=InvalidSpec",
        "-o",
        "name",
    ]);
    assert!(
        !events.stdout.trim().is_empty(),
        "no InvalidSpec event for the unreadable search\n{}",
        cluster.diagnostics("upgrade")
    );
    // It never reached the runner.
    assert!(
        cluster
            .runs("upgrade")
            .iter()
            .all(|r| r.job.as_deref().is_none_or(|j| !j.starts_with("huge-"))),
        "the unreadable search ran pods"
    );
    // It can still be deleted.
    dynamic
        .delete("huge", &Default::default())
        .await
        .expect("the unreadable search is deleted");
}
