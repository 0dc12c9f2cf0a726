"""The profile loader: every profile is checked against its kind's schema (data, schema.toml),
defaults are filled in, and profiles are found on OPENTILL_PROFILE_PATH, by path and in plugins."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_profiles import (
    KINDS,
    PACKAGE_ROOT,
    PROFILE_PATH_ENV,
    SCHEMA_VERSION,
    ProfileError,
    list_kinds,
    list_profiles,
    load_profile,
    load_schema,
    validate_profile,
)
from firmware_profiles.schema import Fields, Key

ROOT = Path(__file__).resolve().parents[2]

# The least each kind needs to load: its required keys.
MINIMAL: dict[str, dict[str, Any]] = {
    "printer": {"schema": 1, "name": "my"},
    "card_reader": {"schema": 1, "name": "my"},
    "terminal": {
        "schema": 1, "name": "my", "merchant_id": "898310048990001", "terminal_id": "10000001", "currency": "156",
        "merchant_name": {"zh": "测试", "en": "TEST"}, "devices": {"printer": {"profile": "cn-80mm", "url": "emu://printer"}},
        "host": {"url": "emulated"}, "limits": {"max_amount_minor": 100}, "receipts": {"lookup_url": "https://r/{txn_id}"},
    },
}


@pytest.fixture(autouse=True)
def _no_profile_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see the shipped profiles only, whatever the environment says."""
    monkeypatch.delenv(PROFILE_PATH_ENV, raising=False)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"
    return repr(value)


