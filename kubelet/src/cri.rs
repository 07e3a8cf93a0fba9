//! CRI (`runtime.v1`) client over containerd's unix socket.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use hyper_util::rt::TokioIo;
use k8s_cri::v1 as api;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::{Error, Result};

/// CRI labels that tie sandboxes and containers to their pod (as the upstream kubelet's).
pub const LABEL_POD_UID: &str = "io.kubernetes.pod.uid";
pub const LABEL_POD_NAME: &str = "io.kubernetes.pod.name";
pub const LABEL_POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const LABEL_CONTAINER_NAME: &str = "io.kubernetes.container.name";

/// How long a freshly started runtime may take until CRI answers `Version`.
const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A cloneable CRI client (runtime and image services on one channel).
#[derive(Clone)]
pub struct Cri {
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
}

fn cri_err(call: &'static str) -> impl FnOnce(tonic::Status) -> Error {
    move |status| Error::Cri { call, status }
}

impl Cri {
    /// Connects to a unix socket and checks the runtime answers `Version`.
    pub async fn connect(socket: &Path) -> Result<Self> {
        let path: PathBuf = socket.to_path_buf();
        let connect_err = |message: String| Error::Connect {
            endpoint: socket.display().to_string(),
            message,
        };
        let channel = Endpoint::try_from("http://[::]:50051")
            .map_err(|e| connect_err(e.to_string()))?
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move {
                    let stream = tokio::net::UnixStream::connect(path).await?;
                    Ok::<_, std::io::Error>(TokioIo::new(stream))
                }
            }))
            .await
            .map_err(|e| connect_err(e.to_string()))?;
        let cri = Self {
            runtime: RuntimeServiceClient::new(channel.clone()),
            images: ImageServiceClient::new(channel),
        };
        // containerd opens its socket before the CRI plugin has initialized.
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        let v = loop {
            match cri.version().await {
                Ok(v) => break v,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing::debug!(error = %e, "waiting for the CRI service");
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
                Err(e) => return Err(e),
            }
        };
        tracing::info!(runtime = %v.runtime_name, version = %v.runtime_version, api = %v.runtime_api_version, "connected to the container runtime");
        Ok(cri)
    }

    pub async fn version(&self) -> Result<api::VersionResponse> {
        let req = api::VersionRequest {
            version: "v1".into(),
        };
        Ok(self
            .runtime
            .clone()
            .version(req)
            .await
            .map_err(cri_err("Version"))?
            .into_inner())
    }

    /// Sandboxes, optionally only those of one pod.
    pub async fn list_sandboxes(&self, pod_uid: Option<&str>) -> Result<Vec<api::PodSandbox>> {
        let filter = pod_uid.map(|uid| api::PodSandboxFilter {
            label_selector: HashMap::from([(LABEL_POD_UID.to_string(), uid.to_string())]),
            ..Default::default()
        });
        let req = api::ListPodSandboxRequest { filter };
        Ok(self
            .runtime
            .clone()
            .list_pod_sandbox(req)
            .await
            .map_err(cri_err("ListPodSandbox"))?
            .into_inner()
            .items)
    }

    pub async fn sandbox_status(&self, id: &str) -> Result<Option<api::PodSandboxStatus>> {
        let req = api::PodSandboxStatusRequest {
            pod_sandbox_id: id.into(),
            verbose: false,
        };
        match self.runtime.clone().pod_sandbox_status(req).await {
            Ok(r) => Ok(r.into_inner().status),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Err(cri_err("PodSandboxStatus")(s)),
        }
    }

    pub async fn run_sandbox(&self, config: api::PodSandboxConfig) -> Result<String> {
        let req = api::RunPodSandboxRequest {
            config: Some(config),
            runtime_handler: String::new(),
        };
        Ok(self
            .runtime
            .clone()
            .run_pod_sandbox(req)
            .await
            .map_err(cri_err("RunPodSandbox"))?
            .into_inner()
            .pod_sandbox_id)
    }

    /// Stops a sandbox (its containers and network), keeping it and its exited containers
    /// so their status and logs stay readable; a sandbox that is already gone is fine.
    pub async fn stop_sandbox(&self, id: &str) -> Result<()> {
        let stop = api::StopPodSandboxRequest {
            pod_sandbox_id: id.into(),
        };
        ignore_not_found(
            self.runtime.clone().stop_pod_sandbox(stop).await,
            "StopPodSandbox",
        )
    }

    /// Stops and removes a sandbox; a sandbox that is already gone is fine.
    pub async fn remove_sandbox(&self, id: &str) -> Result<()> {
        self.stop_sandbox(id).await?;
        let mut rt = self.runtime.clone();
        let remove = api::RemovePodSandboxRequest {
            pod_sandbox_id: id.into(),
        };
        ignore_not_found(rt.remove_pod_sandbox(remove).await, "RemovePodSandbox")
    }

    /// Containers, optionally only those of one pod.
    pub async fn list_containers(&self, pod_uid: Option<&str>) -> Result<Vec<api::Container>> {
        let filter = pod_uid.map(|uid| api::ContainerFilter {
            label_selector: HashMap::from([(LABEL_POD_UID.to_string(), uid.to_string())]),
            ..Default::default()
        });
        let req = api::ListContainersRequest { filter };
        Ok(self
            .runtime
            .clone()
            .list_containers(req)
            .await
            .map_err(cri_err("ListContainers"))?
            .into_inner()
            .containers)
    }

    /// Resource usage of every container the runtime has stats for.
    pub async fn list_container_stats(&self) -> Result<Vec<api::ContainerStats>> {
        let req = api::ListContainerStatsRequest { filter: None };
        Ok(self
            .runtime
            .clone()
            .list_container_stats(req)
            .await
            .map_err(cri_err("ListContainerStats"))?
            .into_inner()
            .stats)
    }

    pub async fn container_status(&self, id: &str) -> Result<Option<api::ContainerStatus>> {
        let req = api::ContainerStatusRequest {
            container_id: id.into(),
            verbose: false,
        };
        match self.runtime.clone().container_status(req).await {
            Ok(r) => Ok(r.into_inner().status),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Err(cri_err("ContainerStatus")(s)),
        }
    }

    /// Creates and starts a container; `sandbox_config` is required by containerd 1.6.
    pub async fn create_and_start(
        &self,
        sandbox_id: &str,
        config: api::ContainerConfig,
        sandbox_config: api::PodSandboxConfig,
    ) -> Result<String> {
        let mut rt = self.runtime.clone();
        let req = api::CreateContainerRequest {
            pod_sandbox_id: sandbox_id.into(),
            config: Some(config),
            sandbox_config: Some(sandbox_config),
        };
        let id = rt
            .create_container(req)
            .await
            .map_err(cri_err("CreateContainer"))?
            .into_inner()
            .container_id;
        let start = api::StartContainerRequest {
            container_id: id.clone(),
        };
        if let Err(s) = rt.start_container(start).await {
            let _ = self.remove_container(&id).await;
            return Err(cri_err("StartContainer")(s));
        }
        Ok(id)
    }

    /// Stops a container: the runtime sends the stop signal and kills after `timeout_secs`.
    pub async fn stop_container(&self, id: &str, timeout_secs: i64) -> Result<()> {
        let req = api::StopContainerRequest {
            container_id: id.into(),
            timeout: timeout_secs,
        };
        ignore_not_found(
            self.runtime.clone().stop_container(req).await,
            "StopContainer",
        )
    }

    /// Runs a command in a running container and waits for it (`timeout_secs` 0: no limit).
    pub async fn exec_sync(
        &self,
        id: &str,
        cmd: Vec<String>,
        timeout_secs: i64,
    ) -> Result<api::ExecSyncResponse> {
        let req = api::ExecSyncRequest {
            container_id: id.into(),
            cmd,
            timeout: timeout_secs,
        };
        Ok(self
            .runtime
            .clone()
            .exec_sync(req)
            .await
            .map_err(cri_err("ExecSync"))?
            .into_inner())
    }

    pub async fn remove_container(&self, id: &str) -> Result<()> {
        let req = api::RemoveContainerRequest {
            container_id: id.into(),
        };
        ignore_not_found(
            self.runtime.clone().remove_container(req).await,
            "RemoveContainer",
        )
    }

    /// A single-use URL of the runtime's streaming server running a command in a container.
    pub async fn exec_url(&self, req: api::ExecRequest) -> Result<String> {
        Ok(self
            .runtime
            .clone()
            .exec(req)
            .await
            .map_err(cri_err("Exec"))?
            .into_inner()
            .url)
    }

    /// A single-use URL of the runtime's streaming server attached to a container's streams.
    pub async fn attach_url(&self, req: api::AttachRequest) -> Result<String> {
        Ok(self
            .runtime
            .clone()
            .attach(req)
            .await
            .map_err(cri_err("Attach"))?
            .into_inner()
            .url)
    }

    /// A single-use URL of the runtime's streaming server forwarding ports of a sandbox.
    pub async fn port_forward_url(&self, req: api::PortForwardRequest) -> Result<String> {
        Ok(self
            .runtime
            .clone()
            .port_forward(req)
            .await
            .map_err(cri_err("PortForward"))?
            .into_inner()
            .url)
    }

    /// The image's status, `None` when it is not present (CRI answers OK with no image).
    pub async fn image_status(&self, image: &str) -> Result<Option<api::Image>> {
        let req = api::ImageStatusRequest {
            image: Some(image_spec(image)),
            verbose: false,
        };
        Ok(self
            .images
            .clone()
            .image_status(req)
            .await
            .map_err(cri_err("ImageStatus"))?
            .into_inner()
            .image)
    }

    pub async fn pull_image(
        &self,
        image: &str,
        auth: Option<api::AuthConfig>,
        sandbox_config: api::PodSandboxConfig,
    ) -> Result<String> {
        let req = api::PullImageRequest {
            image: Some(image_spec(image)),
            auth,
            sandbox_config: Some(sandbox_config),
        };
        Ok(self
            .images
            .clone()
            .pull_image(req)
            .await
            .map_err(cri_err("PullImage"))?
            .into_inner()
            .image_ref)
    }
}

fn image_spec(image: &str) -> api::ImageSpec {
    api::ImageSpec {
        image: image.into(),
        ..Default::default()
    }
}

fn ignore_not_found<T>(r: Result<T, tonic::Status>, call: &'static str) -> Result<()> {
    match r {
        Ok(_) => Ok(()),
        Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
        Err(s) => Err(cri_err(call)(s)),
    }
}
