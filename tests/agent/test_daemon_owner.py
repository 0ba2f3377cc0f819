"""One daemon per data directory: a second ``serve`` on it refuses to start and changes nothing."""

from __future__ import annotations

import os
import subprocess

import pytest
from daemon_helpers import REPO, ServerProcess, free_port, wait_for
from test_daemon_live import ended, job, status_of

from agent.errors import ConfigError
from agent.server.lock import LOCK_NAME, DataDirLock
from bench.api_latency import serve_command


def test_lock_names_the_owner_and_is_freed_on_release(tmp_path):
    first = DataDirLock(tmp_path).acquire()
    try:
        assert (tmp_path / LOCK_NAME).read_text().strip() == str(os.getpid())
        with pytest.raises(ConfigError) as e:
            DataDirLock(tmp_path).acquire()
        assert e.value.field == "--data-dir" and f"pid {os.getpid()}" in str(e.value)
    finally:
        first.release()
    with DataDirLock(tmp_path):  # free again
        pass


def test_second_daemon_refuses_and_the_first_finishes_its_jobs(server_data):
    first = ServerProcess(server_data).start()
    try:
        with first.client() as c:
            running = c.post("/v1/adaptations", json=job(400)).json()["id"]
            queued = c.post("/v1/adaptations", json=job(30)).json()["id"]
            wait_for(lambda: status_of(c, running)["status"] == "running", timeout_s=60)
            cmd = serve_command(server_data, free_port())
            env = dict(os.environ, PYTHONPATH=str(REPO))
            second = subprocess.run(cmd, cwd=str(REPO), env=env, capture_output=True,
                                    text=True, timeout=60)
            assert second.returncode == 2, second.stderr
            lines = second.stderr.strip().splitlines()
            assert len(lines) == 1, second.stderr
            assert lines[0].startswith("halo-agent serve: error: --data-dir:")
            assert f"pid {first.proc.pid}" in lines[0]
            assert status_of(c, running)["status"] == "running"
            # the second process opened nothing: the first's jobs run on and finish
            for job_id in (running, queued):
                body = wait_for(lambda j=job_id: ended(c, j), timeout_s=120)
                assert body["status"] == "succeeded", body
                assert c.get(f"/v1/adaptations/{job_id}/model").status_code == 200
    finally:
        first.stop()
    # the lock went with the first daemon: the directory serves again
    again = ServerProcess(server_data).start()
    assert again.stop() is not None
