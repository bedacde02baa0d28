"""Build the OpenAPI document of every route in ``template.yaml``.

Each function has its own Powertools resolver; this merges their generated schemas
into one document, stored in the layer as ``session_tracker/openapi.json`` and served
by ``GET /openapi.json``. ``make openapi`` rewrites it; a test fails when it is stale.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path
from typing import Any

from session_tracker.access import required_scope
from session_tracker_local.cfn import Template
from session_tracker_local.lambda_host import load_handler

TITLE = "tutor-session-tracker"
DESCRIPTION = (
    "Session logging for voice AI tutors. Every route but /health and /openapi.json needs "
    "`Authorization: Bearer <credential>` with the scope in the operation's `x-required-scope`: "
    "`ingest` (INGEST_TOKEN) may only log calls and session data, `read` (READ_TOKEN) reads, "
    "`admin` (ADMIN_TOKEN) may do everything; named API keys carry one of these scopes. "
    "Unknown credentials are 401, a credential without the scope is 403 naming it. The VAPI "
    "webhook uses its own secret (bearer, X-Vapi-Secret or HMAC). "
    "Errors are application/problem+json (RFC 9457)."
)


def build_document(root: Path) -> dict[str, Any]:
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    import session_tracker

    os.environ.setdefault("TABLE_NAME", "openapi")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    template = Template.load(root / "template.yaml")
    document: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for spec in sorted(template.functions(), key=lambda s: s.logical_id):
        if not any(e.type == "HttpApi" for e in spec.events):
            continue
        module, _ = load_handler(spec)
        app = getattr(module, "app", None)
        if app is None:
            continue
        schema = json.loads(
            app.get_openapi_json_schema(
                title=TITLE,
                version=session_tracker.__version__,
                description=DESCRIPTION,
                security_schemes={"bearerAuth": HTTPBearer(bearerFormat="opaque token")},
            )
        )
        document = document or schema
        for path, ops in schema.get("paths", {}).items():
            for method, op in ops.items():
                scope = required_scope(method, re.sub(r"\{[^}]+\}", "x", path))
                if scope is not None and op.get("security") and not path.startswith("/webhook/vapi"):
                    op["x-required-scope"] = scope.value
            paths.setdefault(path, {}).update(ops)
        schemas.update(schema.get("components", {}).get("schemas", {}))
    document["paths"] = dict(sorted(paths.items()))
    document.setdefault("components", {})["schemas"] = dict(sorted(schemas.items()))
    document.pop("servers", None)
    return document


def render(root: Path) -> str:
    return json.dumps(build_document(root), indent=2, sort_keys=False) + "\n"


def target(root: Path) -> Path:
    return root / "layers" / "common" / "session_tracker" / "openapi.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="rewrite the stored document")
    parser.add_argument("--root", type=Path, default=Path.cwd())
    args = parser.parse_args()
    text = render(args.root)
    if args.write:
        target(args.root).write_text(text, encoding="utf-8")
        print(f"wrote {target(args.root)}")
    else:
        print(text)


if __name__ == "__main__":
    main()
