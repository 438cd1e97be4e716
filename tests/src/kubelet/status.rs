//! Pod status as the kubelet's status manager writes it: phase, the kubelet's conditions
//! (merged by type with the scheduler's `PodScheduled` under a strategic merge patch), host and
//! pod IPs, start time, and the container's state (waiting with a reason, running, or
//! terminated with exit code, reason and termination message).
use serde_json::{json, Value};

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// What the container is doing.
#[derive(Debug, Clone)]
pub enum ContainerState {
    Waiting {
        reason: String,
        message: String,
    },
    Running {
        started_at: String,
    },
    Terminated {
        exit_code: i32,
        reason: String,
        message: String,
        started_at: String,
        finished_at: String,
    },
}

/// The reason the container runtime gives a container that ended with `exit_code`.
pub fn terminated_reason(exit_code: i32) -> &'static str {
    match exit_code {
        0 => "Completed",
        _ => "Error",
    }
}

fn condition(type_: &str, ok: bool, reason: Option<&str>, at: &str) -> Value {
    let mut c = json!({"type": type_, "status": if ok { "True" } else { "False" },
        "lastProbeTime": null, "lastTransitionTime": at});
    if let Some(r) = reason {
        c["reason"] = json!(r);
    }
    c
}

/// The `status` patch for a pod whose (single) container is in `state`.
pub fn pod_status(container: &str, image: &str, state: &ContainerState, start_time: &str) -> Value {
    let at = now();
    let (phase, ready, sandbox, state_json, started) = match state {
        ContainerState::Waiting { reason, message } => (
            "Pending",
            false,
            true,
            json!({"waiting": {"reason": reason, "message": message}}),
            false,
        ),
        ContainerState::Running { started_at } => (
            "Running",
            true,
            true,
            json!({"running": {"startedAt": started_at}}),
            true,
        ),
        ContainerState::Terminated {
            exit_code,
            reason,
            message,
            started_at,
            finished_at,
        } => (
            if *exit_code == 0 {
                "Succeeded"
            } else {
                "Failed"
            },
            false,
            false,
            json!({"terminated": {"exitCode": exit_code, "reason": reason, "message": message,
                "startedAt": started_at, "finishedAt": finished_at, "containerID": ""}}),
            false,
        ),
    };
    let not_ready = match state {
        ContainerState::Terminated { .. } => Some("PodCompleted"),
        _ if !ready => Some("ContainersNotReady"),
        _ => None,
    };
    let mut cstatus = json!({"name": container, "image": image, "imageID": "", "ready": ready,
        "started": started, "restartCount": 0, "state": state_json});
    if let ContainerState::Waiting { .. } = state {
        cstatus["containerID"] = Value::Null;
    }
    json!({"status": {
        "phase": phase,
        "hostIP": "127.0.0.1", "hostIPs": [{"ip": "127.0.0.1"}],
        "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}],
        "startTime": start_time,
        "conditions": [
            condition("PodReadyToStartContainers", sandbox, None, &at),
            condition("Initialized", true, None, &at),
            condition("Ready", ready, not_ready, &at),
            condition("ContainersReady", ready, not_ready, &at),
        ],
        "containerStatuses": [cstatus],
    }})
}
