//! Validation of requests against the providers' official OpenAPI documents.
//! Under construction.
