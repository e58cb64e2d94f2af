//! Reading what the app answers a browser: redirects, query parameters, forms.

use scraper::{Html, Selector};
use url::Url;

pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(reqwest::header::LOCATION)
        .unwrap_or_else(|| panic!("no Location on a {} response", response.status()))
        .to_str()
        .unwrap()
        .to_owned()
}

/// The value of `name` among the query parameters of `url`.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The hidden inputs and action of the first form on a page.
pub fn form_fields(html: &str) -> (String, Vec<(String, String)>) {
    let doc = Html::parse_document(html);
    let form = doc
        .select(&Selector::parse("form").unwrap())
        .next()
        .expect("the page has a form");
    let action = form.value().attr("action").unwrap_or_default().to_owned();
    let fields = form
        .select(&Selector::parse("input[type=hidden]").unwrap())
        .filter_map(|i| {
            Some((
                i.value().attr("name")?.to_owned(),
                i.value().attr("value").unwrap_or_default().to_owned(),
            ))
        })
        .collect();
    (action, fields)
}
