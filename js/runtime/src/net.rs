//! Outbound HTTP through catwalk: the guest never opens a socket. catwalk's `catwalk_http` host interface
//! (`host/src/backend/wasi/http.rs`) makes each request under the tenant's egress policy; this module gives its
//! functions to JavaScript as `__catwalk.http*`, on which the prelude builds its exchanges and the Node layer
//! builds `fetch`, `http`/`https` and `dns.lookup`. Outside WASI (this crate's own tests) every request fails.
//!
//! Results follow the host's: a handle or bytes, `null` for "not yet" (the loop waits, then polls again), and
//! a thrown `Error` with catwalk's message for a refusal or a failure.

use rquickjs::{Ctx, Exception, Function, Object, TypedArray};

#[cfg(target_os = "wasi")]
#[allow(unsafe_code)]
mod host {
    #[link(wasm_import_module = "catwalk_http")]
    unsafe extern "C" {
        pub fn request(spec: *const u8, len: usize) -> i32;
        pub fn write(handle: i32, ptr: *const u8, len: usize) -> i32;
        pub fn finish(handle: i32) -> i32;
        pub fn head(handle: i32, buf: *mut u8, len: usize) -> i32;
        pub fn read(handle: i32, buf: *mut u8, len: usize) -> i32;
        pub fn close(handle: i32);
        pub fn error(buf: *mut u8, len: usize) -> i32;
        pub fn wait(mask: i32, timeout_ms: i64) -> i32;
        pub fn lookup(name: *const u8, len: usize, buf: *mut u8, buflen: usize) -> i32;
    }
}

#[cfg(target_os = "wasi")]
const ERROR: i32 = -1;
#[cfg(target_os = "wasi")]
const PENDING: i32 = -2;
/// How much one read takes at most.
#[cfg(target_os = "wasi")]
const CHUNK: usize = 64 * 1024;

/// What `wait` says is ready.
#[cfg(target_os = "wasi")]
pub const STDIN: i32 = 1;
#[cfg(target_os = "wasi")]
pub const HTTP: i32 = 2;

/// Waits until what `mask` asks for is ready, or `timeout` passes: what is ready (0: the time ran out).
#[cfg(target_os = "wasi")]
#[allow(unsafe_code)]
pub fn wait(mask: i32, timeout: Option<std::time::Duration>) -> i32 {
    let ms = timeout.map_or(-1, |t| i64::try_from(t.as_millis()).unwrap_or(i64::MAX));
    // SAFETY: plain numbers in and out.
    unsafe { host::wait(mask, ms) }
}

/// A text the host gives through a buffer: asked again with a buffer of the size it says it needs.
#[cfg(target_os = "wasi")]
fn sized(mut get: impl FnMut(&mut [u8]) -> i32) -> Result<Option<String>, String> {
    let mut buf = vec![0u8; 4096];
    loop {
        let n = get(&mut buf);
        match n {
            PENDING => return Ok(None),
            ERROR => return Err(last_error()),
            n if n < 0 => return Err("catwalk_http: an unknown answer".into()),
            n if n as usize > buf.len() => buf.resize(n as usize, 0),
            n => {
                buf.truncate(n as usize);
                return Ok(Some(String::from_utf8_lossy(&buf).into_owned()));
            }
        }
    }
}

#[cfg(target_os = "wasi")]
#[allow(unsafe_code)]
fn last_error() -> String {
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: the host writes at most `buf.len()` bytes into `buf`.
        let n = unsafe { host::error(buf.as_mut_ptr(), buf.len()) };
        if n < 0 {
            return "catwalk_http failed".into();
        }
        if n as usize > buf.len() {
            buf.resize(n as usize, 0);
            continue;
        }
        buf.truncate(n as usize);
        return String::from_utf8_lossy(&buf).into_owned();
    }
}

fn fail(ctx: &Ctx<'_>, message: &str) -> rquickjs::Error {
    Exception::throw_message(ctx, message)
}

/// The host functions, as `__catwalk.http*` and `__catwalk.dnsLookup`.
pub fn install<'js>(ctx: &Ctx<'js>, host: &Object<'js>) -> rquickjs::Result<()> {
    host.set("httpRequest", Function::new(ctx.clone(), request)?)?;
    host.set("httpWrite", Function::new(ctx.clone(), write)?)?;
    host.set("httpFinish", Function::new(ctx.clone(), finish)?)?;
    host.set("httpHead", Function::new(ctx.clone(), head)?)?;
    host.set("httpRead", Function::new(ctx.clone(), read)?)?;
    host.set("httpClose", Function::new(ctx.clone(), close)?)?;
    host.set("dnsLookup", Function::new(ctx.clone(), lookup)?)?;
    Ok(())
}

