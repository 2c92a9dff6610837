//! Serving the app: plain TCP, or TLS via rustls (TLS 1.3, and TLS 1.2 with AEAD
//! suites only), with graceful shutdown and periodic housekeeping.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use rustls::crypto::ring;
use tokio::net::TcpListener;

use crate::{AppState, build_app};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen: {0}")]
    Listen(std::io::Error),
    #[error("TLS configuration: {0}")]
    Tls(String),
    #[error("server error: {0}")]
    Io(std::io::Error),
}

/// Serves until `shutdown` resolves. `listener` is already bound (so callers and
/// tests can use port 0 and learn the address).
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let housekeeping = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                state.housekeeping();
            }
        })
    };
    let jobs = start_jobs(&state);
    let tls = state.settings.tls.clone();
    let app = build_app(state).into_make_service_with_connect_info::<SocketAddr>();
    let result = match tls {
        None => axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(ServeError::Io),
        Some(files) => {
            let config = tls_config(&files.cert, &files.key)?;
            let handle = axum_server::Handle::new();
            let h = handle.clone();
            tokio::spawn(async move {
                shutdown.await;
                h.graceful_shutdown(Some(Duration::from_secs(10)));
            });
            let std_listener = listener.into_std().map_err(ServeError::Listen)?;
            axum_server::from_tcp_rustls(std_listener, RustlsConfig::from_config(Arc::new(config)))
                .map_err(ServeError::Listen)?
                .handle(handle)
                .serve(app)
                .await
                .map_err(ServeError::Io)
        }
    };
    housekeeping.abort();
    // Stops every job and releases its lease, so another instance takes over at once.
    jobs.shutdown().await;
    result
}

/// The background jobs of `ward serve`, on the one runner (dropping it stops them).
fn start_jobs(state: &AppState) -> ward_jobs::Runner {
    use ward_jobs::audit_log::SequencerJob;
    use ward_jobs::forwarding::ForwarderJob;
    let holder = ward_jobs::instance_name(state.rng.as_ref());
    let mut runner =
        ward_jobs::Runner::new(state.store().clone(), state.clock.clone(), holder.clone());
    runner.spawn(state.key_maintenance(state.settings.key_maintenance, &holder));
    runner.spawn(SequencerJob::new(
        state.store().clone(),
        state.keys.audit.clone(),
        state.settings.audit_sequencer,
    ));
    runner.spawn(ForwarderJob::new(
        state.store().clone(),
        state.keys.forwarding.clone(),
        state.egress.clone(),
        state.clock.clone(),
        state.rng.clone(),
        state.settings.audit_forwarding,
        holder,
    ));
    runner
}

/// rustls server config: ring provider restricted to TLS 1.3 and TLS 1.2 ECDHE+AEAD
/// suites (ring's TLS 1.2 suites are all ECDHE with AES-GCM or ChaCha20-Poly1305).
fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<rustls::ServerConfig, ServeError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| ServeError::Tls(format!("{}: {e}", cert.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| ServeError::Tls(format!("{}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(ServeError::Tls(format!(
            "{}: no certificates found",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| ServeError::Tls(format!("{}: {e}", key.display())))?;
    let provider = ring::default_provider();
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| ServeError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ServeError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