def write(path: Path, data: dict[str, Any]) -> Path:
    """A profile file: top-level keys as `key = value` lines (tables inline)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{json.dumps(k)} = {_toml(v)}\n" for k, v in data.items()), encoding="utf-8")
    return path


def profile(kind: str, name: str = "my", **extra: Any) -> dict[str, Any]:
    return {**MINIMAL[kind], "name": name, **extra}


def _error(kind: str, data: dict[str, Any]) -> str:
    with pytest.raises(ProfileError) as caught:
        validate_profile(kind, data, source="somewhere/my.toml")
    message = str(caught.value)
    assert "\n" not in message, "a profile error is one line"
    return message


def _declared(fields: Fields, prefix: str = "") -> Iterator[tuple[str, Key]]:
    for path, key in fields.keys.items():
        yield prefix + path, key


def _dig(data: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        assert isinstance(data, dict) and part in data, f"{path!r} missing"
        data = data[part]
    return data


SHIPPED = [(kind, name) for kind in KINDS for name in list_profiles(kind)]


# -- the shipped profiles and schemas --------------------------------------------------------------
def test_the_kinds_are_the_folders_with_a_schema() -> None:
    assert KINDS == {"printer": "printers", "card_reader": "card_readers", "scanner": "scanners",
                     "signature_pad": "signature_pads",
                     "terminal": "terminals"}
    for kind, folder in KINDS.items():
        assert (PACKAGE_ROOT / folder / "schema.toml").is_file()
        assert load_schema(kind).version == SCHEMA_VERSION
        assert load_schema(kind).kind == kind


def test_a_schema_is_not_a_profile() -> None:
    assert "schema" not in list_profiles("printer")
    assert list_profiles("printer") == ["cn-80mm", "epson-tm-t20iii", "epson-tm-t88", "generic-58mm"]
    with pytest.raises(ProfileError, match="unknown printer profile 'schema'"):
        load_profile("printer", "schema")


@pytest.mark.parametrize(("kind", "name"), SHIPPED, ids=[f"{k}/{n}" for k, n in SHIPPED])
def test_every_shipped_profile_loads_with_every_declared_key(kind: str, name: str) -> None:
    loaded = load_profile(kind, name)
    assert loaded["name"] == name and loaded["schema"] == SCHEMA_VERSION
    for path, key in _declared(load_schema(kind).fields):
        if key.type == "table":
            continue
        value = _dig(loaded, path)
        if key.item is not None:
            items = value.values() if key.type == "map" else value
            for item in items:
                for sub, sub_key in _declared(key.item):
                    if sub_key.type != "table":
                        _dig(item, sub)
    # and nothing undeclared came through
    validate_profile(kind, loaded)


def test_shipped_profiles_keep_their_values() -> None:
    printer = load_profile("printer", "cn-80mm")  # inherits epson-tm-t20iii
    assert printer["serial"] == {"baud": 115200, "framing": "8N1", "flow_control": "xonxoff",
                                 "receive_buffer": 4096, "xoff_free": 128, "xon_free": 256}
    assert printer["text"]["code_pages"] == [0, 16] and printer["text"]["chinese_mode_at_power_on"] is True
    assert printer["fonts"]["a"] == {"width": 12, "height": 24, "columns": 48}
    assert printer["inherits"] == "epson-tm-t20iii"
    terminal = load_profile("terminal", "emulated-counter")
    assert terminal["devices"]["printer"] == {"profile": "cn-80mm", "url": "emu://printer", "driver": "",
                                              "optional": False}
    assert terminal["operators"] == []  # operators live in var/operators.json (sim/operators.py seeds the test ones)
    assert terminal["limits"]["unresolved_capacity"] == 10  # a default: the file does not say


def test_every_device_a_shipped_terminal_names_exists() -> None:
    for name in list_profiles("terminal"):
        for family, device in load_profile("terminal", name)["devices"].items():
            assert device["profile"] in list_profiles(family), f"{name}: devices.{family}"


# -- defaults --------------------------------------------------------------------------------------
def test_a_minimal_printer_gets_the_code_defaults(tmp_path: Path) -> None:
    loaded = load_profile("printer", write(tmp_path / "my.toml", MINIMAL["printer"]))
    assert loaded["serial"] == {"baud": 9600, "framing": "8N1", "flow_control": "xonxoff", "receive_buffer": 4096,
                                "xoff_free": 128, "xon_free": 256}
    assert loaded["text"]["chinese_mode_at_power_on"] is False
    assert loaded["media"]["dots"] == 576 and loaded["fonts"]["a"]["columns"] == 48
    assert loaded["features"]["native_qr"] is True and loaded["quirks"]["paper_out_data"] == "hold"
    assert loaded["printing"]["speed_mm_s"] == 150.0 and loaded["inherits"] == "" and loaded["model"] == ""


def test_minimal_reader_and_terminal_get_the_code_defaults() -> None:
    reader = validate_profile("card_reader", MINIMAL["card_reader"])
    assert reader["link"] == {"length_field": "bcd", "lrc": "xor", "ack_timeout_s": 5.0, "max_naks": 3,
                              "max_frame": 4096, "inter_char_timeout_s": 0.5}
    assert reader["reader"] == {"entry_modes": ["chip", "swipe", "tap"], "contactless_limit_minor": 0,
                                "country_code": "156"}
    terminal = validate_profile("terminal", MINIMAL["terminal"])
    assert terminal["limits"]["unresolved_capacity"] == 10 and terminal["limits"]["journal_capacity"] == 500
    assert terminal["host"]["reversal_max_attempts"] == 3 and terminal["host"]["reversal_wait_s"] == 30.0
    assert terminal["offline"] == {"enabled": False, "floor_limit_minor": 0, "max_count": 0, "max_total_minor": 0}
    assert terminal["operators"] == [] and terminal["currency_symbol"] == "" and terminal["archive_dir"] == ""


def test_derived_defaults_follow_their_source_and_yield_to_a_value() -> None:
    small = validate_profile("printer", profile("printer", media={"dots": 384}, serial={"receive_buffer": 45}))
    assert small["fonts"]["a"]["columns"] == 32 and small["fonts"]["b"]["columns"] == 42
    assert small["serial"]["xoff_free"] == 11 and small["serial"]["xon_free"] == 22  # Epson's 45-byte buffer
    given_ = validate_profile("printer", profile("printer", serial={"receive_buffer": 45, "xoff_free": 5}))
    assert given_["serial"]["xoff_free"] == 5 and given_["serial"]["xon_free"] == 22


def test_an_integer_is_taken_for_a_float_and_returned_as_one() -> None:
    loaded = validate_profile("printer", profile("printer", printing={"speed_mm_s": 250}))
    assert loaded["printing"]["speed_mm_s"] == 250.0 and isinstance(loaded["printing"]["speed_mm_s"], float)


def test_each_load_is_a_fresh_dict() -> None:
    first = load_profile("card_reader", "generic-pinpad")
    first["reader"]["entry_modes"].append("magic")
    first["serial"]["baud"] = 1
    again = load_profile("card_reader", "generic-pinpad")
    assert again["reader"]["entry_modes"] == ["chip", "swipe", "tap"] and again["serial"]["baud"] == 115200
    one = validate_profile("card_reader", MINIMAL["card_reader"])
    one["reader"]["entry_modes"].clear()
    assert validate_profile("card_reader", MINIMAL["card_reader"])["reader"]["entry_modes"] == ["chip", "swipe", "tap"]


# -- errors ----------------------------------------------------------------------------------------
def test_an_unknown_key_names_the_file_the_key_and_the_close_match(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "printers" / "my.toml", profile("printer", serial={"baudrate": 9600}))
    with pytest.raises(ProfileError) as caught:
        load_profile("printer", "printers/my.toml")
    assert str(caught.value) == "printers/my.toml: unknown key 'serial.baudrate' (did you mean 'serial.baud'?)"


def test_a_key_at_the_wrong_level_points_to_the_right_one() -> None:
    assert _error("printer", profile("printer", baud=9600)).endswith("unknown key 'baud' (did you mean 'serial.baud'?)")
    assert _error("printer", profile("printer", seria={"baud": 1})).endswith("(did you mean 'serial'?)")


def test_an_unknown_key_with_nothing_close_has_no_suggestion() -> None:
    assert _error("printer", profile("printer", zzzzqqq=1)) == "somewhere/my.toml: unknown key 'zzzzqqq'"


def test_a_wrong_type_is_refused() -> None:
    assert _error("printer", profile("printer", serial={"baud": "9600"})) == (
        "somewhere/my.toml: 'serial.baud' must be an integer, not str '9600'")
    assert "'features.native_qr' must be true or false, not int 1" in _error(
        "printer", profile("printer", features={"native_qr": 1}))
    assert "'text.code_pages[1]' must be a list of integers, not str 'x'" in _error(
        "printer", profile("printer", text={"code_pages": [0, "x"]}))
    assert "'serial' must be a table, not int 5" in _error("printer", profile("printer", serial=5))
    assert "'media.dots' must be an integer, not bool True" in _error(
        "printer", profile("printer", media={"dots": True}))


def test_a_value_outside_the_choices_is_refused_with_the_closest() -> None:
    assert _error("printer", profile("printer", serial={"flow_control": "xon"})) == (
        "somewhere/my.toml: 'serial.flow_control' must be one of 'xonxoff', 'dtr_dsr', 'none', not 'xon' "
        "(did you mean 'xonxoff'?)")
    assert "'reader.entry_modes[1]' must be one of 'chip', 'swipe', 'tap', not 'tapp'" in _error(
        "card_reader", profile("card_reader", reader={"entry_modes": ["chip", "tapp"]}))


def test_a_value_outside_min_max_or_pattern_is_refused() -> None:
    assert "'media.dots' must be >= 1, not 0" in _error("printer", profile("printer", media={"dots": 0}))
    assert "'limits.journal_warn_ratio' must be <= 1, not 1.5" in _error(
        "terminal", _merged(MINIMAL["terminal"], {"limits": {"journal_warn_ratio": 1.5}}))
    assert "'text.code_pages[0]' must be <= 255" in _error("printer", profile("printer", text={"code_pages": [256]}))
    assert "'terminal_id' must match /[ -~]{8}/, not '123'" in _error(
        "terminal", {**MINIMAL["terminal"], "terminal_id": "123"})
    assert "'serial.framing' must match" in _error("printer", profile("printer", serial={"framing": "8X1"}))
    assert "'status.overheat_recovery_s' must be a number, not float nan" in _error(
        "printer", profile("printer", status={"overheat_recovery_s": float("nan")}))


def test_a_missing_required_key_is_refused() -> None:
    terminal = dict(MINIMAL["terminal"])
    del terminal["merchant_id"]
    assert _error("terminal", terminal) == "somewhere/my.toml: missing required key 'merchant_id'"
    assert _error("terminal", {**MINIMAL["terminal"], "merchant_name": {"zh": "x"}}).endswith(
        "missing required key 'merchant_name.en'")


def test_map_entries_and_array_items_follow_their_item_schema() -> None:
    base = MINIMAL["terminal"]
    assert _error("terminal", {**base, "devices": {"scanner": {"profile": "x"}}}).endswith(
        "missing required key 'devices.scanner.url'")
    assert _error("terminal", {**base, "devices": {"scanner": {"profile": "x", "urll": "y"}}}).endswith(
        "unknown key 'devices.scanner.urll' (did you mean 'devices.scanner.url'?)")
    assert "'devices' must be a table of tables" in _error("terminal", {**base, "devices": {"printer": "cn-80mm"}})
    pin = "pbkdf2_sha256$1$00$00"
    ops = [{"id": "a", "role": "cashier", "pin_hash": pin}, {"id": "b", "role": "supervsior", "pin_hash": pin}]
    assert "'operators[1].role' must be one of 'cashier', 'supervisor', 'technician', not 'supervsior' " \
           "(did you mean 'supervisor'?)" in _error("terminal", {**base, "operators": ops})
    assert _error("terminal", {**base, "operators": [{"id": "a", "role": "cashier", "pin": "1234"}]}).endswith(
        "unknown key 'operators[0].pin' (did you mean 'operators[0].pin_hash'?)")
    twice = [{"id": "a", "role": "cashier", "pin_hash": pin}, {"id": "a", "role": "supervisor", "pin_hash": pin}]
    assert _error("terminal", {**base, "operators": twice}).endswith(
        "'operators[1].id' repeats 'a' (it must be unique)")
    unhashed = [{"id": "a", "role": "cashier", "pin_hash": "1234"}]
    assert "'operators[0].pin_hash' must match /pbkdf2_sha256\\$[0-9]+" in _error(
        "terminal", {**base, "operators": unhashed})
    slot = validate_profile("terminal", {**base, "devices": {"printer": {"url": "emu://printer"}}})["devices"]
    assert slot == {"printer": {"url": "emu://printer", "profile": "", "driver": "", "optional": False}}  # "": default
    # families are open: a plugin's family needs no schema change
    extra = {**base, "devices": {**base["devices"], "cash_drawer": {"profile": "acme", "url": "/dev/ttyS0"}}}
    assert validate_profile("terminal", extra)["devices"]["cash_drawer"]["url"] == "/dev/ttyS0"


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def test_schema_version_and_name_mismatches_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"my\.toml: printer profile schema must be 1, not 2"):
        load_profile("printer", write(tmp_path / "my.toml", {**MINIMAL["printer"], "schema": 2}))
    with pytest.raises(ProfileError, match=r"other\.toml: name field says 'my', the file is 'other'"):
        load_profile("printer", write(tmp_path / "other.toml", MINIMAL["printer"]))


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "my.toml"
    bad.write_text("schema = 1\nname = \n", encoding="utf-8")
    with pytest.raises(ProfileError, match=r"my\.toml: not valid TOML"):
        load_profile("printer", bad)


def test_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ProfileError) as caught:
        load_profile("printer", "cn-80")
    assert str(caught.value) == ("unknown printer profile 'cn-80' (did you mean 'cn-80mm'?) "
                                 "(known: cn-80mm, epson-tm-t20iii, epson-tm-t88, generic-58mm)")
    with pytest.raises(ProfileError, match=r"unknown card reader profile 'nope' \(known: cn-mispos-binary, generic"):
        load_profile("card_reader", "nope")
    with pytest.raises(ProfileError, match=r"unknown profile kind 'printr' \(did you mean 'printer'\?\)"):
        load_profile("printr", "cn-80mm")


# -- inheritance -----------------------------------------------------------------------------------
def test_inheritance_deep_merges(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PROFILE_PATH_ENV, str(tmp_path))
    write(tmp_path / "printers" / "slow.toml", profile("printer", "slow", inherits="epson-tm-t20iii",
                                                       serial={"baud": 9600}, text={"code_pages": [0]}))
    loaded = load_profile("printer", "slow")
    parent = load_profile("printer", "epson-tm-t20iii")
    assert loaded["serial"] == {**parent["serial"], "baud": 9600}  # a table merges key by key
    assert loaded["text"]["code_pages"] == [0]  # a list replaces the parent's
    assert loaded["fonts"] == parent["fonts"] and loaded["model"] == parent["model"]
    assert loaded["name"] == "slow" and loaded["inherits"] == "epson-tm-t20iii"


def test_a_child_fills_in_a_map_entry_of_its_parent(tmp_path: Path) -> None:
    child = write(tmp_path / "till.toml", {"schema": 1, "name": "till", "inherits": "emulated-counter",
                                            "devices": {"printer": {"url": "/dev/ttyUSB0"}}})
    devices = load_profile("terminal", child)["devices"]
    assert devices["printer"] == {"profile": "cn-80mm", "url": "/dev/ttyUSB0", "driver": "", "optional": False}
    assert devices["card_reader"]["url"] == "emu://card-reader"


def test_an_error_names_the_file_of_the_chain_that_made_it(tmp_path: Path) -> None:
    write(tmp_path / "base.toml", profile("printer", "base", serial={"bawd": 1}))
    child = write(tmp_path / "child.toml", profile("printer", "child", inherits="base"))
    with pytest.raises(ProfileError, match=r"base\.toml: unknown key 'serial\.bawd'"):
        load_profile("printer", child)


def test_inheritance_loops_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PROFILE_PATH_ENV, str(tmp_path))
    write(tmp_path / "printers" / "a.toml", profile("printer", "a", inherits="b"))
    write(tmp_path / "printers" / "b.toml", profile("printer", "b", inherits="a"))
    write(tmp_path / "printers" / "me.toml", profile("printer", "me", inherits="me"))
    with pytest.raises(ProfileError, match="printer profile inherits from itself via a -> b -> a"):
        load_profile("printer", "a")
    with pytest.raises(ProfileError, match="inherits from itself via me -> me"):
        load_profile("printer", "me")


def test_an_unknown_parent_is_refused_naming_the_child(tmp_path: Path) -> None:
    child = write(tmp_path / "my.toml", profile("printer", inherits="epson-tm-t20ii"))
    with pytest.raises(ProfileError, match=r"my\.toml: inherits unknown printer profile 'epson-tm-t20ii' "
                                           r"\(did you mean 'epson-tm-t20iii'\?\)"):
        load_profile("printer", child)


# -- where profiles come from ----------------------------------------------------------------------
def test_opentill_profile_path_comes_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    write(first / "printers" / "cn-80mm.toml", profile("printer", "cn-80mm", model="site A"))
    write(second / "printers" / "cn-80mm.toml", profile("printer", "cn-80mm", model="site B"))
    write(second / "printers" / "extra.toml", profile("printer", "extra"))
    monkeypatch.setenv(PROFILE_PATH_ENV, os.pathsep.join([str(first), "", str(second)]))
    assert load_profile("printer", "cn-80mm")["model"] == "site A"
    assert load_profile("printer", "cn-80mm")["serial"]["baud"] == 9600  # not inheriting: the shipped one is unseen
    assert load_profile("printer", "extra")["name"] == "extra"
    assert "extra" in list_profiles("printer") and "generic-58mm" in list_profiles("printer")
    monkeypatch.delenv(PROFILE_PATH_ENV)
    assert load_profile("printer", "cn-80mm")["model"] == "CN 80 mm POS80-like (emulated)"


def test_a_site_profile_may_inherit_the_shipped_one_it_shadows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PROFILE_PATH_ENV, str(tmp_path))
    write(tmp_path / "printers" / "cn-80mm.toml", profile("printer", "cn-80mm", inherits="cn-80mm",
                                                          serial={"baud": 19200}))
    loaded = load_profile("printer", "cn-80mm")
    assert loaded["serial"]["baud"] == 19200 and loaded["text"]["encoding"] == "gb18030"  # shipped cn-80mm's


def test_a_path_loads_that_file_and_its_parent_resolves_beside_it(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "site" / "cn-80mm.toml", profile("printer", "cn-80mm", inherits="epson-tm-t88"))
    write(tmp_path / "site" / "my-till.toml", profile("printer", "my-till", inherits="cn-80mm"))
    for way in ("site/my-till.toml", "./site/my-till.toml", tmp_path / "site" / "my-till.toml"):
        loaded = load_profile("printer", way)
        assert loaded["name"] == "my-till" and loaded["media"]["dots"] == 512  # site cn-80mm -> shipped epson-tm-t88
    write(tmp_path / "solo.toml", profile("printer", "solo"))
    assert load_profile("printer", "solo.toml")["name"] == "solo"  # ends in .toml: a path
    with pytest.raises(ProfileError, match=r"missing\.toml: no such printer profile file"):
        load_profile("printer", "missing.toml")


def test_search_roots_come_after_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env, plugin = tmp_path / "env", tmp_path / "plugin"
    write(plugin / "printers" / "acme.toml", profile("printer", "acme", model="plugin"))
    assert load_profile("printer", "acme", search=[plugin])["model"] == "plugin"
    assert "acme" in list_profiles("printer", search=[plugin]) and "acme" not in list_profiles("printer")
    write(env / "printers" / "acme.toml", profile("printer", "acme", model="site"))
    monkeypatch.setenv(PROFILE_PATH_ENV, str(env))
    assert load_profile("printer", "acme", search=[str(plugin)])["model"] == "site"


CASH_DRAWER_SCHEMA = """\
schema = 1
kind = "cash_drawer"
title = "Cash drawers"

