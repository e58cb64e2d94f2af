//! A scripted browser: follows no redirect by itself, keeps cookies per origin and path, and
//! fills in the first POST form of a page (hidden inputs keep their values, text inputs get the
//! login, password inputs a dummy), parsed by hand so the bench needs no HTML parser.

use std::collections::HashMap;

use anyhow::{Context, bail};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use url::Url;

/// Cookies by origin (`scheme://host:port`), then by (path, name).
#[derive(Debug, Default)]
pub struct Jar {
    origins: HashMap<String, HashMap<(String, String), String>>,
}

impl Jar {
    /// The `Cookie` header for a request to `url`, if any cookie applies.
    pub fn header_for(&self, url: &Url) -> Option<String> {
        let cookies = self.origins.get(&url.origin().ascii_serialization())?;
        let path = url.path();
        let mut pairs: Vec<(&String, &String, &String)> = cookies
            .iter()
            .filter(|((cookie_path, _), _)| path_matches(path, cookie_path))
            .map(|((cookie_path, name), value)| (cookie_path, name, value))
            .collect();
        // Longer paths first, as browsers send them.
        pairs.sort_by_key(|(cookie_path, _, _)| std::cmp::Reverse(cookie_path.len()));
        let header: Vec<String> = pairs
            .into_iter()
            .map(|(_, name, value)| format!("{name}={value}"))
            .collect();
        (!header.is_empty()).then(|| header.join("; "))
    }

    /// Keeps (or, when expired, drops) the cookies a response to `url` set.
    pub fn store(&mut self, url: &Url, response: &reqwest::Response) {
        let cookies = self
            .origins
            .entry(url.origin().ascii_serialization())
            .or_default();
        for value in response.headers().get_all(SET_COOKIE) {
            let Some(cookie) = value
                .to_str()
                .ok()
                .and_then(|v| cookie::Cookie::parse(v.to_owned()).ok())
            else {
                continue;
            };
            let path = match cookie.path() {
                Some(path) if path.starts_with('/') => path.to_owned(),
                // RFC 6265 §5.1.4: the default path is the request path's directory.
                _ => match url.path().rfind('/') {
                    Some(0) | None => "/".to_owned(),
                    Some(end) => url.path()[..end].to_owned(),
                },
            };
            let expired = cookie.max_age().is_some_and(|age| age.whole_seconds() <= 0)
                || cookie
                    .expires_datetime()
                    .is_some_and(|at| at.unix_timestamp() <= chrono::Utc::now().timestamp());
            let key = (path, cookie.name().to_owned());
            if expired {
                cookies.remove(&key);
            } else {
                cookies.insert(key, cookie.value().to_owned());
            }
        }
    }
}

/// RFC 6265 §5.1.4 path matching.
fn path_matches(request: &str, cookie: &str) -> bool {
    request == cookie
        || (request.starts_with(cookie)
            && (cookie.ends_with('/') || request[cookie.len()..].starts_with('/')))
}

/// A browser: an HTTP client that follows no redirect, and its cookies.
pub struct Browser {
    pub http: reqwest::Client,
    pub jar: Jar,
}

impl Browser {
    /// GET or (with `form`) POST `url`, sending and keeping cookies.
    pub async fn send(
        &mut self,
        url: &Url,
        form: Option<&[(String, String)]>,
    ) -> anyhow::Result<reqwest::Response> {
        let mut request = match form {
            Some(fields) => self.http.post(url.clone()).form(fields),
            None => self.http.get(url.clone()),
        };
        if let Some(cookies) = self.jar.header_for(url) {
            request = request.header(COOKIE, cookies);
        }
        let response = request.send().await?;
        self.jar.store(url, &response);
        Ok(response)
    }
}

/// Where a redirect goes, resolved against the URL that answered it.
pub fn redirect_target(from: &Url, response: &reqwest::Response) -> anyhow::Result<Url> {
    if !response.status().is_redirection() {
        bail!(
            "{from} answered {} instead of a redirect",
            response.status()
        );
    }
    let location = response
        .headers()
        .get(LOCATION)
        .context("a redirect without Location")?
        .to_str()?;
    Ok(from.join(location)?)
}

