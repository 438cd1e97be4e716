//! Building the SDK client from an [`S3Config`], and sorting the SDK's errors into retried
//! failures and final [`StoreError`]s with messages that name bucket and endpoint (never a
//! secret).
use super::retry::Failure;
use super::{S3Config, S3Credentials, StoreError};
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    SharedHttpClient,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

const DEFAULT_REGION: &str = "us-east-1";

/// What an error message needs to say where a request went.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub bucket: String,
    pub endpoint: String,
}

pub(crate) async fn build_client(cfg: &S3Config) -> Result<aws_sdk_s3::Client, StoreError> {
    let mut builder = match &cfg.credentials {
        S3Credentials::DefaultChain => {
            let mut loader = aws_config::defaults(BehaviorVersion::latest());
            if let Some(r) = &cfg.region {
                loader = loader.region(Region::new(r.clone()));
            }
            let sdk = loader.load().await;
            let has_region = sdk.region().is_some();
            let mut b = aws_sdk_s3::config::Builder::from(&sdk);
            if !has_region {
                b = b.region(Region::new(DEFAULT_REGION));
            }
            b
        }
        S3Credentials::Static {
            access_key_id,
            secret_access_key,
            session_token,
        } => {
            let creds = Credentials::new(
                access_key_id.clone(),
                secret_access_key.expose().to_string(),
                session_token.as_ref().map(|t| t.expose().to_string()),
                None,
                "nas-runner-static",
            );
            aws_sdk_s3::config::Builder::new()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new(
                    cfg.region.clone().unwrap_or_else(|| DEFAULT_REGION.into()),
                ))
                .credentials_provider(creds)
        }
    };
    builder = builder
        .force_path_style(cfg.path_style)
        // One retry policy for whole operations lives in `retry.rs`.
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(cfg.connect_timeout)
                .operation_attempt_timeout(cfg.attempt_timeout)
                .build(),
        )
        // Integrity is checked end to end with the sha256 kept in the object's metadata;
        // SDK-computed CRCs on upload add aws-chunked encoding some S3-compatible stores reject.
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenSupported);
    if let Some(endpoint) = &cfg.endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    if let Some(path) = &cfg.ca_bundle {
        builder = builder.http_client(https_client_with_ca(path)?);
    }
    Ok(aws_sdk_s3::Client::from_conf(builder.build()))
}

/// An HTTPS client that trusts the system's roots and the certificates in the PEM file at
/// `path`. The file is parsed here because the SDK would panic on a bad one at first use.
fn https_client_with_ca(path: &std::path::Path) -> Result<SharedHttpClient, StoreError> {
    let bad = |m: String| StoreError::Config(format!("CA bundle {}: {m}", path.display()));
    let pem = std::fs::read(path).map_err(|e| bad(format!("cannot read: {e}")))?;
    let certs: Vec<CertificateDer<'_>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| bad(format!("not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(bad("holds no certificate".into()));
    }
    let mut roots = rustls::RootCertStore::empty();
    for (i, cert) in certs.into_iter().enumerate() {
        roots
            .add(cert)
            .map_err(|e| bad(format!("certificate {i} is not a usable CA: {e}")))?;
    }
    let ctx = TlsContext::builder()
        .with_trust_store(TrustStore::default().with_pem_certificate(pem))
        .build()
        .map_err(|e| bad(e.to_string()))?;
    Ok(aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .tls_context(ctx)
        .build_https())
}

/// Error codes S3 and compatible stores use for throttling and server trouble.
const RETRY_CODES: &[&str] = &[
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "ServiceUnavailable",
];

/// Error codes that mean the credentials are wrong or lack permission.
const AUTH_CODES: &[&str] = &[
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "RequestTimeTooSkewed",
    "AuthorizationHeaderMalformed",
    "InvalidSecurity",
];

/// Sorts an SDK error into a retried failure or a final error. `key` is the key the request
/// was about (for `NotFound`), if any.
pub(crate) fn classify<E>(err: SdkError<E>, t: &Target, what: &str, key: Option<&str>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let location = format!("bucket '{}' at {}", t.bucket, t.endpoint);
    match &err {
        SdkError::ConstructionFailure(_) => Failure::Fatal(StoreError::Config(format!(
            "{what} on {location}: cannot build the request: {}",
            DisplayErrorContext(&err)
        ))),
        SdkError::DispatchFailure(d) if d.is_user() => Failure::Fatal(StoreError::Config(format!(
            "{what} on {location}: {}",
            DisplayErrorContext(&err)
        ))),
        _ if credentials_missing(&err) => Failure::Fatal(StoreError::Config(format!(
            "{what} on {location}: no S3 credentials found (static keys, environment, web identity or profile): {}",
            DisplayErrorContext(&err)
        ))),
        SdkError::DispatchFailure(_) if tls_failure(&err) => {
            Failure::Fatal(StoreError::Config(format!("{what} on {location}: {}", DisplayErrorContext(&err))))
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Failure::Retry(format!("{what} on {location}: {}", DisplayErrorContext(&err)))
        }
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let code = ctx.err().code().unwrap_or("");
            let detail = ctx.err().message().unwrap_or("");
            let described = if code.is_empty() { format!("HTTP {status}") } else { format!("HTTP {status} {code}") };
            let described = if detail.is_empty() { described } else { format!("{described}: {detail}") };
            if status == 429 || status >= 500 || RETRY_CODES.contains(&code) {
                return Failure::Retry(format!("{what} on {location}: {described}"));
            }
            if code == "NoSuchBucket" {
                return Failure::Fatal(StoreError::Config(format!(
                    "bucket '{}' does not exist at {} ({what}: {described})",
                    t.bucket, t.endpoint
                )));
            }
            if status == 404 || code == "NoSuchKey" {
                if let Some(key) = key {
                    return Failure::Fatal(StoreError::NotFound {
                        location: format!("s3://{} at {}", t.bucket, t.endpoint),
                        key: key.into(),
                    });
                }
                return Failure::Fatal(StoreError::Config(format!(
                    "bucket '{}' does not exist at {} ({what}: {described})",
                    t.bucket, t.endpoint
                )));
            }
            if status == 401 || status == 403 || AUTH_CODES.contains(&code) {
                return Failure::Fatal(StoreError::Config(format!(
                    "access to bucket '{}' at {} was denied ({what}: {described}); check the credentials, region and bucket policy",
                    t.bucket, t.endpoint
                )));
            }
            if status == 301 || status == 307 || code == "PermanentRedirect" {
                return Failure::Fatal(StoreError::Config(format!(
                    "bucket '{}' is not served by {} ({what}: {described}); check the region and endpoint",
                    t.bucket, t.endpoint
                )));
            }
            Failure::Fatal(StoreError::Rejected(format!("{what} on {location} was rejected: {described}")))
        }
        _ => Failure::Retry(format!("{what} on {location}: {}", DisplayErrorContext(&err))),
    }
}

/// No credentials could be found at all: a configuration error, not a network one.
fn credentials_missing<E, R>(err: &SdkError<E, R>) -> bool
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let text = DisplayErrorContext(err).to_string();
    text.contains("no credentials")
        || text.contains("NoCredentials")
        || text.contains("failed to load credentials")
}

/// A certificate the client does not trust: retrying cannot help.
fn tls_failure<E, R>(err: &SdkError<E, R>) -> bool
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let text = DisplayErrorContext(err).to_string();
    text.contains("invalid peer certificate") || text.contains("UnknownIssuer")
}
