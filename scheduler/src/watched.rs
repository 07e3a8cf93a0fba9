//! Pods as the scheduler's watch decodes them. Every pod event carries the pod's
//! `metadata.managedFields`, which the scheduler never reads (upstream's scheduler drops it
//! from its informer cache too); parsing it into typed entries was about a tenth of the
//! scheduler's CPU time. [`WatchedPod`] skips it while parsing and is otherwise the `Pod`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, PodSpec, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use serde::{Deserialize, Deserializer};

/// A [`Pod`] read from the API without its managedFields.
#[derive(Clone, Debug, Default)]
pub struct WatchedPod(pub Pod);

/// `ObjectMeta` but `managedFields`, which serde passes over unparsed.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Meta {
    annotations: Option<BTreeMap<String, String>>,
    creation_timestamp: Option<Time>,
    deletion_grace_period_seconds: Option<i64>,
    deletion_timestamp: Option<Time>,
    finalizers: Option<Vec<String>>,
    generate_name: Option<String>,
    generation: Option<i64>,
    labels: Option<BTreeMap<String, String>>,
    name: Option<String>,
    namespace: Option<String>,
    owner_references: Option<Vec<OwnerReference>>,
    resource_version: Option<String>,
    self_link: Option<String>,
    uid: Option<String>,
}

#[derive(Deserialize)]
struct Shell {
    #[serde(default)]
    metadata: Meta,
    spec: Option<PodSpec>,
    status: Option<PodStatus>,
}

impl<'de> Deserialize<'de> for WatchedPod {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let Shell {
            metadata: m,
            spec,
            status,
        } = Shell::deserialize(d)?;
        Ok(WatchedPod(Pod {
            metadata: ObjectMeta {
                annotations: m.annotations,
                creation_timestamp: m.creation_timestamp,
                deletion_grace_period_seconds: m.deletion_grace_period_seconds,
                deletion_timestamp: m.deletion_timestamp,
                finalizers: m.finalizers,
                generate_name: m.generate_name,
                generation: m.generation,
                labels: m.labels,
                managed_fields: None,
                name: m.name,
                namespace: m.namespace,
                owner_references: m.owner_references,
                resource_version: m.resource_version,
                self_link: m.self_link,
                uid: m.uid,
            },
            spec,
            status,
        }))
    }
}

impl kube::Resource for WatchedPod {
    type DynamicType = ();
    type Scope = k8s_openapi::NamespaceResourceScope;

    fn kind(dt: &()) -> Cow<'_, str> {
        Pod::kind(dt)
    }
    fn group(dt: &()) -> Cow<'_, str> {
        Pod::group(dt)
    }
    fn version(dt: &()) -> Cow<'_, str> {
        Pod::version(dt)
    }
    fn plural(dt: &()) -> Cow<'_, str> {
        Pod::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        &self.0.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.0.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_a_pod_but_its_managed_fields() {
        let v = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": "p", "namespace": "ns", "uid": "u1", "resourceVersion": "7",
                "labels": {"app": "a"}, "annotations": {"k": "v"},
                "creationTimestamp": "2026-11-28T08:51:35Z",
                "deletionTimestamp": "2026-11-28T09:00:00Z",
                "deletionGracePeriodSeconds": 30, "finalizers": ["f"], "generation": 2,
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                     "name": "rs", "uid": "u0", "controller": true}],
                "managedFields": [{"manager": "m", "operation": "Update",
                                   "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}]
            },
            "spec": {"containers": [{"name": "c", "image": "i"}], "nodeName": "n1"},
            "status": {"phase": "Pending"}
        });
        let full: Pod = serde_json::from_value(v.clone()).unwrap();
        let WatchedPod(slim) = serde_json::from_value(v).unwrap();
        assert!(slim.metadata.managed_fields.is_none());
        let mut expected = full;
        expected.metadata.managed_fields = None;
        assert_eq!(slim, expected);
    }

    #[test]
    fn a_pod_without_metadata_or_spec_parses() {
        let WatchedPod(p) = serde_json::from_value(json!({"kind": "Pod"})).unwrap();
        assert_eq!(p, Pod::default());
    }
}
