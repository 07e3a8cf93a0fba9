//! scratch
use k8s_openapi::api::admissionregistration::v1 as admissionregistration;
use k8s_openapi::api::apps::v1 as apps;
use k8s_openapi::api::authentication::v1 as authentication;
use k8s_openapi::api::authorization::v1 as authorization;
use k8s_openapi::api::autoscaling::v1 as autoscaling_v1;
use k8s_openapi::api::autoscaling::v2 as autoscaling_v2;
use k8s_openapi::api::batch::v1 as batch;
use k8s_openapi::api::certificates::v1 as certificates;
use k8s_openapi::api::coordination::v1 as coordination;
use k8s_openapi::api::core::v1 as core_v1;
use k8s_openapi::api::discovery::v1 as discovery;
use k8s_openapi::api::events::v1 as events;
use k8s_openapi::api::flowcontrol::v1 as flowcontrol;
use k8s_openapi::api::networking::v1 as networking;
use k8s_openapi::api::node::v1 as node;
use k8s_openapi::api::policy::v1 as policy;
use k8s_openapi::api::rbac::v1 as rbac;
use k8s_openapi::api::resource::v1 as resource;
use k8s_openapi::api::scheduling::v1 as scheduling;
use k8s_openapi::api::storage::v1 as storage;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1 as apiregistration;
use schemars::{JsonSchema, SchemaGenerator};

type SchemaFn = fn(&mut SchemaGenerator) -> schemars::Schema;

fn sub<T: JsonSchema>(g: &mut SchemaGenerator) -> schemars::Schema {
    g.subschema_for::<T>()
}

macro_rules! registry {
    ($($t:ty),* $(,)?) => {
        &[$(sub::<$t> as SchemaFn),*]
    };
}

static TYPES: &[SchemaFn] = registry![
    core_v1::Binding, core_v1::ComponentStatus, core_v1::ConfigMap, core_v1::Endpoints, core_v1::Event, core_v1::LimitRange, core_v1::Namespace, core_v1::Node, core_v1::PersistentVolumeClaim, core_v1::PersistentVolume, core_v1::Pod, core_v1::PodTemplate, core_v1::ReplicationController, core_v1::ResourceQuota, core_v1::Secret, core_v1::ServiceAccount, core_v1::Service, apiregistration::APIService, apps::ControllerRevision, apps::DaemonSet, apps::Deployment, apps::ReplicaSet, apps::StatefulSet, events::Event, authentication::SelfSubjectReview, authentication::TokenReview, authorization::LocalSubjectAccessReview, authorization::SelfSubjectAccessReview, authorization::SelfSubjectRulesReview, authorization::SubjectAccessReview, autoscaling_v2::HorizontalPodAutoscaler, autoscaling_v1::HorizontalPodAutoscaler, batch::CronJob, batch::Job, certificates::CertificateSigningRequest, networking::IngressClass, networking::Ingress, networking::IPAddress, networking::NetworkPolicy, networking::ServiceCIDR, policy::PodDisruptionBudget, rbac::ClusterRoleBinding, rbac::ClusterRole, rbac::RoleBinding, rbac::Role, storage::CSIDriver, storage::CSINode, storage::CSIStorageCapacity, storage::StorageClass, storage::VolumeAttachment, storage::VolumeAttributesClass, admissionregistration::MutatingAdmissionPolicy, admissionregistration::MutatingAdmissionPolicyBinding, admissionregistration::MutatingWebhookConfiguration, admissionregistration::ValidatingAdmissionPolicy, admissionregistration::ValidatingAdmissionPolicyBinding, admissionregistration::ValidatingWebhookConfiguration, apiextensions::CustomResourceDefinition, scheduling::PriorityClass, coordination::Lease, node::RuntimeClass, discovery::EndpointSlice, resource::DeviceClass, resource::ResourceClaim, resource::ResourceClaimTemplate, resource::ResourceSlice, flowcontrol::FlowSchema, flowcontrol::PriorityLevelConfiguration,
    autoscaling_v1::Scale, policy::Eviction, authentication::TokenRequest,
    meta::DeleteOptions, meta::Status, meta::WatchEvent<()>, meta::Patch, meta::APIResourceList, meta::APIGroup, meta::APIGroupList, meta::APIVersions,
    k8s_openapi::apimachinery::pkg::version::Info,
];

pub fn dump() -> serde_json::Map<String, serde_json::Value> {
    let mut g = schemars::generate::SchemaSettings::draft07()
        .with(|s| {
            s.meta_schema = None;
            s.transforms.clear();
        })
        .into_generator();
    for f in TYPES {
        f(&mut g);
    }
    g.take_definitions(false)
}

#[cfg(test)]
mod tests {
    #[test]
    fn dump() {
        let t = std::time::Instant::now();
        let d = super::dump();
        eprintln!("{} defs in {:?}", d.len(), t.elapsed());
        std::fs::write("/tmp/schemars_defs.json", serde_json::to_vec_pretty(&d).unwrap()).unwrap();
    }
}
