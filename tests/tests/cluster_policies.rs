//! End-to-end scenarios of what a cluster administrator sees: Pod Security, admission policies,
//! pods that never start, values refused before any Job exists, namespace deletion. The same
//! real control plane, kubelet and binaries as `scenarios.rs`.
use std::time::Duration;

use kube::api::Api;
use nas_e2e::cluster::{Cluster, RunnerSetup, OPERATOR_NAMESPACE, RELEASE, S3_SECRET};
use nas_e2e::scenario::*;
use nas_e2e::tools;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_spec_is_refused_by_kubectl_apply_with_a_message_naming_the_field() {
    let cluster = Cluster::start(&["team-e"], RunnerSetup::default()).await;
    // The CRD's CEL rule refuses it at the API server: nothing is stored, no Job is made.
    let yaml = search_yaml(&cluster, "team-e", "bad", "").replace("topK: 2", "topK: 0");
    let out = tools::kubectl_stdin(cluster.admin_kubeconfig(), &["apply", "-f", "-"], &yaml);
    assert!(!out.ok, "kubectl apply accepted topK: 0: {out:?}");
    assert!(
        out.stderr.contains("spec.selection.topK")
            && out
                .stderr
                .contains("selection.topK must be between 1 and 100"),
        "{}",
        out.stderr
    );
    assert!(cluster.get("team-e", "bad").await.is_none());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_no_jobs(&cluster, "team-e").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runner_and_operator_pods_pass_the_restricted_pod_security_standard() {
    let cluster = Cluster::start(&["team-m"], RunnerSetup::default()).await;
    cluster
        .kubectl(&[
            "label",
            "namespace",
            "team-m",
            "pod-security.kubernetes.io/enforce=restricted",
        ])
        .expect_ok("kubectl label");
    cluster
        .apply(&search_yaml(&cluster, "team-m", "strict", ""))
        .await;
    let s = cluster.wait_ended("team-m", "strict", SEARCH_TIMEOUT).await;
    assert_succeeded(&cluster, &s);
    // The chart's operator pod, as its Deployment would create it, in the same namespace
    // (where a ServiceAccount of its name must exist for admission to get that far).
    cluster
        .kubectl(&["create", "serviceaccount", RELEASE, "-n", "team-m"])
        .expect_ok("kubectl create serviceaccount");
    let template = cluster
        .kubectl(&[
            "get",
            "deployment",
            RELEASE,
            "-n",
            OPERATOR_NAMESPACE,
            "-o",
            "jsonpath={.spec.template.spec}",
        ])
        .expect_ok("kubectl get deployment");
    let pod = format!(
        r#"{{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "operator-check", "namespace": "team-m"}}, "spec": {template}}}"#
    );
    let out = tools::kubectl_stdin(
        cluster.admin_kubeconfig(),
        &["create", "--dry-run=server", "-f", "-"],
        &pod,
    );
    assert!(
        out.ok,
        "the operator pod is refused by Pod Security: {out:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_that_never_start_are_named_with_their_stage_and_reason() {
    let cluster = Cluster::start(&["team-n", "team-o", "team-p"], RunnerSetup::default()).await;
    // An image the node does not have; a Secret that does not exist; more GPUs than any node.
    let unknown = search_yaml(&cluster, "team-n", "noimage", "")
        .replace(&cluster.runner_image, "registry.invalid/nas-runner:missing");
    let nosecret = search_yaml(&cluster, "team-o", "nosecret", "")
        .replace(&format!("name: {S3_SECRET}"), "name: no-such-secret");
    let gpus = search_yaml(
        &cluster,
        "team-p",
        "nogpu",
        "  resources: {stageData: {gpus: 8}}\n",
    );
    for y in [&unknown, &nosecret, &gpus] {
        cluster.apply(y).await;
    }
    for (ns, name, reason, detail) in [
        (
            "team-n",
            "noimage",
            "ImagePullBackOff",
            "registry.invalid/nas-runner:missing",
        ),
        (
            "team-o",
            "nosecret",
            "CreateContainerConfigError",
            "no-such-secret",
        ),
        ("team-p", "nogpu", "Unschedulable", "nvidia.com/gpu"),
    ] {
        let msg = progressing_reason(&cluster, ns, name, reason).await;
        assert!(
            msg.contains("stage stage-data") && msg.contains(&format!("pod {name}-stage-data-")),
            "{ns}: the message names neither the stage nor the pod: {msg}"
        );
        assert!(msg.contains(detail), "{ns}: {msg}");
        let events = cluster
            .kubectl(&[
                "get",
                "events",
                "-n",
                ns,
                "--field-selector",
                "involvedObject.kind=NASSearch",
            ])
            .expect_ok("kubectl get events");
        assert!(
            events.contains(reason),
            "{ns}: no {reason} event:\n{events}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_kubernetes_would_refuse_in_a_job_are_refused_before_any_job_exists() {
    let cluster = Cluster::start(&["team-r"], RunnerSetup::default()).await;
    // The schema refuses a queue name that is no label value at apply time.
    let bad_queue = search_yaml(
        &cluster,
        "team-r",
        "badqueue",
        "  queueName: \"gpu queue!\"\n",
    );
    let out = tools::kubectl_stdin(
        cluster.admin_kubeconfig(),
        &["apply", "-f", "-"],
        &bad_queue,
    );
    assert!(!out.ok && out.stderr.contains("spec.queueName"), "{out:?}");
    // A quantity the schema cannot check (int-or-string): Accepted=False names the field.
    let extra = "  resources: {score: {cpu: \"four\"}}\n";
    cluster
        .apply(&search_yaml(&cluster, "team-r", "badcpu", extra))
        .await;
    let s = cluster
        .wait_for(
            "team-r",
            "badcpu",
            Duration::from_secs(60),
            "rejected",
            |s| {
                s.status.as_ref().is_some_and(|st| {
                    st.conditions
                        .iter()
                        .any(|c| c.type_ == "Accepted" && c.status == "False")
                })
            },
        )
        .await;
    let st = s.status.unwrap();
    let c = st
        .conditions
        .iter()
        .find(|c| c.type_ == "Accepted")
        .unwrap();
    assert!(c.message.contains("spec.resources.score.cpu"), "{c:?}");
    assert_no_jobs(&cluster, "team-r").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_the_cluster_refuses_is_named_in_the_status_with_the_refusal() {
    let cluster = Cluster::start(&["team-s"], RunnerSetup::default()).await;
    // An administrator's admission policy that denies every Job in the namespace.
    let policy = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: e2e-no-jobs-in-team-s}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - {apiGroups: [batch], apiVersions: [v1], operations: [CREATE], resources: [jobs]}
  validations:
  - {expression: "false", message: "Jobs here need an approval first"}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: e2e-no-jobs-in-team-s}
spec:
  policyName: e2e-no-jobs-in-team-s
  validationActions: [Deny]
  matchResources:
    namespaceSelector:
      matchLabels: {kubernetes.io/metadata.name: team-s}
"#;
    tools::kubectl_stdin(cluster.admin_kubeconfig(), &["apply", "-f", "-"], policy)
        .expect_ok("kubectl apply the admission policy");
    // The policy takes a moment to be enforced; a search applied after it meets it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    cluster
        .apply(&search_yaml(&cluster, "team-s", "refused", ""))
        .await;
    let msg = progressing_reason(&cluster, "team-s", "refused", "ActionFailed").await;
    assert!(
        msg.contains("creating Job refused-stage-data-")
            && msg.contains("Jobs here need an approval first"),
        "{msg}"
    );
    let _ = tools::kubectl_stdin(
        cluster.admin_kubeconfig(),
        &["delete", "--ignore-not-found", "-f", "-"],
        policy,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_namespace_of_a_search_that_cleans_its_artifacts_finishes() {
    let cluster = Cluster::start(&["team-u"], RunnerSetup::default()).await;
    let extra = "  deleteArtifactsOnDeletion: true\n";
    cluster
        .apply(&search_yaml(&cluster, "team-u", "doomed-ns", extra))
        .await;
    // Running, with the artifacts finalizer in place.
    cluster
        .wait_for(
            "team-u",
            "doomed-ns",
            Duration::from_secs(120),
            "running with its finalizer",
            |s| {
                s.metadata
                    .finalizers
                    .as_ref()
                    .is_some_and(|f| !f.is_empty())
                    && s.status.as_ref().is_some_and(|st| st.stage.is_some())
            },
        )
        .await;
    cluster
        .kubectl(&["delete", "namespace", "team-u", "--wait=false"])
        .expect_ok("kubectl delete namespace");
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(cluster.client.clone());
    for _ in 0..1800 {
        if namespaces.get_opt("team-u").await.unwrap().is_none() {
            // No cleanup Job can run there: the operator let go and said what remains.
            assert!(
                cluster.operator_log().contains("artifacts left behind"),
                "{}",
                cluster.operator_log()
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the namespace was never deleted\n{}",
        cluster.diagnostics("team-u")
    );
}
