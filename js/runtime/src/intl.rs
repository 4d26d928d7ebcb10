//! What the Node layer's `Intl` (`js/node/intl.js`) cannot do in JavaScript alone: the IANA time zone database
//! (jiff's built-in copy) and Unicode text segmentation (UAX #29). Everything locale-specific is in intl.js.

use jiff::Timestamp;
use jiff::tz::{Offset, TimeZone};
use rquickjs::{Ctx, Function, Object};
use unicode_segmentation::UnicodeSegmentation;

pub fn install<'js>(ctx: &Ctx<'js>, host: &Object<'js>) -> rquickjs::Result<()> {
    host.set("tzName", Function::new(ctx.clone(), tz_name)?)?;
    host.set("tzAt", Function::new(ctx.clone(), tz_at)?)?;
    host.set("segment", Function::new(ctx.clone(), segment)?)?;
    Ok(())
}

/// A time zone as `timeZone` names it: an IANA name in any case, or an offset (`+05:30`, `-08`).
fn zone(name: &str) -> Option<TimeZone> {
    if let Some(offset) = fixed_offset(name) {
        return Some(TimeZone::fixed(offset));
    }
    TimeZone::get(name).ok()
}

/// `±HH`, `±HHMM` or `±HH:MM`, as ECMA-402 takes offset time zones.
fn fixed_offset(name: &str) -> Option<Offset> {
    let sign = match name.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = name[1..].chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !matches!(digits.len(), 2 | 4) {
        return None;
    }
    let hours: i32 = digits[..2].parse().ok()?;
    let minutes: i32 = digits.get(2..).map_or(Some(0), |m| m.parse().ok())?;
    if hours > 23 || minutes > 59 {
        return None;
    }
    Offset::from_seconds(sign * (hours * 3600 + minutes * 60)).ok()
}

/// The zone's canonical name (`america/new_york` → `America/New_York`; offsets as `+05:30`), or `null` if
/// there is no such zone.
fn tz_name(name: String) -> Option<String> {
    if let Some(offset) = fixed_offset(&name) {
        let minutes = offset.seconds() / 60;
        let sign = if minutes < 0 { '-' } else { '+' };
        return Some(format!(
            "{sign}{:02}:{:02}",
            minutes.abs() / 60,
            minutes.abs() % 60
        ));
    }
    let tz = TimeZone::get(&name).ok()?;
    tz.iana_name().map(str::to_owned)
}

/// At `millis` since the epoch in zone `name`: `{offset, abbreviation, dst}`, its offset from UTC in seconds,
/// its abbreviation and whether it is daylight saving time; `null` for an unknown zone or an instant outside
/// the supported range.
fn tz_at<'js>(ctx: Ctx<'js>, name: String, millis: f64) -> rquickjs::Result<Option<Object<'js>>> {
    let Some(tz) = zone(&name) else {
        return Ok(None);
    };
    let Ok(at) = Timestamp::from_millisecond(millis as i64) else {
        return Ok(None);
    };
    let info = tz.to_offset_info(at);
    let found = Object::new(ctx)?;
    found.set("offset", info.offset().seconds())?;
    found.set("abbreviation", info.abbreviation())?;
    found.set("dst", info.dst().is_dst())?;
    Ok(Some(found))
}

/// `text`'s segments by `granularity` (`grapheme`, `word` or `sentence`) as their starts, in UTF-16 code units
/// as JavaScript counts them, followed by the text's length.
fn segment(text: String, granularity: String) -> Vec<u32> {
    let starts: Vec<usize> = match granularity.as_str() {
        "word" => text.split_word_bound_indices().map(|(at, _)| at).collect(),
        "sentence" => text
            .split_sentence_bound_indices()
            .map(|(at, _)| at)
            .collect(),
        _ => text.grapheme_indices(true).map(|(at, _)| at).collect(),
    };
    let mut utf16 = Vec::with_capacity(starts.len() + 1);
    let (mut units, mut byte) = (0u32, 0usize);
    let mut chars = text.chars();
    for start in starts.into_iter().chain([text.len()]) {
        while byte < start {
            let Some(c) = chars.next() else { break };
            units += c.len_utf16() as u32;
            byte += c.len_utf8();
        }
        utf16.push(units);
    }
    utf16
}
