//! The admin API the app's backend manages space membership with (docs/server.md, "Spaces"):
//! `<prefix>/admin/spaces/<spaceId>/members[/<userId>]`, authenticated by the admin secret.
//! Not part of the sync protocol: clients never call it.

use axum::extract::{FromRequestParts, Path, State};
use axum::http::{header, request::Parts, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use crate::auth::valid_user;
use crate::error::ApiError;
use crate::library::{bad_space_id, valid_space_id};
use crate::{now_ms, AppState};

/// Whether `presented` is the admin secret, in time independent of where they differ.
pub fn secret_matches(secret: &[u8], presented: &[u8]) -> bool {
    let tag = |key: &[u8]| {
        let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
        m.update(b"opfs-media admin secret");
        m
    };
    let want = tag(secret).finalize().into_bytes();
    !presented.is_empty() && tag(presented).verify_slice(&want).is_ok()
}

/// A request that carried `Authorization: Bearer <admin secret>`.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Self::Rejection> {
        let secret = s.admin_secret.as_deref().ok_or_else(ApiError::not_found)?;
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim());
        match presented {
            Some(t) if secret_matches(secret, t.as_bytes()) => Ok(Admin),
            _ => Err(ApiError::unauthenticated("the admin API takes `Authorization: Bearer <admin secret>`")),
        }
    }
}

fn checked(space: &str, user: Option<&str>) -> Result<(), ApiError> {
    if !valid_space_id(space) {
        return Err(bad_space_id());
    }
    if user.is_some_and(|u| !valid_user(u)) {
        return Err(ApiError::bad_request("INVALID_USER_ID", "user ids are 1-64 characters of A-Z a-z 0-9 _ -"));
    }
    Ok(())
}

/// `GET <prefix>/admin/spaces/:space/members`.
pub async fn list(State(s): State<AppState>, _: Admin, Path(space): Path<String>) -> Result<Response, ApiError> {
    checked(&space, None)?;
    let members = s.db.members(&space).await?;
    let members: Vec<_> = members.iter().map(|m| json!({ "userId": m.user_id, "addedAt": m.added_at })).collect();
    Ok(Json(json!({ "spaceId": space, "members": members })).into_response())
}

/// `PUT <prefix>/admin/spaces/:space/members/:user`: 201 added, 200 a member already.
pub async fn add(
    State(s): State<AppState>,
    _: Admin,
    Path((space, user)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    checked(&space, Some(&user))?;
    let added = s.db.add_member(&space, &user, now_ms()).await?;
    let status = if added { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(json!({ "spaceId": space, "userId": user }))).into_response())
}

/// `DELETE <prefix>/admin/spaces/:space/members/:user`: 204, member or not. The next request
/// of theirs to the space, on any instance, is `403 NOT_A_MEMBER`.
pub async fn remove(
    State(s): State<AppState>,
    _: Admin,
    Path((space, user)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    checked(&space, Some(&user))?;
    s.db.remove_member(&space, &user).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::secret_matches;

    #[test]
    fn only_the_secret_itself_matches() {
        assert!(secret_matches(b"s3cret-admin", b"s3cret-admin"));
        for other in [&b""[..], b"s3cret-admi", b"s3cret-admin ", b"S3CRET-ADMIN", b"dev:alice"] {
            assert!(!secret_matches(b"s3cret-admin", other), "{other:?}");
        }
    }
}
