//! The JSON-RPC peek, batch splitting, id normalisation and id splicing, on any body a client may POST or
//! any line a server may print.
#![no_main]

use bytes::Bytes;
use catwalk_core::jsonrpc;
use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;

fuzz_target!(|data: &[u8]| {
    let body = Bytes::copy_from_slice(data);
    if let Ok((messages, _batch)) = jsonrpc::split_body(&body) {
        for message in &messages {
            // What is taken can be rewritten (the shared backend locates every message it forwards).
            let at = jsonrpc::locate(&message.bytes).expect("a peeked message is located");
            let id = at.id.filter(|raw| raw.get() != "null");
            assert_eq!(
                id.map(RawValue::get),
                message.id.as_deref().map(RawValue::get)
            );
            // Each message is its own bytes, and still JSON.
            serde_json::from_slice::<&RawValue>(&message.bytes).expect("a peeked message is JSON");
            if let Some(id) = &message.id {
                // A key is what the id means, not how it was written: the same id re-serialised (as a server
                // that parses it echoes it back) has the same key.
                let value: serde_json::Value = serde_json::from_str(id.get()).unwrap();
                let echoed = RawValue::from_string(value.to_string()).unwrap();
                assert_eq!(message.key, jsonrpc::peek_key(&echoed), "id {}", id.get());
                // An error reply echoes the id verbatim, in valid JSON.
                let reply = jsonrpc::error_reply(Some(id), -32600, "bad \"input\"\n");
                let reply: serde_json::Value = serde_json::from_slice(&reply).unwrap();
                assert_eq!(reply["id"], value);
            }
        }
    }
    if let Some(at) = jsonrpc::locate(data) {
        let parts = [
            at.id,
            at.meta_progress_token,
            at.progress_token,
            at.request_id,
        ];
        for (n, part) in parts.into_iter().enumerate() {
            let Some(part) = part else { continue };
            // Splicing replaces exactly that value: the message is still JSON, with the new value there.
            let out = jsonrpc::splice(data, part, "\"catwalk-7\"");
            let again = jsonrpc::locate(&out).expect("a spliced message still parses");
            let now = [
                again.id,
                again.meta_progress_token,
                again.progress_token,
                again.request_id,
            ][n];
            assert_eq!(now.map(RawValue::get), Some("\"catwalk-7\""));
        }
    }
    let half = data.len() / 2;
    let _ = jsonrpc::oversized_response_id(&data[..half], &data[half..]);
    let _ = jsonrpc::requested_version(data);
    let _ = jsonrpc::negotiated_version(data);
});
