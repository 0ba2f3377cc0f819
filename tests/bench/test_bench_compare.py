"""``bench compare`` end to end on the built-in synthetic-a task: the report schema, joules
per point recomputed from the runs, tuning, the default target, interleaving, the
outputs with and without matplotlib, and bad settings."""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

import pytest

from bench.arms import BenchConfigError, parse_arm
from bench.cli import main
from bench.compare import Cell, CompareConfig, interleaved_order, plan_cells, run_compare
from bench.markdown import at_grid_edge
from bench.metrics import smoothed_final_accuracy
from bench.report import write_outputs
from kernels.optimizers import make_optimizer
from models.halo.weights import load_weights, save_weights
from models.registry import LEARNED

FAKE = "fake-l2o"  # a learned optimizer stand-in: never tuned, HALO sparsity by default
STEPS, EVAL, SEEDS, GRID = 20, 5, 2, (1e-2, 1e-3)


def shared_data_dir(tmp_path_factory) -> Path:
    """One data dir per test session, so synthetic-a's source model is pretrained once."""
    d = tmp_path_factory.getbasetemp() / "bench-synthetic-data"
    d.mkdir(exist_ok=True)
    return d


@pytest.fixture(scope="module")
def fake_learned():
    LEARNED[FAKE] = (lambda net, lr, options: make_optimizer("adam", lr=lr or 3e-3), "halo")
    yield FAKE
    LEARNED.pop(FAKE, None)


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory, fake_learned):
    data = shared_data_dir(tmp_path_factory)
    out = tmp_path_factory.mktemp("bench-out")
    argv = ["compare", "--task", "synthetic-a", "--optimizers", f"{FAKE},adam,sgd",
            "--tune-lr", ",".join(map(str, GRID)), "--seeds", str(SEEDS), "--steps", str(STEPS),
            "--eval-every", str(EVAL), "--budget-joules", "0.5", "--data-dir", str(data),
            "--out", str(out), "--power-source", "estimate", "--idle-seconds", "0",
            "--warmup-steps", "2", "--json"]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(argv)
    return rc, json.loads(buf.getvalue()), out


def test_report_json_has_the_schema(bench_run):
    rc, report, out = bench_run
    assert rc == 0
    assert json.loads((out / "report.json").read_text()) == report
    for key in ("task", "model", "steps", "seeds", "energy_source", "estimated", "target_accuracy",
                "optimizers"):
        assert key in report
    assert (report["task"], report["model"], report["steps"], report["seeds"]) == \
        ("synthetic-a", "cnn-a", STEPS, SEEDS)
    assert report["energy_source"] == "estimate" and report["estimated"] is True
    assert list(report["optimizers"]) == [FAKE, "adam", "sgd"]
    for name, o in report["optimizers"].items():
        for key in ("initial_accuracy", "final_accuracy", "joules", "joules_per_point",
                    "joules_to_target", "seconds_per_step"):
            assert {"mean", "std"} <= set(o[key]), (name, key)
        assert "reached" in o["joules_to_target"]
        assert {"lr", "tuning_joules", "runs"} <= set(o)
        assert len(o["runs"]) == SEEDS
        assert [r["seed"] for r in o["runs"]] == [0, 1]
        for r in o["runs"]:
            assert r["steps"] == STEPS and [p["step"] for p in r["points"]] == [0, 5, 10, 15, 20]
            assert r["energy_source"] == "estimate"


def test_joules_per_point_equals_energy_over_gain_from_the_runs(bench_run):
    _, report, _ = bench_run
    for o in report["optimizers"].values():
        per = []
        for r in o["runs"]:
            gain = 100 * (r["final_accuracy"] - r["initial_accuracy"])
            per.append(r["joules"] / gain if gain > 0 else None)
        assert o["joules_per_point"]["per_seed"] == pytest.approx(per)
        ok = [v for v in per if v is not None]
        if ok:
            assert o["joules_per_point"]["mean"] == pytest.approx(sum(ok) / len(ok))
        jm = sum(r["joules"] for r in o["runs"]) / SEEDS
        assert o["joules"]["mean"] == pytest.approx(jm)
        sps = [r["seconds"] / r["steps"] for r in o["runs"]]
        assert o["seconds_per_step"]["mean"] == pytest.approx(sum(sps) / SEEDS)


