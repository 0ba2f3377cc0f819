"""``bench publish``: every published benchmark from one command, a row per report."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.publish import BEGIN, END, replace_readme_table, run_publish, steps

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def test_readme_table_is_replaced_between_the_markers_only(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nbefore\n{BEGIN}\n| old |\n{END}\nafter\n")
    replace_readme_table(readme, ["| what |", "| new |"])
    assert readme.read_text() == f"# x\n\nbefore\n{BEGIN}\n| what |\n| new |\n{END}\nafter\n"
    readme.write_text("no markers\n")
    with pytest.raises(ValueError, match="markers"):
        replace_readme_table(readme, ["| x |"])


def test_the_committed_readme_has_the_markers():
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1 and text.index(BEGIN) < text.index(END)


def test_every_step_is_a_documented_command():
    names = [s.name for s in steps("DATA")]
    assert names == ["adapt-mnist-a", "adapt-tdp-female", "compare-mnist-a", "paper", "kernels"]
    for s in steps("DATA"):
        assert s.full[0] in ("adapt", "bench") and s.quick[0] == s.full[0]
    assert all("--data-dir" not in s.full for s in steps(None))


@pytest.mark.slow
def test_quick_publish_writes_every_report_and_its_row(tmp_path, monkeypatch):
    monkeypatch.setenv("HALO_CACHE_DIR", str(tmp_path / "cache"))
    readme = tmp_path / "README.md"
    readme.write_text(f"{BEGIN}\n| kept |\n{END}\n")
    out = tmp_path / "results"
    res = run_publish(out, str(SHARED_DATA), quick=True, readme=readme, log=lambda m: None)
    assert [r["name"] for r in res["rows"]] == [s.name for s in steps()]
    text = (out / "published.md").read_text()
    assert "Quick check run" in text
    for row in res["rows"]:
        assert (out / row["report"]).is_file(), row["report"]
        assert row["command"].startswith("halo-agent ") and row["result"]
        assert f"]({row['report']})" in text
    # the comparison names the HALO weights and its best baseline, dense or sparse
    cmp_row = next(r for r in res["rows"] if r["name"] == "compare-mnist-a")
    assert re.search(r"halo-v\d+ untuned", cmp_row["result"]) and "best tuned baseline" in cmp_row["result"]
    assert readme.read_text() == f"{BEGIN}\n| kept |\n{END}\n"  # quick never touches the README


def test_only_reruns_its_steps_and_keeps_the_other_rows(tmp_path, monkeypatch):
    """``--only`` reruns the steps it names; every other row is kept as published
    (published.json) or, when none is stored, rebuilt from the report already in OUT, so
    the README's table keeps all its rows (it lost them before) and their commands."""
    import json

    import bench.publish as pub

    fake = [pub.Step("one", "first", ["bench", "one"], ["bench", "one"], lambda r: f"v={r['v']}"),
            pub.Step("two", "second", ["bench", "two"], ["bench", "two"], lambda r: f"v={r['v']}"),
            pub.Step("three", "third", ["bench", "three"], ["bench", "three"],
                     lambda r: f"v={r['v']}")]
    monkeypatch.setattr(pub, "steps", lambda data_dir=None: fake)
    ran = []

    def run(argv, log, env):
        ran.append(argv[1])
        folder = Path(argv[argv.index("--out") + 1])
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "report.json").write_text(json.dumps({"v": "new"}))
        return ""

    monkeypatch.setattr(pub, "_run", run)
    out = tmp_path / "results"
    (out / "one").mkdir(parents=True)
    (out / "one" / "report.json").write_text(json.dumps({"v": "old"}))  # "three": never made
    readme = tmp_path / "README.md"
    readme.write_text(f"{BEGIN}\n| x |\n{END}\n")
    res = pub.run_publish(out, None, readme=readme, only=["two"], log=lambda m: None)
    assert ran == ["two"]
    assert [(r["name"], r["result"]) for r in res["rows"]] == [("one", "v=old"), ("two", "v=new")]
    text = readme.read_text()
    assert "v=old" in text and "v=new" in text
    md = (out / "published.md").read_text()
    assert "- one: an earlier run (its report was already in OUT)" in md
    assert "- two: " in md and "`halo-agent bench publish --only two` in" in md
    stored = json.loads((out / "published.json").read_text())["rows"]
    assert [r["name"] for r in stored] == ["one", "two"]
    # a later --only run keeps a stored row as published: its command (as it was run, say
    # with another --data-dir) and when it was made, with the result from its report
    stored[1]["command"] = "halo-agent bench two --data-dir /elsewhere --out x"
    stored[1]["made"] = "the day before"
    (out / "published.json").write_text(json.dumps({"rows": stored}))
    res = pub.run_publish(out, None, readme=readme, only=["one"], log=lambda m: None)
    assert ran == ["two", "one"]
    two = res["rows"][1]
    assert (two["command"], two["made"], two["result"]) == (
        "halo-agent bench two --data-dir /elsewhere --out x", "the day before", "v=new")
    assert "- two: the day before" in (out / "published.md").read_text()
    assert "--data-dir /elsewhere" in readme.read_text()
