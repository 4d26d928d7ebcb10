//! The filesystem as Node's `fs` needs it, over WASI: the guest sees only the directories catwalk granted it, so
//! these calls reach nothing else. The JavaScript side (`fs` in the compatibility layer) builds Node's sync,
//! callback and promise APIs on them.
//!
//! Errors are thrown as Node throws them: an `Error` with `code`, `errno`, `syscall` and `path`, and the message
//! `ENOENT: no such file or directory, open '/x'`, so a server that passes an error's message on says what it
//! says under Node.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;
use std::time::SystemTime;

use rquickjs::function::Opt;
use rquickjs::{Array, Ctx, Exception, Function, Object, TypedArray, Value};

/// Symbolic links followed by `realpath` before it gives up (Linux's limit).
const MAX_LINKS: usize = 40;

/// Installs the primitives as `__catwalk.fs`.
pub fn install<'js>(ctx: &Ctx<'js>, host: &Object<'js>) -> rquickjs::Result<()> {
    let fs = Object::new(ctx.clone())?;
    let files: Rc<RefCell<Files>> = Rc::default();
    fs.set("readFile", Function::new(ctx.clone(), read_file)?)?;
    fs.set("writeFile", Function::new(ctx.clone(), write_file)?)?;
    fs.set("stat", Function::new(ctx.clone(), stat)?)?;
    fs.set("readdir", Function::new(ctx.clone(), readdir)?)?;
    fs.set("mkdir", Function::new(ctx.clone(), mkdir)?)?;
    fs.set("rmdir", Function::new(ctx.clone(), rmdir)?)?;
    fs.set("unlink", Function::new(ctx.clone(), unlink)?)?;
    fs.set("rename", Function::new(ctx.clone(), rename)?)?;
    fs.set("copyFile", Function::new(ctx.clone(), copy_file)?)?;
    fs.set("readlink", Function::new(ctx.clone(), readlink)?)?;
    fs.set("realpath", Function::new(ctx.clone(), realpath)?)?;
    fs.set("truncate", Function::new(ctx.clone(), truncate)?)?;
    let open = files.clone();
    fs.set(
        "open",
        Function::new(ctx.clone(), move |ctx, path, flags| {
            open.borrow_mut().open(ctx, path, flags)
        })?,
    )?;
    let read = files.clone();
    fs.set(
        "read",
        Function::new(ctx.clone(), move |ctx, fd, len, position| {
            read.borrow_mut().read(ctx, fd, len, position)
        })?,
    )?;
    let write = files.clone();
    fs.set(
        "write",
        Function::new(ctx.clone(), move |ctx, fd, bytes, position| {
            write.borrow_mut().write(ctx, fd, bytes, position)
        })?,
    )?;
    let fstat = files.clone();
    fs.set(
        "fstat",
        Function::new(ctx.clone(), move |ctx, fd| fstat.borrow().fstat(ctx, fd))?,
    )?;
    fs.set(
        "close",
        Function::new(ctx.clone(), move |ctx, fd| {
            files.borrow_mut().close(ctx, fd)
        })?,
    )?;
    host.set("fs", fs)
}

/// Node's code and description for an I/O error.
fn code(error: &std::io::Error) -> (&'static str, i32, &'static str) {
    match error.kind() {
        ErrorKind::NotFound => ("ENOENT", -2, "no such file or directory"),
        ErrorKind::PermissionDenied => ("EACCES", -13, "permission denied"),
        ErrorKind::AlreadyExists => ("EEXIST", -17, "file already exists"),
        ErrorKind::NotADirectory => ("ENOTDIR", -20, "not a directory"),
        ErrorKind::IsADirectory => ("EISDIR", -21, "illegal operation on a directory"),
        ErrorKind::DirectoryNotEmpty => ("ENOTEMPTY", -39, "directory not empty"),
        ErrorKind::ReadOnlyFilesystem => ("EROFS", -30, "read-only file system"),
        ErrorKind::InvalidInput | ErrorKind::InvalidFilename => ("EINVAL", -22, "invalid argument"),
        ErrorKind::Unsupported => ("ENOSYS", -38, "function not implemented"),
        ErrorKind::CrossesDevices => ("EXDEV", -18, "cross-device link not permitted"),
        // WASI's ENOTCAPABLE (a path outside every grant, or a right not granted) has no kind of its own.
        _ if error.raw_os_error() == Some(76) => ("EPERM", -1, "operation not permitted"),
        _ => ("EIO", -5, "i/o error"),
    }
}