def test_tuning_picks_the_best_smoothed_rate_and_counts_the_whole_grid(bench_run):
    _, report, _ = bench_run
    learned = report["optimizers"][FAKE]
    assert learned["tuning_joules"] is None and learned["grid"] is None and learned["tuned"] is False
    assert learned["sparsity"] == [0.1, 0.3, 0.5]  # cnn-a: 3 layers; the learned default
    assert report["optimizers"]["adam"]["sparsity"] is None
    for name in ("adam", "sgd"):
        o = report["optimizers"][name]
        assert o["tuned"] is True and [g["lr"] for g in o["grid"]] == list(GRID)
        grid_runs = [r for g in o["grid"] for r in g["runs"]]
        assert len(grid_runs) == len(GRID) * SEEDS
        assert o["tuning_joules"] == pytest.approx(sum(r["joules"] for r in grid_runs))
        best = max(o["grid"], key=lambda g: g["final_accuracy_smoothed"]["mean"])
        assert best["chosen"] and o["lr"] == best["lr"]
        assert o["lr_at_grid_edge"] is True and at_grid_edge(o)  # a 2-point grid: always
        assert all(r["hyperparameters"]["lr"] == o["lr"] for r in o["runs"])
    # default target: the best hand-designed optimizer's mean smoothed final accuracy
    smoothed = {n: sum(smoothed_final_accuracy(r) for r in report["optimizers"][n]["runs"]) / SEEDS
                for n in ("adam", "sgd")}
    assert report["target_accuracy"] == pytest.approx(max(smoothed.values()))
    assert "best hand-designed optimizer" in report["target_source"]
    top = report["optimizers"][max(smoothed, key=smoothed.get)]["joules_to_target"]
    assert top["seeds"] == SEEDS and 0 <= top["reached"] <= SEEDS


def test_runs_are_interleaved_seed_major(bench_run):
    _, report, _ = bench_run
    order = report["order"]
    assert len(order) == SEEDS * (1 + 2 * len(GRID))
    half = len(order) // SEEDS
    assert {o["seed"] for o in order[:half]} == {0} and {o["seed"] for o in order[half:]} == {1}
    assert order[0]["optimizer"] == FAKE and order[half]["optimizer"] != FAKE  # rotated
    assert report["warmup"]["steps_per_arm"] == 2


def test_outputs_markdown_and_plots(bench_run):
    _, report, out = bench_run
    md = (out / "report.md").read_text()
    assert "| optimizer |" in md and "estimated" in md and "J per point" in md
    assert "halo-agent bench compare" in md
    pytest.importorskip("matplotlib")
    for stem in ("accuracy_vs_joules", "loss_vs_joules"):
        for ext in ("png", "svg"):
            assert (out / f"{stem}.{ext}").stat().st_size > 1000


