"""The Lambda observer through real boto3 clients against moto in server mode: functions of package
type Image (and one Zip function), published versions, aliases with routing weights. Stubber only
for MOTO-LAMBDA-CODE (GetFunction: a version's own image and its real ResolvedImageUri) and
MOTO-LAMBDA-PC (ListProvisionedConcurrencyConfigs)."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest
from rt_aws import GapClient, real_client

from boda.errors import EXIT_UNAVAILABLE
from boda.locations import RuntimeLocation
from boda.runtime.aws_lambda import LambdaObserver
from boda.runtime.base import RunningImage, RuntimeUnavailable
from boda.types import Digest
from fixtures.moto import ACCOUNT, REGION

pytestmark = pytest.mark.ecr

REG = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
FN = f"{REG}/shop/fn"
D = {n: str(Digest.of(f"fn image {n}".encode())) for n in range(10)}
GAPS = ("get_function", "list_provisioned_concurrency_configs")


def rows(images: tuple[RunningImage, ...]) -> set[tuple[Any, ...]]:
    return {(i.place, i.image, str(i.digest) if i.digest else None, i.detail) for i in images}


class Account:
    """Lambda on moto: an IAM role, functions, versions, aliases."""

    def __init__(self) -> None:
        self.lam = real_client("lambda")
        iam = real_client("iam")
        self.role = iam.create_role(RoleName="fn-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]

    def image_function(self, name: str, uri: str) -> None:
        self.lam.create_function(
            FunctionName=name, Role=self.role, Code={"ImageUri": uri}, PackageType="Image"
        )

    def publish(self, name: str, uri: str) -> str:
        self.lam.update_function_code(FunctionName=name, ImageUri=uri)
        return str(self.lam.publish_version(FunctionName=name)["Version"])

    def zip_function(self, name: str) -> None:
        data = io.BytesIO()
        with zipfile.ZipFile(data, "w") as archive:
            archive.writestr("handler.py", "def handler(event, context):\n    return 1\n")
        self.lam.create_function(
            FunctionName=name,
            Role=self.role,
            Runtime="python3.12",
            Handler="handler.handler",
            Code={"ZipFile": data.getvalue()},
        )


@pytest.fixture
def account(ecr_env: str) -> Account:
    return Account()


def code(name: str, version: str, uri: str, digest: str | None) -> dict[str, Any]:
    """A GetFunction answer as Lambda gives it for an Image function's version."""
    resolved = (
        {"ResolvedImageUri": f"{uri.split(':')[0] if '@' not in uri else uri.split('@')[0]}@{digest}"}
        if digest
        else {}
    )
    return {
        "Configuration": {"FunctionName": name, "Version": version, "PackageType": "Image"},
        "Code": {"RepositoryType": "ECR", "ImageUri": uri, **resolved},
    }


def fn_uri(tag: str) -> str:
    return f"{FN}:{tag}"


def setup_fn(account: Account) -> None:
    """fn: $LATEST at v3; version 1 (v1), 2 (v2), 3 (v3); alias live -> 1 with 10% on 2;
    alias canary -> 3."""
    account.image_function("fn", fn_uri("v1"))
    account.publish("fn", fn_uri("v1"))
    account.publish("fn", fn_uri("v2"))
    account.publish("fn", fn_uri("v3"))
    account.lam.create_alias(
        FunctionName="fn",
        Name="live",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}},
    )
    account.lam.create_alias(FunctionName="fn", Name="canary", FunctionVersion="3")


def queue_fn(
    client: GapClient, *, latest_from_list: bool = True, pc: list[dict[str, Any]] | None = None
) -> None:
    """The stubbed calls for `fn`, in the order the observer makes them (one worker)."""
    client.add(
        "list_provisioned_concurrency_configs",
        {"ProvisionedConcurrencyConfigs": pc or []},
        {"FunctionName": "fn", "MaxItems": 50},
    )
    if latest_from_list:
        client.add(
            "get_function",
            code("fn", "$LATEST", fn_uri("v3"), D[3]),
            {"FunctionName": "fn", "Qualifier": "$LATEST"},
        )
    for version, digest in (("1", D[1]), ("2", D[2]), ("3", D[3])):
        client.add(
            "get_function",
            code("fn", version, fn_uri(f"v{version}"), digest),
            {"FunctionName": "fn", "Qualifier": version},
        )


def observer(runtime: str, client: Any) -> LambdaObserver:
    return LambdaObserver(RuntimeLocation.parse(runtime), client=client, workers=1)


