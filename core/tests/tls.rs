//! The HTTP toolbox's one TLS setup: a real handshake against a local TLS
//! server. The platform verifier honours `SSL_CERT_FILE`, so the test makes
//! its own CA the whole trust store (set before the first client is built:
//! the setup is built once per process, hence this file's single test).

use std::path::Path;
use std::sync::Arc;

use elspeth_core::http::ClientOptions;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/tls")
        .join(name)
}

/// Serves HTTP/1.1 over TLS with `leaf` on 127.0.0.1; answers `ok` to
/// every request. Returns its port.
async fn serve(leaf: &str) -> u16 {
    let certs = CertificateDer::pem_file_iter(fixture(&format!("{leaf}.pem")))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(fixture(&format!("{leaf}.key"))).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tls
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

#[tokio::test]
async fn every_client_verifies_against_the_platform_trust_store() {
    // SAFETY (of set_var): before any other thread of this test binary
    // reads the environment; the single test of this file.
    unsafe { std::env::set_var("SSL_CERT_FILE", fixture("trusted-ca.pem")) };
    unsafe { std::env::remove_var("SSL_CERT_DIR") };
    let trusted = serve("trusted-leaf").await;
    let untrusted = serve("untrusted-leaf").await;
    for options in [
        ClientOptions::for_llm_backends(),
        ClientOptions::for_exporters(),
    ] {
        let client = options.build().expect("client");
        for host in ["localhost", "127.0.0.1"] {
            let reply = client
                .get(format!("https://{host}:{trusted}/"))
                .send()
                .await
                .unwrap_or_else(|e| panic!("https://{host} with a trusted certificate: {e:?}"));
            assert_eq!(reply.status(), 200);
            assert_eq!(reply.text().await.unwrap(), "ok");
        }
        let refused = client
            .get(format!("https://localhost:{untrusted}/"))
            .send()
            .await
            .expect_err("a certificate from an unknown CA must be refused");
        let chain = format!("{refused:?}");
        assert!(
            chain.contains("UnknownIssuer") || chain.contains("invalid peer certificate"),
            "refused for another reason: {chain}"
        );
    }
}
