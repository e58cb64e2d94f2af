//! Redirect URIs (`oauth::redirect`): what may be registered, whether a presented URI matches a
//! registered one, and appending the response parameters.
//!
//! Checks: no panic; an accepted registration URI is https with a host, or http on loopback,
//! without fragment or user information; a presented URI matches only a registered one exactly,
//! or, for http on loopback, a registered one that differs from it in nothing but the port;
//! appending parameters keeps the URI's own query and adds exactly the parameters, in order.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use portcullis::oauth::redirect::{matches_registered, validate_for_registration, with_params};
use url::Url;

#[derive(Arbitrary, Debug)]
struct Input {
    registered: Vec<Registered>,
    presented: Presented,
    params: Vec<(String, String)>,
}

/// A registered URI: anything, or one on loopback (where the port-only rule applies).
#[derive(Arbitrary, Debug)]
enum Registered {
    Raw(String),
    Loopback {
        host: Host,
        port: Option<u16>,
        path: String,
        query: Option<String>,
    },
}

/// A presented URI: anything, or one of the registered ones with some parts changed.
#[derive(Arbitrary, Debug)]
enum Presented {
    Raw(String),
    Derived(Changes),
}

#[derive(Arbitrary, Debug)]
struct Changes {
    from: u8,
    https: Option<bool>,
    username: Option<String>,
    password: Option<String>,
    host: Option<Host>,
    port: Option<Option<u16>>,
    path: Option<String>,
    query: Option<Option<String>>,
    fragment: Option<Option<String>>,
}

#[derive(Arbitrary, Debug)]
enum Host {
    Known(u8),
    Any(String),
}

const HOSTS: [&str; 10] = [
    "127.0.0.1",
    "127.0.0.2",
    "127.1",
    "0x7f.1",
    "2130706433",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "localhost",
    "LocalHost",
    "example.com",
];

impl Host {
    fn text(&self) -> &str {
        match self {
            Host::Known(i) => HOSTS[usize::from(*i) % HOSTS.len()],
            Host::Any(s) => s,
        }
    }
}

impl Registered {
    fn text(&self) -> String {
        match self {
            Registered::Raw(s) => s.clone(),
            Registered::Loopback {
                host,
                port,
                path,
                query,
            } => {
                let port = port.map(|p| format!(":{p}")).unwrap_or_default();
                let query = query.as_ref().map(|q| format!("?{q}")).unwrap_or_default();
                format!("http://{}{port}/{path}{query}", host.text())
            }
        }
    }
}

impl Presented {
    fn text(&self, registered: &[String]) -> String {
        let changes = match self {
            Presented::Raw(s) => return s.clone(),
            Presented::Derived(changes) => changes,
        };
        let Changes {
            from,
            https,
            username,
            password,
            host,
            port,
            path,
            query,
            fragment,
        } = changes;
        let Some(base) = registered.get(usize::from(*from) % registered.len().max(1)) else {
            return String::new();
        };
        let Ok(mut url) = Url::parse(base) else {
            return base.clone();
        };
        // Each change may be refused by `url` (e.g. a port on a URI without a host): ignored.
        if let Some(https) = https {
            let _ = url.set_scheme(if *https { "https" } else { "http" });
        }
        if let Some(username) = username {
            let _ = url.set_username(username);
        }
        if let Some(password) = password {
            let _ = url.set_password(Some(password));
        }
        if let Some(host) = host {
            let _ = url.set_host(Some(host.text()));
        }
        if let Some(port) = port {
            let _ = url.set_port(*port);
        }
        if let Some(path) = path {
            url.set_path(path);
        }
        if let Some(query) = query {
            url.set_query(query.as_deref());
        }
        if let Some(fragment) = fragment {
            url.set_fragment(fragment.as_deref());
        }
        url.into()
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

fuzz_target!(|input: Input| {
    let registered: Vec<String> = input.registered.iter().map(Registered::text).collect();
    let presented = input.presented.text(&registered);
    let params = input.params;

    for raw in registered.iter().chain([&presented]) {
        if let Ok(url) = validate_for_registration(raw) {
            assert!(url.fragment().is_none());
            assert!(url.username().is_empty() && url.password().is_none());
            match url.scheme() {
                "https" => assert!(url.host().is_some()),
                "http" => assert!(is_loopback(&url)),
                other => panic!("registered a {other} URI"),
            }
            assert!(matches_registered(std::slice::from_ref(raw), raw));
        }
    }

    if matches_registered(&registered, &presented) && !registered.contains(&presented) {
        // Only the loopback rule may match a URI that is not registered verbatim.
        let presented_url = Url::parse(&presented).expect("a matched URI parses");
        assert_eq!(presented_url.scheme(), "http");
        assert!(is_loopback(&presented_url));
        assert!(presented_url.fragment().is_none());
        let differs_only_in_port = registered
            .iter()
            .filter_map(|r| Url::parse(r).ok())
            .any(|r| {
                let mut same_port = presented_url.clone();
                same_port.set_port(r.port()).is_ok() && same_port == r
            });
        assert!(
            differs_only_in_port,
            "{presented:?} matched {registered:?} in more than the port"
        );
    }

    let pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    match with_params(&presented, &pairs) {
        Some(url) => {
            let original = Url::parse(&presented).expect("with_params parsed it");
            let mut expected: Vec<(String, String)> = original.query_pairs().into_owned().collect();
            expected.extend(params.iter().cloned());
            let got: Vec<(String, String)> = url.query_pairs().into_owned().collect();
            assert_eq!(got, expected);
            assert_eq!(url.scheme(), original.scheme());
            assert_eq!(url.host(), original.host());
            assert_eq!(url.port(), original.port());
            assert_eq!(url.path(), original.path());
            assert_eq!(url.fragment(), original.fragment());
        }
        None => assert!(Url::parse(&presented).is_err()),
    }
});
