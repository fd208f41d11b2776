//! moto's S3 server (`moto_server`, from PyPI's `moto[server]`, installed by
//! `.ci/install-moto`) on a free loopback port, with one bucket, stopped on drop.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const BUCKET: &str = "telemetry-test";

pub struct Moto {
    child: Child,
    pub port: u16,
}

impl Moto {
    /// moto on a free port; `None` when it is not installed (the test is skipped).
    pub fn start() -> Option<Moto> {
        let exe = telemetry_test_support::Tool::MOTO.find(&["moto_server"])?;
        // A free port: bind, read, release. moto binds it again at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(exe)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| {
                panic!("cannot run moto_server ({err}): install it with .ci/install-moto (pip install \"moto[server]\")")
            });
        let mut moto = Moto { child, port };
        telemetry_test_support::eventually(
            Duration::from_secs(60),
            "moto_server to listen",
            || {
                if let Some(status) = moto.child.try_wait().unwrap() {
                    panic!("moto_server exited at start: {status}");
                }
                TcpStream::connect(("127.0.0.1", port)).is_ok()
            },
        );
        // moto takes unsigned requests: create the bucket with a plain PUT.
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let status = agent
            .put(&format!("{}/{BUCKET}", moto.endpoint()))
            .send_empty()
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 200, "creating the bucket");
        Some(moto)
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", &self.endpoint()),
            ("AWS_ALLOW_HTTP", "true"),
            ("UNRELATED", "ignored"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// The keys under `prefix`, listed by S3's own API.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let mut response = ureq::get(&format!(
            "{}/{BUCKET}?list-type=2&prefix={prefix}",
            self.endpoint()
        ))
        .call()
        .unwrap();
        let xml = response.body_mut().read_to_string().unwrap();
        let mut keys: Vec<String> = xml
            .split("<Key>")
            .skip(1)
            .filter_map(|s| s.split("</Key>").next())
            .map(str::to_owned)
            .collect();
        keys.sort();
        keys
    }

    /// The object `key`'s bytes, read through `object_store` (moto lists for
    /// anyone, but reads only signed requests).
    pub fn get(&self, key: &str) -> Vec<u8> {
        use object_store::ObjectStoreExt;
        let storage =
            telemetry_server::Storage::open(&format!("s3://{BUCKET}"), self.env()).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let got = storage.object_store().get(&key.into()).await;
            let got = got.unwrap_or_else(|err| panic!("GET {key}: {err}"));
            got.bytes().await.unwrap().to_vec()
        })
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}
