//! Demo orchestration: `cryptoutil demo kms|identity|all`.
