//! Lineage area: SQL ingestion (multipart upload and JSON), the ingested files, lineage walks and
//! search. The work happens in [`crate::knowledge`]; these handlers only read requests and shape
//! answers.

use axum::Json;
use axum::extract::multipart::MultipartError;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use serde::Deserialize;
use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaType, Type};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ErrorBody, FieldError};
use crate::http::AppState;
use crate::http::extract::{ApiJson, ApiQuery};
use crate::knowledge::{
    self, DEFAULT_PROJECT, FileList, FileStats, FileWarnings, IngestFile, IngestRequest, IngestionResult, LineageDirection, LineageGraph,
    MAX_LINEAGE_DEPTH, MAX_WARNINGS_PAGE, SearchResults,
};

/// The ingestion routes (their own body limit, `INGEST_MAX_REQUEST_BYTES`).
pub fn ingestion_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload_files))
        .routes(routes!(ingest_json))
        // The body limit middleware caps these routes at INGEST_MAX_REQUEST_BYTES already.
        .layer(DefaultBodyLimit::disable())
}

/// The read routes over the knowledge base.
pub fn query_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_files))
        .routes(routes!(file_stats))
        .routes(routes!(file_warnings))
        .routes(routes!(node_lineage))
        .routes(routes!(search))
}

/// Both.
pub fn router() -> OpenApiRouter<AppState> {
    ingestion_router().merge(query_router())
}

/// Every name `dialect` takes (case aside): `auto`, the dialects, and their aliases.
pub const DIALECTS: [&str; 21] = [
    "auto",
    "generic",
    "ansi",
    "postgresql",
    "postgres",
    "mysql",
    "mariadb",
    "tsql",
    "t-sql",
    "mssql",
    "sqlserver",
    "snowflake",
    "bigquery",
    "redshift",
    "sqlite",
    "duckdb",
    "hive",
    "databricks",
    "spark",
    "sparksql",
    "clickhouse",
];

/// `dialect` in the upload form: one of [`DIALECTS`].
fn dialect_schema() -> Object {
    dialect_names_schema(false)
}

/// `dialect` in JSON: one of [`DIALECTS`], or `null` for `auto`.
fn optional_dialect_schema() -> Object {
    dialect_names_schema(true)
}

fn dialect_names_schema(nullable: bool) -> Object {
    let mut names: Vec<serde_json::Value> = DIALECTS.iter().map(|name| (*name).into()).collect();
    let mut types = vec![Type::String];
    if nullable {
        names.push(serde_json::Value::Null);
        types.push(Type::Null);
    }
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter(types))
        .enum_values(Some(names))
        .description(Some("`auto` (default) or a dialect name"))
        .build()
}

/// The multipart form of `POST /api/v1/files/upload` (for the documentation; read field by field).
#[derive(Debug, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The SQL files (`files` or `files[]`, repeated): UTF-8 text without NUL bytes, not blank.
    /// Browsers send them as file parts; a part without a file name is named `upload-<n>.sql`.
    #[schema(
        min_items = 1,
        max_items = 500,
        pattern = r"^[^\u0000]*[^\u0000\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$"
    )]
    files: Vec<String>,
    /// The project the files belong to (default `default`).
    #[schema(nullable = false, pattern = "^[A-Za-z0-9_.-]{1,64}$")]
    project_id: Option<String>,
    #[schema(schema_with = dialect_schema)]
    dialect: Option<String>,
}

fn multipart_error(error: MultipartError) -> ApiError {
    if error.status() == http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::payload_too_large("the upload is larger than INGEST_MAX_REQUEST_BYTES")
    } else {
        ApiError::bad_request("malformed_multipart", format!("the upload is not a readable multipart form: {}", error.body_text()))
    }
}

/// Ingests uploaded SQL files. Every file is checked first (UTF-8 text, not empty, within the
/// size limit); one bad file refuses the request and nothing is stored. Statements that do not
/// parse are warnings on their file. The same content again is `skipped_duplicate`.
#[utoipa::path(
    post,
    path = "/api/v1/files/upload",
    tag = "lineage",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "What happened to each file", body = IngestionResult),
        (status = 400, description = "Not a multipart form", body = ErrorBody),
        (status = 413, description = "A file or the whole upload is too large", body = ErrorBody),
        (status = 422, description = "No files, an empty or binary file, a bad dialect or project", body = ErrorBody),
        (status = 503, description = "The store cannot answer", body = ErrorBody),
    )
)]
pub async fn upload_files(State(state): State<AppState>, mut form: Multipart) -> Result<Json<IngestionResult>, ApiError> {
    let mut request = IngestRequest { project_id: DEFAULT_PROJECT.to_owned(), dialect: "auto".to_owned(), files: Vec::new() };
    while let Some(field) = form.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "files" | "files[]" | "file" => {
                let filename = field.file_name().map(str::to_owned).unwrap_or_else(|| format!("upload-{}.sql", request.files.len() + 1));
                let content = field.bytes().await.map_err(multipart_error)?.to_vec();
                request.files.push(IngestFile { filename, content });
            }
            "project_id" => request.project_id = field.text().await.map_err(multipart_error)?.trim().to_owned(),
            "dialect" => request.dialect = field.text().await.map_err(multipart_error)?.trim().to_owned(),
            other => {
                return Err(ApiError::validation(vec![FieldError::new(
                    other.chars().take(64).collect::<String>(),
                    "unknown form field; send files, project_id and dialect",
                )]));
            }
        }
    }
    ingest_to_the_end(state, request).await
}

