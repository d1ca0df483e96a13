//! The page shell every dashboard page shares (head, top bar, app navigation, footer), the
//! embedded assets, and small pieces of markup and formatting used across pages.

use std::sync::LazyLock;

use axum::response::{IntoResponse, Response};
use graphhooks_core::model::{App, AppMode};
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use maud::{DOCTYPE, Markup, html};
use sha2::{Digest, Sha256};

use super::session::{CSRF_FIELD, Session, Who};

/// The stylesheet, embedded in the binary.
pub(crate) const CSS: &str = include_str!("../../assets/dashboard.css");
/// The script, embedded in the binary.
pub(crate) const JS: &str = include_str!("../../assets/dashboard.js");

/// A short hash of the assets, appended to their URLs so a new build is never served a stale
/// cached copy.
static ASSET_VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut hasher = Sha256::new();
    hasher.update(CSS);
    hasher.update(JS);
    hex::encode(&hasher.finalize()[..6])
});

/// `GET /dashboard/assets/dashboard.css`.
pub(crate) async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

/// `GET /dashboard/assets/dashboard.js`.
pub(crate) async fn script() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, content_type),
            (CACHE_CONTROL, "public, max-age=86400"),
        ],
        body,
    )
        .into_response()
}

/// The logo as a data URL, so the browser asks for no `/favicon.ico`.
const FAVICON: &str = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 32 32'%3E%3Crect width='32' height='32' rx='8' fill='%230b5cd5'/%3E%3Cpath d='M11 8v9a5 5 0 0 0 10 0v-2' fill='none' stroke='white' stroke-width='3' stroke-linecap='round'/%3E%3C/svg%3E";

/// Which app tab is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tab {
    /// The Webhooks product page.
    Webhooks,
    /// The delivery log.
    Log,
    /// The operator's app settings.
    Settings,
    /// The operator's apps list.
    Apps,
    /// No tab (sign-in, errors).
    None,
}

/// What the shell needs to know about the page.
pub(crate) struct Shell<'a> {
    /// `<title>` and the page's purpose.
    pub(crate) title: &'a str,
    /// The session, when signed in.
    pub(crate) session: Option<&'a Session>,
    /// The app the page is about, if any.
    pub(crate) app: Option<&'a App>,
    /// The current tab.
    pub(crate) tab: Tab,
}

fn logo() -> Markup {
    html! {
        svg.logo viewBox="0 0 32 32" width="28" height="28" aria-hidden="true" focusable="false" {
            rect width="32" height="32" rx="8" fill="#0b5cd5" {}
            path d="M11 8v9a5 5 0 0 0 10 0v-2" fill="none" stroke="#fff" stroke-width="3" stroke-linecap="round" {}
            path d="M17.5 17.5 21 14l3.5 3.5" fill="none" stroke="#fff" stroke-width="3" stroke-linecap="round" stroke-linejoin="round" {}
        }
    }
}

/// A whole page.
pub(crate) fn page(shell: Shell<'_>, content: Markup) -> Markup {
    let version = ASSET_VERSION.as_str();
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(session) = shell.session {
                    meta name="csrf-token" content=(session.csrf);
                }
                title { (shell.title) " · graphhooks" }
                link rel="icon" href=(FAVICON);
                link rel="stylesheet" href={ "/dashboard/assets/dashboard.css?v=" (version) };
                script src={ "/dashboard/assets/dashboard.js?v=" (version) } defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.topbar {
                    div.topbar-inner {
                        a.brand href="/dashboard/home" { (logo()) span { "graphhooks" } }
                        @if let Some(session) = shell.session {
                            nav.global aria-label="Account" {
                                @match &session.who {
                                    Who::Operator => {
                                        a href="/dashboard/apps" aria-current=[(shell.tab == Tab::Apps).then_some("page")] { "Apps" }
                                        span.who { "Operator" }
                                    }
                                    Who::App(app) => {
                                        span.who title={ "App " (app.id) } { (app.name) }
                                    }
                                }
                                form.inline method="post" action="/dashboard/logout" {
                                    input type="hidden" name=(CSRF_FIELD) value=(session.csrf);
                                    button.link-button type="submit" { "Sign out" }
                                }
                            }
                        }
                    }
                }
                @if let (Some(app), Some(session)) = (shell.app, shell.session) {
                    (app_header(app, session, shell.tab))
                }
                main #main tabindex="-1" {
                    (content)
                }
                footer.footer {
                    "graphhooks · webhooks compatible with Meta's Graph API · "
                    a href="/healthz" { "health" }
                }
            }
        }
    }
}

