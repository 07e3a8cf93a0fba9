//! Authentication: client certificates signed by the cluster CA, and bearer tokens from
//! a static token file (upstream's `--token-auth-file` CSV format).

use std::collections::HashMap;
use std::path::Path;

/// An authenticated user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
}

impl UserInfo {
    pub fn anonymous() -> Self {
        UserInfo {
            name: "system:anonymous".into(),
            uid: String::new(),
            groups: vec!["system:unauthenticated".into()],
        }
    }

    pub fn is_anonymous(&self) -> bool {
        self.name == "system:anonymous"
    }
}

/// The identity a verified client certificate carried, attached to each request of
/// its connection.
#[derive(Debug, Clone)]
pub struct PeerIdentity(pub Option<UserInfo>);

/// Static bearer tokens.
#[derive(Debug, Default, Clone)]
pub struct TokenFile {
    tokens: HashMap<String, UserInfo>,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("reading token file {0}: {1}")]
    Io(String, std::io::Error),
    #[error("token file line {0}: expected at least token,user,uid")]
    Malformed(usize),
}

/// Splits one CSV record, honouring double quotes.
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    fields.push(cur);
    fields
}

impl TokenFile {
    /// Parses `token,user,uid[,"group1,group2"]` lines.
    pub fn parse(text: &str) -> Result<TokenFile, TokenFileError> {
        let mut tokens = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let f = csv_fields(line);
            if f.len() < 3 || f[0].is_empty() || f[1].is_empty() {
                return Err(TokenFileError::Malformed(i + 1));
            }
            let groups = f
                .get(3)
                .map(|g| {
                    g.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            tokens.insert(
                f[0].clone(),
                UserInfo {
                    name: f[1].clone(),
                    uid: f[2].clone(),
                    groups,
                },
            );
        }
        Ok(TokenFile { tokens })
    }

    pub fn load(path: &Path) -> Result<TokenFile, TokenFileError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| TokenFileError::Io(path.display().to_string(), e))?;
        TokenFile::parse(&text)
    }

    pub fn lookup(&self, token: &str) -> Option<&UserInfo> {
        self.tokens.get(token)
    }
}

/// Credentials were sent but are not valid (401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidCredentials;

/// Authenticates a request: a bearer token when one is sent (from the token file, else
/// `other_tokens`, which answers `None` for tokens it does not know: service account JWTs),
/// else the client certificate, else anonymous.
pub fn authenticate(
    headers: &http::HeaderMap,
    peer: Option<&PeerIdentity>,
    tokens: &TokenFile,
    other_tokens: &dyn Fn(&str) -> Option<Result<UserInfo, InvalidCredentials>>,
) -> Result<UserInfo, InvalidCredentials> {
    let cert_user = peer.and_then(|p| p.0.clone());
    if let Some(auth) = headers.get(http::header::AUTHORIZATION) {
        let value = auth.to_str().map_err(|_| InvalidCredentials)?;
        if let Some(token) = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
        {
            let token = token.trim();
            if let Some(u) = tokens.lookup(token) {
                return Ok(u.clone());
            }
            if let Some(Ok(u)) = other_tokens(token) {
                return Ok(u);
            }
            return cert_user.ok_or(InvalidCredentials);
        }
    }
    Ok(cert_user.unwrap_or_else(UserInfo::anonymous))
}

/// Builds the user of a client certificate subject.
pub fn user_from_cert(cn: String, orgs: Vec<String>) -> UserInfo {
    let mut groups = orgs;
    groups.push("system:authenticated".into());
    UserInfo {
        name: cn,
        uid: String::new(),
        groups,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_token_file() {
        let t = TokenFile::parse("# c\nabc,alice,1,\"dev,ops\"\nxyz,bob,2\n").unwrap();
        let a = t.lookup("abc").unwrap();
        assert_eq!(a.name, "alice");
        assert_eq!(a.groups, vec!["dev".to_string(), "ops".to_string()]);
        assert_eq!(t.lookup("xyz").unwrap().uid, "2");
        assert!(TokenFile::parse("onlytoken\n").is_err());
    }

    #[test]
    fn bad_token_is_rejected() {
        let t = TokenFile::parse("abc,alice,1\n").unwrap();
        let mut h = http::HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, "Bearer nope".parse().unwrap());
        assert!(authenticate(&h, None, &t, &|_| None).is_err());
        h.insert(http::header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(authenticate(&h, None, &t, &|_| None).unwrap().name, "alice");
        assert!(authenticate(&http::HeaderMap::new(), None, &t, &|_| None)
            .unwrap()
            .is_anonymous());
    }
}
