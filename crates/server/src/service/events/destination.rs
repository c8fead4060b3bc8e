//! Where events may be sent: public addresses only, unless the deployment
//! says otherwise.
//!
//! Why: a subscription's URL is chosen by a tenant's admin, and the event
//! workers POST from inside the deployment's network. Without a check, a
//! tenant could aim them at the cloud's metadata service, an internal admin
//! port or another tenant's private service, and read the status codes back
//! from the attempts list. So an endpoint must resolve to public unicast
//! addresses only — checked when the subscription is saved (for an address
//! written in the URL) and again at every connection, by a resolver that
//! drops every non-public address (so a name that later resolves inward,
//! DNS rebinding included, is refused at the moment it matters).
//! `events.allow_private_networks` lifts this for deployments whose
//! receivers live on a private network; `events.allow_http_loopback`
//! admits loopback (tests and local demos).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::config::EventsConfig;

/// Which addresses an event may be sent to under `config`.
#[derive(Debug, Clone, Copy)]
pub struct Destinations {
    private: bool,
    loopback: bool,
}

impl Destinations {
    pub fn of(config: &EventsConfig) -> Destinations {
        Destinations {
            private: config.allow_private_networks,
            loopback: config.allow_private_networks || config.allow_http_loopback,
        }
    }

    /// Whether an event may be sent to `ip`.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        if ip.is_loopback() {
            return self.loopback;
        }
        is_public(ip) || (self.private && !ip.is_unspecified() && !ip.is_multicast())
    }

    /// Whether the address written in `url` (an IP literal or `localhost`)
    /// may be sent to; a name is left to [`FilteringResolver`] at
    /// connection time. An unparsable URL is not allowed.
    pub fn allows_url(&self, url: &str) -> bool {
        let Ok(url) = reqwest::Url::parse(url) else {
            return false;
        };
        let Some(host) = url.host_str() else {
            return false;
        };
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        match bare.parse::<IpAddr>() {
            Ok(ip) => self.allows(ip),
            Err(_) => !bare.eq_ignore_ascii_case("localhost") || self.loopback,
        }
    }
}

/// Public unicast: none of loopback, private, shared (CGNAT), link-local,
/// unspecified, broadcast, multicast, documentation, benchmarking or
/// reserved ranges.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    let [first, second, ..] = segments;
    let octets = ip.octets();
    let v4_at = |at: usize| {
        octets
            .get(at..at + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(Ipv4Addr::from)
    };
    // Forms that carry an IPv4 address to a gateway: judged by that address.
    // IPv4-compatible (::a.b.c.d) and NAT64 (64:ff9b::/96) end in the
    // address; 6to4 (2002:a.b.c.d::/48) starts with it.
    let compatible =
        segments[..6] == [0, 0, 0, 0, 0, 0] && !ip.is_loopback() && !ip.is_unspecified();
    let nat64 = segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
    let embedded = if compatible || nat64 {
        v4_at(12)
    } else if first == 0x2002 {
        v4_at(2)
    } else {
        None
    };
    if let Some(v4) = embedded {
        return is_public_v4(v4);
    }
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local, fc00::/7
        || (first & 0xffc0) == 0xfe80 // link-local, fe80::/10
        || (first & 0xffc0) == 0xfec0 // site-local (deprecated), fec0::/10
        || (first == 0x0100 && segments[1..4] == [0, 0, 0]) // discard, 100::/64
        || (first == 0x2001 && second == 0x0db8)) // documentation
}

/// The event workers' resolver: the system's answer, minus every address
/// [`Destinations`] does not allow; none left is an error.
#[derive(Debug, Clone, Copy)]
pub struct FilteringResolver(pub Destinations);

impl Resolve for FilteringResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allowed = self.0;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| allowed.allows(a.ip()))
                .collect();
            if found.is_empty() {
                return Err("the endpoint resolves to no address events may be sent to".into());
            }
            let addrs: Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(private: bool, loopback: bool) -> Destinations {
        Destinations::of(&EventsConfig {
            allow_private_networks: private,
            allow_http_loopback: loopback,
            ..EventsConfig::default()
        })
    }

    #[test]
    fn only_public_addresses_by_default() {
        let d = config(false, false);
        for inward in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:7",
            "2002:a00:7::1",
            "::10.0.0.7",
            "fec0::1",
            "100::1",
        ] {
            assert!(!d.allows(inward.parse().unwrap()), "{inward}");
        }
        for public in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700::1111",
            "64:ff9b::5db8:d822",
        ] {
            assert!(d.allows(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn the_deployment_can_allow_loopback_or_private_networks() {
        let loopback = config(false, true);
        assert!(loopback.allows("127.0.0.1".parse().unwrap()));
        assert!(!loopback.allows("10.0.0.1".parse().unwrap()));
        let private = config(true, false);
        assert!(private.allows("10.0.0.1".parse().unwrap()));
        assert!(private.allows("::1".parse().unwrap()));
        assert!(!private.allows("0.0.0.0".parse().unwrap()));
    }

    #[test]
    fn addresses_written_in_the_url_are_checked_before_any_connection() {
        let d = config(false, false);
        for refused in [
            "https://169.254.169.254/latest/meta-data",
            "https://10.0.0.7:8443/hook",
            "https://[::1]/hook",
            "https://localhost/hook",
            "https://[::ffff:192.168.0.1]/hook",
        ] {
            assert!(!d.allows_url(refused), "{refused}");
        }
        assert!(d.allows_url("https://hooks.example.com/ladder"));
        assert!(d.allows_url("https://93.184.216.34/hook"));
        assert!(config(false, true).allows_url("http://127.0.0.1:9/hook"));
    }

    #[tokio::test]
    async fn the_resolver_drops_addresses_events_may_not_go_to() {
        let name = || "localhost".parse::<Name>().unwrap();
        let refused = FilteringResolver(config(false, false))
            .resolve(name())
            .await;
        assert!(refused.is_err(), "localhost resolves inward only");
        let allowed = FilteringResolver(config(false, true))
            .resolve(name())
            .await
            .unwrap();
        assert!(allowed.into_iter().all(|a| a.ip().is_loopback()));
    }
}
