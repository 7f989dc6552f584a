//! What the S3 and Glacier backends share: an async runtime, SDK configuration from settings
//! or the standard AWS chain, and the mapping of SDK errors to [`BackendErrorKind`]s.

use crate::error::{BackendErrorKind, Error, Result};
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::stalled_stream_protection::StalledStreamProtectionConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use std::time::Duration;

/// Connection settings common to AWS services. Secrets are never printed: `Debug` redacts.
#[derive(Clone, Default)]
pub struct AwsOptions {
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    /// Profile in `~/.aws/credentials` and `~/.aws/config`.
    pub profile: Option<String>,
    /// How long a request may wait for the network.
    pub timeouts: Timeouts,
}

/// Bounded waits for every request, so a silent endpoint ends in an error, never a hang. A
/// timed-out request is `Transient`: the `Retrying` wrapper retries it a bounded number of times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Opening a connection.
    pub connect: Duration,
    /// From sending a request to the first byte of its answer. A request with an upload's
    /// body gets this plus the time its body takes at [`UPLOAD_FLOOR`] bytes a second.
    pub read: Duration,
    /// A transfer (upload or download body) that moves no bytes for this long is broken off.
    pub stall: Duration,
    /// One request from start to end, whatever it does.
    pub request: Duration,
}

impl Timeouts {
    pub const DEFAULT: Timeouts = Timeouts {
        connect: Duration::from_secs(10),
        read: Duration::from_secs(60),
        stall: Duration::from_secs(30),
        request: Duration::from_secs(3600),
    };
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts::DEFAULT
    }
}

/// The SDK's timeouts for `t`: connect, read (to the first byte of the answer) and one limit
/// per attempt, which is one per request (the SDK makes no retries).
fn timeout_config(t: &Timeouts) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(t.connect)
        .read_timeout(t.read)
        .operation_attempt_timeout(t.request)
        .operation_timeout(t.request)
        .build()
}

/// The slowest upload (bytes a second, per request) whose answer is still waited for: 32 KiB/s,
/// a 1 Mbit/s line shared by 4 uploads.
pub const UPLOAD_FLOOR: u64 = 32 * 1024;

/// The timeouts of a request carrying `len` bytes of upload: the read timeout counts from the
/// start of the request, so it gets the time the body takes to send at [`UPLOAD_FLOOR`] on top.
/// A body that stops moving is broken off sooner by the stall protection.
pub fn upload_timeouts(base: Option<&TimeoutConfig>, len: u64) -> TimeoutConfig {
    let mut b = TimeoutConfig::builder();
    if let Some(read) = base.and_then(TimeoutConfig::read_timeout) {
        b = b.read_timeout(read + Duration::from_secs(len / UPLOAD_FLOOR));
    }
    let mut t = b.build();
    if let Some(base) = base {
        t.take_defaults_from(base);
    }
    t
}

/// Where requests go, for messages: the endpoint setting, else AWS's endpoint for `service`.
pub fn endpoint_of(config: &aws_config::SdkConfig, service: &str) -> String {
    let env = format!("AWS_ENDPOINT_URL_{}", service.to_ascii_uppercase());
    config
        .endpoint_url()
        .map(str::to_string)
        .or_else(|| std::env::var(env).ok())
        .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
        .unwrap_or_else(|| {
            let region = config.region().map(|r| r.to_string()).unwrap_or_default();
            format!("https://{service}.{region}.amazonaws.com")
        })
}

impl std::fmt::Debug for AwsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsOptions")
            .field("region", &self.region)
            .field("endpoint_url", &self.endpoint_url)
            .field(
                "access_key",
                &self.access_key.as_ref().map(|_| "** redacted **"),
            )
            .field(
                "secret_key",
                &self.secret_key.as_ref().map(|_| "** redacted **"),
            )
            .field("profile", &self.profile)
            .field("timeouts", &self.timeouts)
            .finish()
    }
}

/// A tokio runtime plus the loaded SDK configuration.
pub struct AwsContext {
    pub runtime: tokio::runtime::Runtime,
    pub config: aws_config::SdkConfig,
}

