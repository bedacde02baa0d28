"""``session-tracker pull superinterface``: a Superinterface thread into the tracker.

Superinterface sends no webhooks. Its messages API lists a thread's messages::

    GET {base}/api/cloud/messages?publicApiKey=…&assistantId=…&threadId=…[&pageParam=<lastId>]
    -> {"data": [{"id", "role", "created_at", "content": [{"type": "text", "text": {"value"}}],
                  "runSteps": [...], ...}, ...], "hasNextPage": bool, "lastId": "..."}

(newest first; shape from superinterface's ``messagesResponse``/``serializeMessage``). This
command reads every page and posts the thread to ``POST /webhook/session-data`` as
``platform: superinterface`` with the ingest token; pulling the same finished thread again
is a duplicate delivery.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from session_tracker_cli import DEFAULT_URL
from session_tracker_cli.options import UrlOption

DEFAULT_SUPERINTERFACE = "https://superinterface.ai"

app = typer.Typer(help="Pull conversations from platforms that send no webhooks.", no_args_is_help=True)


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def fetch_pages(
    http: Any, *, public_api_key: str, assistant_id: str, thread_id: str, max_pages: int
) -> list[dict[str, Any]]:
    """Every page of the thread's messages (stops at ``max_pages``)."""
    pages: list[dict[str, Any]] = []
    params: dict[str, str] = {"publicApiKey": public_api_key, "assistantId": assistant_id, "threadId": thread_id}
    for _ in range(max_pages):
        response = http.get("/api/cloud/messages", params=params)
        if response.status_code >= 400:
            raise _fail(f"Superinterface answered {response.status_code}: {response.text[:200]}")
        page = response.json()
        if not isinstance(page, dict) or not isinstance(page.get("data"), list):
            raise _fail("Superinterface answered something that is not a messages page ({data, hasNextPage, lastId})")
        pages.append(page)
        if not page.get("hasNextPage") or not page.get("lastId"):
            return pages
        params["pageParam"] = str(page["lastId"])
    raise _fail(f"the thread has more than {max_pages} pages of messages (raise --max-pages)")


@app.command("superinterface")
def superinterface(
    thread_id: Annotated[str, typer.Option("--thread-id", help="The Superinterface thread.")],
    student: Annotated[str, typer.Option("--student", help="The student the conversation belongs to.")],
    assistant_id: Annotated[
        str, typer.Option("--assistant-id", envvar="SUPERINTERFACE_ASSISTANT_ID", help="The assistant of the thread.")
    ],
    public_api_key: Annotated[
        str,
        typer.Option("--public-api-key", envvar="SUPERINTERFACE_PUBLIC_API_KEY", help="Superinterface public API key."),
    ],
    superinterface_url: Annotated[
        str, typer.Option("--superinterface-url", envvar="SUPERINTERFACE_URL", help="Superinterface base URL.")
    ] = DEFAULT_SUPERINTERFACE,
    url: UrlOption = DEFAULT_URL,
    token: Annotated[
        str | None, typer.Option(envvar="INGEST_TOKEN", help="Ingest token (POST /webhook/session-data).")
    ] = None,
    max_pages: Annotated[int, typer.Option(min=1, max=1000, help="Stop after this many pages.")] = 100,
) -> None:
    """Pull a Superinterface thread's messages and store them as the student's conversation."""
    import httpx

    from session_tracker.platforms.superinterface import session_data_from_pages

    try:
        with httpx.Client(base_url=superinterface_url.rstrip("/"), timeout=30) as http:
            pages = fetch_pages(
                http, public_api_key=public_api_key, assistant_id=assistant_id, thread_id=thread_id, max_pages=max_pages
            )
        body = session_data_from_pages(pages, thread_id=thread_id, assistant_id=assistant_id, student_id=student)
        if not body["messages"]:
            raise _fail(f"thread {thread_id!r} has no messages")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with httpx.Client(base_url=url.rstrip("/"), timeout=60, headers=headers) as api:
            answer = api.post("/webhook/session-data", json=body)
    except httpx.HTTPError as exc:
        raise _fail(f"cannot reach {exc.request.url.host if exc.request else 'the server'}: {exc}") from exc
    if answer.status_code >= 400:
        try:
            detail = answer.json().get("detail")
        except ValueError:
            detail = answer.text[:200]
        raise _fail(f"{answer.status_code} from the tracker: {detail}")
    sys.stdout.write(json.dumps(answer.json(), indent=2) + "\n")


def register(root: typer.Typer) -> None:
    """Add ``pull`` to the ``session-tracker`` app."""
    root.add_typer(app, name="pull")
