//! Graph API parameters, from wherever the SDKs put them: the query string, a form body
//! (`application/x-www-form-urlencoded` or `multipart/form-data`) or a JSON body. Body values win
//! over query values. Lists come as a JSON array string (`["a","b"]`), a comma list (`a,b`), a JSON
//! array, or PHP-style repeated keys (`fields[]=a&fields[]=b`, `fields[0]=a`). Booleans come as
//! `true`/`false`/`1`/`0`. Unknown parameters are kept and ignored by handlers.

use std::collections::HashMap;

use axum::http::header::CONTENT_TYPE;
use bytes::Bytes;
use serde_json::Value;

use super::error::GraphError;

/// The merged parameters of one Graph request.
#[derive(Default, Clone)]
pub struct Params {
    values: HashMap<String, Value>,
}

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names only: values include access tokens, which carry the app secret.
        let mut names: Vec<&String> = self.values.keys().collect();
        names.sort();
        f.debug_struct("Params").field("names", &names).finish()
    }
}

impl Params {
    /// Adds one `key=value` pair from a query or form, folding `key[]` / `key[N]` into lists.
    fn add_pair(&mut self, key: &str, value: String) {
        if let Some(open) = key.find('[')
            && key.ends_with(']')
        {
            let base = &key[..open];
            let entry = self
                .values
                .entry(base.to_owned())
                .or_insert_with(|| Value::Array(Vec::new()));
            if !entry.is_array() {
                *entry = Value::Array(Vec::new());
            }
            if let Value::Array(items) = entry {
                items.push(Value::String(value));
            }
            return;
        }
        self.values.insert(key.to_owned(), Value::String(value));
    }

    fn add_form(&mut self, encoded: &[u8]) {
        for (key, value) in form_urlencoded::parse(encoded) {
            self.add_pair(&key, value.into_owned());
        }
    }

    /// Collects parameters from the query string and the body.
    pub async fn collect(
        query: Option<&str>,
        headers: &http::HeaderMap,
        body: Bytes,
    ) -> Result<Params, GraphError> {
        let mut params = Params::default();
        if let Some(query) = query {
            params.add_form(query.as_bytes());
        }
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(params);
        }
        // The boundary of a multipart type is case-sensitive: compare a lowercased copy, parse
        // the original.
        let content_type = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let media_type = content_type.to_ascii_lowercase();
        if media_type.starts_with("application/json") {
            let value: Value = serde_json::from_slice(&body).map_err(|error| {
                GraphError::invalid(format!("The JSON body could not be parsed: {error}"))
            })?;
            let Value::Object(map) = value else {
                return Err(GraphError::invalid(
                    "The JSON body must be an object of parameters",
                ));
            };
            for (key, value) in map {
                params.values.insert(key, value);
            }
        } else if media_type.starts_with("multipart/form-data") {
            let boundary = multer::parse_boundary(content_type)
                .map_err(|error| GraphError::invalid(format!("Invalid multipart body: {error}")))?;
            let stream =
                futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
            let mut multipart = multer::Multipart::new(stream, boundary);
            while let Some(field) = multipart
                .next_field()
                .await
                .map_err(|error| GraphError::invalid(format!("Invalid multipart body: {error}")))?
            {
                let Some(name) = field.name().map(str::to_owned) else {
                    continue;
                };
                let text = field.text().await.map_err(|error| {
                    GraphError::invalid(format!("Invalid multipart field {name}: {error}"))
                })?;
                params.add_pair(&name, text);
            }
        } else {
            // Form bodies, including those sent without a content type (curl -d).
            params.add_form(&body);
        }
        Ok(params)
    }

    /// Sets a parameter (tests and internal callers).
    pub fn insert(&mut self, key: &str, value: Value) {
        self.values.insert(key.to_owned(), value);
    }

    /// Whether the parameter was given.
    pub fn has(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// A text parameter; JSON numbers and booleans read as their text.
    pub fn text(&self, name: &str) -> Result<Option<String>, GraphError> {
        match self.values.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(Value::Number(number)) => Ok(Some(number.to_string())),
            Some(Value::Bool(flag)) => Ok(Some(flag.to_string())),
            Some(_) => Err(GraphError::invalid(format!(
                "Param {name} must be a string"
            ))),
        }
    }

    /// A required, non-empty text parameter.
    pub fn required_text(&self, name: &str) -> Result<String, GraphError> {
        match self.text(name)? {
            Some(text) if !text.trim().is_empty() => Ok(text),
            _ => Err(GraphError::invalid(format!(
                "The parameter {name} is required"
            ))),
        }
    }

    /// A list parameter.
    pub fn list(&self, name: &str) -> Result<Option<Vec<String>>, GraphError> {
        let invalid = || {
            GraphError::invalid(format!(
                "Param {name} must be a list: a JSON array of strings like [\"a\",\"b\"] or a comma list like a,b"
            ))
        };
        let from_array = |items: &[Value]| -> Result<Vec<String>, GraphError> {
            items
                .iter()
                .map(|item| match item {
                    Value::String(text) => Ok(text.trim().to_owned()),
                    // The Python SDK sends {"name": ..} objects for some list params.
                    Value::Object(map) => map
                        .get("name")
                        .and_then(Value::as_str)
                        .map(|s| s.trim().to_owned())
                        .ok_or_else(invalid),
                    _ => Err(invalid()),
                })
                .filter(|item| !matches!(item, Ok(text) if text.is_empty()))
                .collect()
        };
        match self.values.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => {
                // Repeated form keys may each hold a comma or JSON list themselves.
                let mut out = Vec::new();
                for item in items {
                    match item {
                        Value::String(text) => {
                            out.extend(parse_list_text(text).ok_or_else(invalid)?)
                        }
                        other => out.extend(from_array(std::slice::from_ref(other))?),
                    }
                }
                Ok(Some(out))
            }
            Some(Value::String(text)) => parse_list_text(text).map(Some).ok_or_else(invalid),
            Some(_) => Err(invalid()),
        }
    }

    /// A boolean parameter.
    pub fn boolean(&self, name: &str) -> Result<Option<bool>, GraphError> {
        let invalid = || {
            GraphError::invalid(format!(
                "Param {name} must be a boolean: true, false, 1 or 0"
            ))
        };
        match self.values.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(flag)) => Ok(Some(*flag)),
            Some(Value::Number(number)) => match number.as_u64() {
                Some(0) => Ok(Some(false)),
                Some(1) => Ok(Some(true)),
                _ => Err(invalid()),
            },
            Some(Value::String(text)) => match text.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => Ok(Some(true)),
                "false" | "0" => Ok(Some(false)),
                _ => Err(invalid()),
            },
            Some(_) => Err(invalid()),
        }
    }

    /// A JSON-object parameter (given as JSON text or as an object in a JSON body).
    pub fn object(&self, name: &str) -> Result<Option<serde_json::Map<String, Value>>, GraphError> {
        let invalid = || GraphError::invalid(format!("Param {name} must be a JSON object"));
        match self.values.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(map)) => Ok(Some(map.clone())),
            Some(Value::String(text)) if text.trim().is_empty() => Ok(None),
            Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(map)) => Ok(Some(map)),
                _ => Err(invalid()),
            },
            Some(_) => Err(invalid()),
        }
    }
}

