//! Login throttling per account and per client address, with `governor` (GCRA, keyed).
//!
//! The state is in process memory: with several instances behind a load balancer each keeps its
//! own count, so the effective limit is the configured one times the number of instances. That
//! still stops password guessing at a rate that matters, without a write per login attempt.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::accounts;
use crate::error::ApiError;

pub struct LoginLimiter {
    per_account: DefaultKeyedRateLimiter<String>,
    per_address: DefaultKeyedRateLimiter<IpAddr>,
}

impl LoginLimiter {
    pub fn new(per_account_per_minute: u32, per_address_per_minute: u32) -> Self {
        let quota =
            |n: u32| Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN));
        LoginLimiter {
            per_account: RateLimiter::keyed(quota(per_account_per_minute)),
            per_address: RateLimiter::keyed(quota(per_address_per_minute)),
        }
    }

    /// Counts one attempt; refuses with 429 and Retry-After when either budget is spent. The
    /// account budget is keyed on [`accounts::login_key`], the key the lookup uses: every
    /// spelling of a username that logs in to an account spends that account's budget.
    pub fn check(&self, username: &str, addr: IpAddr) -> Result<(), ApiError> {
        let now = DefaultClock::default().now();
        let wait = |d: Duration| d.as_secs().max(1);
        if let Err(not_until) = self.per_address.check_key(&addr) {
            return Err(ApiError::TooManyRequests {
                detail: "too many login attempts from this address; wait and try again".into(),
                retry_after_s: wait(not_until.wait_time_from(now)),
            });
        }
        if let Err(not_until) = self.per_account.check_key(&accounts::login_key(username)) {
            return Err(ApiError::TooManyRequests {
                detail: "too many login attempts for this account; wait and try again".into(),
                retry_after_s: wait(not_until.wait_time_from(now)),
            });
        }
        Ok(())
    }

    /// Forgets keys whose budget is full again, so the maps do not grow without bound.
    pub fn shrink(&self) {
        self.per_account.retain_recent();
        self.per_address.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eleventh_attempt_in_a_minute_is_refused() {
        let l = LoginLimiter::new(10, 100);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..10 {
            l.check("handhaver", ip).unwrap();
        }
        let e = l.check("Handhaver", ip).unwrap_err();
        assert!(matches!(e, ApiError::TooManyRequests { .. }));
        // Another account from the same address is still fine.
        l.check("jeugdboa", ip).unwrap();
    }

    #[test]
    fn every_spelling_of_a_name_spends_the_same_budget() {
        let l = LoginLimiter::new(4, 100);
        let ip: IpAddr = "10.0.0.3".parse().unwrap();
        for name in ["teamleider", " teamleider", "TEAMLEIDER ", "\tTeamLeider\n"] {
            l.check(name, ip).unwrap();
        }
        assert!(l.check("  teamleider  ", ip).is_err());
    }

    #[test]
    fn the_address_budget_covers_all_accounts() {
        let l = LoginLimiter::new(10, 3);
        let ip: IpAddr = "10.0.0.2".parse().unwrap();
        l.check("a", ip).unwrap();
        l.check("b", ip).unwrap();
        l.check("c", ip).unwrap();
        assert!(l.check("d", ip).is_err());
    }
}
