//! A browser as a person would name it, from its `User-Agent` header: what the wallet lists
//! beside each session and what the approval phone shows beside each request.

/// A short name for a browser, from its User-Agent.
pub fn browser_name(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent else {
        return "—".to_owned();
    };
    let name = if ua.contains("Edg/") {
        "Edge"
    } else if ua.contains("Firefox/") {
        "Firefox"
    } else if ua.contains("Chrome/") || ua.contains("Chromium/") {
        "Chrome"
    } else if ua.contains("Safari/") {
        "Safari"
    } else {
        return ua.chars().take(40).collect();
    };
    let os = ["Windows", "Mac OS X", "Android", "iPhone", "Linux"].into_iter().find(|os| ua.contains(os));
    match os {
        Some(os) => format!("{name} ({os})"),
        None => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_are_named_shortly() {
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
        assert_eq!(browser_name(Some(firefox)), "Firefox (Linux)");
        let edge = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36 Edg/120.0";
        assert_eq!(browser_name(Some(edge)), "Edge (Windows)");
        assert_eq!(browser_name(Some("curl/8.0")), "curl/8.0");
        assert_eq!(browser_name(None), "—");
    }
}
