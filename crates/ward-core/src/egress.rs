//! The egress policy: which addresses Ward may open a connection to. Every
//! outbound connection (identity providers, SIEMs, audit sinks, and whatever comes
//! later) is judged here on the address it is about to use, after DNS resolution,
//! so a name that resolves to a private address, or an IPv6 form that embeds one,
//! is judged as that address.
//!
//! By default the loopback, private, shared (CGNAT), link-local, unique-local,
//! documentation, multicast, broadcast and reserved ranges and the cloud metadata
//! endpoints are refused: an Admin who can type a URL must not reach the
//! database on `localhost:5432` or the instance's credentials at
//! `169.254.169.254`. An operator opens what a self-hosted deployment needs with
//! an allow-list of networks and `host:port` pairs.
//!
//! Pure: the edge (`ward_server::egress`) resolves names and connects; this
//! module only decides.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// Why an address is refused by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RangeClass {
    /// `0.0.0.0/8`, `::` (on Linux a connection to 0.0.0.0 reaches this host).
    Unspecified,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// RFC 1918: `10/8`, `172.16/12`, `192.168/16`; deprecated site-local `fec0::/10`;
    /// local-use NAT64 `64:ff9b:1::/48`.
    Private,
    /// RFC 6598 shared address space (carrier-grade NAT), `100.64/10`.
    SharedAddressSpace,
    /// `169.254/16`, `fe80::/10`.
    LinkLocal,
    /// RFC 4193 `fc00::/7`.
    UniqueLocal,
    /// Instance metadata services: `169.254.169.254`, `169.254.170.2` (ECS task
    /// credentials), `100.100.100.200` (Alibaba), `fd00:ec2::254`.
    CloudMetadata,
    /// `224/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// RFC 5737 and RFC 3849/9637 documentation ranges.
    Documentation,
    /// Everything else IANA reserves: `192.0.0/24`, `198.18/15`, `240/4`, the 6to4
    /// relay anycast, `100::/64`, Teredo `2001::/32`.
    Reserved,
}

impl RangeClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::Loopback => "loopback",
            Self::Private => "private",
            Self::SharedAddressSpace => "shared (CGNAT)",
            Self::LinkLocal => "link-local",
            Self::UniqueLocal => "unique-local",
            Self::CloudMetadata => "cloud metadata",
            Self::Multicast => "multicast",
            Self::Broadcast => "broadcast",
            Self::Documentation => "documentation",
            Self::Reserved => "reserved",
        }
    }

    /// Classes no allow-list entry opens: they are never a place to send data
    /// (unspecified means "this host"; multicast and broadcast are not one peer).
    fn never_allowed(self) -> bool {
        matches!(self, Self::Unspecified | Self::Multicast | Self::Broadcast)
    }
}

/// The policy's refusal of one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EgressRefusal {
    /// The address as judged: an IPv4 address embedded in IPv6 is shown as IPv4.
    pub address: IpAddr,
    pub class: RangeClass,
}

impl fmt::Display for EgressRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.class.never_allowed() {
            write!(
                f,
                "{} is a {} address, which Ward never connects to",
                self.address,
                self.class.as_str()
            )
        } else {
            write!(
                f,
                "{} is a {} address, which Ward connects to only if egress.allow lists it",
                self.address,
                self.class.as_str()
            )
        }
    }
}

impl std::error::Error for EgressRefusal {}

/// One operator allow-list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowEntry {
    /// `10.1.2.0/24`, or one address (`10.1.2.3`, `::1`): any port.
    Network(IpNet),
    /// `10.1.2.3:8089`, `[::1]:8443`: that address and port only.
    Socket(SocketAddr),
    /// `siem.internal:8089`: whatever this name resolves to, on this port only,
    /// when the connection is made to this name. The name is trusted as far as the
    /// operator trusts their DNS for it.
    HostPort { host: String, port: u16 },
}

/// An allow-list entry that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{entry:?} is not a network (10.1.2.0/24), an address, address:port or host:port (siem.internal:8089)"
)]
pub struct BadAllowEntry {
    pub entry: String,
}

