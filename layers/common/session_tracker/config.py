"""Configuration: ``session_config.yaml`` plus environment, validated once per cold start.

``${VAR}`` and ``${VAR:-default}`` in the YAML are replaced from the environment.
Secret fields (``auth_token``, ``openai_api_key``) are not resolved at load time:
they become :class:`SecretRef` values that read the environment variable, or, in
AWS, the SSM parameter named by ``<VAR>_PARAM`` (cached), when first used. That
way a function never needs access to a secret it does not use.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from session_tracker.errors import ConfigError

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_SECRET_KEYS = frozenset(
    {"auth_token", "read_token", "admin_token", "openai_api_key", "hmac_secret", "api_key", "webhook_secret"}
)
DEFAULT_CONFIG_NAME = "session_config.yaml"
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader when PyYAML has it (its wheels do, so the built layer does): the same
documents, ~50x faster than the pure-Python ``SafeLoader`` - most of a cold start's config load."""


class SecretRef(BaseModel):
    """A secret named in the config: a literal value, or an env var / SSM parameter."""

    model_config = ConfigDict(frozen=True)

    value: str | None = None
    env_var: str | None = None

    def get(self, env: Mapping[str, str] | None = None) -> str | None:
        """Resolve the secret now; ``None`` when it is not configured anywhere."""
        if self.value:
            return self.value
        if not self.env_var:
            return None
        env = os.environ if env is None else env
        direct = env.get(self.env_var)
        if direct:
            return direct
        param = env.get(f"{self.env_var}_PARAM")
        if param:
            return _read_parameter(param)
        return None

    def describe(self) -> str:
        """Where the secret comes from, for error messages (never the value)."""
        if self.value:
            return "a literal value in the config"
        return f"${self.env_var} (or {self.env_var}_PARAM naming an SSM parameter)"


def _read_parameter(name: str) -> str:
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_parameter(name, decrypt=True, max_age=300)
    return str(value)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SessionTracking(_Strict):
    timeout_minutes: float = Field(10, gt=0, le=24 * 60)
    match_window_minutes: float = Field(5, ge=0, le=24 * 60)
    late_data_hours: float = Field(24, ge=0)
    retention_days: int = Field(365, ge=0)
    close_max_per_run: int = Field(2000, gt=0, le=100_000)
    """At most this many idle sessions closed per scheduled run (the rest wait a minute)."""
    auto_save: bool = True
    """Write each closed or completed session's export as one JSON file (``docs/session-files.md``)."""
    clock_skew_minutes: float = Field(24 * 60, ge=0, le=366 * 24 * 60)
    tool_call_tolerance_seconds: float = Field(90, gt=0, le=3600)
    """Tool-call matching: a reported call agrees with a logged one this close in time."""
    """Timestamps more than this far in the future (callers' clocks) are refused with a 422;
    in platform data they are ignored (receive time is used instead)."""

    @property
    def timeout(self) -> timedelta:
        return timedelta(minutes=self.timeout_minutes)

    @property
    def match_window(self) -> timedelta:
        return timedelta(minutes=self.match_window_minutes)

    @property
    def late_data(self) -> timedelta:
        return timedelta(hours=self.late_data_hours)

    @property
    def clock_skew(self) -> timedelta:
        return timedelta(minutes=self.clock_skew_minutes)

    @property
    def tool_call_tolerance(self) -> timedelta:
        return timedelta(seconds=self.tool_call_tolerance_seconds)

    @property
    def retention(self) -> timedelta | None:
        """How long stored data is kept (``None``: forever)."""
        return timedelta(days=self.retention_days) if self.retention_days > 0 else None


class ApiConfig(_Strict):
    """The scope bootstrap tokens (CONTRACT.md v2): ``auth_token`` is the ``ingest`` one."""

    auth_token: SecretRef = SecretRef(env_var="INGEST_TOKEN")
    read_token: SecretRef = SecretRef(env_var="READ_TOKEN")
    admin_token: SecretRef = SecretRef(env_var="ADMIN_TOKEN")
    max_body_bytes: int = Field(1024 * 1024, gt=0, le=6 * 1024 * 1024)