fn app_header(app: &App, session: &Session, tab: Tab) -> Markup {
    let base = format!("/dashboard/apps/{}", app.id);
    html! {
        div.appbar {
            div.appbar-inner {
                div.app-title {
                    @if session.is_operator() {
                        a.crumb href="/dashboard/apps" { "Apps" }
                        span.crumb-sep aria-hidden="true" { "/" }
                    }
                    span.app-name { (app.name) }
                    span.app-id { "App ID " code { (app.id) } }
                    (mode_badge(app.mode))
                }
                nav.tabs aria-label="App" {
                    a href={ (base) "/webhooks" } aria-current=[(tab == Tab::Webhooks).then_some("page")] { "Webhooks" }
                    a href={ (base) "/deliveries" } aria-current=[(tab == Tab::Log).then_some("page")] { "Delivery log" }
                    @if session.is_operator() {
                        a href={ (base) "/settings" } aria-current=[(tab == Tab::Settings).then_some("page")] { "Settings" }
                    }
                }
            }
        }
    }
}

/// The badge of an app mode.
pub(crate) fn mode_badge(mode: AppMode) -> Markup {
    match mode {
        AppMode::Live => html! { span.badge.badge-live { "Live" } },
        AppMode::Development => html! { span.badge.badge-dev { "Development" } },
    }
}

/// A page for an error, with a way back.
pub(crate) fn error_page(status: http::StatusCode, title: &str, message: &str) -> Markup {
    page(
        Shell {
            title,
            session: None,
            app: None,
            tab: Tab::None,
        },
        html! {
            div.narrow {
                section.card.error-card {
                    p.eyebrow { "HTTP " (status.as_u16()) }
                    h1 { (title) }
                    p { (message) }
                    p.actions {
                        a.button href="/dashboard/home" { "Back to the dashboard" }
                    }
                }
            }
        },
    )
}

/// A hidden CSRF field for a form.
pub(crate) fn csrf(session: &Session) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(session.csrf); }
}

/// A success message after a redirect.
pub(crate) fn notice(text: Option<&str>) -> Markup {
    html! {
        @if let Some(text) = text {
            div.alert.alert-success role="status" { (text) }
        }
    }
}

/// An inline error.
pub(crate) fn alert_error(title: &str, message: &str) -> Markup {
    html! {
        div.alert.alert-error role="alert" {
            strong { (title) }
            p { (message) }
        }
    }
}

/// Unix seconds as `2025-06-01 14:03:07 UTC`.
pub(crate) fn utc(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let rest = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Days since 1970-01-01 as (year, month, day) in the proleptic Gregorian calendar (Howard
/// Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A duration in seconds as `45 s`, `12 min`, `3 h 5 min`, `2 d 4 h`.
pub(crate) fn age(seconds: i64) -> String {
    let seconds = seconds.max(0);
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3600 => format!("{} min", seconds / 60),
        3600..86_400 => {
            let minutes = seconds % 3600 / 60;
            if minutes == 0 {
                format!("{} h", seconds / 3600)
            } else {
                format!("{} h {minutes} min", seconds / 3600)
            }
        }
        _ => {
            let hours = seconds % 86_400 / 3600;
            if hours == 0 {
                format!("{} d", seconds / 86_400)
            } else {
                format!("{} d {hours} h", seconds / 86_400)
            }
        }
    }
}

/// A JSON text indented for reading, keeping its key order and escapes; as it is when it is
/// not JSON.
pub(crate) fn pretty_json(text: &str) -> String {
    if serde_json::from_str::<serde::de::IgnoredAny>(text).is_err() {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() * 2);
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = text.trim().chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.extend(std::iter::repeat_n("  ", depth));
    };
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                let close = if c == '{' { '}' } else { ']' };
                while chars.peek().is_some_and(|n| n.is_whitespace()) {
                    chars.next();
                }
                if chars.peek() == Some(&close) {
                    chars.next();
                    out.push(close);
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_formatted_in_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_764_288_000), "2025-11-28 00:00:00 UTC");
        assert_eq!(utc(951_782_400 + 3661), "2000-02-29 01:01:01 UTC");
    }

    #[test]
    fn json_is_indented_in_its_own_order() {
        assert_eq!(
            pretty_json(r#"{"object":"user","entry":[{"id":"1","v":"a,b:\"{c}"}],"e":{}}"#),
            "{\n  \"object\": \"user\",\n  \"entry\": [\n    {\n      \"id\": \"1\",\n      \"v\": \"a,b:\\\"{c}\"\n    }\n  ],\n  \"e\": {}\n}"
        );
        assert_eq!(pretty_json("not json {"), "not json {");
        assert_eq!(pretty_json("\"text\""), "\"text\"");
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(age(5), "5 s");
        assert_eq!(age(125), "2 min");
        assert_eq!(age(3600), "1 h");
        assert_eq!(age(3720), "1 h 2 min");
        assert_eq!(age(90_000), "1 d 1 h");
        assert_eq!(age(-3), "0 s");
    }
}
