//! The plumbing the group-commit writers share (audit reads, REST creates, sync pushes): a
//! request hands its job to the writer task and waits for the answer; the task takes whatever
//! has queued up meanwhile as one batch.

use tokio::sync::{mpsc, oneshot};

use crate::error::ApiError;

fn shutting_down() -> ApiError {
    ApiError::Unavailable("the server is shutting down".into())
}

/// Sends the job made with a reply channel and waits for the writer's answer.
pub async fn ask<J, T>(
    tx: &mpsc::Sender<J>,
    job: impl FnOnce(oneshot::Sender<T>) -> J,
) -> Result<T, ApiError> {
    let (reply, answer) = oneshot::channel();
    tx.send(job(reply)).await.map_err(|_| shutting_down())?;
    answer.await.map_err(|_| shutting_down())
}

/// Waits for a job, then takes those already queued behind it until `full` says the batch is
/// big enough. `None` once every sender is gone.
pub async fn next_batch<J>(
    rx: &mut mpsc::Receiver<J>,
    full: impl Fn(&[J]) -> bool,
) -> Option<Vec<J>> {
    let mut jobs = vec![rx.recv().await?];
    while !full(&jobs) {
        match rx.try_recv() {
            Ok(j) => jobs.push(j),
            Err(_) => break,
        }
    }
    Some(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_batch_takes_what_is_queued_up_to_full() {
        let (tx, mut rx) = mpsc::channel(16);
        for i in 0..5 {
            tx.send(i).await.unwrap();
        }
        assert_eq!(
            next_batch(&mut rx, |b| b.len() >= 3).await,
            Some(vec![0, 1, 2])
        );
        assert_eq!(
            next_batch(&mut rx, |b| b.len() >= 3).await,
            Some(vec![3, 4])
        );
        drop(tx);
        assert_eq!(next_batch(&mut rx, |b| b.len() >= 3).await, None);
    }

    #[tokio::test]
    async fn ask_fails_as_unavailable_when_the_writer_is_gone() {
        let (tx, rx) = mpsc::channel::<oneshot::Sender<u8>>(1);
        drop(rx);
        let err = ask(&tx, |reply| reply).await.unwrap_err();
        assert!(matches!(err, ApiError::Unavailable(_)));
    }
}
