//! What the real API server does with our CRD and chart, before any search runs: every CEL
//! rule and schema bound refuses what it should with its message, `kubectl explain` shows the
//! field docs, and the chart's RBAC gives the operator what it needs and nothing more (no
//! Secrets).
use std::collections::BTreeMap;

use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::Resource;
use nas_api::crd::NASSearch;
use nas_e2e::cluster::{Environment, OPERATOR_NAMESPACE, RELEASE};
use nas_e2e::tools;
use serde_json::{json, Value};

const CRD: &str = include_str!("../../charts/nas-operator/crds/nassearches.yaml");

/// A valid spec; each case changes one thing.
fn base_spec() -> Value {
    json!({
        "runner": {"image": "nas-runner:e2e"},
        "dataset": {"source": "s3://data/cifar10", "format": "cifar10", "resolution": 32},
        "space": {"name": "nb201", "channels": 4, "cells": 1},
        "sampling": {"candidates": 6, "seed": 1, "shards": 2},
        "selection": {"topK": 2},
        "artifacts": {"bucket": "b", "credentials": {"secretRef": {"name": "s"}}},
    })
}

/// A CEL rule of the CRD: where it sits (`spec.sampling.shards`) and its message.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Rule {
    path: String,
    rule: String,
    message: String,
}

fn collect_rules(schema: &serde_yaml::Value, path: &str, out: &mut Vec<Rule>) {
    for r in schema
        .get("x-kubernetes-validations")
        .and_then(|v| v.as_sequence())
        .into_iter()
        .flatten()
    {
        out.push(Rule {
            path: path.to_string(),
            rule: r["rule"].as_str().unwrap_or_default().to_string(),
            message: r["message"].as_str().unwrap_or_default().to_string(),
        });
    }
    if let Some(props) = schema.get("properties").and_then(|p| p.as_mapping()) {
        for (k, v) in props {
            let key = k.as_str().unwrap_or_default();
            collect_rules(v, &format!("{path}.{key}"), out);
        }
    }
    if let Some(items) = schema.get("items") {
        collect_rules(items, &format!("{path}[]"), out);
    }
}

fn crd_rules() -> Vec<Rule> {
    let crd: serde_yaml::Value = serde_yaml::from_str(CRD).expect("CRD YAML");
    let root = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    let mut rules = Vec::new();
    // Rules of the whole object (on its metadata), then those under the spec.
    let top = serde_yaml::Value::Mapping(
        [(
            "x-kubernetes-validations".into(),
            root["x-kubernetes-validations"].clone(),
        )]
        .into_iter()
        .collect(),
    );
    collect_rules(&top, "metadata", &mut rules);
    collect_rules(&root["properties"]["spec"], "spec", &mut rules);
    rules
}

/// Sets `value` at a dotted path under the spec (creating objects on the way).
fn set(spec: &mut Value, path: &str, value: Value) {
    let mut cur = spec;
    let parts: Vec<&str> = path.trim_start_matches("spec.").split('.').collect();
    for p in &parts[..parts.len() - 1] {
        if !cur.get(*p).is_some_and(Value::is_object) {
            cur[*p] = json!({});
        }
        cur = &mut cur[*p];
    }
    cur[parts[parts.len() - 1]] = value;
}

/// How a case trips its rule: a spec to create (under the case's own name unless one is given),
/// or an update of a valid search.
enum Trip {
    Create(Option<String>, Value),
    Update(Value),
}

