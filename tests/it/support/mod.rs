//! What the integration tests share: fresh databases, the test IdP, the running app.

pub mod app;
pub mod db;
pub mod everything;
pub mod idp;
pub mod sdk;
