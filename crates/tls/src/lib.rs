//! TLS: demo CA chains, leaf certificates, TLS 1.3-only rustls configs and certificate reload.
