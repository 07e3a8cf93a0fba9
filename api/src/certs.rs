//! The cluster's PKI: a CA, the API server's serving certificate, the admin client
//! certificate, and the admin kubeconfig. Everything lives under `<data-dir>/tls`.

use std::path::{Path, PathBuf};

use base64::Engine;
use chrono::Datelike;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("invalid subject alternative name {0:?}")]
    BadSan(String),
}

/// PEM material of the cluster.
#[derive(Clone)]
pub struct Pki {
    pub dir: PathBuf,
    pub ca_cert_pem: String,
    ca_key_pem: String,
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
    pub admin_cert_pem: String,
    pub admin_key_pem: String,
    /// The client certificate the API server calls kubelets with.
    pub kubelet_client_cert_pem: String,
    pub kubelet_client_key_pem: String,
}

/// Common name of the API server's client certificate towards kubelets (kubeadm's name).
pub const KUBELET_CLIENT_CN: &str = "kube-apiserver-kubelet-client";

fn read(path: &Path) -> Result<Option<String>, PkiError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(PkiError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes a file atomically (temp file + rename) with the given mode.
pub fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), PkiError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(contents).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

fn validity(params: &mut CertificateParams, years: i32) {
    let now = chrono::Utc::now();
    params.not_before = rcgen::date_time_ymd(now.year() - 1, 1, 1);
    params.not_after = rcgen::date_time_ymd(now.year() + years, 1, 1);
    params.serial_number = Some(SerialNumber::from_slice(uuid::Uuid::new_v4().as_bytes()));
}

