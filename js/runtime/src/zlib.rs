//! Compression for the Node layer's `zlib` (`js/node/zlib.js`): gzip, zlib and raw deflate streams with
//! `flate2` (miniz_oxide, pure Rust), and brotli with the `brotli` crate.
//!
//! A stream is a handle: `zlibOpen(kind, level, window)` gives its number, `zlibWrite(handle, bytes, mode)`
//! takes input and gives what output it has (mode 0: none held back; 1: flush everything so far, as
//! `Z_SYNC_FLUSH`; 2: the input ends), and `zlibClose` drops it. Errors are thrown as Node's are: the message
//! zlib gives, with `code` and `errno` (`Z_DATA_ERROR`/-3 for data that is not of the format, `Z_BUF_ERROR`/-5
//! for a stream that ends early).

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write;

use flate2::{Compress, Compression, Crc, Decompress, FlushCompress, FlushDecompress, Status};
use rquickjs::{Ctx, Exception, Function, Object, TypedArray};

/// One stream's state.
enum Codec {
    Deflate {
        stream: Compress,
        gzip: Option<GzipOut>,
    },
    Inflate(Inflate),
    Unzip {
        level: Vec<u8>,
    },
    BrotliCompress(Option<Box<brotli::CompressorWriter<Vec<u8>>>>),
    BrotliDecompress(Option<Box<brotli::DecompressorWriter<Vec<u8>>>>),
}

/// What a gzip member needs beyond its deflate stream: the header still to write, and the trailer's sums.
struct GzipOut {
    header: Option<[u8; 10]>,
    crc: Crc,
}

/// A decompressing stream: zlib or raw, or gzip members one after another.
struct Inflate {
    stream: Decompress,
    gzip: bool,
    /// Whether a zlib header comes first (checked here, for zlib's message).
    zlib: bool,
    state: Member,
    /// Input held while a header or trailer is incomplete.
    held: Vec<u8>,
    crc: Crc,
    /// Whole gzip members read.
    members: u32,
}

#[derive(PartialEq)]
enum Member {
    Header,
    Body,
    Trailer,
    /// A whole stream was read; what follows is ignored, as Node does.
    Done,
}

/// An error as zlib reports it.
struct Failure {
    message: &'static str,
    code: &'static str,
    errno: i32,
}

const DATA: fn(&'static str) -> Failure = |message| Failure {
    message,
    code: "Z_DATA_ERROR",
    errno: -3,
};
const TRUNCATED: Failure = Failure {
    message: "unexpected end of file",
    code: "Z_BUF_ERROR",
    errno: -5,
};

thread_local! {
    static STREAMS: RefCell<(u32, HashMap<u32, Codec>)> = RefCell::default();
}

pub fn install<'js>(ctx: &Ctx<'js>, host: &Object<'js>) -> rquickjs::Result<()> {
    host.set("zlibOpen", Function::new(ctx.clone(), open)?)?;
    host.set("zlibWrite", Function::new(ctx.clone(), write)?)?;
    host.set(
        "zlibClose",
        Function::new(ctx.clone(), |handle: u32| {
            STREAMS.with(|s| s.borrow_mut().1.remove(&handle));
        })?,
    )?;
    host.set("crc32", Function::new(ctx.clone(), crc32)?)?;
    Ok(())
}

