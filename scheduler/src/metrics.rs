//! Prometheus text metrics under upstream's names, served at `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use crate::queue::Queue;

/// `prometheus.ExponentialBuckets(0.001, 2, 15)`, as upstream.
const BUCKETS: [f64; 15] = [
    0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096,
    8.192, 16.384,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += secs;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (b, c) in BUCKETS.iter().zip(self.counts) {
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {c}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

#[derive(Default)]
pub struct Metrics {
    /// Filter + score time of each decision (upstream's
    /// `scheduler_scheduling_algorithm_duration_seconds`).
    algorithm: Mutex<Histogram>,
    /// result → (attempts, duration histogram).
    attempts: Mutex<BTreeMap<&'static str, (u64, Histogram)>>,
    preemption_attempts: std::sync::atomic::AtomicU64,
    is_leader: std::sync::atomic::AtomicBool,
}

impl Metrics {
    /// Records one attempt: `result` is `scheduled`, `unschedulable` or `error`.
    pub fn attempt(&self, result: &'static str, took: Duration) {
        let mut m = self.attempts.lock().unwrap_or_else(|p| p.into_inner());
        let (n, h) = m.entry(result).or_default();
        *n += 1;
        h.observe(took.as_secs_f64());
    }

    /// Records the time one decision (filter, score, preemption dry run) took.
    pub fn algorithm(&self, took: Duration) {
        let mut h = self.algorithm.lock().unwrap_or_else(|p| p.into_inner());
        h.observe(took.as_secs_f64());
    }

    pub fn preemption_attempt(&self) {
        self.preemption_attempts
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn set_leader(&self, leading: bool) {
        self.is_leader
            .store(leading, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn render(&self, queue: &Queue) -> String {
        let mut out = String::new();
        let m = self.attempts.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(out, "# HELP scheduler_schedule_attempts_total Number of attempts to schedule pods, by the result. 'unschedulable' means a pod could not be scheduled, while 'error' means an internal scheduler problem.");
        let _ = writeln!(out, "# TYPE scheduler_schedule_attempts_total counter");
        for result in ["scheduled", "unschedulable", "error"] {
            let n = m.get(result).map_or(0, |(n, _)| *n);
            let _ = writeln!(
                out,
                "scheduler_schedule_attempts_total{{profile=\"default-scheduler\",result=\"{result}\"}} {n}"
            );
        }
        let _ = writeln!(out, "# HELP scheduler_scheduling_attempt_duration_seconds Scheduling attempt latency in seconds (scheduling algorithm + binding)");
        let _ = writeln!(
            out,
            "# TYPE scheduler_scheduling_attempt_duration_seconds histogram"
        );
        for (result, (_, h)) in m.iter() {
            let labels = format!("profile=\"default-scheduler\",result=\"{result}\"");
            h.render(
                &mut out,
                "scheduler_scheduling_attempt_duration_seconds",
                &labels,
            );
        }
        drop(m);
        let _ = writeln!(out, "# HELP scheduler_scheduling_algorithm_duration_seconds Scheduling algorithm latency in seconds");
        let _ = writeln!(
            out,
            "# TYPE scheduler_scheduling_algorithm_duration_seconds histogram"
        );
        self.algorithm
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .render(
                &mut out,
                "scheduler_scheduling_algorithm_duration_seconds",
                "",
            );
        let (active, backoff, unsched, gated) = queue.pending();
        let _ = writeln!(out, "# HELP scheduler_pending_pods Number of pending pods, by the queue type. 'active' means number of pods in activeQ; 'backoff' means number of pods in backoffQ; 'unschedulable' means number of pods in unschedulablePods that the scheduler attempted to schedule and failed; 'gated' is the number of unschedulable pods that the scheduler never attempted to schedule because they are gated.");
        let _ = writeln!(out, "# TYPE scheduler_pending_pods gauge");
        for (q, n) in [
            ("active", active),
            ("backoff", backoff),
            ("unschedulable", unsched),
            ("gated", gated),
        ] {
            let _ = writeln!(out, "scheduler_pending_pods{{queue=\"{q}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP scheduler_preemption_attempts_total Total preemption attempts in the cluster till now");
        let _ = writeln!(out, "# TYPE scheduler_preemption_attempts_total counter");
        let _ = writeln!(
            out,
            "scheduler_preemption_attempts_total {}",
            self.preemption_attempts
                .load(std::sync::atomic::Ordering::Relaxed)
        );
        let _ = writeln!(out, "# HELP leader_election_master_status Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master.");
        let _ = writeln!(out, "# TYPE leader_election_master_status gauge");
        let _ = writeln!(
            out,
            "leader_election_master_status{{name=\"kube-scheduler\"}} {}",
            u8::from(self.is_leader.load(std::sync::atomic::Ordering::Relaxed))
        );
        out
    }
}
