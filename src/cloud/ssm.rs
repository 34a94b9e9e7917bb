//! `ParamStore` on SSM Parameter Store (aws-sdk-ssm): GetParametersByPath recursive with
//! decryption over all pages; PutParameter for `ssm put`. SDK types stay here; SDK errors
//! become `ParamError`s naming the operation, the path and AWS's code and message (never
//! parameter values or credentials).

use super::{ParamError, ParamStore};
use async_trait::async_trait;
use aws_sdk_ssm::config::http::HttpResponse;
use aws_sdk_ssm::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ssm::types::ParameterType;

/// GetParametersByPath page size (AWS maximum; 11 is a ValidationException).
const PAGE_SIZE: i32 = 10;

/// SSM Parameter Store through the AWS SDK.
#[derive(Clone, Debug)]
pub struct SsmStore {
    client: aws_sdk_ssm::Client,
}

impl SsmStore {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        SsmStore { client: aws_sdk_ssm::Client::new(sdk) }
    }
}

/// `/a/b/` -> `/a/b` (SSM paths have no trailing slash); `/` stays.
fn normalize_path(prefix: &str) -> String {
    match prefix.trim().trim_end_matches('/') {
        "" => "/".to_string(),
        trimmed => trimmed.to_string(),
    }
}

#[async_trait]
impl ParamStore for SsmStore {
    async fn get_tree(&self, prefix: &str) -> Result<Vec<(String, String)>, ParamError> {
        const OPERATION: &str = "GetParametersByPath";
        let path = normalize_path(prefix);
        let mut params = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            let page = self
                .client
                .get_parameters_by_path()
                .path(&path)
                .recursive(true)
                .with_decryption(true)
                .max_results(PAGE_SIZE)
                .set_next_token(next_token.take())
                .send()
                .await
                .map_err(|e| param_error(OPERATION, &path, e))?;
            for parameter in page.parameters() {
                if let Some(name) = parameter.name() {
                    params.push((name.to_string(), parameter.value().unwrap_or_default().to_string()));
                }
            }
            match page.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_string()),
                _ => break,
            }
        }
        Ok(params)
    }

    async fn put(&self, name: &str, value: &str, secure: bool) -> Result<(), ParamError> {
        const OPERATION: &str = "PutParameter";
        let kind = if secure { ParameterType::SecureString } else { ParameterType::String };
        self.client
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(kind)
            .overwrite(true)
            .send()
            .await
            .map_err(|e| param_error(OPERATION, name, e))?;
        Ok(())
    }
}

/// Translates an SDK error into a message that says what to check.
fn param_error<E>(operation: &'static str, path: &str, error: SdkError<E, HttpResponse>) -> ParamError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let message = match error.as_service_error() {
        Some(service) if service.code().is_none() => {
            let status = error.raw_response().map_or(0, |r| r.status().as_u16());
            format!("unrecognised error answer (HTTP {status}): {}", super::error_chain(&error))
        }
        Some(service) => {
            let code = service.code().unwrap_or_default();
            let text = service.message().unwrap_or("no message");
            let hint = match code {
                "ParameterNotFound" | "ParameterVersionNotFound" => " (check the prefix and the region)",
                "AccessDeniedException" | "AccessDenied" => {
                    " (the caller needs ssm:GetParametersByPath on the prefix, ssm:PutParameter to write, and kms:Decrypt for SecureStrings)"
                }
                "InvalidKeyId" | "KMSAccessDeniedException" => " (the caller needs kms:Decrypt on the parameters' key)",
                _ => "",
            };
            format!("{code}: {text}{hint}")
        }
        None => super::error_chain(&error),
    };
    ParamError::Service { operation, path: path.to_string(), message }
}

#[cfg(test)]
mod tests {
    use super::normalize_path;

    #[test]
    fn paths_lose_their_trailing_slash() {
        assert_eq!(normalize_path("/forge-scaler/prod/"), "/forge-scaler/prod");
        assert_eq!(normalize_path("/forge-scaler/prod"), "/forge-scaler/prod");
        assert_eq!(normalize_path("/"), "/");
    }
}