/// A new stream of `kind` (Node's class names: `Gzip`, `Gunzip`, `Deflate`, `Inflate`, `DeflateRaw`,
/// `InflateRaw`, `Unzip`, `BrotliCompress`, `BrotliDecompress`). `level` is zlib's (-1 for its default) or
/// brotli's quality; `window` is brotli's window bits.
fn open(ctx: Ctx<'_>, kind: String, level: i32, window: u32) -> rquickjs::Result<u32> {
    let compression = match level {
        0..=9 => Compression::new(level as u32),
        _ => Compression::default(),
    };
    let codec = match kind.as_str() {
        "Gzip" => Codec::Deflate {
            stream: Compress::new(compression, false),
            gzip: Some(GzipOut {
                // zlib's header: no name or time, "extra flags" by level, and Unix as the system.
                header: Some([
                    0x1f,
                    0x8b,
                    8,
                    0,
                    0,
                    0,
                    0,
                    0,
                    match compression.level() {
                        9 => 2,
                        0 | 1 => 4,
                        _ => 0,
                    },
                    3,
                ]),
                crc: Crc::new(),
            }),
        },
        "Deflate" => Codec::Deflate {
            stream: Compress::new(compression, true),
            gzip: None,
        },
        "DeflateRaw" => Codec::Deflate {
            stream: Compress::new(compression, false),
            gzip: None,
        },
        "Gunzip" => Codec::Inflate(Inflate::new(true, false)),
        "Inflate" => Codec::Inflate(Inflate::new(false, true)),
        "InflateRaw" => Codec::Inflate(Inflate::new(false, false)),
        "Unzip" => Codec::Unzip { level: Vec::new() },
        "BrotliCompress" => Codec::BrotliCompress(Some(Box::new(brotli::CompressorWriter::new(
            Vec::new(),
            64 << 10,
            level.clamp(0, 11) as u32,
            window.clamp(10, 24),
        )))),
        "BrotliDecompress" => Codec::BrotliDecompress(Some(Box::new(
            brotli::DecompressorWriter::new(Vec::new(), 64 << 10),
        ))),
        _ => {
            return Err(Exception::throw_type(
                &ctx,
                &format!("no zlib stream {kind}"),
            ));
        }
    };
    Ok(STREAMS.with(|s| {
        let mut s = s.borrow_mut();
        s.0 += 1;
        let handle = s.0;
        s.1.insert(handle, codec);
        handle
    }))
}

fn write<'js>(
    ctx: Ctx<'js>,
    handle: u32,
    input: TypedArray<'js, u8>,
    mode: u32,
) -> rquickjs::Result<TypedArray<'js, u8>> {
    #[allow(unsafe_code)]
    // SAFETY: copied before any JavaScript runs again, so the array cannot be detached or resized meanwhile.
    let input = unsafe { input.as_bytes() }.unwrap_or_default().to_vec();
    let done = STREAMS.with(|s| {
        let mut s = s.borrow_mut();
        let codec = s.1.get_mut(&handle).ok_or(Failure {
            message: "zlib binding closed",
            code: "ERR_ZLIB_BINDING_CLOSED",
            errno: 0,
        })?;
        codec.write(&input, mode)
    });
    match done {
        Ok(out) => TypedArray::new(ctx, out),
        Err(failure) => {
            let error = Exception::from_message(ctx.clone(), failure.message)?;
            error.set("code", failure.code)?;
            error.set("errno", failure.errno)?;
            Err(ctx.throw(error.into_value()))
        }
    }
}

/// Node's `zlib.crc32(data, value)`: a number, not a signed 32-bit integer (as a `u32` would cross).
fn crc32(input: TypedArray<'_, u8>, initial: f64) -> f64 {
    #[allow(unsafe_code)]
    // SAFETY: read before any JavaScript runs again.
    let bytes = unsafe { input.as_bytes() }.unwrap_or_default();
    let mut hasher = crc32fast::Hasher::new_with_initial(initial as u32);
    hasher.update(bytes);
    f64::from(hasher.finalize())
}

