//! mcp-remote 0.15.1, as people run it: a stdio server their client spawns (here the
//! TypeScript SDK 1.x client, `scripts/mcp/client.mjs --via mcp-remote`), doing OAuth itself
//! with the browser it opens through `xdg-open` and a loopback callback port. (Its redirect URI
//! is `http://127.0.0.1:PORT/oauth/callback`, which Claude Code's CIMD document does not list:
//! no CIMD test here.)

use crate::clients::scenarios::{Driver, client_tests};

client_tests!(Driver::McpRemote);
