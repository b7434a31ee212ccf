"""Where a build's image comes from: digests are computed from the bytes, never taken on a HEAD's
word, and an image named in another app's repository is copied into the app's own, saying so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from boda.services.imagegen import make_image
from conftest import make_project, sha
from fixtures.faultproxy import FaultProxy


def test_an_image_of_another_app_is_copied_and_the_build_says_so(
    tmp_path: Path, sqlite_url: str, boda: Any
) -> None:
    p = make_project(tmp_path / "p", f"oci-layout:{tmp_path / 'registry'}", sqlite_url, "tags", boda)
    api, web = p.app("api"), p.app("web")
    digest = p.push(api, make_image(f"{p.prefix}/api/10"), "ci-10")
    assert p.boda("build", api, "--commit", sha("api"), "--image", ":ci-10").code == 0
    api_tags = p.tags(api)
    source = f"oci-layout:{(tmp_path / 'registry').resolve()}:{api}:ci-10"
    run = p.boda("build", web, "--commit", sha("web"), "--image", source, "--json")
    assert run.code == 0, run.err
    assert run.json["digest"] == digest and run.json["copied_from"] == f"{source.rsplit(':', 1)[0]}@{digest}"
    assert p.tags(api) == api_tags  # nothing written into the other app's repository
    assert p.tags(web)[sha("web")[:8]] == digest
    text = p.boda("build", web, "--commit", sha("web"), "--image", source).out
    assert "copied from" in text


@pytest.mark.registry
def test_a_lying_head_cannot_make_boda_record_the_wrong_digest(
    tmp_path: Path, fault_proxy: FaultProxy, sqlite_url: str, boda: Any
) -> None:
    p = make_project(tmp_path / "p", fault_proxy.url, sqlite_url, "tags", boda)
    app = p.app("web")
    digest = p.push(app, make_image(f"{p.prefix}/web/1"), "ci-1")
    fake = p.push(app, make_image(f"{p.prefix}/web/other"), "other")  # a real image: a consistent lie
    lie = {"Docker-Content-Digest": fake}
    fault_proxy.add(
        "rewrite", "HEAD", r"/manifests/ci-1$", times=None, rewrite=lambda s, h, b: (s, {**h, **lie}, b)
    )
    run = p.boda("build", app, "--commit", sha("lie"), "--image", ":ci-1", "--json")
    assert run.code == 0, run.err
    assert run.json["digest"] == digest != fake
    assert p.tags(app)[sha("lie")[:8]] == digest
