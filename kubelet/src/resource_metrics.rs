//! `GET /metrics/resource`: the kubelet's resource metrics (what metrics-server scrapes) in
//! Prometheus text, as upstream's kubelet serves them: node CPU and memory from `/proc`,
//! container CPU and memory working set from CRI `ListContainerStats`, pod figures as the sum
//! of the pod's containers. Every sample carries its millisecond timestamp.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::cri::{Cri, LABEL_CONTAINER_NAME, LABEL_POD_NAME, LABEL_POD_NAMESPACE};

/// One point in time of a node or container: cumulative CPU seconds and the memory working set.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub cpu_seconds: f64,
    pub memory_bytes: u64,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
}

/// A container's sample and whose it is.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerSample {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub sample: Sample,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Cumulative non-idle CPU seconds of the node from the `cpu` line of `/proc/stat`.
fn parse_proc_stat(stat: &str, ticks_per_second: f64) -> Option<f64> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal (guest time is already in user/nice).
    let busy: u64 = [0usize, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|i| fields.get(*i))
        .sum();
    Some(busy as f64 / ticks_per_second)
}

/// The node's working set from `/proc/meminfo`: memory in use less what the kernel can drop
/// at once (`MemTotal - MemAvailable`).
fn parse_meminfo(meminfo: &str) -> Option<u64> {
    let field = |name: &str| -> Option<u64> {
        let line = meminfo.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib * 1024)
    };
    let total = field("MemTotal:")?;
    let available = field("MemAvailable:")?;
    Some(total.saturating_sub(available))
}

/// The node's sample, `None` when `/proc` cannot be read.
fn node_sample() -> Option<Sample> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let ticks = if ticks > 0 { ticks as f64 } else { 100.0 };
    Some(Sample {
        cpu_seconds: parse_proc_stat(&stat, ticks)?,
        memory_bytes: parse_meminfo(&meminfo)?,
        timestamp_ms: now_ms(),
    })
}

/// The samples of every running container CRI reports stats for.
async fn container_samples(cri: &Cri) -> crate::Result<Vec<ContainerSample>> {
    let stats = cri.list_container_stats().await?;
    let mut out = Vec::new();
    for s in stats {
        let Some(attrs) = s.attributes else { continue };
        let label = |k: &str| attrs.labels.get(k).cloned().unwrap_or_default();
        let (namespace, pod) = (label(LABEL_POD_NAMESPACE), label(LABEL_POD_NAME));
        let container = match attrs.metadata.as_ref().map(|m| m.name.clone()) {
            Some(n) if !n.is_empty() => n,
            _ => label(LABEL_CONTAINER_NAME),
        };
        let Some(cpu) = s.cpu else { continue };
        let Some(usage) = cpu.usage_core_nano_seconds else {
            continue;
        };
        if pod.is_empty() || container.is_empty() {
            continue;
        }
        let memory = s
            .memory
            .and_then(|m| m.working_set_bytes)
            .map_or(0, |v| v.value);
        out.push(ContainerSample {
            namespace,
            pod,
            container,
            sample: Sample {
                cpu_seconds: usage.value as f64 / 1e9,
                memory_bytes: memory,
                timestamp_ms: if cpu.timestamp > 0 {
                    cpu.timestamp / 1_000_000
                } else {
                    now_ms()
                },
            },
        });
    }
    Ok(out)
}

