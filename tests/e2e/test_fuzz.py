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
