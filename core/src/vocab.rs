//! The words every layer shares, kept below all of them so that no two modules import each other for them:
//! how a tenant's server runs ([`Mode`], [`Sandbox`]), unguessable names ([`random_hex`]), and the durations
//! and sizes flags and tenants files are written in.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use clap::ValueEnum;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    PerSession,
    Shared,
}

/// How a package is run when a catalog may have a WASI build of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Sandbox {
    /// The WASI build when the catalog lists one, otherwise npx.
    #[default]
    Auto,
    /// Always npx.
    Npx,
    /// The WASI build: the catalog's, or the package packed by catwalk (`catwalk pack`) on first use; if
    /// neither can be had, catwalk does not start (the error says why): the package never runs outside the
    /// sandbox.
    Wasi,
    /// As `wasi`, but a package that cannot be packed runs through npx (with a warning saying why).
    WasiOrNpx,
}

/// 128 bits from the OS's random source, as 32 hex digits: unguessable names (session ids, request states).
pub fn random_hex() -> String {
    use std::fmt::Write;
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes.iter().fold(String::with_capacity(32), |mut hex, b| {
        let _ = write!(hex, "{b:02x}");
        hex
    })
}

/// A machine's id among an app's machines (Fly's `FLY_MACHINE_ID`): 1 to 64 letters and digits. Anything else
/// is not a machine to name in a session id, a placement or a replay.
pub fn valid_machine_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// `500ms`, `30s`, `5m`, `1h`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 500ms, 30s, 5m or 1h"))?;
    let per_unit = match unit.trim() {
        "ms" => Duration::from_millis(1),
        "" | "s" => Duration::from_secs(1),
        "m" => Duration::from_secs(60),
        "h" => Duration::from_secs(3600),
        _ => return Err(format!("{s:?} is not a duration like 500ms, 30s, 5m or 1h")),
    };
    per_unit
        .checked_mul(u32::try_from(n).map_err(|_| format!("{s:?} is too long"))?)
        .ok_or("too long".into())
}

/// Parses a size: `64MiB`, `512KiB`, `1GiB`, or bytes.
pub fn parse_size(spec: &str) -> Result<usize, String> {
    let spec = spec.trim();
    let split = spec
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(spec.len());
    let (number, unit) = spec.split_at(split);
    let n: usize = number
        .parse()
        .map_err(|_| format!("{spec:?} is not a size like 64MiB"))?;
    let unit = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" | "kb" => 1 << 10,
        "m" | "mib" | "mb" => 1 << 20,
        "g" | "gib" | "gb" => 1 << 30,
        _ => return Err(format!("{spec:?} is not a size like 64MiB")),
    };
    n.checked_mul(unit)
        .ok_or_else(|| format!("{spec:?} is too large"))
}

/// A mutex's guard, also after a panic while it was held: what it guards stays usable (counts, queues, maps).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("99999999999h").is_err());
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("lots").is_err());
    }
}
