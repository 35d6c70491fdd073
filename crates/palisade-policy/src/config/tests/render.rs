//! What `palisade policy` shows, and where the files are looked for.

use super::*;

#[test]
fn render_and_json_show_values_and_sources() {
    let f = fixture();
    write(&f.user, "network = \"on\"\n");
    let r = f.load();
    let text = r.render();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("workspace "), "{text}");
    let net = lines.iter().find(|l| l.starts_with("network ")).unwrap();
    assert!(net.ends_with(&format!("user ({}:1)", f.user.display())), "{net}");
    let mode = lines.iter().find(|l| l.starts_with("mode ")).unwrap();
    assert!(mode.ends_with("  default"), "{mode}");
    // Values start in the same column.
    let col = |l: &str, v: &str| l.find(v).unwrap();
    assert_eq!(col(net, "on"), col(mode, "workspace-write"));
    assert!(lines.iter().any(|l| l.starts_with("writable_roots") && l.contains("(none)")));
    assert!(lines.iter().any(|l| l.trim_start().starts_with(&f.home.join(".gnupg").display().to_string())));

    let j = r.to_json();
    assert_eq!(j["network"]["value"], "on");
    assert_eq!(j["network"]["source"]["layer"], "user");
    assert_eq!(j["network"]["source"]["line"], 1);
    assert_eq!(j["network"]["source"]["path"], f.user.display().to_string());
    assert_eq!(j["mode"]["source"]["layer"], "default");
    assert_eq!(j["deny_read"][0]["value"], f.home.join(".ssh").display().to_string());
    assert_eq!(j["workspace"], f.ws.display().to_string());
    assert_eq!(j["keep_processes"]["value"], false);
}

#[test]
fn from_env_follows_xdg() {
    use std::ffi::OsString;
    let vars = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| OsString::from(v))
    };
    let r =
        LoadRequest::from_vars("/w", Overrides::default(), vars(&[("HOME", "/home/u"), ("XDG_CONFIG_HOME", "/cfg")]));
    #[cfg(not(windows))]
    {
        assert_eq!(r.home, Some(PathBuf::from("/home/u")));
        assert_eq!(r.user_config, Some(PathBuf::from("/cfg/palisade/config.toml")));
        assert_eq!(r.managed_config, Some(PathBuf::from("/etc/palisade/managed.toml")));
        let r = LoadRequest::from_vars(
            "/w",
            Overrides::default(),
            vars(&[("HOME", "/home/u"), ("XDG_CONFIG_HOME", "rel")]),
        );
        assert_eq!(r.user_config, Some(PathBuf::from("/home/u/.config/palisade/config.toml")));
        let r = LoadRequest::from_vars("/w", Overrides::default(), vars(&[("HOME", "")]));
        assert_eq!((r.home, r.user_config), (None, None));
    }
    let _ = r;
}

#[test]
fn layer_display() {
    assert_eq!(Layer::Default.to_string(), "default");
    assert_eq!(Layer::CommandLine.to_string(), "command line");
    assert_eq!(Layer::User("/u.toml".into()).to_string(), "user (/u.toml)");
    assert_eq!(Source { layer: Layer::Managed("/m.toml".into()), line: Some(4) }.to_string(), "managed (/m.toml:4)");
}
