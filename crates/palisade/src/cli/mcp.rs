//! `palisade mcp`: a Model Context Protocol server over stdio (the official Rust SDK, `rmcp`)
//! with three tools: `run` (a command in the sandbox of the server's policy, or a narrower one),
//! `policy` (the effective policy, as `palisade policy --json`) and `check` (as `palisade check
//! --json`). The policy is loaded once, like `palisade run` loads it; a call may narrow it
//! (`narrow.rs`), never widen it. Each command runs on its own thread (`exec.rs`) and is ended
//! when its call is cancelled, the client goes away or its timeout expires.
//!
//! Input that is not JSON at all is ignored by rmcp (as the other official SDKs do: there is no
//! id to answer); JSON that is not a valid message gets "Invalid request"; an unknown tool,
//! unknown or ill-typed arguments and arguments over [`MAX_ARGUMENT_BYTES`] get "Invalid
//! params".

mod exec;
mod narrow;

use super::args::PolicyArgs;
use super::audit::{self, Audit};
use super::load::{load, nested_refusal, request, sandbox_options};
use super::{fail, Failure};
use narrow::Narrowing;
use palisade::policy::config::Resolved;
use palisade::SandboxOptions;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ErrorData, Implementation, JsonObject,
    ListToolsResult, PaginatedRequestParams, ProgressNotificationParam, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{ServerHandler, ServiceExt};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The largest `arguments` object a call may carry (serialized): a command line, its
/// environment and its input, not a file transfer.
const MAX_ARGUMENT_BYTES: usize = 1024 * 1024;
const DEFAULT_TIMEOUT_SECONDS: f64 = 600.0;
const MAX_TIMEOUT_SECONDS: f64 = 24.0 * 3600.0;
const DEFAULT_MAX_OUTPUT_BYTES: usize = 64 * 1024;
const MAX_MAX_OUTPUT_BYTES: usize = 4 * 1024 * 1024;
/// How often a long command reports that it is still running (when the client asked for
/// progress).
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

pub(super) fn serve(args: &PolicyArgs) -> Result<i32, Failure> {
    if let Some(e) = nested_refusal() {
        return Err(e.into());
    }
    let (req, rule) = request(args)?;
    let resolved = load(args)?;
    // Refuse at start, with Palisade's one line, a policy this host cannot enforce.
    palisade::Sandbox::with_options(resolved.policy.clone(), sandbox_options(&resolved))?;
    let mut policy_json = resolved.to_json();
    if let Some(map) = policy_json.as_object_mut() {
        map.insert("workspace_rule".into(), json!({"rule": rule.as_str(), "text": rule.to_string()}));
    }
    let workspace = resolved.policy.workspace.clone();
    let server = Server {
        state: Arc::new(State {
            options: sandbox_options(&resolved),
            policy_json,
            check_args: check_argv(args, &workspace),
            resolved,
        }),
    };
    drop(req);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(format!("cannot start the MCP server's runtime: {e}")))?;
    runtime.block_on(async move {
        let service = server
            .serve(rmcp::transport::stdio())
            .await
            .map_err(|e| fail(format!("MCP initialization failed: {e}")))?;
        service.waiting().await.map_err(|e| fail(format!("the MCP server stopped: {e}")))?;
        Ok(0)
    })
}

struct State {
    resolved: Resolved,
    options: SandboxOptions,
    policy_json: Value,
    check_args: Vec<String>,
}

#[derive(Clone)]
struct Server {
    state: Arc<State>,
}