impl FromStr for AllowEntry {
    type Err = BadAllowEntry;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadAllowEntry {
            entry: s.to_owned(),
        };
        let t = s.trim();
        if let Ok(net) = t.parse::<IpNet>() {
            return Ok(Self::Network(net.trunc()));
        }
        if let Ok(ip) = t.parse::<IpAddr>() {
            return Ok(Self::Network(IpNet::from(ip)));
        }
        if let Ok(sa) = t.parse::<SocketAddr>() {
            if sa.port() == 0 {
                return Err(bad());
            }
            return Ok(Self::Socket(sa));
        }
        let (host, port) = t.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().ok().filter(|p| *p != 0).ok_or_else(bad)?;
        let host = normalize_host(host);
        if !is_host_name(&host) {
            return Err(bad());
        }
        Ok(Self::HostPort { host, port })
    }
}

impl fmt::Display for AllowEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Network(n) => write!(f, "{n}"),
            Self::Socket(s) => write!(f, "{s}"),
            Self::HostPort { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

/// Lower case, without the root's trailing dot: the form names are compared in.
pub fn normalize_host(host: &str) -> String {
    host.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// A DNS name of letters, digits, hyphens and dots (IDNs arrive as punycode).
fn is_host_name(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        // An all-numeric name would be an address in disguise (`127.1`).
        && !h.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// Where a connection is going: the name it was asked for (if it was a name, not
/// an address literal), and the address and port it is about to use.
#[derive(Debug, Clone, Copy)]
pub struct Destination<'a> {
    pub host_name: Option<&'a str>,
    pub address: IpAddr,
    pub port: u16,
}

/// Default-deny for internal ranges, plus the operator's allow-list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EgressPolicy {
    allow: Vec<AllowEntry>,
}

impl EgressPolicy {
    /// The policy with these allow-list entries (each checked; the first bad one
    /// is the error).
    pub fn with_allow_list<S: AsRef<str>>(entries: &[S]) -> Result<Self, BadAllowEntry> {
        let allow = entries
            .iter()
            .map(|e| e.as_ref().parse())
            .collect::<Result<_, _>>()?;
        Ok(Self { allow })
    }

    pub fn allow_list(&self) -> &[AllowEntry] {
        &self.allow
    }

    /// Whether Ward may connect to `d`.
    pub fn check(&self, d: &Destination<'_>) -> Result<(), EgressRefusal> {
        let address = canonical(d.address);
        let Some(class) = classify(address) else {
            return Ok(());
        };
        let refusal = EgressRefusal { address, class };
        if class.never_allowed() {
            return Err(refusal);
        }
        let host = d.host_name.map(normalize_host);
        let opened = self.allow.iter().any(|e| match e {
            // A metadata endpoint is opened only by an entry naming exactly it, so
            // allowing a link-local or private network does not expose the
            // instance's credentials along with it.
            AllowEntry::Network(n) => {
                n.contains(&address)
                    && (class != RangeClass::CloudMetadata || n.prefix_len() == n.max_prefix_len())
            }
            AllowEntry::Socket(s) => canonical(s.ip()) == address && s.port() == d.port,
            AllowEntry::HostPort { host: h, port } => {
                class != RangeClass::CloudMetadata
                    && *port == d.port
                    && host.as_deref() == Some(h.as_str())
            }
        });
        if opened { Ok(()) } else { Err(refusal) }
    }
}

/// The address an IPv6 form stands for: IPv4-mapped (`::ffff:a.b.c.d`),
/// IPv4-compatible (`::a.b.c.d`), NAT64 (`64:ff9b::/96`, RFC 6052) and 6to4
/// (`2002::/16`) addresses are judged as the IPv4 address they carry, because
/// that is where the packets end up.
pub fn canonical(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else { return ip };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return IpAddr::V4(v4);
    }
    let s = v6.segments();
    let o = v6.octets();
    let embedded_low = || Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    // IPv4-compatible (deprecated, RFC 4291 §2.5.5.1); `::` and `::1` stay IPv6.
    if s[..6] == [0; 6] && !(s[6] == 0 && s[7] <= 1) {
        return IpAddr::V4(embedded_low());
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return IpAddr::V4(embedded_low());
    }
    if s[0] == 0x2002 {
        return IpAddr::V4(Ipv4Addr::new(o[2], o[3], o[4], o[5]));
    }
    ip
}

