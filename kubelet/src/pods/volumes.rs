//! Pod volumes on the host: emptyDir, configMap, secret, downwardAPI, projected, hostPath and
//! PersistentVolumeClaims (and generic ephemeral volumes) bound to `hostPath` or `local`
//! volumes. Each lives under `DATA_DIR/pods/<uid>/volumes/<kind>/<name>` (hostPath and claims
//! excepted: they are the volume's own directory).

use std::collections::{BTreeMap, HashMap};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{
    DownwardAPIVolumeFile, HostPathVolumeSource, KeyToPath, PersistentVolume,
    PersistentVolumeClaim, ServiceAccount, Volume,
};
use kube::api::PostParams;
use kube::Api;
use serde_json::json;

use super::spec::{field_value, pod_resource_value, ConfigError, ContainerInputs, Sources};

/// Default file mode of configMap/secret/downwardAPI/projected files (0644).
const DEFAULT_MODE: i32 = 0o644;

/// Makes every volume of the pod and answers each one's host path.
pub async fn prepare(
    pod_dir: &Path,
    inputs: &ContainerInputs<'_>,
    sources: &mut Sources,
    client: &kube::Client,
) -> Result<HashMap<String, PathBuf>, ConfigError> {
    let mut paths = HashMap::new();
    let volumes = inputs
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.clone())
        .unwrap_or_default();
    for v in &volumes {
        let path = prepare_one(pod_dir, v, inputs, sources, client)
            .await
            .map_err(|ConfigError(e)| {
                ConfigError(format!(
                    "MountVolume.SetUp failed for volume {:?} : {e}",
                    v.name
                ))
            })?;
        paths.insert(v.name.clone(), path);
    }
    Ok(paths)
}

async fn prepare_one(
    pod_dir: &Path,
    v: &Volume,
    inputs: &ContainerInputs<'_>,
    sources: &mut Sources,
    client: &kube::Client,
) -> Result<PathBuf, ConfigError> {
    let dir = |kind: &str| pod_dir.join("volumes").join(kind).join(&v.name);
    let claim = match (&v.persistent_volume_claim, &v.ephemeral) {
        (Some(c), _) => Some(c.claim_name.clone()),
        (None, Some(_)) => Some(format!(
            "{}-{}",
            inputs.pod.metadata.name.as_deref().unwrap_or_default(),
            v.name
        )),
        (None, None) => None,
    };
    if let Some(claim) = claim {
        let namespace = inputs.pod.metadata.namespace.as_deref().unwrap_or_default();
        return claim_path(client, namespace, &claim).await;
    }
    if let Some(hp) = &v.host_path {
        return host_path(hp);
    }
    if let Some(ed) = &v.empty_dir {
        let p = dir("empty-dir");
        mkdir(&p)?;
        if ed.medium.as_deref() == Some("Memory") && !mounted(&p) {
            let size = ed.size_limit.as_ref().map(|q| format!("size={}", q.0));
            mount_tmpfs(&p, size.as_deref())?;
        }
        return Ok(p);
    }
    let mut files: BTreeMap<String, (Vec<u8>, i32)> = BTreeMap::new();
    let kind = if let Some(cm) = &v.config_map {
        let data = sources.configmap(&cm.name).await?.cloned();
        let optional = cm.optional.unwrap_or(false);
        select_keys(
            &mut files,
            data,
            &cm.items,
            cm.default_mode,
            optional,
            "configmap",
            &cm.name,
        )?;
        "configmap"
    } else if let Some(s) = &v.secret {
        let name = s.secret_name.clone().unwrap_or_default();
        let data = sources.secret(&name).await?.cloned();
        let optional = s.optional.unwrap_or(false);
        select_keys(
            &mut files,
            data,
            &s.items,
            s.default_mode,
            optional,
            "secret",
            &name,
        )?;
        "secret"
    } else if let Some(d) = &v.downward_api {
        for item in d.items.iter().flatten() {
            let mode = item.mode.or(d.default_mode).unwrap_or(DEFAULT_MODE);
            if let Some(value) = downward_item(inputs, item)? {
                files.insert(item.path.clone(), (value.into_bytes(), mode));
            }
        }
        "downward-api"
    } else if let Some(p) = &v.projected {
        for source in p.sources.iter().flatten() {
            if let Some(cm) = &source.config_map {
                // Lenient: kube-root-ca.crt has no publisher yet, so a missing one is skipped.
                let data = sources.configmap(&cm.name).await?.cloned();
                if data.is_none() {
                    tracing::debug!(configmap = %cm.name, "projected configmap missing; skipped");
                }
                select_keys(
                    &mut files,
                    data,
                    &cm.items,
                    p.default_mode,
                    true,
                    "configmap",
                    &cm.name,
                )?;
            } else if let Some(s) = &source.secret {
                let data = sources.secret(&s.name).await?.cloned();
                let optional = s.optional.unwrap_or(false);
                select_keys(
                    &mut files,
                    data,
                    &s.items,
                    p.default_mode,
                    optional,
                    "secret",
                    &s.name,
                )?;
            } else if let Some(d) = &source.downward_api {
                for item in d.items.iter().flatten() {
                    let mode = item.mode.or(p.default_mode).unwrap_or(DEFAULT_MODE);
                    if let Some(value) = downward_item(inputs, item)? {
                        files.insert(item.path.clone(), (value.into_bytes(), mode));
                    }
                }
            } else if let Some(t) = &source.service_account_token {
                let mode = p.default_mode.unwrap_or(DEFAULT_MODE);
                let token = service_account_token(
                    client,
                    inputs,
                    t.expiration_seconds,
                    t.audience.as_deref(),
                )
                .await;
                files.insert(t.path.clone(), (token.into_bytes(), mode));
            }
        }
        "projected"
    } else {
        return Err(ConfigError(
            "volume type not supported by this kubelet yet".into(),
        ));
    };
    let p = dir(kind);
    mkdir(&p)?;
    for (rel, (content, mode)) in &files {
        if rel.split('/').any(|c| c == "..") || rel.starts_with('/') {
            return Err(ConfigError(format!("invalid path {rel:?}")));
        }
        let target = p.join(rel);
        if let Some(parent) = target.parent() {
            mkdir(parent)?;
        }
        write_file(&target, content, *mode)?;
    }
    Ok(p)
}

