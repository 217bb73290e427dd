//! The Graph API client.
