//! ControllerRevision history, shared by the StatefulSet and DaemonSet controllers as
//! upstream's `pkg/controller/history`: every distinct pod template of an owner is stored as
//! a ControllerRevision named `<owner>-<hash>` whose `data` is the strategic merge patch
//! `{"spec":{"template":{…,"$patch":"replace"}}}` (what `kubectl rollout undo` applies),
//! numbered by `revision`, labelled `controller-revision-hash`, and trimmed to the owner's
//! `revisionHistoryLimit`.

use std::collections::BTreeMap;
use std::fmt::Debug;

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use crate::scaffold::{Context, Error, Result};
use crate::util;

/// The label on revisions (and on the pods made from them).
pub const REVISION_HASH_LABEL: &str = "controller-revision-hash";
/// How often a hash collision is resolved by bumping `collisionCount` before giving up.
const MAX_COLLISIONS: i32 = 16;

/// The revision data of `template`: a patch that replaces the owner's template.
pub fn revision_data(template: &PodTemplateSpec) -> Result<Value> {
    let mut t = serde_json::to_value(template)?;
    if let Some(o) = t.as_object_mut() {
        o.insert("$patch".into(), json!("replace"));
    }
    Ok(json!({"spec": {"template": t}}))
}

/// The pod template stored in a revision.
pub fn template_of(rev: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut t = rev.data.as_ref()?.0.get("spec")?.get("template")?.clone();
    t.as_object_mut()?.remove("$patch");
    serde_json::from_value(t).ok()
}

/// Upstream's `HashControllerRevision`: FNV-32a of the data and the collision count.
pub fn revision_hash(data: &Value, collision_count: Option<i32>) -> String {
    let mut bytes = serde_json::to_vec(data).unwrap_or_default();
    if let Some(c) = collision_count {
        bytes.extend_from_slice(c.to_string().as_bytes());
    }
    util::safe_encode(&util::fnv32a(&bytes).to_string())
}

/// The hash of a revision as its label records it.
pub fn hash_of(rev: &ControllerRevision) -> Option<&str> {
    rev.labels().get(REVISION_HASH_LABEL).map(String::as_str)
}

/// An owner's revisions after [`sync`].
pub struct History {
    /// Every revision the owner controls, oldest (lowest `revision`) first.
    pub revisions: Vec<ControllerRevision>,
    /// The revision of the owner's current template.
    pub update: ControllerRevision,
    /// The owner's `status.collisionCount` after any collision met while creating `update`.
    pub collision_count: i32,
}

impl History {
    pub fn named(&self, name: &str) -> Option<&ControllerRevision> {
        self.revisions.iter().find(|r| r.name_any() == name)
    }
}

