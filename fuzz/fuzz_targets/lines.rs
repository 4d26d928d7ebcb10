//! A process server's stdout cut into lines of bounded length, against a model: split at LF, one trailing CR
//! dropped, a line over the limit reported by its length and its two ends. The first two bytes choose the read
//! buffer's size and the limit, so lines straddle reads.
#![no_main]

use catwalk_core::lines::{EDGE, Line, LineReader};
use libfuzzer_sys::fuzz_target;
use tokio::io::BufReader;

fn model(input: &[u8], max: usize) -> Vec<Line> {
    let mut lines: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
        .into_iter()
        .map(|raw| {
            if raw.len() > max {
                Line::TooLong {
                    len: raw.len(),
                    head: raw[..EDGE.min(raw.len())].to_vec().into(),
                    tail: raw[raw.len().saturating_sub(EDGE)..].to_vec().into(),
                }
            } else {
                Line::Text(raw.strip_suffix(b"\r").unwrap_or(raw).to_vec().into())
            }
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let [capacity, max, input @ ..] = data else {
        return;
    };
    let capacity = usize::from(*capacity).max(1);
    let max = usize::from(*max) * 8;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let read = runtime.block_on(async {
        let mut reader = LineReader::new(BufReader::with_capacity(capacity, input), max);
        let mut read = Vec::new();
        while let Some(line) = reader.next_line().await.unwrap() {
            read.push(line);
        }
        read
    });
    assert_eq!(read, model(input, max));
});
