//! Bodies both ways, streamed through small tasks:
//! - a request body is read first up to [`PRESCAN`]: a body that ends within it (nearly every API call) is
//!   searched for placeholders before anything is sent, so a refused request never reaches the host; a longer
//!   one goes on streaming, searched as it goes (with an overlap, so a placeholder split across two parts is
//!   found), and is cut off at the first placeholder;
//! - a response body is capped in size and in idle time between parts, and the secrets' real values are masked
//!   in it (parts held back by a value's length, so a value split across two parts is masked too).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, mpsc};

use super::Limits;
use crate::metrics::TenantMetrics;
use crate::policy::egress::Denied;
use crate::policy::secrets::{Placeholders, refusal};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a request body may hold before it is sent: searched whole first.
pub const PRESCAN: usize = 1 << 20;

/// Parts of a body queued between its reader and its writer.
const QUEUE: usize = 4;

/// A request body as it goes out.
pub struct Outgoing {
    parts: mpsc::Receiver<Result<Bytes, BoxError>>,
    len: Option<u64>,
}

impl Body for Outgoing {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.parts
            .poll_recv(cx)
            .map(|part| part.map(|part| part.map(Frame::data)))
    }

    fn size_hint(&self) -> SizeHint {
        match self.len {
            Some(len) => SizeHint::with_exact(len),
            None => SizeHint::default(),
        }
    }
}

/// Reads `body` up to [`PRESCAN`] and searches it for placeholders: the body to send, or the refusal.
pub async fn prescan<B>(
    body: B,
    placeholders: Placeholders,
    counted: Arc<TenantMetrics>,
    label: Arc<str>,
) -> Result<Outgoing, Denied>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let mut body = Box::pin(body.map_err(Into::<BoxError>::into));
    let mut head = BytesMut::new();
    let mut ended = false;
    while head.len() <= PRESCAN {
        match body.frame().await {
            None => {
                ended = true;
                break;
            }
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    head.extend_from_slice(&data);
                }
            }
            // The guest's own body failed: whatever was read goes, and the error ends it.
            Some(Err(_)) => {
                ended = true;
                break;
            }
        }
    }
    if let Some(secret) = placeholders.find_in(&head) {
        return Err(refusal(secret, "the body"));
    }
    let head = head.freeze();
    let (tx, parts) = mpsc::channel(QUEUE);
    counted.egress_bytes(&label, "out", head.len() as u64);
    let len = ended.then_some(head.len() as u64);
    if !head.is_empty() {
        let _ = tx.try_send(Ok(head.clone()));
    }
    if !ended {
        tokio::spawn(async move {
            let overlap = placeholders.longest().saturating_sub(1);
            let mut tail = head.slice(head.len().saturating_sub(overlap)..).to_vec();
            while let Some(frame) = body.frame().await {
                let data = match frame {
                    Ok(frame) => match frame.into_data() {
                        Ok(data) => data,
                        Err(_) => continue,
                    },
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                };
                tail.extend_from_slice(&data);
                if let Some(secret) = placeholders.find_in(&tail) {
                    let _ = tx
                        .send(Err(Box::new(refusal(secret, "the body")) as BoxError))
                        .await;
                    return;
                }
                tail.drain(..tail.len().saturating_sub(overlap));
                counted.egress_bytes(&label, "out", data.len() as u64);
                if tx.send(Ok(data)).await.is_err() {
                    return;
                }
            }
        });
    }
    Ok(Outgoing { parts, len })
}

/// A response body as the guest receives it.
pub struct Received {
    parts: mpsc::Receiver<Result<Bytes, String>>,
    len: Option<u64>,
}

impl std::fmt::Debug for Received {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Received").finish_non_exhaustive()
    }
}

/// Why a response body stopped short.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Cut(pub String);

