//! Request quotas (`[quotas] mode = "aws"`; off by default so tests stay deterministic).
//!
//! The figures are the AWS KMS Developer Guide's (page "Request quotas", and "Throttling AWS KMS
//! requests" for the error): 1,800 cryptographic operations per second per AWS CloudHSM key
//! store, shared by all its keys and also counted against the account's symmetric
//! cryptographic quota in the Region; the management operations' own rates. Each quota is a
//! token bucket holding one second's worth of requests, refilled continuously, per
//! (account, Region) — and per key store for the key-store quota, which AWS shares across
//! accounts.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// The validated `[quotas]` section.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuotaSettings {
    /// `mode`.
    pub mode: QuotaMode,
    /// `scale`: every rate multiplied by it (default 1: AWS's figures; 0.1 rehearses throttling
    /// at a tenth of them, on a machine too slow to outpace the real ones).
    pub scale: f64,
}

impl Default for QuotaSettings {
    fn default() -> Self {
        QuotaSettings {
            mode: QuotaMode::Off,
            scale: 1.0,
        }
    }
}

/// `[quotas] mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaMode {
    /// No request is ever throttled (the default).
    Off,
    /// AWS's default request quotas.
    Aws,
}

/// Requests per second a CloudHSM key store accepts for cryptographic operations (not
/// adjustable in AWS).
pub const CLOUDHSM_KEY_STORE_RPS: f64 = 1800.0;

/// The text of AWS KMS's `ThrottlingException` (Developer Guide, "Throttling AWS KMS requests").
pub const THROTTLING_MESSAGE: &str =
    "You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls.";

/// The cryptographic operations on symmetric keys that share one quota.
pub fn is_symmetric_crypto(op: &str) -> bool {
    matches!(
        op,
        "Decrypt"
            | "Encrypt"
            | "GenerateDataKey"
            | "GenerateDataKeyWithoutPlaintext"
            | "GenerateRandom"
            | "ReEncrypt"
            | "GenerateMac"
            | "VerifyMac"
    )
}

/// The account's symmetric cryptographic quota in `region`, from the guide's table: 10,000
/// requests per second (shared), 20,000 in the Regions listed here, and the largest tier in
/// US East (N. Virginia), US West (Oregon) and Europe (Ireland) (100,000: that tier's figure
/// was not in the excerpt of the guide read for this; see docs/auth.md).
pub fn symmetric_rps(region: &str) -> f64 {
    match region {
        "us-east-1" | "us-west-2" | "eu-west-1" => 100_000.0,
        "us-east-2" | "ap-southeast-1" | "ap-southeast-2" | "ap-northeast-1" | "eu-central-1"
        | "eu-west-2" => 20_000.0,
        _ => 10_000.0,
    }
}

/// The per-account, per-Region rate of a KMS management operation, where the guide gives one.
pub fn management_rps(op: &str) -> Option<f64> {
    Some(match op {
        "CreateCustomKeyStore"
        | "ConnectCustomKeyStore"
        | "DisconnectCustomKeyStore"
        | "DeleteCustomKeyStore"
        | "DescribeCustomKeyStores"
        | "UpdateCustomKeyStore"
        | "CreateKey"
        | "CancelKeyDeletion"
        | "EnableKey"
        | "DisableKey"
        | "UntagResource"
        | "CreateAlias"
        | "UpdateKeyDescription"
        | "UpdateAlias"
        | "DeleteAlias" => 5.0,
        "TagResource" => 10.0,
        "ScheduleKeyDeletion" => 15.0,
        "ListKeys" | "ListAliases" => 500.0,
        "DescribeKey" | "ListResourceTags" => 2000.0,
        _ => return None,
    })
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    rate: f64,
    /// One second's worth, and never less than one request (a scaled 5 per second still
    /// lets one through).
    capacity: f64,
    last: Instant,
}

impl Bucket {
    /// Credit the time since the last refill. Callers on other threads may bring a `now`
    /// older than the last one seen: the clock of the bucket never goes back, so no interval
    /// is credited twice.
    fn refill(&mut self, now: Instant) {
        if now <= self.last {
            return;
        }
        let dt = now.duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.capacity);
        self.last = now;
    }
}

