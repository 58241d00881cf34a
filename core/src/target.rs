//! Validated pieces of a request: the Raft path, target authorities, URL schemes.

use std::fmt;

use crate::error::InputError;

/// The HTTP path the Raft handler is mounted at, such as `/raft`.
///
/// An absolute path made of visible ASCII, optionally with a query (the Go package sends
/// `GET /raft?x=1` for such a path and so do we). Validated once, at construction: the Go
/// package panics at dial time on a path it cannot parse.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RaftPath {
    full: Box<str>,
}

impl RaftPath {
    /// Validates `path`.
    ///
    /// # Errors
    /// [`InputError::Path`] when `path` does not start with `/`, or holds a space, a control
    /// character, a non-ASCII character or a `#`.
    pub fn new(path: &str) -> Result<Self, InputError> {
        let fail = |reason| InputError::Path {
            path: path.into(),
            reason,
        };
        if !path.starts_with('/') {
            return Err(fail("must start with '/'"));
        }
        if path.starts_with("//") {
            return Err(fail("must not start with '//'"));
        }
        if !path.bytes().all(|b| b.is_ascii_graphic() && b != b'#') {
            return Err(fail("must be visible ASCII without '#'"));
        }
        let reserved = |pair: &str| {
            let key = pair.split_once('=').map_or(pair, |(key, _)| key);
            key == "id" || key == "address"
        };
        if path
            .split_once('?')
            .is_some_and(|(_, query)| query.split('&').any(reserved))
        {
            // The server reads the first `id`: one in the path would shadow the caller's.
            return Err(fail("its query must not set 'id' or 'address'"));
        }
        Ok(Self { full: path.into() })
    }

    /// The path as given, query included.
    pub fn as_str(&self) -> &str {
        &self.full
    }

    /// The path without its query: what the server routes on.
    pub fn path(&self) -> &str {
        self.full
            .split_once('?')
            .map_or(&self.full, |(path, _)| path)
    }

    /// The query part, without `?`, if any.
    pub fn query(&self) -> Option<&str> {
        self.full.split_once('?').map(|(_, query)| query)
    }
}

impl Default for RaftPath {
    /// `/raft`, the path used throughout the Go package's documentation.
    fn default() -> Self {
        Self {
            full: "/raft".into(),
        }
    }
}

impl fmt::Display for RaftPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

impl std::str::FromStr for RaftPath {
    type Err = InputError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// URL scheme of a membership target: plain HTTP or HTTP over TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Scheme {
    /// `http`
    #[default]
    Http,
    /// `https`
    Https,
}

impl Scheme {
    /// `"http"` or `"https"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Header fields a client adds to its upgrade and membership requests, such as credentials
/// for a server's authorization hook. Validated when added, so they can never break a head.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtraHeaders {
    fields: Vec<(Box<str>, Box<str>)>,
}

impl ExtraHeaders {
    /// No fields.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the field `name: value`.
    ///
    /// # Errors
    /// [`InputError::Header`] when `name` is not a token, `value` holds control characters, or
    /// the field is one the client writes itself (`Host`, `Upgrade`, `Connection`,
    /// `Content-Length`, `Transfer-Encoding`).
    pub fn with(mut self, name: &str, value: &str) -> Result<Self, InputError> {
        let fail = |reason| InputError::Header {
            name: name.into(),
            reason,
        };
        let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if name.is_empty() || !name.bytes().all(token) {
            return Err(fail("the name must be a non-empty token"));
        }
        if !value
            .bytes()
            .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
        {
            return Err(fail("the value must be visible ASCII, spaces or tabs"));
        }
        let managed = [
            "host",
            "upgrade",
            "connection",
            "content-length",
            "transfer-encoding",
        ];
        if managed.iter().any(|m| name.eq_ignore_ascii_case(m)) {
            return Err(fail("the client writes this field itself"));
        }
        self.fields.push((name.into(), value.trim().into()));
        Ok(self)
    }

    /// The fields, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().map(|(n, v)| (&**n, &**v))
    }

    /// Appends `Name: value\r\n` for every field.
    pub(crate) fn encode_into(&self, out: &mut String) {
        for (name, value) in self.iter() {
            out.push_str(name);
            out.push_str(": ");
            out.push_str(value);
            out.push_str("\r\n");
        }
    }
}

