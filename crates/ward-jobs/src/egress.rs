//! The one door out: every outbound connection Ward makes (identity providers,
//! SIEM connections, audit sinks, and the deployment, secrets and agent clients to
//! come) is opened here, so `ward_core::egress::EgressPolicy` judges each one.
//!
//! Names are resolved here, every address is checked *after* resolution, and the
//! connection goes only to an address that passed: a name that resolves to
//! `127.0.0.1`, or first to a public address and later to a private one (DNS
//! rebinding), cannot get through, because nothing re-resolves behind the check.
//! For HTTP that means a client per destination with the checked addresses pinned
//! (`resolve_to_addrs`), a resolver that refuses every other name, no proxy from
//! the environment, and no redirects; the client answers only for the origin it
//! was made for, so an address literal elsewhere (which reqwest would not resolve,
//! and so not pass through any resolver) cannot slip past either.
//!
//! *Invariant: nothing else in `ward-server/src` builds an HTTP client or opens a
//! socket to a peer* — the test at the bottom of this file fails if anything does.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpStream, UdpSocket};
use ward_core::egress::{Destination, EgressPolicy, EgressRefusal};

/// How long a name may take to resolve.
const DNS_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an outbound connection did not happen. `class()` is what may be shown to
/// people who do not run the server: it says nothing about the peer's ports.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum EgressError {
    #[error("{0}")]
    BadDestination(&'static str),
    #[error("refused by the egress policy: {0}")]
    Refused(EgressRefusal),
    #[error("the name {0:?} does not resolve")]
    Dns(String),
    /// Refused, reset or timed out: one class, on purpose.
    #[error("{0} is not reachable: {1}")]
    Unreachable(String, String),
    #[error("HTTP client: {0}")]
    Client(String),
}

impl EgressError {
    /// A stable reason class: `refused_by_policy`, `dns_failed`, `unreachable` or
    /// `invalid_destination`.
    pub fn class(&self) -> &'static str {
        match self {
            Self::BadDestination(_) => "invalid_destination",
            Self::Refused(_) => "refused_by_policy",
            Self::Dns(_) => "dns_failed",
            Self::Unreachable(..) | Self::Client(_) => "unreachable",
        }
    }
}

/// Options for an outbound HTTP client.
#[derive(Clone)]
pub struct HttpOptions {
    pub connect_timeout: Duration,
    pub timeout: Duration,
    /// A rustls configuration (e.g. with an operator's CA); default: reqwest's.
    pub tls: Option<rustls::ClientConfig>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            tls: None,
        }
    }
}

/// The egress edge: the policy and the only constructors of outbound connections.
#[derive(Debug, Clone, Default)]
pub struct Egress {
    policy: Arc<EgressPolicy>,
}

/// Scheme, host (lower case, IPv6 without brackets) and port of an HTTP URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub scheme: String,
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}://[{}]:{}", self.scheme, self.host, self.port)
        } else {
            write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
        }
    }
}

impl Origin {
    /// The origin of an `http`/`https` URL, parsed as reqwest parses it (WHATWG:
    /// `http://0x7f.1/` is `127.0.0.1`).
    pub fn of(url: &str) -> Result<Self, EgressError> {
        let u = url::Url::parse(url).map_err(|_| EgressError::BadDestination("not a URL"))?;
        if !matches!(u.scheme(), "http" | "https") {
            return Err(EgressError::BadDestination("not an http or https URL"));
        }
        let host = match u.host() {
            Some(url::Host::Domain(d)) => ward_core::egress::normalize_host(d),
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => a.to_string(),
            None => return Err(EgressError::BadDestination("the URL names no host")),
        };
        let port = u
            .port_or_known_default()
            .ok_or(EgressError::BadDestination("the URL names no port"))?;
        Ok(Self {
            scheme: u.scheme().to_owned(),
            host,
            port,
        })
    }

