"""Settings come from defaults, a TOML file, VRHUB_* variables and keyword overrides, in that order."""

from __future__ import annotations

from pathlib import Path

import pytest

from vrhub.config import Settings


def test_defaults_put_database_and_blobs_under_var(tmp_path: Path) -> None:
    s = Settings.from_env({}, var_dir=tmp_path)
    assert s.database_url == f"sqlite+aiosqlite:///{tmp_path.as_posix()}/vrhub.db"
    assert s.blob_dir == tmp_path / "blobs"
    assert s.port == 8080 and s.max_upload_bytes == 15 * 1024 * 1024
    assert len(s.secret) == 64


def test_environment_overrides_toml_and_keywords_override_environment(tmp_path: Path) -> None:
    toml = tmp_path / "vrhub.toml"
    toml.write_text('[vrhub]\nport = 9000\nkeep_photos = true\nstages = "hair_model=none"\n')
    env = {"VRHUB_CONFIG": str(toml), "VRHUB_PORT": "9100", "VRHUB_ROOM_TICK_HZ": "20"}
    s = Settings.from_env(env)
    assert s.port == 9100 and s.keep_photos is True and s.stages == "hair_model=none"
    assert s.room_tick_hz == 20.0
    assert Settings.from_env(env, port=9200).port == 9200


def test_bad_values_name_the_variable() -> None:
    with pytest.raises(ValueError, match="VRHUB_PORT"):
        Settings.from_env({"VRHUB_PORT": "eighty"})
    with pytest.raises(ValueError, match="unknown setting 'colour'"):
        Settings.from_env({}, colour="blue")
