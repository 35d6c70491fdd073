//! Unit tests of the network allowlist rules (kept beside net_rules.rs so both stay short).

use super::*;

fn allow(entries: &[&str]) -> Allowlist {
    Allowlist::parse(entries, &[] as &[&str]).unwrap()
}

fn list(allow: &[&str], deny: &[&str]) -> Allowlist {
    Allowlist::parse(allow, deny).unwrap()
}

fn err(text: &str) -> String {
    Entry::parse(text, Kind::Allow).unwrap_err()
}

fn yes(list: &Allowlist, host: &str, port: u16) -> String {
    let d = list.decide(host, port);
    assert!(d.allowed, "{host}:{port} should be allowed, got {d:?}");
    d.rule.unwrap()
}

fn no(list: &Allowlist, host: &str, port: u16) -> Option<String> {
    let d = list.decide(host, port);
    assert!(!d.allowed, "{host}:{port} should be refused, got {d:?}");
    d.rule
}

#[test]
fn exact_host_matches_only_itself_on_web_ports() {
    let l = allow(&["example.com"]);
    assert_eq!(yes(&l, "example.com", 443), "example.com");
    yes(&l, "example.com", 80);
    yes(&l, "EXAMPLE.com.", 443);
    assert_eq!(no(&l, "example.com", 8443), None);
    no(&l, "www.example.com", 443);
    no(&l, "example.com.evil.net", 443);
    no(&l, "notexample.com", 443);
    no(&l, "example.co", 443);
}

#[test]
fn wildcard_matches_subdomains_but_not_the_apex() {
    let l = allow(&["*.Example.COM"]);
    assert_eq!(yes(&l, "api.example.com", 443), "*.example.com");
    yes(&l, "a.b.example.com", 80);
    no(&l, "example.com", 443);
    no(&l, "badexample.com", 443);
    no(&l, "api.example.com", 22);
}

#[test]
fn explicit_port_is_that_port_only() {
    let l = allow(&["example.com:8443", "*.example.org:22"]);
    assert_eq!(yes(&l, "example.com", 8443), "example.com:8443");
    no(&l, "example.com", 443);
    no(&l, "example.com", 80);
    yes(&l, "git.example.org", 22);
    no(&l, "git.example.org", 443);
}

#[test]
fn address_entries_and_ranges() {
    let l = allow(&["203.0.113.0/24", "198.51.100.7:8080", "2001:db8::/32", "[2001:db8:1::1]:8443"]);
    assert_eq!(yes(&l, "203.0.113.99", 443), "203.0.113.0/24");
    no(&l, "203.0.114.1", 443);
    no(&l, "203.0.113.99", 8080);
    assert_eq!(yes(&l, "198.51.100.7", 8080), "198.51.100.7:8080");
    no(&l, "198.51.100.7", 443);
    assert_eq!(yes(&l, "[2001:db8:ffff::5]", 80), "2001:db8::/32");
    yes(&l, "2001:db8::5", 443);
    assert_eq!(yes(&l, "[2001:db8:1::1]", 8443), "2001:db8::/32".replace("2001:db8::/32", "[2001:db8:1::1]:8443"));
    no(&l, "2001:db9::1", 443);
    // The IPv4-mapped form of an address is that address.
    yes(&l, "::ffff:203.0.113.5", 443);
    let cidr_port = allow(&["203.0.113.0/24:8443", "[2001:db8::/32]:8443"]);
    assert_eq!(yes(&cidr_port, "203.0.113.1", 8443), "203.0.113.0/24:8443");
    assert_eq!(yes(&cidr_port, "2001:db8::1", 8443), "[2001:db8::/32]:8443");
    no(&cidr_port, "203.0.113.1", 443);
}

#[test]
fn ip_literal_only_allowed_by_address_entries_and_names_only_by_name_entries() {
    let l = allow(&["example.com", "*.example.net"]);
    no(&l, "93.184.216.34", 443);
    no(&l, "[::1]", 443);
    let l = allow(&["127.0.0.1"]);
    no(&l, "localhost", 443);
    yes(&l, "127.0.0.1", 443);
}

#[test]
fn deny_wins_and_a_portless_deny_covers_every_port() {
    let l = list(&["*.example.com", "*.example.com:8443", "203.0.113.0/24"], &["bad.example.com", "203.0.113.66"]);
    yes(&l, "good.example.com", 443);
    assert_eq!(no(&l, "bad.example.com", 443), Some("bad.example.com".into()));
    assert_eq!(no(&l, "bad.example.com", 8443), Some("bad.example.com".into()));
    assert_eq!(no(&l, "203.0.113.66", 80), Some("203.0.113.66".into()));
    yes(&l, "203.0.113.65", 80);
    let d = list(&["example.com", "example.com:8443"], &["example.com:8443"]);
    yes(&d, "example.com", 443);
    assert_eq!(no(&d, "example.com", 8443), Some("example.com:8443".into()));
    // A deny may be broad; an allow may not.
    let broad = list(&["example.ru", "example.com"], &["*.ru"]);
    assert_eq!(no(&broad, "example.ru", 443), Some("*.ru".into()));
    yes(&broad, "example.com", 443);
    assert!(Entry::parse("*", Kind::Deny).is_err());
}

