//! The scheduling queue: one priority order (priority, then creation time) over pods ready to
//! try, pods backing off after a failure, and unschedulable pods parked until a cluster event
//! may help them. Pods with `spec.schedulingGates` wait, never attempted, until their gates go
//! (upstream's PreEnqueue `SchedulingGates` plugin).

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::cache::ClusterEvent;
use crate::model::PodInfo;

pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// An unschedulable pod no event woke is retried after this long anyway
/// (upstream's `podMaxInUnschedulablePodsDuration`), checked every `LEFTOVER_PERIOD`.
pub const MAX_UNSCHEDULABLE: Duration = Duration::from_secs(300);
const LEFTOVER_PERIOD: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Where {
    Active,
    Backoff,
    Unschedulable,
    InFlight,
    /// Has scheduling gates: not attempted until they are removed.
    Gated,
}

struct Entry {
    info: Arc<PodInfo>,
    at: Where,
    attempts: u32,
    backoff_until: Instant,
    /// Plugins that rejected the pod last time (decides which events wake it).
    rejected_by: Vec<&'static str>,
    seq: u64,
    /// When it last became unschedulable.
    parked_at: Instant,
}

/// Heap order: higher priority first, then older first.
struct Ready {
    priority: i32,
    created: Option<Time>,
    seq: u64,
    uid: String,
}

impl Ord for Ready {
    fn cmp(&self, o: &Self) -> Ordering {
        self.priority
            .cmp(&o.priority)
            .then_with(|| o.created.cmp(&self.created))
            .then_with(|| o.seq.cmp(&self.seq))
    }
}
impl PartialOrd for Ready {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl PartialEq for Ready {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Ready {}

#[derive(Default)]
struct Inner {
    pods: HashMap<String, Entry>,
    active: BinaryHeap<Ready>,
    /// The uids in `Backoff` and in `Unschedulable`, so that neither a pop nor a cluster
    /// event walks every pending pod.
    backoff: HashSet<String>,
    unschedulable: HashSet<String>,
    seq: u64,
    /// Bumped by every cluster event; a pod failing after an event it may have missed
    /// backs off instead of parking.
    move_cycle: u64,
    /// The last sweep for unschedulable leftovers.
    leftover_check: Option<Instant>,
}

/// A popped pod: schedule it, then report back with [`Queue::done`] or [`Queue::failed`].
pub struct Popped {
    pub info: Arc<PodInfo>,
    pub cycle: u64,
    pub attempts: u32,
}

#[derive(Default)]
pub struct Queue {
    inner: Mutex<Inner>,
    notify: Notify,
}

/// Pending pod counts by sub-queue: `(active, backoff, unschedulable, gated)`.
pub type PendingCounts = (usize, usize, usize, usize);

impl Inner {
    fn push_active(&mut self, uid: &str) {
        let Some(e) = self.pods.get_mut(uid) else {
            return;
        };
        self.seq += 1;
        e.seq = self.seq;
        let was = std::mem::replace(&mut e.at, Where::Active);
        self.active.push(Ready {
            priority: e.info.priority,
            created: e.info.created.clone(),
            seq: self.seq,
            uid: uid.to_string(),
        });
        self.left(uid, was);
    }

    /// Moves a pod to `Backoff`, `Unschedulable`, `Gated` or `InFlight` (not `Active`: that
    /// is [`push_active`](Self::push_active)).
    fn set_at(&mut self, uid: &str, at: Where) {
        let Some(e) = self.pods.get_mut(uid) else {
            return;
        };
        let was = std::mem::replace(&mut e.at, at);
        if at == Where::Unschedulable {
            e.parked_at = Instant::now();
        }
        self.left(uid, was);
        match at {
            Where::Backoff => self.backoff.insert(uid.to_string()),
            Where::Unschedulable => self.unschedulable.insert(uid.to_string()),
            _ => false,
        };
    }

    /// Bookkeeping for a pod leaving `was`.
    fn left(&mut self, uid: &str, was: Where) {
        match was {
            Where::Backoff => self.backoff.remove(uid),
            Where::Unschedulable => self.unschedulable.remove(uid),
            _ => false,
        };
    }

    fn remove(&mut self, uid: &str) {
        if let Some(e) = self.pods.remove(uid) {
            self.left(uid, e.at);
        }
    }

