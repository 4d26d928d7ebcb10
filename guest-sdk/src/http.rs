//! A small blocking HTTP client: the guest asks, catwalk sends the request under its tenant's egress grants
//! (resolving, checking the addresses, TLS) and swaps the tenant's secrets into it, so a guest never holds a
//! socket or a token. On `wasm32-wasip1` it uses catwalk's `catwalk_http` host interface; on `wasm32-wasip2`
//! `wasi:http/outgoing-handler`. Natively there is no catwalk to ask, and every request fails.
//!
//! ```no_run
//! let token = std::env::var("GITHUB_TOKEN").unwrap_or_default(); // a placeholder, swapped by catwalk
//! let response = catwalk_guest::http::Request::get("https://api.github.com/user")
//!     .header("authorization", &format!("Bearer {token}"))
//!     .send()?;
//! println!("{} {}", response.status, response.text());
//! # Ok::<(), catwalk_guest::http::Error>(())
//! ```

/// Why a request got no response: catwalk's refusal (with its reason) or a failure on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// A request to send.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A response, read whole.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Request {
    pub fn new(method: &str, url: &str) -> Self {
        Self {
            method: method.to_owned(),
            url: url.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn get(url: &str) -> Self {
        Self::new("GET", url)
    }

    pub fn post(url: &str, body: impl Into<Vec<u8>>) -> Self {
        Self::new("POST", url).body(body)
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sends the request and reads the whole response (a redirect is returned, not followed).
    pub fn send(&self) -> Result<Response, Error> {
        imp::send(self)
    }
}

/// `GET url`.
pub fn get(url: &str) -> Result<Response, Error> {
    Request::get(url).send()
}

#[cfg(all(target_os = "wasi", not(target_env = "p2")))]
#[allow(unsafe_code)]
mod imp {
    use super::{Error, Request, Response};

    #[link(wasm_import_module = "catwalk_http")]
    unsafe extern "C" {
        fn request(spec: *const u8, len: usize) -> i32;
        fn write(handle: i32, ptr: *const u8, len: usize) -> i32;
        fn finish(handle: i32) -> i32;
        fn head(handle: i32, buf: *mut u8, len: usize) -> i32;
        fn read(handle: i32, buf: *mut u8, len: usize) -> i32;
        fn close(handle: i32);
        fn error(buf: *mut u8, len: usize) -> i32;
        fn wait(mask: i32, timeout_ms: i64) -> i32;
    }

    const ERROR: i32 = -1;
    const PENDING: i32 = -2;
    /// `wait`'s mask for requests' progress (not stdin: the guest is busy with a request).
    const HTTP: i32 = 2;

    fn last_error() -> Error {
        let mut buf = vec![0u8; 1024];
        loop {
            // SAFETY: catwalk writes at most `buf.len()` bytes into `buf`.
            let n = unsafe { error(buf.as_mut_ptr(), buf.len()) };
            if n < 0 {
                return Error("the request failed".into());
            }
            if n as usize > buf.len() {
                buf.resize(n as usize, 0);
                continue;
            }
            buf.truncate(n as usize);
            return Error(String::from_utf8_lossy(&buf).into_owned());
        }
    }

    fn block() {
        // SAFETY: numbers in and out.
        unsafe { wait(HTTP, -1) };
    }

    /// Closes the exchange however `send` leaves.
    struct Handle(i32);

    impl Drop for Handle {
        fn drop(&mut self) {
            // SAFETY: a number in.
            unsafe { close(self.0) }
        }
    }

    pub fn send(req: &Request) -> Result<Response, Error> {
        let spec =
            serde_json::json!({"method": req.method, "url": req.url, "headers": req.headers})
                .to_string();
        // SAFETY: catwalk reads `spec.len()` bytes of `spec`.
        let handle = unsafe { request(spec.as_ptr(), spec.len()) };
        if handle <= 0 {
            return Err(last_error());
        }
        let handle = Handle(handle);
        for chunk in req.body.chunks(64 * 1024) {
            // SAFETY: catwalk reads `chunk.len()` bytes of `chunk`.
            while unsafe { write(handle.0, chunk.as_ptr(), chunk.len()) } == PENDING {
                block();
            }
        }
        // SAFETY: a number in and out.
        if unsafe { finish(handle.0) } == ERROR {
            return Err(last_error());
        }
        let mut buf = vec![0u8; 8192];
        let head_json = loop {
            // SAFETY: catwalk writes at most `buf.len()` bytes into `buf`.
            match unsafe { head(handle.0, buf.as_mut_ptr(), buf.len()) } {
                PENDING => block(),
                ERROR => return Err(last_error()),
                n if n as usize > buf.len() => buf.resize(n as usize, 0),
                n => break buf[..n as usize].to_vec(),
            }
        };
        let parsed: serde_json::Value = serde_json::from_slice(&head_json)
            .map_err(|e| Error(format!("a response head catwalk sent is not JSON: {e}")))?;
        let status = parsed["status"].as_u64().unwrap_or(0) as u16;
        let headers = parsed["headers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|pair| Some((pair[0].as_str()?.to_owned(), pair[1].as_str()?.to_owned())))
            .collect();
        let mut body = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: catwalk writes at most `chunk.len()` bytes into `chunk`.
            match unsafe { read(handle.0, chunk.as_mut_ptr(), chunk.len()) } {
                PENDING => block(),
                ERROR => return Err(last_error()),
                0 => break,
                n => body.extend_from_slice(&chunk[..n as usize]),
            }
        }
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

#[cfg(all(target_os = "wasi", target_env = "p2"))]
mod imp {
    use super::{Error, Request, Response};
    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, Scheme};
    use wasip2::io::streams::StreamError;

    fn code(error: ErrorCode) -> Error {
        match error {
            ErrorCode::InternalError(Some(message)) => Error(message),
            other => Error(format!("{other:?}")),
        }
    }

    pub fn send(req: &Request) -> Result<Response, Error> {
        let (scheme, rest) = req
            .url
            .split_once("://")
            .ok_or_else(|| Error(format!("{} is not a URL", req.url)))?;
        let (authority, path) = match rest.find(['/', '?']) {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, "/"),
        };
        let path = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_owned()
        };
        let fields: Vec<(String, Vec<u8>)> = req
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
            .collect();
        let headers = Fields::from_list(&fields)
            .map_err(|e| Error(format!("a header is not valid: {e:?}")))?;
        let request = OutgoingRequest::new(headers);
        let method = match req.method.to_ascii_uppercase().as_str() {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "PATCH" => Method::Patch,
            "HEAD" => Method::Head,
            "OPTIONS" => Method::Options,
            other => Method::Other(other.to_owned()),
        };
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "https" => Scheme::Https,
            "http" => Scheme::Http,
            other => Scheme::Other(other.to_owned()),
        };
        let bad = |what: &str| Error(format!("the request's {what} is not valid"));
        request.set_method(&method).map_err(|()| bad("method"))?;
        request
            .set_scheme(Some(&scheme))
            .map_err(|()| bad("scheme"))?;
        request
            .set_authority(Some(authority))
            .map_err(|()| bad("authority"))?;
        request
            .set_path_with_query(Some(&path))
            .map_err(|()| bad("path"))?;
        let body = request.body().map_err(|()| bad("body"))?;
        let future = outgoing_handler::handle(request, None).map_err(code)?;
        {
            let stream = body.write().map_err(|()| bad("body"))?;
            for chunk in req.body.chunks(4096) {
                stream
                    .blocking_write_and_flush(chunk)
                    .map_err(|e| Error(format!("writing the body failed: {e:?}")))?;
            }
        }
        OutgoingBody::finish(body, None).map_err(code)?;
        let response = loop {
            match future.get() {
                Some(Ok(Ok(response))) => break response,
                Some(Ok(Err(error))) => return Err(code(error)),
                Some(Err(())) => return Err(Error("the response was taken already".into())),
                None => future.subscribe().block(),
            }
        };
        let status = response.status();
        let headers = response
            .headers()
            .entries()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
            .collect();
        let incoming = response.consume().map_err(|()| bad("response body"))?;
        let mut bytes = Vec::new();
        {
            let stream = incoming.stream().map_err(|()| bad("response body"))?;
            loop {
                match stream.blocking_read(64 * 1024) {
                    Ok(chunk) => bytes.extend_from_slice(&chunk),
                    Err(StreamError::Closed) => break,
                    Err(StreamError::LastOperationFailed(e)) => {
                        return Err(Error(format!(
                            "the response broke off: {}",
                            e.to_debug_string()
                        )));
                    }
                }
            }
        }
        Ok(Response {
            status,
            headers,
            body: bytes,
        })
    }
}

#[cfg(not(target_os = "wasi"))]
mod imp {
    use super::{Error, Request, Response};

    pub fn send(_: &Request) -> Result<Response, Error> {
        Err(Error(
            "HTTP goes through catwalk, and this guest runs outside it".into(),
        ))
    }
}