/// The error Node would throw for `error` in `syscall` on `path` (and `dest`, for two-path calls).
fn fail(
    ctx: &Ctx<'_>,
    error: &std::io::Error,
    syscall: &str,
    path: &str,
    dest: Option<&str>,
) -> rquickjs::Error {
    let (code, errno, what) = code(error);
    let message = match dest {
        Some(dest) => format!("{code}: {what}, {syscall} '{path}' -> '{dest}'"),
        None => format!("{code}: {what}, {syscall} '{path}'"),
    };
    let thrown = (|| -> rquickjs::Result<Exception<'_>> {
        let exception = Exception::from_message(ctx.clone(), &message)?;
        let object = exception.as_object();
        object.set("code", code)?;
        object.set("errno", errno)?;
        object.set("syscall", syscall)?;
        object.set("path", path)?;
        if let Some(dest) = dest {
            object.set("dest", dest)?;
        }
        Ok(exception)
    })();
    match thrown {
        Ok(exception) => exception.throw(),
        Err(error) => error,
    }
}

fn read_file<'js>(ctx: Ctx<'js>, path: String) -> rquickjs::Result<TypedArray<'js, u8>> {
    let bytes = std::fs::read(&path).map_err(|e| fail(&ctx, &e, "open", &path, None))?;
    TypedArray::new(ctx, bytes)
}

/// Bytes from a typed array, or a string's UTF-8.
fn bytes_of(value: &Value<'_>) -> Vec<u8> {
    if let Some(text) = value.as_string() {
        return text.to_string().unwrap_or_default().into_bytes();
    }
    TypedArray::<u8>::from_value(value.clone())
        .ok()
        .and_then(|array| {
            #[allow(unsafe_code)]
            // SAFETY: copied out at once, before any JavaScript runs that could detach or resize the buffer.
            unsafe { array.as_bytes() }.map(<[u8]>::to_vec)
        })
        .unwrap_or_default()
}

/// Writes a whole file; `flag` is Node's: `w` (replace), `a` (append), `wx`/`ax` (the file must not exist).
fn write_file(
    ctx: Ctx<'_>,
    path: String,
    data: Value<'_>,
    flag: Opt<String>,
) -> rquickjs::Result<()> {
    let flag = flag.0.unwrap_or_else(|| "w".to_owned());
    let mut file = options(&flag)
        .open(&path)
        .map_err(|e| fail(&ctx, &e, "open", &path, None))?;
    file.write_all(&bytes_of(&data))
        .map_err(|e| fail(&ctx, &e, "write", &path, None))
}

/// Open options for one of Node's flags (`r`, `r+`, `w`, `w+`, `a`, `a+`, each `x` for exclusive creation).
fn options(flag: &str) -> OpenOptions {
    let mut options = OpenOptions::new();
    let exclusive = flag.contains('x');
    let plus = flag.contains('+');
    match flag.chars().next() {
        Some('w') => {
            options.write(true).read(plus).truncate(true);
            if exclusive {
                options.create_new(true);
            } else {
                options.create(true);
            }
        }
        Some('a') => {
            options.append(true).read(plus);
            if exclusive {
                options.create_new(true);
            } else {
                options.create(true);
            }
        }
        _ => {
            options.read(true).write(plus);
        }
    }
    options
}

fn millis(time: std::io::Result<SystemTime>) -> f64 {
    time.ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

fn kind(file_type: std::fs::FileType) -> &'static str {
    if file_type.is_symlink() {
        "symlink"
    } else if file_type.is_dir() {
        "dir"
    } else if file_type.is_file() {
        "file"
    } else {
        "other"
    }
}

/// A stat as `[kind, size, mtimeMs, atimeMs, ctimeMs, birthtimeMs, ino, nlink]`.
fn stat_array<'js>(ctx: &Ctx<'js>, meta: &std::fs::Metadata) -> rquickjs::Result<Array<'js>> {
    let array = Array::new(ctx.clone())?;
    array.set(0, kind(meta.file_type()))?;
    array.set(1, meta.len() as f64)?;
    array.set(2, millis(meta.modified()))?;
    array.set(3, millis(meta.accessed()))?;
    // WASI gives no change time apart from the others; Node's ctime is closest to the modification time.
    array.set(4, millis(meta.modified()))?;
    array.set(5, millis(meta.created().or_else(|_| meta.modified())))?;
    // Inode numbers and link counts are behind an unstable WASI extension: none, and one link, as on a
    // filesystem that does not report them.
    array.set(6, 0)?;
    array.set(7, 1)?;
    Ok(array)
}

