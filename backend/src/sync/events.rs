//! The change stream: Server-Sent Events that tell phones and the lead page "something changed,
//! pull now", so nothing has to poll the pull endpoint.
//!
//! One watcher per instance reads the sync sequence once a second while anybody listens (and
//! not at all otherwise), so writes of every instance on a shared PostgreSQL are seen, and a
//! thousand listeners cost one query a second. An event carries only the new sequence number:
//! what changed, and whether the listener may see it, is the pull's business.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::watch;

use crate::db::Db;

/// How often the watcher reads the sequence while somebody listens.
const TICK: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Feed {
    /// The newest sequence number seen.
    Seq(i64),
    /// The server is shutting down: every stream ends.
    Closed,
}

/// The shared feed of sequence numbers. Cheap to clone.
#[derive(Clone)]
pub struct ChangeFeed {
    db: Db,
    tx: Arc<watch::Sender<Feed>>,
    watching: Arc<AtomicBool>,
}

impl ChangeFeed {
    pub fn new(db: Db) -> ChangeFeed {
        ChangeFeed {
            db,
            tx: Arc::new(watch::channel(Feed::Seq(0)).0),
            watching: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Ends every stream (on shutdown, so that open streams don't hold the drain).
    pub fn close(&self) {
        self.tx.send_replace(Feed::Closed);
    }

    fn subscribe(&self) -> watch::Receiver<Feed> {
        let rx = self.tx.subscribe();
        if !self.watching.swap(true, Ordering::SeqCst) {
            tokio::spawn(self.clone().watch());
        }
        rx
    }

    /// Reads the sequence every [`TICK`] until nobody listens.
    async fn watch(self) {
        loop {
            match crate::sync::last_seq(&self.db.read).await {
                Ok(seq) => {
                    self.tx.send_if_modified(|f| match *f {
                        Feed::Seq(old) if old != seq => {
                            *f = Feed::Seq(seq);
                            true
                        }
                        _ => false,
                    });
                }
                Err(e) => tracing::warn!(error = %e, "change feed: reading the sequence failed"),
            }
            tokio::time::sleep(TICK).await;
            if *self.tx.borrow() == Feed::Closed {
                break;
            }
            if self.tx.receiver_count() == 0 {
                self.watching.store(false, Ordering::SeqCst);
                // A listener that subscribed between the count and the store found the flag
                // still set and started no watcher: take the job back.
                if self.tx.receiver_count() == 0 || self.watching.swap(true, Ordering::SeqCst) {
                    break;
                }
            }
        }
    }

    /// The event stream of one listener: the current sequence at once, then each change.
    pub async fn stream(
        &self,
    ) -> crate::error::ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>> + use<>>> {
        let rx = self.subscribe();
        let now = crate::sync::last_seq(&self.db.read).await?;
        let events = futures_util::stream::unfold(
            (rx, Some(now), None::<i64>),
            |(mut rx, first, mut sent)| async move {
                let seq = match first {
                    Some(seq) => seq,
                    None => loop {
                        rx.changed().await.ok()?;
                        match *rx.borrow_and_update() {
                            Feed::Closed => return None,
                            Feed::Seq(seq) if Some(seq) > sent => break seq,
                            Feed::Seq(_) => {}
                        }
                    },
                };
                sent = Some(seq);
                let event = Event::default()
                    .event("changed")
                    .id(seq.to_string())
                    .data(format!(r#"{{"timestamp":{seq}}}"#));
                Some((Ok(event), (rx, None, sent)))
            },
        );
        // Fused: the body's layers may poll once more after the end.
        let events = futures_util::StreamExt::fuse(events);
        Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
    }
}
