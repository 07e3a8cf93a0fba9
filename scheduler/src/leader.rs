//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go's `leaderelection`:
//! take the lease when it is free or its holder has not renewed it for the lease duration
//! (on the local clock, from when this candidate last saw it change), renew every retry
//! period, give up after the renew deadline, release it on shutdown. The scheduler and the
//! controller manager both elect their leader with it.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};
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

/// `hostname_<unique suffix>`, as upstream.
pub fn default_identity() -> String {
    let host = crate::component::hostname();
    let nanos = k8s_openapi::jiff::Timestamp::now().as_nanosecond();
    format!("{host}_{:x}{:x}", std::process::id(), nanos & 0xffff_ffff)
}

pub struct LeaderElector {
    api: Api<Lease>,
    cfg: LeaseConfig,
    /// (holder, renewTime) last seen and when this candidate first saw it.
    observed: Option<((String, Option<MicroTime>), Instant)>,
}

impl LeaderElector {
    pub fn new(client: kube::Client, cfg: LeaseConfig) -> Self {
        LeaderElector {
            api: Api::namespaced(client, &cfg.namespace),
            cfg,
            observed: None,
        }
    }

    fn spec(&self, transitions: i32, acquired: Option<MicroTime>) -> LeaseSpec {
        let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
        LeaseSpec {
            holder_identity: Some(self.cfg.identity.clone()),
            lease_duration_seconds: Some(self.cfg.lease_duration.as_secs().max(1) as i32),
            acquire_time: Some(acquired.unwrap_or_else(|| now.clone())),
            renew_time: Some(now),
            lease_transitions: Some(transitions),
            ..Default::default()
        }
    }

    /// One acquire-or-renew round; `Ok(true)` when this candidate holds the lease.
    async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.cfg.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.cfg.name.clone()),
                    namespace: Some(self.cfg.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(self.spec(0, None)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let key = (holder.clone(), spec.renew_time.clone());
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
        lease.spec = Some(self.spec(transitions, if mine { spec.acquire_time } else { None }));
        match self
            .api
            .replace(&self.cfg.name, &PostParams::default(), &lease)
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

    /// Gives the lease up so that another candidate can take it at once (if this candidate
    /// still holds it).
    pub async fn release(&self) {
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