/// `["a","b"]` or `a,b` → items; `None` when it starts like JSON but is not a list of strings.
fn parse_list_text(text: &str) -> Option<Vec<String>> {
    let trimmed = text.trim();
    if trimmed.starts_with('[') {
        let items: Vec<Value> = serde_json::from_str(trimmed).ok()?;
        return items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Some(s.trim().to_owned()),
                Value::Object(map) => map
                    .get("name")
                    .and_then(Value::as_str)
                    .map(|s| s.trim().to_owned()),
                _ => None,
            })
            .filter(|item| !matches!(item, Some(text) if text.is_empty()))
            .collect();
    }
    Some(
        trimmed
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::to_owned)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(query: &str) -> Params {
        let mut p = Params::default();
        p.add_form(query.as_bytes());
        p
    }

    #[test]
    fn lists_in_every_encoding() {
        assert_eq!(
            params("fields=a,b").list("fields").unwrap(),
            Some(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            params("fields=%5B%22a%22%2C%22b%22%5D")
                .list("fields")
                .unwrap(),
            Some(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            params("fields[]=a&fields[]=b").list("fields").unwrap(),
            Some(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            params("fields[0]=a&fields[1]=b").list("fields").unwrap(),
            Some(vec!["a".into(), "b".into()])
        );
        let mut json = Params::default();
        json.insert("fields", serde_json::json!(["a", "b"]));
        assert_eq!(
            json.list("fields").unwrap(),
            Some(vec!["a".into(), "b".into()])
        );
        assert!(params("fields=%5B1%2C2%5D").list("fields").is_err());
        assert!(params("fields=%5Bbroken").list("fields").is_err());
    }

    #[test]
    fn booleans_in_every_encoding() {
        for (text, expected) in [
            ("true", true),
            ("1", true),
            ("false", false),
            ("0", false),
            ("True", true),
        ] {
            assert_eq!(
                params(&format!("b={text}")).boolean("b").unwrap(),
                Some(expected)
            );
        }
        assert!(params("b=yes").boolean("b").is_err());
        assert_eq!(params("").boolean("b").unwrap(), None);
    }

    #[tokio::test]
    async fn json_and_form_bodies_merge_over_the_query() {
        let mut headers = http::HeaderMap::new();
        headers.insert(CONTENT_TYPE, "application/json".parse().unwrap());
        let p = Params::collect(
            Some("object=page&x=1"),
            &headers,
            Bytes::from(r#"{"object":"user","include_values":true}"#),
        )
        .await
        .unwrap();
        assert_eq!(p.text("object").unwrap().as_deref(), Some("user"));
        assert_eq!(p.boolean("include_values").unwrap(), Some(true));
        assert_eq!(p.text("x").unwrap().as_deref(), Some("1"));

        let form = Params::collect(
            None,
            &http::HeaderMap::new(),
            Bytes::from("object=page&fields=feed"),
        )
        .await
        .unwrap();
        assert_eq!(form.text("object").unwrap().as_deref(), Some("page"));
    }

    #[tokio::test]
    async fn multipart_bodies_are_read() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            "multipart/form-data; boundary=XyZ".parse().unwrap(),
        );
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"object\"\r\n\r\npage\r\n--XyZ\r\nContent-Disposition: form-data; name=\"fields\"\r\n\r\n[\"feed\"]\r\n--XyZ--\r\n";
        let p = Params::collect(None, &headers, Bytes::from(body))
            .await
            .unwrap();
        assert_eq!(p.text("object").unwrap().as_deref(), Some("page"));
        assert_eq!(p.list("fields").unwrap(), Some(vec!["feed".into()]));
    }
}
