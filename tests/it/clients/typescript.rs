//! The TypeScript SDK's clients, 1.32.2 (`@modelcontextprotocol/sdk`, the SDK inside mcp-remote
//! and Claude Code) and 2.4.0 (`@modelcontextprotocol/client`, version negotiation `auto`),
//! driven by `scripts/mcp/client.mjs`: the SDK does all of OAuth itself, the script only plays
//! the person.

/// `@modelcontextprotocol/sdk` 1.32.2.
mod sdk1 {
    use crate::clients::scenarios::{Driver, cimd_test, client_tests};

    client_tests!(Driver::TypeScript1);
    cimd_test!(Driver::TypeScript1);
}

/// `@modelcontextprotocol/client` 2.4.0, version negotiation `auto`.
mod sdk2 {
    use crate::clients::scenarios::{Driver, cimd_test, client_tests};

    client_tests!(Driver::TypeScript2);
    cimd_test!(Driver::TypeScript2);
}
