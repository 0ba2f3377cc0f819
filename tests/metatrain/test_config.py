"""The meta-training config: shipped files load, defaults fill in, unknown keys and bad values are named."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from agent.errors import ConfigError
from models.metatrain.config import DEFAULTS, load_config

CONFIGS = Path(__file__).resolve().parents[2] / "models" / "metatrain" / "configs"
MP = {"lr.bias": {"sigma": 0.05}}


def _cfg(**given):
    """A minimal valid config dict plus ``given`` (sections replace whole)."""
    base = {"meta_parameters": dict(MP)}
    base.update(given)
    return base


@pytest.mark.parametrize("name", ["smoke.json", "halo-v1.json", "halo-v2.json"])
def test_shipped_configs_load(name):  # the single-task configs (HALO supplement F)
    path = CONFIGS / name
    cfg = load_config(path)
    assert load_config(str(path)) == cfg
    raw = json.loads(path.read_text())
    assert cfg["name"] == raw["name"]
    assert cfg["meta_parameters"] == raw["meta_parameters"]
    assert set(cfg) == set(DEFAULTS)  # "_comment" keys dropped, defaults filled in
    for section in ("meta_task", "objective", "es", "evaluation"):
        assert set(cfg[section]) == set(DEFAULTS[section]), section
        for k, v in raw.get(section, {}).items():
            assert cfg[section][k] == v, (section, k)
    assert isinstance(cfg["cost_table"], dict) and len(cfg["cost_table"]) == 8


def test_smoke_config_fills_es_defaults():
    cfg = load_config(CONFIGS / "smoke.json")
    assert cfg["es"]["iterations"] == 3 and cfg["es"]["pairs"] == 2
    assert cfg["es"]["beta1"] == DEFAULTS["es"]["beta1"]
    assert cfg["es"]["clip"] == DEFAULTS["es"]["clip"]


def test_defaults_fill_in_and_are_not_shared():
    cfg = load_config(_cfg(es={"iterations": 7}))
    assert cfg["es"]["iterations"] == 7 and cfg["es"]["pairs"] == DEFAULTS["es"]["pairs"]
    assert cfg["meta_task"] == DEFAULTS["meta_task"]
    assert cfg["start_probabilities"] == [0.1, 0.3, 0.5]
    snapshot = copy.deepcopy(DEFAULTS)
    cfg["es"]["pairs"] = 99
    cfg["evaluation"]["lr_grid"].append(0.5)
    assert DEFAULTS == snapshot  # the result is a copy


def test_unknown_top_level_key_is_named():
    with pytest.raises(ConfigError, match="iterationz") as info:
        load_config(_cfg(iterationz=3))
    assert info.value.field == "iterationz"


@pytest.mark.parametrize("section,key", [("es", "iterationz"), ("objective", "lambda"),
                                         ("meta_task", "steps"), ("evaluation", "seed")])
def test_unknown_key_in_a_section_is_named(section, key):
    with pytest.raises(ConfigError, match=rf"{section}\.{key}") as info:
        load_config(_cfg(**{section: {key: 3}}))
    assert info.value.field == f"{section}.{key}"


def test_section_must_be_an_object():
    with pytest.raises(ConfigError, match="^es: "):
        load_config(_cfg(es=[1, 2]))


def test_underscore_keys_are_ignored():
    cfg = load_config(_cfg(_comment="hello", es={"_note": "x", "iterations": 2}))
    assert "_comment" not in cfg and "_note" not in cfg["es"] and cfg["es"]["iterations"] == 2
    assert cfg == load_config(_cfg(es={"iterations": 2}))


@pytest.mark.parametrize("given,field", [
    ({"es": {"pairs": 0}}, "es.pairs"),
    ({"es": {"pairs": 2.5}}, "es.pairs"),
    ({"es": {"workers": True}}, "es.workers"),
    ({"es": {"lr": 0}}, "es.lr"),
    ({"es": {"shaping": "rank"}}, "es.shaping"),
    ({"objective": {"loss_clip": 0}}, "objective.loss_clip"),
    ({"objective": {"lambda_jac": -1}}, "objective.lambda_jac"),
    ({"objective": {"energy_weight": float("nan")}}, "objective.energy_weight"),
    ({"objective": {"final_weight": -1}}, "objective.final_weight"),
    ({"meta_task": {"horizon": 0}}, "meta_task.horizon"),
    ({"seed": -1}, "seed"),
    ({"average_last": 0}, "average_last"),
    ({"start_probabilities": [0.1, 2, 0.5]}, "start_probabilities"),
    ({"start_probabilities": [0.1, 0.3]}, "start_probabilities"),
    ({"start_probabilities": [0, 0.3, 0.5]}, "start_probabilities"),
    ({"meta_parameters": {}}, "meta_parameters"),
    ({"meta_parameters": {"lr.bias": {"sigma": -1}}}, "meta_parameters.lr.bias"),
    ({"meta_parameters": {"lr.bias": {"lr": 0.1}}}, "meta_parameters.lr.bias"),
    ({"meta_parameters": {"lr.bias": {"sigma": 0.1, "mu": 1}}}, "meta_parameters.lr.bias"),
    ({"cost_table": "guess"}, "cost_table"),
    ({"evaluation": {"lr_grid": []}}, "evaluation.lr_grid"),
    ({"evaluation": {"lr_grid": [1e-3, 20]}}, "evaluation.lr_grid"),
    ({"evaluation": {"tasks": [{"model": "cnn-a"}]}}, "evaluation.tasks[0]"),
    ({"evaluation": {"seeds": 0}}, "evaluation.seeds"),
])
def test_bad_values_name_the_field(given, field):
    with pytest.raises(ConfigError) as info:
        load_config(_cfg(**given))
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: got ")


def test_missing_meta_parameters_is_refused():
    with pytest.raises(ConfigError, match="meta_parameters"):
        load_config({})


def test_missing_file_is_named(tmp_path):
    path = tmp_path / "nope.json"
    with pytest.raises(ConfigError, match="^config: ") as info:
        load_config(path)
    assert str(path) in str(info.value) and "existing JSON file" in str(info.value)


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", ""])
def test_invalid_json_is_named(tmp_path, text):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match="^config: ") as info:
        load_config(path)
    assert info.value.field == "config" and str(path) in str(info.value)


def test_a_valid_file_loads(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(_cfg(name="mine", es={"iterations": 4})))
    cfg = load_config(path)
    assert cfg["name"] == "mine" and cfg["es"]["iterations"] == 4


def test_distribution_config_loads_and_refuses_what_it_cannot_price():
    cfg = load_config(CONFIGS / "smoke-distribution.json")
    assert cfg["distribution"]["seed"] == 5 and cfg["meta_validation"]["tasks"] == 1
    with pytest.raises(ConfigError, match="energy_weight 0"):
        load_config(dict(json.loads((CONFIGS / "smoke-distribution.json").read_text()),
                         objective={"energy_weight": 0.01, "lambda_jac": 0}))
    with pytest.raises(ConfigError, match="update-probability"):
        load_config(_cfg(distribution={"seed": 1}, objective={"energy_weight": 0, "lambda_jac": 0},
                         meta_parameters={"p.first": {"sigma": 0.1}}))
    with pytest.raises(ConfigError, match="distribution"):
        load_config(_cfg(distribution={"seed": 1, "mnist": {"tasks": -3}},
                         objective={"energy_weight": 0, "lambda_jac": 0}))


def test_error_weight_and_validation_spec_are_checked():
    obj = {"energy_weight": 0, "lambda_jac": 0, "error_weight": 1.5}
    cfg = load_config(_cfg(distribution={"seed": 1}, objective=obj,
                           meta_validation={"spec": {"seed": 2, "mnist": {"tasks": 3}}}))
    assert cfg["objective"]["error_weight"] == 1.5
    assert cfg["meta_validation"]["spec"] == {"seed": 2, "mnist": {"tasks": 3}}
    from models.metatrain.config import validation_spec

    merged = validation_spec({"seed": 1, "mnist": {"tasks": 5, "shots": [10]}},
                             {"seed": 2, "mnist": {"tasks": 3}})
    assert merged == {"seed": 2, "mnist": {"tasks": 3, "shots": [10]}}
    with pytest.raises(ConfigError, match="meta_validation.spec"):  # the same pool again
        load_config(_cfg(distribution={"seed": 1}, objective=obj, meta_validation={"spec": {"seed": 1}}))
    with pytest.raises(ConfigError, match="meta_validation.spec"):
        load_config(_cfg(distribution={"seed": 1}, objective=obj, meta_validation={"spec": [2]}))
    with pytest.raises(ConfigError, match="meta_validation.spec"):
        load_config(_cfg(distribution={"seed": 1}, objective=obj,
                         meta_validation={"spec": {"mnist": {"tasks": -1}}}))
    with pytest.raises(ConfigError, match="error_weight"):
        load_config(_cfg(objective={"error_weight": 1.0}))  # no distribution
    with pytest.raises(ConfigError, match="objective.error_weight"):
        load_config(_cfg(distribution={"seed": 1}, objective=dict(obj, error_weight=-1)))