/// The default-deny class of an address (already canonical), or `None` for a
/// globally routable one.
fn classify(ip: IpAddr) -> Option<RangeClass> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

const METADATA_V4: [Ipv4Addr; 3] = [
    Ipv4Addr::new(169, 254, 169, 254),
    Ipv4Addr::new(169, 254, 170, 2),
    Ipv4Addr::new(100, 100, 100, 200),
];
const METADATA_V6: [Ipv6Addr; 1] = [Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)];

fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> Ipv4Net {
    // The prefix lengths below are constants no larger than 32.
    Ipv4Net::new(Ipv4Addr::new(a, b, c, d), len).unwrap_or_default()
}

fn classify_v4(ip: Ipv4Addr) -> Option<RangeClass> {
    use RangeClass as C;
    if METADATA_V4.contains(&ip) {
        return Some(C::CloudMetadata);
    }
    if ip == Ipv4Addr::BROADCAST {
        return Some(C::Broadcast);
    }
    // IANA IPv4 Special-Purpose Address Registry (RFC 6890 and updates).
    let table: [(Ipv4Net, RangeClass); 15] = [
        (v4(0, 0, 0, 0, 8), C::Unspecified),
        (v4(10, 0, 0, 0, 8), C::Private),
        (v4(100, 64, 0, 0, 10), C::SharedAddressSpace),
        (v4(127, 0, 0, 0, 8), C::Loopback),
        (v4(169, 254, 0, 0, 16), C::LinkLocal),
        (v4(172, 16, 0, 0, 12), C::Private),
        (v4(192, 0, 0, 0, 24), C::Reserved),
        (v4(192, 0, 2, 0, 24), C::Documentation),
        (v4(192, 88, 99, 0, 24), C::Reserved),
        (v4(192, 168, 0, 0, 16), C::Private),
        (v4(198, 18, 0, 0, 15), C::Reserved),
        (v4(198, 51, 100, 0, 24), C::Documentation),
        (v4(203, 0, 113, 0, 24), C::Documentation),
        (v4(224, 0, 0, 0, 4), C::Multicast),
        (v4(240, 0, 0, 0, 4), C::Reserved),
    ];
    table
        .iter()
        .find(|(net, _)| net.contains(&ip))
        .map(|(_, c)| *c)
}

fn v6(segments: [u16; 8], len: u8) -> Ipv6Net {
    let [a, b, c, d, e, f, g, h] = segments;
    // The prefix lengths below are constants no larger than 128.
    Ipv6Net::new(Ipv6Addr::new(a, b, c, d, e, f, g, h), len).unwrap_or_default()
}

fn classify_v6(ip: Ipv6Addr) -> Option<RangeClass> {
    use RangeClass as C;
    if METADATA_V6.contains(&ip) {
        return Some(C::CloudMetadata);
    }
    if ip.is_unspecified() {
        return Some(C::Unspecified);
    }
    if ip.is_loopback() {
        return Some(C::Loopback);
    }
    // IANA IPv6 Special-Purpose Address Registry; the IPv4-embedding forms were
    // turned into IPv4 by `canonical` before this.
    let table: [(Ipv6Net, RangeClass); 9] = [
        (v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48), C::Private),
        (v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64), C::Reserved),
        (v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32), C::Reserved),
        (v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), C::Documentation),
        (v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), C::Documentation),
        (v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7), C::UniqueLocal),
        (v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), C::LinkLocal),
        (v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10), C::Private),
        (v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), C::Multicast),
    ];
    table
        .iter()
        .find(|(net, _)| net.contains(&ip))
        .map(|(_, c)| *c)
}

