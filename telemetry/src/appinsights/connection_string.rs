//! Application Insights connection strings:
//! `InstrumentationKey=<guid>;IngestionEndpoint=https://...;LiveEndpoint=https://...`.
//!
//! Parsed like Microsoft's SDKs: `;`-separated `Key=Value` pairs, keys
//! case-insensitive, empty parts ignored (a trailing `;` is common), unknown
//! keys (e.g. `ApplicationId`) ignored; `EndpointSuffix` + `Location` build
//! the endpoints when they are not given; defaults are the global endpoints.
//! Errors name the part that is wrong and never echo the instrumentation
//! key (or anything that could be it).

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

/// Default ingestion endpoint (global).
pub const DEFAULT_INGESTION_ENDPOINT: &str = "https://dc.services.visualstudio.com";
/// Default live metrics endpoint (global).
pub const DEFAULT_LIVE_ENDPOINT: &str = "https://rt.services.visualstudio.com";

/// A parsed connection string. `Debug` never shows the instrumentation key.
#[derive(Clone)]
pub struct ConnectionString {
    instrumentation_key: SecretString,
    /// Where envelopes go (`{ingestion}/v2/track`), scheme kept as written.
    pub ingestion_endpoint: reqwest::Url,
    /// Where live metrics go, scheme kept as written.
    pub live_endpoint: reqwest::Url,
}

impl fmt::Debug for ConnectionString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionString")
            .field("instrumentation_key", &"<redacted>")
            .field("ingestion_endpoint", &self.ingestion_endpoint.as_str())
            .field("live_endpoint", &self.live_endpoint.as_str())
            .finish()
    }
}

/// What is wrong with a connection string. The text names the part and
/// never contains the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConnectionStringError(String);

impl ConnectionString {
    /// Parses `raw`.
    ///
    /// ```
    /// use elspeth_telemetry::appinsights::ConnectionString;
    /// let cs = ConnectionString::parse(
    ///     "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/",
    /// ).unwrap();
    /// assert_eq!(cs.ingestion_endpoint.as_str(), "https://westeurope-5.in.applicationinsights.azure.com/");
    /// let err = ConnectionString::parse("InstrumentationKey=oops").unwrap_err();
    /// assert!(err.to_string().contains("InstrumentationKey"));
    /// assert!(!err.to_string().contains("oops"));
    /// ```
    pub fn parse(raw: &str) -> Result<Self, ConnectionStringError> {
        let err = |m: String| ConnectionStringError(m);
        if raw.trim().is_empty() {
            return Err(err("the connection string is empty".into()));
        }
        let mut ikey = None;
        let mut ingestion = None;
        let mut live = None;
        let mut suffix = None;
        let mut location = None;
        for (i, part) in raw.split(';').enumerate() {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let Some((key, value)) = part.split_once('=') else {
                return Err(err(format!(
                    "part {} of the connection string has no `=` (expected `Key=Value` pairs separated by `;`)",
                    i + 1
                )));
            };
            let value = value.trim();
            match key.trim().to_ascii_lowercase().as_str() {
                "instrumentationkey" => ikey = Some(value.to_string()),
                "ingestionendpoint" => ingestion = Some(endpoint("IngestionEndpoint", value)?),
                "liveendpoint" => live = Some(endpoint("LiveEndpoint", value)?),
                "endpointsuffix" => suffix = Some(value.trim_matches('.').to_string()),
                "location" => location = Some(value.trim_matches('.').to_string()),
                "authorization" if !value.eq_ignore_ascii_case("ikey") => {
                    return Err(err(
                        "Authorization in the connection string must be `ikey` (Entra ID / AAD authentication is not supported)".into(),
                    ));
                }
                "" => {
                    return Err(err(format!(
                        "part {} of the connection string has an empty key before `=`",
                        i + 1
                    )));
                }
                _ => {} // ApplicationId and future keys
            }
        }
        let Some(ikey) = ikey else {
            return Err(err("the connection string has no InstrumentationKey".into()));
        };
        if !is_guid(&ikey) {
            return Err(err(
                "InstrumentationKey in the connection string is not a GUID (expected 8-4-4-4-12 hexadecimal digits)".into(),
            ));
        }
        let from_suffix = |service: &str| -> Result<Option<reqwest::Url>, ConnectionStringError> {
            match &suffix {
                Some(s) if !s.is_empty() => {
                    let prefix = location
                        .as_deref()
                        .filter(|l| !l.is_empty())
                        .map(|l| format!("{l}."))
                        .unwrap_or_default();
                    endpoint("EndpointSuffix", &format!("https://{prefix}{service}.{s}")).map(Some)
                }
                _ => Ok(None),
            }
        };
        let ingestion_endpoint = match ingestion {
            Some(u) => u,
            None => match from_suffix("dc")? {
                Some(u) => u,
                None => endpoint("IngestionEndpoint", DEFAULT_INGESTION_ENDPOINT)?,
            },
        };
        let live_endpoint = match live {
            Some(u) => u,
            None => match from_suffix("live")? {
                Some(u) => u,
                None => endpoint("LiveEndpoint", DEFAULT_LIVE_ENDPOINT)?,
            },
        };
        Ok(Self {
            instrumentation_key: SecretString::from(ikey),
            ingestion_endpoint,
            live_endpoint,
        })
    }

