//! The resource types the double serves: the built-in ones the operator touches and one
//! configurable custom resource (the NASSearch CRD) with a status subresource.

/// How dependents are treated when an owner is deleted without an explicit propagationPolicy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    /// Dependents are deleted after the owner (the default for nearly every type).
    Background,
    /// Owner deleted once its dependents are gone (done synchronously by the double).
    Foreground,
    /// Dependents keep running; their ownerReferences to the owner are removed.
    Orphan,
}

impl Propagation {
    /// Parses the `propagationPolicy` value of DeleteOptions.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "Background" => Some(Propagation::Background),
            "Foreground" => Some(Propagation::Foreground),
            "Orphan" => Some(Propagation::Orphan),
            _ => None,
        }
    }
}

/// One REST resource: where it lives and how the server treats it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceType {
    /// API group; empty for the core group (`/api/v1`).
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub namespaced: bool,
    /// With a `/status` subresource, writes to the main resource keep the stored status and
    /// writes to `/status` change nothing but status.
    pub status_subresource: bool,
    /// Built-in types accept strategic merge patches and merge their known list-maps by key in
    /// server-side apply; custom resources treat lists as atomic (no list-type markers).
    pub builtin: bool,
    /// The propagation policy when DeleteOptions names none (batch/v1 Jobs orphan by default).
    pub default_propagation: Propagation,
}

impl ResourceType {
    fn builtin(group: &str, version: &str, kind: &str, plural: &str, status: bool) -> Self {
        ResourceType {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            plural: plural.into(),
            namespaced: true,
            status_subresource: status,
            builtin: true,
            default_propagation: Propagation::Background,
        }
    }

    /// A namespaced custom resource with a status subresource, as a CRD defines it.
    pub fn custom(group: &str, version: &str, kind: &str, plural: &str) -> Self {
        ResourceType {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            plural: plural.into(),
            namespaced: true,
            status_subresource: true,
            builtin: false,
            default_propagation: Propagation::Background,
        }
    }

    /// The NASSearch resource at the group the operator uses.
    pub fn nassearch() -> Self {
        Self::custom("nas.example.dev", "v1alpha1", "NASSearch", "nassearches")
    }

    /// `v1` or `batch/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `pods` or `jobs.batch`, as error messages name a resource.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The `kind` of a list of these.
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// The singular name, as discovery lists it.
    pub fn singular(&self) -> String {
        self.kind.to_lowercase()
    }
}

/// The built-in resources served: Pods, Events (both APIs), ConfigMaps, Secrets, Jobs, Leases.
pub fn builtins() -> Vec<ResourceType> {
    let mut job = ResourceType::builtin("batch", "v1", "Job", "jobs", true);
    job.default_propagation = Propagation::Orphan;
    vec![
        ResourceType::builtin("", "v1", "Pod", "pods", true),
        ResourceType::builtin("", "v1", "Event", "events", false),
        ResourceType::builtin("", "v1", "ConfigMap", "configmaps", false),
        ResourceType::builtin("", "v1", "Secret", "secrets", false),
        job,
        ResourceType::builtin("coordination.k8s.io", "v1", "Lease", "leases", false),
        ResourceType::builtin("events.k8s.io", "v1", "Event", "events", false),
    ]
}
