//! The few pages outside Leptos: sign-in choices, the local demo sign-in, refusals. Plain
//! HTML with every value escaped; readable without JavaScript.

use axum::response::Html;

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · Swell</title><link rel=\"stylesheet\" href=\"/pkg/swell.css\"></head><body>\
         <header class=\"top\"><a class=\"brand\" href=\"/\">Swell</a><span class=\"tagline\">event-driven, predictive autoscaling</span></header>\
         <main class=\"auth\">{body}</main></body></html>",
        escape(title)
    ))
}

/// `/` for someone signed out of a Swell with no local sign-in: which tenant?
pub fn choose_tenant() -> Html<String> {
    page(
        "Sign in",
        "<h1>Sign in</h1><form method=\"get\" action=\"/login\" class=\"choose-tenant\">\
         <label for=\"tenant\">Your tenant</label> <input id=\"tenant\" name=\"tenant\" required pattern=\"[a-z0-9-]+\" autocomplete=\"organization\">\
         <button type=\"submit\">Continue</button></form>",
    )
}

/// The built-in sign-in of `swell demo` (loopback only).
pub fn local_sign_in(tenant: &str, next: &str, error: Option<&str>) -> Html<String> {
    let error = error.map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e))).unwrap_or_default();
    page(
        "Sign in",
        &format!(
            "<h1>Sign in to {t}</h1>{error}<p class=\"local-note\">Local sign-in: enabled because this is <code>swell demo</code> bound to loopback. \
             <code>swell serve</code> signs users in with the tenant's identity provider only.</p>\
             <form method=\"post\" action=\"/t/{t}/login/local\" class=\"local-sign-in\">\
             <input type=\"hidden\" name=\"next\" value=\"{n}\"><button type=\"submit\">Sign in as demo (admin)</button></form>",
            t = escape(tenant),
            n = escape(next)
        ),
    )
}

/// A sign-in that did not work, with a way to try again.
pub fn login_failed(tenant: &str, message: &str) -> Html<String> {
    page(
        "Sign-in failed",
        &format!("<h1>Sign-in failed</h1><p class=\"error\" role=\"alert\">{}</p><p><a href=\"/t/{t}/login\">Try again</a></p>", escape(message), t = escape(tenant)),
    )
}

pub fn refused(tenant: &str, message: &str) -> Html<String> {
    page(
        "Refused",
        &format!(
            "<h1>Not allowed</h1><p class=\"error\" role=\"alert\">{}</p><form method=\"post\" action=\"/logout\"><button type=\"submit\">Sign out</button></form>\
             <p><a href=\"/t/{t}/login\">Sign in to {t}</a></p>",
            escape(message),
            t = escape(tenant)
        ),
    )
}

pub fn signed_out(tenant: &str) -> Html<String> {
    page("Signed out", &format!("<h1>Signed out</h1><p class=\"signed-out\">You are signed out.</p><p><a href=\"/t/{t}/login\">Sign in again</a></p>", t = escape(tenant)))
}
