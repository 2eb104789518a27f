//! URL sources: `https://` and `http://` through ureq (rustls; the
//! platform's roots, so `SSL_CERT_FILE` and `SSL_CERT_DIR` apply; proxies
//! from `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY`), and
//! `file:` read from the local file system. No Content-Encoding is asked
//! for or decoded: the bytes hashed are the bytes served.

use super::{stream_to, Options};
use std::path::Path;
use std::time::Duration;

pub(super) fn agent(opts: &Options) -> ureq::Agent {
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::PlatformVerifier)
        .build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .proxy(ureq::Proxy::try_from_env())
        .accept_encoding("identity")
        .user_agent(concat!("fpgate/", env!("CARGO_PKG_VERSION")))
        .timeout_connect(Some(
            Duration::from_secs(30).min(opts.timeout.max(Duration::from_secs(1))),
        ))
        .timeout_per_read(Some(opts.timeout))
        .max_redirects(10)
        .http_status_as_error(true)
        .build()
        .new_agent()
}

/// Download `url` into `dest`, hashing as it streams.
pub(super) fn to_file(
    agent: &ureq::Agent,
    url: &str,
    dest: &Path,
    _opts: &Options,
) -> Result<(String, u64), String> {
    if url.len() >= 5 && url[..5].eq_ignore_ascii_case("file:") {
        let path = crate::corpus::recipe::file_url_path(url)
            .ok_or_else(|| format!("{url}: not a valid file: URL"))?;
        let f = crate::corpus::store::open_regular(&path, true)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        return stream_to(f, dest).map_err(|e| format!("reading {}: {e}", path.display()));
    }
    let resp = agent.get(url).call().map_err(describe)?;
    let reader = resp.into_body().into_reader();
    stream_to(reader, dest).map_err(|e| {
        // ureq reports its own errors (a timeout, a cut connection) as
        // io::Error wrapping a ureq::Error.
        format!("download interrupted: {e}")
    })
}

fn describe(e: ureq::Error) -> String {
    match e {
        ureq::Error::StatusCode(code) => format!("HTTP status {code}"),
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        ureq::Error::TooManyRedirects => "too many redirects".into(),
        other => other.to_string(),
    }
}
