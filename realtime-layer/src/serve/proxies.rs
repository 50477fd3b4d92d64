//! Who the client is behind a reverse proxy: [`TrustedProxies`].
//!
//! Behind a proxy every request comes from the proxy's address, so per-client limits keyed by the
//! TCP peer (the live stream's filters per client) would make every user share one client's
//! share. The proxy says who it forwards for in `Forwarded: for=` (RFC 7239) or
//! `X-Forwarded-For`; anyone can send those headers too, so they are read only from peers listed
//! as trusted, and only as far back as the chain stays in trusted hands.

use http::HeaderMap;
use ipnet::IpNet;
use std::net::{IpAddr, Ipv6Addr};

/// The reverse proxies whose `Forwarded` / `X-Forwarded-For` headers are believed (none by
/// default: the TCP peer is the client).
///
/// ```
/// use realtime_layer::serve::TrustedProxies;
/// use std::net::IpAddr;
///
/// let proxies = TrustedProxies::parse(["10.0.0.0/8", "::1"]).unwrap();
/// let mut headers = http::HeaderMap::new();
/// headers.insert("x-forwarded-for", "203.0.113.7, 10.1.2.3".parse().unwrap());
/// let proxy: IpAddr = "10.0.0.5".parse().unwrap();
/// assert_eq!(proxies.client_ip(proxy, &headers), "203.0.113.7".parse::<IpAddr>().unwrap());
/// // The same header from an untrusted peer is ignored.
/// let stranger: IpAddr = "198.51.100.9".parse().unwrap();
/// assert_eq!(proxies.client_ip(stranger, &headers), stranger);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

/// An entry of a trusted proxy list that is neither an IP address nor a CIDR network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("trusted proxy {0:?} is neither an IP address nor a network such as 10.0.0.0/8")]
pub struct InvalidProxy(pub String);

impl TrustedProxies {
    /// Trusts the listed addresses and networks (`10.0.0.5`, `10.0.0.0/8`, `::1`, `fd00::/8`).
    pub fn parse<I, S>(list: I) -> Result<Self, InvalidProxy>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut nets = Vec::new();
        for item in list {
            let text = item.as_ref().trim();
            if text.is_empty() {
                continue;
            }
            let net = match text.parse::<IpNet>() {
                Ok(net) => net,
                Err(_) => text
                    .parse::<IpAddr>()
                    .map(IpNet::from)
                    .map_err(|_| InvalidProxy(text.to_string()))?,
            };
            nets.push(net);
        }
        Ok(TrustedProxies { nets })
    }

    /// True when no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// The client of a request that came from `peer`: `peer` itself unless it is a trusted
    /// proxy; then the nearest address of the forwarding chain (`Forwarded: for=`, else
    /// `X-Forwarded-For`, read right to left) that is not a trusted proxy. A chain that cannot be
    /// read (an `unknown` or obfuscated hop before an untrusted one) leaves the proxy as the
    /// client: it is the last hop that can be believed.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.contains(peer) {
            return peer;
        }
        let chain = forwarded_chain(headers);
        let mut nearest = peer;
        for hop in chain.iter().rev() {
            let Some(ip) = hop else {
                return peer;
            };
            if !self.contains(*ip) {
                return *ip;
            }
            nearest = *ip;
        }
        nearest
    }
}

/// The forwarding chain, client first: every `for=` of the `Forwarded` headers, or, without
/// them, every address of the `X-Forwarded-For` headers. `None` for a hop that is not an address.
fn forwarded_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let values = |name: &str| {
        headers
            .get_all(name)
            .iter()
            .flat_map(|v| v.to_str().unwrap_or("unknown").split(','))
            .map(str::to_string)
            .collect::<Vec<String>>()
    };
    let forwarded = values("forwarded");
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .map(|element| {
                element
                    .split(';')
                    .filter_map(|pair| pair.split_once('='))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
                    .and_then(|(_, v)| address(v))
            })
            .collect();
    }
    values("x-forwarded-for")
        .iter()
        .map(|hop| address(hop))
        .collect()
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
/// `[2001:db8::1]:4711`, optionally quoted.
fn address(text: &str) -> Option<IpAddr> {
    let text = text.trim().trim_matches('"');
    if let Some(rest) = text.strip_prefix('[') {
        let inside = rest.split_once(']')?.0;
        return inside.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    // `a.b.c.d:port`
    let (host, port) = text.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_peers() {
        let p = TrustedProxies::parse(["10.0.0.0/8", "127.0.0.1", "fd00::/8"]).unwrap();
        let xff = headers(&[("x-forwarded-for", "198.51.100.1, 203.0.113.7, 10.9.9.9")]);
        // Rightmost untrusted hop: the address the outermost trusted proxy saw.
        assert_eq!(p.client_ip(ip("127.0.0.1"), &xff), ip("203.0.113.7"));
        assert_eq!(p.client_ip(ip("192.0.2.1"), &xff), ip("192.0.2.1"));
        assert_eq!(
            TrustedProxies::default().client_ip(ip("127.0.0.1"), &xff),
            ip("127.0.0.1")
        );
        let fwd = headers(&[
            (
                "forwarded",
                r#"for=192.0.2.60;proto=http, for="[2001:db8:cafe::17]:4711""#,
            ),
            ("x-forwarded-for", "198.51.100.1"),
        ]);
        assert_eq!(p.client_ip(ip("fd00::1"), &fwd), ip("2001:db8:cafe::17"));
        let ported = headers(&[("x-forwarded-for", "203.0.113.9:5555")]);
        assert_eq!(p.client_ip(ip("10.0.0.1"), &ported), ip("203.0.113.9"));
        // An unreadable hop before any untrusted one: the proxy is the last believable hop.
        let unknown = headers(&[("forwarded", "for=unknown")]);
        assert_eq!(p.client_ip(ip("10.0.0.1"), &unknown), ip("10.0.0.1"));
        // All hops trusted: the first one.
        let inner = headers(&[("x-forwarded-for", "10.1.1.1, 10.2.2.2")]);
        assert_eq!(p.client_ip(ip("10.0.0.1"), &inner), ip("10.1.1.1"));
        // No header: the proxy itself.
        assert_eq!(
            p.client_ip(ip("10.0.0.1"), &HeaderMap::new()),
            ip("10.0.0.1")
        );
        // IPv4-mapped IPv6 peers are their IPv4 address.
        assert_eq!(p.client_ip(ip("::ffff:10.0.0.1"), &xff), ip("203.0.113.7"));
    }

    #[test]
    fn lists_parse_addresses_and_networks() {
        assert!(TrustedProxies::parse(["10.0.0.0/8", " ::1 ", ""]).is_ok());
        assert_eq!(
            TrustedProxies::parse(["10.0.0.0/33"]).unwrap_err(),
            InvalidProxy("10.0.0.0/33".into())
        );
        assert!(TrustedProxies::parse(["proxy.internal"]).is_err());
        assert!(TrustedProxies::default().is_empty());
    }
}
