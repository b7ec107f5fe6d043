//! Why a step failed: [`StepError`], what every step, the HTTP client and the run context
//! return.

use serde::Serialize;

/// Why a step failed: what went wrong (`message`) and the underlying cause (`cause`), e.g.
/// `HTTP 401 Unauthorized from POST https://…/elastickey: …` or `connection refused`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepError {
    /// What failed.
    pub message: String,
    /// Why, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

impl StepError {
    /// An error without a separate cause.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            cause: None,
        }
    }

    /// An error with its cause.
    pub fn with_cause(message: impl Into<String>, cause: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            cause: Some(cause.into()),
        }
    }

    /// Puts `message` in front: the cause stays, the old message joins it.
    #[must_use]
    pub fn context(self, message: impl Into<String>) -> Self {
        let cause = match self.cause {
            Some(cause) => format!("{}: {cause}", self.message),
            None => self.message,
        };
        Self::with_cause(message, cause)
    }
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.cause {
            Some(cause) => write!(f, "{}: {cause}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_keeps_the_original_cause() {
        let e =
            StepError::with_cause("HTTP 401", "bad password").context("demo-user cannot sign in");
        assert_eq!(e.message, "demo-user cannot sign in");
        assert_eq!(e.cause.as_deref(), Some("HTTP 401: bad password"));
    }
}