#[cfg(target_os = "wasi")]
#[allow(unsafe_code)]
mod calls {
    use super::*;

    pub fn request(ctx: Ctx<'_>, spec: String) -> rquickjs::Result<i32> {
        // SAFETY: the host reads `spec.len()` bytes of `spec`.
        let handle = unsafe { host::request(spec.as_ptr(), spec.len()) };
        match handle {
            h if h > 0 => Ok(h),
            _ => Err(fail(&ctx, &last_error())),
        }
    }

    pub fn write(ctx: Ctx<'_>, handle: i32, bytes: TypedArray<'_, u8>) -> rquickjs::Result<bool> {
        // SAFETY: copied out before any JavaScript runs again, so the array cannot change meanwhile.
        let data = unsafe { bytes.as_bytes() }
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        // SAFETY: the host reads `data.len()` bytes of `data`.
        match unsafe { host::write(handle, data.as_ptr(), data.len()) } {
            PENDING => Ok(false),
            ERROR => Err(fail(&ctx, &last_error())),
            _ => Ok(true),
        }
    }

    pub fn finish(ctx: Ctx<'_>, handle: i32) -> rquickjs::Result<()> {
        // SAFETY: a number in and out.
        match unsafe { host::finish(handle) } {
            ERROR => Err(fail(&ctx, &last_error())),
            _ => Ok(()),
        }
    }

    pub fn head(ctx: Ctx<'_>, handle: i32) -> rquickjs::Result<Option<String>> {
        // SAFETY: the host writes at most `buf.len()` bytes into `buf`.
        sized(|buf| unsafe { host::head(handle, buf.as_mut_ptr(), buf.len()) })
            .map_err(|e| fail(&ctx, &e))
    }

    pub fn read<'js>(ctx: Ctx<'js>, handle: i32) -> rquickjs::Result<Option<TypedArray<'js, u8>>> {
        let mut buf = vec![0u8; CHUNK];
        // SAFETY: the host writes at most `buf.len()` bytes into `buf`.
        match unsafe { host::read(handle, buf.as_mut_ptr(), buf.len()) } {
            PENDING => Ok(None),
            ERROR => Err(fail(&ctx, &last_error())),
            n => {
                buf.truncate(n.max(0) as usize);
                TypedArray::new(ctx, buf).map(Some)
            }
        }
    }

    pub fn close(handle: i32) {
        // SAFETY: a number in.
        unsafe { host::close(handle) }
    }

    pub fn lookup(ctx: Ctx<'_>, name: String) -> rquickjs::Result<String> {
        // SAFETY: the host reads `name.len()` bytes of `name` and writes at most `buf.len()` into `buf`.
        let found = sized(|buf| unsafe {
            host::lookup(name.as_ptr(), name.len(), buf.as_mut_ptr(), buf.len())
        });
        match found {
            Ok(Some(json)) => Ok(json),
            Ok(None) => Err(fail(&ctx, "the lookup did not finish")),
            Err(e) => Err(fail(&ctx, &e)),
        }
    }
}

#[cfg(not(target_os = "wasi"))]
mod calls {
    use super::*;

    const NONE: &str = "HTTP goes through catwalk's sandbox, and this runtime runs outside it";

    pub fn request(ctx: Ctx<'_>, _spec: String) -> rquickjs::Result<i32> {
        Err(fail(&ctx, NONE))
    }
    pub fn write(ctx: Ctx<'_>, _handle: i32, _bytes: TypedArray<'_, u8>) -> rquickjs::Result<bool> {
        Err(fail(&ctx, NONE))
    }
    pub fn finish(ctx: Ctx<'_>, _handle: i32) -> rquickjs::Result<()> {
        Err(fail(&ctx, NONE))
    }
    pub fn head(ctx: Ctx<'_>, _handle: i32) -> rquickjs::Result<Option<String>> {
        Err(fail(&ctx, NONE))
    }
    pub fn read<'js>(ctx: Ctx<'js>, _handle: i32) -> rquickjs::Result<Option<TypedArray<'js, u8>>> {
        Err(fail(&ctx, NONE))
    }
    pub fn close(_handle: i32) {}
    pub fn lookup(ctx: Ctx<'_>, _name: String) -> rquickjs::Result<String> {
        Err(fail(&ctx, NONE))
    }
}

use calls::{close, finish, head, lookup, read, request, write};
