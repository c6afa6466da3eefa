"""AI assistants over MCP (Model Context Protocol): the desk's tools and resources for them.

An assistant acts as the person whose API token it holds, through the same domain functions
as the REST API, within that person's role and the token's scope and every environment's tool
policy; each call is audited with `"via": "mcp"`. No tool approves anything: approvals stay
with people in the desk. `http.py` serves it at /mcp beside Flask, `stdio.py` for
`desk mcp --stdio`.
"""