def test_latest_aliases_and_weights(account: Account) -> None:
    setup_fn(account)
    account.image_function("other", fn_uri("other"))
    account.zip_function("zipped")
    client = GapClient(real_client("lambda"), GAPS)
    queue_fn(client)
    seen = observer(f"lambda:{REGION}/f*", client).observe()
    client.done()
    p = f"lambda:{REGION}/fn"
    assert rows(seen.images) == {
        (f"{p}:$LATEST", fn_uri("v3"), D[3], "$LATEST"),
        (f"{p}:live", fn_uri("v1"), D[1], "alias live -> version 1, weight 0.9"),
        (f"{p}:live", fn_uri("v2"), D[2], "alias live -> version 2, weight 0.1"),
        (f"{p}:canary", fn_uri("v3"), D[3], "alias canary -> version 3"),
    }
    # `other` does not match the glob and `zipped` runs no image: neither was read further.
    assert all(i.place.startswith(f"{p}:") for i in seen.images)
    ops = [op for op, _ in client.calls]
    assert ops.count("ListFunctions") == 1 and ops.count("ListAliases") == 1
    assert all(i.role == "running" and i.source == "function" for i in seen.images)


def test_every_function_and_provisioned_concurrency(account: Account) -> None:
    setup_fn(account)
    account.zip_function("zipped")
    client = GapClient(real_client("lambda"), GAPS)
    pc = [
        {
            "FunctionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:fn:live",
            "RequestedProvisionedConcurrentExecutions": 5,
        },
        {
            "FunctionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:fn:2",
            "RequestedProvisionedConcurrentExecutions": 2,
        },
    ]
    queue_fn(client, pc=pc)
    seen = observer(f"lambda:{REGION}/*", client).observe()
    client.done()
    details = {i.detail for i in seen.images}
    assert "provisioned concurrency 5 on live -> version 1" in details
    assert "provisioned concurrency 2 on 2 -> version 2" in details
    assert not any("zipped" in i.place for i in seen.images)  # a Zip function runs no image


def test_one_named_function_starts_with_its_latest(account: Account) -> None:
    """A named function: one GetFunction gives its configuration and $LATEST's image at once."""
    setup_fn(account)
    client = GapClient(real_client("lambda"), GAPS)
    client.add("get_function", code("fn", "$LATEST", fn_uri("v3"), D[3]), {"FunctionName": "fn"})
    queue_fn(client, latest_from_list=False)
    seen = observer(f"lambda:{REGION}/fn", client).observe()
    client.done()
    assert len(client.ops("GetFunction")) == 4 and "ListFunctions" not in [op for op, _ in client.calls]
    assert {i.place for i in seen.images} == {
        f"lambda:{REGION}/fn:{q}" for q in ("$LATEST", "live", "canary")
    }


def test_a_function_that_is_gone_fails(account: Account) -> None:
    client = GapClient(real_client("lambda"), GAPS)
    client.add_error("get_function", "ResourceNotFoundException", "Function not found: fn", status=404)
    with pytest.raises(RuntimeUnavailable, match="Lambda GetFunction: ResourceNotFoundException") as caught:
        observer(f"lambda:{REGION}/fn", client).observe()
    assert caught.value.exit_code == EXIT_UNAVAILABLE


@pytest.mark.parametrize("where", ["provisioned", "version"])
def test_a_failing_call_fails_the_whole_read(account: Account, where: str) -> None:
    setup_fn(account)
    client = GapClient(real_client("lambda"), GAPS)
    if where == "provisioned":
        client.add_error(
            "list_provisioned_concurrency_configs", "AccessDeniedException", "not authorized", 403
        )
    else:
        client.add("list_provisioned_concurrency_configs", {"ProvisionedConcurrencyConfigs": []})
        client.add("get_function", code("fn", "$LATEST", fn_uri("v3"), D[3]))
        client.add_error("get_function", "TooManyRequestsException", "Rate exceeded", 429)
    with pytest.raises(RuntimeUnavailable) as caught:
        observer(f"lambda:{REGION}/*", client).observe()
    if where == "provisioned":
        assert "lambda:ListProvisionedConcurrencyConfigs" in (
            caught.value.hint or ""
        ) or "ListProvisioned" in (caught.value.hint or "")
    else:
        assert "throttled" in (caught.value.hint or "")


@pytest.mark.parametrize("page", [0, 1, 2], ids=["first", "middle", "last"])
def test_a_failing_page_of_functions_fails_the_read(account: Account, page: int) -> None:
    """Gap: moto answers ListFunctions in one page, so its pages are stubbed here (MOTO-LAMBDA-PAGES)."""
    client = GapClient(real_client("lambda"), (*GAPS, "list_functions", "list_aliases"))
    for n in range(page):
        client.add(
            "list_functions",
            {"Functions": [{"FunctionName": f"z{n}", "PackageType": "Zip"}], "NextMarker": f"m{n + 2}"},
        )
    client.add_error("list_functions", "ServiceException", "internal", 500)
    with pytest.raises(RuntimeUnavailable, match="ListFunctions: ServiceException"):
        observer(f"lambda:{REGION}/*", client).observe()
    client.done()
    assert [p.get("Marker") for p in client.ops("ListFunctions")] == [None, "m2", "m3"][: page + 1]
