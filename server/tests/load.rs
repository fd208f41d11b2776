//! The collector under load, as a child process measured from outside: a thousand
//! clients that each send a body of 1 MiB − 1 byte and then stall must not grow the
//! server past [`RSS_CEILING`] (the figure its README documents), and every body
//! must be let go once its connection ends.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use telemetry_test_support::{eventually, wait_until};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// The resident memory the README promises the server stays under, whatever its
/// clients do.
const RSS_CEILING: u64 = 256 << 20;
/// What the server may still hold once every upload has ended.
const GIVEN_BACK: u64 = 64 << 20;
const CONNECTIONS: usize = 1000;
const BODY: usize = 1 << 20;

/// What became of one stalled upload once the server had seen all of it.
#[derive(Debug)]
enum Stalled {
    /// No answer yet: the server holds the body.
    Holding,
    /// The server answered before taking the body.
    Answered { status: u16, retry_after: bool },
    /// The connection broke before an answer could be read.
    Broken,
}

#[test]
fn a_thousand_stalled_uploads_keep_memory_under_the_ceiling() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), CONFIG).unwrap();
    let mut command = serve_command(dir.path());
    // Long enough that no stalled body times out while it is measured.
    command.args(["--read-timeout-secs", "120"]);
    let mut served = Served::spawn(command);
    let before = served.memory();
    let addr = served.addr;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let padding: Arc<[u8]> = vec![b' '; BODY - 1].into();
    // 1: look for answers; 2: let go.
    let (phase, phases) = tokio::sync::watch::channel(0);
    let (sent_tx, sent) = std::sync::mpsc::channel();
    let (outcome_tx, outcomes) = std::sync::mpsc::channel();
    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let padding = Arc::clone(&padding);
            let (sent_tx, outcome_tx) = (sent_tx.clone(), outcome_tx.clone());
            let mut phases = phases.clone();
            runtime.spawn(async move {
                let stream = stall(addr, &padding).await;
                let _ = sent_tx.send(());
                let _ = phases.wait_for(|p| *p >= 1).await;
                let _ = outcome_tx.send(answer_so_far(stream.as_ref()));
                // Keep the connection until the test lets go.
                let _ = phases.wait_for(|p| *p >= 2).await;
                drop(stream);
            })
        })
        .collect();
    drop((sent_tx, outcome_tx));

    let deadline = Instant::now() + Duration::from_secs(120);
    for done in 0..CONNECTIONS {
        let left = deadline.saturating_duration_since(Instant::now());
        if let Err(err) = sent.recv_timeout(left) {
            panic!("{err}: only {done} of {CONNECTIONS} sent their bodies");
        }
    }
    // A write returns once the bytes are in the kernel's buffers: wait until the
    // server has read them all, or closed the connections it refused.
    let port = addr.port();
    eventually(
        deadline.saturating_duration_since(Instant::now()),
        "the server to read every byte its clients sent",
        || unread_bytes(port) == 0,
    );
    let loaded = served.memory();
    phase.send(1).unwrap();
    let seen: Vec<Stalled> = (0..CONNECTIONS)
        .map(|_| outcomes.recv_timeout(Duration::from_secs(60)).unwrap())
        .collect();
    let holding = seen
        .iter()
        .filter(|o| matches!(o, Stalled::Holding))
        .count();
    let busy = seen
        .iter()
        .filter(|o| {
            matches!(
                o,
                Stalled::Answered {
                    status: 503,
                    retry_after: true
                }
            )
        })
        .count();
    let broken = seen.iter().filter(|o| matches!(o, Stalled::Broken)).count();
    let other: Vec<&Stalled> = seen
        .iter()
        .filter(|o| matches!(o, Stalled::Answered { status, retry_after } if !(*status == 503 && *retry_after)))
        .collect();

    // Every connection lets go; the server drops what it holds of their bodies.
    phase.send(2).unwrap();
    runtime.block_on(async {
        for client in clients {
            client.await.unwrap();
        }
    });
    assert_eq!(
        get(&served.url("/healthz")),
        (200, "ok\n".to_owned()),
        "still serving"
    );
    // The server lets go of a body as soon as its connection ends.
    let mut after = served.memory();
    wait_until(Duration::from_secs(20), || {
        after = served.memory();
        after.rss < GIVEN_BACK
    });
    println!(
        "RSS before {} MiB, with {CONNECTIONS} stalled uploads {} MiB (peak {} MiB), \
         after {} MiB; {holding} held, {busy} told 503, {broken} broken",
        before.rss >> 20,
        loaded.rss >> 20,
        loaded.peak >> 20,
        after.rss >> 20
    );
    assert!(other.is_empty(), "unexpected answers: {other:?}");
    assert!(holding > 0, "some uploads are received");
    assert!(busy > 0, "the rest are told to come back later");
    assert!(
        after.rss < GIVEN_BACK,
        "RSS {} MiB once every connection ended",
        after.rss >> 20
    );
    assert!(
        after.peak < RSS_CEILING,
        "peak RSS {} MiB is over the ceiling of {} MiB",
        after.peak >> 20,
        RSS_CEILING >> 20
    );
    served.signal("TERM");
    assert!(served.wait().success());
}

/// Sends the headers of a 1 MiB upload and all of its body but the last byte, or
/// as much as the server takes before it closes the connection.
async fn stall(addr: std::net::SocketAddr, padding: &[u8]) -> Option<TcpStream> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    let headers =
        format!("POST /upload/2026-11-20 HTTP/1.1\r\nHost: x\r\nContent-Length: {BODY}\r\n\r\n");
    let _ = stream.write_all(headers.as_bytes()).await;
    let _ = stream.write_all(padding).await;
    Some(stream)
}

/// What the server has answered on `stream` so far (without waiting for more).
fn answer_so_far(stream: Option<&TcpStream>) -> Stalled {
    let Some(stream) = stream else {
        return Stalled::Broken;
    };
    let mut answer = Vec::new();
    let mut buffer = [0; 4096];
    loop {
        match stream.try_read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock && answer.is_empty() => {
                return Stalled::Holding;
            }
            Err(_) => break,
        }
    }
    answered(&answer)
}

fn answered(answer: &[u8]) -> Stalled {
    let text = String::from_utf8_lossy(answer);
    match status_of(&text) {
        0 => Stalled::Broken,
        status => Stalled::Answered {
            status,
            retry_after: text.to_ascii_lowercase().contains("\r\nretry-after: "),
        },
    }
}
