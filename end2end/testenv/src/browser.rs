//! A browser without a screen, for sign-in flows in Rust tests: cookies kept, redirects
//! followed one by one (so a test can stop at a given URL), and a page's login form filled
//! and submitted as a person would.

use regex::Regex;

pub struct Browser {
    http: reqwest::Client,
    jar: std::sync::Arc<reqwest::cookie::Jar>,
}

/// Where following a chain of redirects ended.
#[derive(Debug)]
pub enum Landing {
    /// A page that is not a redirect.
    Page { url: String, status: u16, body: String },
    /// A redirect to a URL starting with the prefix the caller stopped at (not requested).
    Stopped(String),
}

impl Landing {
    pub fn page(self) -> (String, u16, String) {
        match self {
            Landing::Page { url, status, body } => (url, status, body),
            Landing::Stopped(u) => panic!("expected a page, was sent to {u}"),
        }
    }
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Browser {
        let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
        let http = reqwest::Client::builder().cookie_provider(jar.clone()).redirect(reqwest::redirect::Policy::none()).build().expect("HTTP client");
        Browser { http, jar }
    }

    /// The `Cookie` header this browser would send to `url`.
    pub fn cookies(&self, url: &str) -> Option<String> {
        use reqwest::cookie::CookieStore;
        self.jar.cookies(&reqwest::Url::parse(url).ok()?).and_then(|v| v.to_str().ok().map(String::from))
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// GETs `url` and follows redirects (at most 20), stopping before any URL starting with `stop`.
    pub async fn follow(&self, url: &str, stop: Option<&str>) -> Result<Landing, String> {
        self.chase(self.http.get(url), url.to_string(), stop).await
    }

    async fn chase(&self, first: reqwest::RequestBuilder, mut url: String, stop: Option<&str>) -> Result<Landing, String> {
        let mut req = first;
        for _ in 0..20 {
            let res = req.send().await.map_err(|e| format!("{url}: {e}"))?;
            let status = res.status().as_u16();
            if res.status().is_redirection() {
                let loc = res.headers().get("location").and_then(|l| l.to_str().ok()).ok_or_else(|| format!("{url}: redirect without Location"))?;
                let next = reqwest::Url::parse(&url).and_then(|u| u.join(loc)).map_err(|e| format!("{loc}: {e}"))?.to_string();
                if stop.is_some_and(|s| next.starts_with(s)) {
                    return Ok(Landing::Stopped(next));
                }
                url = next;
                req = self.http.get(&url);
                continue;
            }
            let body = res.text().await.map_err(|e| e.to_string())?;
            return Ok(Landing::Page { url, status, body });
        }
        Err(format!("more than 20 redirects from {url}"))
    }

    /// Submits the page's login form (the first form with a password field, else the first
    /// form) with its hidden fields plus `fields`, then follows redirects as [`Browser::follow`].
    pub async fn submit(&self, page_url: &str, html: &str, fields: &[(&str, &str)], stop: Option<&str>) -> Result<Landing, String> {
        let forms = Regex::new(r#"(?is)<form\b([^>]*)>(.*?)</form>"#).unwrap();
        let action_re = Regex::new(r#"(?i)\baction\s*=\s*"([^"]*)""#).unwrap();
        let input_re = Regex::new(r#"(?is)<input\b([^>]*)>"#).unwrap();
        let attr = |tag: &str, name: &str| Regex::new(&format!(r#"(?i)\b{name}\s*=\s*"([^"]*)""#)).unwrap().captures(tag).map(|c| unescape(&c[1]));
        let all: Vec<_> = forms.captures_iter(html).collect();
        let form = all.iter().find(|f| f[2].contains("type=\"password\"")).or_else(|| all.first()).ok_or_else(|| format!("no form on {page_url}: {}", &html[..html.len().min(400)]))?;
        let action = action_re.captures(&form[1]).map(|c| unescape(&c[1])).unwrap_or_else(|| page_url.to_string());
        let action = reqwest::Url::parse(page_url).and_then(|u| u.join(&action)).map_err(|e| format!("form action {action}: {e}"))?.to_string();
        let mut values: Vec<(String, String)> = Vec::new();
        for input in input_re.captures_iter(&form[2]) {
            let tag = &input[1];
            if attr(tag, "type").as_deref() == Some("hidden") {
                if let (Some(n), v) = (attr(tag, "name"), attr(tag, "value")) {
                    values.push((n, v.unwrap_or_default()));
                }
            }
        }
        for (k, v) in fields {
            values.retain(|(n, _)| n != k);
            values.push((k.to_string(), v.to_string()));
        }
        // A browser sends the origin of the page the form is on.
        let origin = reqwest::Url::parse(page_url).map(|u| u.origin().ascii_serialization()).unwrap_or_default();
        let req = self.http.post(&action).header("origin", origin).form(&values);
        self.chase(req, action, stop).await
    }
}

fn unescape(s: &str) -> String {
    s.replace("&amp;", "&").replace("&quot;", "\"").replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&#x2F;", "/").replace("&#47;", "/")
}