    /// Moves expired backoffs to active; returns the next expiry.
    fn flush_backoff(&mut self, now: Instant) -> Option<Instant> {
        if self.backoff.is_empty() {
            return None;
        }
        let mut next: Option<Instant> = None;
        let mut ready = Vec::new();
        for uid in &self.backoff {
            let Some(e) = self.pods.get(uid) else {
                continue;
            };
            if e.backoff_until <= now {
                ready.push(uid.clone());
            } else {
                next = Some(next.map_or(e.backoff_until, |n| n.min(e.backoff_until)));
            }
        }
        for uid in ready {
            self.push_active(&uid);
        }
        next
    }

    /// Every `LEFTOVER_PERIOD`, wakes pods unschedulable for longer than
    /// `MAX_UNSCHEDULABLE`; returns when to look again.
    fn flush_leftovers(&mut self, now: Instant) -> Option<Instant> {
        if self.unschedulable.is_empty() {
            return None;
        }
        let last = *self.leftover_check.get_or_insert(now);
        if now < last + LEFTOVER_PERIOD {
            return Some(last + LEFTOVER_PERIOD);
        }
        self.leftover_check = Some(now);
        let stale: Vec<String> = self
            .unschedulable
            .iter()
            .filter(|uid| {
                self.pods
                    .get(*uid)
                    .is_some_and(|e| e.parked_at + MAX_UNSCHEDULABLE <= now)
            })
            .cloned()
            .collect();
        for uid in stale {
            self.wake(&uid, now);
        }
        Some(now + LEFTOVER_PERIOD)
    }

    fn wake(&mut self, uid: &str, now: Instant) {
        let Some(e) = self.pods.get_mut(uid) else {
            return;
        };
        if e.backoff_until > now {
            self.set_at(uid, Where::Backoff);
        } else {
            self.push_active(uid);
        }
    }
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A pending pod was added or changed. A gated pod waits; a pod whose gates were just
    /// removed (or whose spec changed while unschedulable) is tried again.
    pub fn upsert(&self, info: Arc<PodInfo>) {
        let mut q = self.lock();
        let uid = info.uid.clone();
        let gated = info.gated;
        let wake = match q.pods.get_mut(&uid) {
            Some(e) => {
                let changed = updated(&e.info, &info);
                e.info = info;
                let at = e.at;
                match at {
                    Where::Gated if !gated => {
                        q.push_active(&uid);
                        true
                    }
                    Where::Unschedulable if !gated && changed => {
                        q.wake(&uid, Instant::now());
                        true
                    }
                    _ => false,
                }
            }
            None => {
                q.pods.insert(
                    uid.clone(),
                    Entry {
                        info,
                        at: Where::Gated,
                        attempts: 0,
                        backoff_until: Instant::now(),
                        rejected_by: Vec::new(),
                        seq: 0,
                        parked_at: Instant::now(),
                    },
                );
                if !gated {
                    q.push_active(&uid);
                }
                !gated
            }
        };
        drop(q);
        if wake {
            self.notify.notify_one();
        }
    }

    /// The pod was bound or deleted: no longer pending.
    pub fn remove(&self, uid: &str) {
        self.lock().remove(uid);
    }

    /// The gated pods waiting (for reporting their condition).
    pub fn gated(&self) -> Vec<Arc<PodInfo>> {
        self.lock()
            .pods
            .values()
            .filter(|e| e.at == Where::Gated)
            .map(|e| e.info.clone())
            .collect()
    }

    pub fn contains(&self, uid: &str) -> bool {
        self.lock().pods.contains_key(uid)
    }

