"""The cloud stack (``infra/template.yaml``): current, valid, and least privilege.

The template is rendered from ``conf/aws.yaml`` and ``conf/models/``; these tests re-render
it, lint it with ``cfn-lint`` (which also expands the SAM transform), and read every IAM
statement in it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from features.config import repo_root
from serving.deploy.template import RENDER_COMMAND, TEMPLATE_PATH, render_template, render_text

COMMITTED = repo_root() / TEMPLATE_PATH

WILDCARD_RESOURCES: dict[str, str] = {
    r"\$\{ArtifactsBucket\.Arn\}/models/(?P<model>[a-z][a-z0-9_]*)/\*": (
        "the objects under one model's own artifact prefix: their keys are made when artifacts are written"
    ),
    r"\$\{DeadLetterBucket\.Arn\}/dead_letter/\*": (
        "new dead-letter objects under the collector's prefix: each key is made when the batch is rejected"
    ),
    r"arn:\$\{AWS::Partition\}:logs:\$\{AWS::Region\}:\$\{AWS::AccountId\}:log-group:/aws/lambda/"
    r"(?P<function>playerpulse-[a-z0-9_-]+):\*": (
        "the log streams of the function's own log group: Lambda names one stream per container"
    ),
}
"""The only IAM resources allowed to contain ``*``, each with the reason. No action may."""


def conf_copy(tmp_path: Path) -> Path:
    conf = tmp_path / "conf"
    shutil.copytree(repo_root() / "conf", conf, ignore=shutil.ignore_patterns("cost", "prices"))
    return conf


def statements(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(resource id, statement)`` of every permission policy in the template."""
    out = []
    for rid, res in template["Resources"].items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                out += [(rid, s) for s in policy["PolicyDocument"]["Statement"]]
        elif res["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            out += [(rid, s) for s in props["PolicyDocument"]["Statement"]]
        elif res["Type"] == "AWS::Serverless::Function":
            assert "Policies" not in props, f"{rid}: permissions belong in its explicit role, not SAM policies"
            assert "Role" in props, f"{rid}: without an explicit Role SAM would make one with managed policies"
    return out


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def resource_text(resource: Any) -> str:
    if isinstance(resource, str):
        return resource
    if "Fn::Sub" in resource:
        return str(resource["Fn::Sub"])
    return yaml.safe_dump(resource)  # Ref / GetAtt: names a single resource


def test_the_committed_template_is_what_the_configuration_renders() -> None:
    assert COMMITTED.is_file(), f"{TEMPLATE_PATH} is missing: run `{RENDER_COMMAND}`"
    assert COMMITTED.read_text() == render_text(), (
        f"{TEMPLATE_PATH} is out of date with conf/aws.yaml or conf/models/: run `{RENDER_COMMAND}` and commit it"
    )


def test_a_new_model_yaml_gets_its_own_function_role_and_predict_route(tmp_path: Path) -> None:
    conf = conf_copy(tmp_path)
    second = yaml.safe_load((conf / "models" / "store_offer.yaml").read_text()) | {"name": "churn_risk"}
    (conf / "models" / "churn_risk.yaml").write_text(yaml.safe_dump(second))

    resources = render_template(conf / "aws.yaml")["Resources"]

    fn = resources["ModelChurnRiskFunction"]["Properties"]
    assert fn["FunctionName"] == "playerpulse-model-churn_risk"
    assert fn["Handler"] == "serving.model_function.handler"
    assert fn["Environment"]["Variables"]["PLAYERPULSE_MODEL"] == "churn_risk"
    assert fn["Events"]["Predict"]["Properties"] | {"ApiId": None} == {
        "ApiId": None,
        "Path": "/v1/models/churn_risk/predict",
        "Method": "POST",
    }
    assert resources["ModelChurnRiskRole"]["Properties"]["RoleName"] == "playerpulse-model-churn_risk"
    # the profile route goes to the first model by name
    profile_routes = [rid for rid, r in resources.items() if "Profile" in r.get("Properties", {}).get("Events", {})]
    assert profile_routes == ["ModelChurnRiskFunction"]


def test_the_stack_has_the_routes_stream_table_and_buckets_of_the_cloud_profile() -> None:
    t = render_template()
    res = t["Resources"]
    routes = {
        (e["Properties"]["Method"], e["Properties"]["Path"]): r["Properties"]["Handler"]
        for r in res.values()
        if r["Type"] == "AWS::Serverless::Function"
        for e in r["Properties"]["Events"].values()
    }
    assert routes == {
        ("POST", "/v1/events"): "serving.lambda_handler.handler",
        ("POST", "/v1/models/churn_risk/predict"): "serving.model_function.handler",
        ("POST", "/v1/models/store_offer/predict"): "serving.model_function.handler",
        ("GET", "/v1/players/{player_id}/profile"): "serving.model_function.handler",
    }
    table = res["ProfileTable"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert t["Parameters"]["StreamMode"]["AllowedValues"] == ["ON_DEMAND", "PROVISIONED"]
    lifecycle = res["LakeBucket"]["Properties"]["LifecycleConfiguration"]["Rules"][0]
    assert lifecycle["Prefix"] == "lake/bronze/"
    assert [x["StorageClass"] for x in lifecycle["Transitions"]] == ["STANDARD_IA", "GLACIER"]
    for bucket in ("LakeBucket", "ArtifactsBucket", "DeadLetterBucket"):
        props = res[bucket]["Properties"]
        assert set(props["PublicAccessBlockConfiguration"].values()) == {True}
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]


def test_every_variable_the_cloud_config_needs_is_set_on_the_functions() -> None:
    """A function whose environment lacks a ``${VAR}`` of conf/aws.yaml would not start."""
    t = render_template()
    needed = set(re.findall(r"\$\{([A-Z0-9_]+)\}", (repo_root() / "conf" / "aws.yaml").read_text()))
    for rid, r in t["Resources"].items():
        if r["Type"] == "AWS::Serverless::Function":
            assert needed <= set(r["Properties"]["Environment"]["Variables"]), rid


def test_no_iam_action_and_no_resource_outside_the_allow_list_has_a_wildcard() -> None:
    found = statements(render_template())
    assert found, "the template grants nothing: the check below would pass vacuously"
    for rid, st in found:
        assert st["Effect"] == "Allow" and "NotAction" not in st and "NotResource" not in st, rid
        for action in as_list(st["Action"]):
            assert "*" not in action, f"{rid}: wildcard action {action}"
        for resource in as_list(st["Resource"]):
            text = resource_text(resource)
            if "*" in text:
                assert any(re.fullmatch(p, text) for p in WILDCARD_RESOURCES), f"{rid}: wildcard resource {text}"


def test_a_model_function_may_read_only_its_own_artifacts_and_the_profile_table() -> None:
    role = render_template()["Resources"]["ModelStoreOfferRole"]["Properties"]
    grants = {
        (a, resource_text(st["Resource"]).strip())
        for st in role["Policies"][0]["PolicyDocument"]["Statement"]
        for a in as_list(st["Action"])
    }
    logs = (
        "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:"
        "/aws/lambda/playerpulse-model-store_offer:*"
    )
    table = yaml.safe_dump({"Fn::GetAtt": ["ProfileTable", "Arn"]}).strip()
    assert grants == {
        ("dynamodb:GetItem", table),
        ("dynamodb:BatchGetItem", table),
        ("s3:GetObject", "${ArtifactsBucket.Arn}/models/store_offer/*"),
        ("logs:CreateLogStream", logs),
        ("logs:PutLogEvents", logs),
    }


def test_cfn_lint_passes_on_the_committed_template() -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), str(COMMITTED)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("section,backend", [("stream", "sqlite"), ("online_store", "sqlite")])
def test_an_env_file_without_the_cloud_backends_is_refused_naming_the_key(
    tmp_path: Path, section: str, backend: str
) -> None:
    from features.errors import ConfigError

    conf = conf_copy(tmp_path)
    raw = yaml.safe_load((conf / "aws.yaml").read_text())
    raw[section]["backend"] = backend
    (conf / "aws.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=f"{section}.backend is '{backend}'"):
        render_template(conf / "aws.yaml")
