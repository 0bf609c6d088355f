//! Whose library a request works on: the user's own, or a space they are a member of
//! (docs/protocol.md, "Spaces"). Owns the space id syntax, the space API root and its mapping
//! onto the per-user routes, and the [`Library`] every handler reads its keys from.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::{authenticate, User};
use crate::error::ApiError;
use crate::AppState;

/// The library a request works on. Every query, storage key, cursor and session is scoped
/// by `key`; responses' URLs start with `root`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Library {
    /// The database and storage key: the user id, or `space.<spaceId>` (user ids have no
    /// dot, so a space's key is never a user's).
    pub key: String,
    /// The member acting, in a space (`None` in a personal library: it is the key's user).
    pub by: Option<String>,
    /// The API root of this library: `<prefix>` or `<prefix>/spaces/<spaceId>`.
    pub root: String,
}

impl Library {
    /// `user`'s own library under the API prefix.
    pub fn personal(user: &User, prefix: &str) -> Self {
        Self { key: user.0.clone(), by: None, root: prefix.to_owned() }
    }

    /// Space `space` (a valid id), as `user` acts in it.
    pub fn space(space: &SpaceId, user: &User, prefix: &str) -> Self {
        Self { key: space_key(&space.0), by: Some(user.0.clone()), root: format!("{prefix}/spaces/{}", space.0) }
    }

    /// The acting member, for `updated_by` / `created_by` (`None` in a personal library).
    pub fn by(&self) -> Option<&str> {
        self.by.as_deref()
    }
}

/// The space a request addresses (put in its extensions by [`route`]'s caller).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpaceId(pub String);

/// A space id: 1-64 of `A-Z a-z 0-9 _ -` (a UUID, a board's slug), as sent: case-sensitive,
/// never percent-decoded.
pub fn valid_space_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The library key of a space.
pub fn space_key(space: &str) -> String {
    format!("space.{space}")
}

/// Where a request path goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// Not a space's media endpoint: routed as is.
    AsIs,
    /// `<prefix>/spaces/<id>/media/...`: served as `<prefix>/media/...` in space `id`.
    Space { id: SpaceId, path: String },
    /// `<prefix>/spaces/<bad>/media/...`: `400 INVALID_SPACE_ID`.
    BadId,
}

/// Maps a space's media path onto the per-user route it mirrors.
pub fn route(prefix: &str, path: &str) -> Route {
    let Some(rest) = path.strip_prefix(prefix).and_then(|r| r.strip_prefix("/spaces/")) else {
        return Route::AsIs;
    };
    let Some((id, tail)) = rest.split_once('/') else { return Route::AsIs };
    if !tail.starts_with("media/") {
        return Route::AsIs;
    }
    if !valid_space_id(id) {
        return Route::BadId;
    }
    Route::Space { id: SpaceId(id.to_owned()), path: format!("{prefix}/{tail}") }
}

/// The `spaces` object of capabilities: where a space's API root is, and its id syntax.
pub fn capabilities(prefix: &str) -> serde_json::Value {
    serde_json::json!({
        "root": format!("{prefix}/spaces/{{spaceId}}"),
        "idPattern": "^[A-Za-z0-9_-]{1,64}$",
        "updatedBy": true,
    })
}

/// `400 INVALID_SPACE_ID`.
pub fn bad_space_id() -> ApiError {
    ApiError::bad_request("INVALID_SPACE_ID", "space ids are 1-64 characters of A-Z a-z 0-9 _ -")
}

/// `403 NOT_A_MEMBER`: also the answer for a space that does not exist, so a non-member
/// cannot probe which spaces exist.
pub fn not_a_member() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::FORBIDDEN,
        "NOT_A_MEMBER",
        "you are not a member of this space (or it does not exist); ask its owner to add you",
    )
}

/// Middleware after the gate: a space's request goes on only for a member (checked in the
/// database on every request, so a removal holds at once on every instance), else
/// `403 NOT_A_MEMBER` with the body drained; the admitted [`Library`] goes into the extensions.
pub async fn admit(State(s): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(user) = req.extensions().get::<User>().cloned() else {
        return ApiError::unauthenticated("missing credentials").into_response();
    };
    let lib = match req.extensions().get::<SpaceId>().cloned() {
        None => Library::personal(&user, &s.api_prefix),
        Some(space) => match s.db.is_member(&space.0, &user.0).await {
            Ok(true) => Library::space(&space, &user, &s.api_prefix),
            Ok(false) => return refuse(req, not_a_member()).await,
            Err(e) => return refuse(req, e.into()).await,
        },
    };
    req.extensions_mut().insert(lib);
    next.run(req).await
}

/// Answers `e` after draining the request's body (an upload's), so the client can read it.
pub(crate) async fn refuse(req: Request, e: ApiError) -> Response {
    crate::body::drain(req.into_body()).await;
    e.into_response()
}

impl FromRequestParts<AppState> for Library {
    type Rejection = ApiError;

    /// The library the gate ([`crate::ratelimit::gate`]) admitted; else the user's own.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(l) = parts.extensions.get::<Library>() {
            return Ok(l.clone());
        }
        if parts.extensions.get::<SpaceId>().is_some() {
            // Never the user's own library for a space's request.
            return Err(not_a_member());
        }
        let user = match parts.extensions.get::<User>() {
            Some(u) => u.clone(),
            None => authenticate(&state.auth, &parts.headers)?,
        };
        Ok(Library::personal(&user, &state.api_prefix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn space_ids() {
        for ok in ["a", "board-1", "0190f0c2-7a0e-7cc0-8000-000000000001", "A_b", &"x".repeat(64)] {
            assert!(valid_space_id(ok), "{ok}");
        }
        for bad in ["", "a.b", "a b", "%41", "ä", "a/b", "..", &"x".repeat(65)] {
            assert!(!valid_space_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn space_keys_never_meet_user_ids() {
        assert!(!crate::auth::valid_user(&space_key("alice")));
    }

    #[test]
    fn routes() {
        let sp = |id: &str, path: &str| Route::Space { id: SpaceId(id.into()), path: path.into() };
        assert_eq!(route("/api", "/api/spaces/b1/media/assets"), sp("b1", "/api/media/assets"));
        assert_eq!(route("/api", "/api/spaces/b1/media/assets/x/metadata"), sp("b1", "/api/media/assets/x/metadata"));
        assert_eq!(route("/v2/s", "/v2/s/spaces/b1/media/changes"), sp("b1", "/v2/s/media/changes"));
        assert_eq!(route("/api", "/api/spaces/b.1/media/assets"), Route::BadId);
        assert_eq!(route("/api", "/api/spaces/%62/media/assets"), Route::BadId);
        assert_eq!(route("/api", "/api/spaces//media/assets"), Route::BadId);
        // Only media endpoints are mirrored: nothing else of the server is reachable this way.
        for as_is in [
            "/api/media/assets",
            "/api/spaces/b1",
            "/api/spaces/b1/admin/spaces",
            "/api/spaces/b1/mediax",
            "/x/spaces/b1/media/assets",
        ] {
            assert_eq!(route("/api", as_is), Route::AsIs, "{as_is}");
        }
    }
}
