"""Every avatar built by the hub carries a quality report with its measured likeness (issue 7, item 6)."""

from __future__ import annotations

from typing import Any

from conftest import upload, wait_for_avatar


async def test_the_quality_report_has_pose_removed_expression_and_measured_nme(
    make_client: Any, real_photo_bytes: bytes
) -> None:
    client = await make_client(plugin_modules=None)
    resp = await upload(client, real_photo_bytes)
    assert resp.status == 202, await resp.text()
    body = await wait_for_avatar(client, (await resp.json())["id"], timeout=120)
    assert body["status"] == "ready", body["error"]
    quality = body["quality"]
    assert {"yaw", "pitch", "roll", "expression_removed", "nme_percent", "nme_seconds"} <= set(quality)
    # A real photo's own avatar must re-detect well inside the stranger range (2.4-3.3 %).
    assert 0.0 < quality["nme_percent"] < 2.4
    assert isinstance(body["warnings"], list)


async def test_likeness_measurement_can_be_switched_off(make_client: Any, real_photo_bytes: bytes) -> None:
    client = await make_client(plugin_modules=None, measure_likeness=False)
    resp = await upload(client, real_photo_bytes)
    body = await wait_for_avatar(client, (await resp.json())["id"], timeout=120)
    assert body["status"] == "ready", body["error"]
    assert "nme_percent" not in body["quality"]
