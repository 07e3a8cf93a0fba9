//! The node's side of local-path volumes (the `rancher.io/local-path` provisioner in the
//! controller manager makes `hostPath` PersistentVolumes at
//! `<dir>/pvc-<uid>_<namespace>_<name>`, `<dir>` being what this node announces in its
//! [`ANN_NODE_DIR`] annotation). A pod mounting such a volume creates its directory
//! (`DirectoryOrCreate`); once the volume is deleted (reclaim policy `Delete`), this sweeper
//! removes the directory and its data.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::PersistentVolume;
use kube::api::{Api, ListParams};
use tokio_util::sync::CancellationToken;

/// The node annotation naming its local-path directory.
pub const ANN_NODE_DIR: &str = "storage.meso.io/local-path-dir";
/// How often the directory is swept.
const PERIOD: Duration = Duration::from_secs(15);

/// Sweeps `dir` every [`PERIOD`] until `shutdown`.
pub async fn run(client: kube::Client, dir: PathBuf, shutdown: CancellationToken) {
    loop {
        if let Err(e) = sweep(&client, &dir).await {
            tracing::warn!(dir = %dir.display(), error = %e, "sweeping local-path volumes");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(PERIOD) => {}
        }
    }
}

/// The volume directories in `dir`: (volume name, path) of every `pvc-…_<ns>_<name>` entry.
fn volume_dirs(dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let (volume, _) = name.split_once('_')?;
            volume
                .starts_with("pvc-")
                .then(|| (volume.to_string(), e.path()))
        })
        .collect()
}

/// The directories whose volume is gone: neither a volume of that name nor one whose
/// `hostPath`/`local` path is the directory exists.
fn stale(
    dirs: Vec<(String, PathBuf)>,
    names: &HashSet<String>,
    paths: &HashSet<PathBuf>,
) -> Vec<PathBuf> {
    dirs.into_iter()
        .filter(|(volume, path)| !names.contains(volume) && !paths.contains(path))
        .map(|(_, path)| path)
        .collect()
}

/// Removes the directories of `dir` whose volume no longer exists; answers what it removed.
/// The directory is read before the volumes are listed: a directory is only made for an
/// existing volume, so one seen here that the later list lacks was deleted.
pub async fn sweep(client: &kube::Client, dir: &Path) -> Result<Vec<PathBuf>, kube::Error> {
    let dirs = volume_dirs(dir);
    if dirs.is_empty() {
        return Ok(Vec::new());
    }
    let api: Api<PersistentVolume> = Api::all(client.clone());
    let volumes = api.list(&ListParams::default()).await?.items;
    let names: HashSet<String> = volumes
        .iter()
        .filter_map(|v| v.metadata.name.clone())
        .collect();
    let paths: HashSet<PathBuf> = volumes
        .iter()
        .filter_map(|v| v.spec.as_ref())
        .filter_map(|s| {
            s.host_path
                .as_ref()
                .map(|h| h.path.clone())
                .or_else(|| s.local.as_ref().map(|l| l.path.clone()))
        })
        .map(PathBuf::from)
        .collect();
    let mut removed = Vec::new();
    for path in stale(dirs, &names, &paths) {
        match std::fs::remove_dir_all(&path) {
            Ok(()) => {
                tracing::info!(dir = %path.display(), "removed the directory of a deleted local-path volume");
                removed.push(path);
            }
            Err(e) => {
                tracing::warn!(dir = %path.display(), error = %e, "removing a local-path volume")
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_directories_of_missing_volumes_are_stale() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let root = tmp.path();
        for d in [
            "pvc-live_default_data",
            "pvc-gone_default_data",
            "pvc-used_ns_x",
            "other",
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap_or_else(|e| panic!("{d}: {e}"));
        }
        std::fs::write(root.join("pvc-file_ns_x"), b"").unwrap_or_else(|e| panic!("file: {e}"));
        let mut dirs = volume_dirs(root);
        dirs.sort();
        let found: Vec<&str> = dirs.iter().map(|(v, _)| v.as_str()).collect();
        assert_eq!(found, ["pvc-gone", "pvc-live", "pvc-used"]);
        let names = HashSet::from(["pvc-live".to_string()]);
        let paths = HashSet::from([root.join("pvc-used_ns_x")]);
        assert_eq!(
            stale(dirs, &names, &paths),
            vec![root.join("pvc-gone_default_data")]
        );
    }
}
