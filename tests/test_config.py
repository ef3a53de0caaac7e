"""Config loading: malformed files are refused naming the file, the key and the reason."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, Field

from gridcoop_sdk.config import load_model
from gridcoop_sdk.exceptions import ConfigError


class Meter(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    port: int = Field(ge=1, le=65535)


class Gateway(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rpc_url: str
    meters: list[Meter]


def _write(tmp_path, text):
    p = tmp_path / "gateway.yaml"
    p.write_text(text)
    return p


def test_valid_config_loads(tmp_path):
    cfg = load_model(_write(tmp_path, "rpc_url: http://x\nmeters:\n  - {id: m1, port: 502}\n"), Gateway)
    assert cfg.meters[0].port == 502


@pytest.mark.parametrize(
    "text, key, reason",
    [
        ("rpc_url: http://x\nmeters:\n  - {id: m1, port: 70000}\n", "meters[0].port", "less than or equal"),
        ("rpc_url: http://x\nmeters:\n  - {id: m1, prot: 502}\n", "meters[0].prot", "unknown key"),
        ("meters: []\n", "rpc_url", "Field required"),
    ],
)
def test_malformed_config_names_file_key_and_reason(tmp_path, text, key, reason):
    p = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_model(p, Gateway)
    msg = str(err.value)
    assert str(p) in msg and key in msg and reason in msg
    assert isinstance(err.value, ValueError)


def test_yaml_syntax_error_names_the_line(tmp_path):
    p = _write(tmp_path, "rpc_url: http://x\nmeters: [\n")
    with pytest.raises(ConfigError, match=r"not valid YAML at line \d+"):
        load_model(p, Gateway)


def test_missing_and_empty_files_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_model(tmp_path / "nope.yaml", Gateway)
    with pytest.raises(ConfigError, match="empty"):
        load_model(_write(tmp_path, ""), Gateway)
