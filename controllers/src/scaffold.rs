//! The one controller scaffold: a kube-rs [`Controller`] fed by shared informers, whose
//! reconcile is timed and counted, and whose errors requeue the object with a per-object
//! exponential backoff (upstream's workqueue rate limiter: 5 ms doubling up to a bound).

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use kube::runtime::controller::{Action, Controller};
use kube::Resource;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::events::Recorder;
use crate::informer::Informers;
use crate::metrics::Metrics;
use crate::util::Expectations;
use crate::Config;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error("encoding: {0}")]
    Serde(#[from] serde_json::Error),
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// The HTTP status of an API error.
    pub fn code(&self) -> Option<u16> {
        match self {
            Error::Kube(kube::Error::Api(s)) => Some(s.code),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What every reconcile sees.
pub struct Context {
    pub client: kube::Client,
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    pub informers: Informers,
    pub events: Recorder,
    /// Creations and deletions issued but not yet seen in the caches.
    pub expectations: Expectations,
    /// The cluster CA (PEM), for `kube-root-ca.crt`.
    pub root_ca: Option<String>,
    pub shutdown: CancellationToken,
    /// Pod failures (count, when the last was seen) per Job uid and per DaemonSet uid and
    /// node, for the pod recreation backoff.
    pub pod_failures: Mutex<HashMap<String, (u32, tokio::time::Instant)>>,
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    pub fn new(
        client: kube::Client,
        config: Arc<Config>,
        metrics: Arc<Metrics>,
        root_ca: Option<String>,
        shutdown: CancellationToken,
    ) -> Self {
        Context {
            informers: Informers::new(client.clone(), shutdown.clone()),
            events: Recorder::new(client.clone()),
            client,
            config,
            metrics,
            expectations: Expectations::default(),
            root_ca,
            shutdown,
            pod_failures: Mutex::default(),
            failures: Mutex::default(),
        }
    }

    /// Counts one more failure of `key`; returns the delay before the next attempt (at most
    /// `max`).
    fn backoff(&self, key: &str, max: Duration) -> Duration {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let n = f.entry(key.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        let delay = Duration::from_millis(5).saturating_mul(1u32 << (*n - 1).min(24));
        delay.min(max)
    }

    fn succeeded(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

fn key_of<K: Resource>(controller: &str, obj: &K) -> String {
    let m = obj.meta();
    format!(
        "{controller}/{}/{}",
        m.namespace.as_deref().unwrap_or(""),
        m.name.as_deref().unwrap_or("")
    )
}

/// Runs `controller` with `reconcile` until the context's shutdown token fires.
pub fn run_controller<K, F, Fut>(
    name: &'static str,
    controller: Controller<K>,
    ctx: Arc<Context>,
    reconcile: F,
) -> BoxFuture<'static, ()>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    F: Fn(Arc<K>, Arc<Context>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Action>> + Send + 'static,
{
    let max = ctx.config.max_error_backoff;
    run_controller_with_backoff(name, controller, ctx, reconcile, max)
}

/// [`run_controller`] with its own bound on the error backoff (e.g. the namespace
/// controller's one minute, as upstream).
pub fn run_controller_with_backoff<K, F, Fut>(
    name: &'static str,
    controller: Controller<K>,
    ctx: Arc<Context>,
    reconcile: F,
    max_backoff: Duration,
) -> BoxFuture<'static, ()>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    F: Fn(Arc<K>, Arc<Context>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Action>> + Send + 'static,
{
    let reconcile = Arc::new(reconcile);
    let shutdown = ctx.shutdown.clone();
    controller
        .graceful_shutdown_on(shutdown.cancelled_owned())
        .run(
            move |obj, ctx| {
                let reconcile = reconcile.clone();
                async move {
                    let key = key_of(name, obj.as_ref());
                    let started = Instant::now();
                    let result = reconcile(obj, ctx.clone()).await;
                    ctx.metrics
                        .reconciled(name, result.is_ok(), started.elapsed());
                    if result.is_ok() {
                        ctx.succeeded(&key);
                    }
                    result
                }
            },
            move |obj, err, ctx| {
                let key = key_of(name, obj.as_ref());
                let delay = ctx.backoff(&key, max_backoff);
                tracing::warn!(controller = name, object = %key, error = %err, retry_in = ?delay, "reconcile failed");
                Action::requeue(delay)
            },
            ctx,
        )
        .for_each(move |res| async move {
            if let Err(e) = res {
                tracing::debug!(controller = name, error = %e, "controller event");
            }
        })
        .boxed()
}

/// Starts every enabled controller and runs them until `shutdown`.
pub async fn run_all(ctx: Arc<Context>, shutdown: CancellationToken) -> anyhow::Result<()> {
    type Builder = fn(&Arc<Context>) -> BoxFuture<'static, ()>;
    let all: [(&str, Builder); 23] = [
        ("replicaset-controller", crate::replicaset::controller),
        ("deployment-controller", crate::deployment::controller),
        ("statefulset-controller", crate::statefulset::controller),
        ("daemonset-controller", crate::daemonset::controller),
        ("garbage-collector-controller", crate::gc::controller),
        ("job-controller", crate::job::controller),
        ("cronjob-controller", crate::cronjob::controller),
        (
            "serviceaccount-controller",
            crate::serviceaccount::controller,
        ),
        (
            "root-ca-certificate-publisher-controller",
            crate::serviceaccount::root_ca_controller,
        ),
        ("endpoints-controller", crate::endpoints::controller),
        (
            "endpointslice-controller",
            crate::endpoints::slice_controller,
        ),
        (
            "node-lifecycle-controller",
            crate::nodelifecycle::controller,
        ),
        (
            "taint-eviction-controller",
            crate::nodelifecycle::taint_eviction_controller,
        ),
        ("pod-garbage-collector-controller", crate::podgc::controller),
        ("disruption-controller", crate::disruption::controller),
        (
            "endpointslice-mirroring-controller",
            crate::endpoints::mirroring_controller,
        ),
        ("resourcequota-controller", crate::resourcequota::controller),
        (crate::namespace::NAME, crate::namespace::controller),
        (
            "persistentvolume-binder-controller",
            crate::persistentvolume::controller,
        ),
        (
            "persistentvolumeclaim-protection-controller",
            crate::volumeprotection::pvc_controller,
        ),
        (
            "persistentvolume-protection-controller",
            crate::volumeprotection::pv_controller,
        ),
        ("local-path-provisioner", crate::localpath::controller),
        (
            "horizontal-pod-autoscaler-controller",
            crate::hpa::controller,
        ),
    ];
    let mut running = Vec::new();
    for (name, build) in all {
        if ctx.config.enabled(name) {
            tracing::info!(controller = name, "starting");
            running.push(build(&ctx));
        }
    }
    // Nothing reconciles before every cache has listed once: a controller acting on a
    // half-filled cache would, e.g., create pods that already exist.
    tokio::select! {
        _ = ctx.informers.wait_ready() => {}
        _ = shutdown.cancelled() => return Ok(()),
    }
    tracing::info!("caches synced");
    futures::future::join_all(running).await;
    Ok(())
}
