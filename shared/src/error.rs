//! The domain's error type: what went wrong, in words a client can act on.
//!
//! The HTTP layer maps each variant to one status in one place (`http::error`).
//! Must not depend on: the web framework.

use crate::ports::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No or bad credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// Authenticated, but not allowed.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The request is malformed or fails validation.
    #[error("{0}")]
    BadRequest(String),
    /// The request conflicts with the current state (duplicate, in use).
    #[error("{0}")]
    Conflict(String),
    /// The resource existed but is gone for good (expired invitation).
    #[error("{0}")]
    Gone(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The client did not send the request in time.
    #[error("{0}")]
    Timeout(String),
    /// The store is busy; the client may retry.
    #[error("service busy, try again")]
    Unavailable(String),
    /// A bug or an engine failure. The message is logged, never shown.
    #[error("internal error")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Busy(m) => Error::Unavailable(m),
            other => Error::Internal(other.to_string()),
        }
    }
}

impl Error {
    pub fn not_found() -> Self {
        Error::NotFound("Not found.".into())
    }
    pub fn forbidden() -> Self {
        Error::Forbidden("You do not have permission to perform this action.".into())
    }
    pub fn bad(msg: impl Into<String>) -> Self {
        Error::BadRequest(msg.into())
    }
    /// What went wrong in full, for logs and for errors that carry it on (an internal error's
    /// `Display` is the generic text its callers see, not its detail).
    pub fn detail(self) -> String {
        match self {
            Error::Internal(m) => m,
            e => e.to_string(),
        }
    }
}