    /// The instrumentation key (a GUID). Do not log it.
    pub fn instrumentation_key(&self) -> &str {
        self.instrumentation_key.expose_secret()
    }

    /// `{ingestion}/v2/track`: where envelopes are posted (the path
    /// `opentelemetry-application-insights` uses; Microsoft's exporter
    /// posts the same array to `/v2.1/track`).
    pub fn track_url(&self) -> String {
        format!(
            "{}/v2/track",
            self.ingestion_endpoint.as_str().trim_end_matches('/')
        )
    }

    /// The same settings as one canonical string, for
    /// `opentelemetry-application-insights`.
    pub(crate) fn canonical(&self) -> String {
        format!(
            "InstrumentationKey={};IngestionEndpoint={};LiveEndpoint={}",
            self.instrumentation_key(),
            self.ingestion_endpoint.as_str().trim_end_matches('/'),
            self.live_endpoint.as_str().trim_end_matches('/')
        )
    }

    /// A SHA-256 of the canonical string: tells two connection strings apart
    /// without keeping or comparing the secret in the clear.
    pub(crate) fn fingerprint(&self) -> [u8; 32] {
        let digest = ring::digest::digest(&ring::digest::SHA256, self.canonical().as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        out
    }
}

fn endpoint(part: &str, value: &str) -> Result<reqwest::Url, ConnectionStringError> {
    let url = reqwest::Url::parse(value.trim()).map_err(|e| {
        ConnectionStringError(format!(
            "{part} in the connection string is not a URL ({e}); expected e.g. https://westeurope-5.in.applicationinsights.azure.com/"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ConnectionStringError(format!(
            "{part} in the connection string must be an http(s) URL with a host"
        )));
    }
    if url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(ConnectionStringError(format!(
            "{part} in the connection string must be a plain base URL (no credentials, query or fragment)"
        )));
    }
    Ok(url)
}

fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0";

    #[test]
    fn parses_portal_strings() {
        let cs = ConnectionString::parse(&format!(
            "InstrumentationKey={KEY};IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/;LiveEndpoint=https://westeurope.livediagnostics.monitor.azure.com/;ApplicationId=abc;"
        ))
        .unwrap();
        assert_eq!(cs.instrumentation_key(), KEY);
        assert_eq!(
            cs.track_url(),
            "https://westeurope-5.in.applicationinsights.azure.com/v2/track"
        );
        assert_eq!(
            cs.live_endpoint.as_str(),
            "https://westeurope.livediagnostics.monitor.azure.com/"
        );
        assert!(!format!("{cs:?}").contains(KEY));
    }

    #[test]
    fn defaults_suffix_and_http_kept() {
        let cs = ConnectionString::parse(&format!("instrumentationkey={KEY}")).unwrap();
        assert_eq!(
            cs.ingestion_endpoint.as_str(),
            "https://dc.services.visualstudio.com/"
        );
        assert_eq!(
            cs.live_endpoint.as_str(),
            "https://rt.services.visualstudio.com/"
        );
        let cs = ConnectionString::parse(&format!(
            "InstrumentationKey={KEY};EndpointSuffix=applicationinsights.us;Location=usgov"
        ))
        .unwrap();
        assert_eq!(
            cs.ingestion_endpoint.as_str(),
            "https://usgov.dc.applicationinsights.us/"
        );
        let cs = ConnectionString::parse(&format!(
            "InstrumentationKey={KEY};IngestionEndpoint=http://127.0.0.1:9/"
        ))
        .unwrap();
        assert_eq!(cs.track_url(), "http://127.0.0.1:9/v2/track");
    }

    #[test]
    fn errors_name_the_part_and_never_the_key() {
        let secretish = "deadbeef-dead-beef-dead-beefdeadbeef-x";
        let cases = [
            ("".to_string(), "empty"),
            (secretish.to_string(), "part 1"),
            (format!("Foo=bar;{secretish}"), "part 2"),
            (format!("InstrumentationKey={secretish}"), "not a GUID"),
            (
                "IngestionEndpoint=https://x/".to_string(),
                "no InstrumentationKey",
            ),
            (
                format!("InstrumentationKey={KEY};IngestionEndpoint=not a url"),
                "IngestionEndpoint",
            ),
            (
                format!("InstrumentationKey={KEY};LiveEndpoint=ftp://x"),
                "LiveEndpoint",
            ),
            (
                format!("InstrumentationKey={KEY};Authorization=AAD"),
                "Authorization",
            ),
        ];
        for (raw, expected) in cases {
            let e = ConnectionString::parse(&raw).unwrap_err().to_string();
            assert!(e.contains(expected), "{raw:?} -> {e}");
            assert!(!e.contains(secretish) && !e.contains(KEY), "{e}");
        }
    }

    #[test]
    fn fingerprint_differs_by_key() {
        let a = ConnectionString::parse(&format!("InstrumentationKey={KEY}")).unwrap();
        let b = ConnectionString::parse("InstrumentationKey=00000000-0000-0000-0000-000000000000")
            .unwrap();
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint(), a.clone().fingerprint());
    }
}
