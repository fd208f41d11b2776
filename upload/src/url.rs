//! Which URLs may carry telemetry: `https`, or `http` to this machine.

use crate::UploadError;

/// Only `https`, or `http` to this machine (for tests), may carry telemetry.
pub(crate) fn check_url(url: &str) -> Result<(), UploadError> {
    let lower = url.to_ascii_lowercase();
    let bad = || UploadError::BadUrl {
        url: url.to_owned(),
    };
    if let Some(rest) = lower.strip_prefix("https://") {
        return if host_of(rest).is_some_and(|h| !h.is_empty()) {
            Ok(())
        } else {
            Err(bad())
        };
    }
    let rest = lower.strip_prefix("http://").ok_or_else(bad)?;
    let host = host_of(rest).ok_or_else(bad)?;
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Ok(())
    } else {
        Err(UploadError::InsecureUrl {
            url: url.to_owned(),
        })
    }
}

/// The host of `host[:port]/path…`, without brackets for IPv6.
fn host_of(rest: &str) -> Option<&str> {
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(v6) = host_port.strip_prefix('[') {
        return v6.split_once(']').map(|(h, _)| h);
    }
    Some(host_port.split(':').next().unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback() {
        for ok in [
            "https://telemetry.example.com/config.json",
            "http://127.0.0.1:8080/upload",
            "http://127.1.2.3/upload",
            "http://localhost:99/x",
            "http://[::1]:80/x",
            "HTTP://LOCALHOST/x",
        ] {
            assert!(check_url(ok).is_ok(), "{ok}");
        }
        for insecure in [
            "http://example.com/upload",
            "http://10.0.0.1/upload",
            "http://127.0.0.1.example.com/",
            "http://localhost@example.com/",
        ] {
            assert!(
                matches!(check_url(insecure), Err(UploadError::InsecureUrl { .. })),
                "{insecure}"
            );
        }
        for bad in ["", "ftp://x/y", "https://", "127.0.0.1:80/x"] {
            assert!(
                matches!(check_url(bad), Err(UploadError::BadUrl { .. })),
                "{bad}"
            );
        }
    }
}