/// Collects and renders the resource metrics.
pub async fn collect(cri: &Cri) -> String {
    let node = node_sample();
    let containers = container_samples(cri).await;
    let failed = node.is_none() || containers.is_err();
    if let Err(e) = &containers {
        tracing::warn!(error = %e, "reading container stats for /metrics/resource");
    }
    render(
        node.as_ref(),
        containers.as_deref().unwrap_or_default(),
        failed,
    )
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The Prometheus text of the samples.
pub fn render(node: Option<&Sample>, containers: &[ContainerSample], failed: bool) -> String {
    let mut out = String::new();
    let container_labels = |c: &ContainerSample| {
        format!(
            "container=\"{}\",namespace=\"{}\",pod=\"{}\"",
            escape(&c.container),
            escape(&c.namespace),
            escape(&c.pod)
        )
    };
    header(
        &mut out,
        "container_cpu_usage_seconds_total",
        "[STABLE] Cumulative cpu time consumed by the container in core-seconds",
        "counter",
    );
    for c in containers {
        let _ = writeln!(
            out,
            "container_cpu_usage_seconds_total{{{}}} {} {}",
            container_labels(c),
            c.sample.cpu_seconds,
            c.sample.timestamp_ms
        );
    }
    header(
        &mut out,
        "container_memory_working_set_bytes",
        "[STABLE] Current working set of the container in bytes",
        "gauge",
    );
    for c in containers {
        let _ = writeln!(
            out,
            "container_memory_working_set_bytes{{{}}} {} {}",
            container_labels(c),
            c.sample.memory_bytes,
            c.sample.timestamp_ms
        );
    }
    if let Some(n) = node {
        header(
            &mut out,
            "node_cpu_usage_seconds_total",
            "[STABLE] Cumulative cpu time consumed by the node in core-seconds",
            "counter",
        );
        let _ = writeln!(
            out,
            "node_cpu_usage_seconds_total {} {}",
            n.cpu_seconds, n.timestamp_ms
        );
        header(
            &mut out,
            "node_memory_working_set_bytes",
            "[STABLE] Current working set of the node in bytes",
            "gauge",
        );
        let _ = writeln!(
            out,
            "node_memory_working_set_bytes {} {}",
            n.memory_bytes, n.timestamp_ms
        );
    }
    // Pods: the sum of their containers, stamped with the newest container sample.
    let mut pods: BTreeMap<(&str, &str), Sample> = BTreeMap::new();
    for c in containers {
        let p = pods
            .entry((c.namespace.as_str(), c.pod.as_str()))
            .or_insert(Sample {
                cpu_seconds: 0.0,
                memory_bytes: 0,
                timestamp_ms: 0,
            });
        p.cpu_seconds += c.sample.cpu_seconds;
        p.memory_bytes = p.memory_bytes.saturating_add(c.sample.memory_bytes);
        p.timestamp_ms = p.timestamp_ms.max(c.sample.timestamp_ms);
    }
    header(
        &mut out,
        "pod_cpu_usage_seconds_total",
        "[STABLE] Cumulative cpu time consumed by the pod in core-seconds",
        "counter",
    );
    for ((ns, pod), s) in &pods {
        let _ = writeln!(
            out,
            "pod_cpu_usage_seconds_total{{namespace=\"{}\",pod=\"{}\"}} {} {}",
            escape(ns),
            escape(pod),
            s.cpu_seconds,
            s.timestamp_ms
        );
    }
    header(
        &mut out,
        "pod_memory_working_set_bytes",
        "[STABLE] Current working set of the pod in bytes",
        "gauge",
    );
    for ((ns, pod), s) in &pods {
        let _ = writeln!(
            out,
            "pod_memory_working_set_bytes{{namespace=\"{}\",pod=\"{}\"}} {} {}",
            escape(ns),
            escape(pod),
            s.memory_bytes,
            s.timestamp_ms
        );
    }
    let flag = u8::from(failed);
    header(
        &mut out,
        "resource_scrape_error",
        "[STABLE] 1 if there was an error while getting container metrics, 0 otherwise",
        "gauge",
    );
    let _ = writeln!(out, "resource_scrape_error {flag}");
    header(
        &mut out,
        "scrape_error",
        "[ALPHA] (Deprecated since 1.29.0) 1 if there was an error while getting container metrics, 0 otherwise",
        "gauge",
    );
    let _ = writeln!(out, "scrape_error {flag}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_counts_busy_ticks() {
        let stat = "cpu  100 20 30 1000 50 5 5 10 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
        // user+nice+system+irq+softirq+steal = 100+20+30+5+5+10 = 170 ticks.
        assert_eq!(parse_proc_stat(stat, 100.0), Some(1.7));
        assert_eq!(parse_proc_stat("intr 1 2\n", 100.0), None);
    }

    #[test]
    fn meminfo_working_set() {
        let m = "MemTotal:       16000 kB\nMemFree:  1000 kB\nMemAvailable:   6000 kB\n";
        assert_eq!(parse_meminfo(m), Some(10_000 * 1024));
        assert_eq!(parse_meminfo("MemTotal: 5 kB\n"), None);
    }

    #[test]
    fn renders_upstream_names_with_timestamps() {
        let c = |name: &str, cpu: f64, mem: u64, ts: i64| ContainerSample {
            namespace: "default".into(),
            pod: "web".into(),
            container: name.into(),
            sample: Sample {
                cpu_seconds: cpu,
                memory_bytes: mem,
                timestamp_ms: ts,
            },
        };
        let node = Sample {
            cpu_seconds: 12.5,
            memory_bytes: 2048,
            timestamp_ms: 1000,
        };
        let text = render(
            Some(&node),
            &[c("a", 1.5, 100, 2000), c("b", 0.25, 50, 3000)],
            false,
        );
        for line in [
            "container_cpu_usage_seconds_total{container=\"a\",namespace=\"default\",pod=\"web\"} 1.5 2000",
            "container_memory_working_set_bytes{container=\"b\",namespace=\"default\",pod=\"web\"} 50 3000",
            "node_cpu_usage_seconds_total 12.5 1000",
            "node_memory_working_set_bytes 2048 1000",
            "pod_cpu_usage_seconds_total{namespace=\"default\",pod=\"web\"} 1.75 3000",
            "pod_memory_working_set_bytes{namespace=\"default\",pod=\"web\"} 150 3000",
            "resource_scrape_error 0",
            "# TYPE container_cpu_usage_seconds_total counter",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert!(render(None, &[], true)
            .lines()
            .any(|l| l == "resource_scrape_error 1"));
    }
}
