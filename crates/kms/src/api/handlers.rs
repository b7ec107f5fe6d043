//! Thin HTTP handlers: parse, call the key service, shape the response. Each is documented for the
//! OpenAPI document with `#[utoipa::path]`; paths are relative to a surface (`/service/api/v1`,
//! `/browser/api/v1`).

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cryptoutil_server::{ApiJson, Problem};
use uuid::Uuid;

use super::dto::{
    CompactJose, CreateElasticKey, ElasticKeyView, GeneratedKeyView, List, MaterialKeyView,
    RawBytes, UpdateElasticKey,
};
use super::query::Params;
use super::{ApiState, Caller};
use crate::ids::parse_uuid;
use crate::keys::{ElasticKeyUpdate, NewElasticKey};

/// Media type of compact JWS/JWE bodies (RFC 7515/7516 §9).
pub const APPLICATION_JOSE: &str = "application/jose";
/// Media type of raw bytes.
pub const OCTET_STREAM: &str = "application/octet-stream";

const TAG_KEYS: &str = "elastic keys";
const TAG_MATERIAL: &str = "material keys";
const TAG_CRYPTO: &str = "crypto";

fn id(text: &str, what: &str) -> Result<Uuid, Problem> {
    parse_uuid(text)
        .ok_or_else(|| Problem::bad_request(format!("{what} must be a canonical lowercase UUID")))
}

fn utf8(body: &Bytes, what: &str) -> Result<String, Problem> {
    std::str::from_utf8(body)
        .map(|s| s.trim().to_owned())
        .map_err(|_| Problem::bad_request(format!("the body must be a {what} (UTF-8 text)")))
}

fn bytes(body: Vec<u8>, media_type: &'static str) -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(media_type))],
        body,
    )
        .into_response()
}

fn created(location: String, body: impl IntoResponse) -> Response {
    let mut response = (StatusCode::CREATED, body).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// Create an elastic key and its first material key.
#[utoipa::path(post, path = "/elastickey", tag = TAG_KEYS, request_body = CreateElasticKey,
    responses((status = 201, description = "Created", body = ElasticKeyView),
              (status = 400, description = "Invalid input"), (status = 409, description = "Name already used")))]
pub async fn create_elastic_key(
    State(state): State<ApiState>,
    Caller(who): Caller,
    ApiJson(body): ApiJson<CreateElasticKey>,
) -> Result<Response, Problem> {
    let key = state
        .keys
        .create(
            &who,
            NewElasticKey {
                name: body.name,
                description: body.description,
                algorithm: body.algorithm,
                versioning_allowed: body.versioning_allowed,
                import_allowed: body.import_allowed,
                export_allowed: body.export_allowed,
            },
        )
        .await?;
    let location = format!("elastickey/{}", key.id);
    Ok(created(location, ApiJson(ElasticKeyView::from(key))))
}

/// Read an elastic key.
#[utoipa::path(get, path = "/elastickey/{id}", tag = TAG_KEYS,
    params(("id" = Uuid, Path, description = "Elastic key id")),
    responses((status = 200, body = ElasticKeyView), (status = 404, description = "Not found")))]
pub async fn get_elastic_key(
    State(state): State<ApiState>,
    Caller(who): Caller,
    Path(key_id): Path<String>,
) -> Result<ApiJson<ElasticKeyView>, Problem> {
    let key = state.keys.get(&who, id(&key_id, "id")?).await?;
    Ok(ApiJson(key.into()))
}

/// List elastic keys with filters, sorting and paging.
#[utoipa::path(get, path = "/elastickeys", tag = TAG_KEYS,
    params(
        ("ids" = Option<String>, Query, description = "Comma-separated ids"),
        ("names" = Option<String>, Query, description = "Exact name; repeat for several"),
        ("algorithms" = Option<String>, Query, description = "Comma-separated algorithms"),
        ("status" = Option<String>, Query, description = "Comma-separated statuses"),
        ("versioning_allowed" = Option<bool>, Query, description = "Flag filter"),
        ("import_allowed" = Option<bool>, Query, description = "Flag filter"),
        ("export_allowed" = Option<bool>, Query, description = "Flag filter"),
        ("sort" = Option<String>, Query, description = "name|algorithm|status|created_at|updated_at, optionally :asc or :desc"),
        ("page" = Option<u32>, Query, minimum = 0, description = "0-based page"),
        ("size" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "1–1000, default 25")),
    responses((status = 200, body = List<ElasticKeyView>), (status = 400, description = "Invalid query")))]