/// The `run` tool's arguments. Unknown fields are refused, so that a misspelt narrowing
/// (`readonly`) is not silently ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunArgs {
    command: CommandArg,
    cwd: Option<PathBuf>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    stdin: Option<String>,
    timeout_seconds: Option<f64>,
    max_output_bytes: Option<usize>,
    read_only: Option<bool>,
    network: Option<String>,
    allow_net: Option<Vec<String>>,
    writable: Option<Vec<PathBuf>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum CommandArg {
    Argv(Vec<String>),
    Shell(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoArgs {}

impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("palisade", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Run shell commands in Palisade's sandbox: writes only inside the workspace, protected \
                 metadata stays read-only, network as the policy says. A refusal (Read-only file system, \
                 Permission denied, a refused connection) is the sandbox: do not retry it.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools(&self.state.resolved.policy.workspace)))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let arguments = request.arguments.unwrap_or_default();
        let size = serde_json::to_vec(&arguments).map(|v| v.len()).unwrap_or(usize::MAX);
        if size > MAX_ARGUMENT_BYTES {
            return Err(ErrorData::invalid_params(
                format!("arguments too large: {size} bytes (at most {MAX_ARGUMENT_BYTES})"),
                None,
            ));
        }
        match request.name.as_ref() {
            "run" => {
                let args: RunArgs = parse_args(arguments)?;
                Ok(self.run(args, context).await?.into())
            }
            "policy" => {
                let _: NoArgs = parse_args(arguments)?;
                Ok(text_result(&self.state.policy_json, false).into())
            }
            "check" => {
                let _: NoArgs = parse_args(arguments)?;
                Ok(self.check().await.into())
            }
            other => Err(ErrorData::invalid_params(format!("unknown tool {other:?} (run, policy, check)"), None)),
        }
    }
}

fn parse_args<T: serde::de::DeserializeOwned>(arguments: JsonObject) -> Result<T, ErrorData> {
    serde_json::from_value(Value::Object(arguments))
        .map_err(|e| ErrorData::invalid_params(format!("invalid arguments: {e}"), None))
}

fn text_result(value: &Value, is_error: bool) -> CallToolResult {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    let mut result = if is_error {
        CallToolResult::error(vec![ContentBlock::text(text)])
    } else {
        CallToolResult::success(vec![ContentBlock::text(text)])
    };
    result.structured_content = Some(value.clone());
    result
}

impl Server {
    async fn run(&self, args: RunArgs, context: RequestContext<RoleServer>) -> Result<CallToolResult, ErrorData> {
        let loaded = &self.state.resolved.policy;
        let narrowing = Narrowing {
            read_only: args.read_only,
            network: args.network,
            allow_net: args.allow_net,
            writable: args.writable,
        };
        let policy = if narrowing.is_empty() {
            loaded.clone()
        } else {
            narrow::narrow(loaded, &narrowing).map_err(|e| ErrorData::invalid_params(e, None))?
        };
        let argv = match args.command {
            CommandArg::Argv(v) if v.is_empty() => return Err(ErrorData::invalid_params("command: empty", None)),
            CommandArg::Argv(v) => v.into_iter().map(Into::into).collect(),
            CommandArg::Shell(s) => shell(&s),
        };
        let cwd = working_directory(&loaded.workspace, args.cwd.as_deref())?;
        // A log the administrator requires and that cannot be written refuses the call.
        let log = match Audit::open(&self.state.resolved) {
            Ok(log) => log,
            Err(f) => return Ok(text_result(&json!({"error": format!("palisade: {}", f.message)}), true)),
        };
        let audited_argv = argv.clone();
        let audited_policy = policy.clone();
        let timeout = args.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS);
        if !(timeout > 0.0 && timeout <= MAX_TIMEOUT_SECONDS) {
            return Err(ErrorData::invalid_params(
                format!("timeout_seconds: must be more than 0 and at most {MAX_TIMEOUT_SECONDS}"),
                None,
            ));
        }
        let max_output = args.max_output_bytes.unwrap_or(DEFAULT_MAX_OUTPUT_BYTES).min(MAX_MAX_OUTPUT_BYTES);
        let job_cwd = cwd.clone();
        let started_at = std::time::SystemTime::now();
        let job = exec::Job {
            policy,
            options: self.state.options.clone(),
            argv,
            cwd,
            env: args.env,
            stdin: args.stdin,
            timeout: Duration::from_secs_f64(timeout),
            max_output,
        };
        let cancel = Arc::new(AtomicBool::new(false));
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        let flag = cancel.clone();
        std::thread::Builder::new()
            .name("palisade-mcp-run".into())
            .spawn(move || {
                let _ = tx.send(exec::run(job, flag));
            })
            .map_err(|e| ErrorData::internal_error(format!("cannot start the command's thread: {e}"), None))?;
        // Ends the command if this call is dropped without being cancelled (the server
        // shutting down): nothing it started is left running.
        let _guard = CancelOnDrop(cancel.clone());
        let progress = context.meta.get_progress_token();
        let started = std::time::Instant::now();
        let outcome = loop {
            tokio::select! {
                result = &mut rx => break result,
                _ = context.ct.cancelled(), if !cancel.load(Ordering::SeqCst) => cancel.store(true, Ordering::SeqCst),
                _ = tokio::time::sleep(PROGRESS_EVERY), if progress.is_some() => {
                    if let Some(token) = &progress {
                        let secs = started.elapsed().as_secs();
                        let param = ProgressNotificationParam::new(token.clone(), secs as f64)
                            .with_message(format!("running for {secs} s"));
                        let _ = context.peer.notify_progress(param).await;
                    }
                }
            }
        };
        let entry = audit::Entry {
            via: "mcp",
            argv: &audited_argv,
            cwd: Some(job_cwd),
            resolved: &self.state.resolved,
            policy: &audited_policy,
            started: started_at,
        };
        match outcome {
            Ok(Ok(o)) => {
                log.write(&entry.ran(audit::Ran {
                    layers: o.layers.clone(),
                    status: o.status,
                    duration: o.duration,
                    network: &o.network,
                    notices: &o.notices,
                    denials: o.denials.clone(),
                }));
                Ok(text_result(&outcome_json(&o), false))
            }
            Ok(Err(refusal)) => {
                log.write(&entry.refused(&fail(refusal.clone())));
                Ok(text_result(&json!({"error": format!("palisade: {refusal}")}), true))
            }
            Err(_) => Err(ErrorData::internal_error("the command's thread ended without a result", None)),
        }
    }

    /// `palisade check --json` with the server's policy flags, as a child process: the same
    /// report, and the host probes it makes stay out of the server.
    async fn check(&self) -> CallToolResult {
        let args = self.state.check_args.clone();
        let result = tokio::task::spawn_blocking(move || {
            let exe = std::env::current_exe()?;
            std::process::Command::new(exe).args(&args).stdin(std::process::Stdio::null()).output()
        })
        .await;
        match result {
            Ok(Ok(out)) => match serde_json::from_slice::<Value>(&out.stdout) {
                Ok(v) => text_result(&v, false),
                Err(_) => text_result(
                    &json!({"error": String::from_utf8_lossy(&out.stderr).trim(), "status": out.status.code()}),
                    true,
                ),
            },
            Ok(Err(e)) => text_result(&json!({"error": format!("cannot run palisade check: {e}")}), true),
            Err(e) => text_result(&json!({"error": format!("palisade check failed: {e}")}), true),
        }
    }
}

struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn shell(script: &str) -> Vec<std::ffi::OsString> {
    if cfg!(windows) {
        vec!["cmd.exe".into(), "/d".into(), "/s".into(), "/c".into(), script.into()]
    } else {
        vec!["/bin/sh".into(), "-c".into(), script.into()]
    }
}

/// The directory the command starts in: the workspace, or a directory inside it (relative
/// paths are taken from the workspace).
fn working_directory(workspace: &Path, cwd: Option<&Path>) -> Result<PathBuf, ErrorData> {
    let Some(cwd) = cwd else { return Ok(workspace.to_path_buf()) };
    let joined = workspace.join(cwd);
    let real = std::fs::canonicalize(&joined)
        .map_err(|e| ErrorData::invalid_params(format!("cwd: {}: {e}", joined.display()), None))?;
    let ws = std::fs::canonicalize(workspace).unwrap_or_else(|_| workspace.to_path_buf());
    if !real.starts_with(&ws) {
        return Err(ErrorData::invalid_params(
            format!("cwd: {} is outside the workspace {}", real.display(), ws.display()),
            None,
        ));
    }
    Ok(real)
}

fn outcome_json(o: &exec::Outcome) -> Value {
    let network: Vec<_> = o
        .network
        .iter()
        .map(|r| {
            json!({"protocol": r.protocol, "host": r.host, "port": r.port, "allowed": r.allowed, "rule": r.rule,
                "reason": r.reason, "bytes_up": r.bytes_up, "bytes_down": r.bytes_down,
                "duration_ms": r.duration.as_millis() as u64})
        })
        .collect();
    json!({
        "exit_code": o.status.code(),
        "signal": o.status.signal(),
        "status": o.status.shell_code(),
        "timed_out": o.timed_out,
        "cancelled": o.cancelled,
        "duration_ms": o.duration.as_millis() as u64,
        "stdout": o.stdout.text(),
        "stderr": o.stderr.text(),
        "stdout_bytes": o.stdout.total,
        "stderr_bytes": o.stderr.total,
        "notices": o.notices,
        "network": network,
    })
}