/// Builds the runtime and loads configuration: settings keys first, then the standard chain
/// (environment, shared files with `profile`, SSO, process, instance roles). Service-specific
/// endpoint variables (`AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL_GLACIER`) are honoured by the SDK.
pub fn load(opts: &AwsOptions, worker_threads: usize) -> Result<AwsContext> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads.clamp(1, 16))
        .enable_all()
        .build()
        .map_err(|e| Error::Usage(format!("cannot start the async runtime: {e}")))?;
    // One retry policy (`retry::RetryPolicy`), applied by the `Retrying` wrapper around every
    // backend call, for S3 and Glacier alike; the SDK's own retries are off. (The one request
    // the wrapper cannot see, the multipart driver's abort of an upload whose source changed,
    // follows the same policy in the driver.) The wrapper knows our error kinds (Transient or
    // not, and so the Glacier and S3 codes the SDK does not know), resumes a broken download at
    // the byte where it stopped, and a put it retries resumes the multipart upload with the
    // parts already stored, so a failure costs the parts in flight, not the whole object. Two
    // layers would multiply (3 SDK attempts inside each of the wrapper's 6: 18 requests for one
    // lasting fault) with two backoffs unaware of each other. For throttling the wrapper alone
    // waits longer than the SDK's standard mode (3 attempts, at most 1 s and 2 s apart): 6
    // attempts, about 0.5, 1, 2, 4 and 8 s apart (jittered down to half), 8 to 16 s in all.
    // Every wait is bounded (`Timeouts`): a stalled body (upload or download: no bytes for
    // `stall`) is broken off by the SDK's stalled-stream protection.
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::disabled())
        .timeout_config(timeout_config(&opts.timeouts))
        .stalled_stream_protection(
            StalledStreamProtectionConfig::enabled()
                .grace_period(opts.timeouts.stall)
                .build(),
        );
    if let Some(profile) = &opts.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &opts.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    if let Some(url) = &opts.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let (Some(ak), Some(sk)) = (&opts.access_key, &opts.secret_key) {
        loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
            ak.clone(),
            sk.clone(),
            None,
            None,
            "glaciersync settings",
        ));
    }
    let mut config = runtime.block_on(loader.load());
    if config.region().is_none() {
        config = config
            .into_builder()
            .region(aws_config::Region::new("us-east-1"))
            .build();
    }
    Ok(AwsContext { runtime, config })
}

/// Classifies an SDK error. `what` names the operation and object (no secrets).
pub fn map_sdk_error<E, R>(backend: &str, what: &str, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    map_sdk_error_at(backend, what, None, err)
}

/// [`map_sdk_error`], naming `endpoint` when it did not answer or could not be reached.
pub fn map_sdk_error_at<E, R>(
    backend: &str,
    what: &str,
    endpoint: Option<&str>,
    err: SdkError<E, R>,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let at = endpoint.map(|e| format!(" {e}")).unwrap_or_default();
    let (kind, detail) = match &err {
        SdkError::TimeoutError(_) => (BackendErrorKind::Transient, no_answer(&at, &err)),
        SdkError::DispatchFailure(d) if d.is_timeout() => {
            (BackendErrorKind::Transient, no_answer(&at, &err))
        }
        SdkError::DispatchFailure(d) if d.is_other() && is_credentials_failure(&err) => (
            BackendErrorKind::Auth,
            format!("no usable AWS credentials: {}", source_chain(&err)),
        ),
        SdkError::DispatchFailure(d) => (
            if d.is_user() {
                BackendErrorKind::Permanent
            } else {
                BackendErrorKind::Transient
            },
            format!("connection to{at} failed: {}", source_chain(&err)),
        ),
        SdkError::ResponseError(_) => (
            BackendErrorKind::Transient,
            format!("bad response: {}", source_chain(&err)),
        ),
        SdkError::ServiceError(se) => {
            let e = se.err();
            let code = e.code().unwrap_or("");
            let status = status_of(se.raw());
            let kind = classify(code, status);
            // An answer the SDK could not read (say, a header it failed to parse) comes as an
            // "unhandled" error with neither code nor message: its cause is in the source chain.
            let msg = match e.message() {
                Some(m) => m.to_string(),
                None if code.is_empty() => format!(
                    "unreadable answer from{at}: {}",
                    e.source().map(source_chain).unwrap_or_default()
                ),
                None => String::new(),
            };
            (
                kind,
                format!(
                    "{}{}{}",
                    if code.is_empty() { "error" } else { code },
                    status.map(|s| format!(" (HTTP {s})")).unwrap_or_default(),
                    if msg.is_empty() {
                        String::new()
                    } else {
                        format!(": {msg}")
                    }
                ),
            )
        }
        _ => (BackendErrorKind::Permanent, source_chain(&err)),
    };
    Error::backend(backend, kind, format!("{what}: {detail}"))
}

/// How the error of a request that got no answer in time begins (see [`no_answer`]).
pub const NO_ANSWER: &str = "no answer from";

/// "no answer from ENDPOINT in time (which timeout)": the SDK's chain says it several times.
fn no_answer(at: &str, err: &dyn std::error::Error) -> String {
    let chain = source_chain(err);
    let which = chain
        .split(": ")
        .find(|p| p.contains(" after "))
        .unwrap_or("timed out");
    format!("{NO_ANSWER}{at} in time ({which})")
}

/// Whether a request could not be sent because the credential chain failed (no credentials
/// anywhere, an expired SSO login, a broken profile). A provider that timed out may work on a
/// retry, so that one does not count.
fn is_credentials_failure(err: &dyn std::error::Error) -> bool {
    let chain = source_chain(err).to_ascii_lowercase();
    chain.contains("credential") && !chain.contains("timed out")
}