    fn is_literal(&self) -> bool {
        self.host.parse::<IpAddr>().is_ok()
    }
}

impl Egress {
    pub fn new(policy: EgressPolicy) -> Self {
        Self {
            policy: Arc::new(policy),
        }
    }

    pub fn policy(&self) -> &EgressPolicy {
        &self.policy
    }

    /// The addresses of `host` that the policy allows, each with `port`. A name
    /// is resolved once, here; an address literal (with or without brackets) is
    /// checked as it is. When no address is allowed, the first refusal is the error.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, EgressError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            let d = Destination {
                host_name: None,
                address: ip,
                port,
            };
            self.policy.check(&d).map_err(EgressError::Refused)?;
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        if bare.is_empty() || bare.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(EgressError::BadDestination("not a host name"));
        }
        let found = tokio::time::timeout(DNS_TIMEOUT, tokio::net::lookup_host((bare, port)))
            .await
            .map_err(|_| EgressError::Dns(bare.to_owned()))?
            .map_err(|_| EgressError::Dns(bare.to_owned()))?;
        let mut allowed = Vec::new();
        let mut first_refusal = None;
        for a in found {
            let d = Destination {
                host_name: Some(bare),
                address: a.ip(),
                port,
            };
            match self.policy.check(&d) {
                Ok(()) if !allowed.contains(&a) => allowed.push(a),
                Ok(()) => {}
                Err(r) => {
                    tracing::debug!(host = %bare, refusal = %r, "egress: resolved address refused");
                    first_refusal.get_or_insert(r);
                }
            }
        }
        match (allowed.is_empty(), first_refusal) {
            (false, _) => Ok(allowed),
            (true, Some(r)) => Err(EgressError::Refused(r)),
            (true, None) => Err(EgressError::Dns(bare.to_owned())),
        }
    }

    /// A TCP connection to `host:port`, to an address the policy allows.
    pub async fn connect_tcp(
        &self,
        host: &str,
        port: u16,
        timeout: Duration,
    ) -> Result<TcpStream, EgressError> {
        let addrs = self.resolve(host, port).await?;
        let mut last = String::new();
        for a in addrs {
            match tokio::time::timeout(timeout, TcpStream::connect(a)).await {
                Ok(Ok(s)) => return Ok(s),
                Ok(Err(e)) => last = e.kind().to_string(),
                Err(_) => last = "timed out".to_owned(),
            }
        }
        Err(EgressError::Unreachable(format!("{host}:{port}"), last))
    }

    /// A UDP socket connected to `host:port`, at an address the policy allows.
    pub async fn connect_udp(&self, host: &str, port: u16) -> Result<UdpSocket, EgressError> {
        let addrs = self.resolve(host, port).await?;
        let mut last = String::new();
        for a in addrs {
            let local = if a.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" };
            let s = match UdpSocket::bind(local).await {
                Ok(s) => s,
                Err(e) => {
                    last = e.kind().to_string();
                    continue;
                }
            };
            match s.connect(a).await {
                Ok(()) => return Ok(s),
                Err(e) => last = e.kind().to_string(),
            }
        }
        Err(EgressError::Unreachable(format!("{host}:{port}"), last))
    }

    /// An HTTP client for the origin of `url` only, pinned to the addresses the
    /// policy allowed for it. Redirects are off.
    pub async fn http_client(
        &self,
        url: &str,
        options: HttpOptions,
    ) -> Result<EgressHttp, EgressError> {
        let origin = Origin::of(url)?;
        let addrs = self.resolve(&origin.host, origin.port).await?;
        let mut b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(options.connect_timeout)
            .timeout(options.timeout)
            .dns_resolver(Arc::new(RefuseEveryName) as Arc<dyn reqwest::dns::Resolve>);
        if !origin.is_literal() {
            b = b.resolve_to_addrs(&origin.host, &addrs);
        }
        if let Some(tls) = options.tls {
            b = b.tls_backend_preconfigured(tls);
        }
        let client = b.build().map_err(|e| EgressError::Client(e.to_string()))?;
        Ok(EgressHttp { client, origin })
    }
}

