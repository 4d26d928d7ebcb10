//! `wasi:http/outgoing-handler` for `wasm32-wasip2` components, under the same policy as every other way out:
//! wasmtime-wasi-http's own send path (which resolves and connects with no checks) is replaced by catwalk's
//! ([`crate::egress`]).

use std::future::Future;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use super::http::Unanswered;
use crate::egress::{Failure, Outbound};

/// The hooks of one component instance: its way out, if its tenant has one, and its server's count of what
/// the network did not answer.
pub struct Hooks {
    pub outbound: Option<Outbound>,
    pub unanswered: Unanswered,
}

type Sent = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

impl WasiHttpHooks for Hooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _body_done: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Sent {
        let outbound = self.outbound.clone();
        let unanswered = self.unanswered.clone();
        Box::new(async move {
            let Some(outbound) = outbound else {
                unanswered.fetch_add(1, Ordering::Relaxed);
                return Err(Error::InternalError(Some(
                    "catwalk refused the request: this server is granted no egress".into(),
                )));
            };
            let (parts, body) = request.into_parts();
            let url = parts.uri.to_string();
            let sent = outbound.send(parts.method, &url, parts.headers, body).await;
            if sent.is_err() {
                unanswered.fetch_add(1, Ordering::Relaxed);
            }
            match sent {
                Ok(response) => {
                    let response = response.map(|body| {
                        body.map_err(|cut| Error::InternalError(Some(cut.0)))
                            .map_frame(|frame| frame.map_data(Bytes::from))
                            .boxed_unsync()
                    });
                    let done: Box<dyn Future<Output = Result<(), Error>> + Send> =
                        Box::new(async { Ok(()) });
                    Ok((response, done))
                }
                Err(Failure::Timeout(_)) => Err(Error::HttpResponseTimeout),
                Err(failure) => Err(Error::InternalError(Some(failure.to_string()))),
            }
        })
    }
}