/// Checks that `authority` can be sent as a `Host` value and used in a URL: a non-empty
/// `host[:port]` where the host is a name, an IPv4 address or a bracketed IPv6 address.
///
/// # Errors
/// [`InputError::Authority`] otherwise (this also keeps CR, LF and spaces out of heads).
pub fn check_authority(authority: &str) -> Result<(), InputError> {
    let fail = |reason| InputError::Authority {
        authority: authority.into(),
        reason,
    };
    if authority.is_empty() {
        return Err(fail("empty"));
    }
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':');
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return Err(fail("unclosed '['"));
        };
        if v6.is_empty()
            || !v6.bytes().all(|b| {
                b.is_ascii_hexdigit()
                    || b == b':'
                    || b == b'.'
                    || b == b'%'
                    || b.is_ascii_alphanumeric()
            })
        {
            return Err(fail("invalid IPv6 address"));
        }
        match after {
            "" => return Ok(()),
            _ => match after.strip_prefix(':') {
                Some(port) => (v6, port),
                None => return Err(fail("unexpected characters after ']'")),
            },
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, port),
            None => (authority, ""),
        }
    };
    if host.is_empty() || !host.bytes().all(allowed) {
        return Err(fail("invalid host"));
    }
    if !authority.starts_with('[') && host.contains(':') {
        return Err(fail("IPv6 hosts must be in brackets"));
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) || port.len() > 5 {
        return Err(fail("invalid port"));
    }
    Ok(())
}

/// The host of a `host[:port]` authority, without the brackets of an IPv6 address: the name
/// a TLS client checks the server's certificate against.
///
/// ```
/// use rafthttp_core::authority_host;
///
/// assert_eq!(authority_host("node1.example:8443"), Ok("node1.example"));
/// assert_eq!(authority_host("[::1]:8443"), Ok("::1"));
/// ```
///
/// # Errors
/// [`InputError::Authority`] when [`check_authority`] refuses it.
pub fn authority_host(authority: &str) -> Result<&str, InputError> {
    check_authority(authority)?;
    Ok(match authority.strip_prefix('[') {
        Some(rest) => rest.split_once(']').map_or(rest, |(host, _)| host),
        None => authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host),
    })
}

/// The name a TLS client checks the server's certificate against when it dials `authority`:
/// its host ([`authority_host`]), and the message when the handshake fails, the same for every
/// TLS library the runtime crates use.
pub mod tls {
    use std::fmt;

    use crate::error::InputError;

    /// The host to check the certificate against.
    ///
    /// # Errors
    /// [`InputError::Authority`] when `authority` is not a `host[:port]`.
    pub fn server_name(authority: &str) -> Result<&str, InputError> {
        super::authority_host(authority)
    }

    /// `"<host>" is not a valid TLS server name: <why>`.
    pub fn invalid_name(host: &str, why: &dyn fmt::Display) -> String {
        format!("{host:?} is not a valid TLS server name: {why}")
    }

    /// `TLS handshake with <authority> failed: <why>`.
    pub fn handshake_failed(authority: &str, why: &dyn fmt::Display) -> String {
        format!("TLS handshake with {authority} failed: {why}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(RaftPath::new("/raft").unwrap().path(), "/raft");
        let p = RaftPath::new("/raft?x=1").unwrap();
        assert_eq!((p.path(), p.query()), ("/raft", Some("x=1")));
        assert_eq!(RaftPath::new("/").unwrap().as_str(), "/");
        for bad in [
            "",
            "raft",
            "/ra ft",
            "/raft\r\n",
            "/raft?id=7",
            "/raft?x=1&address",
            "/r#f",
            "//host/raft",
            "/é",
        ] {
            assert!(RaftPath::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn extra_headers() {
        let headers = ExtraHeaders::new()
            .with("Authorization", "Bearer s3cret")
            .unwrap()
            .with("X-Node", " 7 ")
            .unwrap();
        let mut out = String::new();
        headers.encode_into(&mut out);
        assert_eq!(out, "Authorization: Bearer s3cret\r\nX-Node: 7\r\n");
        for (name, value) in [
            ("", "x"),
            ("Bad Name", "x"),
            ("X", "a\r\nB: c"),
            ("host", "h"),
            ("Content-Length", "1"),
            ("X", "é"),
        ] {
            assert!(
                ExtraHeaders::new().with(name, value).is_err(),
                "{name:?}: {value:?}"
            );
        }
    }

    #[test]
    fn authorities() {
        for good in [
            "127.0.0.1:8080",
            "node-1:1",
            "localhost",
            "[::1]:80",
            "[::1]",
            "a_b.example",
        ] {
            check_authority(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        for bad in [
            "",
            ":80",
            "host:80x",
            "ho st:1",
            "h\r\nX: y",
            "[::1",
            "[::1]x",
            "::1:80",
            "u@h:1",
            "h/x",
            "h?x",
            "h:123456",
        ] {
            assert!(check_authority(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn authority_hosts() {
        assert_eq!(authority_host("127.0.0.1:8080"), Ok("127.0.0.1"));
        assert_eq!(authority_host("localhost"), Ok("localhost"));
        assert_eq!(authority_host("[::1]"), Ok("::1"));
        assert_eq!(authority_host("[fe80::1]:80"), Ok("fe80::1"));
        assert!(authority_host("ho st:1").is_err());
    }
}
