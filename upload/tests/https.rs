//! Uploads over HTTPS with each TLS implementation compiled in (`tls`: rustls;
//! `native-tls`: the platform's), against a real TLS server on 127.0.0.1 whose
//! certificate, and the root it chains to, are made here at test time. Nothing leaves
//! the machine. The server terminates TLS and hands each request to a
//! `LoopbackServer`, which records it.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use common::{Env, TOOL, config_json};
use telemetry_upload::ConfigSource;
use telemetry_upload::testing::{TestTls, trust_loopback_https};

/// A root certificate (DER) and a server configuration whose certificate, for the
/// address 127.0.0.1, it signed.
fn certificates() -> (Vec<u8>, rustls::ServerConfig) {
    let mut root_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    root_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    root_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "telemetry test root");
    let root_key = rcgen::KeyPair::generate().unwrap();
    let root = root_params.self_signed(&root_key).unwrap();
    let issuer = rcgen::Issuer::new(root_params, root_key);

    let mut leaf_params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    leaf_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "127.0.0.1");
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();

    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![leaf.der().clone(), root.der().clone()], key)
    .unwrap();
    (root.der().to_vec(), config)
}

/// Accepts TLS on a free port of 127.0.0.1 and passes each connection's one request
/// to `backend` (plain HTTP, one request a connection, as `LoopbackServer` speaks),
/// its answer back. Returns the port.
fn serve_tls(config: rustls::ServerConfig, backend: SocketAddr) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = Arc::new(config);
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let config = Arc::clone(&config);
            std::thread::spawn(move || {
                let _ = relay(stream, config, backend);
            });
        }
    });
    port
}

fn relay(
    stream: TcpStream,
    config: Arc<rustls::ServerConfig>,
    backend: SocketAddr,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let conn = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, stream);
    // The request: headers, then a `Content-Length` body.
    let mut reader = BufReader::new(&mut tls);
    let mut request = Vec::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        request.extend_from_slice(line.as_bytes());
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    request.extend_from_slice(&body);

    let mut plain = TcpStream::connect(backend)?;
    plain.set_read_timeout(Some(Duration::from_secs(10)))?;
    plain.write_all(&request)?;
    let mut answer = Vec::new();
    plain.read_to_end(&mut answer)?;
    tls.write_all(&answer)?;
    tls.conn.send_close_notify();
    tls.flush()
}

/// A TLS server on 127.0.0.1 in front of `env`'s loopback server, with a certificate
/// made now: the root that signed it, and the port.
fn tls_in_front_of(env: &Env) -> (Vec<u8>, u16) {
    let backend: SocketAddr = env
        .server
        .url()
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let (root, server_config) = certificates();
    (root, serve_tls(server_config, backend))
}

/// A week uploaded over HTTPS with `tls`, the config fetched over HTTPS too.
fn uploads_over_https(tls: TestTls) {
    let env = Env::new(&["tool/a"]);
    env.server.set_config(&config_json(&["tool/a"], &[]));
    let (root, port) = tls_in_front_of(&env);
    trust_loopback_https(port, tls, root);
    env.count(&TOOL, "2026-11-13", "2026-11-20", &[("tool/a", 3)]);

    let mut config = env.config("2026-11-21");
    config.upload_url = format!("https://127.0.0.1:{port}/upload");
    config.config = ConfigSource::Url(format!("https://127.0.0.1:{port}/config.json"));
    let log = common::SharedLog::default();
    config.log = Some(Box::new(log.clone()));
    let summary = telemetry_upload::run(config).expect("the run succeeds");
    let outcomes: Vec<String> = summary.reports.iter().map(ToString::to_string).collect();
    assert_eq!(outcomes, ["2026-11-20: uploaded"], "{}", log.text());

    let requests = env.server.requests();
    let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/config.json", "/upload/2026-11-20"]);
    assert_eq!(
        requests[1].json()["Programs"][0]["Counters"],
        serde_json::json!({"tool/a": 3})
    );
}

#[cfg(feature = "tls")]
#[test]
fn uploads_over_https_with_rustls() {
    uploads_over_https(TestTls::Rustls);
}

#[cfg(feature = "native-tls")]
#[test]
fn uploads_over_https_with_native_tls() {
    uploads_over_https(TestTls::NativeTls);
}

/// The other side of the seam: a server whose root was never registered is refused,
/// and the report is kept for the next run.
#[cfg(feature = "tls")]
#[test]
fn an_untrusted_certificate_is_refused() {
    let env = Env::new(&["tool/a"]);
    let (_, port) = tls_in_front_of(&env);
    env.count(&TOOL, "2026-11-13", "2026-11-20", &[("tool/a", 3)]);
    let mut config = env.config("2026-11-21");
    config.upload_url = format!("https://127.0.0.1:{port}/upload");
    let summary = telemetry_upload::run(config).expect("the run succeeds");
    let outcomes: Vec<String> = summary.reports.iter().map(ToString::to_string).collect();
    assert_eq!(outcomes.len(), 1);
    assert!(!outcomes[0].ends_with("uploaded"), "{outcomes:?}");
    assert!(env.server.requests().is_empty());
}
