"""Names shared by the rendered stack and the deploy commands, so the two always agree.

``playerpulse infra render`` gives every function and role a fixed name from here, and
``playerpulse models deploy`` finds the function, and by default its role, by the same names.
"""

from __future__ import annotations

PREFIX = "playerpulse"
COLLECTOR = f"{PREFIX}-collector"
LIVE_ALIAS = "live"
ARTIFACTS_MODELS_PREFIX = "models"
"""A model's artifacts live under ``s3://ARTIFACTS/models/NAME/``; only its own function reads them."""


def model_function_name(model: str) -> str:
    return f"{PREFIX}-model-{model}"


def model_role_name(model: str) -> str:
    return f"{PREFIX}-model-{model}"


def model_role_arn(account_id: str, model: str, partition: str = "aws") -> str:
    return f"arn:{partition}:iam::{account_id}:role/{model_role_name(model)}"


def logical_id(*words: str) -> str:
    """A CloudFormation logical id (letters and digits only): ``store_offer`` → ``StoreOffer``."""
    return "".join(part[:1].upper() + part[1:] for w in words for part in w.replace("-", "_").split("_"))


def log_group(function_name: str) -> str:
    return f"/aws/lambda/{function_name}"
