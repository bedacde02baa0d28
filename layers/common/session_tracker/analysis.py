"""Session analysis with an OpenAI model: triggers, prompts, hashing, budgets, the model call.

How it runs (see ``docs/analysis.md``):

- A write that should trigger analysis sets ``pending_analysis`` and ``content_updated_at``
  on the session record (platform data merged, the idle closer, :func:`request_analysis`).
  The table stream, filtered on that flag's rising edge, invokes :func:`analyze_session`.
- The analyzer builds one input from the MCP interaction pattern, the transcript and the
  student's context (summaries and progress of previous sessions), asks the model for one
  structured answer with a field per configured prompt, validates it with pydantic, and
  stores it with the model, a version (hash) of each prompt, a hash of the input, tokens
  and estimated cost; then clears the flag, but only if no newer content arrived meanwhile.
- An unchanged input (same hash, prompts and model) is not sent again. Late data for an
  analysed session waits for ``debounce_seconds`` of quiet, so a burst yields one re-analysis.
- ``max_sessions_per_day`` (an atomic daily counter) and ``max_input_tokens`` (long
  transcripts are cut in the middle, and the result says so) bound the spend.
- A failing model endpoint (after the SDK's retries with backoff) leaves
  ``analysis.status: failed`` with the reason; ``POST /sessions/{id}/analyze`` retries it.

``openai`` is imported only inside :class:`OpenAIModel`, never at module import.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache, lru_cache
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from session_tracker.blobs import BlobStore
from session_tracker.config import AnalysisConfig, AnalysisTrigger
from session_tracker.errors import Conflict, NotFound, StoreConflict
from session_tracker.models import AnalysisState, AnalysisUsage, LazyModel, SessionExport, SessionMeta, iso, parse_iso
from session_tracker.sessions import read_export
from session_tracker.store.ports import AnalysisStore

CHARS_PER_TOKEN = 4
"""Token estimate for budgeting (English text averages about 4 characters per token)."""
MAX_ARGUMENT_CHARS = 200
MAX_ROUNDS = 3

DEFAULT_PROMPTS: dict[str, str] = {
    "session_summary": "Summarize this tutoring session for the student's teacher in 3-5 sentences.",
    "progress_update": "Compared with the student's previous sessions, describe the progress made in this session.",
    "learning_insights": "List concrete insights about how this student learns that a tutor could act on next time.",
}

SYSTEM_PREAMBLE = (
    "You analyse one voice tutoring session for the student's teachers. The input has three parts: "
    "the MCP interaction pattern (the tools the AI tutor called to fetch student data, in time order), "
    "the conversation transcript, and the student's context (summaries and progress of previous sessions). "
    "Where a part was shortened to fit the budget the input says so; do not guess what was left out. "
    "Answer with one JSON object with exactly the fields below, each a plain-text string."
)

Status = Literal["ok", "failed", "skipped"]


class AnalysisFailed(Exception):
    """The model call failed (after the SDK's retries); the reason is safe to store and show."""


class AnalysisContention(Exception):
    """New content kept arriving while analysing; the stream retries the record."""


# ----------------------------------------------------------------------- on request
class AnalysisRequested(LazyModel):
    """Answer of ``POST /sessions/{session_id}/analyze`` (202: it runs asynchronously)."""

    session_id: str
    status: Literal["queued"] = "queued"
    trigger: Literal["on_request"] = "on_request"
    requested_at: datetime


def request_analysis(
    session_id: str, *, store: AnalysisStore, now: datetime, config: AnalysisConfig
) -> AnalysisRequested:
    """Queue an analysis of one session (the stream runs it within seconds).

    409 when analysis is disabled or ``on_request`` is not among ``analysis.triggers``;
    404 when the session does not exist. A session whose inputs did not change keeps its
    analysis without a new model call; a failed one is retried.
    """
    cfg = config
    if not cfg.enabled:
        raise Conflict("analysis is disabled (analysis.enabled is false)", field="analysis.enabled")
    if "on_request" not in cfg.triggers:
        raise Conflict(
            "on-request analysis is not enabled (add on_request to analysis.triggers)", field="analysis.triggers"
        )
    try:
        store.request_analysis(session_id, now=now, trigger="on_request")
    except StoreConflict as exc:
        raise NotFound(f"session {session_id} not found", field="session_id") from exc
    return AnalysisRequested(session_id=session_id, requested_at=now)


# ------------------------------------------------------------------------- prompts
def prompts_of(cfg: AnalysisConfig) -> dict[str, str]:
    """The configured prompts (built-in defaults when the config names none)."""
    return dict(cfg.prompts) if cfg.prompts else dict(DEFAULT_PROMPTS)


def prompt_version(text: str) -> str:
    """A short stable version of a prompt: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@cache
def _output_model_for(fields: tuple[tuple[str, str], ...]) -> type[BaseModel]:
    definitions: dict[str, Any] = {name: (str, Field(description=text)) for name, text in fields}
    return create_model("SessionAnalysis", __config__=ConfigDict(extra="forbid"), **definitions)


def output_model(prompts: dict[str, str]) -> type[BaseModel]:
    """The structured answer: one string field per prompt, described by the prompt text."""
    return _output_model_for(tuple(prompts.items()))


# --------------------------------------------------------------------------- input
@dataclass(frozen=True)
class AnalysisInput:
    """What is sent to the model, and what the result records about it."""

    system: str
    user: str
    prompts: dict[str, str]
    prompt_versions: dict[str, str]
    input_hash: str
    estimated_tokens: int
    truncated: bool
    truncation: list[str] = field(default_factory=list)
    context_sessions: list[str] = field(default_factory=list)


def _system_text(prompts: dict[str, str]) -> str:
    parts = [SYSTEM_PREAMBLE, ""]
    for name, text in prompts.items():
        parts += [f"### {name}", text.strip(), ""]
    return "\n".join(parts).rstrip() + "\n"


def _minutes(delta: timedelta) -> str:
    return f"+{delta.total_seconds() / 60:.1f} min"


def _compact(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
    return text if len(text) <= MAX_ARGUMENT_CHARS else text[: MAX_ARGUMENT_CHARS - 1] + "…"


def _pattern_lines(export: SessionExport) -> tuple[str, list[str]]:
    """The interaction pattern: a summary line block and one line per tool call."""
    calls = export.mcp_interactions
    counts: dict[str, int] = {}
    for c in calls:
        counts[c.function] = counts.get(c.function, 0) + 1
    errors = sum(1 for c in calls if c.is_error)
    head = [
        f"Tool calls: {len(calls)} (errors: {errors})",
        "Functions: " + (", ".join(f"{name} x{n}" for name, n in sorted(counts.items())) or "none"),
        "Subjects: " + (", ".join(export.session_summary.subjects_accessed) or "none"),
        "Data provided: " + (", ".join(sorted({d for c in calls for d in c.data_provided})) or "none"),
    ]
    lines = []
    for c in calls:
        bits = [_minutes(c.timestamp - export.start_time), c.function]
        if c.data_provided:
            bits.append(f"data={','.join(c.data_provided)}")
        if c.subjects:
            bits.append(f"subjects={','.join(c.subjects)}")
        if c.arguments:
            bits.append(f"args={_compact(c.arguments)}")
        if c.is_error:
            bits.append("ERROR")
        lines.append("- " + " ".join(bits))
    return "\n".join(head), lines


def transcript_text(conversation: dict[str, Any] | None) -> str:
    """The transcript as plain text (a string, or a list of ``{role, message}`` turns)."""
    if not conversation:
        return ""
    value = conversation.get("transcript")
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list):
        turns = []
        for turn in value:
            if isinstance(turn, dict):
                role = turn.get("role") or turn.get("speaker") or "?"
                text = turn.get("message") or turn.get("content") or turn.get("text") or ""
                turns.append(f"{role}: {text}")
            else:
                turns.append(str(turn))
        return "\n".join(turns).strip()
    return ""


def _context_entries(previous: Sequence[SessionMeta]) -> list[str]:
    entries = []
    for meta in previous:
        lines = [f"### {meta.session_id} ({iso(meta.start_time)[:16].replace('T', ' ')} UTC, {meta.status})"]
        summary = meta.session_summary or {}
        if summary:
            lines.append(
                f"duration: {summary.get('duration_estimated', '?')}, tool calls: {summary.get('data_requests', '?')}, "
                f"subjects: {', '.join(summary.get('subjects_accessed') or []) or 'none'}"
            )
        analysis = meta.analysis or {}
        for key in ("session_summary", "progress_update"):
            if isinstance(analysis.get(key), str):
                lines.append(f"{key}: {analysis[key].strip()}")
        entries.append("\n".join(lines))
    return entries


def _cut_middle(text: str, keep: int) -> str:
    """Keep the beginning (1/3) and the end (2/3) of ``text``, marking what was left out."""
    if len(text) <= keep:
        return text
    keep = max(keep, 0)
    head = keep // 3
    tail = keep - head
    omitted = len(text) - keep
    return f"{text[:head]}\n[... {omitted} characters omitted to fit the token budget ...]\n{text[len(text) - tail :]}"


def _cut_lines(lines: list[str], keep: int) -> tuple[list[str], int]:
    """Keep the first and last lines within ``keep`` characters; returns (lines, how many dropped)."""
    if sum(len(x) + 1 for x in lines) <= keep:
        return lines, 0
    first: list[str] = []
    last: list[str] = []
    used = 0
    i, j = 0, len(lines) - 1
    while i <= j:
        take_first = len(first) <= len(last)
        line = lines[i] if take_first else lines[j]
        if used + len(line) + 1 > keep:
            break
        used += len(line) + 1
        if take_first:
            first.append(line)
            i += 1
        else:
            last.insert(0, line)
            j -= 1
    dropped = len(lines) - len(first) - len(last)
    return [*first, f"- [... {dropped} tool calls omitted to fit the token budget ...]", *last], dropped


def _allot(sizes: dict[str, int], available: int, shares: dict[str, float]) -> dict[str, int]:
    """Split ``available`` characters between parts: each gets its share, unused room goes to the rest."""
    allot = {k: min(sizes[k], int(available * shares[k])) for k in sizes}
    spare = available - sum(allot.values())
    for k in sorted(sizes, key=lambda name: -shares[name]):
        extra = min(spare, sizes[k] - allot[k])
        allot[k] += extra
        spare -= extra
    return allot


def build_input(export: SessionExport, previous: Sequence[SessionMeta], cfg: AnalysisConfig) -> AnalysisInput:
    """The model input for one session, within ``max_input_tokens`` (estimated)."""
    prompts = prompts_of(cfg)
    system = _system_text(prompts)
    summary = export.session_summary
    header = "\n".join(
        [
            "# Session",
            f"session_id: {export.session_id}",
            f"student_id: {export.student_id}",
            f"start: {iso(export.start_time)}",
            f"end: {iso(export.end_time) if export.end_time else 'unknown'}",
            f"status: {export.status}",
            f"platform: {export.platform or 'unknown'}",
            f"duration: {summary.duration_estimated}",
        ]
    )
    pattern_head, pattern_lines = _pattern_lines(export)
    transcript = transcript_text(export.conversation)
    context = _context_entries(previous)
    sections = {
        "transcript": transcript,
        "pattern": "\n".join(pattern_lines),
        "context": "\n\n".join(context),
    }
    fixed = len(system) + len(header) + len(pattern_head) + 200
    available = max(cfg.max_input_tokens * CHARS_PER_TOKEN - fixed, 0)
    sizes = {k: len(v) for k, v in sections.items()}
    notes: list[str] = []
    if sum(sizes.values()) > available:
        allot = _allot(sizes, available, {"transcript": 0.6, "pattern": 0.25, "context": 0.15})
        if allot["transcript"] < sizes["transcript"]:
            sections["transcript"] = _cut_middle(transcript, allot["transcript"])
            notes.append(
                f"transcript: kept {allot['transcript']} of {sizes['transcript']} characters (beginning and end)"
            )
        if allot["pattern"] < sizes["pattern"]:
            kept, dropped = _cut_lines(pattern_lines, allot["pattern"])
            sections["pattern"] = "\n".join(kept)
            notes.append(f"interaction pattern: {dropped} of {len(pattern_lines)} tool calls omitted (middle)")
        if allot["context"] < sizes["context"]:
            kept_entries: list[str] = []
            for entry in context:
                if sum(len(e) + 2 for e in kept_entries) + len(entry) > allot["context"]:
                    break
                kept_entries.append(entry)
            sections["context"] = "\n\n".join(kept_entries)
            notes.append(f"student context: {len(context) - len(kept_entries)} older sessions left out")
    parts = [
        header,
        "",
        "# MCP interaction pattern",
        pattern_head,
        sections["pattern"] or "(no tool calls)",
        "",
        "# Transcript",
        sections["transcript"] or "(no transcript)",
        "",
        "# Student context (previous sessions, newest first)",
        sections["context"] or "(no previous sessions)",
    ]
    if notes:
        parts += ["", "# Note", "Parts of this input were shortened to fit the token budget: " + "; ".join(notes) + "."]
    user = "\n".join(parts) + "\n"
    digest = hashlib.sha256(f"{cfg.model}\x00{system}\x00{user}".encode()).hexdigest()
    return AnalysisInput(
        system=system,
        user=user,
        prompts=prompts,
        prompt_versions={name: prompt_version(text) for name, text in prompts.items()},
        input_hash=digest,
        estimated_tokens=math.ceil((len(system) + len(user)) / CHARS_PER_TOKEN),
        truncated=bool(notes),
        truncation=notes,
        context_sessions=[m.session_id for m in previous],
    )


# ----------------------------------------------------------------------- the model
@dataclass(frozen=True)
class Completion:
    output: dict[str, str]
    input_tokens: int
    output_tokens: int
    model: str


class Model(Protocol):
    """Something that answers an :class:`AnalysisInput` with the structured output."""

    def complete(self, inp: AnalysisInput, *, model: str, max_output_tokens: int) -> Completion: ...


class OpenAIModel:
    """The openai SDK (``OPENAI_BASE_URL`` honoured), structured outputs, timeout, retries with backoff."""

    def __init__(self, api_key: str, *, timeout: float, max_retries: int) -> None:
        import openai  # lazily: only the analyze function pays for this import

        self._openai = openai
        self.client = openai.OpenAI(api_key=api_key, timeout=timeout, max_retries=max_retries)

    def complete(self, inp: AnalysisInput, *, model: str, max_output_tokens: int) -> Completion:
        """One chat completion parsed into the output model; :class:`AnalysisFailed` on any failure."""
        schema = output_model(inp.prompts)
        openai = self._openai
        try:
            result = self.client.chat.completions.parse(
                model=model,
                messages=[{"role": "system", "content": inp.system}, {"role": "user", "content": inp.user}],
                response_format=schema,
                max_completion_tokens=max_output_tokens,
            )
        except openai.APIStatusError as exc:
            raise AnalysisFailed(f"model endpoint answered HTTP {exc.status_code}: {_short(exc.message)}") from exc
        except openai.APITimeoutError as exc:
            raise AnalysisFailed("model endpoint timed out (after retries)") from exc
        except openai.APIConnectionError as exc:
            raise AnalysisFailed(f"model endpoint unreachable: {_short(str(exc))}") from exc
        except openai.LengthFinishReasonError as exc:
            raise AnalysisFailed("the answer hit max_output_tokens before it was complete") from exc
        except openai.ContentFilterFinishReasonError as exc:
            raise AnalysisFailed("the answer was stopped by the content filter") from exc
        except (ValidationError, ValueError) as exc:
            raise AnalysisFailed(f"the answer did not match the expected JSON schema: {_short(str(exc))}") from exc
        except openai.OpenAIError as exc:
            raise AnalysisFailed(f"{type(exc).__name__}: {_short(str(exc))}") from exc
        message = result.choices[0].message
        if message.refusal:
            raise AnalysisFailed(f"the model refused: {_short(message.refusal)}")
        if message.parsed is None:
            raise AnalysisFailed("the model returned no structured answer")
        usage = result.usage
        return Completion(
            output=message.parsed.model_dump(),
            input_tokens=usage.prompt_tokens if usage else 0,
            output_tokens=usage.completion_tokens if usage else 0,
            model=result.model or model,
        )


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def openai_model_factory(cfg: AnalysisConfig) -> Callable[[], Model]:
    """A factory that builds the SDK client on first use (after the cheap checks passed)."""

    def build() -> Model:
        key = cfg.openai_api_key.get()
        if not key:
            raise AnalysisFailed(f"the OpenAI API key is not configured: set {cfg.openai_api_key.describe()}")
        return _cached_model(key, cfg.timeout_seconds, cfg.max_retries, os.environ.get("OPENAI_BASE_URL", ""))

    return build


@lru_cache(maxsize=4)
def _cached_model(api_key: str, timeout: float, max_retries: int, base_url: str) -> OpenAIModel:
    """One SDK client (and its connection pool) per key and endpoint, reused by a warm Lambda."""
    return OpenAIModel(api_key, timeout=timeout, max_retries=max_retries)


def cost_usd(cfg: AnalysisConfig, input_tokens: int, output_tokens: int) -> float | None:
    """Estimated cost from ``analysis.pricing`` (USD per 1M tokens); ``None`` for an unpriced model."""
    price = cfg.pricing.get(cfg.model)
    if price is None:
        return None
    return round((input_tokens * price.input_per_million + output_tokens * price.output_per_million) / 1e6, 8)


# ---------------------------------------------------------------------- the analyzer
class AnalysisOutcome(LazyModel):
    """What one analyzer run did for one session (for logs and tests)."""

    session_id: str
    action: Literal[
        "analysed", "failed", "unchanged", "disabled", "not_triggered", "budget", "not_pending", "not_found"
    ]
    detail: str = ""
    rounds: int = 0
    tokens: int = 0
    cost_usd: float = 0.0


def _keep_previous(old: dict[str, Any] | None) -> dict[str, Any] | None:
    """The last good analysis, kept under ``previous`` when a later attempt fails or is skipped."""
    if not old:
        return None
    if old.get("status", "ok") == "ok":
        return {k: v for k, v in old.items() if k != "previous"}
    prev = old.get("previous")
    return prev if isinstance(prev, dict) else None


def _unchanged(old: dict[str, Any] | None, inp: AnalysisInput, cfg: AnalysisConfig) -> bool:
    return bool(
        old
        and old.get("status", "ok") == "ok"
        and old.get("input_hash") == inp.input_hash
        and old.get("prompt_versions") == inp.prompt_versions
        and old.get("model") == cfg.model
    )


def analyze_session(
    session_id: str,
    *,
    store: AnalysisStore,
    blobs: BlobStore | None,
    config: AnalysisConfig,
    model_factory: Callable[[], Model],
    clock: Callable[[], datetime],
    sleep: Callable[[float], None] = time.sleep,
) -> AnalysisOutcome:
    """Analyse a session whose ``pending_analysis`` flag is set (one stream record).

    Idempotent: a record for a session with nothing pending, or whose input did not change,
    makes no model call. Raises :class:`AnalysisContention` when new content keeps arriving
    (the stream retries); any storage error propagates (the stream retries, then the DLQ).
    """
    cfg = config
    for rounds in range(1, MAX_ROUNDS + 1):
        state = store.get_analysis_state(session_id)
        if state is None:
            return AnalysisOutcome(session_id=session_id, action="not_found", rounds=rounds)
        if not state.pending:
            return AnalysisOutcome(session_id=session_id, action="not_pending", rounds=rounds)
        trigger = state.trigger or "on_session_complete"
        refusal = _refusal(state, trigger, cfg)
        if refusal is not None:
            action, reason = refusal
            record = state.analysis or {"status": "skipped", "reason": reason, "skipped_at": iso(clock())}
            if store.save_analysis(session_id, record, content_updated_at=state.content_updated_at, clear_pending=True):
                return AnalysisOutcome(session_id=session_id, action=action, detail=reason, rounds=rounds)
            continue
        state = _debounce(state, store=store, cfg=cfg, trigger=trigger, clock=clock, sleep=sleep)
        if state is None or not state.pending:
            return AnalysisOutcome(session_id=session_id, action="not_pending", rounds=rounds)
        outcome = _analyse_once(
            state, trigger, store=store, blobs=blobs, cfg=cfg, model_factory=model_factory, clock=clock
        )
        if outcome is not None:
            return outcome.model_copy(update={"rounds": rounds})
    raise AnalysisContention(f"session {session_id} kept changing while being analysed")


def _refusal(state: AnalysisState, trigger: str, cfg: AnalysisConfig) -> tuple[Any, str] | None:
    if not cfg.enabled:
        return "disabled", "analysis is disabled (analysis.enabled is false)"
    if trigger not in cfg.triggers:
        return "not_triggered", f"trigger {trigger} is not in analysis.triggers"
    if trigger == "on_session_complete" and state.status == "active":
        return "not_triggered", "the session is still active"
    return None


def _debounce(
    state: AnalysisState,
    *,
    store: AnalysisStore,
    cfg: AnalysisConfig,
    trigger: str,
    clock: Callable[[], datetime],
    sleep: Callable[[float], None],
) -> AnalysisState | None:
    """Late data for an analysed session: wait until no new content came for ``debounce_seconds``."""
    analysed = (state.analysis or {}).get("status") == "ok"
    if trigger == "on_request" or not analysed or cfg.debounce_seconds <= 0 or not state.content_updated_at:
        return state
    deadline = clock() + timedelta(seconds=cfg.debounce_seconds * 6)
    current: AnalysisState | None = state
    while current is not None and current.pending and current.content_updated_at:
        quiet_at = parse_iso(current.content_updated_at) + timedelta(seconds=cfg.debounce_seconds)
        now = clock()
        if now >= quiet_at or now >= deadline:
            return current
        sleep(min((quiet_at - now).total_seconds(), (deadline - now).total_seconds()))
        current = store.get_analysis_state(state.session_id)
    return current


def _analyse_once(
    state: AnalysisState,
    trigger: str,
    *,
    store: AnalysisStore,
    blobs: BlobStore | None,
    cfg: AnalysisConfig,
    model_factory: Callable[[], Model],
    clock: Callable[[], datetime],
) -> AnalysisOutcome | None:
    """One attempt on the content as of ``state``; ``None`` when newer content arrived (go again)."""
    session_id = state.session_id
    export = read_export(session_id, store=store, blobs=blobs)
    if export is None:
        return AnalysisOutcome(session_id=session_id, action="not_found")
    previous = store.previous_sessions(export.student_id, export.start_time, limit=cfg.context_sessions)
    inp = build_input(export, previous, cfg)
    old = state.analysis
    seen = state.content_updated_at
    if _unchanged(old, inp, cfg):
        assert old is not None
        if store.save_analysis(session_id, old, content_updated_at=seen, clear_pending=True):
            return AnalysisOutcome(session_id=session_id, action="unchanged", detail="same input, prompts and model")
        return None
    now = clock()
    day = now.date().isoformat()
    base: dict[str, Any] = {
        "model": cfg.model,
        "prompt_versions": inp.prompt_versions,
        "input_hash": inp.input_hash,
        "trigger": trigger,
        "truncated": inp.truncated,
    }
    if not store.reserve_analysis_slot(day, max_per_day=cfg.max_sessions_per_day, now=now):
        reason = f"daily analysis budget reached (max_sessions_per_day={cfg.max_sessions_per_day}); retry on request"
        record = {**base, "status": "skipped", "reason": reason, "skipped_at": iso(now)}
        if (previous_ok := _keep_previous(old)) is not None:
            record["previous"] = previous_ok
        if store.save_analysis(session_id, record, content_updated_at=seen, clear_pending=True):
            return AnalysisOutcome(session_id=session_id, action="budget", detail=reason)
        return None
    try:
        completion = model_factory().complete(inp, model=cfg.model, max_output_tokens=cfg.max_output_tokens)
    except AnalysisFailed as exc:
        store.release_analysis_slot(day)
        record = {**base, "status": "failed", "error": str(exc), "failed_at": iso(clock())}
        attempts = int((old or {}).get("attempts", 0)) + 1 if (old or {}).get("status") == "failed" else 1
        record["attempts"] = attempts
        if (previous_ok := _keep_previous(old)) is not None:
            record["previous"] = previous_ok
        if store.save_analysis(session_id, record, content_updated_at=seen, clear_pending=True):
            return AnalysisOutcome(session_id=session_id, action="failed", detail=str(exc))
        return None
    cost = cost_usd(cfg, completion.input_tokens, completion.output_tokens)
    store.record_usage(day, input_tokens=completion.input_tokens, output_tokens=completion.output_tokens, cost_usd=cost)
    record = {
        "status": "ok",
        **completion.output,
        **base,
        "model_version": completion.model,
        "tokens": {
            "input": completion.input_tokens,
            "output": completion.output_tokens,
            "total": completion.input_tokens + completion.output_tokens,
            "estimated_input": inp.estimated_tokens,
        },
        "cost_usd": cost,
        "truncation": inp.truncation,
        "context_sessions": inp.context_sessions,
        "analyzed_at": iso(clock()),
    }
    if store.save_analysis(session_id, record, content_updated_at=seen, clear_pending=True):
        return AnalysisOutcome(
            session_id=session_id,
            action="analysed",
            tokens=completion.input_tokens + completion.output_tokens,
            cost_usd=cost or 0.0,
        )
    # Newer content arrived while the model was answering: keep this result, analyse again.
    store.save_analysis(session_id, record, content_updated_at=seen, clear_pending=False)
    return None


# --------------------------------------------------------------------------- usage
def daily_usage(store: AnalysisStore, day: str, *, config: AnalysisConfig) -> AnalysisUsage:
    """The day's analysis totals (sessions against the cap, tokens, estimated cost)."""
    cfg = config
    usage = store.get_usage(day)
    return usage.model_copy(update={"max_sessions_per_day": cfg.max_sessions_per_day})


__all__ = [
    "AnalysisContention",
    "AnalysisFailed",
    "AnalysisInput",
    "AnalysisOutcome",
    "AnalysisRequested",
    "AnalysisTrigger",
    "Completion",
    "Model",
    "OpenAIModel",
    "analyze_session",
    "build_input",
    "cost_usd",
    "daily_usage",
    "openai_model_factory",
    "output_model",
    "prompt_version",
    "request_analysis",
]
