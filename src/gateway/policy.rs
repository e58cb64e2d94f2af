//! Which scope a tool requires: an exact rule, else the most specific matching glob, else the
//! tool's own default (an OpenAPI operation's), else the backend's default scope.

use std::collections::HashMap;

use globset::GlobMatcher;

use crate::config::{BackendSettings, ToolPattern};
use crate::oauth::scope::pattern_covers;

/// The compiled `[backends.tools]` rules of one backend.
#[derive(Debug, Clone)]
pub struct ToolPolicy {
    default_scope: String,
    exact: HashMap<String, String>,
    /// Most specific first: more literal characters wins.
    globs: Vec<(GlobMatcher, String)>,
    /// Tools' own defaults, under the rules: each OpenAPI operation's
    /// `{id}:{tag}:{read|write}`. A backend with these has nothing the backend's default scope
    /// is needed for.
    defaults: HashMap<String, String>,
}

impl ToolPolicy {
    /// The rules as the configuration parsed them (globs already compiled).
    pub fn new(settings: &BackendSettings) -> Self {
        let mut exact = HashMap::new();
        let mut globs = Vec::new();
        for (pattern, scope) in &settings.tools {
            match pattern {
                ToolPattern::Exact(name) => {
                    exact.insert(name.clone(), scope.clone());
                }
                ToolPattern::Glob {
                    matcher, literal, ..
                } => globs.push((*literal, matcher.clone(), scope.clone())),
            }
        }
        globs.sort_by_key(|(literal, _, _)| std::cmp::Reverse(*literal));
        Self {
            default_scope: settings.scope.clone(),
            exact,
            globs: globs.into_iter().map(|(_, g, s)| (g, s)).collect(),
            defaults: HashMap::new(),
        }
    }

    /// With each tool's own default scope, which the configured rules still override.
    #[must_use]
    pub fn with_defaults<'a>(
        mut self,
        defaults: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        self.defaults = defaults
            .into_iter()
            .map(|(tool, scope)| (tool.to_owned(), scope.to_owned()))
            .collect();
        self
    }

    /// The scope a call of `tool` requires.
    pub fn required_scope(&self, tool: &str) -> &str {
        if let Some(scope) = self.exact.get(tool) {
            return scope;
        }
        if let Some((_, scope)) = self.globs.iter().find(|(glob, _)| glob.is_match(tool)) {
            return scope;
        }
        self.defaults.get(tool).unwrap_or(&self.default_scope)
    }

    /// True when a caller holding `held` (space-separated, possibly wildcards) may call `tool`.
    pub fn allows<'a>(&self, tool: &str, mut held: impl Iterator<Item = &'a str>) -> bool {
        let required = self.required_scope(tool);
        held.any(|scope| pattern_covers(scope, required))
    }

    /// The scope using the backend beyond its tools (resources, prompts) requires.
    pub fn default_scope(&self) -> &str {
        &self.default_scope
    }

    /// Every scope this backend's tools can require: what its resource advertises.
    pub fn scopes(&self) -> Vec<String> {
        let default = self.defaults.is_empty().then(|| self.default_scope.clone());
        let tools = self
            .defaults
            .keys()
            .map(|tool| self.required_scope(tool).to_owned());
        let mut all: Vec<String> = default
            .into_iter()
            .chain(tools)
            .chain(self.exact.values().cloned())
            .chain(self.globs.iter().map(|(_, s)| s.clone()))
            .collect();
        all.sort();
        all.dedup();
        all
    }
}

/// Which rule decides a tool's scope.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    fn policy() -> ToolPolicy {
        let settings = Settings::from_toml(
            r#"
            [[backends]]
            id = "everything"
            url = "http://127.0.0.1:3001/mcp"
            scope = "everything:tools:call"
            [backends.tools]
            "echo" = "everything:echo:call"
            "trigger-*" = "everything:admin:call"
            "trigger-safe-*" = "everything:safe:call"
            "#,
        )
        .unwrap();
        ToolPolicy::new(&settings.backends[0])
    }

    #[test]
    fn an_exact_rule_wins_then_the_most_specific_glob_then_the_default() {
        let p = policy();
        assert_eq!(p.required_scope("echo"), "everything:echo:call");
        assert_eq!(
            p.required_scope("trigger-long-running"),
            "everything:admin:call"
        );
        assert_eq!(
            p.required_scope("trigger-safe-thing"),
            "everything:safe:call"
        );
        assert_eq!(p.required_scope("add"), "everything:tools:call");
    }

    #[test]
    fn tools_own_defaults_sit_under_the_rules_and_replace_the_backend_default() {
        let p = policy().with_defaults([
            ("echo", "everything:misc:read"),
            ("list_items", "everything:items:read"),
            ("trigger-safe-x", "everything:items:write"),
        ]);
        assert_eq!(
            p.required_scope("echo"),
            "everything:echo:call",
            "a rule wins"
        );
        assert_eq!(p.required_scope("trigger-safe-x"), "everything:safe:call");
        assert_eq!(p.required_scope("list_items"), "everything:items:read");
        assert_eq!(p.required_scope("unlisted"), "everything:tools:call");
        assert_eq!(
            p.scopes(),
            [
                "everything:admin:call",
                "everything:echo:call",
                "everything:items:read",
                "everything:safe:call",
            ],
            "what tools require, without the unused backend default"
        );
    }

    #[test]
    fn wildcard_grants_cover_required_scopes() {
        let p = policy();
        assert!(p.allows("echo", ["everything:*:call"].into_iter()));
        assert!(!p.allows(
            "trigger-x",
            ["everything:echo:call", "everything:tools:call"].into_iter()
        ));
        assert!(p.allows("add", ["everything:tools:call"].into_iter()));
    }

    #[test]
    fn the_resource_advertises_every_scope_its_tools_need() {
        assert_eq!(
            policy().scopes(),
            [
                "everything:admin:call",
                "everything:echo:call",
                "everything:safe:call",
                "everything:tools:call"
            ]
        );
    }
}