#[test]
fn empty_list_refuses_everything() {
    let l = Allowlist::default();
    assert_eq!(l.decide("example.com", 443), Decision { allowed: false, rule: None });
    assert_eq!(l.decide("203.0.113.1", 443), Decision { allowed: false, rule: None });
}

#[test]
fn garbage_request_hosts_are_refused_without_a_rule() {
    let l = allow(&["example.com", "0.0.0.0/1"]);
    for bad in
        ["", ".", "exa mple.com", "example..com", "ex\u{e4}mple.com", "[example.com]", "127.1", "0x7f000001", "a.0x1f"]
    {
        assert_eq!(l.decide(bad, 443).rule, None, "{bad:?}");
        assert!(!l.decide(bad, 443).allowed, "{bad:?}");
    }
}

#[test]
fn broad_wildcards_are_refused() {
    for text in ["*", "*.com", "*.co.uk", "*.github.io", "*.internal", "*.test", "*.s3.amazonaws.com"] {
        let e = err(text);
        assert!(e.contains(text), "{e}");
        assert!(!e.contains('\n'), "{e}");
        assert!(e.contains("broader than one registrable domain") || e.contains("every host"), "{e}");
    }
    // One registrable domain is fine, including under a multi-label suffix.
    for text in ["*.example.com", "*.example.co.uk", "*.octocat.github.io", "*.a.b.example.com"] {
        Entry::parse(text, Kind::Allow).unwrap_or_else(|e| panic!("{text}: {e}"));
    }
    assert!(is_public_suffix("com"));
    assert!(is_public_suffix("co.uk"));
    assert!(!is_public_suffix("example.com"));
}

#[test]
fn malformed_entries_get_one_line_errors() {
    let cases = [
        ("", "empty"),
        ("https://example.com", "not a URL"),
        ("example.com/path", "not a URL"),
        ("ex\u{e4}mple.com", "punycode"),
        ("b\u{fc}cher.de", "xn--"),
        ("example.com:0", "port"),
        ("example.com:65536", "port"),
        ("example.com:http", "port"),
        ("example.com:+80", "port"),
        ("[2001:db8::1", "without ']'"),
        ("[2001:db8::1]443", "':port'"),
        ("203.0.113.5/24", "did you mean 203.0.113.0/24"),
        ("203.0.113.0/33", "longer than 32"),
        ("2001:db8::/129", "longer than 128"),
        ("203.0.113.0/x", "not a number"),
        ("0.0.0.0/0", "every address"),
        ("::/0", "every address"),
        ("-bad.example.com", "'-'"),
        ("a..example.com", "1 to 63"),
        ("under score!.com", "not allowed"),
        ("127.1", "IPv4"),
        ("foo.0x7f", "IPv4"),
        ("*.*.example.com", "not allowed"),
        ("foo.*.example.com", "not allowed"),
    ];
    for (text, needle) in cases {
        let e = err(text);
        assert!(e.contains(needle), "{text:?}: {e}");
        assert!(!e.contains('\n'), "{text:?}: {e}");
    }
    let long = format!("{}.com", "a".repeat(64));
    assert!(err(&long).contains("63"));
}

#[test]
fn punycode_names_are_accepted_as_written() {
    let l = allow(&["xn--bcher-kva.de", "*.XN--BCHER-KVA.de"]);
    yes(&l, "xn--bcher-kva.de", 443);
    yes(&l, "www.xn--bcher-kva.de", 443);
    no(&l, "b\u{fc}cher.de", 443);
}

#[test]
fn canonical_forms_round_trip() {
    for (text, canon) in [
        ("Example.COM.", "example.com"),
        ("*.Example.com:8443", "*.example.com:8443"),
        ("203.0.113.0/24", "203.0.113.0/24"),
        ("203.0.113.7/32", "203.0.113.7"),
        ("[2001:DB8::1]:8443", "[2001:db8::1]:8443"),
        ("2001:db8::/32", "2001:db8::/32"),
        ("::ffff:10.0.0.0/104", "10.0.0.0/8"),
        ("[::ffff:127.0.0.1]:80", "127.0.0.1:80"),
    ] {
        let e = Entry::parse(text, Kind::Allow).unwrap();
        assert_eq!(e.to_string(), canon);
        assert_eq!(Entry::parse(canon, Kind::Allow).unwrap(), e);
    }
}

