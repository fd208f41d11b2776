//! The HTTP client: bounded in time, never following a redirect to plain http, over
//! the TLS implementation the features chose.
//!
//! | features | TLS | root certificates |
//! |---|---|---|
//! | `tls` (default) | rustls with ring | Mozilla's (`webpki-roots`), built in |
//! | `native-tls` (wins if both are on) | OpenSSL, Schannel or Security.framework | the platform's store |
//! | neither | none: `https://` URLs fail, loopback `http://` works | — |

use std::time::Duration;

/// An agent for one request to `url`. Every phase has a deadline, so a silent server
/// can delay a run by at most `timeout`. Status codes are answers, not errors: the
/// caller decides what a 4xx or 5xx means.
pub(crate) fn agent(url: &str, timeout: Duration, follow_redirects: bool) -> ureq::Agent {
    let https = url
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"));
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .timeout_connect(Some(timeout.min(Duration::from_secs(10))))
        .http_status_as_error(false)
        // A redirect must not downgrade a report or a config to plain http.
        .https_only(https)
        .max_redirects(if https && follow_redirects { 3 } else { 0 })
        // With no redirects allowed, a 3xx comes back as an answer to act on.
        .max_redirects_will_error(false)
        // Plain http only ever goes to this machine, which no proxy should see.
        .proxy(if https {
            ureq::Proxy::try_from_env()
        } else {
            None
        })
        .user_agent(concat!("telemetry-upload/", env!("CARGO_PKG_VERSION")));
    #[cfg(any(feature = "tls", feature = "native-tls"))]
    let config = config.tls_config(tls_config(url));
    #[cfg(feature = "testing")]
    let config = if crate::testing::trusted_for_tests(url).is_some() {
        // A test's HTTPS server on this machine, which no proxy should see.
        config.proxy(None)
    } else {
        config
    };
    config.build().into()
}

/// The TLS settings for `url`: the platform's TLS and store with `native-tls`, else
/// rustls with Mozilla's roots. Under the `testing` feature, a loopback URL a test
/// registered with `testing::trust_loopback_https` trusts that test's root instead.
#[cfg(any(feature = "tls", feature = "native-tls"))]
fn tls_config(url: &str) -> ureq::tls::TlsConfig {
    use ureq::tls::{RootCerts, TlsConfig, TlsProvider};
    #[cfg(not(feature = "testing"))]
    let _ = url;
    #[cfg(feature = "testing")]
    if let Some((provider, root)) = crate::testing::trusted_for_tests(url) {
        let root = ureq::tls::Certificate::from_der(&root).to_owned();
        return TlsConfig::builder()
            .provider(match provider {
                crate::testing::TestTls::Rustls => TlsProvider::Rustls,
                crate::testing::TestTls::NativeTls => TlsProvider::NativeTls,
            })
            .root_certs(RootCerts::new_with_certs(&[root]))
            .build();
    }
    if cfg!(feature = "native-tls") {
        TlsConfig::builder()
            .provider(TlsProvider::NativeTls)
            .root_certs(RootCerts::PlatformVerifier)
            .build()
    } else {
        TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .root_certs(RootCerts::WebPki)
            .build()
    }
}
