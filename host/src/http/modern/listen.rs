//! `subscriptions/listen`: the 2026-07-28 client's stream of change notifications (in place of the 2025 era's
//! GET stream). The answer is an SSE stream that opens with `notifications/subscriptions/acknowledged`, naming
//! what the server agreed to send of what the client asked for, then carries those notifications, each tagged
//! with the listen request's id, until the client closes it. When catwalk ends it (shutdown, the tenant
//! removed), the stream's last event is the request's result.
//!
//! - A server that speaks 2026-07-28 gets the request on an instance of its own, held for the stream's life
//!   (like a session's): what it sends is relayed as it comes.
//! - For a 2025-era server catwalk answers: the list changes any of the tenant's instances announce while they
//!   serve modern requests reach every listen stream that asked for them, and resource subscriptions go to an
//!   instance held for the stream, subscribed (`resources/subscribe`) to each URI, whose
//!   `notifications/resources/updated` for them are relayed. What the server's capabilities do not offer is
//!   left out of the acknowledgement, and never sent.
//!
//! A stream holds a place under catwalk's and the tenant's session caps while it is open, as a 2025-era session
//! (and its GET stream) does.

use std::sync::Weak;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{OwnedSemaphorePermit, broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::FIRST_MODERN;
use super::bridge::{Exchange, Failure, Out, instance, internal, places, reply};
use super::checks::{Meta, modern_code};
use super::pool::{Change, Pool};
use super::wire::{Wire, complete, gone, refusal};
use crate::backend::{Instance, ServerEvent};
use crate::http::Scope;
use crate::jsonrpc::{self, Kind, code};
use crate::policy::offer::Offer;

const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";
const RESOURCE_UPDATED: &str = "notifications/resources/updated";
/// Why a server's request on a listen stream goes unanswered: there is no one to ask.
const LISTEN_REFUSAL: &str = "is not answered on a subscriptions/listen stream";

/// Serves one `subscriptions/listen`.
pub(super) async fn listen(
    scope: &Scope,
    id: Value,
    params: Value,
    meta: Meta,
    passthrough: bool,
) -> Result<Response, Failure> {
    let app = &scope.app;
    let Some(filter) = params.get("notifications").and_then(Value::as_object) else {
        return Err((
            StatusCode::BAD_REQUEST,
            modern_code::INVALID_PARAMS,
            "params.notifications is required: the notifications to listen for".into(),
        ));
    };
    let (out, answers) = mpsc::channel(app.limits.live_queue);
    let ends = Ends {
        id: id.clone(),
        closing: app.front.closing.clone(),
        pool: std::sync::Arc::downgrade(&app.front),
    };
    let offer = app.offer.clone();
    if passthrough {
        // What the tenant does not offer is not asked for.
        let mut params = params;
        if let Some(offer) = &offer
            && let Some(uris) = params
                .pointer_mut("/notifications/resourceSubscriptions")
                .and_then(Value::as_array_mut)
        {
            uris.retain(|uri| uri.as_str().is_none_or(|uri| offer.resources.admits(uri)));
        }
        let permits = places(app)?;
        let (instance, _, _) = instance(app, FIRST_MODERN.to_owned()).await?;
        let request =
            json!({"jsonrpc": "2.0", "id": id, "method": "subscriptions/listen", "params": params});
        instance
            .to_server
            .send(request.to_string().into())
            .await
            .map_err(|_| gone("the MCP server is gone"))?;
        tokio::spawn(relay(instance, permits, ends, out, offer));
    } else {
        let discover = Exchange {
            client_id: Value::from("catwalk/discover"),
            method: "server/discover".into(),
            params: json!({}),
            meta: meta.clone(),
            digest: String::new(),
            owner: scope.token,
            passthrough: false,
            call: None,
        };
        let discovered = internal(scope, discover).await?;
        let capabilities = discovered
            .pointer("/result/capabilities")
            .cloned()
            .unwrap_or_default();
        let (agreed, uris) = agree(filter, &capabilities, offer.as_deref());
        // The stream's place, like a session's, whether or not a server is held for it.
        let permits = places(app)?;
        // Subscribed before the acknowledgement: no change after it is missed.
        let changes = app.front.changes.subscribe();
        let held = match uris.is_empty() {
            true => None,
            false => Some(subscribe(scope, &meta, &uris, &out).await?),
        };
        tokio::spawn(follow(agreed, uris, held, changes, ends, out, permits));
    }
    reply(answers, app.keep_alive).await
}

/// What a listen stream needs to end: its request's id (the result's), the pool's end, and the pool (weakly:
/// a stream does not keep its tenant's pool alive) to announce list changes to.
struct Ends {
    id: Value,
    closing: CancellationToken,
    pool: Weak<Pool>,
}

impl Ends {
    /// The result that ends a subscription catwalk tears down.
    fn result(&self) -> Out {
        Out::Final(
            StatusCode::OK,
            json!({"jsonrpc": "2.0", "id": self.id, "result": {
                "resultType": "complete",
                "_meta": {SUBSCRIPTION_ID: self.id},
            }})
            .to_string()
            .into(),
        )
    }

    fn failed(&self, message: &str) -> Out {
        Out::Final(
            StatusCode::OK,
            json!({"jsonrpc": "2.0", "id": self.id, "error": {
                "code": code::SERVER_GONE,
                "message": message,
            }})
            .to_string()
            .into(),
        )
    }

    fn announce(&self, change: Change) {
        if let Some(pool) = self.pool.upgrade() {
            pool.announce(change);
        }
    }

    /// `notification` as sent on this stream: tagged with the subscription's id.
    fn tagged(&self, mut notification: Value) -> Out {
        if !notification["params"].is_object() {
            notification["params"] = json!({});
        }
        if !notification["params"]["_meta"].is_object() {
            notification["params"]["_meta"] = json!({});
        }
        notification["params"]["_meta"][SUBSCRIPTION_ID] = self.id.clone();
        Out::Note(notification.to_string().into())
    }
}

/// What of `filter` the server's `capabilities` offer, and the tenant's `offer` admits: the acknowledgement's
/// filter, and the resource URIs to subscribe to.
fn agree(
    filter: &Map<String, Value>,
    capabilities: &Value,
    offer: Option<&Offer>,
) -> (Map<String, Value>, Vec<String>) {
    let mut agreed = Map::new();
    for change in Change::ALL {
        if filter.get(change.filter()) == Some(&Value::Bool(true))
            && capabilities[change.capability()]["listChanged"] == true
        {
            agreed.insert(change.filter().into(), true.into());
        }
    }
    let mut uris = Vec::new();
    if capabilities["resources"]["subscribe"] == true
        && let Some(asked) = filter
            .get("resourceSubscriptions")
            .and_then(Value::as_array)
    {
        for uri in asked.iter().filter_map(Value::as_str) {
            let offered = offer.is_none_or(|offer| offer.resources.admits(uri));
            if offered && !uris.iter().any(|u| u == uri) {
                uris.push(uri.to_owned());
            }
        }
        agreed.insert("resourceSubscriptions".into(), json!(uris));
    }
    (agreed, uris)
}

/// An instance of a 2025-era server held for one listen stream, subscribed to its resource URIs.
struct Held {
    instance: Instance,
}

async fn subscribe(
    scope: &Scope,
    meta: &Meta,
    uris: &[String],
    out: &mpsc::Sender<Out>,
) -> Result<Held, Failure> {
    let app = &scope.app;
    let (mut instance, initialized, _) = instance(app, meta.key()).await?;
    let mut wire = Wire {
        to_server: &instance.to_server,
        from_server: &mut instance.from_server,
        out,
        relay_logs: false,
        asks_allowed: false,
        capabilities: &meta.capabilities,
        pool: &app.front,
    };
    let subscribed = async {
        if initialized.is_none() {
            wire.handshake(meta).await?;
        }
        for (n, uri) in uris.iter().enumerate() {
            let id = Value::from(format!("catwalk/subscribe-{n}"));
            wire.send(
                &json!({"jsonrpc": "2.0", "id": id, "method": "resources/subscribe",
                "params": {"uri": uri}}),
            )
            .await?;
            let answer = wire.own_answer(&id).await?;
            if let Some(error) = answer.get("error") {
                let message = error["message"].as_str().unwrap_or("refused");
                return Err((
                    StatusCode::OK,
                    error["code"].as_i64().unwrap_or(code::SERVER_GONE),
                    format!("the MCP server refused to subscribe to {uri}: {message}"),
                ));
            }
        }
        Ok(())
    };
    match subscribed.await {
        Ok(()) => Ok(Held { instance }),
        Err(failure) => {
            instance.stop.cancel();
            Err(failure)
        }
    }
}

/// Follows the tenant's list changes (and the held instance's resource updates) for one stream, until the
/// client closes it or catwalk ends it.
async fn follow(
    agreed: Map<String, Value>,
    uris: Vec<String>,
    mut held: Option<Held>,
    mut changes: broadcast::Receiver<Change>,
    ends: Ends,
    out: mpsc::Sender<Out>,
    _places: Vec<OwnedSemaphorePermit>,
) {
    let acknowledged = json!({"jsonrpc": "2.0", "method": "notifications/subscriptions/acknowledged",
        "params": {"notifications": agreed}});
    let wanted = |change: &Change| agreed.get(change.filter()) == Some(&Value::Bool(true));
    let mut pending = vec![ends.tagged(acknowledged)];
    'stream: loop {
        for note in pending.drain(..) {
            if out.send(note).await.is_err() {
                break 'stream;
            }
        }
        let from_server = async {
            match &mut held {
                Some(held) => held.instance.from_server.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            change = changes.recv() => match change {
                Ok(change) if wanted(&change) => {
                    pending.push(ends.tagged(json!({"jsonrpc": "2.0", "method": change.method()})));
                }
                Ok(_) => {}
                // Fell behind: every list it follows may have changed.
                Err(RecvError::Lagged(_)) => pending.extend(
                    Change::ALL
                        .iter()
                        .filter(|c| wanted(c))
                        .map(|c| ends.tagged(json!({"jsonrpc": "2.0", "method": c.method()}))),
                ),
                Err(RecvError::Closed) => {
                    let _ = out.send(ends.result()).await;
                    break;
                }
            },
            event = from_server => {
                let Some(ServerEvent::Message(bytes)) = event else {
                    let _ = out.send(ends.failed("the MCP server holding the resource subscriptions is gone")).await;
                    break;
                };
                let Ok(message) = serde_json::from_slice::<Value>(&bytes) else { continue };
                let method = message["method"].as_str().unwrap_or_default();
                if message.get("id").is_some() {
                    if !method.is_empty()
                        && let Some(held) = &held
                    {
                        let _ = held.instance.to_server.send(refusal(&message, LISTEN_REFUSAL).to_string().into()).await;
                    }
                } else if let Some(change) = Change::of(method) {
                    ends.announce(change);
                } else if method == RESOURCE_UPDATED
                    && message["params"]["uri"].as_str().is_some_and(|uri| uris.iter().any(|u| u == uri))
                {
                    pending.push(ends.tagged(message));
                }
            }
            () = out.closed() => break,
            () = ends.closing.cancelled() => {
                let _ = out.send(ends.result()).await;
                break;
            }
        }
    }
    if let Some(held) = held {
        held.instance.stop.cancel();
    }
}

/// Relays a 2026-07-28 server's own listen stream until it ends it, the client closes it or catwalk ends it.
async fn relay(
    mut instance: Instance,
    _places: Vec<OwnedSemaphorePermit>,
    ends: Ends,
    out: mpsc::Sender<Out>,
    offer: Option<std::sync::Arc<Offer>>,
) {
    let wanted = serde_json::value::to_raw_value(&ends.id)
        .ok()
        .and_then(|raw| jsonrpc::peek_key(&raw));
    loop {
        let note = tokio::select! {
            event = instance.from_server.recv() => {
                let Some(ServerEvent::Message(bytes)) = event else {
                    let _ = out.send(ends.failed("the MCP server is gone")).await;
                    break;
                };
                let Ok(peeked) = jsonrpc::peek(bytes.clone()) else { continue };
                match peeked.kind {
                    Kind::Response if peeked.key.is_some() && peeked.key == wanted => {
                        if let Ok(answer) = serde_json::from_slice(&bytes) {
                            let _ = out.send(complete("subscriptions/listen", answer)).await;
                        }
                        break;
                    }
                    Kind::Response => continue,
                    Kind::Request => {
                        if let Ok(message) = serde_json::from_slice::<Value>(&bytes) {
                            let _ = instance.to_server.send(refusal(&message, LISTEN_REFUSAL).to_string().into()).await;
                        }
                        continue;
                    }
                    Kind::Notification => {
                        if let Some(offer) = &offer
                            && Offer::screens(peeked.method())
                            && let Ok(message) = serde_json::from_slice::<Value>(&bytes)
                            && !offer.admits_notification(peeked.method(), message.get("params"))
                        {
                            continue;
                        }
                        if let Some(change) = Change::of(peeked.method()) {
                            ends.announce(change);
                        }
                        Out::Note(bytes)
                    }
                }
            }
            () = out.closed() => break,
            () = ends.closing.cancelled() => {
                let _ = out.send(ends.result()).await;
                break;
            }
        };
        if out.send(note).await.is_err() {
            break;
        }
    }
    instance.stop.cancel();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_the_server_offers_is_agreed() {
        let filter = json!({"toolsListChanged": true, "promptsListChanged": true,
            "resourcesListChanged": false, "resourceSubscriptions": ["file:///a", "file:///a", "file:///b"]});
        let filter = filter.as_object().unwrap();
        let offers = json!({"tools": {"listChanged": true}, "prompts": {}, "resources": {"subscribe": true, "listChanged": true}});
        let (agreed, uris) = agree(filter, &offers, None);
        assert_eq!(
            Value::Object(agreed),
            json!({"toolsListChanged": true, "resourceSubscriptions": ["file:///a", "file:///b"]})
        );
        assert_eq!(uris, ["file:///a", "file:///b"]);
        let (agreed, uris) = agree(filter, &json!({}), None);
        assert!(agreed.is_empty() && uris.is_empty());
    }
}
