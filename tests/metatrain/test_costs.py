"""The per-mask step cost table: expected cost of update probabilities, checks, measuring, thirds."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from models.metatrain.costs import (
    all_masks,
    check_table,
    expected_cost,
    layer_probabilities,
    mask_key,
    measure_cost_table,
)

TABLE = {"000": 0.0, "001": 0.4, "010": 0.45, "011": 0.45, "100": 0.9, "101": 0.92, "110": 0.98,
         "111": 1.0}


def test_masks_and_keys():
    masks = all_masks(3)
    assert len(masks) == 8 and masks[0] == (False, False, False) and masks[-1] == (True,) * 3
    assert sorted(mask_key(m) for m in masks) == sorted(TABLE)
    assert mask_key([True, False, True]) == "101"
    assert mask_key(np.array([0, 1], bool)) == "01"


def test_expected_cost_of_dense_is_the_dense_entry():
    assert expected_cost([1.0, 1.0, 1.0], TABLE) == pytest.approx(TABLE["111"])
    assert expected_cost([1.0, 1.0, 1.0], dict(TABLE, **{"111": 0.77})) == pytest.approx(0.77)


@pytest.mark.parametrize("layer,key", [(0, "100"), (1, "010"), (2, "001")])
def test_one_certain_layer_picks_its_mask(layer, key):
    probs = [0.0, 0.0, 0.0]
    probs[layer] = 1.0
    assert expected_cost(probs, TABLE) == pytest.approx(TABLE[key])


def test_no_updates_cost_nothing():
    assert expected_cost([0.0, 0.0, 0.0], TABLE) == 0.0


def test_expected_cost_matches_a_hand_computed_sum():
    p = (0.1, 0.3, 0.5)
    want = 0.0
    for bits in itertools.product((0, 1), repeat=3):
        prob = 1.0
        for b, pj in zip(bits, p):
            prob *= pj if b else 1 - pj
        want += prob * TABLE["".join(map(str, bits))]
    # spelled out for the small table, as a second check
    by_hand = (0.9 * 0.7 * 0.5 * 0.4 + 0.9 * 0.3 * 0.5 * 0.45 + 0.9 * 0.3 * 0.5 * 0.45
               + 0.1 * 0.7 * 0.5 * 0.9 + 0.1 * 0.7 * 0.5 * 0.92 + 0.1 * 0.3 * 0.5 * 0.98
               + 0.1 * 0.3 * 0.5 * 1.0)
    assert want == pytest.approx(by_hand)
    assert expected_cost(p, TABLE) == pytest.approx(want, rel=1e-12)


def test_expected_cost_is_linear_in_the_table():
    p = (0.2, 0.6, 0.9)
    doubled = {k: 2 * v for k, v in TABLE.items()}
    assert expected_cost(p, doubled) == pytest.approx(2 * expected_cost(p, TABLE))
    flat = {k: (0.0 if k == "000" else 1.0) for k in TABLE}
    # with every non-empty step costing 1, the cost is P(at least one layer updates)
    assert expected_cost(p, flat) == pytest.approx(1 - 0.8 * 0.4 * 0.1)


def test_check_table_accepts_a_full_table():
    out = check_table({k: int(v) if v in (0.0, 1.0) else v for k, v in TABLE.items()}, 3)
    assert out == TABLE and all(isinstance(v, float) for v in out.values())


def test_check_table_names_a_missing_mask():
    table = dict(TABLE)
    del table["011"]
    with pytest.raises(ValueError, match="'011' missing"):
        check_table(table, 3)
    with pytest.raises(ValueError, match="'0000' missing"):
        check_table(TABLE, 4)


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf")])
def test_check_table_names_a_bad_cost(bad):
    table = dict(TABLE, **{"101": bad})
    with pytest.raises(ValueError, match=r"cost_table\['101'\]"):
        check_table(table, 3)


def test_layer_probabilities_by_thirds():
    got = layer_probabilities((0.1, 0.3, 0.5), 5)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, [0.1, 0.1, 0.3, 0.5, 0.5])
    np.testing.assert_array_equal(layer_probabilities((0.2, 0.6, 0.9), 3), [0.2, 0.6, 0.9])
    np.testing.assert_array_equal(layer_probabilities((0.2, 0.6, 0.9), 1), [0.6])


def test_measure_cost_table_on_cnn_a():
    table = measure_cost_table("cnn-a", (28, 28, 1), 5, rounds=2)
    assert set(table) == {mask_key(m) for m in all_masks(3)}
    assert table["000"] == 0.0 and table["111"] == 1.0
    assert all(math.isfinite(v) and v >= 0 for v in table.values())
    assert all(v > 0 for k, v in table.items() if k != "000")
    assert check_table(table, 3) == table