fn subject(cn: &str, orgs: &[&str]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    for o in orgs {
        dn.push(DnType::OrganizationName, *o);
    }
    dn.push(DnType::CommonName, cn);
    dn
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = subject("meso-ca", &[]);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

impl Pki {
    /// Loads the CA and admin certificate from `dir`, creating them on first start, and
    /// issues a fresh serving certificate for `sans` (so new `--tls-san`s take effect).
    pub fn ensure(dir: &Path, sans: &[String]) -> Result<Pki, PkiError> {
        let ca_crt = dir.join("ca.crt");
        let ca_key = dir.join("ca.key");
        let (ca_cert_pem, ca_key_pem) = match (read(&ca_crt)?, read(&ca_key)?) {
            (Some(c), Some(k)) => (c, k),
            _ => {
                let key = KeyPair::generate()?;
                let mut params = ca_params();
                validity(&mut params, 10);
                let cert = params.self_signed(&key)?;
                let (c, k) = (cert.pem(), key.serialize_pem());
                write_file(&ca_key, k.as_bytes(), 0o600)?;
                write_file(&ca_crt, c.as_bytes(), 0o644)?;
                (c, k)
            }
        };
        let mut pki = Pki {
            dir: dir.to_path_buf(),
            ca_cert_pem,
            ca_key_pem,
            serving_cert_pem: String::new(),
            serving_key_pem: String::new(),
            admin_cert_pem: String::new(),
            admin_key_pem: String::new(),
            kubelet_client_cert_pem: String::new(),
            kubelet_client_key_pem: String::new(),
        };
        let admin_crt = dir.join("admin.crt");
        let admin_key = dir.join("admin.key");
        match (read(&admin_crt)?, read(&admin_key)?) {
            (Some(c), Some(k)) => {
                pki.admin_cert_pem = c;
                pki.admin_key_pem = k;
            }
            _ => {
                let (c, k) = pki.issue_client_cert("meso-admin", &["system:masters"])?;
                write_file(&admin_key, k.as_bytes(), 0o600)?;
                write_file(&admin_crt, c.as_bytes(), 0o644)?;
                pki.admin_cert_pem = c;
                pki.admin_key_pem = k;
            }
        }
        let kubelet_crt = dir.join("apiserver-kubelet-client.crt");
        let kubelet_key = dir.join("apiserver-kubelet-client.key");
        match (read(&kubelet_crt)?, read(&kubelet_key)?) {
            (Some(c), Some(k)) => {
                pki.kubelet_client_cert_pem = c;
                pki.kubelet_client_key_pem = k;
            }
            _ => {
                let (c, k) = pki.issue_client_cert(KUBELET_CLIENT_CN, &["system:masters"])?;
                write_file(&kubelet_key, k.as_bytes(), 0o600)?;
                write_file(&kubelet_crt, c.as_bytes(), 0o644)?;
                pki.kubelet_client_cert_pem = c;
                pki.kubelet_client_key_pem = k;
            }
        }
        let (c, k) = pki.issue_serving_cert("meso-apiserver", sans)?;
        write_file(&dir.join("serving.key"), k.as_bytes(), 0o600)?;
        write_file(&dir.join("serving.crt"), c.as_bytes(), 0o644)?;
        pki.serving_cert_pem = c;
        pki.serving_key_pem = k;
        Ok(pki)
    }

    fn issuer(&self) -> Result<Issuer<'static, KeyPair>, PkiError> {
        let key = KeyPair::from_pem(&self.ca_key_pem)?;
        Ok(Issuer::from_ca_cert_pem(&self.ca_cert_pem, key)?)
    }

    /// A client certificate (CN = user, O = groups) signed by the cluster CA: (cert, key) PEM.
    pub fn issue_client_cert(&self, cn: &str, orgs: &[&str]) -> Result<(String, String), PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = subject(cn, orgs);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        validity(&mut params, 10);
        let cert = params.signed_by(&key, &self.issuer()?)?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// A serving certificate for the given DNS names and IP addresses: (cert, key) PEM.
    pub fn issue_serving_cert(
        &self,
        cn: &str,
        sans: &[String],
    ) -> Result<(String, String), PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = subject(cn, &[]);
        let mut seen = std::collections::BTreeSet::new();
        for san in sans {
            if san.is_empty() || !seen.insert(san.clone()) {
                continue;
            }
            let entry = match san.parse::<std::net::IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(
                    san.clone()
                        .try_into()
                        .map_err(|_| PkiError::BadSan(san.clone()))?,
                ),
            };
            params.subject_alt_names.push(entry);
        }
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        validity(&mut params, 10);
        let cert = params.signed_by(&key, &self.issuer()?)?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// A kubeconfig for `server` with the given client credentials embedded.
    pub fn kubeconfig(&self, server: &str, user: &str, cert_pem: &str, key_pem: &str) -> String {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: meso\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\ncontexts:\n- name: meso\n  context:\n    cluster: meso\n    user: {user}\ncurrent-context: meso\npreferences: {{}}\nusers:\n- name: {user}\n  user:\n    client-certificate-data: {cert}\n    client-key-data: {key}\n",
            ca = b64(&self.ca_cert_pem),
            cert = b64(cert_pem),
            key = b64(key_pem),
        )
    }

    /// The admin kubeconfig.
    pub fn admin_kubeconfig(&self, server: &str) -> String {
        self.kubeconfig(
            server,
            "meso-admin",
            &self.admin_cert_pem,
            &self.admin_key_pem,
        )
    }
}

/// The subject of a verified client certificate: (common name, organizations).
pub fn client_identity(der: &[u8]) -> Option<(String, Vec<String>)> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let cn = subject
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())?
        .to_string();
    let orgs = subject
        .iter_organization()
        .filter_map(|a| a.as_str().ok().map(str::to_string))
        .collect();
    Some((cn, orgs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pki_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let sans = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let a = Pki::ensure(dir.path(), &sans).unwrap();
        let b = Pki::ensure(dir.path(), &sans).unwrap();
        assert_eq!(a.ca_cert_pem, b.ca_cert_pem);
        assert_eq!(a.admin_cert_pem, b.admin_cert_pem);
        let der = rustls_pemfile::certs(&mut a.admin_cert_pem.as_bytes())
            .next()
            .unwrap()
            .unwrap();
        let (cn, orgs) = client_identity(&der).unwrap();
        assert_eq!(cn, "meso-admin");
        assert_eq!(orgs, vec!["system:masters".to_string()]);
        assert_eq!(a.kubelet_client_cert_pem, b.kubelet_client_cert_pem);
        let der = rustls_pemfile::certs(&mut a.kubelet_client_cert_pem.as_bytes())
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(client_identity(&der).unwrap().0, KUBELET_CLIENT_CN);
        let kc = a.admin_kubeconfig("https://127.0.0.1:6443");
        assert!(kc.contains("server: https://127.0.0.1:6443"));
    }
}