[keys.schema]
type = "int"
required = true
doc = "the schema version"

[keys.name]
type = "str"
required = true
doc = "the file name"

[keys.inherits]
type = "str"
default = ""
doc = "the parent"

[keys."kick.pin"]
type = "int"
default = 2
choices = [2, 5]
doc = "the drawer kick-out connector pin"

[keys."kick.pulse_ms"]
type = "int"
default = 100
min = 1
max = 510
doc = "pulse length"
"""


def test_a_plugin_brings_the_schema_of_its_own_kind(tmp_path: Path) -> None:
    plugin = tmp_path / "plugin"
    (plugin / "cash_drawers").mkdir(parents=True)
    (plugin / "cash_drawers" / "schema.toml").write_text(CASH_DRAWER_SCHEMA, encoding="utf-8")
    write(plugin / "cash_drawers" / "acme-cd1.toml", {"schema": 1, "name": "acme-cd1", "kick": {"pin": 5}})
    write(plugin / "cash_drawers" / "acme-cd2.toml", {"schema": 1, "name": "acme-cd2", "inherits": "acme-cd1",
                                                       "kick": {"pulse_ms": 50}})
    assert load_profile("cash_drawer", "acme-cd2", search=[plugin])["kick"] == {"pin": 5, "pulse_ms": 50}
    assert list_profiles("cash_drawer", search=[plugin]) == ["acme-cd1", "acme-cd2"]
    assert "cash_drawer" in list_kinds([plugin]) and "cash_drawer" not in list_kinds()
    with pytest.raises(ProfileError, match="unknown profile kind 'cash_drawer'"):
        load_profile("cash_drawer", "acme-cd1")
    write(plugin / "cash_drawers" / "bad.toml", {"schema": 1, "name": "bad", "kick": {"pin": 3}})
    with pytest.raises(ProfileError, match=r"bad\.toml: 'kick\.pin' must be one of 2, 5, not 3"):
        load_profile("cash_drawer", "bad", search=[plugin])


def test_a_plugin_cannot_redefine_a_shipped_kind(tmp_path: Path) -> None:
    plugin = tmp_path / "plugin"
    (plugin / "printers").mkdir(parents=True)
    (plugin / "printers" / "schema.toml").write_text(CASH_DRAWER_SCHEMA.replace("cash_drawer", "printer"),
                                                       encoding="utf-8")
    write(plugin / "printers" / "drawerish.toml", {"schema": 1, "name": "drawerish", "kick": {"pin": 2}})
    assert load_schema("printer", search=[plugin]).keys.keys() == load_schema("printer").keys.keys()
    with pytest.raises(ProfileError, match="unknown key 'kick'"):
        load_profile("printer", "drawerish", search=[plugin])


@pytest.mark.parametrize(("change", "message"), [
    (("type = \"int\"\ndefault = 2\n", "type = \"integer\"\ndefault = 2\n"), "type must be one of"),
    (("default = 2\n", "default = \"2\"\n"), "the default does not follow the spec"),
    (("choices = [2, 5]\n", "choices = [2, 5]\nflavour = 1\n"), "unknown spec field 'flavour'"),
    (("default = 100\n", ""), "give exactly one of default, required = true, default_from"),
    (("doc = \"pulse length\"\n", ""), "doc must be one line of text"),
    (("kind = \"cash_drawer\"\n", "kind = \"drawer\"\n"), "'kind' must be 'cash_drawer'"),
    (("[keys.inherits]\ntype = \"str\"\ndefault = \"\"\ndoc = \"the parent\"\n", ""),
     "every schema declares 'inherits'"),
])
def test_a_bad_schema_names_its_file_and_key(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    root = tmp_path / "plugin"
    (root / "cash_drawers").mkdir(parents=True)
    assert change[0] in CASH_DRAWER_SCHEMA
    (root / "cash_drawers" / "schema.toml").write_text(CASH_DRAWER_SCHEMA.replace(*change), encoding="utf-8")
    with pytest.raises(ProfileError, match=r"cash_drawers/schema\.toml: ") as caught:
        load_schema("cash_drawer", search=[root])
    assert message in str(caught.value)


# -- start-up cost ---------------------------------------------------------------------------------
def test_loading_imports_nothing_heavy() -> None:
    code = ("import sys, firmware_profiles as f\n"
            "[f.load_profile(k, n) for k in f.KINDS for n in f.list_profiles(k)]\n"
            "print(sorted(m for m in ('difflib', 'pydantic', 'jsonschema', 'firmware_profiles.docs')"
            " if m in sys.modules))")
    env = {k: v for k, v in os.environ.items() if k != PROFILE_PATH_ENV}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT, env=env)
    assert out.stdout.strip() == "[]"


# -- properties ------------------------------------------------------------------------------------
NAME = st.from_regex(r"[a-z_][a-z0-9_]{0,12}", fullmatch=True)


@given(data=st.data(), kind=st.sampled_from(sorted(MINIMAL)), junk=NAME,
       value=st.one_of(st.integers(), st.text(), st.booleans()))
def test_a_junk_key_is_always_refused_by_name(data: st.DataObject, kind: str, junk: str, value: Any) -> None:
    fields = load_schema(kind).fields
    # at the top level, or inside a declared table (serial.<junk>, fonts.a.<junk>, ...)
    where = data.draw(st.sampled_from(["", *sorted(fields.tables)]))
    path = f"{where}.{junk}" if where else junk
    if path in fields.keys or path in fields.tables:
        return  # a real key: nothing to refuse
    doc = copy.deepcopy(MINIMAL[kind])
    table = doc
    for part in where.split(".") if where else []:
        table = table.setdefault(part, {})
    table[junk] = value
    assert _error(kind, doc).startswith(f"somewhere/my.toml: unknown key {path!r}")


def _wrong_value(key: Key) -> Any:
    """A value of another type than `key` takes."""
    return {"str": 7, "int": "7", "float": "7.0", "bool": "yes"}.get(key.element, {"x": 1})


SCALAR_KEYS = [(kind, path, key) for kind in sorted(MINIMAL) for path, key in load_schema(kind).keys.items()
               if key.type not in ("table", "map", "list[table]")]


@pytest.mark.parametrize(("kind", "path", "key"), SCALAR_KEYS, ids=[f"{k}:{p}" for k, p, _ in SCALAR_KEYS])
def test_every_declared_key_refuses_a_wrong_type(kind: str, path: str, key: Key) -> None:
    *tables, leaf = path.split(".")
    data = copy.deepcopy(MINIMAL[kind])
    table = data
    for part in tables:
        table = table.setdefault(part, {})
    table[leaf] = [_wrong_value(key)] if key.type.startswith("list[") else _wrong_value(key)
    name = f"{path}[0]" if key.type.startswith("list[") else path
    assert _error(kind, data).startswith(f"somewhere/my.toml: {name!r} must be ")


@given(baud=st.integers(min_value=50, max_value=4_000_000), dots=st.integers(min_value=12, max_value=4096))
def test_any_value_in_range_loads_and_is_kept(baud: int, dots: int) -> None:
    loaded = validate_profile("printer", profile("printer", serial={"baud": baud}, media={"dots": dots}))
    assert loaded["serial"]["baud"] == baud and loaded["fonts"]["a"]["columns"] == dots // 12


def _package_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the shipped printer profiles standing in for this package (its caches included)."""
    import shutil

    import firmware_profiles

    root = tmp_path / "package"
    shutil.copytree(PACKAGE_ROOT / "printers", root / "printers", ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(firmware_profiles, "PACKAGE_ROOT", root)
    monkeypatch.setattr(firmware_profiles, "KINDS", {"printer": "printers"})
    return root


def test_a_kept_shipped_profile_follows_every_file_it_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = _package_copy(tmp_path, monkeypatch)
    first = load_profile("printer", "cn-80mm")
    assert list((root / "printers" / "__pycache__").glob("cn-80mm.toml.profile.*.marshal"))
    first["serial"]["baud"] = 1  # the caller's copy: the next load is not changed by it
    again = load_profile("printer", "cn-80mm")
    assert again["serial"]["baud"] == 115200 and again["media"] == first["media"]
    parent = root / "printers" / "epson-tm-t20iii.toml"  # cn-80mm inherits from it
    text = parent.read_text(encoding="utf-8").replace("dpi = 203", "dpi = 180  # another size, whatever the mtime")
    parent.write_text(text, encoding="utf-8")
    assert load_profile("printer", "cn-80mm")["media"]["dpi"] == 180
    schema = root / "printers" / "schema.toml"
    schema.write_text(schema.read_text(encoding="utf-8").replace("[keys.\"media.dpi\"]", "[keys.\"media.dpx\"]"),
                      encoding="utf-8")
    with pytest.raises(ProfileError, match=r"unknown key 'media\.dpi'"):
        load_profile("printer", "cn-80mm")


def test_a_kept_profile_is_the_full_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _package_copy(tmp_path, monkeypatch)
    for name in list_profiles("printer"):
        full = load_profile("printer", str(PACKAGE_ROOT / "printers" / f"{name}.toml"))  # a path: never kept
        assert load_profile("printer", name) == full  # the first load keeps it...
        assert load_profile("printer", name) == full  # ...the second reads it back