/// The first POST form of `html`: its action (resolved against `page`) and its fields, filled
/// in as a person would (see the module's documentation). Buttons are left out.
pub fn fill_form(
    html: &str,
    page: &Url,
    login: &str,
) -> anyhow::Result<(Url, Vec<(String, String)>)> {
    let mut rest = html;
    while let Some(start) = find_ci(rest, "<form") {
        let tag_end = rest[start..].find('>').context("unterminated <form")? + start;
        let tag = &rest[start..tag_end];
        let body_end = find_ci(&rest[tag_end..], "</form").map_or(rest.len(), |end| end + tag_end);
        let body = &rest[tag_end..body_end];
        rest = &rest[body_end..];
        if !attr(tag, "method").is_some_and(|m| m.eq_ignore_ascii_case("post")) {
            continue;
        }
        let action = match attr(tag, "action") {
            Some(action) if !action.is_empty() => page.join(&action)?,
            _ => page.clone(),
        };
        let mut fields = Vec::new();
        let mut inputs = body;
        while let Some(at) = find_ci(inputs, "<input") {
            let end = inputs[at..].find('>').context("unterminated <input")? + at;
            let input = &inputs[at..end];
            inputs = &inputs[end..];
            let Some(name) = attr(input, "name") else {
                continue;
            };
            let value = attr(input, "value").unwrap_or_default();
            let kind = attr(input, "type")
                .unwrap_or_else(|| "text".into())
                .to_ascii_lowercase();
            let filled = match kind.as_str() {
                "password" => "any-password".to_owned(),
                "text" | "email" => login.to_owned(),
                "hidden" => value,
                _ => continue,
            };
            fields.push((name, filled));
        }
        return Ok((action, fields));
    }
    bail!("{page} answered a page without a POST form")
}

/// Byte offset of `needle` (ASCII, lower-case) in `haystack`, ignoring ASCII case.
fn find_ci(haystack: &str, needle: &str) -> Option<usize> {
    haystack
        .as_bytes()
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// The value of attribute `name` in a start tag (quoted with " or ', or bare), unescaped.
fn attr(tag: &str, name: &str) -> Option<String> {
    let bytes = tag.as_bytes();
    let mut from = 0;
    while let Some(found) = find_ci(&tag[from..], name) {
        let at = from + found;
        from = at + name.len();
        let before_ok = at > 0 && bytes[at - 1].is_ascii_whitespace();
        let after = tag[from..].trim_start();
        if !before_ok || !after.starts_with('=') {
            continue;
        }
        let value = after[1..].trim_start();
        let raw = match value.chars().next() {
            Some(quote @ ('"' | '\'')) => value[1..].split(quote).next().unwrap_or(""),
            _ => value
                .split(|c: char| c.is_ascii_whitespace() || c == '/' || c == '>')
                .next()
                .unwrap_or(""),
        };
        return Some(unescape(raw));
    }
    None
}

fn unescape(value: &str) -> String {
    value
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Forms filled as a person would, cookies matched by path.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_filled_like_a_person_would() {
        let page = Url::parse("http://127.0.0.1:1/interaction/abc").unwrap();
        let html = r#"<form method="get"><input name="q"></form>
            <form autocomplete="off" action="/interaction/abc/login" method="post">
            <input type="hidden" name="prompt" value="login"/>
            <input required type="text" name="login" placeholder="x" autofocus="on">
            <input required type="password" name="password">
            <button type="submit" name="decision" value="approve">Go</button></form>"#;
        let (action, fields) = fill_form(html, &page, "alice").unwrap();
        assert_eq!(action.as_str(), "http://127.0.0.1:1/interaction/abc/login");
        let expected = [
            ("prompt", "login"),
            ("login", "alice"),
            ("password", "any-password"),
        ];
        let fields: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(fields, expected);
        assert_eq!(
            attr(r#"<input value="a&amp;b" name=x>"#, "name").as_deref(),
            Some("x")
        );
    }

    #[test]
    fn cookie_paths_match_by_segment() {
        assert!(path_matches("/auth/x", "/auth"));
        assert!(path_matches("/auth", "/auth"));
        assert!(!path_matches("/authx", "/auth"));
        assert!(path_matches("/anything", "/"));
    }
}
