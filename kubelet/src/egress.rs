//! `--pod-egress=local`: an nftables table owned by this kubelet drops forwarded traffic from
//! pods to anything outside the pod CIDR (the host itself is reached by input, not forward),
//! and the host's own traffic to the service CIDR that was not translated (so a ClusterIP
//! without a proxy rule never leaves through the default route). Pods reach the host, and so
//! the embedded cluster DNS on the gateway address ([`crate::dns`]), through the input hook,
//! which these rules leave alone; that server never forwards under `local`.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::{Error, IoContext, KubeletConfig, PodEgress, Result};

/// The nftables table of a kubelet (one per bridge, so several kubelets can share a host).
pub fn table_name(config: &KubeletConfig) -> String {
    let bridge: String = config
        .cni_bridge
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("meso_{bridge}")
}

/// The nft script that (re)creates the table; empty rules for `open`.
pub fn ruleset(config: &KubeletConfig) -> String {
    let table = table_name(config);
    // `add` then `delete` makes the replacement idempotent in one atomic transaction.
    let mut s = format!("add table inet {table}\ndelete table inet {table}\n");
    if config.pod_egress == PodEgress::Local {
        s.push_str(&format!(
            r#"table inet {table} {{
  chain forward {{
    type filter hook forward priority filter - 5; policy accept;
    iifname "{bridge}" meta nfproto ipv6 drop
    ip saddr {pods} ip daddr != {pods} drop
  }}
  chain output {{
    type filter hook output priority filter - 5; policy accept;
    ip daddr {services} ct status & dnat == 0 drop
  }}
}}
"#,
            bridge = config.cni_bridge,
            pods = config.pod_cidr,
            services = config.service_cidr,
        ));
    }
    s
}

/// Installs (or, for `open`, removes) the egress rules.
pub fn install(config: &KubeletConfig) -> Result<()> {
    nft(&ruleset(config))?;
    tracing::info!(table = %table_name(config), egress = ?config.pod_egress, "pod egress rules installed");
    Ok(())
}

/// Removes the kubelet's table.
pub fn remove(config: &KubeletConfig) -> Result<()> {
    let table = table_name(config);
    nft(&format!(
        "add table inet {table}\ndelete table inet {table}\n"
    ))
}

/// Runs an nft script (`nft -f -`) as one transaction.
pub(crate) fn nft(script: &str) -> Result<()> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context(|| "running nft (install the nftables package)".into())?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .context(|| "writing to nft".into())?;
    }
    let out = child
        .wait_with_output()
        .context(|| "waiting for nft".into())?;
    if !out.status.success() {
        return Err(Error::Other(format!(
            "nft failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: KubeletConfig,
    }

    #[test]
    fn local_egress_drops_leaving_traffic_and_untranslated_services() {
        let cli = Cli::parse_from([
            "kubelet",
            "--cni-bridge",
            "br-x",
            "--pod-cidr",
            "10.42.7.0/24",
        ]);
        let rules = ruleset(&cli.config);
        assert!(rules.starts_with("add table inet meso_br_x\ndelete table inet meso_br_x\n"));
        assert!(rules.contains("ip saddr 10.42.7.0/24 ip daddr != 10.42.7.0/24 drop"));
        assert!(rules.contains("ip daddr 10.43.0.0/16 ct status & dnat == 0 drop"));
        let open = Cli::parse_from(["kubelet", "--pod-egress", "open"]);
        assert!(!ruleset(&open.config).contains("drop"));
    }
}