pub async fn list_elastic_keys(
    State(state): State<ApiState>,
    Caller(who): Caller,
    RawQuery(query): RawQuery,
) -> Result<ApiJson<List<ElasticKeyView>>, Problem> {
    let (filter, sort, page) = super::query::elastic_key_list(query.as_deref())?;
    let page = state.keys.list(&who, &filter, sort, page).await?;
    Ok(ApiJson(List::from_page(page)))
}

/// Update an elastic key's description or status.
#[utoipa::path(put, path = "/elastickey/{id}", tag = TAG_KEYS, request_body = UpdateElasticKey,
    params(("id" = Uuid, Path, description = "Elastic key id")),
    responses((status = 200, body = ElasticKeyView), (status = 400, description = "Invalid input"),
              (status = 404, description = "Not found"), (status = 409, description = "Purged")))]
pub async fn update_elastic_key(
    State(state): State<ApiState>,
    Caller(who): Caller,
    Path(key_id): Path<String>,
    ApiJson(body): ApiJson<UpdateElasticKey>,
) -> Result<ApiJson<ElasticKeyView>, Problem> {
    let change = ElasticKeyUpdate {
        description: body.description,
        status: body.status.map(Into::into),
    };
    let key = state.keys.update(&who, id(&key_id, "id")?, change).await?;
    Ok(ApiJson(key.into()))
}

/// Schedule an elastic key's deletion (restorable with PUT until purged).
#[utoipa::path(delete, path = "/elastickey/{id}", tag = TAG_KEYS,
    params(("id" = Uuid, Path, description = "Elastic key id")),
    responses((status = 200, body = ElasticKeyView), (status = 404, description = "Not found")))]
pub async fn delete_elastic_key(
    State(state): State<ApiState>,
    Caller(who): Caller,
    Path(key_id): Path<String>,
) -> Result<ApiJson<ElasticKeyView>, Problem> {
    let key = state.keys.delete(&who, id(&key_id, "id")?).await?;
    Ok(ApiJson(key.into()))
}

/// Rotate: add a generated material key version.
#[utoipa::path(post, path = "/elastickey/{id}/materialkey", tag = TAG_MATERIAL,
    params(("id" = Uuid, Path, description = "Elastic key id")),
    responses((status = 201, body = MaterialKeyView), (status = 404, description = "Not found"),
              (status = 409, description = "Versioning not allowed or key not active")))]
pub async fn rotate_material_key(
    State(state): State<ApiState>,
    Caller(who): Caller,
    Path(key_id): Path<String>,
) -> Result<Response, Problem> {
    let key_id = id(&key_id, "id")?;
    let material = state.keys.rotate(&who, key_id).await?;
    let location = format!("elastickey/{key_id}/materialkey/{}", material.id);
    Ok(created(location, ApiJson(MaterialKeyView::from(material))))
}

/// Import caller-supplied key material (a private JWK) as a new version.
#[utoipa::path(post, path = "/elastickey/{id}/import", tag = TAG_MATERIAL,
    params(("id" = Uuid, Path, description = "Elastic key id")),
    request_body(content = Object, content_type = "application/json", description = "Private JWK"),
    responses((status = 201, body = MaterialKeyView), (status = 400, description = "Unusable JWK"),
              (status = 409, description = "Import not allowed or key not active")))]
pub async fn import_material_key(
    State(state): State<ApiState>,
    Caller(who): Caller,
    Path(key_id): Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    let key_id = id(&key_id, "id")?;
    let jwk = zeroize::Zeroizing::new(utf8(&body, "JWK")?);
    let material = state.keys.import(&who, key_id, &jwk).await?;
    let location = format!("elastickey/{key_id}/materialkey/{}", material.id);
    Ok(created(location, ApiJson(MaterialKeyView::from(material))))
}

