"""Server-sent progress: a subscriber that polls slower than the stages run still hears every stage, in order."""

from __future__ import annotations

from vrhub.api.avatars import PROGRESS_ORDER, _stages_since
from vrhub.pipeline.types import SLOTS


def test_a_late_subscriber_hears_every_stage_passed_so_far() -> None:
    events = _stages_since(None, "segment", 1 / len(SLOTS))
    assert [stage for stage, _ in events] == ["decode", "detect", "segment"]
    assert [f for _, f in events] == [0.0, 0.0, 1 / len(SLOTS)]


def test_stages_skipped_between_two_polls_are_filled_in_with_their_own_fractions() -> None:
    events = _stages_since("segment", "rig", 5 / len(SLOTS))
    assert [stage for stage, _ in events] == ["reconstruct", "hair_attributes", "hair_model", "rig"]
    fractions = [f for _, f in events]
    assert fractions == sorted(fractions) and fractions[-1] == 5 / len(SLOTS)
    assert _stages_since("rig", "done", 1.0)[-1] == ("done", 1.0)
    assert PROGRESS_ORDER[1:-1] == SLOTS


def test_the_same_stage_again_and_unknown_stages_pass_through_once() -> None:
    assert _stages_since("rig", "rig", 0.7) == [("rig", 0.7)]
    assert _stages_since(None, None, 0.0) == [(None, 0.0)]
    assert _stages_since("detect", "a_plugin_stage", 0.3) == [("a_plugin_stage", 0.3)]
