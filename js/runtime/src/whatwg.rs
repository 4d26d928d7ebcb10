//! WHATWG URLs for the Node layer's `URL` and `URLSearchParams` (`js/node/url.js`), parsed and serialised by the
//! `url` crate, which follows the URL Standard. Parsing is native, as in Node: the same parse written in
//! JavaScript (`whatwg-url`) took about 0.7 ms under QuickJS, and every `fetch` parses at least once.
//!
//! A URL crosses as an array of its parts, in the order of [`PARTS`]; `null` means it did not parse. Form
//! data (`application/x-www-form-urlencoded`) crosses as a flat array of names and values.

use rquickjs::function::Opt;
use rquickjs::{Ctx, Function, Object};
use url::{Url, form_urlencoded, quirks};

/// The order of a URL's parts as they cross to JavaScript (url.js reads them by this order).
pub const PARTS: [&str; 11] = [
    "href", "protocol", "username", "password", "host", "hostname", "port", "pathname", "search",
    "hash", "origin",
];

pub fn install<'js>(ctx: &Ctx<'js>, host: &Object<'js>) -> rquickjs::Result<()> {
    host.set("urlParse", Function::new(ctx.clone(), parse)?)?;
    host.set("urlSet", Function::new(ctx.clone(), set)?)?;
    host.set("formParse", Function::new(ctx.clone(), form_parse)?)?;
    host.set("formSerialize", Function::new(ctx.clone(), form_serialize)?)?;
    Ok(())
}

/// `input` parsed on its own or against `base`, as `new URL(input, base)` does.
fn parse(input: String, base: Opt<String>) -> Option<Vec<String>> {
    let url = match base.0 {
        None => Url::parse(&input).ok()?,
        Some(base) => {
            let base = Url::parse(&base).ok()?;
            Url::options().base_url(Some(&base)).parse(&input).ok()?
        }
    };
    Some(parts(&url))
}

/// The URL `href` with one part set as the URL API's setter does (a value the part cannot take changes nothing,
/// as in the standard); `null` for a part with no setter or an `href` that no longer parses.
fn set(href: String, part: String, value: String) -> Option<Vec<String>> {
    let mut url = Url::parse(&href).ok()?;
    // The setters' own errors mean "left as it was", which is what the standard asks of them.
    let _ = match part.as_str() {
        "protocol" => quirks::set_protocol(&mut url, &value),
        "username" => quirks::set_username(&mut url, &value),
        "password" => quirks::set_password(&mut url, &value),
        "host" => quirks::set_host(&mut url, &value),
        "hostname" => quirks::set_hostname(&mut url, &value),
        "port" => quirks::set_port(&mut url, &value),
        "pathname" => {
            quirks::set_pathname(&mut url, &value);
            Ok(())
        }
        "search" => {
            quirks::set_search(&mut url, &value);
            Ok(())
        }
        "hash" => {
            quirks::set_hash(&mut url, &value);
            Ok(())
        }
        _ => return None,
    };
    Some(parts(&url))
}

fn parts(url: &Url) -> Vec<String> {
    PARTS
        .iter()
        .map(|part| {
            match *part {
                "href" => quirks::href(url),
                "protocol" => quirks::protocol(url),
                "username" => quirks::username(url),
                "password" => quirks::password(url),
                "host" => quirks::host(url),
                "hostname" => quirks::hostname(url),
                "port" => quirks::port(url),
                "pathname" => quirks::pathname(url),
                "search" => quirks::search(url),
                "hash" => quirks::hash(url),
                _ => return quirks::origin(url),
            }
            .to_owned()
        })
        .collect()
}

/// Form data's names and values, in order, flattened: `[name, value, name, value, ...]`.
fn form_parse(text: String) -> Vec<String> {
    form_urlencoded::parse(text.as_bytes())
        .flat_map(|(name, value)| [name.into_owned(), value.into_owned()])
        .collect()
}

/// The serialisation of `[name, value, ...]` as form data.
fn form_serialize(pairs: Vec<String>) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for pair in pairs.chunks_exact(2) {
        out.append_pair(&pair[0], &pair[1]);
    }
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(parts: &[String], name: &str) -> String {
        parts[PARTS.iter().position(|p| *p == name).unwrap()].clone()
    }

    #[test]
    fn urls_parse_and_set_as_the_standard_says() {
        let url = parse(
            "HTTPS://Bücher.example:443/a/../b c?x=1#f".into(),
            Opt(None),
        )
        .unwrap();
        assert_eq!(
            part(&url, "href"),
            "https://xn--bcher-kva.example/b%20c?x=1#f"
        );
        assert_eq!(part(&url, "port"), "");
        assert_eq!(part(&url, "origin"), "https://xn--bcher-kva.example");
        let relative = parse("../y?q".into(), Opt(Some("http://h/a/b/c".into()))).unwrap();
        assert_eq!(part(&relative, "href"), "http://h/a/y?q");
        assert!(parse("no scheme".into(), Opt(None)).is_none());
        assert!(parse("http://[::1".into(), Opt(None)).is_none());

        let set_port = set(part(&url, "href"), "port".into(), "8443".into()).unwrap();
        assert_eq!(part(&set_port, "host"), "xn--bcher-kva.example:8443");
        let bad_port = set(part(&url, "href"), "port".into(), "nope".into()).unwrap();
        assert_eq!(part(&bad_port, "href"), part(&url, "href"));
        let no_query = set(part(&url, "href"), "search".into(), String::new()).unwrap();
        assert_eq!(
            part(&no_query, "href"),
            "https://xn--bcher-kva.example/b%20c#f"
        );
        assert!(set(part(&url, "href"), "origin".into(), "x".into()).is_none());
    }

    #[test]
    fn form_data_round_trips() {
        let pairs = form_parse("a=1&b=x+y%20z&&c&%zz=%E2%82%AC".into());
        assert_eq!(pairs, ["a", "1", "b", "x y z", "c", "", "%zz", "€"]);
        assert_eq!(form_serialize(pairs), "a=1&b=x+y+z&c=&%25zz=%E2%82%AC");
    }
}
