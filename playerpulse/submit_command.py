"""``playerpulse submit JOB --emr-serverless APP_ID``: run a Spark job on EMR Serverless.

EMR Serverless runs a ``spark-submit`` of a file on S3, so this command uploads what that needs
under ``s3://LAKE_BUCKET/playerpulse/emr/COMMIT/`` and calls ``start_job_run``:

- the job file (``pipelines/bronze.py`` …) as the entry point, with ``--env ENV`` and the
  job's own arguments;
- ``conf/`` as ``conf.tar.gz``, unpacked next to the driver and executors as ``./conf``
  (``PLAYERPULSE_CONF_DIR``), because the configuration is data beside the code, not in it;
- the packed virtualenv (``--venv-archive``, default ``s3://LAKE_BUCKET/playerpulse/emr/
  pyspark_venv.tar.gz``, built as the README's "Running on EMR" shows) as
  ``spark.archives …#environment`` with ``PYSPARK_PYTHON=./environment/bin/python``, as the EMR
  Serverless guide describes for Python dependencies;
- ``spark.jars``: the release's own Delta jars (``emr-spark-8.0.0`` ships Delta 4.0.0 for its
  Spark 4.0.2; ``jvm/jars`` holds Delta for pyspark 4.2, which would not load there), or with
  ``--jars DIR`` every jar in DIR, uploaded (for a release whose Spark matches them);
- the environment variables the configuration reads (``${VAR}`` in ``conf/ENV.yaml``), from
  this shell, as driver and executor environment.

The run is tagged with the job and the commit; the command prints the run id and how to
follow it. boto3 loads only when the command runs.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from features.config import Settings, conf_dir, load_settings, repo_root
from features.errors import ConfigError, PlayerPulseError

ENDPOINT_ENV = "PLAYERPULSE_AWS_ENDPOINT"
PREFIX = "playerpulse/emr"
RELEASE_DELTA_JARS = ("/usr/share/aws/delta/lib/delta-spark.jar", "/usr/share/aws/delta/lib/delta-storage.jar")
"""Where emr-spark-8.0.0 (and EMR 7.x) keep the Delta jars of the release on every node."""
DEFAULT_ROLE_NAME = "playerpulse-emr-serverless"
VENV_PYTHON = "./environment/bin/python"

JOB_FILES: dict[str, str] = {
    "bronze": "pipelines/bronze.py",
    "silver": "pipelines/silver.py",
    "gold": "pipelines/gold.py",
    "all": "pipelines/jobs.py",
    "profiles": "pipelines/profiles_stream.py",
    "monitoring": "pipelines/monitoring.py",
    "maintain": "pipelines/maintain.py",
    "train": "training/train.py",
    "validate": "training/validate.py",
}
"""Every job EMR can run, by name, and the file ``spark-submit`` runs for it."""
MODEL_JOBS = frozenset({"train", "validate"})

NOT_FORWARDED = frozenset({ENDPOINT_ENV, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"})
"""Never copied into a job: the submitter's local endpoint and credentials (the job has its role)."""
_PLACEHOLDER = re.compile(r"\$\{([A-Z0-9_]+)(?::-[^}]*)?\}")


@dataclass(frozen=True)
class JobRunRequest:
    """Everything ``start_job_run`` is given, built before anything is uploaded."""

    application_id: str
    role_arn: str
    name: str
    entry_point: str
    arguments: list[str]
    spark_submit_parameters: str
    log_uri: str
    tags: dict[str, str] = field(default_factory=dict)

    def api_arguments(self) -> dict[str, Any]:
        return {
            "applicationId": self.application_id,
            "executionRoleArn": self.role_arn,
            "name": self.name,
            "jobDriver": {
                "sparkSubmit": {
                    "entryPoint": self.entry_point,
                    "entryPointArguments": self.arguments,
                    "sparkSubmitParameters": self.spark_submit_parameters,
                }
            },
            "configurationOverrides": {
                "monitoringConfiguration": {"s3MonitoringConfiguration": {"logUri": self.log_uri}}
            },
            "tags": self.tags,
        }


