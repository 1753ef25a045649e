//! The server under test: `http://host:port[/prefix]`, resolved once to a socket address.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// Where the clients connect and what they put in `Host` and in front of every path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// As the user wrote it, for reports.
    pub url: String,
    pub addr: SocketAddr,
    /// The `Host` header: `host:port` as written.
    pub host: String,
    /// Path prefix without a trailing slash (`""` at the root), for a server mounted below one.
    pub prefix: String,
}

impl Target {
    /// Parses and resolves `url`; only plain `http://` is spoken.
    pub async fn resolve(url: &str) -> Result<Target, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            format!("--target {url:?}: only http:// URLs are supported, e.g. http://127.0.0.1:8080")
        })?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(format!("--target {url:?} has no host"));
        }
        let has_port = match authority.strip_prefix('[') {
            Some(v6) => v6.contains("]:"),
            None => authority.contains(':'),
        };
        let with_port = if has_port { authority.to_owned() } else { format!("{authority}:80") };
        let addr = tokio::net::lookup_host(&with_port)
            .await
            .map_err(|e| format!("--target {url:?}: cannot resolve {with_port}: {e}"))?
            .next()
            .ok_or_else(|| format!("--target {url:?}: {with_port} resolves to no address"))?;
        Ok(Target {
            url: url.to_owned(),
            addr,
            host: authority.to_owned(),
            prefix: path.trim_end_matches('/').to_owned(),
        })
    }

    /// A target on a local address, as `--spawn` starts it.
    pub fn local(addr: SocketAddr) -> Target {
        Target {
            url: format!("http://{addr}"),
            addr,
            host: addr.to_string(),
            prefix: String::new(),
        }
    }

    /// A `GET` request head for `path` (which starts with `/`), with extra header lines.
    pub fn get(&self, path: &str, extra: &str) -> String {
        format!("GET {}{path} HTTP/1.1\r\nHost: {}\r\n{extra}\r\n", self.prefix, self.host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn parses_urls() {
        let t = Target::resolve("http://127.0.0.1:8080").await.unwrap();
        assert_eq!(t.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!((t.host.as_str(), t.prefix.as_str()), ("127.0.0.1:8080", ""));
        let t = Target::resolve("http://127.0.0.1:9/pulse/").await.unwrap();
        assert_eq!(t.prefix, "/pulse");
        assert!(
            t.get("/api/count", "")
                .starts_with("GET /pulse/api/count HTTP/1.1\r\nHost: 127.0.0.1:9\r\n")
        );
        let t = Target::resolve("http://[::1]:81").await.unwrap();
        assert_eq!(t.addr.port(), 81);
        assert_eq!(Target::resolve("http://127.0.0.1").await.unwrap().addr.port(), 80);
        assert!(Target::resolve("https://x").await.unwrap_err().contains("http://"));
        assert!(Target::resolve("http:///x").await.is_err());
    }
}
