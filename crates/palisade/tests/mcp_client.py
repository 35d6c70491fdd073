"""An MCP client (the official Python SDK) driving `palisade mcp`, for tests/mcp.rs.

usage: mcp_client.py PALISADE WORKSPACE OUTSIDE_FILE MARKER (tools|disconnect|progress)
`tools`: lists the tools and makes the calls the test checks, printing one JSON object;
`disconnect`: starts `sleep MARKER` through `run`, prints "started", and exits mid-command;
`progress`: runs a command of about 6 s with a progress callback, printing the notifications
and the result as one JSON object.
"""

import json
import sys

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError

palisade, workspace, outside_file, marker, action = sys.argv[1:6]


def result_json(result):
    if result.structured_content is not None:
        return result.structured_content
    return json.loads(result.content[0].text)


async def refused(session, name, arguments):
    """The JSON-RPC error message of a call expected to fail (None if it succeeded)."""
    try:
        await session.call_tool(name, arguments)
    except MCPError as e:
        return str(e)
    return None


async def tools(session):
    out = {}
    listed = await session.list_tools()
    out["tools"] = sorted(t.name for t in listed.tools)
    out["echo"] = result_json(await session.call_tool("run", {"command": ["echo", "hello-" + marker]}))
    out["shell"] = result_json(
        await session.call_tool("run", {"command": "cat; echo \"$PAL_X\"", "stdin": "in-" + marker, "env": {"PAL_X": "x"}})
    )
    out["write_outside"] = result_json(
        await session.call_tool("run", {"command": ["sh", "-c", f"echo pwned > {outside_file}"]})
    )
    out["read_only"] = result_json(
        await session.call_tool("run", {"command": ["sh", "-c", "echo x > ro-" + marker], "read_only": True})
    )
    out["truncated"] = result_json(
        await session.call_tool("run", {"command": ["sh", "-c", "yes | head -c 100000"], "max_output_bytes": 1000})
    )
    out["timeout"] = result_json(await session.call_tool("run", {"command": ["sleep", "30"], "timeout_seconds": 1}))
    out["widen_network"] = await refused(session, "run", {"command": ["true"], "network": "on"})
    out["widen_writable"] = await refused(session, "run", {"command": ["true"], "writable": ["/"]})
    out["unknown_tool"] = await refused(session, "no-such-tool", {})
    out["policy"] = result_json(await session.call_tool("policy", {}))
    print(json.dumps(out))


async def disconnect(session):
    async with anyio.create_task_group() as tg:
        tg.start_soon(session.call_tool, "run", {"command": ["sleep", marker]})
        await anyio.sleep(2)
        print("started", flush=True)
        tg.cancel_scope.cancel()


async def progress(session):
    seen = []

    async def on_progress(value, total, message):
        seen.append({"progress": value, "total": total, "message": message})

    result = await session.call_tool(
        "run", {"command": ["sh", "-c", "sleep 6; echo done-" + marker]}, progress_callback=on_progress
    )
    print(json.dumps({"notifications": seen, "result": result_json(result)}))


async def main():
    params = StdioServerParameters(command=palisade, args=["mcp", "--workspace", workspace])
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            await {"tools": tools, "disconnect": disconnect, "progress": progress}[action](session)


anyio.run(main)