/// Query parameter names that carry a secret by convention (compared without
/// case, and also as a suffix after `_` or `-`, so `hec_token` and `X-Api-Key`
/// count). A URL is stored, logged and audited; a secret in it would be too.
const SECRET_PARAMS: [&str; 17] = [
    "token",
    "key",
    "secret",
    "password",
    "passwd",
    "pass",
    "pwd",
    "sig",
    "signature",
    "api_key",
    "apikey",
    "access_token",
    "auth",
    "authorization",
    "code",
    "credential",
    "credentials",
];

/// Why a URL may not be stored: it carries credentials (userinfo) or a query
/// parameter named like a secret. The message names the parameter, never its value.
pub fn secret_in_url(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Some(
            "must not contain credentials (user:password@); give them as separate secrets"
                .to_owned(),
        );
    }
    let query = rest.split_once('?').map(|(_, q)| q).unwrap_or_default();
    let query = query.split('#').next().unwrap_or_default();
    for pair in query.split(['&', ';']).filter(|p| !p.is_empty()) {
        let name = pair.split('=').next().unwrap_or_default();
        let name = percent_decode_lossy(name).to_ascii_lowercase();
        let looks_secret = SECRET_PARAMS.iter().any(|s| {
            name == *s
                || name
                    .strip_suffix(s)
                    .is_some_and(|p| p.ends_with('_') || p.ends_with('-'))
        });
        if looks_secret {
            let shown: String = name
                .chars()
                .filter(|c| c.is_ascii_graphic())
                .take(40)
                .collect();
            return Some(format!(
                "must not carry a secret in its query string (parameter {shown:?}); give it as a separate secret"
            ));
        }
    }
    None
}

