//! Webhook bodies parsed into typed updates.
