"""crane-like commands: digest, copy, tags, untag."""

from __future__ import annotations

import sys
from typing import Any

import click

from boda.cli.render import emit, note, printable
from boda.cli.root import json_option

insecure_option = click.option(
    "--insecure", is_flag=True, help="Allow plain HTTP to a non-loopback registry."
)


@click.command()
@click.argument("ref")
@insecure_option
@json_option
def digest(ref: str, insecure: bool, as_json: bool) -> None:
    """Print the digest REF resolves to."""
    from boda.services.crane import digest as run

    emit(run(ref, insecure=insecure).to_json(), as_json, lambda d: d["digest"])


def _copy_text(d: dict[str, Any]) -> str:
    where = f"{d['destination']}@{d['digest']}"
    if d["skipped"]:
        return f"{where} (already there)"
    return (
        f"{where} ({d['blobs_mounted']} mounted, {d['blobs_uploaded']} uploaded, "
        f"{d['bytes_uploaded']} bytes, {d['requests']} requests)"
    )


@click.command()
@click.argument("src")
@click.argument("dst")
@click.option("--referrers", is_flag=True, help="Also copy signatures, SBOMs and attestations.")
@click.option(
    "-j", "--jobs", default=4, show_default=True, type=click.IntRange(1, 64), help="Blobs copied at once."
)
@insecure_option
@json_option
def copy(src: str, dst: str, referrers: bool, jobs: int, insecure: bool, as_json: bool) -> None:
    """Copy an image or index from SRC to DST by digest (mounting blobs where it can)."""
    from boda.services.crane import copy as run

    progress = None
    if sys.stderr.isatty():

        def progress(how: str, desc: object) -> None:
            note(f"  {how} {getattr(desc, 'digest', '')}")

    report = run(src, dst, referrers=referrers, concurrency=jobs, insecure=insecure, progress=progress)
    emit(report.to_json(), as_json, _copy_text)


@click.command()
@click.argument("repo")
@insecure_option
@json_option
def tags(repo: str, insecure: bool, as_json: bool) -> None:
    """List the tags of REPO, sorted."""
    from boda.services.crane import tags as run

    emit(run(repo, insecure=insecure).to_json(), as_json, lambda d: "\n".join(map(printable, d["tags"])))


def _untag_text(d: dict[str, Any]) -> str:
    deleted = ", and the image with it" if d["image_deleted"] else ""
    return f"untagged {d['reference']} ({d['digest']}){deleted}"


@click.command()
@click.argument("ref")
@click.option(
    "--delete-image",
    is_flag=True,
    help="Where removing an image's last tag deletes the image (ECR), do it anyway.",
)
@insecure_option
@json_option
def untag(ref: str, delete_image: bool, insecure: bool, as_json: bool) -> None:
    """Remove the tag REF names; the image and its other tags stay.

    On ECR, removing an image's last tag deletes the image: that is refused (exit 3) unless
    --delete-image is given.
    """
    from boda.services.crane import untag as run

    emit(run(ref, insecure=insecure, delete_image=delete_image).to_json(), as_json, _untag_text)


COMMANDS = [digest, copy, tags, untag]
