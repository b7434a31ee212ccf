"""The dashboard in a real browser: the front page is a matrix of every app × environment with its
state, and a drift is visible without a click."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from boda.config import load_config
from boda.web.app import create_app
from fixtures.browser import serve
from fixtures.config import boda_toml
from fixtures.project import make_project

pytestmark = pytest.mark.browser


def test_the_front_page_shows_what_runs_where(
    tmp_path: Path, sqlite_url: str, boda: Any, chromium: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    root = tmp_path / "p"
    environments = (
        '\n[[environments]]\nname = "dev"\nruntimes = ["file:dev-runs.txt"]\n'
        '\n[[environments]]\nname = "stg"\nafter = "dev"\nrequires = ["tests"]\n'
        '\n[[environments]]\nname = "prd"\nafter = "stg"\nruntimes = ["file:prd-runs.txt"]\n'
    )
    registry = f"oci-layout:{tmp_path / 'registry'}"
    p = make_project(root, registry, sqlite_url, "tags", boda)
    p.config.write_text(boda_toml(registry=registry, ledger=sqlite_url, environments=(), extra=environments))
    web, api = p.app("web"), p.app("api")
    layout = f"oci-layout:{(tmp_path / 'registry').resolve()}"
    (c0, d0), (c1, d1) = p.build(web, 0), p.build(web, 1)
    (a0, e0) = p.build(api, 0)
    for app, commit in ((web, c0), (web, c1), (api, a0)):
        assert p.boda("promote", app, "--to", "dev", "--commit", commit).code == 0
    for kind in ("tests",):
        p.boda("evidence", web, "--env", "dev", "--commit", c1, "--kind", kind, "--result", "pass")
    assert p.boda("promote", web, "--to", "stg", "--commit", c1).code == 0
    (root / "dev-runs.txt").write_text(f"{layout}:{web}@{d1}\n{layout}:{api}@{e0}\n")  # as promoted
    (root / "prd-runs.txt").write_text(f"{layout}:{web}@{d0}\n")  # never promoted to prd: drift

    url, server = serve(create_app(load_config(p.config), answer_age=0))
    try:
        chromium.get(url + "/")
        WebDriverWait(chromium, 20).until(
            expected_conditions.presence_of_element_located((By.ID, "matrix-table"))
        )
        cells = {
            (c.get_attribute("data-app"), c.get_attribute("data-env")): c
            for c in chromium.find_elements(By.CSS_SELECTOR, "#matrix-table td.cell[data-app]")
        }
        states = {key: cell.get_attribute("data-state") for key, cell in cells.items()}
        assert states == {
            (web, "dev"): "deployed",
            (web, "stg"): "promoted",
            (web, "prd"): "drift",
            (api, "dev"): "deployed",
            (api, "stg"): "none",
            (api, "prd"): "none",
        }
        drift = cells[(web, "prd")]
        assert drift.is_displayed() and "drift" in drift.text.lower()
        assert "drift-cell" in (drift.get_attribute("class") or "")
        assert d0.split(":")[1][:12] in drift.text  # the digest that runs, without a click
        header = [th.text for th in chromium.find_elements(By.CSS_SELECTOR, "#matrix-table thead th")]
        assert header == ["app", "dev", "stg", "prd"]
        chromium.save_screenshot(str(tmp_path / "matrix.png"))
    finally:
        server.should_exit = True
