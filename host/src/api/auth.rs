//! `Authorization: Bearer <key>`: storefront secret keys and admin keys.

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;

use super::error::ApiError;
use super::AppState;
use crate::crypto::hash_api_key;

/// The merchant a storefront secret key belongs to.
#[derive(Debug, Clone)]
pub struct Merchant {
    pub id: String,
}

/// A request made with an admin key.
#[derive(Debug, Clone)]
pub struct Admin;

fn bearer(req: &HttpRequest) -> Result<String, ApiError> {
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .ok_or_else(|| {
            ApiError::unauthorized(
                "missing Authorization header: use `Authorization: Bearer <secret key>`",
            )
        })?;
    let value = header
        .to_str()
        .map_err(|_| ApiError::unauthorized("malformed Authorization header"))?;
    let key = value
        .strip_prefix("Bearer ")
        .ok_or_else(|| {
            ApiError::unauthorized("the Authorization header must be `Bearer <secret key>`")
        })?
        .trim();
    if key.is_empty() || key.len() > 256 {
        return Err(ApiError::unauthorized("invalid API key"));
    }
    Ok(key.to_string())
}

async fn lookup(req: HttpRequest, wanted: &'static str) -> Result<Option<String>, ApiError> {
    let key = bearer(&req)?;
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(ApiError::internal)?
        .clone();
    let record = state
        .payments
        .store()
        .find_api_key_by_hash(&hash_api_key(&key))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "API key lookup failed");
            ApiError::internal()
        })?;
    match record {
        Some(k) if k.kind == wanted => Ok(k.merchant_id),
        // Never say whether the key exists with another role.
        _ => Err(ApiError::unauthorized("invalid API key")),
    }
}

impl FromRequest for Merchant {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            match lookup(req, "secret").await? {
                Some(id) => Ok(Merchant { id }),
                None => Err(ApiError::unauthorized("invalid API key")),
            }
        })
    }
}

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            lookup(req, "admin").await?;
            Ok(Admin)
        })
    }
}