/// Read one material key (metadata and public JWK only).
#[utoipa::path(get, path = "/elastickey/{id}/materialkey/{mid}", tag = TAG_MATERIAL,
    params(("id" = Uuid, Path, description = "Elastic key id"), ("mid" = Uuid, Path, description = "Material key id")),
    responses((status = 200, body = MaterialKeyView), (status = 404, description = "Not found")))]
pub async fn get_material_key(
    State(state): State<ApiState>,
    Caller(who): Caller,
    Path((key_id, material_id)): Path<(String, String)>,
) -> Result<ApiJson<MaterialKeyView>, Problem> {
    let material = state
        .keys
        .material_key(&who, id(&key_id, "id")?, id(&material_id, "mid")?)
        .await?;
    Ok(ApiJson(material.into()))
}

/// List an elastic key's material keys, newest first.
#[utoipa::path(get, path = "/elastickey/{id}/materialkeys", tag = TAG_MATERIAL,
    params(("id" = Uuid, Path, description = "Elastic key id"),
           ("page" = Option<u32>, Query, minimum = 0, description = "0-based page"),
           ("size" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "1–1000, default 25")),
    responses((status = 200, body = List<MaterialKeyView>), (status = 404, description = "Not found")))]
pub async fn list_material_keys_of(
    State(state): State<ApiState>,
    Caller(who): Caller,
    Path(key_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<ApiJson<List<MaterialKeyView>>, Problem> {
    let page = Params::parse(query.as_deref(), &["page", "size"])?.page()?;
    let list = state
        .keys
        .material_keys(&who, Some(id(&key_id, "id")?), page)
        .await?;
    Ok(ApiJson(List::from_page(list)))
}

/// List every material key of the tenant, newest first.
#[utoipa::path(get, path = "/materialkeys", tag = TAG_MATERIAL,
    params(("page" = Option<u32>, Query, minimum = 0, description = "0-based page"),
           ("size" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "1–1000, default 25")),
    responses((status = 200, body = List<MaterialKeyView>)))]
pub async fn list_material_keys(
    State(state): State<ApiState>,
    Caller(who): Caller,
    RawQuery(query): RawQuery,
) -> Result<ApiJson<List<MaterialKeyView>>, Problem> {
    let page = Params::parse(query.as_deref(), &["page", "size"])?.page()?;
    let list = state.keys.material_keys(&who, None, page).await?;
    Ok(ApiJson(List::from_page(list)))
}

/// Encrypt the body with the newest material key; returns a compact JWE.
#[utoipa::path(post, path = "/elastickey/{id}/encrypt", tag = TAG_CRYPTO,
    params(("id" = Uuid, Path, description = "Elastic key id"),
           ("context" = Option<String>, Query, description = "Bound as additional authenticated data; decrypt needs the same")),
    request_body(content = inline(RawBytes), content_type = "application/octet-stream", description = "Plaintext"),
    responses((status = 200, description = "Compact JWE", body = inline(CompactJose), content_type = "application/jose"),
              (status = 409, description = "Not an active encryption key")))]
pub async fn encrypt(
    State(state): State<ApiState>,
    Caller(who): Caller,
    Path(key_id): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, Problem> {
    let params = Params::parse(query.as_deref(), &["context"])?;
    let jwe = state
        .keys
        .encrypt(&who, id(&key_id, "id")?, &body, params.one("context")?)
        .await?;
    Ok(bytes(jwe.into_bytes(), APPLICATION_JOSE))
}

/// Decrypt a compact JWE made with any version of this elastic key.
#[utoipa::path(post, path = "/elastickey/{id}/decrypt", tag = TAG_CRYPTO,
    params(("id" = Uuid, Path, description = "Elastic key id"),
           ("context" = Option<String>, Query, description = "The context given at encryption")),
    request_body(content = inline(CompactJose), content_type = "application/jose", description = "Compact JWE"),
    responses((status = 200, description = "Plaintext", body = inline(RawBytes), content_type = "application/octet-stream"),
              (status = 400, description = "Does not decrypt, wrong context, or malformed"),
              (status = 409, description = "Not an encryption key, or the key is pending deletion")))]
