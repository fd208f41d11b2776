//! The HTTP client: bounded in time, never following a redirect to plain http.

use std::time::Duration;

/// An agent for one request to `url`. Every phase has a deadline, so a silent server
/// can delay a run by at most `timeout`. Status codes are answers, not errors: the
/// caller decides what a 4xx or 5xx means.
pub(crate) fn agent(url: &str, timeout: Duration, follow_redirects: bool) -> ureq::Agent {
    let https = url
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"));
    ureq::Agent::config_builder()
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
        .user_agent(concat!("telemetry-upload/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}
