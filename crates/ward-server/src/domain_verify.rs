//! Email-domain verification by DNS: reads a domain's TXT records through the
//! configured resolver (`dns.resolver`) or the system's, and says whether one
//! carries the company's `ward-verification=<token>` (the decision is
//! `ward_core::domain::txt_proves`).
//!
//! The resolver is the operator's infrastructure, chosen in configuration, not a
//! destination a company can choose, so it is outside the egress policy; what is
//! asked of it is only a TXT query for a validated domain name.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::Resolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;

/// Why TXT records could not be read (shown to the Admin as one line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    #[error("the DNS resolver could not be set up: {0}")]
    Setup(String),
    #[error("no TXT records found for {0}")]
    NoRecords(String),
    #[error("the DNS lookup for {0} failed")]
    Lookup(String),
}

/// The TXT records of `domain` (each record's strings joined, lossy UTF-8).
pub async fn txt_records(
    resolver: Option<SocketAddr>,
    domain: &str,
) -> Result<Vec<String>, DnsError> {
    let mut opts = ResolverOpts::default();
    opts.timeout = Duration::from_secs(5);
    opts.attempts = 2;
    // Verification must see the record as published now, not as cached.
    opts.cache_size = 0;
    let builder = match resolver {
        Some(addr) => {
            let mut server = NameServerConfig::udp_and_tcp(addr.ip());
            for c in &mut server.connections {
                c.port = addr.port();
            }
            Resolver::builder_with_config(
                ResolverConfig::from_parts(None, Vec::new(), vec![server]),
                TokioRuntimeProvider::default(),
            )
        }
        None => Resolver::builder_tokio().map_err(|e| DnsError::Setup(e.to_string()))?,
    };
    let resolver = builder
        .with_options(opts)
        .build()
        .map_err(|e| DnsError::Setup(e.to_string()))?;
    // A trailing dot: the name is absolute, never completed with a search domain.
    let name = format!("{}.", domain.trim_end_matches('.'));
    let lookup = resolver.txt_lookup(name).await.map_err(|e| {
        if e.is_no_records_found() {
            DnsError::NoRecords(domain.to_owned())
        } else {
            tracing::warn!(domain, error = %e, "TXT lookup failed");
            DnsError::Lookup(domain.to_owned())
        }
    })?;
    Ok(lookup
        .answers()
        .iter()
        .filter_map(|record| match &record.data {
            RData::TXT(txt) => Some(
                txt.txt_data
                    .iter()
                    .map(|part| String::from_utf8_lossy(part).into_owned())
                    .collect::<String>(),
            ),
            _ => None,
        })
        .collect())
}
