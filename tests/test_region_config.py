"""Region config files: the shipped ones load, and each kind of mistake is refused by name."""

from __future__ import annotations

import pytest

from gridcoop_sdk.exceptions import ConfigError
from gridcoop_sdk.region_config import CONFIG_DIR, load_region


@pytest.mark.parametrize("name", sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")))
def test_shipped_region_configs_load(name):
    cfg = load_region(name)
    assert cfg.slug == name
    assert {f.household for f in cfg.dao.founders} <= {h.name for h in cfg.households}


@pytest.mark.parametrize("name", sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")))
def test_shipped_region_configs_teach_no_single_founder_treasury(name):
    cfg = load_region(name)
    assert cfg.warnings() == []
    assert cfg.dao.threshold > len(cfg.dao.founders) // 2  # a majority of the founders


def test_single_founder_threshold_is_warned_about(tmp_path):
    cfg = load_region(_mutated(tmp_path, "threshold: 2", "threshold: 1"))
    [warning] = cfg.warnings()
    assert "threshold is 1 of 3 founders" in warning and "single founder" in warning


def test_battery_meter_rated_power_is_inverter_power_not_capacity(tmp_path):
    [b] = load_region("sakura").batteries
    assert (b.capacity_kwh, b.rated_power_w) == (120, 50_000)
    [b] = load_region(_mutated(tmp_path, "    power_kw: 50", "")).batteries
    assert b.rated_power_w == 60_000  # default: capacity over two hours, in W


def test_two_shipped_regions_differ_in_currency():
    a, b = load_region("sakura"), load_region("kaede")
    assert a.local_currency.symbol != b.local_currency.symbol


def test_scaled_keeps_founders_and_renames_repeats():
    cfg = load_region("sakura")
    small = cfg.scaled(3)
    assert [h.name for h in small.households] == ["hh01", "hh02", "hh03"]
    big = cfg.scaled(23)
    names = [h.name for h in big.households]
    assert len(set(names)) == 23 and names[20] == "hh01-1"


def _mutated(tmp_path, old, new):
    text = (CONFIG_DIR / "sakura.yaml").read_text()
    assert old in text
    p = tmp_path / "bad.yaml"
    p.write_text(text.replace(old, new, 1))
    return p


@pytest.mark.parametrize(
    "old, new, key, reason",
    [
        ("feed_in_price: 9", "feed_in_price: 40", "grid", "feed_in_price must be below retail_price"),
        ("efficiency: 0.92", "efficiency: 1.5", "batteries[0].efficiency", "less than or equal"),
        ("{household: hh02, share: 30}", "{household: hh99, share: 30}", "(top level)", "hh99"),
        ("threshold: 2", "threshold: 7", "(top level)", "exceeds"),
        ("symbol: SKC", "symbl: SKC", "local_currency.symbl", "unknown key"),
        ("kind: consumer", "kind: nuclear", "households[1].kind", "Input should be"),
        ("slug: sakura", "slug: Sakura Hills", "slug", "pattern"),
    ],
)
def test_mistakes_are_refused_naming_key_and_reason(tmp_path, old, new, key, reason):
    p = _mutated(tmp_path, old, new)
    with pytest.raises(ConfigError) as exc:
        load_region(p)
    msg = str(exc.value)
    assert str(p) in msg and key in msg and reason in msg, msg


def test_missing_region_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_region(tmp_path / "nope.yaml")
