"""The dashboard in a real headless browser (Debian's chromium and chromedriver driven
by selenium): the page asks for the token, a job started from its form runs, the live
plot gains points, and a screenshot is kept as a test artifact.

Skipped with the reason on a machine without chromium; under ``CI=true`` a missing
browser fails instead (``.ci/run`` installs it)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from daemon_helpers import REPO, ServerProcess

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = REPO / "tests" / "artifacts"
TOKEN = "browser-token-" + "q" * 24
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,1100")


def _driver(profile: Path):
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        reason = f"{', '.join(missing)} not installed (apt-get install chromium chromium-driver)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={profile}")
    # the driver's path is given, so Selenium Manager never looks for (or downloads) one
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)


def _wait(pred, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout_s} s")


def test_dashboard_starts_a_job_and_plots_it_live(server_data, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    token_file.chmod(0o600)
    profile = Path(tempfile.mkdtemp(prefix="chromium-profile-"))
    srv = ServerProcess(server_data, "--token-file", str(token_file), token=TOKEN)
    driver = None
    try:
        driver = _driver(profile)
        srv.start()
        driver.get(srv.url + "/")
        login = driver.find_element(By.ID, "login")
        _wait(login.is_displayed, 20, "the token form")
        driver.find_element(By.ID, "token").send_keys(TOKEN)
        driver.find_element(By.ID, "login-button").click()
        task = driver.find_element(By.ID, "task")
        _wait(lambda: "synthetic-a" in [o.get_attribute("value")
                                        for o in Select(task).options], 20, "the task list")
        Select(task).select_by_value("synthetic-a")
        Select(driver.find_element(By.ID, "optimizer")).select_by_value("adam")
        for field, value in (("steps", "400"), ("eval-every", "10")):
            box = driver.find_element(By.ID, field)
            box.clear()
            box.send_keys(value)
        driver.find_element(By.ID, "start-button").click()

        canvas = driver.find_element(By.ID, "plot")
        points = lambda: int(canvas.get_attribute("data-points") or 0)  # noqa: E731
        first = _wait(lambda: points() >= 3 and points(), 90, "three points on the plot")
        _wait(lambda: points() > first, 60, "the plot gaining points as the job runs")
        _wait(lambda: "succeeded" in driver.find_element(By.ID, "jobs").text, 120,
              "the job succeeding in the job list")
        assert points() == 41  # steps 0, 10, ..., 400
        power = driver.find_element(By.ID, "power-panel").text
        assert "source estimate" in power and "estimated" in power and "W" in power
        assert driver.find_elements(By.CSS_SELECTOR, "#jobs button.download")
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "dashboard.png"
        assert driver.save_screenshot(str(shot))
        print(f"screenshot: {shot}")
    finally:
        if driver is not None:
            driver.quit()
        srv.stop()
        shutil.rmtree(profile, ignore_errors=True)