impl Received {
    /// Streams `incoming` to the guest; `permit` (the request's place in flight) is held until it ends.
    pub fn new(
        incoming: hyper::body::Incoming,
        placeholders: Placeholders,
        limits: Limits,
        metrics: Arc<TenantMetrics>,
        label: Arc<str>,
        permit: OwnedSemaphorePermit,
    ) -> Self {
        let len = incoming.size_hint().exact();
        let (tx, parts) = mpsc::channel(QUEUE);
        tokio::spawn(async move {
            let _permit = permit;
            let mut incoming = incoming;
            let hold = placeholders.longest_value().saturating_sub(1);
            let mut pending = BytesMut::new();
            let mut total: u64 = 0;
            let failure = loop {
                let frame = match tokio::time::timeout(limits.idle_timeout, incoming.frame()).await
                {
                    Err(_) => {
                        break Some(format!(
                            "the response stalled: nothing for {:?}",
                            limits.idle_timeout
                        ));
                    }
                    Ok(None) => break None,
                    Ok(Some(Err(e))) => break Some(format!("the response broke off: {e}")),
                    Ok(Some(Ok(frame))) => frame,
                };
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                total += data.len() as u64;
                if total > limits.max_response_bytes {
                    metrics.egress_failed("too_large");
                    break Some(format!(
                        "the response is larger than {} bytes, the most a server may receive",
                        limits.max_response_bytes
                    ));
                }
                if placeholders.is_empty() {
                    if tx.send(Ok(data)).await.is_err() {
                        return;
                    }
                    continue;
                }
                pending.extend_from_slice(&data);
                if let Some(masked) = placeholders.mask(&pending) {
                    pending = BytesMut::from(&masked[..]);
                }
                let ready = pending.len().saturating_sub(hold);
                if ready > 0 && tx.send(Ok(pending.split_to(ready).freeze())).await.is_err() {
                    return;
                }
            };
            metrics.egress_bytes(&label, "in", total);
            if failure.is_none() && !pending.is_empty() {
                let _ = tx.send(Ok(pending.freeze())).await;
            }
            if let Some(failure) = failure {
                let _ = tx.send(Err(failure)).await;
            }
        });
        Self { parts, len }
    }

    /// The next part of the body: `None` at its end.
    pub async fn next(&mut self) -> Option<Result<Bytes, String>> {
        self.parts.recv().await
    }
}

impl Body for Received {
    type Data = Bytes;
    type Error = Cut;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Cut>>> {
        self.parts
            .poll_recv(cx)
            .map(|part| part.map(|part| part.map(Frame::data).map_err(Cut)))
    }

    fn size_hint(&self) -> SizeHint {
        match self.len {
            Some(len) => SizeHint::with_exact(len),
            None => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use crate::policy::secrets::Secret;

    fn placeholders() -> (Placeholders, String) {
        let secret = Secret::new("T", "sk_live_0123456789", &["api.test".into()]).unwrap();
        let p = Placeholders::new(&[secret]);
        let placeholder = p.env().next().unwrap().1.to_owned();
        (p, placeholder)
    }

    fn chunks(parts: Vec<Vec<u8>>) -> impl Body<Data = Bytes, Error = BoxError> + Send + 'static {
        let stream = futures_util::stream::iter(
            parts
                .into_iter()
                .map(|p| Ok::<_, BoxError>(Frame::data(Bytes::from(p)))),
        );
        http_body_util::StreamBody::new(stream)
    }

    #[tokio::test]
    async fn a_placeholder_in_a_small_body_refuses_it_before_anything_is_sent() {
        let (p, placeholder) = placeholders();
        let body = chunks(vec![
            b"{\"t\":\"".to_vec(),
            placeholder.as_bytes().to_vec(),
            b"\"}".to_vec(),
        ]);
        let refused = prescan(body, p, Metrics::new().tenant("t"), "h".into()).await;
        assert!(refused.is_err());
    }

    #[tokio::test]
    async fn a_placeholder_split_across_parts_of_a_long_body_cuts_it_off() {
        let (p, placeholder) = placeholders();
        let (head, tail) = placeholder.as_bytes().split_at(placeholder.len() / 2);
        let mut first = vec![b'a'; PRESCAN + 10];
        first.extend_from_slice(head);
        let body = chunks(vec![first, tail.to_vec(), b"rest".to_vec()]);
        let mut outgoing = prescan(body, p, Metrics::new().tenant("t"), "h".into())
            .await
            .expect("the first MiB is clean");
        let mut failed = false;
        while let Some(frame) = outgoing.frame().await {
            if frame.is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed, "the placeholder split across two parts was found");
    }
}
