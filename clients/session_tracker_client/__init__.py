"""MCP-side logging client (no Lambda dependencies)."""
