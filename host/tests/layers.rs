//! The shape of the code, checked: `lib.rs`'s map of modules lists them from the top floor down, and each
//! module may use only the modules listed below it. An import upwards (or between two modules both ways) fails
//! here, naming the file; so does a module missing from the map, and a file of `src/` over 700 lines without a
//! note at its top saying why (`// Longer than 700 lines: <why>`).
//!
//!   cargo test -p catwalk --test layers

use std::collections::HashMap;
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 700;
const LONG_NOTE: &str = "// Longer than 700 lines:";

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The floors of `lib.rs`'s `# Layout` list, top first: the module names in the order they are listed.
fn floors(lib: &str) -> Vec<String> {
    lib.lines()
        .skip_while(|l| !l.starts_with("//! # Layout"))
        .take_while(|l| l.starts_with("//!"))
        .filter_map(|l| l.strip_prefix("//! - [`"))
        .filter_map(|l| l.split_once("`]").map(|(name, _)| name.to_owned()))
        .collect()
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The crate's top-level modules a source file names (`crate::x`, `use crate::{x, y}`), comments left out.
fn named_modules(source: &str, modules: &[String]) -> Vec<String> {
    let code: String = source
        .lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut named = Vec::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        let words: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            inner
                .split(',')
                .map(|part| part.trim().split("::").next().unwrap_or("").trim())
                .collect()
        } else {
            vec![
                rest.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .next()
                    .unwrap_or(""),
            ]
        };
        for word in words {
            // The crate root's one item, `run`, is `serve::run`.
            let module = if word == "run" { "serve" } else { word };
            if modules.iter().any(|m| m == module) && !named.iter().any(|n| n == module) {
                named.push(module.to_owned());
            }
        }
    }
    named
}

#[test]
fn modules_import_only_the_floors_below_them() {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let floors = floors(&lib);
    let mut declared: Vec<String> = lib
        .lines()
        .filter_map(|l| {
            l.strip_prefix("pub mod ")
                .or_else(|| l.strip_prefix("mod "))
        })
        .map(|l| l.trim_end_matches(';').to_owned())
        .collect();
    // Modules that live in `catwalk-core` and are re-exported whole (`pub use catwalk_core::{a, b};`) are
    // floors too: the bottom ones, below everything in this crate.
    for line in lib.lines() {
        if let Some(group) = line
            .strip_prefix("pub use catwalk_core::{")
            .and_then(|l| l.strip_suffix("};"))
        {
            declared.extend(group.split(',').map(|m| m.trim().to_owned()));
        }
    }
    let mut missing: Vec<&String> = declared.iter().filter(|m| !floors.contains(m)).collect();
    missing.extend(floors.iter().filter(|m| !declared.contains(m)));
    assert!(
        missing.is_empty(),
        "lib.rs's # Layout and its modules differ: {missing:?}"
    );
    let floor: HashMap<&str, usize> = floors
        .iter()
        .enumerate()
        .map(|(n, m)| (m.as_str(), n))
        .collect();
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut upwards = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(src()).unwrap();
        let top = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        let Some(&own) = floor.get(top.as_str()) else {
            continue; // lib.rs and main.rs are above every floor
        };
        let source = std::fs::read_to_string(file).unwrap();
        for named in named_modules(&source, &floors) {
            if named != top && floor[named.as_str()] < own {
                upwards.push(format!(
                    "{} (in `{top}`) imports `{named}`, which is above it",
                    relative.display()
                ));
            }
        }
    }
    assert!(
        upwards.is_empty(),
        "a lower floor imports a higher one (the order is lib.rs's # Layout):\n{}",
        upwards.join("\n")
    );
}

#[test]
fn files_stay_short_unless_they_say_why() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let long: Vec<String> = files
        .iter()
        .filter_map(|file| {
            let source = std::fs::read_to_string(file).unwrap();
            let lines = source.lines().count();
            let noted = source.lines().take(5).any(|l| l.starts_with(LONG_NOTE));
            (lines > MAX_LINES && !noted).then(|| format!("{} ({lines} lines)", file.display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "over {MAX_LINES} lines without a `{LONG_NOTE}` note: {long:?}"
    );
}

#[test]
fn the_checker_sees_imports() {
    let modules: Vec<String> = ["http", "session", "vocab"].map(String::from).to_vec();
    let source =
        "use crate::session::Session;\nuse crate::{vocab::lock, http};\n// crate::nothing\n";
    assert_eq!(
        named_modules(source, &modules),
        ["session", "vocab", "http"]
    );
}
