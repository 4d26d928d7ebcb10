//! The resolver inside a tenant's network namespace (`nameserver 127.0.0.1`), answered by catwalk under the
//! tenant's egress policy: a granted name resolves to 127.0.0.1, where the namespace's doors are
//! ([`super::proxy`]); any other name does not exist. Real addresses never reach the tenant: catwalk resolves
//! a name itself when a connection to it is allowed, and checks what it gets then.

use std::net::Ipv4Addr;
use std::sync::Arc;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use crate::policy::egress::{Egress, Target};

/// Seconds a client may keep an answer.
const TTL: u32 = 5;

/// Answers queries on `socket` until `stop`.
pub async fn serve(socket: UdpSocket, policy: Arc<Egress>, stop: CancellationToken) {
    let mut buffer = vec![0u8; 4096];
    loop {
        let (n, from) = tokio::select! {
            received = socket.recv_from(&mut buffer) => match received {
                Ok(received) => received,
                Err(_) => continue,
            },
            () = stop.cancelled() => return,
        };
        if let Some(answer) = answer(&buffer[..n], &policy) {
            let _ = socket.send_to(&answer, from).await;
        }
    }
}

/// Whether a grant names `name` (any scheme, any port).
pub fn granted(policy: &Egress, name: &str) -> bool {
    let target = Target::Name(name.trim_end_matches('.').to_ascii_lowercase());
    policy.grants.iter().any(|g| g.host.matches(&target))
}

/// The answer to one query message; `None` for what is not a query.
fn answer(query: &[u8], policy: &Egress) -> Option<Vec<u8>> {
    let query = Message::from_vec(query).ok()?;
    if query.message_type() != MessageType::Query {
        return None;
    }
    let mut response = Message::new();
    response
        .set_id(query.id())
        .set_message_type(MessageType::Response)
        .set_op_code(query.op_code())
        .set_recursion_desired(query.recursion_desired())
        .set_recursion_available(true)
        .set_authoritative(true);
    response.add_queries(query.queries().iter().cloned());
    let mut code = ResponseCode::NoError;
    for question in query.queries() {
        let name = question.name().to_ascii();
        if !granted(policy, &name) {
            code = ResponseCode::NXDomain;
            continue;
        }
        if question.query_type() == RecordType::A {
            response.add_answer(Record::from_rdata(
                question.name().clone(),
                TTL,
                RData::A(A(Ipv4Addr::LOCALHOST)),
            ));
        }
    }
    response.set_response_code(code);
    response.to_vec().ok()
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::{Message, Query, ResponseCode};
    use hickory_proto::rr::{Name, RData, RecordType};

    use super::answer;
    use crate::policy::egress::{Egress, Grant};

    fn ask(policy: &Egress, name: &str, kind: RecordType) -> Message {
        let mut query = Message::new();
        query
            .set_id(7)
            .add_query(Query::query(Name::from_ascii(name).unwrap(), kind));
        Message::from_vec(&answer(&query.to_vec().unwrap(), policy).unwrap()).unwrap()
    }

    #[test]
    fn granted_names_resolve_to_loopback_and_others_do_not_exist() {
        let policy = Egress {
            grants: vec![
                Grant::parse("https://api.test").unwrap(),
                Grant::parse("*.wild.test").unwrap(),
            ],
            pins: Vec::new(),
        };
        let yes = ask(&policy, "API.test.", RecordType::A);
        assert_eq!(yes.id(), 7);
        assert_eq!(yes.response_code(), ResponseCode::NoError);
        assert!(matches!(yes.answers()[0].data(), RData::A(a) if a.0.is_loopback()));
        assert_eq!(
            ask(&policy, "a.wild.test.", RecordType::A).answers().len(),
            1
        );
        let six = ask(&policy, "api.test.", RecordType::AAAA);
        assert_eq!(
            (six.response_code(), six.answers().len()),
            (ResponseCode::NoError, 0)
        );
        let no = ask(&policy, "evil.test.", RecordType::A);
        assert_eq!(
            (no.response_code(), no.answers().len()),
            (ResponseCode::NXDomain, 0)
        );
        assert!(answer(b"\x00\x01junk", &policy).is_none());
    }
}