/// The request-rate state of the whole server.
#[derive(Debug)]
pub struct Quotas {
    mode: QuotaMode,
    scale: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// One request, as far as quotas care.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// The caller's account.
    pub account: &'a str,
    /// The Region the caller signed for.
    pub region: &'a str,
    /// The KMS operation.
    pub op: &'a str,
    /// The CloudHSM key store the operation's key (or `CustomKeyStoreId`) belongs to.
    pub key_store: Option<&'a str>,
}

impl Quotas {
    /// Quotas as configured.
    pub fn new(settings: QuotaSettings) -> Self {
        Quotas {
            mode: settings.mode,
            scale: settings.scale,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether any quota applies.
    pub fn enabled(&self) -> bool {
        self.mode == QuotaMode::Aws
    }

    /// Take one request of `call` at `now` from every bucket it counts against; `false` (and
    /// nothing taken) when any of them is empty.
    pub fn admit(&self, call: Call<'_>, now: Instant) -> bool {
        if self.mode == QuotaMode::Off {
            return true;
        }
        let mut wanted: Vec<(String, f64)> = Vec::with_capacity(2);
        if is_symmetric_crypto(call.op) {
            wanted.push((
                format!("{}/{}/symmetric", call.account, call.region),
                symmetric_rps(call.region),
            ));
            if let Some(store) = call.key_store {
                wanted.push((format!("key-store/{store}"), CLOUDHSM_KEY_STORE_RPS));
            }
        } else if let Some(rate) = management_rps(call.op) {
            wanted.push((
                format!("{}/{}/{}", call.account, call.region, call.op),
                rate,
            ));
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        for (name, rate) in &wanted {
            let rate = rate * self.scale;
            let b = buckets.entry(name.clone()).or_insert(Bucket {
                tokens: rate.max(1.0),
                rate,
                capacity: rate.max(1.0),
                last: now,
            });
            b.refill(now);
            if b.tokens < 1.0 {
                return false;
            }
        }
        for (name, _) in &wanted {
            if let Some(b) = buckets.get_mut(name) {
                b.tokens -= 1.0;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn aws(scale: f64) -> QuotaSettings {
        QuotaSettings {
            mode: QuotaMode::Aws,
            scale,
        }
    }

    #[test]
    fn scale_multiplies_every_rate() {
        let q = Quotas::new(aws(0.1));
        let t = Instant::now();
        let n = (0..1000)
            .filter(|_| q.admit(encrypt("cks-1", "a"), t))
            .count();
        assert_eq!(n, 180);
    }

    fn encrypt<'a>(store: &'a str, account: &'a str) -> Call<'a> {
        Call {
            account,
            region: "us-east-1",
            op: "Encrypt",
            key_store: Some(store),
        }
    }

    #[test]
    fn a_key_store_admits_1800_in_one_instant_then_refills() {
        let q = Quotas::new(aws(1.0));
        let t0 = Instant::now();
        let admitted = (0..2000)
            .filter(|_| q.admit(encrypt("cks-1", "111122223333"), t0))
            .count();
        assert_eq!(admitted, 1800);
        // The store's quota is shared across accounts.
        assert!(!q.admit(encrypt("cks-1", "444455556666"), t0));
        // Another store has its own.
        assert!(q.admit(encrypt("cks-2", "111122223333"), t0));
        // 10 ms later, 18 more.
        let t1 = t0 + Duration::from_millis(10);
        let later = (0..100)
            .filter(|_| q.admit(encrypt("cks-1", "111122223333"), t1))
            .count();
        assert_eq!(later, 18);
    }

    #[test]
    fn management_rates_are_per_account_and_region_and_off_means_off() {
        let q = Quotas::new(aws(1.0));
        let t = Instant::now();
        let call = |account| Call {
            account,
            region: "eu-west-1",
            op: "CreateKey",
            key_store: None,
        };
        assert_eq!((0..10).filter(|_| q.admit(call("a"), t)).count(), 5);
        assert!(q.admit(call("b"), t));
        let off = Quotas::new(QuotaSettings::default());
        assert!((0..5000).all(|_| off.admit(encrypt("cks-1", "a"), t)));
    }
}
