"""session_config.yaml: interpolation, validation errors naming the key, lazy secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from session_tracker.config import AppConfig, SecretRef, load_config, parse_config
from session_tracker.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_config_is_valid_and_has_the_contract_defaults() -> None:
    config = load_config(ROOT / "session_config.yaml", env={})
    assert config.session_tracking.timeout_minutes == 10
    assert config.session_tracking.match_window_minutes == 5
    assert config.session_tracking.late_data_hours == 24
    assert config.session_tracking.retention_days == 365
    assert config.webhooks.vapi.endpoint == "/webhook/vapi/session-complete"
    assert config.analysis.model == "gpt-4o-mini"
    assert set(config.analysis.prompts) >= {"session_summary", "progress_update", "learning_insights"}
    assert config.analysis.triggers == ["on_session_complete", "on_request"]


def test_env_interpolation_with_default() -> None:
    text = "analysis:\n  model: ${MODEL:-gpt-4o-mini}\n"
    assert parse_config(text, env={}).analysis.model == "gpt-4o-mini"
    assert parse_config(text, env={"MODEL": "gpt-4.1"}).analysis.model == "gpt-4.1"


def test_missing_env_var_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"analysis\.model: environment variable MODEL is not set"):
        parse_config("analysis:\n  model: ${MODEL}\n", env={})


def test_unknown_key_is_named() -> None:
    with pytest.raises(ConfigError, match=r"session_tracking\.timeout_minuts: unknown key"):
        parse_config("session_tracking:\n  timeout_minuts: 10\n", env={})


def test_bad_value_is_named() -> None:
    with pytest.raises(ConfigError, match=r"session_tracking\.timeout_minutes"):
        parse_config("session_tracking:\n  timeout_minutes: -3\n", env={})


def test_invalid_yaml_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse_config("session_tracking: [\n", env={})


def test_missing_file_named_explicitly_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml", env={})


def test_secrets_are_resolved_lazily_from_env() -> None:
    config = parse_config("api:\n  auth_token: ${MY_TOKEN}\n", env={})
    assert config.api.auth_token == SecretRef(env_var="MY_TOKEN")
    assert config.api.auth_token.get({"MY_TOKEN": "s3cret"}) == "s3cret"
    assert config.api.auth_token.get({}) is None


def test_secret_from_ssm_parameter_when_only_param_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr("session_tracker.config._read_parameter", lambda name: calls.append(name) or "from-ssm")
    ref = SecretRef(env_var="INGEST_TOKEN")
    assert ref.get({"INGEST_TOKEN_PARAM": "/tst/prod/ingest-token"}) == "from-ssm"
    assert calls == ["/tst/prod/ingest-token"]


def test_defaults_without_a_file() -> None:
    assert AppConfig().session_tracking.timeout.total_seconds() == 600


def test_config_is_read_with_libyaml_and_reads_the_same_as_the_pure_python_loader(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Cold start: libyaml's safe loader (PyYAML's wheels ship it) instead of the pure-Python one,
    the same config either way (the shipped file and one with the types YAML can surprise with)."""
    import yaml

    from session_tracker import config as config_module

    assert yaml.__with_libyaml__
    assert config_module._YAML_LOADER is yaml.CSafeLoader
    texts = [
        (ROOT / "session_config.yaml").read_text(encoding="utf-8"),
        "session_tracking:\n  timeout_minutes: 0x0a\n  late_data_hours: 1_0\nanalysis:\n  model: 'on'\n",
    ]
    with_libyaml = [parse_config(text, env={}).model_dump() for text in texts]
    monkeypatch.setattr(config_module, "_YAML_LOADER", yaml.SafeLoader)
    assert [parse_config(text, env={}).model_dump() for text in texts] == with_libyaml
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse_config("session_tracking: [\n", env={})
