//! The verification handshake (SPEC §2.1): `GET <callback>?hub.mode=subscribe&hub.challenge=N
//! &hub.verify_token=T`, which must answer 200 with exactly the challenge. Failures become Graph
//! errors 2200 (transport or status) and 2201 (wrong body) that say what came back.

use bytes::Bytes;
use http::header::USER_AGENT;
use http::{HeaderMap, HeaderValue, Method};

use crate::delivery::client::{CallbackClient, Outgoing};
use crate::delivery::send::USER_AGENT_VALUE;
use crate::http::error::{GraphCode, GraphError};

/// The callback URL with the handshake parameters appended to any query it already has.
pub fn handshake_url(callback_url: &str, challenge: &str, verify_token: &str) -> String {
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("hub.mode", "subscribe")
        .append_pair("hub.challenge", challenge)
        .append_pair("hub.verify_token", verify_token)
        .finish();
    // A fragment is never sent to a server; drop it.
    let base = callback_url.split('#').next().unwrap_or(callback_url);
    let separator = if base.contains('?') {
        if base.ends_with('?') || base.ends_with('&') {
            ""
        } else {
            "&"
        }
    } else {
        "?"
    };
    format!("{base}{separator}{query}")
}

fn first_chars(text: &str, count: usize) -> String {
    text.chars().take(count).collect()
}

/// Runs the handshake against `callback_url`.
pub async fn verify(
    client: &CallbackClient,
    callback_url: &str,
    verify_token: &str,
    timeout: std::time::Duration,
    mutual_tls: bool,
) -> Result<(), GraphError> {
    let challenge = (rand::random::<u32>() % 900_000_000 + 100_000_000).to_string();
    let url = handshake_url(callback_url, &challenge, verify_token);
    let mut headers = HeaderMap::new();
    headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
    let response = client
        .send(
            &url,
            Outgoing {
                method: Method::GET,
                headers,
                body: Bytes::new(),
                timeout,
                mutual_tls,
            },
        )
        .await
        .map_err(|error| {
            GraphError::new(
                GraphCode::VerificationTransport,
                format!(
                    "Callback verification failed: could not reach {callback_url}: {}",
                    error.message
                ),
            )
        })?;
    let body = response.snippet.trim();
    if response.status != http::StatusCode::OK {
        return Err(GraphError::new(
            GraphCode::VerificationTransport,
            format!(
                "Callback verification failed: the callback answered HTTP {} {} (expected 200); response body: {:?}",
                response.status.as_u16(),
                response.status.canonical_reason().unwrap_or(""),
                first_chars(body, 100)
            ),
        ));
    }
    if body != challenge {
        return Err(GraphError::new(
            GraphCode::VerificationMismatch,
            format!(
                "Callback verification failed: response does not match challenge, expected value=\"{challenge}\", received=\"{}\"",
                first_chars(body, 100)
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_appended_to_an_existing_query() {
        assert_eq!(
            handshake_url("https://a.example/cb", "12", "t k"),
            "https://a.example/cb?hub.mode=subscribe&hub.challenge=12&hub.verify_token=t+k"
        );
        assert_eq!(
            handshake_url("https://a.example/cb?app=1", "12", "t"),
            "https://a.example/cb?app=1&hub.mode=subscribe&hub.challenge=12&hub.verify_token=t"
        );
        assert_eq!(
            handshake_url("https://a.example/cb?", "1", "t"),
            "https://a.example/cb?hub.mode=subscribe&hub.challenge=1&hub.verify_token=t"
        );
    }
}