def lake_bucket(settings: Settings) -> str:
    """The bucket of ``lake.root`` (``s3a://BUCKET/lake`` → ``BUCKET``); EMR reads code from it too."""
    match = re.match(r"^s3a?://([^/]+)", settings.lake.root)
    if not match:
        raise ConfigError(
            f"env '{settings.env}' keeps the lake at {settings.lake.root}, which EMR cannot reach: "
            "submit with an env whose lake.root is on S3 (--env aws)"
        )
    return match.group(1)


def commit_id() -> str:
    """The checked-out commit (short), so every upload and run says which code it is."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=repo_root(), capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unversioned"
    return out.stdout.strip() or "unversioned"


def forwarded_environment(env: str, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The variables ``conf/ENV.yaml`` reads that are set here, to set the same way on EMR."""
    environ = dict(os.environ if environ is None else environ)
    names = set(_PLACEHOLDER.findall((conf_dir() / f"{env}.yaml").read_text()))
    found = {n: environ[n] for n in sorted(names - NOT_FORWARDED) if environ.get(n)}
    spaced = [n for n, v in found.items() if any(c.isspace() for c in v)]
    if spaced:
        raise ConfigError(f"{', '.join(spaced)} contain whitespace, which sparkSubmitParameters cannot carry")
    return found


def spark_submit_parameters(venv_archive: str, conf_archive: str, jars: list[str], environ: dict[str, str]) -> str:
    """The ``--conf`` list for the venv, the configuration, Delta and the job's environment."""
    confs = {
        "spark.archives": f"{venv_archive}#environment,{conf_archive}#conf",
        "spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON": VENV_PYTHON,
        "spark.emr-serverless.driverEnv.PYSPARK_PYTHON": VENV_PYTHON,
        "spark.executorEnv.PYSPARK_PYTHON": VENV_PYTHON,
        "spark.jars": ",".join(jars),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    }
    for name, value in {"PLAYERPULSE_CONF_DIR": "./conf", **environ}.items():
        confs[f"spark.emr-serverless.driverEnv.{name}"] = value
        confs[f"spark.executorEnv.{name}"] = value
    return " ".join(f"--conf {key}={value}" for key, value in confs.items())


def job_arguments(job: str, env: str, model: str | None, extra: list[str]) -> list[str]:
    """The entry point's argv: the model first for training jobs, then ``--env``, then the rest."""
    if job not in JOB_FILES:
        raise PlayerPulseError(f"unknown job '{job}': choose one of {', '.join(JOB_FILES)}")
    if (job in MODEL_JOBS) != (model is not None):
        need = "needs --model NAME" if job in MODEL_JOBS else "takes no --model"
        raise PlayerPulseError(f"job '{job}' {need}")
    return [*([model] if model else []), "--env", env, *extra]


def _conf_archive() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(conf_dir().rglob("*")):
            if path.is_file():
                tar.add(path, arcname=str(path.relative_to(conf_dir())))
    return buffer.getvalue()


def _client(service: str, region: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        service,
        region_name=region,
        endpoint_url=os.environ.get(ENDPOINT_ENV) or None,
        config=Config(retries={"mode": "standard", "max_attempts": 5}),
    )


def _region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def default_role_arn(region: str) -> str:
    ident = _client("sts", region).get_caller_identity()
    partition = str(ident["Arn"]).split(":")[1]
    return f"arn:{partition}:iam::{ident['Account']}:role/{DEFAULT_ROLE_NAME}"


def _split_s3(uri: str) -> tuple[str, str]:
    match = re.match(r"^s3://([^/]+)/(.+)$", uri)
    if not match:
        raise PlayerPulseError(f"--venv-archive must be an s3://bucket/key URI, got '{uri}'")
    return match.group(1), match.group(2)


def _require_venv(s3: Any, uri: str) -> None:
    from botocore.exceptions import ClientError

    bucket, key = _split_s3(uri)
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        raise PlayerPulseError(
            f"no virtualenv archive at {uri} ({exc.response['Error'].get('Code', 'error')}): build it with venv-pack "
            "as README 'Running on EMR' shows and upload it there, or pass --venv-archive"
        ) from None