/// An HTTP client bound to one origin whose addresses the policy allowed.
#[derive(Debug, Clone)]
pub struct EgressHttp {
    client: reqwest::Client,
    origin: Origin,
}

impl EgressHttp {
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// A request to `url`, which must be on this client's origin.
    pub fn request(
        &self,
        method: reqwest::Method,
        url: &str,
    ) -> Result<reqwest::RequestBuilder, EgressError> {
        if Origin::of(url)? != self.origin {
            return Err(EgressError::BadDestination(
                "the URL is not on the origin this client was checked for",
            ));
        }
        Ok(self.client.request(method, url))
    }
}

/// The resolver behind every pinned client: a name that was not checked and pinned
/// is not resolved at all.
struct RefuseEveryName;

impl reqwest::dns::Resolve for RefuseEveryName {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let msg = format!(
            "{} was not checked by the egress policy; not resolved",
            name.as_str()
        );
        Box::pin(async move { Err(msg.into()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_parsed_as_reqwest_parses_them() {
        let o = Origin::of("http://0x7f.1:8080/x").expect("origin");
        assert_eq!(o.host, "127.0.0.1");
        assert_eq!(o.port, 8080);
        let o = Origin::of("https://[::ffff:169.254.169.254]/").expect("origin");
        assert_eq!(o.host, "::ffff:169.254.169.254");
        assert_eq!(o.port, 443);
        assert_eq!(o.to_string(), "https://[::ffff:169.254.169.254]:443");
        assert_eq!(
            Origin::of("https://SIEM.example./a").expect("origin").host,
            "siem.example"
        );
        assert!(Origin::of("ftp://x.example/").is_err());
        assert!(Origin::of("not a url").is_err());
    }

    #[tokio::test]
    async fn literals_and_names_are_checked_after_resolution() {
        let deny = Egress::default();
        for host in ["127.0.0.1", "[::1]", "::ffff:169.254.169.254", "localhost"] {
            let e = deny.resolve(host, 80).await.expect_err(host);
            assert_eq!(e.class(), "refused_by_policy", "{host}: {e}");
        }
        let allow = Egress::new(
            EgressPolicy::with_allow_list(&["127.0.0.1/32", "::1/128"]).expect("policy"),
        );
        let addrs = allow.resolve("localhost", 80).await.expect("localhost");
        assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 80));
    }

    /// Tidy: outbound clients and sockets are made only in this module, so no new
    /// client can forget the policy. Test code is not scanned.
    #[test]
    fn no_outbound_connection_is_made_outside_the_egress_module() {
        const FORBIDDEN: [&str; 9] = [
            "reqwest::Client::builder",
            "Client::builder(",
            "ClientBuilder::new",
            "reqwest::Client::new",
            "reqwest::get(",
            "TcpStream::connect",
            "TcpSocket::new",
            "UdpSocket::bind",
            "lookup_host",
        ];
        // Every crate of the workspace (the server's and the CLI's code too).
        let crates = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut offenders = Vec::new();
        let mut stack: Vec<_> = std::fs::read_dir(&crates)
            .expect("read crates")
            .map(|e| e.expect("entry").path().join("src"))
            .filter(|p| p.is_dir())
            .collect();
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("read src") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                if path.extension().is_none_or(|e| e != "rs")
                    || path.ends_with("ward-jobs/src/egress.rs")
                {
                    continue;
                }
                let text = std::fs::read_to_string(&path).expect("read file");
                let code = text.split("#[cfg(test)]").next().unwrap_or_default();
                for pattern in FORBIDDEN {
                    if code.contains(pattern) {
                        offenders.push(format!("{}: {pattern}", path.display()));
                    }
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "outbound connections must go through ward_jobs::egress: {offenders:?}"
        );
    }
}
