//! Prometheus metrics: token requests by outcome and their latency, sign-ins,
//! and gauges read from the store at scrape time.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// How a token request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenOutcome {
    /// Everything asked for was granted.
    Granted,
    /// Some asked-for access was left out.
    Reduced,
    /// Credentials refused or the request malformed.
    Refused,
    /// The server failed.
    Error,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

/// Counts and gauges read at scrape time.
#[derive(Clone, Copy, Debug, Default)]
pub struct StoreFigures {
    pub users: u64,
    pub tokens: u64,
    pub sessions: u64,
    pub file_bytes: u64,
}

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    token_requests: Family<Outcome, Counter>,
    token_seconds: Histogram,
    sign_ins: Family<Outcome, Counter>,
    users: Gauge,
    tokens: Gauge,
    sessions: Gauge,
    store_bytes: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("portcullis");
        let token_requests = Family::<Outcome, Counter>::default();
        registry.register(
            "token_requests",
            "Token requests by outcome: granted, reduced, refused, error",
            token_requests.clone(),
        );
        // 0.5 ms to about 4 s: a signature costs tens of µs, argon2 tens of ms.
        let buckets = prometheus_client::metrics::histogram::exponential_buckets(0.0005, 2.0, 14);
        let token_seconds = Histogram::new(buckets);
        registry.register(
            "token_request_duration_seconds",
            "Time to answer a token request",
            token_seconds.clone(),
        );
        let sign_ins = Family::<Outcome, Counter>::default();
        registry.register("sign_ins", "Web sign-ins by outcome", sign_ins.clone());
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let g = Gauge::default();
            registry.register(name, help, g.clone());
            g
        };
        let users = gauge(&mut registry, "users", "User accounts");
        let tokens = gauge(&mut registry, "application_tokens", "Application tokens");
        let sessions = gauge(&mut registry, "sessions", "Web sessions");
        let store_bytes = gauge(
            &mut registry,
            "store_size_bytes",
            "Size of the database file",
        );
        Metrics {
            registry,
            token_requests,
            token_seconds,
            sign_ins,
            users,
            tokens,
            sessions,
            store_bytes,
        }
    }
}

impl Metrics {
    pub fn token_request(&self, outcome: TokenOutcome, took: Duration) {
        let outcome = match outcome {
            TokenOutcome::Granted => "granted",
            TokenOutcome::Reduced => "reduced",
            TokenOutcome::Refused => "refused",
            TokenOutcome::Error => "error",
        };
        self.token_requests
            .get_or_create(&Outcome { outcome })
            .inc();
        self.token_seconds.observe(took.as_secs_f64());
    }

    pub fn sign_in(&self, success: bool) {
        let outcome = if success { "success" } else { "failure" };
        self.sign_ins.get_or_create(&Outcome { outcome }).inc();
    }

    /// The text exposition, with the store gauges set to `figures`.
    pub fn render(&self, figures: StoreFigures) -> String {
        let as_gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.users.set(as_gauge(figures.users));
        self.tokens.set(as_gauge(figures.tokens));
        self.sessions.set(as_gauge(figures.sessions));
        self.store_bytes.set(as_gauge(figures.file_bytes));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histogram_and_gauges() {
        let metrics = Metrics::default();
        metrics.token_request(TokenOutcome::Granted, Duration::from_millis(2));
        metrics.token_request(TokenOutcome::Refused, Duration::from_millis(1));
        metrics.sign_in(false);
        let text = metrics.render(StoreFigures {
            users: 3,
            tokens: 7,
            sessions: 1,
            file_bytes: 4096,
        });
        assert!(
            text.contains("portcullis_token_requests_total{outcome=\"granted\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("portcullis_token_request_duration_seconds_count 2"),
            "{text}"
        );
        assert!(
            text.contains("portcullis_sign_ins_total{outcome=\"failure\"} 1"),
            "{text}"
        );
        assert!(text.contains("portcullis_application_tokens 7"), "{text}");
        assert!(text.contains("portcullis_store_size_bytes 4096"), "{text}");
    }
}
