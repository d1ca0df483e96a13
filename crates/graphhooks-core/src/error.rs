//! Validation errors of the domain. Every variant carries the words a user needs to fix the
//! input; the server maps them to Graph or operator error bodies in one place.

use thiserror::Error;

/// Why a domain value was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CoreError {
    /// A parameter had the wrong form; the message names it.
    #[error("{0}")]
    Invalid(String),
    /// The object type is not in the catalog.
    #[error("unknown object type `{0}`")]
    UnknownObjectType(String),
    /// The field is not declared on the object type.
    #[error("unknown field `{field}` for object type `{object_type}`")]
    UnknownField {
        /// The object type that was named.
        object_type: String,
        /// The field that is not declared on it.
        field: String,
    },
}

impl CoreError {
    /// Shorthand for [`CoreError::Invalid`].
    pub fn invalid(message: impl Into<String>) -> Self {
        CoreError::Invalid(message.into())
    }
}
