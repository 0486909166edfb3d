//! What the runtime injects into a card: randomness, time, and power cuts.
//!
//! Applets never reach the operating system for these. A card built with
//! [`CardRng::seeded`] and a [`ManualClock`] behaves the same on every run,
//! and a [`FaultPlan`] cuts power at a chosen persistent write.

use std::convert::Infallible;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use rand_core::{TryCryptoRng, TryRng};

/// The card's random number generator: ChaCha20 keyed from the operating
/// system's generator, or from a fixed seed for reproducible tests.
pub struct CardRng {
    inner: ChaCha20Rng,
}

impl CardRng {
    /// A generator keyed from the operating system.
    pub fn from_os() -> Result<CardRng, rand::rngs::SysError> {
        let mut seed = [0u8; 32];
        rand::rngs::SysRng.try_fill_bytes(&mut seed)?;
        let rng = CardRng::seeded(seed);
        zeroize::Zeroize::zeroize(&mut seed);
        Ok(rng)
    }

    /// A generator with a fixed seed: the same seed gives the same bytes.
    pub fn seeded(seed: [u8; 32]) -> CardRng {
        CardRng {
            inner: ChaCha20Rng::from_seed(seed),
        }
    }

    /// A seed from a number, for tests.
    pub fn from_u64(seed: u64) -> CardRng {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        CardRng::seeded(bytes)
    }
}

impl fmt::Debug for CardRng {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CardRng(<redacted>)")
    }
}

impl TryRng for CardRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        self.inner.try_next_u32()
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        self.inner.try_next_u64()
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.inner.try_fill_bytes(dst)
    }
}

impl TryCryptoRng for CardRng {}

/// The card's clock.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The operating system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock a test sets by hand; clones share the same time.
#[derive(Clone, Debug)]
pub struct ManualClock {
    now: Arc<Mutex<SystemTime>>,
}

impl ManualClock {
    /// A clock stopped at `now`.
    pub fn new(now: SystemTime) -> ManualClock {
        ManualClock {
            now: Arc::new(Mutex::new(now)),
        }
    }

    /// Sets the time.
    pub fn set(&self, now: SystemTime) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = now;
    }

    /// Moves the time forward.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// When, relative to the write itself, a planned power cut happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CutPoint {
    /// Power fails before the image reaches the store: the old image stays.
    BeforeWrite,
    /// Power fails right after the store took the new image, before the
    /// card could answer.
    AfterWrite,
}

/// A plan to cut power at the k-th persistent write from now (tearing).
///
/// After the cut the command gets no answer ([`crate::CardError::PowerLost`]),
/// the card is off, and its applets are reloaded from the committed image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FaultPlan {
    cut: Option<(u64, CutPoint)>,
}

impl FaultPlan {
    /// No fault.
    pub const fn none() -> FaultPlan {
        FaultPlan { cut: None }
    }

    /// Cut power at the `k`-th persistent write (1 is the next one).
    pub const fn cut_at_write(k: u64, point: CutPoint) -> FaultPlan {
        FaultPlan {
            cut: Some((k, point)),
        }
    }

    /// Counts one write; returns the cut point when this write is the one.
    pub(crate) fn on_write(&mut self) -> Option<CutPoint> {
        let (remaining, point) = self.cut.as_mut()?;
        *remaining = remaining.saturating_sub(1);
        if *remaining == 0 {
            let point = *point;
            self.cut = None;
            Some(point)
        } else {
            None
        }
    }

    /// True while a cut is still planned.
    pub const fn is_armed(&self) -> bool {
        self.cut.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::Rng;

    #[test]
    fn seeded_rng_is_reproducible() {
        let mut a = CardRng::from_u64(7);
        let mut b = CardRng::from_u64(7);
        let mut c = CardRng::from_u64(8);
        assert_eq!(a.next_u64(), b.next_u64());
        assert_ne!(a.next_u64(), c.next_u64());
        assert_eq!(format!("{a:?}"), "CardRng(<redacted>)");
    }

    #[test]
    fn fault_plan_fires_once_at_k() {
        let mut plan = FaultPlan::cut_at_write(3, CutPoint::AfterWrite);
        assert_eq!(plan.on_write(), None);
        assert_eq!(plan.on_write(), None);
        assert_eq!(plan.on_write(), Some(CutPoint::AfterWrite));
        assert_eq!(plan.on_write(), None);
        assert!(!plan.is_armed());
    }

    #[test]
    fn manual_clock_is_shared() {
        let clock = ManualClock::new(SystemTime::UNIX_EPOCH);
        let other = clock.clone();
        other.advance(Duration::from_secs(10));
        assert_eq!(
            clock.now(),
            SystemTime::UNIX_EPOCH + Duration::from_secs(10)
        );
    }
}