impl Codec {
    fn write(&mut self, input: &[u8], mode: u32) -> Result<Vec<u8>, Failure> {
        let mut out = Vec::new();
        match self {
            Codec::Deflate { stream, gzip } => {
                if let Some(gzip) = gzip {
                    if let Some(header) = gzip.header.take() {
                        out.extend_from_slice(&header);
                    }
                    gzip.crc.update(input);
                }
                let flush = match mode {
                    0 => FlushCompress::None,
                    1 => FlushCompress::Sync,
                    _ => FlushCompress::Finish,
                };
                deflate(stream, input, flush, &mut out);
                if let (Some(gzip), FlushCompress::Finish) = (gzip, flush) {
                    out.extend_from_slice(&gzip.crc.sum().to_le_bytes());
                    out.extend_from_slice(&gzip.crc.amount().to_le_bytes());
                }
            }
            Codec::Inflate(inflate) => inflate.write(input, mode == 2, &mut out)?,
            Codec::Unzip { level: held } => {
                // The format is told by its first two bytes: gzip's magic, or else zlib.
                held.extend_from_slice(input);
                if held.len() < 2 && mode != 2 {
                    return Ok(out);
                }
                let gzip = held.starts_with(&[0x1f, 0x8b]);
                let mut inflate = Inflate::new(gzip, !gzip);
                inflate.write(&std::mem::take(held), mode == 2, &mut out)?;
                *self = Codec::Inflate(inflate);
            }
            Codec::BrotliCompress(writer) => {
                if mode == 2 {
                    if let Some(mut w) = writer.take() {
                        let _ = w.write_all(input);
                        out = w.into_inner();
                    }
                    return Ok(out);
                }
                if let Some(w) = writer.as_mut() {
                    let _ = w.write_all(input);
                    if mode == 1 {
                        let _ = w.flush();
                    }
                    out = std::mem::take(w.get_mut());
                }
            }
            Codec::BrotliDecompress(writer) => {
                let failed = Failure {
                    message: "Decompression failed",
                    code: "ERR_BROTLI_DECOMPRESSION_FAILED",
                    errno: -6,
                };
                let Some(w) = writer.as_mut() else {
                    return Ok(out);
                };
                w.write_all(input).map_err(|_| failed)?;
                out = std::mem::take(w.get_mut());
                if mode == 2 {
                    let w = writer.take().expect("present");
                    match w.into_inner() {
                        Ok(rest) => out.extend_from_slice(&rest),
                        Err(_) => return Err(TRUNCATED),
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Compresses all of `input` into `out`, with `flush`.
fn deflate(stream: &mut Compress, mut input: &[u8], flush: FlushCompress, out: &mut Vec<u8>) {
    loop {
        out.reserve(32 << 10);
        let read = stream.total_in();
        let status = stream.compress_vec(input, out, flush);
        input = &input[(stream.total_in() - read) as usize..];
        let room = out.len() < out.capacity();
        match status {
            Ok(Status::StreamEnd) => return,
            Ok(_) if input.is_empty() && room && flush != FlushCompress::Finish => return,
            Ok(_) => {}
            // Nothing could be done: nothing is left to do.
            Err(_) => return,
        }
    }
}

impl Inflate {
    fn new(gzip: bool, zlib: bool) -> Self {
        Self {
            stream: Decompress::new(zlib),
            gzip,
            zlib,
            state: if gzip { Member::Header } else { Member::Body },
            held: Vec::new(),
            crc: Crc::new(),
            members: 0,
        }
    }

    fn write(&mut self, input: &[u8], end: bool, out: &mut Vec<u8>) -> Result<(), Failure> {
        self.held.extend_from_slice(input);
        let data = std::mem::take(&mut self.held);
        let mut rest: &[u8] = &data;
        // Holds back what cannot be read yet; at the end of the input, that is a stream cut short.
        let wait = |held: &mut Vec<u8>, rest: &[u8]| {
            if end {
                return Err(TRUNCATED);
            }
            *held = rest.to_vec();
            Ok(())
        };
        loop {
            match self.state {
                Member::Done => return Ok(()),
                Member::Header => match gzip_header(rest) {
                    Header::Complete(length) => {
                        rest = &rest[length..];
                        self.state = Member::Body;
                        self.stream = Decompress::new(false);
                        self.crc = Crc::new();
                    }
                    // After a whole member, the input may end.
                    Header::Incomplete if rest.is_empty() && self.members > 0 => return Ok(()),
                    Header::Incomplete => return wait(&mut self.held, rest),
                    // Bytes after a whole member that are not another member are ignored, as Node does.
                    Header::Wrong if self.members > 0 => {
                        self.state = Member::Done;
                        return Ok(());
                    }
                    Header::Wrong => return Err(DATA("incorrect header check")),
                },
                Member::Body => {
                    if self.zlib && self.stream.total_in() == 0 {
                        // zlib's check of its two-byte header, for zlib's message.
                        let [cmf, flg, ..] = *rest else {
                            return wait(&mut self.held, rest);
                        };
                        if cmf & 0x0f != 8
                            || cmf >> 4 > 7
                            || (u16::from(cmf) << 8 | u16::from(flg)) % 31 != 0
                        {
                            return Err(DATA("incorrect header check"));
                        }
                    }
                    let start = out.len();
                    let (used, ended) = inflate(&mut self.stream, rest, out)?;
                    if self.gzip {
                        self.crc.update(&out[start..]);
                    }
                    rest = &rest[used..];
                    if !ended {
                        return if end { Err(TRUNCATED) } else { Ok(()) };
                    }
                    self.state = if self.gzip {
                        Member::Trailer
                    } else {
                        Member::Done
                    };
                }
                Member::Trailer => {
                    let [a, b, c, d, e, f, g, h, ..] = *rest else {
                        return wait(&mut self.held, rest);
                    };
                    if u32::from_le_bytes([a, b, c, d]) != self.crc.sum()
                        || u32::from_le_bytes([e, f, g, h]) != self.crc.amount()
                    {
                        return Err(DATA("incorrect data check"));
                    }
                    rest = &rest[8..];
                    self.members += 1;
                    self.state = Member::Header;
                }
            }
        }
    }
}

/// Inflates what it can of `input` into `out`: the bytes it used, and whether the stream ended.
fn inflate(
    stream: &mut Decompress,
    mut input: &[u8],
    out: &mut Vec<u8>,
) -> Result<(usize, bool), Failure> {
    let total = input.len();
    loop {
        out.reserve(64 << 10);
        let (read, written) = (stream.total_in(), out.len());
        let status = stream
            .decompress_vec(input, out, FlushDecompress::None)
            .map_err(|_| DATA("invalid compressed data"))?;
        input = &input[(stream.total_in() - read) as usize..];
        let stuck = stream.total_in() == read && out.len() == written;
        match status {
            Status::StreamEnd => return Ok((total - input.len(), true)),
            _ if input.is_empty() && out.len() < out.capacity() || stuck => {
                return Ok((total - input.len(), false));
            }
            _ => {}
        }
    }
}

/// How much of `bytes` a gzip member's header takes (RFC 1952: the fixed ten bytes, then the optional extra
/// field, name, comment and header CRC its flags announce).
enum Header {
    Complete(usize),
    Incomplete,
    Wrong,
}

fn gzip_header(bytes: &[u8]) -> Header {
    let magic = [0x1f, 0x8b, 8];
    if bytes.iter().zip(magic).any(|(a, b)| *a != b) {
        return Header::Wrong;
    }
    if bytes.len() < 10 {
        return Header::Incomplete;
    }
    let flags = bytes[3];
    let mut at = 10;
    if flags & 4 != 0 {
        let Some(length) = bytes.get(at..at + 2) else {
            return Header::Incomplete;
        };
        at += 2 + usize::from(u16::from_le_bytes([length[0], length[1]]));
    }
    for flag in [8, 16] {
        if flags & flag != 0 {
            match bytes.get(at..).and_then(|b| b.iter().position(|c| *c == 0)) {
                Some(end) => at += end + 1,
                None => return Header::Incomplete,
            }
        }
    }
    if flags & 2 != 0 {
        at += 2;
    }
    if bytes.len() < at {
        Header::Incomplete
    } else {
        Header::Complete(at)
    }
}