/// Runs an ingestion to its end even if the client goes away or the request times out: cutting a
/// store write halfway would leave work to undo (on DynamoDB, a pending claim).
async fn ingest_to_the_end(state: AppState, request: IngestRequest) -> Result<Json<IngestionResult>, ApiError> {
    let ingestion = tokio::spawn(async move { knowledge::ingest(&state, request).await });
    Ok(Json(ingestion.await.map_err(|error| ApiError::internal("ingestion", error))??))
}

/// A file sent as JSON.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonFile {
    /// At most 255 bytes; its last part (after any `/` or `\`, which are dropped) not blank and
    /// free of control characters (NUL, CR, LF, tab, C1).
    #[schema(
        max_length = 255,
        pattern = r"(?:^|[/\\])[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000/\\][^\u0000-\u001f\u007f-\u009f/\\]*$"
    )]
    pub filename: String,
    /// The SQL text: no NUL bytes, not blank.
    #[schema(pattern = r"^[^\u0000]*[^\u0000\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$")]
    pub content: String,
}

/// The body of `POST /api/v1/ingest`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IngestBody {
    /// Default `default`.
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,64}$")]
    pub project_id: Option<String>,
    #[schema(schema_with = optional_dialect_schema)]
    pub dialect: Option<String>,
    #[schema(min_items = 1, max_items = 500)]
    pub files: Vec<JsonFile>,
}