fn status_of<R: std::fmt::Debug>(raw: &R) -> Option<u16> {
    // The raw response type differs per call site; its Debug output carries the status.
    let text = format!("{raw:?}");
    let idx = text.find("StatusCode(")?;
    text[idx + 11..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect::<String>()
        .parse()
        .ok()
}

/// Maps an AWS error code and HTTP status to a kind.
pub fn classify(code: &str, status: Option<u16>) -> BackendErrorKind {
    match code {
        "SlowDown"
        | "Throttling"
        | "ThrottlingException"
        | "RequestTimeout"
        | "RequestTimeoutException"
        | "InternalError"
        | "ServiceUnavailable"
        | "ServiceUnavailableException"
        | "RequestLimitExceeded"
        | "LimitExceededException" => return BackendErrorKind::Transient,
        "InvalidAccessKeyId"
        | "SignatureDoesNotMatch"
        | "ExpiredToken"
        | "AccessDenied"
        | "AccessDeniedException"
        | "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "MissingAuthenticationTokenException" => return BackendErrorKind::Auth,
        "NoSuchKey"
        | "NoSuchBucket"
        | "NoSuchUpload"
        | "NotFound"
        | "ResourceNotFoundException" => return BackendErrorKind::NotFound,
        "InvalidObjectState" => return BackendErrorKind::NotWarm,
        "PreconditionFailed" => return BackendErrorKind::AlreadyExists,
        // A range past the object's end: we only ask for what the catalog recorded, so the
        // object is shorter than what was stored.
        "BadDigest" | "InvalidDigest" | "XAmzContentSHA256Mismatch" | "InvalidRange" => {
            return BackendErrorKind::Corrupt;
        }
        _ => {}
    }
    match status {
        Some(429) | Some(500..=599) => BackendErrorKind::Transient,
        Some(401) | Some(403) => BackendErrorKind::Auth,
        Some(404) => BackendErrorKind::NotFound,
        Some(412) => BackendErrorKind::AlreadyExists,
        _ => BackendErrorKind::Permanent,
    }
}

/// An error's message followed by those of its sources, each once.
pub fn source_chain(err: &dyn std::error::Error) -> String {
    let mut parts = vec![err.to_string()];
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !parts.contains(&s) {
            parts.push(s);
        }
        cur = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_secrets() {
        let o = AwsOptions {
            access_key: Some("AKIAEXAMPLEKEY".into()),
            secret_key: Some("TopSecretValue".into()),
            ..Default::default()
        };
        let s = format!("{o:?}");
        assert!(
            !s.contains("AKIAEXAMPLEKEY") && !s.contains("TopSecretValue"),
            "{s}"
        );
    }

    #[test]
    fn credential_chain_failures_are_recognised() {
        #[derive(Debug)]
        struct E(&'static str, Option<Box<E>>);
        impl std::fmt::Display for E {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for E {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.1.as_deref().map(|e| e as _)
            }
        }
        let chain = |a, b| E(a, Some(Box::new(E(b, None))));
        assert!(is_credentials_failure(&chain(
            "dispatch failure",
            "an error occurred while loading credentials"
        )));
        assert!(is_credentials_failure(&chain(
            "other",
            "the credential provider was not enabled"
        )));
        assert!(!is_credentials_failure(&chain(
            "dispatch failure",
            "credentials provider timed out after 5 seconds"
        )));
        assert!(!is_credentials_failure(&chain(
            "io error",
            "connection refused"
        )));
    }

    #[test]
    fn uploads_get_time_to_send_their_body() {
        let base = timeout_config(&Timeouts::DEFAULT);
        let t = upload_timeouts(Some(&base), 32 << 20);
        assert_eq!(t.read_timeout(), Some(Duration::from_secs(60 + 1024)));
        assert_eq!(t.connect_timeout(), Some(Duration::from_secs(10)));
        assert_eq!(t.operation_timeout(), Some(Duration::from_secs(3600)));
        let small = upload_timeouts(Some(&base), 1000);
        assert_eq!(small.read_timeout(), Some(Duration::from_secs(60)));
    }

    #[test]
    fn classification() {
        assert_eq!(classify("SlowDown", Some(503)), BackendErrorKind::Transient);
        assert_eq!(classify("", Some(502)), BackendErrorKind::Transient);
        assert_eq!(
            classify("InvalidAccessKeyId", Some(403)),
            BackendErrorKind::Auth
        );
        assert_eq!(
            classify("NoSuchBucket", Some(404)),
            BackendErrorKind::NotFound
        );
        assert_eq!(
            classify("InvalidObjectState", Some(403)),
            BackendErrorKind::NotWarm
        );
        assert_eq!(classify("", Some(400)), BackendErrorKind::Permanent);
    }
}