fn trip_for(rule: &Rule) -> Option<Trip> {
    let mut spec = base_spec();
    // Recipe overrides need the preset they override.
    for (stage, preset) in [("train", "short"), ("evaluate", "nb201")] {
        if rule.path.starts_with(&format!("spec.{stage}.overrides.")) {
            set(&mut spec, &format!("spec.{stage}.preset"), json!(preset));
        }
    }
    if rule.rule == "self > 0" {
        set(&mut spec, &rule.path, json!(0));
        return Some(Trip::Create(None, spec));
    }
    if rule.rule == "self > 0.0" {
        set(&mut spec, &rule.path, json!(0.0));
        return Some(Trip::Create(None, spec));
    }
    let m = rule.message.as_str();
    match m {
        _ if m.starts_with("artifacts.credentials needs exactly one") => {
            set(
                &mut spec,
                "spec.artifacts.credentials.fromEnvironment",
                json!(true),
            );
        }
        _ if m.starts_with("artifacts.endpoint must start") => {
            set(
                &mut spec,
                "spec.artifacts.endpoint",
                json!("ftp://store:21"),
            );
        }
        _ if m.starts_with("dataset.source must start") => {
            set(&mut spec, "spec.dataset.source", json!("relative/folder"));
        }
        _ if m.starts_with("sampling.evolution.tournament must be at most") => {
            set(&mut spec, "spec.sampling.strategy", json!("evolutionary"));
            set(
                &mut spec,
                "spec.sampling.evolution",
                json!({"population": 4, "tournament": 5}),
            );
        }
        _ if m.starts_with("sampling.evolution.population must be at most") => {
            set(&mut spec, "spec.sampling.strategy", json!("evolutionary"));
            set(
                &mut spec,
                "spec.sampling.evolution",
                json!({"population": 8, "tournament": 2}),
            );
        }
        _ if m.starts_with("sampling.shards must be at most") => {
            set(&mut spec, "spec.sampling.shards", json!(7));
        }
        _ if m.starts_with("selection.topK must be between") => {
            set(&mut spec, "spec.selection.topK", json!(101));
        }
        _ if m.starts_with("selection.topK must be at most sampling.candidates") => {
            set(&mut spec, "spec.selection.topK", json!(7));
        }
        _ if m.starts_with("sampling.strategy exhaustive needs") => {
            set(&mut spec, "spec.sampling.strategy", json!("exhaustive"));
            set(&mut spec, "spec.space", json!({"name": "darts"}));
        }
        "sampling.seed is immutable" => {
            set(&mut spec, "spec.sampling.seed", json!(2));
            return Some(Trip::Update(spec));
        }
        _ if m.starts_with("metadata.name must be at most 63") => {
            return Some(Trip::Create(Some("n".repeat(64)), spec));
        }
        "space is immutable" => {
            set(&mut spec, "spec.space.channels", json!(8));
            return Some(Trip::Update(spec));
        }
        _ => return None,
    }
    Some(Trip::Create(None, spec))
}

fn resource() -> ApiResource {
    ApiResource::erase::<NASSearch>(&())
}

fn object(name: &str, spec: Value) -> DynamicObject {
    let ar = resource();
    serde_json::from_value(json!({
        "apiVersion": ar.api_version, "kind": ar.kind,
        "metadata": {"name": name}, "spec": spec,
    }))
    .expect("object")
}

async fn namespace(client: &kube::Client, ns: &str) {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let obj = serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
    let _ = api.create(&PostParams::default(), &obj).await;
}