/// Ingests SQL sent as JSON; otherwise the same as the upload.
#[utoipa::path(
    post,
    path = "/api/v1/ingest",
    tag = "lineage",
    request_body = IngestBody,
    responses(
        (status = 200, description = "What happened to each file", body = IngestionResult),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 413, description = "A file or the whole body is too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "No files, an empty file, a bad dialect or project", body = ErrorBody),
        (status = 503, description = "The store cannot answer", body = ErrorBody),
    )
)]
pub async fn ingest_json(State(state): State<AppState>, ApiJson(body): ApiJson<IngestBody>) -> Result<Json<IngestionResult>, ApiError> {
    let request = IngestRequest {
        project_id: body.project_id.unwrap_or_else(|| DEFAULT_PROJECT.to_owned()),
        dialect: body.dialect.unwrap_or_else(|| "auto".to_owned()),
        files: body.files.into_iter().map(|file| IngestFile { filename: file.filename, content: file.content.into_bytes() }).collect(),
    };
    ingest_to_the_end(state, request).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FilesQuery {
    /// Only this project's files (default: every project).
    #[param(pattern = "^[A-Za-z0-9_.-]{1,64}$")]
    pub project_id: Option<String>,
    /// How many, newest first (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

/// Ingested files, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/files",
    tag = "lineage",
    params(FilesQuery),
    responses(
        (status = 200, body = FileList),
        (status = 422, description = "A parameter is out of range", body = ErrorBody),
    )
)]
pub async fn list_files(State(state): State<AppState>, ApiQuery(query): ApiQuery<FilesQuery>) -> Result<Json<FileList>, ApiError> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::validation(vec![FieldError::new("limit", "must be between 1 and 1000")]));
    }
    if let Some(project) = &query.project_id {
        knowledge::validate_project(project).map_err(|error| ApiError::validation(vec![error]))?;
    }
    Ok(Json(knowledge::list_files(&state, query.project_id.as_deref(), limit).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WarningsQuery {
    /// The file's project (default `default`).
    #[param(pattern = "^[A-Za-z0-9_.-]{1,64}$")]
    pub project_id: Option<String>,
    /// How many warnings to skip (default 0).
    #[param(minimum = 0)]
    pub offset: Option<u64>,
    /// How many to give (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

/// Every warning of an ingested file, a page at a time, in line order: a statement nothing could
/// read, with its line. (An ingestion's answer and the file listing carry the first 100, the total
/// and this route's path.)
#[utoipa::path(
    get,
    path = "/api/v1/files/{file_id}/warnings",
    tag = "lineage",
    params(
        ("file_id" = String, Path, description = "The file's id (`file_id` in an ingestion's results, `id` in the file listing)", pattern = "^[A-Za-z0-9_.-]{1,128}$"),
        WarningsQuery
    ),
    responses(
        (status = 200, body = FileWarnings),
        (status = 404, description = "The project holds no such file", body = ErrorBody),
        (status = 422, description = "A parameter is out of range", body = ErrorBody),
        (status = 503, description = "The store cannot answer", body = ErrorBody),
    )
)]
pub async fn file_warnings(
    State(state): State<AppState>,
    Path(file_id): Path<String>,
    ApiQuery(query): ApiQuery<WarningsQuery>,
) -> Result<Json<FileWarnings>, ApiError> {
    let mut errors = Vec::new();
    if let Err(error) = knowledge::validate_file_id(&file_id) {
        errors.push(error);
    }
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_WARNINGS_PAGE).contains(&limit) {
        errors.push(FieldError::new("limit", format!("must be between 1 and {MAX_WARNINGS_PAGE}")));
    }
    let project = query.project_id.unwrap_or_else(|| DEFAULT_PROJECT.to_owned());
    if let Err(error) = knowledge::validate_project(&project) {
        errors.push(error);
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let offset = query.offset.unwrap_or(0);
    match knowledge::file_warnings(&state, &project, &file_id, offset, limit).await? {
        Some(page) => Ok(Json(page)),
        None => Err(ApiError::not_found(format!("no file {file_id:?} in project {project:?}"))
            .with_hint(format!("GET /api/v1/files?project_id={project} lists the project's files with their ids"))),
    }
}

/// Totals over the ingested files.
#[utoipa::path(
    get,
    path = "/api/v1/files/stats",
    tag = "lineage",
    responses((status = 200, body = FileStats))
)]
pub async fn file_stats(State(state): State<AppState>) -> Result<Json<FileStats>, ApiError> {
    Ok(Json(knowledge::file_stats(&state).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LineageQuery {
    /// `upstream` (what it reads from), `downstream` (what reads from it) or `both` (default).
    pub direction: Option<LineageDirection>,
    /// Steps to walk (1 to 20, default 3).
    #[param(minimum = 1, maximum = 20)]
    pub depth: Option<u32>,
    /// Default `default`.
    #[param(pattern = "^[A-Za-z0-9_.-]{1,64}$")]
    pub project_id: Option<String>,
}

/// The lineage of a node: the subgraph reached by walking data-flow edges (`READS_FROM`,
/// `DERIVES`, `CALLS`) from it. `{node}` is a node id (`staging.orders`, `staging.orders#amount`)
/// or a name (case, quotes and a missing schema are tolerated).
#[utoipa::path(
    get,
    path = "/api/v1/lineage/{node}",
    tag = "lineage",
    params(("node" = String, Path, description = "A node id or name"), LineageQuery),
    responses(
        (status = 200, body = LineageGraph),
        (status = 404, description = "No such node (the closest names are in `hint`)", body = ErrorBody),
        (status = 422, description = "A parameter is out of range", body = ErrorBody),
    )
)]
pub async fn node_lineage(
    State(state): State<AppState>,
    Path(node): Path<String>,
    ApiQuery(query): ApiQuery<LineageQuery>,
) -> Result<Json<LineageGraph>, ApiError> {
    let depth = query.depth.unwrap_or(3);
    if !(1..=MAX_LINEAGE_DEPTH).contains(&depth) {
        return Err(ApiError::validation(vec![FieldError::new("depth", format!("must be between 1 and {MAX_LINEAGE_DEPTH}"))]));
    }
    let project = query.project_id.unwrap_or_else(|| DEFAULT_PROJECT.to_owned());
    knowledge::validate_project(&project).map_err(|error| ApiError::validation(vec![error]))?;
    Ok(Json(knowledge::lineage(&state, &project, &node, query.direction.unwrap_or_default(), depth).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// What to look for (1 to 500 characters, not blank); identifiers match by their parts too.
    #[param(
        min_length = 1,
        max_length = 500,
        pattern = r"[^\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub q: String,
    /// Default `default`.
    #[param(pattern = "^[A-Za-z0-9_.-]{1,64}$")]
    pub project_id: Option<String>,
    /// How many results (1 to 100, default 10).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<usize>,
}

/// Ranked full-text search (BM25) over the project's SQL statements.
#[utoipa::path(
    get,
    path = "/api/v1/search",
    tag = "lineage",
    params(SearchQuery),
    responses(
        (status = 200, body = SearchResults),
        (status = 422, description = "An empty query or a parameter out of range", body = ErrorBody),
    )
)]
pub async fn search(State(state): State<AppState>, ApiQuery(query): ApiQuery<SearchQuery>) -> Result<Json<SearchResults>, ApiError> {
    let text = query.q.trim();
    if text.is_empty() || text.chars().count() > 500 {
        return Err(ApiError::validation(vec![FieldError::new("q", "must be 1 to 500 characters")]));
    }
    let limit = query.limit.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::validation(vec![FieldError::new("limit", "must be between 1 and 100")]));
    }
    let project = query.project_id.unwrap_or_else(|| DEFAULT_PROJECT.to_owned());
    knowledge::validate_project(&project).map_err(|error| ApiError::validation(vec![error]))?;
    Ok(Json(knowledge::search(&state, &project, text, limit).await?))
}
