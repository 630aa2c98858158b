//! The OpenAPI 3.1 description, generated from the handlers' annotations
//! (utoipa), and the API browser: Swagger UI, vendored in the binary
//! (`utoipa-swagger-ui`'s `vendored` feature: no download at build time, no
//! CDN at run time). Both need a session or a token.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use axum::{Json, Router};
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

use super::WebState;
use super::auth::Auth;

/// Pages of the API browser (what the route × role test asks for).
pub const BROWSER_ROUTES: &[&str] = &["/api/docs/", "/api/docs/swagger-initializer.js"];

#[derive(OpenApi)]
#[openapi(
    info(title = "huifang", description = "回访 — recorded client callbacks: the web API (v1). \
        Errors are RFC 9457 application/problem+json naming the field and the reason; lists are \
        paged by cursor (`next`)."),
    paths(
        super::system::healthz, super::system::readyz, super::system::metrics,
        super::session::login, super::session::whoami, super::session::logout,
        super::recordings::client_recordings, super::recordings::client_calls, super::recordings::audio, super::recordings::waveform,
        super::quality::queue, super::quality::check, super::quality::follow_ups, super::quality::step,
        super::recordings::call, super::export::client, super::export::call, super::clients::dossier, super::clients::reveal, super::clients::search, super::holds::list, super::holds::set, super::holds::release,
        super::audit::events, super::reports::verify, super::reports::get, super::reports::chart, super::tasks::list, super::tasks::mark, super::calls::place, super::calls::call_back,
        super::records::submit, super::records::list, super::records::get, super::records::review, super::agents::get,
        super::agents::change, super::agents::own, super::agents::own_state, super::agents::status, super::users::list, document,
    ),
    modifiers(&Security),
    security(("session" = []), ("token" = [])),
)]
struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let c = openapi.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(super::auth::COOKIE))),
        );
        c.add_security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The description as a value.
pub fn spec() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// This API's OpenAPI 3.1 description.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "system",
    responses((status = 200, description = "OpenAPI 3.1 JSON")))]
pub async fn document(_who: Auth) -> Json<utoipa::openapi::OpenApi> {
    Json(spec())
}

async fn require_person(_: Auth, req: Request, next: Next) -> Response {
    next.run(req).await
}

/// The API browser under `/api/docs/`, behind authentication.
pub fn browser(state: WebState) -> Router<WebState> {
    let ui = utoipa_swagger_ui::SwaggerUi::new("/api/docs")
        .config(utoipa_swagger_ui::Config::from("/api/v1/openapi.json"));
    Router::<WebState>::from(ui).layer(axum::middleware::from_fn_with_state(state, require_person))
}
