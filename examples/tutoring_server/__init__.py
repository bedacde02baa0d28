"""Example tutoring MCP server wired with the session tracker's MCP-side client."""
