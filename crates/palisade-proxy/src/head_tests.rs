//! Unit tests of HTTP head handling (beside head.rs to keep both short).

use super::*;

fn parse(text: &str) -> RequestHead {
    parse_head(text.as_bytes(), 16384).unwrap().unwrap()
}

#[test]
fn complete_partial_and_oversize_heads() {
    let h = parse("GET http://example.com/a?b HTTP/1.1\r\nHost: example.com\r\n\r\nBODY");
    assert_eq!(h.method, "GET");
    assert_eq!(h.target, "http://example.com/a?b");
    assert_eq!(h.len, "GET http://example.com/a?b HTTP/1.1\r\nHost: example.com\r\n\r\n".len());
    assert_eq!(parse_head(b"GET / HTTP/1.1\r\nHost: x\r\n", 16384), Ok(None));
    let big = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(200));
    assert_eq!(parse_head(big.as_bytes(), 100), Err(HeadError::TooLarge));
    assert_eq!(parse_head(&[b'a'; 100], 100), Err(HeadError::TooLarge));
    let many: String = (0..150).map(|i| format!("X{i}: y\r\n")).collect();
    let many = format!("GET / HTTP/1.1\r\n{many}\r\n");
    assert_eq!(parse_head(many.as_bytes(), 16384), Err(HeadError::TooLarge));
    assert!(matches!(parse_head(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n", 16384), Err(HeadError::Malformed(_))));
}

#[test]
fn authorities() {
    assert_eq!(parse_authority("example.com:443"), Ok(("example.com".into(), Some(443))));
    assert_eq!(parse_authority("example.com"), Ok(("example.com".into(), None)));
    assert_eq!(parse_authority("[2001:db8::1]:8443"), Ok(("[2001:db8::1]".into(), Some(8443))));
    assert_eq!(parse_authority("[::1]"), Ok(("[::1]".into(), None)));
    for bad in [
        "",
        "user@example.com:443",
        "2001:db8::1",
        "example.com:0",
        "example.com:x",
        "example.com:99999",
        "[::1",
        "[::1]x",
    ] {
        assert!(parse_authority(bad).is_err(), "{bad}");
    }
}

#[test]
fn absolute_targets() {
    assert_eq!(
        parse_absolute_http("http://Example.com:8080/p?q=1").unwrap(),
        AbsoluteTarget { host: "Example.com".into(), port: 8080, path: "/p?q=1".into() }
    );
    assert_eq!(parse_absolute_http("HTTP://example.com").unwrap().path, "/");
    assert_eq!(parse_absolute_http("http://example.com?x").unwrap().path, "/?x");
    assert!(parse_absolute_http("/index.html").unwrap_err().contains("proxy"));
    assert!(parse_absolute_http("https://example.com/").unwrap_err().contains("CONNECT"));
    assert!(parse_absolute_http("http://u:p@example.com/").is_err());
    assert!(parse_absolute_http("http://example.com/#f").is_err());
}

#[test]
fn host_header_comparison() {
    let h = RequestHost::parse("example.com").unwrap();
    assert!(host_header_matches(b"example.com", &h));
    assert!(host_header_matches(b"EXAMPLE.com.:8080", &h));
    assert!(!host_header_matches(b"example.org", &h));
    assert!(!host_header_matches(b"example.com@evil", &h));
    assert!(!host_header_matches(&[0xff], &h));
}

#[test]
fn framing() {
    assert_eq!(body_framing(&parse("POST http://a/ HTTP/1.1\r\nHost: a\r\n\r\n")), Ok(Framing::Length(0)));
    assert_eq!(body_framing(&parse("POST http://a/ HTTP/1.1\r\nContent-Length: 12\r\n\r\n")), Ok(Framing::Length(12)));
    assert_eq!(
        body_framing(&parse("POST http://a/ HTTP/1.1\r\nContent-Length: 12\r\ncontent-length: 12\r\n\r\n")),
        Ok(Framing::Length(12))
    );
    assert_eq!(
        body_framing(&parse("POST http://a/ HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n")),
        Ok(Framing::Chunked)
    );
    for bad in [
        "POST http://a/ HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "POST http://a/ HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        "POST http://a/ HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST http://a/ HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        "POST http://a/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
    ] {
        assert!(body_framing(&parse(bad)).is_err(), "{bad}");
    }
}

#[test]
fn forwarded_head_is_origin_form_one_request() {
    let h = parse("GET http://example.com:8080/x?y HTTP/1.1\r\nHost: example.com:8080\r\nProxy-Connection: keep-alive\r\nConnection: keep-alive, Upgrade\r\nUpgrade: h2c\r\nAccept: */*\r\n\r\n");
    let t = parse_absolute_http(&h.target).unwrap();
    let out = String::from_utf8(forwarded_head(&h, &t)).unwrap();
    assert_eq!(out, "GET /x?y HTTP/1.1\r\nHost: example.com:8080\r\nAccept: */*\r\nConnection: close\r\n\r\n");
    let h10 = parse("GET http://example.com/ HTTP/1.0\r\n\r\n");
    let t = parse_absolute_http(&h10.target).unwrap();
    assert_eq!(
        String::from_utf8(forwarded_head(&h10, &t)).unwrap(),
        "GET / HTTP/1.0\r\nHost: example.com\r\nConnection: close\r\n\r\n"
    );
}

#[test]
fn http_sniffing() {
    assert_eq!(looks_like_http(b"GET /"), Some(true));
    assert_eq!(looks_like_http(b"M-SEARCH *"), Some(true));
    assert_eq!(looks_like_http(b"GE"), None);
    assert_eq!(looks_like_http(b"SSH-2.0"), Some(false));
    assert_eq!(looks_like_http(b" GET"), Some(false));
    assert_eq!(looks_like_http(&[b'A'; 30]), Some(false));
    assert_eq!(looks_like_http(b"\r\n\r\nGET /"), Some(true));
    assert_eq!(looks_like_http(b"\r\n"), None);
    assert_eq!(looks_like_http(b"get /"), Some(true));
    assert_eq!(looks_like_http(b"SSH-2.0-OpenSSH_9.2p1 Debian"), Some(false));
}

#[test]
fn targets_in_a_tunnel() {
    let h = RequestHost::parse("example.com").unwrap();
    for ok in ["/", "/a?b", "*", "http://example.com/x", "HTTPS://EXAMPLE.COM:8443", "http://example.com.?q"] {
        assert!(target_stays_on(ok, &h), "{ok}");
    }
    for bad in [
        "http://evil.example/",
        "http://example.com@evil.example/",
        "example.com:80",
        "evil.example",
        "http://[::1]/",
        "http:///x",
    ] {
        assert!(!target_stays_on(bad, &h), "{bad}");
    }
}

#[test]
fn error_responses_carry_one_line() {
    let r = String::from_utf8(error_response(403, "Forbidden", "palisade: no")).unwrap();
    assert!(r.starts_with("HTTP/1.1 403 Forbidden\r\n"));
    assert!(r.ends_with("\r\n\r\npalisade: no\n"));
    assert!(r.contains("Content-Length: 13\r\n"));
}