def test_outputs_without_matplotlib(bench_run, tmp_path, monkeypatch):
    _, report, _ = bench_run
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    written = write_outputs(report, tmp_path)
    assert "matplotlib is not installed" in written["plots_skipped"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json", "report.md"]
    assert "matplotlib is not installed" in (tmp_path / "report.md").read_text()


def test_unknown_optimizer_is_a_clear_error(tmp_path, capsys):
    rc = main(["compare", "--task", "synthetic-a", "--optimizers", "adam,nosuchopt",
               "--data-dir", str(tmp_path), "--power-source", "estimate"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "unknown optimizer 'nosuchopt'" in err and "adam" in err and "Traceback" not in err


@pytest.mark.parametrize("argv, needle", [
    (["--seeds", "0"], "--seeds"),
    (["--optimizers", "adam:10-30"], "10-30-50"),
    (["--optimizers", "adam,adam"], "each optimizer once"),
    (["--target-accuracy", "97"], "target_accuracy"),
    (["--lr", "sgd=1e-2"], "lr"),
])
def test_bad_settings_name_the_option(tmp_path, capsys, argv, needle):
    try:
        rc = main(["compare", "--task", "synthetic-a", "--data-dir", str(tmp_path),
                   "--power-source", "estimate", "--optimizers", "adam"] + argv)
    except SystemExit as e:  # argparse's own errors
        rc = e.code
    assert rc == 2
    assert needle in capsys.readouterr().err


def test_arms_sparsity_per_third_and_plan():
    arm = parse_arm("Adam:10-30-50")
    assert arm.label == "adam:10-30-50" and arm.hand_designed
    assert arm.sparsity_spec(3) == "0.1,0.3,0.5" and arm.sparsity_spec(4) == "0.1,0.3,0.3,0.5"
    assert parse_arm("sgd:dense").sparsity_spec(3) == "dense"

    class Cfg:
        tune_lr, lrs, options = (1e-2, 1e-3), {"sgd": 0.05}, {}

    cells = plan_cells([parse_arm("adam"), parse_arm("sgd")], Cfg())
    assert [(c.arm.label, c.lr, c.tuned) for c in cells] == [
        ("adam", 1e-2, True), ("adam", 1e-3, True), ("sgd", 0.05, False)]
    order = interleaved_order(cells, [0, 1, 2])
    assert [c.lr for s, c in order if s == 1] == [1e-3, 0.05, 1e-2]
    assert all(isinstance(c, Cell) for _, c in order) and len(order) == 9


def test_per_arm_lr_grid_in_the_plan(fake_learned):
    cfg = CompareConfig(task="synthetic-a", data_dir=Path("."), tune_lr={"adam": [1e-2, 1e-3]},
                        lrs={"momentum": 0.05})
    cfg.validate()
    arms = [parse_arm(n) for n in (FAKE, "adam", "sgd", "momentum")]
    cells = plan_cells(arms, cfg)
    assert [(c.arm.label, c.lr, c.tuned) for c in cells] == [
        (FAKE, None, False), ("adam", 1e-2, True), ("adam", 1e-3, True), ("sgd", None, False),
        ("momentum", 0.05, False)]


@pytest.mark.parametrize("tune_lr, needle", [
    ({"adam": [1e-2, 1e-2]}, "distinct"),
    ({"adam": [1e-2], "sgd": [0.0]}, "tune_lr"),
    ({"adam": [float("nan")]}, "tune_lr"),
])
def test_bad_per_arm_lr_grid_is_refused(tune_lr, needle):
    with pytest.raises(BenchConfigError, match=needle):
        CompareConfig(task="synthetic-a", data_dir=Path("."), tune_lr=tune_lr).validate()


def test_per_arm_grid_and_options_reach_the_runs(tmp_path_factory, tmp_path):
    """``tune_lr={"adam": [...]}`` tunes adam only; ``options={"halo": {...}}`` are halo's
    hyperparameters (its weights file, whose update probabilities set the default sparsity)."""
    weights = save_weights(tmp_path / "mine.npz",
                           load_weights()._replace(update_probabilities=(0.2, 0.6, 0.9)))
    grid = [1e-2, 1e-3]
    cfg = CompareConfig(task="synthetic-a", data_dir=shared_data_dir(tmp_path_factory),
                        optimizers=("halo", "adam", "sgd"), seeds=1, steps=4, eval_every=2,
                        tune_lr={"adam": grid},
                        options={"halo": {"weights": str(weights), "kernel": "elementwise"}},
                        warmup_steps=0, power_source="estimate", idle_seconds=0.0)
    report = run_compare(cfg)
    opts = report["optimizers"]
    # every dense baseline also runs with the sparsity of the HALO weights under test
    assert list(opts) == ["halo", "adam", "adam:halo", "sgd", "sgd:halo"]
    assert report["halo_weights"]["name"] == "mine"
    assert report["halo_weights"]["update_probabilities"] == [0.2, 0.6, 0.9]
    for name in ("adam:halo", "sgd:halo"):
        assert opts[name]["sparsity"] == [0.2, 0.6, 0.9] and opts[name]["hand_designed"]
    assert opts["adam"]["sparsity"] is None and opts["sgd"]["sparsity"] is None
    # adam and adam:halo ran each listed rate (the same grid), the others once at their default
    for name in ("adam", "adam:halo"):
        assert opts[name]["tuned"] is True and [g["lr"] for g in opts[name]["grid"]] == grid
        assert all(len(g["runs"]) == 1 for g in opts[name]["grid"])
        assert opts[name]["tuning_runs"] == len(grid)
    assert opts["sgd"]["tuned"] is False and opts["sgd"]["grid"] is None
    assert opts["halo"]["tuned"] is False and opts["halo"]["grid"] is None
    order = [(o["optimizer"], o["lr"]) for o in report["order"]]
    assert sorted(order, key=str) == sorted([("halo", None), ("adam", 1e-2), ("adam", 1e-3),
                                             ("adam:halo", 1e-2), ("adam:halo", 1e-3),
                                             ("sgd", None), ("sgd:halo", None)], key=str)
    assert report["tune_lr"] == {"adam": grid}
    # halo's options reached the engine: the runs used the given weights and their sparsity
    for r in opts["halo"]["runs"]:
        assert r["hyperparameters"]["weights"] == str(weights)
        assert r["hyperparameters"]["kernel"] == "elementwise"
    assert opts["halo"]["sparsity"] == [0.2, 0.6, 0.9]  # cnn-a: one layer per third
    # options are per arm: adam and sgd ran without them
    for name in ("adam", "sgd", "adam:halo", "sgd:halo"):
        assert all("weights" not in r["hyperparameters"] for r in opts[name]["runs"])
    write_outputs(report, tmp_path / "out")
    text = (tmp_path / "out" / "report.md").read_text()
    assert "adam: 0.01, 0.001" in text
    assert "HALO weights: mine, trained for update probabilities 20.0/60.0/90.0%" in text
    # the run record: read from the board's files before the first run, and in each run
    assert report["run_record"]["numpy"] and "run record: " in text
    assert all(r["run_record"]["threads"] == 1 for r in opts["halo"]["runs"])
    # the optimizer's own cost is a number of every arm
    assert opts["halo"]["energy_split"]["joules"]["optimizer_update"] > 0
    assert "Where the energy goes" in text and "optimizer update J (share of training)" in text


def test_sparse_baselines_join_a_halo_arm_only():
    from bench.arms import parse_arm, parse_arms
    from bench.compare import with_sparse_baselines

    def labels(arms):
        return [a.label for a in arms]

    arms = parse_arms(["halo", "adam", "momentum", "sgd:10-30-50"])
    assert labels(with_sparse_baselines(arms)) == ["halo", "adam", "adam:halo", "momentum",
                                                   "momentum:halo", "sgd:10-30-50"]
    assert labels(with_sparse_baselines(arms, enabled=False)) == labels(arms)
    no_halo = parse_arms(["adam", "sgd"])
    assert labels(with_sparse_baselines(no_halo)) == ["adam", "sgd"]
    # an optimizer that already has a sparse arm gets no second one
    twin = parse_arms(["halo", "adam", "adam:thirds:0.2,0.6,0.9"])
    assert labels(with_sparse_baselines(twin)) == labels(twin)
    assert parse_arm("adam:thirds:0.2,0.6,0.9").sparsity == (0.2, 0.6, 0.9)


@pytest.mark.parametrize("text, expected", [
    ("halo,adam:thirds:0.25,0.93,0.92,sgd", ["halo", "adam:thirds:0.25,0.93,0.92", "sgd"]),
    ("halo, adam:halo", ["halo", "adam:halo"]),
    ("adam:10-30-50,,sgd", ["adam:10-30-50", "sgd"])])
def test_optimizer_lists_keep_thirds_probabilities_together(text, expected):
    from bench.arms import split_list

    assert split_list(text) == expected


@pytest.mark.parametrize("bad", ["adam:thirds:0.2,0.9", "adam:thirds:0,0.5,1", "adam:thirds:a,b,c"])
def test_bad_thirds_arm_names_the_arm(bad):
    from bench.arms import parse_arm

    with pytest.raises(BenchConfigError, match=f"optimizers: got '{bad}'"):
        parse_arm(bad)


def test_meta_train_evaluation_runs_the_sparse_baselines(tmp_path_factory, tmp_path):
    """The model card's evaluation tunes and compares every baseline dense and with the
    update probabilities of the evaluated weights; the best baseline is the best of all."""
    from bench.metatrain_eval import evaluate_task

    weights = save_weights(tmp_path / "mine.npz",
                           load_weights()._replace(update_probabilities=(0.2, 0.6, 0.9)))
    ev = {"baselines": ["adam"], "lr_grid": [1e-2, 1e-3], "finalists": 1, "tune_seeds": 1,
          "tune_first_seed": 100, "seeds": 1, "first_seed": 0, "eval_every": 2, "smooth_evals": 1}
    logs = []
    row = evaluate_task(weights, {"task": "synthetic-a", "steps": 4}, ev,
                        shared_data_dir(tmp_path_factory), tmp_path / "eval", False, logs.append)
    sparse = "adam:thirds:0.2,0.6,0.9"
    assert set(row["arms"]) == {"halo", "adam", sparse}
    assert row["arms"][sparse]["sparsity"] == [0.2, 0.6, 0.9]
    accs = {k: a["final_accuracy_smoothed"] for k, a in row["arms"].items() if k != "halo"}
    assert row["best_baseline"] == max(accs, key=accs.get)
    tune = json.loads((tmp_path / "eval" / "synthetic-a-cnn-a" / "tune" / "report.json").read_text())
    assert [g["lr"] for g in tune["optimizers"][sparse]["grid"]] == ev["lr_grid"]


def test_metatrain_eval_command_evaluates_any_weights_with_a_config(tmp_path_factory, tmp_path, capsys):
    """`python -m bench.metatrain_eval`: the config's evaluation protocol on a weights file,
    tasks filtered by --task, OUT/evaluation.json written; unknown tasks and files refused."""
    from bench import metatrain_eval

    weights = save_weights(tmp_path / "mine.npz", load_weights())
    cfg = {"meta_parameters": {"lr.bias": {"sigma": 0.05}},
           "evaluation": {"tasks": [{"task": "synthetic-a", "steps": 4}], "baselines": ["adam"],
                          "lr_grid": [1e-2], "finalists": 1, "tune_seeds": 1, "seeds": 1,
                          "eval_every": 2, "smooth_evals": 1}}
    config = tmp_path / "c.json"
    config.write_text(json.dumps(cfg))
    data = str(shared_data_dir(tmp_path_factory))
    args = ["--config", str(config), "--data-dir", data, "--out", str(tmp_path / "ev")]
    assert metatrain_eval.main(args + ["--weights", str(weights), "--task", "synthetic-a-cnn-a"]) == 0
    result = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert [r["task"] for r in result["tasks"]] == ["synthetic-a"]
    assert "halo" in capsys.readouterr().out
    assert metatrain_eval.main(args + ["--weights", str(weights), "--task", "nope-mlp"]) == 2
    assert "synthetic-a-cnn-a" in capsys.readouterr().err
    assert metatrain_eval.main(args + ["--weights", str(tmp_path / "none.npz")]) == 2
    assert "none.npz" in capsys.readouterr().err


def test_metatrain_eval_reuses_a_stage_only_for_its_protocol(tmp_path_factory, tmp_path):
    """``--tune-from`` takes a committed tune stage (``KEY/tune-report.json.gz``) when it
    ran this protocol, and refuses one that did not, naming the field; a stored final
    stage of other weights is run again, not reused (a ``halo`` label alone matched)."""
    import gzip

    from bench.metatrain_eval import evaluate_task

    data = shared_data_dir(tmp_path_factory)
    ev = {"baselines": ["adam"], "lr_grid": [1e-2, 1e-3], "finalists": 1, "tune_seeds": 1,
          "tune_first_seed": 100, "seeds": 1, "first_seed": 0, "eval_every": 2, "smooth_evals": 1}
    entry = {"task": "synthetic-a", "steps": 4}
    w1 = save_weights(tmp_path / "one.npz", load_weights())
    w2 = save_weights(tmp_path / "two.npz", load_weights())
    first = tmp_path / "first"
    evaluate_task(w1, entry, ev, data, first, False, lambda m: None)
    tune = (first / "synthetic-a-cnn-a" / "tune" / "report.json").read_text()
    committed = tmp_path / "committed" / "synthetic-a-cnn-a"
    committed.mkdir(parents=True)
    with gzip.open(committed / "tune-report.json.gz", "wt") as f:
        f.write(tune)

    logs = []
    evaluate_task(w2, entry, ev, data, tmp_path / "second", False, logs.append,
                  tune_from=tmp_path / "committed")
    assert (tmp_path / "second" / "synthetic-a-cnn-a" / "tune" / "report.json").read_text() == tune
    assert any("tune stage from" in m for m in logs)
    assert any(m.startswith("reusing") and "tune" in m for m in logs)

    with pytest.raises(BenchConfigError, match="tune_lr differs"):
        evaluate_task(w2, entry, dict(ev, lr_grid=[1e-2]), data, tmp_path / "third", False,
                      lambda m: None, tune_from=tmp_path / "committed")

    logs = []  # the first folder's final stage ran one.npz: two.npz runs it again
    evaluate_task(w2, entry, ev, data, first, False, logs.append)
    assert any("halo_weights differs" in m and "running the stage again" in m for m in logs)
    final = json.loads((first / "synthetic-a-cnn-a" / "final" / "report.json").read_text())
    assert final["halo_weights"]["path"] == str(w2)
