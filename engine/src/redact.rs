//! Strips credentials from text bound for status, events, logs, metrics or pages: the
//! userinfo and query string of every URL in it (`amqp://user:pass@host/?x=y` →
//! `amqp://host/`), since errors from HTTP and broker clients quote the URL they used.

/// `text` with every URL's userinfo and query string removed.
pub fn redact(text: &str) -> String {
    if !text.contains("://") {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        // The scheme runs back from "://" over letters, digits, '+', '-', '.'.
        let head = &rest[..pos];
        let scheme_start = head.rfind(|c: char| !(c.is_ascii_alphanumeric() || "+-.".contains(c))).map_or(0, |i| i + 1);
        // The URL runs until whitespace or a quote/bracket that cannot be part of it.
        let tail = &rest[pos + 3..];
        let len = tail.find(|c: char| c.is_whitespace() || "\"'<>`()[]{},".contains(c)).unwrap_or(tail.len());
        let authority_and_path = &tail[..len];
        out.push_str(&head[..scheme_start]);
        out.push_str(&head[scheme_start..]);
        out.push_str("://");
        out.push_str(&clean(authority_and_path));
        rest = &tail[len..];
    }
    out.push_str(rest);
    out
}

/// One URL after its `://`: userinfo (up to the last '@' before the path) and the query dropped.
fn clean(after_scheme: &str) -> String {
    let path_start = after_scheme.find(['/', '?', '#']).unwrap_or(after_scheme.len());
    let authority = &after_scheme[..path_start];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let path = &after_scheme[path_start..];
    let path = path.split(['?', '#']).next().unwrap_or("");
    let dropped_query = after_scheme[path_start..].contains('?');
    format!("{host}{path}{}", if dropped_query { "?…" } else { "" })
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn userinfo_and_query_strings_are_removed() {
        assert_eq!(redact("dial amqp://guest:s3cret@10.0.0.1:5672/vhost failed"), "dial amqp://10.0.0.1:5672/vhost failed");
        assert_eq!(
            redact("error sending request for url (http://127.0.0.1:9/api?token=s3cret&x=1): connection refused"),
            "error sending request for url (http://127.0.0.1:9/api?…): connection refused"
        );
        assert_eq!(redact("https://u:p@h/p#frag and https://h2"), "https://h/p and https://h2");
        assert_eq!(redact("no url here"), "no url here");
        assert_eq!(redact("\"postgres://a:b@db/x?sslmode=require\""), "\"postgres://db/x?…\"");
        for s in ["amqp://guest:s3cret@h/", "http://h/?apikey=s3cret", "kafka://user:s3cret@b:9092"] {
            assert!(!redact(s).contains("s3cret"), "{s} → {}", redact(s));
        }
    }
}
