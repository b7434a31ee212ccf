"""keys generate, keys public, attest verify."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from boda.cli.render import emit, printable, short, table, when
from boda.cli.root import json_option
from boda.errors import EXIT_REFUSED


@click.group()
def keys() -> None:
    """Signing keys for evidence and promotion statements."""


@keys.command("generate")
@click.argument("name", default="boda-signing")
@click.option(
    "--type",
    "key_type",
    type=click.Choice(["ed25519", "ecdsa-p256"]),
    default="ed25519",
    show_default=True,
    help="The kind of key.",
)
@json_option
def keys_generate(name: str, key_type: str, as_json: bool) -> None:
    """Write a new key pair: NAME.key.pem (private, mode 0600) and NAME.pub.pem (public)."""
    from boda.services.keys import generate_key_files

    result = generate_key_files(Path(name), key_type)
    emit(
        result.to_json(),
        as_json,
        lambda d: f"wrote {d['private']} (keep it secret) and {d['public']}\nkey id {d['keyid']}",
    )


@keys.command("public")
@click.argument("key")
@json_option
def keys_public(key: str, as_json: bool) -> None:
    """Print the public key of KEY (a PEM private key file or kms:KEY-ID-OR-ARN) for verifiers."""
    from boda.services.keys import public_key

    result = public_key(key)
    emit(result.to_json(), as_json, lambda d: str(d["pem"]).rstrip("\n"))


@click.group()
def attest() -> None:
    """Signed statements attached to images."""


def key_name(keyid: str | None) -> str:
    """A key id for people: a KMS key ARN as it is, a local key's hex id shortened."""
    if not keyid:
        return "-"
    return keyid if keyid.startswith("arn:") else keyid[:16]


def _verify_text(data: dict[str, Any]) -> str:
    verdict = "verified" if data["ok"] else "NOT verified"
    rows = []
    for link in data["links"]:
        what = (
            f"{link['kind']} from {link['env']}"
            if link["link"] == "evidence"
            else f"promotion into {link['env']}"
        )
        detail = link["reason"]
        if link["status"] == "ok":
            signer = key_name(link["signer"])
            detail = f"{short(link['statement'])} by {link['by']} at {when(link['at'])} (key {signer})"
        rows.append([link["status"].upper() if link["status"] != "ok" else "ok", what, detail])
    header = f"{printable(data['reference'])} for {data['env']}: {verdict}\n"
    return header + table(["STATUS", "LINK", "DETAIL"], rows)


@attest.command("verify")
@click.argument("image")
@click.option("--env", required=True, help="The environment the image is about to run in.")
@click.option("--key", "keys_", multiple=True, metavar="PUB.pem", help="A public key to trust (repeatable).")
@click.option(
    "--kms", multiple=True, metavar="KEY", help="A KMS key (id, alias or ARN) to trust (repeatable)."
)
@click.option("--app", help="Only statements about this app (default: any app built into this digest).")
@json_option
def attest_verify(
    image: str, env: str, keys_: tuple[str, ...], kms: tuple[str, ...], app: str | None, as_json: bool
) -> None:
    """Check, with only the registry and a key, that IMAGE has valid signed evidence for every kind
    required on the way to ENV and a signed promotion into ENV; exit 3 naming what is missing."""
    from boda.cli.root import load_root_config
    from boda.services.attest import verify_image

    result = verify_image(load_root_config(), image, env=env, keys=keys_, kms=kms, app=app)
    emit(result.to_json(), as_json, _verify_text)
    if not result.ok:
        failures = result.failures
        click.echo(
            printable(f"boda: error: {result.reference} is not cleared for {env}: " + "; ".join(failures)),
            err=True,
        )
        raise SystemExit(EXIT_REFUSED)


COMMANDS = [keys, attest]
