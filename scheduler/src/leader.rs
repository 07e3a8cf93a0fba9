//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go's `leaderelection`:
//! acquire when the lease is free or its holder has not renewed it for the lease duration
//! (measured on the local clock from when this candidate last saw it change), renew every
//! retry period, give up after the renew deadline, release on shutdown.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use serde_json::json;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

pub struct LeaderElector {
    api: Api<Lease>,
    cfg: LeaseConfig,
    /// (holder, renewTime as written) last seen, and when it was first seen.
    observed: Option<((String, String), Instant)>,
}

fn now_micro() -> String {
    Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

impl LeaderElector {
    pub fn new(client: kube::Client, cfg: LeaseConfig) -> Self {
        LeaderElector {
            api: Api::namespaced(client, &cfg.namespace),
            cfg,
            observed: None,
        }
    }

    fn record(&self, holder: &str, transitions: i32, acquire: Option<String>) -> serde_json::Value {
        let now = now_micro();
        json!({
            "holderIdentity": holder,
            "leaseDurationSeconds": self.cfg.lease_duration.as_secs(),
            "acquireTime": acquire.unwrap_or_else(|| now.clone()),
            "renewTime": now,
            "leaseTransitions": transitions,
        })
    }

    /// One acquire-or-renew round. `Ok(true)`: this candidate holds the lease.
    async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        let current = match self.api.get_opt(&self.cfg.name).await? {
            None => {
                let lease: Lease = serde_json::from_value(json!({
                    "metadata": {"name": self.cfg.name, "namespace": self.cfg.namespace},
                    "spec": self.record(&self.cfg.identity, 0, None),
                }))
                .map_err(kube::Error::SerdeError)?;
                return match self.api.create(&PostParams::default(), &lease).await {
                    Ok(_) => Ok(true),
                    Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                    Err(e) => Err(e),
                };
            }
            Some(l) => l,
        };
        let spec = current.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let renew = serde_json::to_string(&spec.renew_time).unwrap_or_default();
        let key = (holder.clone(), renew);
        let now = Instant::now();
        let seen_at = match &self.observed {
            Some((k, t)) if *k == key => *t,
            _ => {
                self.observed = Some((key, now));
                now
            }
        };
        let duration = spec
            .lease_duration_seconds
            .map_or(self.cfg.lease_duration, |s| {
                Duration::from_secs(s.max(1) as u64)
            });
        let mine = holder == self.cfg.identity;
        if !mine && !holder.is_empty() && seen_at + duration > now {
            return Ok(false);
        }
        let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(!mine);
        let acquire = if mine {
            serde_json::to_value(&spec.acquire_time)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
        } else {
            None
        };
        let mut next = current;
        next.spec = Some(
            serde_json::from_value(self.record(&self.cfg.identity, transitions, acquire))
                .map_err(kube::Error::SerdeError)?,
        );
        match self
            .api
            .replace(&self.cfg.name, &PostParams::default(), &next)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Waits until this candidate leads (`true`) or `stop` fires (`false`).
    pub async fn acquire(&mut self, stop: &CancellationToken) -> bool {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => {
                    tracing::info!(lease = %self.cfg.name, identity = %self.cfg.identity, "acquired the leader lease");
                    return true;
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "leader election: acquiring the lease"),
            }
            tokio::select! {
                _ = stop.cancelled() => return false,
                _ = tokio::time::sleep(self.cfg.retry_period) => {}
            }
        }
    }

    /// Renews until the lease is lost (returns) or `stop` fires (releases it and returns).
    pub async fn hold(&mut self, stop: &CancellationToken) {
        let mut last_renew = Instant::now();
        loop {
            tokio::select! {
                _ = stop.cancelled() => {
                    self.release().await;
                    return;
                }
                _ = tokio::time::sleep(self.cfg.retry_period) => {}
            }
            match self.try_acquire_or_renew().await {
                Ok(true) => last_renew = Instant::now(),
                Ok(false) => {
                    tracing::warn!("leader election: the lease was taken by another candidate");
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "leader election: renewing the lease"),
            }
            if last_renew.elapsed() > self.cfg.renew_deadline {
                tracing::error!("leader election: failed to renew the lease within the deadline");
                return;
            }
        }
    }

    /// Gives the lease up so another candidate can take it at once.
    async fn release(&self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.cfg.name).await else {
            return;
        };
        let Some(spec) = lease.spec.as_mut() else {
            return;
        };
        if spec.holder_identity.as_deref() != Some(self.cfg.identity.as_str()) {
            return;
        }
        spec.holder_identity = Some(String::new());
        spec.lease_duration_seconds = Some(1);
        match self
            .api
            .replace(&self.cfg.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => tracing::info!("released the leader lease"),
            Err(e) => tracing::warn!(error = %e, "releasing the leader lease"),
        }
    }
}
