"""Plugin registration, slot selection and failure naming, on a plugin manager without builtins."""

from __future__ import annotations

import time
import types

import numpy as np
import pytest

from vrhub import hookimpl
from vrhub.pipeline.plugins import (
    SelectionError,
    build_registry,
    get_plugin_manager,
    parse_selection,
)
from vrhub.pipeline.run import PipelineError, StageFailed, call_stage
from vrhub.pipeline.types import SLOTS, HairModel, Photo


def _hair_plugin(name: str = "example_hair") -> types.ModuleType:
    module = types.ModuleType(name)

    def braids(attributes, head) -> HairModel:
        """Braids for everyone."""
        return HairModel.empty("braids")

    def explodes(attributes, head) -> HairModel:
        raise RuntimeError("model file is corrupt")

    def wrong_type(attributes, head):
        return {"vertices": []}

    def slow(attributes, head) -> HairModel:
        time.sleep(5)
        return HairModel.empty()

    def refuses(attributes, head) -> HairModel:
        raise PipelineError("hair hidden under a hat", code="hair_occluded")

    @hookimpl
    def register_stages(register):
        register("hair_model", "braids", braids, version="2.1")
        register("hair_model", "explodes", explodes)
        register("hair_model", "wrong_type", wrong_type)
        register("hair_model", "slow", slow)
        register("hair_model", "refuses", refuses)

    module.register_stages = register_stages
    return module


@pytest.fixture
def registry():
    pm = get_plugin_manager(load_entry_points=False, builtins=False)
    pm.register(_hair_plugin(), name="example_hair")
    return build_registry(pm)


def test_registered_stage_carries_plugin_version_and_description(registry) -> None:
    impl = registry.stages["hair_model"]["braids"]
    assert impl.plugin == "example_hair"
    assert impl.version == "2.1"
    assert impl.description == "Braids for everyone."
    assert impl.describe()["slot"] == "hair_model"


def test_request_choice_beats_settings_choice_beats_builtin_default() -> None:
    pm = get_plugin_manager(load_entry_points=False, builtins=False)
    pm.register(_hair_plugin(), name="example_hair")

    every_slot = types.ModuleType("every_slot")

    @hookimpl
    def register_stages(register):
        for slot in SLOTS:
            register(slot, "plain", lambda *args: None)

    every_slot.register_stages = register_stages
    pm.register(every_slot, name="every_slot")
    registry = build_registry(pm)
    registry.defaults = {slot: "plain" for slot in SLOTS}
    assert registry.select()["hair_model"].name == "plain"
    registry.set_defaults(parse_selection("hair_model=slow"))
    assert registry.select()["hair_model"].name == "slow"
    chosen = registry.select(parse_selection("hair_model:braids"), parse_selection("hair_model=slow"))
    assert chosen["hair_model"].name == "braids"
    assert chosen["rig"].name == "plain"


def test_unknown_slot_and_unknown_name_list_valid_choices(registry) -> None:
    with pytest.raises(SelectionError) as info:
        registry.select({"hairstyle": "braids"})
    assert "unknown slot 'hairstyle'" in str(info.value)
    assert "hair_model" in str(info.value)
    with pytest.raises(SelectionError) as info:
        registry.set_defaults({"hair_model": "dreadlocks"})
    assert "braids" in str(info.value) and "dreadlocks" in str(info.value)
    assert info.value.valid["hair_model"] == ["braids", "explodes", "refuses", "slow", "wrong_type"]


def test_duplicate_registration_by_another_plugin_is_refused() -> None:
    pm = get_plugin_manager(load_entry_points=False, builtins=False)
    pm.register(_hair_plugin("first"), name="first")
    pm.register(_hair_plugin("second"), name="second")
    with pytest.raises(ValueError, match="already registered"):
        build_registry(pm)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hair_model=braids", {"hair_model": "braids"}),
        ("hair_model:braids, reconstruct=ict", {"hair_model": "braids", "reconstruct": "ict"}),
        ("", {}),
    ],
)
def test_parse_selection(text: str, expected: dict[str, str]) -> None:
    assert parse_selection(text) == expected


def test_parse_selection_refuses_text_without_separator() -> None:
    with pytest.raises(SelectionError, match="slot=name"):
        parse_selection("braids")


def test_plugin_exception_names_plugin_and_slot(registry) -> None:
    with pytest.raises(StageFailed) as info:
        call_stage(registry.stages["hair_model"]["explodes"], None, None)
    assert info.value.slot == "hair_model"
    assert info.value.plugin == "example_hair"
    assert "RuntimeError: model file is corrupt" in str(info.value)
    assert "hair_model:explodes" in str(info.value)


def test_wrong_return_type_fails_with_expected_type(registry) -> None:
    with pytest.raises(StageFailed) as info:
        call_stage(registry.stages["hair_model"]["wrong_type"], None, None)
    assert info.value.code == "stage_wrong_type"
    assert "expected HairModel" in str(info.value)


def test_time_limit_stops_a_slow_plugin(registry) -> None:
    t0 = time.perf_counter()
    with pytest.raises(StageFailed) as info:
        call_stage(registry.stages["hair_model"]["slow"], None, None, time_limit=0.2)
    assert time.perf_counter() - t0 < 2.0
    assert info.value.code == "stage_timeout"
    assert "time limit" in str(info.value)


def test_pipeline_error_passes_through_unwrapped(registry) -> None:
    with pytest.raises(PipelineError) as info:
        call_stage(registry.stages["hair_model"]["refuses"], None, None)
    assert info.value.code == "hair_occluded"


def test_photo_reports_its_size() -> None:
    photo = Photo(np.zeros((30, 40, 3), np.uint8))
    assert (photo.width, photo.height) == (40, 30)
