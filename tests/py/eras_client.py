"""The official Python SDK (mcp 2.x) against catwalk: connects in the given mode, lists the tools, calls echo and
a tool that asks the user (answered by the elicitation callback), and prints what it negotiated and got, as one
JSON line. The tool with x-mcp-header arguments has them mirrored into Mcp-Param-* headers in the 2026 era.

    python eras_client.py URL auto|legacy
"""

import asyncio
import json
import sys

from mcp import Client, types


async def elicit(context, params):
    return types.ElicitResult(action="accept", content={"username": "py", "email": "py@example.com"})


async def main(url: str, mode: str) -> None:
    async with Client(url, mode=mode, elicitation_callback=elicit) as client:
        tools = await client.list_tools()
        echo = await client.call_tool("echo", {"message": "from python"})
        routed = await client.call_tool("test_header_param", {"region": "eu-west", "priority": 2})
        elicited = await client.call_tool("test_elicitation", {"message": "Who are you?"})
        print(
            json.dumps(
                {
                    "version": client.protocol_version,
                    "server": client.server_info.name,
                    "tools": [tool.name for tool in tools.tools],
                    "echo": echo.content[0].text,
                    "routed": routed.content[0].text,
                    "elicited": elicited.content[0].text,
                }
            )
        )


asyncio.run(main(sys.argv[1], sys.argv[2]))
