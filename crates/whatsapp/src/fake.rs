//! The fake Graph API server.