class VapiWebhook(_Strict):
    enabled: bool = True
    endpoint: str = "/webhook/vapi/session-complete"
    auth_token: SecretRef = SecretRef(env_var="VAPI_WEBHOOK_SECRET")
    hmac_secret: SecretRef | None = None
    signature_header: str = "x-signature"
    timestamp_header: str = "x-timestamp"
    replay_window_seconds: int = Field(300, gt=0)
    phone_map: dict[str, str] = Field(default_factory=dict)
    student_id_patterns: list[str] = Field(default_factory=list)
    max_body_bytes: int = Field(6 * 1024 * 1024, gt=0, le=6 * 1024 * 1024)

    @field_validator("student_id_patterns")
    @classmethod
    def _patterns_compile(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from exc
        return value


class GenericWebhook(_Strict):
    enabled: bool = True
    auth_token: SecretRef = SecretRef(env_var="INGEST_TOKEN")
    max_body_bytes: int = Field(6 * 1024 * 1024, gt=0, le=6 * 1024 * 1024)


class RetellWebhook(_Strict):
    """``POST /webhook/retell``: signed with the Retell API key that has the webhook badge."""

    enabled: bool = True
    api_key: SecretRef = SecretRef(env_var="RETELL_API_KEY")
    tolerance_seconds: int = Field(300, gt=0, le=3600)
    max_body_bytes: int = Field(6 * 1024 * 1024, gt=0, le=6 * 1024 * 1024)


class ElevenLabsWebhook(_Strict):
    """``POST /webhook/elevenlabs``: signed with the webhook's HMAC shared secret."""

    enabled: bool = True
    webhook_secret: SecretRef = SecretRef(env_var="ELEVENLABS_WEBHOOK_SECRET")
    tolerance_seconds: int = Field(1800, gt=0, le=3600)
    max_body_bytes: int = Field(6 * 1024 * 1024, gt=0, le=6 * 1024 * 1024)


class Webhooks(_Strict):
    vapi: VapiWebhook = VapiWebhook()
    generic: GenericWebhook = GenericWebhook()
    retell: RetellWebhook = RetellWebhook()
    elevenlabs: ElevenLabsWebhook = ElevenLabsWebhook()


AnalysisTrigger = Literal["on_session_complete", "on_request"]


def _all_triggers() -> list[AnalysisTrigger]:
    return ["on_session_complete", "on_request"]


class ModelPrice(_Strict):
    input_per_million: float = Field(ge=0)
    output_per_million: float = Field(ge=0)


def _default_pricing() -> dict[str, ModelPrice]:
    """List prices (USD per 1M tokens) of common models; override under ``analysis.pricing``."""
    table = {
        "gpt-4o-mini": (0.15, 0.60),
        "gpt-4o": (2.50, 10.00),
        "gpt-4.1": (2.00, 8.00),
        "gpt-4.1-mini": (0.40, 1.60),
        "gpt-4.1-nano": (0.10, 0.40),
    }
    return {name: ModelPrice(input_per_million=i, output_per_million=o) for name, (i, o) in table.items()}


class AnalysisConfig(_Strict):
    enabled: bool = True
    model: str = "gpt-4o-mini"
    openai_api_key: SecretRef = SecretRef(env_var="OPENAI_API_KEY")
    triggers: list[AnalysisTrigger] = Field(default_factory=_all_triggers)
    max_sessions_per_day: int = Field(500, ge=0)
    max_input_tokens: int = Field(12000, gt=0)
    max_output_tokens: int = Field(1500, gt=0)
    timeout_seconds: float = Field(60, gt=0)
    max_retries: int = Field(3, ge=0, le=10)
    prompts: dict[str, str] = Field(default_factory=dict)
    context_sessions: int = Field(3, ge=0, le=20)
    """How many of the student's previous sessions (summaries, progress) go into the input."""
    debounce_seconds: float = Field(5, ge=0, le=60)
    """Re-analysis after late data waits until the session has been quiet this long."""
    pricing: dict[str, ModelPrice] = Field(default_factory=_default_pricing)
    """USD per 1M tokens by model name, for the recorded cost (unknown model: cost not recorded)."""

    @field_validator("pricing")
    @classmethod
    def _pricing_merged(cls, value: dict[str, ModelPrice]) -> dict[str, ModelPrice]:
        return {**_default_pricing(), **value}

    @field_validator("prompts")
    @classmethod
    def _prompts_named(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", name):
                raise ValueError(f"prompt name {name!r} must be snake_case")
            if not text or not text.strip():
                raise ValueError(f"prompt {name!r} is empty")
        return value


Detector = Literal["email", "phone"]


def _default_detectors() -> list[Detector]:
    return ["email", "phone"]


class PrivacyConfig(_Strict):
    """Redaction before storage (CONTRACT v2): see :mod:`session_tracker.privacy`."""

    redact: list[Detector] = Field(default_factory=_default_detectors)
    """Built-in detectors; ``[]`` turns them off."""
    redact_patterns: list[str] = Field(default_factory=list)
    """Extra regular expressions; each match is stored as ``[REDACTED]``."""
    store_arguments: bool = True
    """``false``: keep tool-call argument names, drop their values."""

    @field_validator("redact_patterns")
    @classmethod
    def _patterns_compile(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from exc
            if compiled.match(""):
                raise ValueError(f"pattern {pattern!r} matches the empty string")
        return value


class AppConfig(_Strict):
    """The whole of ``session_config.yaml``."""

    session_tracking: SessionTracking = SessionTracking()
    api: ApiConfig = ApiConfig()
    webhooks: Webhooks = Webhooks()
    analysis: AnalysisConfig = AnalysisConfig()
    privacy: PrivacyConfig = PrivacyConfig()


def _interpolate(node: Any, env: Mapping[str, str], path: str, missing: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {k: _interpolate(v, env, f"{path}.{k}" if path else str(k), missing) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate(v, env, f"{path}[{i}]", missing) for i, v in enumerate(node)]
    if not isinstance(node, str):
        return node
    key = path.rsplit(".", 1)[-1]
    whole = _VAR.fullmatch(node.strip())
    if key in _SECRET_KEYS:
        if whole:
            name, default = whole.group(1), whole.group(2)
            return {"env_var": name, "value": default or None}
        return {"value": node}

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        missing[path] = name
        return ""

    return _VAR.sub(replace, node)


def _format_errors(source: str, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if p not in ("value",))
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling)"
        lines.append(f"{source}: {loc}: {msg}")
    return "\n".join(lines)


def parse_config(text: str, *, env: Mapping[str, str] | None = None, source: str = DEFAULT_CONFIG_NAME) -> AppConfig:
    """Parse and validate config text; raises :class:`ConfigError` naming the bad key."""
    env = os.environ if env is None else env
    try:
        raw = yaml.load(text, Loader=_YAML_LOADER) or {}  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping")
    missing: dict[str, str] = {}
    data = _interpolate(raw, env, "", missing)
    if missing:
        key, var = next(iter(missing.items()))
        raise ConfigError(f"{source}: {key}: environment variable {var} is not set")
    try:
        return AppConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(source, exc)) from exc


def config_path(env: Mapping[str, str] | None = None) -> Path:
    """Where the config file is: ``$SESSION_CONFIG``, else next to the code or in the cwd."""
    env = os.environ if env is None else env
    if env.get("SESSION_CONFIG"):
        return Path(env["SESSION_CONFIG"])
    for candidate in (
        Path.cwd() / DEFAULT_CONFIG_NAME,
        Path(os.environ.get("LAMBDA_TASK_ROOT", "/var/task")) / DEFAULT_CONFIG_NAME,
        Path("/opt/python") / DEFAULT_CONFIG_NAME,
        Path(__file__).resolve().parent / DEFAULT_CONFIG_NAME,
    ):
        if candidate.is_file():
            return candidate
    return Path(DEFAULT_CONFIG_NAME)


def load_config(path: Path | str | None = None, *, env: Mapping[str, str] | None = None) -> AppConfig:
    """Read and validate the config file; a missing file gives the documented defaults."""
    target = Path(path) if path else config_path(env)
    if not target.is_file():
        if path or (env or os.environ).get("SESSION_CONFIG"):
            raise ConfigError(f"{target}: config file not found")
        return AppConfig()
    return parse_config(target.read_text(encoding="utf-8"), env=env, source=str(target))


@cache
def get_config() -> AppConfig:
    """The config for this process, loaded once (per Lambda cold start)."""
    return load_config()
