//! JOSE: JWK, JWS, JWE and JWA on aws-lc-rs primitives. No HTTP, no database.