fn stat<'js>(ctx: Ctx<'js>, path: String, follow: Opt<bool>) -> rquickjs::Result<Array<'js>> {
    let follow = follow.0.unwrap_or(true);
    let meta = if follow {
        std::fs::metadata(&path)
    } else {
        std::fs::symlink_metadata(&path)
    };
    let meta =
        meta.map_err(|e| fail(&ctx, &e, if follow { "stat" } else { "lstat" }, &path, None))?;
    stat_array(&ctx, &meta)
}

/// A directory's entries as `[name, kind]`, sorted by name (WASI's order is the host's, which Node's is too,
/// but sorted output does not depend on the filesystem).
fn readdir<'js>(ctx: Ctx<'js>, path: String) -> rquickjs::Result<Array<'js>> {
    let entries = std::fs::read_dir(&path).map_err(|e| fail(&ctx, &e, "scandir", &path, None))?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| fail(&ctx, &e, "scandir", &path, None))?;
        let kind = entry.file_type().map_or("other", kind);
        found.push((entry.file_name().to_string_lossy().into_owned(), kind));
    }
    found.sort();
    let array = Array::new(ctx.clone())?;
    for (i, (name, kind)) in found.into_iter().enumerate() {
        let pair = Array::new(ctx.clone())?;
        pair.set(0, name)?;
        pair.set(1, kind)?;
        array.set(i, pair)?;
    }
    Ok(array)
}

/// Creates a directory; with `recursive`, its parents too, and an existing one is no error. Returns whether
/// it created anything (Node returns the first directory created; the JavaScript side works that out).
fn mkdir(ctx: Ctx<'_>, path: String, recursive: Opt<bool>) -> rquickjs::Result<bool> {
    let made = if recursive.0.unwrap_or(false) {
        let existed = Path::new(&path).is_dir();
        std::fs::create_dir_all(&path).map(|()| !existed)
    } else {
        std::fs::create_dir(&path).map(|()| true)
    };
    made.map_err(|e| fail(&ctx, &e, "mkdir", &path, None))
}

fn rmdir(ctx: Ctx<'_>, path: String, recursive: Opt<bool>) -> rquickjs::Result<()> {
    let removed = if recursive.0.unwrap_or(false) {
        std::fs::remove_dir_all(&path)
    } else {
        std::fs::remove_dir(&path)
    };
    removed.map_err(|e| fail(&ctx, &e, "rmdir", &path, None))
}

fn unlink(ctx: Ctx<'_>, path: String) -> rquickjs::Result<()> {
    std::fs::remove_file(&path).map_err(|e| fail(&ctx, &e, "unlink", &path, None))
}

fn rename(ctx: Ctx<'_>, from: String, to: String) -> rquickjs::Result<()> {
    std::fs::rename(&from, &to).map_err(|e| fail(&ctx, &e, "rename", &from, Some(&to)))
}

fn copy_file(ctx: Ctx<'_>, from: String, to: String) -> rquickjs::Result<()> {
    std::fs::copy(&from, &to)
        .map(drop)
        .map_err(|e| fail(&ctx, &e, "copyfile", &from, Some(&to)))
}

fn truncate(ctx: Ctx<'_>, path: String, len: Opt<f64>) -> rquickjs::Result<()> {
    OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|file| file.set_len(len.0.unwrap_or(0.0) as u64))
        .map_err(|e| fail(&ctx, &e, "open", &path, None))
}

fn readlink(ctx: Ctx<'_>, path: String) -> rquickjs::Result<String> {
    std::fs::read_link(&path)
        .map(|target| target.to_string_lossy().into_owned())
        .map_err(|e| fail(&ctx, &e, "readlink", &path, None))
}

/// The path with every symbolic link resolved (WASI has no `realpath`: each component is looked at in turn).
fn realpath(ctx: Ctx<'_>, path: String) -> rquickjs::Result<String> {
    resolve(Path::new(&path))
        .map(|resolved| resolved.to_string_lossy().into_owned())
        .map_err(|e| fail(&ctx, &e, "realpath", &path, None))
}

