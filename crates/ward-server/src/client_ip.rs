//! Which address a request came from. `X-Forwarded-For` is believed only when the
//! direct peer is a trusted proxy, and read right to left: each trusted hop vouches
//! for the one before it, and the first untrusted address is the client. A client
//! can prepend anything it likes, so the leftmost entries are never trusted.

use std::net::IpAddr;

use ipnet::IpNet;

pub fn resolve_client_ip(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let Some(header) = forwarded_for else {
        return peer;
    };
    let mut client = peer;
    for part in header.rsplit(',') {
        let Ok(ip) = part.trim().parse::<IpAddr>() else {
            // A malformed hop: stop and use the last address we could vouch for.
            return client;
        };
        client = ip;
        if !is_trusted(&ip) {
            return ip;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(peer: &str, xff: Option<&str>, trusted: &[&str], want: &str) {
        let nets: Vec<IpNet> = trusted.iter().map(|t| t.parse().expect("cidr")).collect();
        let got = resolve_client_ip(peer.parse().expect("ip"), xff, &nets);
        assert_eq!(
            got.to_string(),
            want,
            "peer {peer} xff {xff:?} trusted {trusted:?}"
        );
    }

    #[test]
    fn forwarded_for() {
        // Untrusted peer: header ignored (spoofing attempt).
        check("203.0.113.9", Some("1.2.3.4"), &[], "203.0.113.9");
        check("127.0.0.1", Some("1.2.3.4"), &[], "127.0.0.1");
        // Trusted proxy: rightmost untrusted hop is the client.
        check(
            "10.0.0.1",
            Some("198.51.100.7"),
            &["10.0.0.0/8"],
            "198.51.100.7",
        );
        check(
            "10.0.0.1",
            Some("6.6.6.6, 198.51.100.7"),
            &["10.0.0.0/8"],
            "198.51.100.7",
        );
        check(
            "10.0.0.1",
            Some("198.51.100.7, 10.0.0.2"),
            &["10.0.0.0/8"],
            "198.51.100.7",
        );
        // All hops trusted: the leftmost is as far as we can see.
        check(
            "10.0.0.1",
            Some("10.0.0.3, 10.0.0.2"),
            &["10.0.0.0/8"],
            "10.0.0.3",
        );
        // Garbage stops the walk.
        check(
            "10.0.0.1",
            Some("nonsense, 10.0.0.2"),
            &["10.0.0.0/8"],
            "10.0.0.2",
        );
        check("10.0.0.1", None, &["10.0.0.0/8"], "10.0.0.1");
        check("::1", Some("2001:db8::1"), &["::1/128"], "2001:db8::1");
    }
}
