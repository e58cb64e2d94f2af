//! Redirect URIs: what may be registered, and when a presented one matches (RFC 6749 §3.1.2,
//! OAuth 2.1 §2.3.1 exact matching, RFC 8252 §7.3 any port on loopback).

use std::net::IpAddr;

use url::Url;

/// Why a redirect URI cannot be registered.
pub fn validate_for_registration(raw: &str) -> Result<Url, &'static str> {
    let url = Url::parse(raw).map_err(|_| "is not an absolute URI")?;
    if url.fragment().is_some() {
        return Err("must not contain a fragment");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain user information");
    }
    match url.scheme() {
        "https" if url.host().is_some() => Ok(url),
        // RFC 8252 §8.3: loopback IP literals, not `localhost`, for native apps; `localhost` is
        // still accepted because widely used clients register it.
        "http" if is_loopback_host(&url) => Ok(url),
        _ => Err("must use https, or http on a loopback address"),
    }
}

fn loopback_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    }
    .filter(IpAddr::is_loopback)
}

fn is_loopback_host(url: &Url) -> bool {
    loopback_ip(url).is_some()
        || url
            .host_str()
            .is_some_and(|h| h.eq_ignore_ascii_case("localhost"))
}

/// True for an `http` redirect URI on a loopback host: one that returns to a program on the
/// person's own computer (RFC 8252 §7.3).
pub fn is_loopback(raw: &str) -> bool {
    Url::parse(raw).is_ok_and(|url| url.scheme() == "http" && is_loopback_host(&url))
}

/// True when `presented` equals one registered URI exactly, or, for an `http` loopback URI,
/// equals it in everything but the port.
pub fn matches_registered(registered: &[String], presented: &str) -> bool {
    if registered.iter().any(|r| r == presented) {
        return true;
    }
    let Ok(presented) = Url::parse(presented) else {
        return false;
    };
    if presented.scheme() != "http"
        || !is_loopback_host(&presented)
        || presented.fragment().is_some()
    {
        return false;
    }
    registered
        .iter()
        .filter_map(|r| Url::parse(r).ok())
        .any(|r| {
            r.scheme() == "http"
                && is_loopback_host(&r)
                && r.host() == presented.host()
                && r.path() == presented.path()
                && r.query() == presented.query()
                && r.username() == presented.username()
                && r.password() == presented.password()
                && r.fragment().is_none()
        })
}

/// Appends parameters to a redirect URI, keeping its own query (RFC 6749 §3.1.2).
pub fn with_params(redirect_uri: &str, params: &[(&str, &str)]) -> Option<Url> {
    let mut url = Url::parse(redirect_uri).ok()?;
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in params {
            query.append_pair(name, value);
        }
    }
    Some(url)
}

/// Which redirect URIs register, and when one matches.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_accepts_https_and_loopback_only() {
        assert!(validate_for_registration("https://app.example.com/cb").is_ok());
        assert!(validate_for_registration("http://127.0.0.1/callback").is_ok());
        assert!(validate_for_registration("http://[::1]:8080/cb").is_ok());
        assert!(validate_for_registration("http://localhost:3000/cb").is_ok());
        assert!(validate_for_registration("http://example.com/cb").is_err());
        assert!(validate_for_registration("https://app.example.com/cb#frag").is_err());
        assert!(validate_for_registration("javascript:alert(1)").is_err());
        assert!(validate_for_registration("/relative").is_err());
        assert!(validate_for_registration("https://user:pw@app.example.com/cb").is_err());
    }

    #[test]
    fn https_redirects_match_exactly() {
        let registered = vec!["https://app.example.com/cb".to_owned()];
        assert!(matches_registered(
            &registered,
            "https://app.example.com/cb"
        ));
        assert!(!matches_registered(
            &registered,
            "https://app.example.com/cb/"
        ));
        assert!(!matches_registered(
            &registered,
            "https://app.example.com/cb?x=1"
        ));
        assert!(!matches_registered(
            &registered,
            "https://app.example.com:8443/cb"
        ));
        assert!(!matches_registered(
            &registered,
            "https://evil.example.com/cb"
        ));
        assert!(!matches_registered(
            &registered,
            "https://app.example.com.evil.com/cb"
        ));
    }

    #[test]
    fn loopback_redirects_may_change_only_the_port() {
        let registered = vec!["http://127.0.0.1/callback".to_owned()];
        assert!(matches_registered(
            &registered,
            "http://127.0.0.1:49152/callback"
        ));
        assert!(!matches_registered(
            &registered,
            "http://127.0.0.1:49152/other"
        ));
        assert!(!matches_registered(
            &registered,
            "http://localhost:49152/callback"
        ));
        assert!(!matches_registered(
            &registered,
            "https://127.0.0.1:49152/callback"
        ));
        assert!(!matches_registered(
            &registered,
            "http://127.0.0.1:49152/callback#x"
        ));
    }

    #[test]
    fn a_loopback_redirect_may_differ_in_the_port_only() {
        // Found by the `redirect_uri` fuzz target: the password, and the registered URI's
        // fragment, were not compared.
        let registered = vec!["http://127.0.0.1/cb".to_owned()];
        assert!(!matches_registered(&registered, "http://:5@127.0.0.1/cb"));
        assert!(!matches_registered(
            &registered,
            "http://:5@127.0.0.1:49152/cb"
        ));
        assert!(!matches_registered(&registered, "http://u@127.0.0.1/cb"));
        // Registration refuses fragments; a registered URI with one still matches nothing but
        // itself (also found by the fuzz target).
        let with_fragment = vec!["http://[::1]:2570/cb#x".to_owned()];
        assert!(!matches_registered(&with_fragment, "http://[::1]:20303/cb"));
    }

    #[test]
    fn parameters_are_appended_to_an_existing_query() {
        let url = with_params(
            "https://app.example.com/cb?tenant=a",
            &[("code", "x y"), ("state", "s")],
        )
        .unwrap();
        assert_eq!(
            url.as_str(),
            "https://app.example.com/cb?tenant=a&code=x+y&state=s"
        );
    }
}