fn resolve(path: &Path) -> std::io::Result<PathBuf> {
    // The directories above a grant are not there for the guest (WASI shows only what was granted), and
    // nothing outside a grant can be a link the guest could follow: when the path itself exists, an ancestor
    // that cannot be looked at is taken as the plain directory it is on the host.
    let exists = std::fs::metadata(path).is_ok();
    let mut pending: Vec<PathBuf> = vec![path.to_path_buf()];
    let mut resolved = PathBuf::from("/");
    let mut links = 0;
    while let Some(next) = pending.pop() {
        let mut components = next.components();
        let Some(first) = components.next() else {
            continue;
        };
        let rest: PathBuf = components.collect();
        if !rest.as_os_str().is_empty() {
            pending.push(rest);
        }
        match first {
            Component::RootDir => resolved = PathBuf::from("/"),
            Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                resolved.pop();
            }
            Component::Normal(name) => {
                let candidate = resolved.join(name);
                let meta = match std::fs::symlink_metadata(&candidate) {
                    Ok(meta) => meta,
                    Err(_) if exists => {
                        resolved = candidate;
                        continue;
                    }
                    Err(error) => return Err(error),
                };
                if meta.file_type().is_symlink() {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(std::io::Error::other("too many symbolic links encountered"));
                    }
                    pending.push(std::fs::read_link(&candidate)?);
                } else {
                    resolved = candidate;
                }
            }
        }
    }
    Ok(resolved)
}

/// Open files, by the numbers handed to JavaScript (from 3 up, as a process's would be).
#[derive(Default)]
struct Files {
    open: HashMap<i32, (File, String)>,
    next: i32,
}

impl Files {
    fn open(&mut self, ctx: Ctx<'_>, path: String, flags: Opt<String>) -> rquickjs::Result<i32> {
        let flag = flags.0.unwrap_or_else(|| "r".to_owned());
        let file = options(&flag)
            .open(&path)
            .map_err(|e| fail(&ctx, &e, "open", &path, None))?;
        self.next = self.next.max(2) + 1;
        self.open.insert(self.next, (file, path));
        Ok(self.next)
    }

    fn file(
        &mut self,
        ctx: &Ctx<'_>,
        fd: i32,
        syscall: &str,
    ) -> rquickjs::Result<&mut (File, String)> {
        self.open
            .get_mut(&fd)
            .ok_or_else(|| bad_descriptor(ctx, syscall))
    }

    /// Up to `len` bytes from `position` (or the file's own position when it is negative).
    fn read<'js>(
        &mut self,
        ctx: Ctx<'js>,
        fd: i32,
        len: f64,
        position: f64,
    ) -> rquickjs::Result<TypedArray<'js, u8>> {
        let (file, path) = self.file(&ctx, fd, "read")?;
        let mut buffer = vec![0; len.max(0.0) as usize];
        let read = (|| {
            if position >= 0.0 {
                file.seek(SeekFrom::Start(position as u64))?;
            }
            let mut filled = 0;
            while filled < buffer.len() {
                match file.read(&mut buffer[filled..])? {
                    0 => break,
                    n => filled += n,
                }
            }
            Ok::<_, std::io::Error>(filled)
        })()
        .map_err(|e| fail(&ctx, &e, "read", path, None))?;
        buffer.truncate(read);
        TypedArray::new(ctx, buffer)
    }

    fn write(
        &mut self,
        ctx: Ctx<'_>,
        fd: i32,
        data: Value<'_>,
        position: f64,
    ) -> rquickjs::Result<f64> {
        let bytes = bytes_of(&data);
        let (file, path) = self.file(&ctx, fd, "write")?;
        (|| {
            if position >= 0.0 {
                file.seek(SeekFrom::Start(position as u64))?;
            }
            file.write_all(&bytes)
        })()
        .map_err(|e| fail(&ctx, &e, "write", path, None))?;
        Ok(bytes.len() as f64)
    }

    fn fstat<'js>(&self, ctx: Ctx<'js>, fd: i32) -> rquickjs::Result<Array<'js>> {
        let Some((file, path)) = self.open.get(&fd) else {
            return Err(bad_descriptor(&ctx, "fstat"));
        };
        let meta = file
            .metadata()
            .map_err(|e| fail(&ctx, &e, "fstat", path, None))?;
        stat_array(&ctx, &meta)
    }

    fn close(&mut self, ctx: Ctx<'_>, fd: i32) -> rquickjs::Result<()> {
        match self.open.remove(&fd) {
            Some(_) => Ok(()),
            None => Err(bad_descriptor(&ctx, "close")),
        }
    }
}

/// Node's error for a file descriptor that is not open.
fn bad_descriptor(ctx: &Ctx<'_>, syscall: &str) -> rquickjs::Error {
    let message = format!("EBADF: bad file descriptor, {syscall}");
    match Exception::from_message(ctx.clone(), &message) {
        Ok(exception) => {
            let _ = exception.as_object().set("code", "EBADF");
            let _ = exception.as_object().set("errno", -9);
            let _ = exception.as_object().set("syscall", syscall);
            exception.throw()
        }
        Err(error) => error,
    }
}
