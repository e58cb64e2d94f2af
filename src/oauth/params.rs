//! Request parameters as RFC 6749 §3.1 wants them: each at most once, empty means absent.

use std::collections::HashMap;

use super::error::OAuthError;

/// Parameters of a query string or form body.
#[derive(Debug, Default, Clone)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// Parses `application/x-www-form-urlencoded` text. A repeated parameter is an
    /// `invalid_request` (RFC 6749 §3.1: "MUST NOT be included more than once").
    pub fn parse(raw: &str) -> Result<Self, OAuthError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw).map_err(|_| {
            OAuthError::invalid_request("the parameters are not valid form encoding")
        })?;
        let mut map = HashMap::with_capacity(pairs.len());
        for (name, value) in pairs {
            if map.contains_key(&name) {
                return Err(OAuthError::invalid_request(format!(
                    "parameter `{name}` is repeated"
                )));
            }
            map.insert(name, value);
        }
        Ok(Self(map))
    }

    /// The value, treating an empty value as absent (RFC 6749 §3.1).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn require(&self, name: &'static str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("parameter `{name}` is required")))
    }
}

/// Repeated and empty parameters.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_parameter_is_an_invalid_request() {
        let err = Params::parse("a=1&b=2&a=3").unwrap_err();
        assert_eq!(err.code.as_str(), "invalid_request");
        assert!(err.description.contains("`a`"));
    }

    #[test]
    fn empty_values_count_as_absent() {
        let params = Params::parse("state=&scope=x%20y").unwrap();
        assert_eq!(params.get("state"), None);
        assert_eq!(params.get("scope"), Some("x y"));
        assert!(params.require("state").is_err());
    }
}
