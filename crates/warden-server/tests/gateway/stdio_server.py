"""A minimal stdio MCP server for the gateway's stdio-bridge tests.

Tools: whoami_env (the WARDEN_* environment it was started with, and whether any
other variable leaked in), slow_progress (two progress notifications, then a result),
and crash (exits at once).
"""
import json
import os
import sys


def send(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


TOOLS = [
    {"name": "whoami_env", "inputSchema": {"type": "object"}},
    {"name": "slow_progress", "inputSchema": {"type": "object"}},
    {"name": "crash", "inputSchema": {"type": "object"}},
]

for line in sys.stdin:
    msg = json.loads(line)
    method, mid = msg.get("method"), msg.get("id")
    params = msg.get("params") or {}
    if mid is None:
        continue  # notifications and replies
    if method == "initialize":
        result = {
            "protocolVersion": params.get("protocolVersion", "2025-11-25"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "stdio-test", "version": "0"},
        }
    elif method == "tools/list":
        result = {"tools": TOOLS}
    elif method == "tools/call":
        name = params.get("name")
        if name == "crash":
            sys.exit(3)
        if name == "slow_progress":
            token = (params.get("_meta") or {}).get("progressToken")
            for step in (1, 2):
                send({"jsonrpc": "2.0", "method": "notifications/progress",
                      "params": {"progressToken": token, "progress": step, "total": 2}})
        env = {k: v for k, v in os.environ.items() if k.startswith("WARDEN_")}
        others = sorted(k for k in os.environ if not k.startswith("WARDEN_")
                        and k not in ("PATH", "HOME", "LANG", "STDIO_TEST", "LC_CTYPE", "PWD"))
        structured = {"env": env, "others": others, "extra": os.environ.get("STDIO_TEST")}
        result = {"content": [{"type": "text", "text": json.dumps(structured)}],
                  "structuredContent": structured}
    elif method == "ping":
        result = {}
    else:
        send({"jsonrpc": "2.0", "id": mid, "error": {"code": -32601, "message": "Method not found"}})
        continue
    send({"jsonrpc": "2.0", "id": mid, "result": result})
