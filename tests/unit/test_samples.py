"""The platform samples in tests/events are the team's shared samples as copied
(tests/samples.py ``--sync``): every copy matches the digest recorded for it, and the record lists
exactly the samples there are. The suite reads only these copies."""

from __future__ import annotations

import pytest
from samples import EVENTS, PLATFORMS, digest, recorded_digests, sample_files


@pytest.mark.parametrize("path", sample_files(), ids=lambda p: p.relative_to(EVENTS).as_posix())
def test_each_copied_sample_is_the_recorded_one(path) -> None:
    recorded = recorded_digests()
    name = path.relative_to(EVENTS).as_posix()
    assert name in recorded, f"{name} is not in tests/events/SAMPLES.sha256: copy samples with tests/samples.py --sync"
    assert digest(path) == recorded[name], f"{name} differs from the copied sample (edited by hand?)"


def test_the_record_lists_exactly_the_samples_there_are() -> None:
    present = {p.relative_to(EVENTS).as_posix() for p in sample_files()}
    assert set(recorded_digests()) == present
    for platform in PLATFORMS:
        assert any(name.startswith(f"{platform}/") for name in present), platform
        assert (EVENTS / platform / "NOTES.md").is_file(), f"{platform}: the samples' NOTES.md travels with them"