/// The content of a downward API item: a pod field or a container resource.
fn downward_item(
    inputs: &ContainerInputs<'_>,
    item: &DownwardAPIVolumeFile,
) -> Result<Option<String>, ConfigError> {
    if let Some(f) = &item.field_ref {
        field_value(inputs, &f.field_path).map(Some)
    } else if let Some(r) = &item.resource_field_ref {
        pod_resource_value(inputs.pod, r).map(Some)
    } else {
        Ok(None)
    }
}

/// Picks the files of a configMap/secret: all keys, or the listed `items` with their paths.
fn select_keys(
    files: &mut BTreeMap<String, (Vec<u8>, i32)>,
    data: Option<BTreeMap<String, Vec<u8>>>,
    items: &Option<Vec<KeyToPath>>,
    default_mode: Option<i32>,
    optional: bool,
    what: &str,
    name: &str,
) -> Result<(), ConfigError> {
    let mode = default_mode.unwrap_or(DEFAULT_MODE);
    let Some(data) = data else {
        return if optional {
            Ok(())
        } else {
            Err(ConfigError(format!("{what} {name:?} not found")))
        };
    };
    match items {
        Some(items) if !items.is_empty() => {
            for item in items {
                match data.get(&item.key) {
                    Some(v) => {
                        files.insert(item.path.clone(), (v.clone(), item.mode.unwrap_or(mode)));
                    }
                    None if optional => {}
                    None => {
                        return Err(ConfigError(format!(
                            "configmap references non-existent config key: {}",
                            item.key
                        )))
                    }
                }
            }
        }
        _ => files.extend(data.into_iter().map(|(k, v)| (k, (v, mode)))),
    }
    Ok(())
}

/// A token from the TokenRequest API; empty (with a warning) when the API cannot issue one.
async fn service_account_token(
    client: &kube::Client,
    inputs: &ContainerInputs<'_>,
    expiration: Option<i64>,
    audience: Option<&str>,
) -> String {
    let pod = inputs.pod;
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let sa = pod
        .spec
        .as_ref()
        .and_then(|s| s.service_account_name.clone())
        .unwrap_or_else(|| "default".into());
    let request: Result<TokenRequest, _> = serde_json::from_value(json!({
        "spec": {
            "audiences": audience.map(|a| vec![a]).unwrap_or_default(),
            "expirationSeconds": expiration.unwrap_or(3607),
            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod",
                               "name": pod.metadata.name, "uid": pod.metadata.uid},
        }
    }));
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), &ns);
    let issued = match request {
        Ok(req) => api
            .create_token_request(&sa, &PostParams::default(), &req)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match issued.map(|t| t.status.and_then(|s| s.token)) {
        Ok(Some(token)) => token,
        Ok(None) => String::new(),
        Err(e) => {
            tracing::warn!(service_account = %sa, namespace = %ns, error = %e, "no service account token; mounting an empty one");
            String::new()
        }
    }
}

/// A `hostPath` volume's directory or file, created or checked as its `type` says.
fn host_path(hp: &HostPathVolumeSource) -> Result<PathBuf, ConfigError> {
    let p = PathBuf::from(&hp.path);
    match hp.type_.as_deref() {
        Some("DirectoryOrCreate") => mkdir(&p)?,
        Some("FileOrCreate") if !p.exists() => {
            if let Some(parent) = p.parent() {
                mkdir(parent)?;
            }
            write_file(&p, b"", DEFAULT_MODE)?;
        }
        Some("Directory") if !p.is_dir() => {
            return Err(ConfigError(format!(
                "hostPath {} is not a directory",
                hp.path
            )))
        }
        Some("File") if !p.is_file() => {
            return Err(ConfigError(format!("hostPath {} is not a file", hp.path)))
        }
        _ => {}
    }
    Ok(p)
}

