//! The browser's part of a sign-in: authorize, the provider page, consent, the upstream
//! sign-in, and Portcullis' answer to the callback.

use reqwest::StatusCode;

use super::{TestApp, form_fields, location};
use crate::support::idp;

impl TestApp {
    /// From `/authorize` to the consent page; returns the consent page's HTML.
    pub async fn reach_consent(&self, browser: &reqwest::Client, authorize_url: &str) -> String {
        self.reach_consent_via(browser, authorize_url, "corp").await
    }

    /// From `/authorize` to the consent page, choosing `provider` if the provider page shows.
    pub async fn reach_consent_via(
        &self,
        browser: &reqwest::Client,
        authorize_url: &str,
        provider: &str,
    ) -> String {
        let response = browser.get(authorize_url).send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::SEE_OTHER,
            "authorize: {}",
            response.text().await.unwrap()
        );
        let mut next = location(&response);
        if next.contains("/authorize/provider") {
            let page = browser.get(&next).send().await.unwrap();
            assert_eq!(page.status(), StatusCode::OK);
            let html = page.text().await.unwrap();
            assert!(
                html.contains("Corp SSO"),
                "the provider page lists the providers"
            );
            let (action, mut fields) = form_fields(&html);
            fields.push(("provider".into(), provider.into()));
            let chosen = browser.post(action).form(&fields).send().await.unwrap();
            assert_eq!(chosen.status(), StatusCode::SEE_OTHER);
            next = location(&chosen);
        }
        assert!(next.contains("/authorize/consent"), "{next}");
        let consent = browser.get(&next).send().await.unwrap();
        assert_eq!(consent.status(), StatusCode::OK);
        let csp = consent.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        consent.text().await.unwrap()
    }

    /// Submits the consent form with `decision`; returns the response.
    pub async fn submit_consent(
        &self,
        browser: &reqwest::Client,
        consent_html: &str,
        decision: &str,
    ) -> reqwest::Response {
        let (action, mut fields) = form_fields(consent_html);
        fields.push(("decision".into(), decision.into()));
        browser.post(action).form(&fields).send().await.unwrap()
    }

    /// The whole browser part: authorize, provider choice, consent, upstream sign-in as `login`,
    /// callback. Returns the URL Portcullis redirects to (the client's redirect URI with the code).
    pub async fn sign_in(
        &self,
        browser: &reqwest::Client,
        authorize_url: &str,
        login: &str,
    ) -> String {
        let done = self
            .callback_via(browser, authorize_url, "corp", login)
            .await;
        assert_eq!(
            done.status(),
            StatusCode::SEE_OTHER,
            "callback: {}",
            done.text().await.unwrap()
        );
        location(&done)
    }

    /// The browser part through `provider` up to Portcullis' answer to the callback, whatever it
    /// is (a redirect with the code, or a page).
    pub async fn callback_via(
        &self,
        browser: &reqwest::Client,
        authorize_url: &str,
        provider: &str,
        login: &str,
    ) -> reqwest::Response {
        let consent = self
            .reach_consent_via(browser, authorize_url, provider)
            .await;
        let approved = self.submit_consent(browser, &consent, "approve").await;
        assert_eq!(approved.status(), StatusCode::SEE_OTHER);
        let upstream = location(&approved);
        let callback = idp::sign_in(browser, &upstream, login).await;
        assert!(
            callback
                .as_str()
                .starts_with(&self.url(&format!("/callback/{provider}"))),
            "{callback}"
        );
        browser.get(callback.as_str()).send().await.unwrap()
    }
}
