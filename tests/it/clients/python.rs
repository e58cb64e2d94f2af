//! The Python MCP SDK 2.x client (`mcp` 2.3.0, `mode="auto"`), driven by
//! `scripts/clients/py/client.py`: the SDK does all of OAuth itself, the script only plays the
//! person.

use crate::clients::scenarios::{Driver, cimd_test, client_tests};

client_tests!(Driver::Python2);
cimd_test!(Driver::Python2);
