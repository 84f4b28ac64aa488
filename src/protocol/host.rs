//! Which `Host` headers name this machine's loopback interface.
//!
//! The local doors (`/_sim`, the console) have no access control: they rely on being reachable
//! from this machine only. A web page elsewhere could still reach them through a developer's
//! browser by DNS rebinding (a host name of the attacker's that resolves to 127.0.0.1), so they
//! answer only requests addressed to a loopback name: `localhost`, `127.x.y.z` or `[::1]`.

/// Whether a `Host` header value (`name` or `name:port`) names the loopback interface.
pub fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((inside, after)) if after.is_empty() || after.starts_with(':') => inside,
            _ => return false,
        },
        None => host.split(':').next().unwrap_or(""),
    };
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    name.parse::<std::net::IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::is_loopback_host;

    #[test]
    fn loopback_names_with_and_without_ports_are_local() {
        for h in [
            "localhost",
            "LOCALHOST:4599",
            "127.0.0.1:4599",
            "127.9.8.7",
            "[::1]:80",
            "[::1]",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
    }

    #[test]
    fn other_names_and_tricks_are_not_local() {
        for h in [
            "",
            "example.com",
            "localhost.example.com",
            "127.0.0.1.nip.io:4599",
            "10.0.0.1:4599",
            "[::2]:80",
            "[::1]x",
            "0.0.0.0:4599",
        ] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }
}
