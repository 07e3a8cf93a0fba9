//! Prometheus text metrics of the controllers, served at `/metrics` by
//! [`meso_scheduler::component::serve_metrics`].

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

#[derive(Default, Clone, Copy)]
struct Counts {
    success: u64,
    error: u64,
    seconds: f64,
}

#[derive(Default)]
pub struct Metrics {
    reconciles: Mutex<BTreeMap<&'static str, Counts>>,
    leader: AtomicBool,
}

impl Metrics {
    /// Records one reconcile of `controller`.
    pub fn reconciled(&self, controller: &'static str, ok: bool, took: Duration) {
        let mut m = self.reconciles.lock().unwrap_or_else(|p| p.into_inner());
        let c = m.entry(controller).or_default();
        if ok {
            c.success += 1;
        } else {
            c.error += 1;
        }
        c.seconds += took.as_secs_f64();
    }

    pub fn set_leader(&self, leading: bool) {
        self.leader.store(leading, Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        let m = self.reconciles.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        let _ = writeln!(out, "# HELP meso_controller_reconcile_total Reconciliations by controller and result.\n# TYPE meso_controller_reconcile_total counter");
        for (name, c) in m.iter() {
            for (result, n) in [("success", c.success), ("error", c.error)] {
                let _ = writeln!(
                    out,
                    "meso_controller_reconcile_total{{controller=\"{name}\",result=\"{result}\"}} {n}"
                );
            }
        }
        let _ = writeln!(out, "# HELP meso_controller_reconcile_duration_seconds Time spent reconciling.\n# TYPE meso_controller_reconcile_duration_seconds summary");
        for (name, c) in m.iter() {
            let _ = writeln!(
                out,
                "meso_controller_reconcile_duration_seconds_sum{{controller=\"{name}\"}} {}\nmeso_controller_reconcile_duration_seconds_count{{controller=\"{name}\"}} {}",
                c.seconds,
                c.success + c.error
            );
        }
        let _ = writeln!(
            out,
            "# HELP leader_election_master_status Whether this instance leads (1) or not (0).\n# TYPE leader_election_master_status gauge\nleader_election_master_status{{name=\"kube-controller-manager\"}} {}",
            u8::from(self.leader.load(Ordering::Relaxed))
        );
        out
    }
}
