//! elspeth facade
