"""Options several CLI commands take are defined once (session_tracker_cli.options): each reads
alike in every command's --help. A command that writes its own copy with other words fails here."""

from __future__ import annotations

from collections import defaultdict

import typer

from session_tracker_cli.cli import app

# option -> how many definitions may exist across all commands, and why more than one
ALLOWED = {
    "since": 2,  # sessions by date or ISO time; `query`'s UTC day over session files
    "until": 2,
    "as_json": 1,
    "limit": 1,
    "endpoint_url": 1,
    "url": 2,  # the API to read; mcp-proxy's (no default: the proxy runs without one)
    "table": 3,  # read; work on (admin commands); usage's (also TABLE_NAME, as the functions name it)
    "token": 4,  # read, admin, ingest for mcp-proxy, ingest for pull
}


def _options() -> dict[str, dict[tuple[object, ...], list[str]]]:
    found: dict[str, dict[tuple[object, ...], list[str]]] = defaultdict(lambda: defaultdict(list))

    def walk(command: object, name: str) -> None:
        subs = getattr(command, "commands", None)
        if subs:
            for sub_name, sub in subs.items():
                walk(sub, f"{name} {sub_name}".strip())
            return
        for param in command.params:  # type: ignore[attr-defined]
            if param.param_type_name == "option":
                key = (tuple(param.opts), param.help, str(param.envvar))
                found[param.name][key].append(name)

    walk(typer.main.get_command(app), "")
    return found


def test_shared_options_have_one_definition() -> None:
    found = _options()
    for option, allowed in ALLOWED.items():
        definitions = found[option]
        assert len(definitions) <= allowed, (option, {k[1]: v for k, v in definitions.items()})


def test_every_reading_command_takes_since_and_until_with_their_aliases() -> None:
    found = _options()
    commands = {c for key, names in found["since"].items() if key[0] == ("--since", "--from") for c in names}
    assert {"sessions", "export", "students", "student"} <= commands
    assert all(key[0] == ("--until", "--to") for key in found["until"] if "query" not in found["until"][key])
