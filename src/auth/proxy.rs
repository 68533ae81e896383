//! Sign-in through an authenticating proxy (oauth2-proxy, Pomerium, an ingress with auth): the
//! proxy signs people in and passes who they are in headers. Those headers are believed only on
//! connections from the configured proxy addresses; from anywhere else they are ignored, since
//! anyone could send them.

use std::net::IpAddr;

/// An address or network (`10.0.0.0/8`, `::1`, `127.0.0.1`) a proxy connects from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedNet {
    addr: IpAddr,
    prefix: u8,
}

impl TrustedNet {
    /// Parses `ADDR` or `ADDR/PREFIX`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let (addr, prefix) = match raw.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (raw, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("\u{201c}{raw}\u{201d} is not an IP address or network like 10.0.0.0/8"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("\u{201c}{raw}\u{201d} has a prefix length outside 0–{max}"))?,
        };
        Ok(Self { addr, prefix })
    }

    /// Whether `ip` is inside this network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Splits a groups header (`a,b, c` or `a b`) into names.
pub fn split_groups(raw: &str) -> Vec<String> {
    raw.split([',', ' '])
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .take(200)
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_contain_what_they_should() {
        let lo = TrustedNet::parse("127.0.0.1").unwrap();
        assert!(lo.contains("127.0.0.1".parse().unwrap()));
        assert!(lo.contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!lo.contains("127.0.0.2".parse().unwrap()));
        let ten = TrustedNet::parse("10.0.0.0/8").unwrap();
        assert!(ten.contains("10.200.1.1".parse().unwrap()));
        assert!(!ten.contains("11.0.0.1".parse().unwrap()));
        let all = TrustedNet::parse("0.0.0.0/0").unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        let v6 = TrustedNet::parse("fd00::/8").unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        assert!(TrustedNet::parse("10.0.0.0/33").is_err());
        assert!(TrustedNet::parse("proxy.local").is_err());
    }

    #[test]
    fn groups_split_on_commas_and_spaces() {
        assert_eq!(split_groups("sre, eng  ops"), vec!["sre", "eng", "ops"]);
        assert!(split_groups(" ").is_empty());
    }
}
