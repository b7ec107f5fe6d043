//! Identity: OAuth 2.1 authorization server, OpenID Connect provider pages, sample resource server.
