"""Property-based fuzz pass over every route of /openapi.json against the local stack.

Schemathesis generates valid and invalid requests from the served OpenAPI document
(bounded: ``FUZZ_EXAMPLES`` per operation, default 40) and sends them over HTTP with
the bearer token. No answer may be a 5xx, and every error must be problem+json.
"""

from __future__ import annotations

import os
from collections import Counter

import httpx
import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))


SIGNED_PATHS = frozenset({"/webhook/retell", "/webhook/elevenlabs"})


def signing_session():
    """A requests session that signs Retell / ElevenLabs webhook bodies as those platforms do."""
    import requests
    from platform_signing import signed_headers

    class Sign(requests.auth.AuthBase):
        def __call__(self, request):
            body = request.body or b""
            body = body.encode() if isinstance(body, str) else body
            path = requests.utils.urlparse(request.url).path
            signed = signed_headers(path, body)
            if signed is not None:
                request.headers.update(signed)
            return request

    session = requests.Session()
    session.auth = Sign()
    return session


TOKEN = "e2e-admin-token"


@pytest.fixture(scope="module")
def api_schema(local_stack):
    document = httpx.get(f"{local_stack.url}/openapi.json", timeout=30).json()
    return schemathesis.openapi.from_dict(document)


def test_fuzzed_requests_never_get_a_5xx(local_stack, api_schema) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 3
    statuses: Counter[int] = Counter()
    failures: list[str] = []

    for operation in operations:
        strategy = operation.as_strategy()

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy, with_token=st.booleans())
        def run(case, with_token: bool) -> None:
            headers = {"Authorization": f"Bearer {TOKEN}"} if with_token else {}
            # the signed platform webhooks: sign the exact bytes sent, so the parser is fuzzed too
            session = signing_session() if with_token and case.path in SIGNED_PATHS else None
            response = case.call(base_url=local_stack.url, headers=headers, timeout=30, session=session)
            statuses[response.status_code] += 1
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:300]}")
            elif response.status_code >= 400:
                content_type = response.headers.get("content-type", "")
                content_type = content_type[0] if isinstance(content_type, list) else content_type
                if "problem+json" not in content_type:
                    failures.append(f"{case.method} {case.formatted_path}: {response.status_code} not problem+json")

        run()
    print(
        f"\nfuzz: {sum(statuses.values())} requests over {len(operations)} operations: {dict(sorted(statuses.items()))}"
    )
    assert not failures, "\n".join(failures[:20])
    assert sum(statuses.values()) >= len(operations) * 3


# ----------------------------------------------------- issue 13: hostile values on /interactions
HOSTILE_NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.sampled_from([1e308, -1e308, 1e-320, 2**53, 10**38]),
)
HOSTILE_TIMES = st.one_of(
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
    st.sampled_from(["2199-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "2200-12-31T23:59:59Z"]),
    st.integers(min_value=-(10**15), max_value=10**15),
)


def test_fuzzed_hostile_values_on_interactions_never_get_a_5xx(local_stack) -> None:
    """Non-finite/huge numbers, any time from year 1 to 9999, the reserved and other students'
    ids and sessions, and arguments up to ~500 KB: always 2xx or a 4xx problem naming a field."""
    import json

    statuses: Counter[int] = Counter()
    failures: list[str] = []
    body = st.fixed_dictionaries(
        {
            "student_id": st.sampled_from(["fuzz_a", "fuzz_b", "unknown"]),
            "function": st.just("f"),
        },
        optional={
            "duration_ms": HOSTILE_NUMBERS,
            "response_size": HOSTILE_NUMBERS,
            "timestamp": HOSTILE_TIMES,
            "session_id": st.sampled_from(["fuzz_a_20260501_1000", "fuzz_b_20260501_1000", "nobody_x"]),
            "interaction_id": st.sampled_from(["fuzz-1", "fuzz-2"]),
            "arguments": st.integers(min_value=0, max_value=500 * 1024).map(lambda n: {"blob": "a" * n}),
        },
    )

    @settings(
        max_examples=EXAMPLES, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
    )
    @given(payload=body)
    def run(payload) -> None:
        content = json.dumps(payload, allow_nan=True).encode()
        response = httpx.post(
            f"{local_stack.url}/interactions",
            content=content,
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
            timeout=60,
        )
        statuses[response.status_code] += 1
        if response.status_code >= 500:
            failures.append(f"{str(payload)[:200]}: {response.status_code} {response.text[:200]}")
        elif response.status_code >= 400 and "problem+json" not in response.headers.get("content-type", ""):
            failures.append(f"{str(payload)[:200]}: {response.status_code} not problem+json")

    run()
    print(f"\nhostile-value fuzz: {dict(sorted(statuses.items()))}")
    assert not failures, "\n".join(failures[:20])
