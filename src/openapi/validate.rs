//! A tool call's arguments checked against the tool's input schema (JSON Schema 2020-12) before
//! anything is sent, so a model hears what is wrong with its call and the API never sees it.

use jsonschema::{Draft, Retrieve, Uri, Validator};
use serde_json::{Map, Value};

/// A compiled input schema. Its references are all inside it (`#/$defs/...`, see `refs.rs`);
/// any other reference fails to compile rather than being fetched.
pub struct ArgumentValidator {
    validator: Validator,
}

impl std::fmt::Debug for ArgumentValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArgumentValidator").finish_non_exhaustive()
    }
}

/// Why arguments were refused: the JSON pointer of the failing value (empty for the arguments
/// object itself) and the validator's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", if path.is_empty() { "arguments" } else { path })]
pub struct InvalidArguments {
    pub path: String,
    pub message: String,
}

/// Refuses every retrieval: validating a tool call never reaches the network or the disk.
struct NoRetrieval;

impl Retrieve for NoRetrieval {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        Err(format!("external schema {uri} is not retrieved").into())
    }
}

impl ArgumentValidator {
    /// Compiles a tool's input schema (draft 2020-12; `$defs` inside it). `format` is asserted,
    /// so a malformed date or UUID is caught here rather than by the API.
    pub fn new(schema: &Map<String, Value>) -> Result<Self, String> {
        let schema = Value::Object(schema.clone());
        let validator = jsonschema::options()
            .with_draft(Draft::Draft202012)
            .with_retriever(NoRetrieval)
            .should_validate_formats(true)
            .build(&schema)
            .map_err(|e| e.to_string())?;
        Ok(Self { validator })
    }

    /// The first failure, with the JSON pointer of the failing value and why.
    pub fn validate(&self, arguments: &Value) -> Result<(), InvalidArguments> {
        match self.validator.iter_errors(arguments).next() {
            None => Ok(()),
            Some(error) => Err(InvalidArguments {
                path: error.instance_path().to_string(),
                message: error.to_string(),
            }),
        }
    }
}
