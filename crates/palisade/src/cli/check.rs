//! `palisade check`: what this host offers (each mechanism tried), whether the effective policy
//! would run here and with which layers, and the elevated Windows mode's state; as text or JSON.

use super::args::PolicyArgs;
use super::load::{load, nested_refusal, sandbox_options};
use super::Failure;
use palisade::policy::config;
use palisade::{exit_code, Sandbox};

pub(super) fn check(args: &PolicyArgs, json: bool, probe: bool) -> Result<i32, Failure> {
    let report = palisade::check_host();
    let policy = load(args);
    let sandbox = match &policy {
        Ok(_) if nested_refusal().is_some() => nested_refusal().map(Err),
        Ok(r) => Some(Sandbox::with_options(r.policy.clone(), sandbox_options(r)).and_then(|s| {
            // The sandbox is only prepared here; a spawn would find out that the namespaces it
            // needs are missing. The probe above already tried them: say now what run would.
            let needs_namespaces = s.enforcement().layers.iter().any(|l| l.name == "user namespace" && l.active);
            if needs_namespaces && !report.namespaces {
                let why = report
                    .mechanisms
                    .iter()
                    .find(|m| !m.active)
                    .map(|m| m.detail.clone())
                    .unwrap_or_else(|| "user namespaces are unavailable".into());
                return Err(palisade::Error::Unenforceable {
                    what: "the sandbox's namespaces".into(),
                    why,
                    fix: format!("run `{}` where AppArmor restricts user namespaces, or set `[linux] allow_landlock_only = true` to run with Landlock and seccomp only", sudo_setup_hint()),
                });
            }
            Ok(s)
        })),
        Err(_) => None,
    };
    // The elevated Windows mode's state. With `[windows] mode = "elevated"` a failed line is
    // a refusal (the mode cannot be trusted to enforce), unless the sandbox already refused;
    // otherwise the lines are information.
    let required = matches!(&policy, Ok(r) if r.windows.mode == config::WindowsMode::Elevated);
    let elevated = if probe { palisade::check_elevated_probing(required) } else { palisade::check_elevated(required) };
    let sandbox = match (sandbox, &elevated) {
        (Some(Ok(_)), Some(e)) if required && e.first_failure().is_some() => {
            let (item, detail) = e.first_failure().expect("checked");
            Some(Err(palisade::Error::Unenforceable {
                what: "[windows] mode = \"elevated\"".into(),
                why: format!("the elevated setup is not intact ({item}: {detail})"),
                fix: "run `palisade setup --elevated` again (see the elevated mode's lines above)".into(),
            }))
        }
        (s, _) => s,
    };
    if json {
        let mech: Vec<_> = report
            .mechanisms
            .iter()
            .map(|l| serde_json::json!({"name": l.name, "available": l.active, "detail": l.detail}))
            .collect();
        let (layers, refusal) = match &sandbox {
            Some(Ok(s)) => (
                s.enforcement()
                    .layers
                    .iter()
                    .map(|l| serde_json::json!({"name": l.name, "active": l.active, "detail": l.detail}))
                    .collect(),
                None,
            ),
            Some(Err(e)) => (vec![], Some(e.to_string())),
            None => (vec![], policy.as_ref().err().map(|f| f.message.clone())),
        };
        outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "host": report.facts.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect::<serde_json::Map<_, _>>(),
                "mechanisms": mech,
                "policy_layers": layers,
                "refusal": refusal,
                "elevated": elevated.as_ref().map(|e| serde_json::json!({
                    "required": required,
                    "usable": e.usable(),
                    "lines": e.lines_json(),
                })),
                "notes": report.notes,
            }))
            .unwrap_or_default()
        );
    } else {
        outln!("Host");
        for (k, v) in &report.facts {
            outln!("  {k:<36} {v}");
        }
        outln!("\nMechanisms (each one tried in a throw-away process)");
        for m in &report.mechanisms {
            outln!("  {:<36} {:<4} {}", m.name, if m.active { "yes" } else { "NO" }, m.detail);
        }
        if let Some(e) = &elevated {
            if required {
                outln!("\nElevated mode ([windows] mode = \"elevated\"; `palisade setup --elevated`)");
            } else {
                outln!("\nElevated mode (information: [windows] mode is not \"elevated\")");
            }
            for l in e.lines() {
                outln!("  {l}");
            }
        }
        outln!("\nThe effective policy on this host");
        match &sandbox {
            Some(Ok(s)) => {
                for l in &s.enforcement().layers {
                    outln!("  {:<36} {:<4} {}", l.name, if l.active { "on" } else { "off" }, l.detail);
                }
            }
            Some(Err(e)) => outln!("  `palisade run` would refuse: {e}"),
            None => {
                outln!("  configuration error: {}", policy.as_ref().err().map(|f| f.message.as_str()).unwrap_or(""))
            }
        }
        for n in &report.notes {
            outln!("\nNote: {n}");
        }
    }
    Ok(match sandbox {
        Some(Ok(_)) => 0,
        _ => exit_code::PALISADE_ERROR,
    })
}

/// `sudo <this binary's full path> setup`: `sudo` does not search `~/.local/bin`.
fn sudo_setup_hint() -> String {
    match std::env::current_exe() {
        Ok(p) => format!("sudo {} setup", p.display()),
        Err(_) => "sudo palisade setup".into(),
    }
}
