"""The vrhub command: migrate, plugins, create (timings, clear errors, exit codes), worker without
Redis, and the subcommand structure other areas extend."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import ASTRONAUT, builtin_stages_present, needs_photos
from hub_process import VRHUB, hub_env

from vrhub.cli import main, make_parser
from vrhub.pipeline.types import SLOTS

needs_pipeline = pytest.mark.skipif(
    not builtin_stages_present(), reason="the builtin stages are not all present"
)


def test_migrate_creates_the_database_at_head(tmp_path: Path) -> None:
    env = hub_env(tmp_path / "var")
    out = subprocess.run([str(VRHUB), "migrate"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "is at revision head" in out.stdout
    assert (tmp_path / "var" / "vrhub.db").is_file()


def test_every_builtin_command_is_registered() -> None:
    parser = make_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert {"serve", "migrate", "create", "plugins", "worker"} <= set(sub.choices)


@needs_pipeline
def test_plugins_prints_a_table_with_every_slot(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:6] == ["slot", "name", "plugin", "version", "origin", "default"]
    rows = [line.split() for line in lines[2:]]
    for slot in ("detect", "segment", "reconstruct", "hair_attributes", "hair_model", "rig", "export"):
        assert any(r[0] == slot and "*" in r for r in rows), slot
    assert any(
        r[:3] == ["detect", "mediapipe", "vrhub.stages.mediapipe_detect"] and r[4] == "builtin" for r in rows
    )


@needs_pipeline
@needs_photos
def test_create_writes_a_glb_and_prints_per_stage_timings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "astronaut.glb"
    assert main(["create", str(ASTRONAUT), "-o", str(out), "--lod", "low", "--texture", "512"]) == 0
    assert out.read_bytes()[:4] == b"glTF"
    printed = capsys.readouterr().out
    for slot in ("decode", *SLOTS):
        assert any(line.startswith(slot + " ") for line in printed.splitlines()), slot
    assert "total" in printed and "faces found: 1" in printed


def test_create_refuses_a_file_that_is_not_an_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "notes.jpg"
    bad.write_text("this is not a photo")
    assert main(["create", str(bad), "-o", str(tmp_path / "x.glb")]) == 2
    err = capsys.readouterr().err
    assert "notes.jpg" in err and "not an image" in err and "[not_an_image]" in err
    assert not (tmp_path / "x.glb").exists()


def test_create_refuses_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["create", str(tmp_path / "nope.png"), "-o", str(tmp_path / "x.glb")]) == 2
    assert "cannot read" in capsys.readouterr().err


@needs_pipeline
@needs_photos
def test_create_names_the_valid_choices_for_an_unknown_stage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["create", str(ASTRONAUT), "-o", str(tmp_path / "x.glb"), "--stages", "hair_model=wig"]) == 2
    err = capsys.readouterr().err
    assert "no implementation 'wig' for slot 'hair_model'" in err and "none" in err


@needs_pipeline
def test_create_explains_no_face(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    wall = tmp_path / "wall.png"
    Image.new("RGB", (320, 240), (180, 170, 160)).save(wall)
    assert main(["create", str(wall), "-o", str(tmp_path / "x.glb")]) == 2
    err = capsys.readouterr().err
    assert "No face found" in err and "[no_face]" in err


def test_worker_without_redis_says_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("VRHUB_REDIS_URL", raising=False)
    monkeypatch.setenv("VRHUB_CONFIG", "/nonexistent/vrhub.toml")
    assert main(["worker"]) == 2
    assert "VRHUB_REDIS_URL" in capsys.readouterr().err


def test_serve_on_an_unmigrated_database_exits_with_advice(tmp_path: Path) -> None:
    env = hub_env(tmp_path / "var")
    out = subprocess.run(
        [str(VRHUB), "serve", "--port", "0", "--plugins-module", "hub_test_stages"],
        env={
            **env,
            "VRHUB_STAGES": "detect=fixture,segment=fixture,reconstruct=fixture,hair_attributes=fixture,"
            "hair_model=fixture,rig=fixture,export=fixture",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode != 0
    assert "vrhub migrate" in out.stderr
