//! Query strings: percent-encoding on send, Go-compatible lenient decoding on receive.

/// Appends `value` to `out`, percent-encoding every byte except the unreserved characters of
/// RFC 3986 and `:`, `@` and `/`, which are safe inside a query value and keep addresses readable.
pub(crate) fn encode_into(value: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':' | b'@' | b'/')
        {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
}

/// The first value of `key` in the raw query `query`, decoded as Go's `url.Values.Get` does:
/// pairs are separated by `&`, `+` means a space, `%XX` is a byte. As in Go, a pair holding `;`
/// or an invalid escape is skipped; so is one that does not decode to UTF-8.
pub(crate) fn get(query: &str, key: &str) -> Option<String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty() && !pair.contains(';'))
        .find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k)? == key).then(|| decode(v)).flatten()
        })
}

fn decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        out.push(match b {
            b'+' => b' ',
            b'%' => {
                let hi = hex(bytes.next()?)?;
                let lo = hex(bytes.next()?)?;
                hi << 4 | lo
            }
            b => b,
        });
    }
    String::from_utf8(out).ok()
}

fn hex(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_query_semantics() {
        assert_eq!(
            get("id=3&address=127.0.0.1:17103", "id").as_deref(),
            Some("3")
        );
        assert_eq!(
            get("id=3&address=127.0.0.1:17103", "address").as_deref(),
            Some("127.0.0.1:17103")
        );
        assert_eq!(get("id=a%20b&address=x", "id").as_deref(), Some("a b"));
        assert_eq!(get("id=a+b", "id").as_deref(), Some("a b"));
        assert_eq!(get("id=a&b&address=1", "id").as_deref(), Some("a"));
        assert_eq!(get("id=&address=1", "id").as_deref(), Some(""));
        assert_eq!(get("address=1", "id"), None);
        assert_eq!(get("id=1&id=2", "id").as_deref(), Some("1"));
        assert_eq!(get("id=%zz&id=2", "id").as_deref(), Some("2"));
        assert_eq!(get("id=1;x&id=2", "id").as_deref(), Some("2"));
        assert_eq!(get("i%64=7", "id").as_deref(), Some("7"));
        assert_eq!(get("id", "id").as_deref(), Some(""));
        assert_eq!(get("id=%ff", "id"), None);
        assert_eq!(get("", "id"), None);
    }

    #[test]
    fn encoding_round_trips() {
        for value in [
            "3",
            "a&b c",
            "127.0.0.1:17103/x?y",
            "[::1]:80",
            "%+=;#é",
            "",
        ] {
            let mut enc = String::new();
            encode_into(value, &mut enc);
            assert!(
                enc.bytes()
                    .all(|b| b.is_ascii_graphic() && !b"&=+;#?".contains(&b))
            );
            assert_eq!(get(&format!("k={enc}"), "k").as_deref(), Some(value));
        }
    }
}
