//! Identity: OAuth 2.1 authorization server, OpenID Connect provider pages, sample resource server.
//!
//! Today this crate holds the Identity and resource-server configuration; the services are built
//! in the Identity issues.

pub mod config;