#[test]
fn narrow_keeps_only_covered_entries() {
    let managed = list(
        &["*.example.com", "example.com:8443", "203.0.113.0/24", "api.example.org:443", "api.example.org:80"],
        &["evil.example.com"],
    );
    let lower = list(
        &[
            "api.example.com",     // under *.example.com, ports 80/443: kept
            "a.b.example.com:443", // kept
            "example.com",         // apex not under *.example.com: dropped
            "example.com:8443",    // same entry: kept
            "*.api.example.com",   // narrower wildcard: kept
            "*.example.com:22",    // port 22 not managed: dropped
            "203.0.113.128/25",    // sub-range: kept
            "203.0.0.0/16",        // wider range: dropped
            "api.example.org",     // ports 80 and 443 covered by two entries: kept
            "www.example.net",     // not managed at all: dropped
        ],
        &["tracker.example.com"],
    );
    let n = managed.narrow(&lower);
    let kept: Vec<String> = n.allowlist.allow.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        kept,
        [
            "api.example.com",
            "a.b.example.com:443",
            "example.com:8443",
            "*.api.example.com",
            "203.0.113.128/25",
            "api.example.org"
        ]
    );
    let dropped: Vec<String> = n.dropped.iter().map(|e| e.to_string()).collect();
    assert_eq!(dropped, ["example.com", "*.example.com:22", "203.0.0.0/16", "www.example.net"]);
    let deny: Vec<String> = n.allowlist.deny.iter().map(|e| e.to_string()).collect();
    assert_eq!(deny, ["evil.example.com", "tracker.example.com"]);
    // The result never allows what the managed list refuses.
    for (host, port) in [
        ("example.com", 443),
        ("evil.example.com", 443),
        ("tracker.example.com", 443),
        ("x.example.com", 22),
        ("www.example.net", 443),
        ("203.0.1.1", 443),
    ] {
        assert!(!n.allowlist.decide(host, port).allowed, "{host}:{port}");
    }
    yes(&n.allowlist, "api.example.com", 443);
    yes(&n.allowlist, "203.0.113.200", 80);
    no(&n.allowlist, "203.0.113.5", 80);
}

#[test]
fn narrow_never_crosses_names_and_addresses() {
    let managed = allow(&["0.0.0.0/1", "128.0.0.0/1"]);
    let lower = allow(&["example.com", "10.0.0.1"]);
    let n = managed.narrow(&lower);
    assert_eq!(n.allowlist.allow.len(), 1);
    assert_eq!(n.allowlist.allow[0].to_string(), "10.0.0.1");
    let managed = allow(&["*.example.com"]);
    assert!(managed.narrow(&allow(&["93.184.216.34"])).allowlist.allow.is_empty());
    assert!(managed.narrow(&Allowlist::default()).allowlist.allow.is_empty());
}

#[test]
fn address_helpers_respect_deny_and_ports() {
    let l = list(&["127.0.0.1:8080", "10.0.0.0/8"], &["10.9.0.0/16"]);
    assert!(l.allow_for_address("127.0.0.1".parse().unwrap(), 8080).is_some());
    assert!(l.allow_for_address("::ffff:127.0.0.1".parse().unwrap(), 8080).is_some());
    assert!(l.allow_for_address("127.0.0.1".parse().unwrap(), 80).is_none());
    assert!(l.allow_for_address("10.1.2.3".parse().unwrap(), 443).is_some());
    assert!(l.allow_for_address("10.9.2.3".parse().unwrap(), 443).is_none());
    assert_eq!(l.deny_for_address("10.9.2.3".parse().unwrap(), 1).unwrap().to_string(), "10.9.0.0/16");
}

#[test]
fn request_host_parsing() {
    assert_eq!(RequestHost::parse("Example.com.").unwrap(), RequestHost::Name("example.com".into()));
    assert_eq!(RequestHost::parse("[::1]").unwrap(), RequestHost::Ip("::1".parse().unwrap()));
    assert_eq!(RequestHost::parse("::ffff:1.2.3.4").unwrap(), RequestHost::Ip("1.2.3.4".parse().unwrap()));
    assert!(RequestHost::parse("[1.2.3.4]").is_err());
    assert!(RequestHost::parse("2130706433").is_err());
}

#[test]
fn ipnet_edges() {
    let all4 = IpNet { addr: "0.0.0.0".parse().unwrap(), prefix: 0 };
    assert!(all4.contains("255.255.255.255".parse().unwrap()));
    assert!(!all4.contains("::1".parse().unwrap()));
    let one = IpNet { addr: "2001:db8::1".parse().unwrap(), prefix: 128 };
    assert!(one.contains("2001:db8::1".parse().unwrap()));
    assert!(!one.contains("2001:db8::2".parse().unwrap()));
}