/// The host directory of a claim's volume: the claim must be bound (`Bound`, with
/// `spec.volumeName`) to a `hostPath` or `local` PersistentVolume. A claim not bound yet is an
/// error the pod worker retries on its next sync.
async fn claim_path(
    client: &kube::Client,
    namespace: &str,
    claim: &str,
) -> Result<PathBuf, ConfigError> {
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    let pvc = claims
        .get_opt(claim)
        .await
        .map_err(|e| ConfigError(format!("getting persistentvolumeclaim {claim:?}: {e}")))?
        .ok_or_else(|| ConfigError(format!("persistentvolumeclaim {claim:?} not found")))?;
    let bound = pvc.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
    let volume = pvc
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.as_deref())
        .filter(|v| !v.is_empty());
    let Some(volume) = volume.filter(|_| bound) else {
        return Err(ConfigError(format!(
            "error processing PVC {namespace}/{claim}: PVC is not bound"
        )));
    };
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    let pv = volumes
        .get_opt(volume)
        .await
        .map_err(|e| ConfigError(format!("getting persistentvolume {volume:?}: {e}")))?
        .ok_or_else(|| ConfigError(format!("persistentvolume {volume:?} not found")))?;
    let spec = pv.spec.unwrap_or_default();
    if let Some(hp) = &spec.host_path {
        return host_path(hp);
    }
    if let Some(local) = &spec.local {
        let p = PathBuf::from(&local.path);
        if !p.exists() {
            return Err(ConfigError(format!("path {:?} does not exist", local.path)));
        }
        return Ok(p);
    }
    Err(ConfigError(format!(
        "persistentvolume {volume:?}: only hostPath and local volumes can be mounted on this node"
    )))
}

fn mkdir(p: &Path) -> Result<(), ConfigError> {
    std::fs::create_dir_all(p).map_err(|e| ConfigError(format!("creating {}: {e}", p.display())))
}

/// Writes through a temporary file and a rename, so readers never see half a file.
fn write_file(p: &Path, content: &[u8], mode: i32) -> Result<(), ConfigError> {
    let tmp = p.with_extension("meso-tmp");
    std::fs::write(&tmp, content)
        .and_then(|_| {
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode as u32 & 0o7777))
        })
        .and_then(|_| std::fs::rename(&tmp, p))
        .map_err(|e| ConfigError(format!("writing {}: {e}", p.display())))
}

/// The `/etc/hosts` of a pod.
pub fn write_hosts_file(path: &Path, pod_ip: &str, hostname: &str) -> Result<(), ConfigError> {
    let text = format!(
        "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n\
         {pod_ip}\t{hostname}\n"
    );
    if let Some(parent) = path.parent() {
        mkdir(parent)?;
    }
    write_file(path, text.as_bytes(), DEFAULT_MODE)
}

/// Mount points under `dir`, deepest first.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let table = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let mut found: Vec<PathBuf> = table
        .lines()
        .filter_map(|l| l.split(' ').nth(1))
        .map(|m| PathBuf::from(m.replace("\\040", " ")))
        .filter(|m| m.starts_with(dir))
        .collect();
    found.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    found
}

fn mounted(dir: &Path) -> bool {
    mounts_under(dir).iter().any(|m| m == dir)
}

/// Mounts a tmpfs (emptyDir with medium Memory); `size` is a Kubernetes quantity.
fn mount_tmpfs(dir: &Path, size: Option<&str>) -> Result<(), ConfigError> {
    let err = |e: String| ConfigError(format!("mounting tmpfs on {}: {e}", dir.display()));
    let target = CString::new(dir.as_os_str().as_bytes()).map_err(|e| err(e.to_string()))?;
    let options = size.map(|s| s.replace("Ki", "k").replace("Mi", "m").replace("Gi", "g"));
    let data = CString::new(options.unwrap_or_default()).map_err(|e| err(e.to_string()))?;
    // SAFETY: all pointers are NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::mount(
            c"tmpfs".as_ptr(),
            target.as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            data.as_ptr().cast(),
        )
    };
    if rc != 0 {
        return Err(err(std::io::Error::last_os_error().to_string()));
    }
    Ok(())
}

/// Removes a pod's directory after unmounting what is mounted under it (best effort; logged
/// on failure).
pub fn remove_pod_dir(dir: &Path) {
    for m in mounts_under(dir) {
        let Ok(c) = CString::new(m.as_os_str().as_bytes()) else {
            continue;
        };
        // SAFETY: a NUL-terminated path.
        if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } != 0 {
            tracing::warn!(mount = %m.display(), error = %std::io::Error::last_os_error(), "unmounting");
        }
    }
    if let Err(e) = std::fs::remove_dir_all(dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(dir = %dir.display(), error = %e, "removing the pod directory");
        }
    }
}