/// The API server's answer to a request that should fail, as text.
fn refusal<T: std::fmt::Debug>(res: Result<T, kube::Error>) -> Result<String, String> {
    match res {
        Err(kube::Error::Api(e)) if e.code == 422 => Ok(e.message),
        Err(e) => Err(format!("refused, but not as invalid (422): {e}")),
        Ok(v) => Err(format!("accepted: {v:?}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cel_rule_of_the_crd_refuses_what_it_should_with_its_message() {
    let env = tokio::task::block_in_place(Environment::get);
    let client = env.plane.admin_client().await.unwrap();
    namespace(&client, "api-rules").await;
    let api: Api<DynamicObject> = Api::namespaced_with(client, "api-rules", &resource());
    let rules = crd_rules();
    assert!(rules.len() >= 20, "the CRD lost its CEL rules: {rules:?}");
    let mut failures = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let Some(trip) = trip_for(rule) else {
            failures.push(format!(
                "{} ({}): no test case trips this rule",
                rule.path, rule.message
            ));
            continue;
        };
        let name = format!("rule-{i}");
        let answer = match trip {
            Trip::Create(given, spec) => {
                let name = given.unwrap_or(name);
                refusal(
                    api.create(&PostParams::default(), &object(&name, spec))
                        .await,
                )
            }
            Trip::Update(spec) => {
                if let Err(e) = api
                    .create(&PostParams::default(), &object(&name, base_spec()))
                    .await
                {
                    failures.push(format!(
                        "{}: the valid base spec was refused: {e}",
                        rule.path
                    ));
                    continue;
                }
                let patch = json!({"spec": spec});
                refusal(
                    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await,
                )
            }
        };
        match answer {
            Ok(msg) if msg.contains(&rule.message) => {}
            Ok(msg) => failures.push(format!(
                "{}: refused without the rule's message {:?}: {msg}",
                rule.path, rule.message
            )),
            Err(e) => failures.push(format!("{} ({}): {e}", rule.path, rule.message)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rules:\n{}",
        failures.len(),
        rules.len(),
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schema_refuses_out_of_range_integers_and_a_valid_spec_is_stored_with_defaults() {
    let env = tokio::task::block_in_place(Environment::get);
    let client = env.plane.admin_client().await.unwrap();
    namespace(&client, "api-schema").await;
    let api: Api<DynamicObject> = Api::namespaced_with(client, "api-schema", &resource());
    let cases: BTreeMap<&str, Value> = BTreeMap::from([
        ("spec.metrics.angleLossSteps", json!(100001)),
        ("spec.metrics.batchSize", json!(4097)),
        ("spec.dataset.resolution", json!(4)),
        ("spec.space.channels", json!(0)),
    ]);
    for (i, (path, value)) in cases.iter().enumerate() {
        let mut spec = base_spec();
        set(&mut spec, path, value.clone());
        let msg = refusal(
            api.create(&PostParams::default(), &object(&format!("bound-{i}"), spec))
                .await,
        )
        .unwrap_or_else(|e| panic!("{path} = {value}: {e}"));
        let field = path.trim_start_matches("spec.");
        assert!(
            msg.contains(field),
            "{path} = {value}: the message does not name the field: {msg}"
        );
    }
    let created = api
        .create(&PostParams::default(), &object("valid", base_spec()))
        .await
        .expect("the valid spec is stored");
    // Structural defaults are applied by the API server.
    assert_eq!(
        created.data["spec"]["metrics"]["names"],
        json!(["angle_loss", "params"])
    );
}

/// What the operator's status writes rely on: a server-side apply of the status that names a
/// `resourceVersion` is refused (409) once the object has changed since, and taken otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_apply_from_a_stale_resource_version_is_refused() {
    let env = tokio::task::block_in_place(Environment::get);
    let client = env.plane.admin_client().await.unwrap();
    namespace(&client, "api-stale").await;
    let api: Api<DynamicObject> = Api::namespaced_with(client, "api-stale", &resource());
    let created = api
        .create(&PostParams::default(), &object("stale", base_spec()))
        .await
        .unwrap();
    let read = created.metadata.resource_version.clone();
    let status = |phase: &str, version: &Option<String>| {
        let ar = resource();
        json!({"apiVersion": ar.api_version, "kind": ar.kind,
            "metadata": {"resourceVersion": version},
            "status": {"phase": phase}})
    };
    let apply = PatchParams::apply("nas-operator").force();
    api.patch_status("stale", &apply, &Patch::Apply(&status("Running", &read)))
        .await
        .expect("a status from the current version is taken");
    // That write moved the version on: a status planned from `read` is now stale.
    let answer = api
        .patch_status("stale", &apply, &Patch::Apply(&status("Pending", &read)))
        .await;
    assert!(
        matches!(&answer, Err(kube::Error::Api(e)) if e.code == 409),
        "{answer:?}"
    );
    let now = api.get_status("stale").await.unwrap();
    assert_eq!(now.data["status"]["phase"], "Running");
}

#[test]
fn kubectl_explain_prints_the_field_docs() {
    let env = Environment::get();
    let out = tools::run(
        "kubectl",
        &env.plane.admin_kubeconfig,
        &["explain", "nassearch.spec.sampling"],
    )
    .expect_ok("kubectl explain");
    for field in ["candidates", "seed", "shards", "strategy", "evolution"] {
        assert!(out.contains(field), "no {field} in:\n{out}");
    }
    assert!(
        out.contains("Number of score shards"),
        "the field docs are missing:\n{out}"
    );
}

/// `kubectl auth can-i` as the chart's ServiceAccount; `resource` may name a subresource
/// after a `/` (kubectl itself reads `TYPE/NAME` there).
fn can_i(env: &Environment, verb: &str, resource: &str, ns: &str) -> bool {
    let sa = format!("system:serviceaccount:{OPERATOR_NAMESPACE}:{RELEASE}");
    let mut args = vec!["auth", "can-i", verb, "--as", &sa, "-n", ns];
    let sub;
    match resource.split_once('/') {
        Some((res, subresource)) => {
            sub = format!("--subresource={subresource}");
            args.extend([res, sub.as_str()]);
        }
        None => args.push(resource),
    }
    let out = tools::run("kubectl", &env.plane.admin_kubeconfig, &args);
    out.stdout.trim() == "yes"
}

#[test]
fn the_chart_rbac_lets_the_operator_do_its_work_and_nothing_more() {
    let env = Environment::get();
    let ns = "team-rbac";
    let allowed = [
        ("get", "nassearches.nas.example.dev"),
        ("list", "nassearches.nas.example.dev"),
        ("watch", "nassearches.nas.example.dev"),
        ("patch", "nassearches.nas.example.dev"),
        ("patch", "nassearches.nas.example.dev/status"),
        ("update", "nassearches.nas.example.dev/finalizers"),
        ("create", "jobs.batch"),
        ("delete", "jobs.batch"),
        ("watch", "jobs.batch"),
        ("list", "pods"),
        ("create", "configmaps"),
        ("create", "events.events.k8s.io"),
    ];
    let denied = [
        ("get", "secrets"),
        ("list", "secrets"),
        ("watch", "secrets"),
        ("create", "pods"),
        ("delete", "pods"),
        ("delete", "nassearches.nas.example.dev"),
        ("create", "deployments.apps"),
        ("delete", "configmaps"),
        ("create", "roles.rbac.authorization.k8s.io"),
        ("create", "serviceaccounts/token"),
        ("get", "nodes"),
        ("update", "nassearches.nas.example.dev"),
        ("create", "pods/eviction"),
    ];
    let mut wrong = Vec::new();
    for (verb, res) in allowed {
        if !can_i(env, verb, res, ns) {
            wrong.push(format!("cannot {verb} {res}"));
        }
    }
    for (verb, res) in denied {
        if can_i(env, verb, res, ns) {
            wrong.push(format!("can {verb} {res}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "the operator's ServiceAccount: {}",
        wrong.join(", ")
    );
}

#[test]
fn the_crd_is_the_one_the_operator_prints() {
    // The chart's crds/ is what `helm install` applied; `nas-operator crd` must agree with it.
    let env = Environment::get();
    let stored = tools::run(
        "kubectl",
        &env.plane.admin_kubeconfig,
        &[
            "get",
            "crd",
            "nassearches.nas.example.dev",
            "-o",
            "jsonpath={.spec.versions[0].name}",
        ],
    )
    .expect_ok("kubectl get crd");
    assert_eq!(stored, NASSearch::version(&()).as_ref());
}
