//! Bringing images in without a registry: OCI or docker archives imported into containerd's
//! CRI namespace with `ctr` (shipped with Debian's containerd).

use std::path::{Path, PathBuf};

use tokio::process::Command;

use crate::{Error, IoContext, Result};

/// meso's pause image (built by `deploy/images/build.sh`).
pub const PAUSE_IMAGE: &str = "meso.local/pause:3.10";

/// containerd namespace the CRI plugin uses.
pub const CRI_NAMESPACE: &str = "k8s.io";

/// Imports archives into the containerd at `socket`.
pub async fn import(socket: &Path, files: &[PathBuf]) -> Result<()> {
    for file in files {
        let out = Command::new("ctr")
            .arg("--address")
            .arg(socket)
            .args(["--namespace", CRI_NAMESPACE, "images", "import"])
            .arg(file)
            .output()
            .await
            .context(|| "running ctr (part of the containerd package)".into())?;
        if !out.status.success() {
            return Err(Error::Other(format!(
                "importing {}: ctr {}: {}",
                file.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        tracing::info!(file = %file.display(), output = %String::from_utf8_lossy(&out.stdout).trim(), "imported image archive");
    }
    Ok(())
}

/// Imports every `*.tar` in `dir` (as k3s does with its images directory); failures are
/// logged, not fatal.
pub async fn import_dir(socket: &Path, dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "tar"))
        .collect();
    files.sort();
    if let Err(e) = import(socket, &files).await {
        tracing::warn!(error = %e, dir = %dir.display(), "importing images");
    }
}