pub async fn decrypt(
    State(state): State<ApiState>,
    Caller(who): Caller,
    Path(key_id): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, Problem> {
    let params = Params::parse(query.as_deref(), &["context"])?;
    let token = utf8(&body, "compact JWE")?;
    let plaintext = state
        .keys
        .decrypt(&who, id(&key_id, "id")?, &token, params.one("context")?)
        .await?;
    Ok(bytes(plaintext.to_vec(), OCTET_STREAM))
}

/// Sign the body with the newest material key; returns a compact JWS.
#[utoipa::path(post, path = "/elastickey/{id}/sign", tag = TAG_CRYPTO,
    params(("id" = Uuid, Path, description = "Elastic key id")),
    request_body(content = inline(RawBytes), content_type = "application/octet-stream", description = "Payload"),
    responses((status = 200, description = "Compact JWS", body = inline(CompactJose), content_type = "application/jose"),
              (status = 409, description = "Not an active signing key")))]
pub async fn sign(
    State(state): State<ApiState>,
    Caller(who): Caller,
    Path(key_id): Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    let jws = state.keys.sign(&who, id(&key_id, "id")?, &body).await?;
    Ok(bytes(jws.into_bytes(), APPLICATION_JOSE))
}

/// Verify a compact JWS; returns its payload.
#[utoipa::path(post, path = "/elastickey/{id}/verify", tag = TAG_CRYPTO,
    params(("id" = Uuid, Path, description = "Elastic key id")),
    request_body(content = inline(CompactJose), content_type = "application/jose", description = "Compact JWS"),
    responses((status = 200, description = "Payload", body = inline(RawBytes), content_type = "application/octet-stream"),
              (status = 400, description = "invalid_signature or malformed"),
              (status = 409, description = "Not a signing key, or the key is pending deletion")))]
pub async fn verify(
    State(state): State<ApiState>,
    Caller(who): Caller,
    Path(key_id): Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    let token = utf8(&body, "compact JWS")?;
    let payload = state.keys.verify(&who, id(&key_id, "id")?, &token).await?;
    Ok(bytes(payload, OCTET_STREAM))
}

/// Generate a data key, returned encrypted under the elastic key (and in clear on request).
#[utoipa::path(post, path = "/elastickey/{id}/generate", tag = TAG_CRYPTO,
    params(("id" = Uuid, Path, description = "Elastic key id"),
           ("alg" = String, Query, pattern = r"^(oct/(128|192|256|384|512)|RSA/(2048|3072|4096)|EC/P(256|384|521)|OKP/Ed25519)$",
            description = "oct/128…512, RSA/2048…4096, EC/P256…P521, OKP/Ed25519"),
           ("context" = Option<String>, Query, description = "Bound as additional authenticated data"),
           ("include_plaintext" = Option<bool>, Query, description = "Also return the clear JWK")),
    responses((status = 200, body = GeneratedKeyView), (status = 400, description = "Unknown alg"),
              (status = 409, description = "Not an active encryption key")))]
pub async fn generate(
    State(state): State<ApiState>,
    Caller(who): Caller,
    Path(key_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<ApiJson<GeneratedKeyView>, Problem> {
    let params = Params::parse(query.as_deref(), &["alg", "context", "include_plaintext"])?;
    let kind = params
        .one("alg")?
        .ok_or_else(|| Problem::bad_request("the alg query parameter is required"))?;
    let include = params.flag("include_plaintext")?.unwrap_or(false);
    let generated = state
        .keys
        .generate(
            &who,
            id(&key_id, "id")?,
            kind,
            params.one("context")?,
            include,
        )
        .await?;
    let jwk = match &generated.jwk {
        Some(text) => Some(serde_json::from_str(text).map_err(|_| Problem::internal())?),
        None => None,
    };
    Ok(ApiJson(GeneratedKeyView {
        encrypted_jwk: generated.encrypted_jwk,
        jwk,
    }))
}