/// The flags that make `palisade check` load the policy this server loaded.
fn check_argv(args: &PolicyArgs, workspace: &Path) -> Vec<String> {
    let mut v = vec!["check".to_string(), "--json".to_string(), "--workspace".to_string()];
    v.push(workspace.display().to_string());
    for w in &args.writable {
        v.extend(["--writable".to_string(), w.display().to_string()]);
    }
    if let Some(m) = args.mode {
        v.extend(["--mode".to_string(), m.as_str().to_string()]);
    }
    if let Some(n) = &args.network {
        v.extend(["--network".to_string(), n.as_str().to_string()]);
    }
    for h in &args.allow_net {
        v.extend(["--allow-net".to_string(), h.clone()]);
    }
    for k in &args.keep_env {
        v.extend(["--keep-env".to_string(), k.clone()]);
    }
    if args.keep_processes {
        v.push("--keep-processes".to_string());
    }
    v
}

fn tools(workspace: &Path) -> Vec<Tool> {
    let narrowing = json!({
        "read_only": {"type": "boolean", "description": "true: nothing is writable (narrows the policy)"},
        "network": {"type": "string", "enum": ["off", "allow", "on"],
            "description": "Narrow the network: off always; allow (with allow_net) or on only if the server's policy has them"},
        "allow_net": {"type": "array", "items": {"type": "string"},
            "description": "Only these hosts (each must be allowed by the server's policy)"},
        "writable": {"type": "array", "items": {"type": "string"},
            "description": "The extra writable roots to keep (each inside one the server's policy has)"},
    });
    let mut run_props = json!({
        "command": {"oneOf": [
            {"type": "array", "items": {"type": "string"}, "minItems": 1, "description": "argv: program and arguments"},
            {"type": "string", "description": "a shell command line (sh -c; cmd /c on Windows)"}]},
        "cwd": {"type": "string", "description": "working directory, inside the workspace (relative to it if relative)"},
        "env": {"type": "object", "additionalProperties": {"type": "string"}, "description": "extra environment variables"},
        "stdin": {"type": "string", "description": "text given to the command on its standard input"},
        "timeout_seconds": {"type": "number", "description": "kill the command after this long (default 600)"},
        "max_output_bytes": {"type": "integer", "minimum": 0,
            "description": "keep at most this many bytes of stdout and of stderr each (default 65536)"},
    });
    if let (Some(p), Some(n)) = (run_props.as_object_mut(), narrowing.as_object()) {
        p.extend(n.clone());
    }
    let schema = |props: Value, required: &[&str]| -> Arc<JsonObject> {
        let v = json!({"type": "object", "properties": props, "required": required, "additionalProperties": false});
        Arc::new(v.as_object().cloned().unwrap_or_default())
    };
    vec![
        Tool::new(
            "run",
            format!(
                "Run a command in Palisade's sandbox (workspace {}). Returns exit status, stdout and stderr \
                 (bounded, with a truncation marker), duration, Palisade's notices and, with network allow, \
                 the connections made. Policy fields only narrow the server's policy.",
                workspace.display()
            ),
            schema(run_props, &["command"]),
        ),
        Tool::new(
            "policy",
            "The effective policy and the layer that set each value (as `palisade policy --json`).",
            schema(json!({}), &[]),
        ),
        Tool::new(
            "check",
            "What this host's sandboxing offers and whether the policy can be enforced (as `palisade check --json`).",
            schema(json!({}), &[]),
        ),
    ]
}