fn percent_decode_lossy(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b.get(i),
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (Some(b'%'), Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (Some(b'+'), _, _) => {
                out.push(b' ');
                i += 1;
            }
            (Some(&c), _, _) => {
                out.push(c);
                i += 1;
            }
            (None, _, _) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    /// `check(policy, host, addr, port)` → `None` when allowed, else the class.
    fn check(p: &EgressPolicy, host: Option<&str>, addr: &str, port: u16) -> Option<RangeClass> {
        p.check(&Destination {
            host_name: host,
            address: ip(addr),
            port,
        })
        .err()
        .map(|r| r.class)
    }

    #[test]
    fn default_policy_refuses_each_internal_range_at_its_edges() {
        use RangeClass as C;
        let p = EgressPolicy::default();
        let cases: &[(&str, Option<RangeClass>)] = &[
            ("0.0.0.0", Some(C::Unspecified)),
            ("0.255.255.255", Some(C::Unspecified)),
            ("1.0.0.0", None),
            ("9.255.255.255", None),
            ("10.0.0.0", Some(C::Private)),
            ("10.255.255.255", Some(C::Private)),
            ("11.0.0.0", None),
            ("100.63.255.255", None),
            ("100.64.0.0", Some(C::SharedAddressSpace)),
            ("100.127.255.255", Some(C::SharedAddressSpace)),
            ("100.128.0.0", None),
            ("100.100.100.200", Some(C::CloudMetadata)),
            ("126.255.255.255", None),
            ("127.0.0.0", Some(C::Loopback)),
            ("127.255.255.255", Some(C::Loopback)),
            ("128.0.0.0", None),
            ("169.253.255.255", None),
            ("169.254.0.0", Some(C::LinkLocal)),
            ("169.254.169.254", Some(C::CloudMetadata)),
            ("169.254.170.2", Some(C::CloudMetadata)),
            ("169.254.255.255", Some(C::LinkLocal)),
            ("169.255.0.0", None),
            ("172.15.255.255", None),
            ("172.16.0.0", Some(C::Private)),
            ("172.31.255.255", Some(C::Private)),
            ("172.32.0.0", None),
            ("192.0.0.8", Some(C::Reserved)),
            ("192.0.2.1", Some(C::Documentation)),
            ("192.88.99.1", Some(C::Reserved)),
            ("192.167.255.255", None),
            ("192.168.0.0", Some(C::Private)),
            ("192.168.255.255", Some(C::Private)),
            ("192.169.0.0", None),
            ("198.18.0.0", Some(C::Reserved)),
            ("198.19.255.255", Some(C::Reserved)),
            ("198.20.0.0", None),
            ("198.51.100.7", Some(C::Documentation)),
            ("203.0.113.9", Some(C::Documentation)),
            ("223.255.255.255", None),
            ("224.0.0.0", Some(C::Multicast)),
            ("239.255.255.255", Some(C::Multicast)),
            ("240.0.0.0", Some(C::Reserved)),
            ("255.255.255.254", Some(C::Reserved)),
            ("255.255.255.255", Some(C::Broadcast)),
            ("8.8.8.8", None),
            ("::", Some(C::Unspecified)),
            ("::1", Some(C::Loopback)),
            ("::2", Some(C::Unspecified)),
            ("fc00::", Some(C::UniqueLocal)),
            (
                "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                Some(C::UniqueLocal),
            ),
            ("fd00:ec2::254", Some(C::CloudMetadata)),
            ("fe00::", None),
            ("fe80::1", Some(C::LinkLocal)),
            ("febf:ffff::", Some(C::LinkLocal)),
            ("fec0::1", Some(C::Private)),
            ("ff02::1", Some(C::Multicast)),
            ("2001:db8::1", Some(C::Documentation)),
            ("2001::1", Some(C::Reserved)),
            ("3fff::1", Some(C::Documentation)),
            ("64:ff9b:1::1", Some(C::Private)),
            ("100::1", Some(C::Reserved)),
            ("2606:4700::1111", None),
        ];
        for (addr, expect) in cases {
            assert_eq!(check(&p, None, addr, 443), *expect, "{addr}");
        }
    }

    #[test]
    fn ipv6_forms_that_carry_ipv4_are_judged_as_ipv4() {
        use RangeClass as C;
        let p = EgressPolicy::default();
        for (addr, expect) in [
            ("::ffff:169.254.169.254", Some(C::CloudMetadata)),
            ("::ffff:127.0.0.1", Some(C::Loopback)),
            ("::ffff:10.0.0.1", Some(C::Private)),
            ("::ffff:8.8.8.8", None),
            ("::127.0.0.1", Some(C::Loopback)),
            ("::10.0.0.1", Some(C::Private)),
            ("64:ff9b::a9fe:a9fe", Some(C::CloudMetadata)),
            ("64:ff9b::7f00:1", Some(C::Loopback)),
            ("64:ff9b::808:808", None),
            ("2002:7f00:1::", Some(C::Loopback)),
            ("2002:a00:1::1", Some(C::Private)),
        ] {
            assert_eq!(check(&p, None, addr, 80), expect, "{addr}");
        }
        let r = p
            .check(&Destination {
                host_name: None,
                address: ip("::ffff:169.254.169.254"),
                port: 80,
            })
            .expect_err("refused");
        assert_eq!(r.address, ip("169.254.169.254"));
        assert!(
            r.to_string()
                .contains("169.254.169.254 is a cloud metadata address")
        );
    }

    #[test]
    fn the_allow_list_opens_exactly_what_it_names() {
        let p = EgressPolicy::with_allow_list(&[
            "10.1.2.0/24",
            "siem.internal:8089",
            "127.0.0.1:6514",
            "[::1]:8443",
            "fd12::/16",
            "169.254.0.0/16",
        ])
        .expect("valid");
        // Networks: any port, edges included.
        assert_eq!(check(&p, None, "10.1.2.0", 1), None);
        assert_eq!(check(&p, None, "10.1.2.255", 6379), None);
        assert_eq!(check(&p, None, "10.1.3.0", 443), Some(RangeClass::Private));
        assert_eq!(check(&p, None, "::ffff:10.1.2.9", 443), None);
        assert_eq!(check(&p, None, "fd12::9", 443), None);
        // host:port: that name, that port, any address it resolves to.
        assert_eq!(check(&p, Some("siem.internal"), "10.9.9.9", 8089), None);
        assert_eq!(check(&p, Some("SIEM.Internal."), "10.9.9.9", 8089), None);
        assert_eq!(
            check(&p, Some("siem.internal"), "10.9.9.9", 8090),
            Some(RangeClass::Private)
        );
        assert_eq!(
            check(&p, Some("other.internal"), "10.9.9.9", 8089),
            Some(RangeClass::Private)
        );
        // The literal address a name resolved to is not the name.
        assert_eq!(check(&p, None, "10.9.9.9", 8089), Some(RangeClass::Private));
        // address:port.
        assert_eq!(check(&p, None, "127.0.0.1", 6514), None);
        assert_eq!(
            check(&p, None, "127.0.0.1", 6515),
            Some(RangeClass::Loopback)
        );
        assert_eq!(check(&p, None, "::1", 8443), None);
        assert_eq!(check(&p, None, "::1", 22), Some(RangeClass::Loopback));
        // A link-local network does not open the metadata endpoint inside it.
        assert_eq!(check(&p, None, "169.254.1.1", 80), None);
        assert_eq!(
            check(&p, None, "169.254.169.254", 80),
            Some(RangeClass::CloudMetadata)
        );
        let exact = EgressPolicy::with_allow_list(&["169.254.169.254/32"]).expect("valid");
        assert_eq!(check(&exact, None, "169.254.169.254", 80), None);
        // Nothing opens the unspecified address or multicast.
        let all = EgressPolicy::with_allow_list(&["0.0.0.0/0", "::/0"]).expect("valid");
        assert_eq!(
            check(&all, None, "0.0.0.0", 80),
            Some(RangeClass::Unspecified)
        );
        assert_eq!(check(&all, None, "::", 80), Some(RangeClass::Unspecified));
        assert_eq!(
            check(&all, None, "224.0.0.1", 80),
            Some(RangeClass::Multicast)
        );
        assert_eq!(check(&all, None, "127.0.0.1", 80), None);
    }

    #[test]
    fn allow_entries_parse_or_say_why_not() {
        for good in [
            "10.1.2.0/24",
            "10.1.2.3",
            "::1",
            "fd00::/8",
            "10.0.0.5:443",
            "[::1]:8443",
            "siem.internal:8089",
            "localhost:514",
        ] {
            assert!(good.parse::<AllowEntry>().is_ok(), "{good}");
        }
        for bad in [
            "",
            "siem.internal",
            "siem.internal:0",
            "siem.internal:99999",
            "10.0.0.0/33",
            "http://siem.internal:8089",
            "siem internal:80",
            "127.1:80",
            "*.internal:80",
        ] {
            assert!(bad.parse::<AllowEntry>().is_err(), "{bad:?}");
        }
        let e = EgressPolicy::with_allow_list(&["10.0.0.0/8", "nope"]).expect_err("bad");
        assert!(e.to_string().contains("\"nope\""));
        // Host bits are dropped: 10.1.2.3/24 means 10.1.2.0/24.
        assert_eq!(
            "10.1.2.3/24".parse::<AllowEntry>().map(|e| e.to_string()),
            Ok("10.1.2.0/24".to_owned())
        );
    }

    #[test]
    fn secrets_in_urls_are_found() {
        for bad in [
            "https://admin:S3cretPw@siem.example/hook",
            "https://token@siem.example/",
            "https://siem.example/hook?token=abc",
            "https://siem.example/hook?a=1&API_KEY=x",
            "https://siem.example/hook?hec_token=x",
            "https://siem.example/hook?X-Api-Key=x",
            "https://siem.example/hook?sig=x",
            "https://siem.example/hook?%74oken=x",
            "https://siem.example/hook?code=x",
            "https://siem.example/hook?password",
            "https://siem.example/hook?access_token=x#frag",
        ] {
            assert!(secret_in_url(bad).is_some(), "{bad}");
        }
        for good in [
            "https://siem.example/services/collector/event",
            "https://siem.example/hook?channel=soc&format=json",
            "https://siem.example/hook?monkey=1",
            "https://siem.example/a@b",
            "http://127.0.0.1:8088/x?index=main",
        ] {
            assert_eq!(secret_in_url(good), None, "{good}");
        }
        let m = secret_in_url("https://h/?token=SUPERSECRET").expect("refused");
        assert!(!m.contains("SUPERSECRET"));
    }
}