    /// Waits for the next pod to schedule (or `None` when `stop` is cancelled).
    pub async fn pop(&self, stop: &tokio_util::sync::CancellationToken) -> Option<Popped> {
        loop {
            let next_backoff = {
                let mut q = self.lock();
                let now = Instant::now();
                let next = match (q.flush_backoff(now), q.flush_leftovers(now)) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                while let Some(r) = q.active.pop() {
                    let cycle = q.move_cycle;
                    let Some(e) = q.pods.get_mut(&r.uid) else {
                        continue;
                    };
                    if e.at != Where::Active || e.seq != r.seq {
                        continue;
                    }
                    e.at = Where::InFlight;
                    let popped = Popped {
                        info: e.info.clone(),
                        cycle,
                        attempts: e.attempts,
                    };
                    return Some(popped);
                }
                next
            };
            let sleep = async {
                match next_backoff {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = stop.cancelled() => return None,
                _ = self.notify.notified() => {}
                _ = sleep => {}
            }
        }
    }

    /// The pod was assumed on a node and is being bound.
    pub fn done(&self, uid: &str) {
        self.remove(uid);
    }

    /// The attempt failed: back off, then wait for a helpful event (or retry after the
    /// backoff if an event came while the pod was in flight, or if it was an error).
    pub fn failed(&self, p: &Popped, rejected_by: Vec<&'static str>, error: bool) {
        let mut q = self.lock();
        let missed_event = q.move_cycle > p.cycle;
        let Some(e) = q.pods.get_mut(&p.info.uid) else {
            return;
        };
        e.attempts += 1;
        let backoff = INITIAL_BACKOFF
            .saturating_mul(1u32 << (e.attempts - 1).min(16))
            .min(MAX_BACKOFF);
        e.backoff_until = Instant::now() + backoff;
        e.rejected_by = rejected_by;
        let at = if missed_event || error {
            Where::Backoff
        } else {
            Where::Unschedulable
        };
        q.set_at(&p.info.uid, at);
        drop(q);
        self.notify.notify_one();
    }

    /// A bound pod's binding failed: try it again after its backoff.
    pub fn requeue(&self, info: Arc<PodInfo>) {
        let mut q = self.lock();
        let uid = info.uid.clone();
        let e = q.pods.entry(uid.clone()).or_insert(Entry {
            info,
            at: Where::InFlight,
            attempts: 0,
            backoff_until: Instant::now(),
            rejected_by: Vec::new(),
            seq: 0,
            parked_at: Instant::now(),
        });
        e.attempts += 1;
        e.backoff_until = Instant::now() + INITIAL_BACKOFF;
        q.set_at(&uid, Where::Backoff);
        drop(q);
        self.notify.notify_one();
    }

    /// A cluster event: wakes the unschedulable pods it may help.
    pub fn on_event(&self, ev: ClusterEvent) {
        let mut q = self.lock();
        q.move_cycle += 1;
        if q.unschedulable.is_empty() {
            return;
        }
        let now = Instant::now();
        let wake: Vec<String> = q
            .unschedulable
            .iter()
            .filter(|uid| q.pods.get(*uid).is_some_and(|e| helps(ev, &e.rejected_by)))
            .cloned()
            .collect();
        if wake.is_empty() {
            return;
        }
        for uid in &wake {
            q.wake(uid, now);
        }
        drop(q);
        self.notify.notify_one();
    }

    pub fn pending(&self) -> PendingCounts {
        let q = self.lock();
        let gated = q.pods.values().filter(|e| e.at == Where::Gated).count();
        let (backoff, unschedulable) = (q.backoff.len(), q.unschedulable.len());
        (
            q.pods.len() - gated - backoff - unschedulable,
            backoff,
            unschedulable,
            gated,
        )
    }
}

/// `isPodUpdated`: a change other than to the status (such as the scheduler's own
/// `PodScheduled` condition) may make an unschedulable pod fit.
fn updated(old: &PodInfo, new: &PodInfo) -> bool {
    let (o, n) = (&old.pod.metadata, &new.pod.metadata);
    old.pod.spec != new.pod.spec || o.labels != n.labels || o.annotations != n.annotations
}

/// Upstream's queueing hints, coarsely: node changes may help anyone; a new bound pod only
/// helps pods waiting on pod (anti-)affinity or spreading; a deleted pod may free anything;
/// claims, volumes and classes help pods the volume plugins rejected.
fn helps(ev: ClusterEvent, rejected_by: &[&'static str]) -> bool {
    match ev {
        ClusterEvent::NodeAdd | ClusterEvent::NodeUpdate | ClusterEvent::AssignedPodDelete => true,
        ClusterEvent::AssignedPodAdd => rejected_by
            .iter()
            .any(|p| matches!(*p, "InterPodAffinity" | "PodTopologySpread")),
        ClusterEvent::VolumeChange => rejected_by
            .iter()
            .any(|p| matches!(*p, "VolumeBinding" | "VolumeZone" | "VolumeRestrictions")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::pod;
    use serde_json::json;
    use tokio_util::sync::CancellationToken;

    #[tokio::test]
    async fn priority_order_then_event_wakes_unschedulable() {
        let q = Queue::default();
        q.upsert(pod("low", json!({}), json!({"priority": 1})));
        q.upsert(pod("high", json!({}), json!({"priority": 100})));
        let stop = CancellationToken::new();
        let first = q.pop(&stop).await;
        assert_eq!(first.as_ref().map(|p| p.info.name.as_str()), Some("high"));
        let Some(first) = first else { return };
        q.failed(&first, vec!["NodeResourcesFit"], false);
        assert_eq!(
            q.pop(&stop).await.map(|p| p.info.name.clone()).as_deref(),
            Some("low")
        );
        assert_eq!(q.pending(), (1, 0, 1, 0));
        // A new pod does not help a resources failure; a node does (after the backoff).
        q.on_event(ClusterEvent::AssignedPodAdd);
        assert_eq!(q.pending(), (1, 0, 1, 0));
        q.on_event(ClusterEvent::NodeAdd);
        assert_eq!(q.pending(), (1, 1, 0, 0));
        let again = q.pop(&stop).await;
        assert_eq!(again.map(|p| p.info.name.clone()).as_deref(), Some("high"));
    }

    #[tokio::test]
    async fn only_spec_or_label_changes_wake_an_unschedulable_pod() {
        let q = Queue::default();
        q.upsert(pod("p", json!({}), json!({})));
        let stop = CancellationToken::new();
        let Some(p) = q.pop(&stop).await else {
            panic!("nothing popped")
        };
        q.failed(&p, vec!["NodeResourcesFit"], false);
        let mut with_status = p.info.pod.clone();
        with_status.status = serde_json::from_value(json!({"conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}))
        .ok();
        q.upsert(PodInfo::new(with_status));
        assert_eq!(q.pending(), (0, 0, 1, 0));
        q.upsert(pod("p", json!({"tier": "x"}), json!({})));
        assert_eq!(q.pending(), (0, 1, 0, 0));
    }

    #[tokio::test]
    async fn unschedulable_leftovers_are_retried_after_five_minutes() {
        let q = Queue::default();
        q.upsert(pod("p", json!({}), json!({})));
        let stop = CancellationToken::new();
        let Some(p) = q.pop(&stop).await else {
            panic!("nothing popped")
        };
        q.failed(&p, vec!["NodeResourcesFit"], false);
        {
            let mut inner = q.lock();
            let now = Instant::now();
            // The first sweep only starts the clock; sweeps come every LEFTOVER_PERIOD.
            assert_eq!(inner.flush_leftovers(now), Some(now + LEFTOVER_PERIOD));
            let later = now + LEFTOVER_PERIOD;
            assert_eq!(inner.flush_leftovers(later), Some(later + LEFTOVER_PERIOD));
            assert_eq!(inner.unschedulable.len(), 1);
            let stale = now + MAX_UNSCHEDULABLE + LEFTOVER_PERIOD;
            inner.flush_leftovers(stale);
            assert!(inner.unschedulable.is_empty());
        }
        assert_eq!(q.pending(), (1, 0, 0, 0));
        assert!(pops_and_leaves_no_leftovers(&q, &stop).await);
    }

    async fn pops_and_leaves_no_leftovers(q: &Queue, stop: &CancellationToken) -> bool {
        q.pop(stop).await.is_some() && q.lock().flush_leftovers(Instant::now()).is_none()
    }

    #[tokio::test]
    async fn gated_pod_waits_until_its_gates_go() {
        let q = Queue::default();
        let gates = json!({"schedulingGates": [{"name": "example.com/wait"}]});
        q.upsert(pod("g", json!({}), gates));
        assert_eq!(q.pending(), (0, 0, 0, 1));
        assert_eq!(q.gated().len(), 1);
        let stop = CancellationToken::new();
        let none = tokio::time::timeout(Duration::from_millis(50), q.pop(&stop)).await;
        assert!(none.is_err(), "a gated pod was popped");
        q.upsert(pod("g", json!({}), json!({})));
        assert_eq!(q.pending(), (1, 0, 0, 0));
        let p = q.pop(&stop).await;
        assert_eq!(p.map(|p| p.info.name.clone()).as_deref(), Some("g"));
    }
}
