//! The idle loop every log follower shares (relay, projectors, the exporter's feed publisher): after a
//! round that found nothing, sleep until a NATS ping, a poll interval or shutdown; after a failed
//! round, back off exponentially.

use cairn_platform::Shutdown;
use futures::StreamExt;
use std::time::Duration;

/// How an idle wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Woken {
    /// A message arrived on the wake-up subscription.
    Ping,
    /// The poll interval passed.
    Timer,
    Shutdown,
}

/// Waits for a message on `sub` (when there is one), `poll`, or shutdown.
pub async fn idle(sub: &mut Option<async_nats::Subscriber>, poll: Duration, shutdown: &Shutdown) -> Woken {
    let ping = async {
        match sub.as_mut() {
            Some(s) => {
                s.next().await;
            }
            None => futures::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = shutdown.wait() => Woken::Shutdown,
        () = ping => Woken::Ping,
        () = tokio::time::sleep(poll) => Woken::Timer,
    }
}

/// Exponential backoff between failed rounds: 100 ms doubling up to 5 s, reset by a good round.
#[derive(Debug)]
pub struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Self {
        Self(Self::FIRST)
    }
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(5);

    pub fn reset(&mut self) {
        self.0 = Self::FIRST;
    }

    /// Sleeps the current delay (doubling the next one); `false` when shutdown came first.
    pub async fn sleep(&mut self, shutdown: &Shutdown) -> bool {
        let delay = self.0;
        self.0 = (self.0 * 2).min(Self::MAX);
        tokio::select! {
            () = shutdown.wait() => false,
            () = tokio::time::sleep(delay) => true,
        }
    }
}
