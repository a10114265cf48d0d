//! The local AWS stand-ins: the DynamoDB-compatible server `scripts/test` starts (its address in
//! `TRIBUTARY_TEST_DYNAMODB_ENDPOINT`), and the settings that point a binary at it.

/// The local DynamoDB-compatible server's address.
pub fn dynamodb_endpoint() -> String {
    std::env::var("TRIBUTARY_TEST_DYNAMODB_ENDPOINT")
        .expect("TRIBUTARY_TEST_DYNAMODB_ENDPOINT is not set: run the tests with scripts/test, which starts a local DynamoDB server")
}

/// A table name no other test uses.
pub fn fresh_table() -> String {
    format!("test-{}", uuid::Uuid::new_v4().simple())
}

/// Dummy credentials and a region: the local servers check neither.
pub fn credentials_env() -> Vec<(String, String)> {
    [("AWS_REGION", "us-east-1"), ("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"), ("AWS_EC2_METADATA_DISABLED", "true")]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}

/// The environment of a binary on the DynamoDB backend, on `table` (created if missing).
pub fn dynamodb_env(table: &str) -> Vec<(String, String)> {
    let mut env = credentials_env();
    env.extend(
        [
            ("TRIBUTARY_STORE", "dynamodb".to_owned()),
            ("TRIBUTARY_TABLE", table.to_owned()),
            ("TRIBUTARY_CREATE_TABLE", "true".to_owned()),
            ("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_endpoint()),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value)),
    );
    env
}

/// Creates a secret on the local server (Secrets Manager's JSON protocol); returns its ARN.
pub async fn create_secret(name: &str, value: &str) -> String {
    let response = reqwest::Client::new()
        .post(dynamodb_endpoint())
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "secretsmanager.CreateSecret")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(serde_json::json!({ "Name": name, "SecretString": value }).to_string())
        .send()
        .await
        .expect("creating a secret on the local server");
    let body: serde_json::Value = response.json().await.unwrap();
    body["ARN"].as_str().unwrap_or_else(|| panic!("no ARN in {body}")).to_owned()
}
