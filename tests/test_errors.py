"""One base exception serves every package; the CLI turns any of them into one line."""

from __future__ import annotations

import pytest

from kernels.errors import ConfigError, HaloError


def _bases():
    from agent.errors import AgentError
    from models.data.errors import DataError
    from models.metatrain.distribution import SpecError as TaskSpecError
    from models.nets import ModelError
    from power.errors import PowerError

    return [AgentError, DataError, TaskSpecError, ModelError, PowerError, ConfigError]


def test_every_package_error_derives_from_the_one_base():
    for cls in _bases():
        assert issubclass(cls, HaloError), cls


def test_agent_config_error_is_the_ground_floor_one():
    from agent.errors import ConfigError as AgentConfigError

    assert AgentConfigError is ConfigError
    e = ConfigError("steps", -1, "an integer >= 1")
    assert str(e) == "steps: got -1; expected an integer >= 1" and isinstance(e, ValueError)


@pytest.mark.parametrize("argv,needle", [
    (["adapt", "--task", "no-such-task"], "no-such-task"),               # DataError
    (["meta-train", "--config", "/nonexistent/cfg.json"], "config"),      # ConfigError
])
def test_cli_prints_one_line_for_each_package_error(argv, needle, capsys, tmp_path):
    from agent.cli import main

    assert main(argv + ["--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("halo-agent") and needle in err[0]


def test_the_cli_handler_knows_every_package_error_and_no_bug():
    from agent.cli import _is_user_error
    from power.errors import SourceUnavailable

    assert _is_user_error(SourceUnavailable("um25c", "no such port"))
    assert all(_is_user_error(cls.__new__(cls)) for cls in _bases())
    assert not _is_user_error(RuntimeError("a bug"))
    assert not _is_user_error(KeyError("a bug"))