def submit_job(
    settings: Settings,
    job: str,
    application_id: str,
    *,
    role_arn: str | None = None,
    model: str | None = None,
    extra_args: list[str] | None = None,
    venv_archive: str | None = None,
    jars_dir: Path | None = None,
) -> tuple[str, JobRunRequest]:
    """Upload the job's file, the configuration (and jars), start the run; (run id, request)."""
    arguments = job_arguments(job, settings.env, model, list(extra_args or []))
    bucket = lake_bucket(settings)
    commit = commit_id()
    base = f"{PREFIX}/{commit}"
    region = _region()
    s3 = _client("s3", region)
    venv_archive = venv_archive or f"s3://{bucket}/{PREFIX}/pyspark_venv.tar.gz"
    _require_venv(s3, venv_archive)

    job_file = JOB_FILES[job]
    s3.upload_file(str(repo_root() / job_file), bucket, f"{base}/{job_file}")
    s3.put_object(Bucket=bucket, Key=f"{base}/conf.tar.gz", Body=_conf_archive())
    jars = list(RELEASE_DELTA_JARS)
    if jars_dir is not None:
        found = sorted(jars_dir.glob("*.jar"))
        if not found:
            raise PlayerPulseError(f"--jars {jars_dir} holds no .jar files (run `make jars` to fill jvm/jars)")
        jars = []
        for jar in found:
            s3.upload_file(str(jar), bucket, f"{base}/jars/{jar.name}")
            jars.append(f"s3://{bucket}/{base}/jars/{jar.name}")

    request = JobRunRequest(
        application_id=application_id,
        role_arn=role_arn or default_role_arn(region),
        name=f"playerpulse-{job}{'-' + model if model else ''}-{commit}",
        entry_point=f"s3://{bucket}/{base}/{job_file}",
        arguments=arguments,
        spark_submit_parameters=spark_submit_parameters(
            venv_archive, f"s3://{bucket}/{base}/conf.tar.gz", jars, forwarded_environment(settings.env)
        ),
        log_uri=f"s3://{bucket}/{PREFIX}/logs/",
        tags={"playerpulse.job": job, "playerpulse.commit": commit, "playerpulse.env": settings.env},
    )
    from botocore.exceptions import ClientError

    try:
        answer = _client("emr-serverless", region).start_job_run(**request.api_arguments())
    except ClientError as exc:
        error = exc.response["Error"]
        raise PlayerPulseError(
            f"EMR Serverless refused the run on application {application_id}: {error.get('Code')}: "
            f"{error.get('Message')} (check the application id, its release (emr-spark-8.0.0) and --role-arn)"
        ) from None
    return str(answer["jobRunId"]), request


def submit(
    job: Annotated[str, typer.Argument(help=f"The job to run: {', '.join(JOB_FILES)}.")],
    emr_serverless: Annotated[
        str, typer.Option("--emr-serverless", metavar="APPLICATION_ID", help="The EMR Serverless application.")
    ],
    role_arn: Annotated[
        str | None, typer.Option(help=f"The job's execution role (default: role {DEFAULT_ROLE_NAME} in this account).")
    ] = None,
    model: Annotated[str | None, typer.Option(help="The model, for the train and validate jobs.")] = None,
    job_arg: Annotated[
        list[str] | None, typer.Option("--job-arg", help="One more job argument, e.g. --job-arg=--available-now.")
    ] = None,
    venv_archive: Annotated[
        str | None, typer.Option(help="s3:// URI of the packed virtualenv (default under the lake bucket).")
    ] = None,
    jars: Annotated[
        Path | None, typer.Option(help="Upload this folder's jars as spark.jars instead of the release's Delta jars.")
    ] = None,
    env: Annotated[str, typer.Option("--env", help="Configuration the job runs with: conf/<env>.yaml.")] = "aws",
    workdir: Annotated[Path | None, typer.Option("--workdir", help="Local work folder (for reading settings).")] = None,
) -> None:
    """Start a Spark job on EMR Serverless: upload its file and configuration, call start_job_run."""
    settings = load_settings(env, workdir)
    run_id, request = submit_job(
        settings,
        job,
        emr_serverless,
        role_arn=role_arn,
        model=model,
        extra_args=job_arg,
        venv_archive=venv_archive,
        jars_dir=jars,
    )
    console = Console()
    console.print(f"started [bold]{request.name}[/]: job run {run_id} on application {emr_serverless}")
    console.print(f"  entry point {request.entry_point} {' '.join(request.arguments)}", markup=False)
    console.print(
        f"  follow it: aws emr-serverless get-job-run --application-id {emr_serverless} --job-run-id {run_id}",
        markup=False,
    )