/// Claims the owner's revisions and makes sure the one of `template` exists and is the
/// newest (an older equal revision is renumbered, as upstream does on a rollback).
pub async fn sync<K>(
    ctx: &Context,
    owner: &K,
    selector: &LabelSelector,
    template: &PodTemplateSpec,
    collision_count: i32,
) -> Result<History>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Serialize + Debug,
{
    let ns = owner.meta().namespace.clone().unwrap_or_default();
    let owner_name = owner.meta().name.clone().unwrap_or_default();
    let api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), &ns);
    let candidates = ctx
        .informers
        .get::<ControllerRevision>()
        .store()
        .state_filter(|r| r.metadata.namespace.as_deref() == Some(ns.as_str()));
    let owner_ref = util::controller_owner_ref(owner);
    let client = ctx.client.clone();
    let claimed = util::claim(
        |ns| Api::namespaced(client.clone(), ns),
        &owner_ref,
        owner.meta().deletion_timestamp.is_some(),
        selector,
        candidates,
    )
    .await?;
    let mut revisions: Vec<ControllerRevision> =
        claimed.iter().map(|r| r.as_ref().clone()).collect();
    revisions.sort_by_key(|r| {
        (
            r.revision,
            r.metadata.creation_timestamp.clone().map(|t| t.0),
        )
    });
    let data = revision_data(template)?;
    let next = revisions.last().map_or(1, |r| r.revision + 1);
    let equal = revisions
        .iter()
        .rposition(|r| r.data.as_ref().map(|d| &d.0) == Some(&data));
    if let Some(i) = equal {
        if i + 1 == revisions.len() {
            let update = revisions[i].clone();
            return Ok(History {
                revisions,
                update,
                collision_count,
            });
        }
        // Back to an older template: that revision becomes the newest.
        let name = revisions[i].name_any();
        let patch = json!({"revision": next});
        let updated = api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        revisions[i] = updated.clone();
        revisions.sort_by_key(|r| r.revision);
        return Ok(History {
            revisions,
            update: updated,
            collision_count,
        });
    }
    let mut collision_count = collision_count;
    let mut labels: BTreeMap<String, String> = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    for _ in 0..MAX_COLLISIONS {
        let hash = revision_hash(&data, Some(collision_count));
        labels.insert(REVISION_HASH_LABEL.into(), hash.clone());
        let mut rev = ControllerRevision {
            data: Some(RawExtension(data.clone())),
            revision: next,
            ..Default::default()
        };
        rev.metadata.name = Some(revision_name(&owner_name, &hash));
        rev.metadata.namespace = Some(ns.clone());
        rev.metadata.labels = Some(labels.clone());
        rev.metadata.owner_references = Some(vec![owner_ref.clone()]);
        match api.create(&PostParams::default(), &rev).await {
            Ok(created) => {
                revisions.push(created.clone());
                return Ok(History {
                    revisions,
                    update: created,
                    collision_count,
                });
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {
                // Created by an earlier sync not yet cached, or a true collision.
                let name = rev.metadata.name.clone().unwrap_or_default();
                if let Some(found) = util::absent_ok(api.get(&name).await)? {
                    let ours = util::controller_of(&found).is_some_and(|r| r.uid == owner_ref.uid);
                    if ours && found.data.as_ref().map(|d| &d.0) == Some(&data) {
                        if !revisions.iter().any(|r| r.name_any() == name) {
                            revisions.push(found.clone());
                        }
                        return Ok(History {
                            revisions,
                            update: found,
                            collision_count,
                        });
                    }
                }
                collision_count += 1;
            }
            Err(e) => return Err(Error::Kube(e)),
        }
    }
    Err(Error::Invalid(format!(
        "{owner_name}: no free revision name after {MAX_COLLISIONS} hash collisions"
    )))
}

/// Upstream's `ControllerRevisionName`: the owner's name (cut to 223 characters) and the hash.
pub fn revision_name(owner: &str, hash: &str) -> String {
    let prefix: String = owner.chars().take(223).collect();
    format!("{prefix}-{hash}")
}

/// Deletes the oldest revisions beyond `limit`, never one that `in_use` keeps.
pub async fn truncate(
    ctx: &Context,
    ns: &str,
    history: &History,
    limit: i32,
    in_use: impl Fn(&ControllerRevision) -> bool,
) -> Result<()> {
    let unused: Vec<&ControllerRevision> = history
        .revisions
        .iter()
        .filter(|r| r.name_any() != history.update.name_any() && !in_use(r))
        .collect();
    let excess = unused.len().saturating_sub(limit.max(0) as usize);
    let api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), ns);
    for r in unused.into_iter().take(excess) {
        util::absent_ok(api.delete(&r.name_any(), &DeleteParams::default()).await)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_round_trips_and_hashes_differ_by_collision() {
        let t: PodTemplateSpec = serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}
        }))
        .unwrap_or_default();
        let data = revision_data(&t).unwrap_or_default();
        assert_eq!(data["spec"]["template"]["$patch"], "replace");
        let rev = ControllerRevision {
            data: Some(RawExtension(data.clone())),
            ..Default::default()
        };
        assert_eq!(template_of(&rev), Some(t));
        assert_ne!(revision_hash(&data, Some(0)), revision_hash(&data, Some(1)));
        assert_eq!(revision_name("web", "abc"), "web-abc");
    }
}
