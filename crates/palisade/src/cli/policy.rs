//! `palisade policy`: the effective policy, each value with the layer that set it, the rule that
//! chose the workspace and the configuration files looked for; as text or JSON.

use super::args::PolicyArgs;
use super::load::request;
use super::Failure;
use palisade::policy::config;

pub(super) fn show(args: &PolicyArgs, json: bool) -> Result<i32, Failure> {
    let (req, rule) = request(args)?;
    let resolved = config::load(&req)?;
    if json {
        let mut v = resolved.to_json();
        if let Some(map) = v.as_object_mut() {
            map.insert("workspace_rule".into(), serde_json::json!({"rule": rule.as_str(), "text": rule.to_string()}));
        }
        outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        out!("{}", resolved.render());
        outln!("{:<30} {rule}", "workspace chosen as");
        // Which files were looked for, so that a file in the wrong place is noticed.
        let project = resolved.policy.workspace.join(".palisade").join("config.toml");
        let files = [
            ("user file", req.user_config.as_deref()),
            ("project file", Some(project.as_path())),
            ("managed file", req.managed_config.as_deref()),
        ];
        for (name, path) in files {
            match path {
                Some(p) => outln!("{name:<30} {} ({})", p.display(), if p.exists() { "read" } else { "not present" }),
                None => outln!("{name:<30} (none: no home directory)"),
            }
        }
    }
    Ok(0)
}
