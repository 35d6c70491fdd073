//! Windows Filtering Platform objects (provider, sublayer, filters).
