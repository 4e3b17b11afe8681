"""Small files beside the lake (quality results, latency samples): local folders or S3, one API.

Jobs keep what a later step reads (a report, a latency sample) in the configured lake storage,
never on the driver's disk, so the same job runs unchanged on a cluster whose driver is gone
after the run. The files are written with pyarrow's filesystems (already a dependency of
pyspark's Arrow path): no Spark session is needed to read them back, e.g. for a report.

``s3a://`` (Hadoop's scheme, which the lake's paths use) and ``s3://`` name the same objects;
``lake.endpoint_url`` / ``lake.region`` (``PLAYERPULSE_AWS_ENDPOINT``) point S3 at a local
server, and credentials come from the standard AWS chain (environment variables first).
Object stores cannot append, so every writer here writes a whole new file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from features.config import Settings

if TYPE_CHECKING:
    from pyarrow.fs import FileSystem

S3_SCHEMES = ("s3a", "s3", "s3n")


def is_remote(location: str) -> bool:
    """Whether ``location`` is an object-store URI rather than a local folder."""
    return urlsplit(location).scheme in S3_SCHEMES


def filesystem(settings: Settings, location: str) -> tuple[FileSystem, str]:
    """The pyarrow filesystem holding ``location`` and the path inside it."""
    from pyarrow import fs

    parts = urlsplit(location)
    if parts.scheme in S3_SCHEMES:
        endpoint = settings.lake.endpoint_url
        options: dict[str, object] = {"region": settings.lake.region or "us-east-1"}
        if endpoint:
            target = urlsplit(endpoint)
            options["endpoint_override"] = target.netloc or target.path
            options["scheme"] = target.scheme or "https"
        return fs.S3FileSystem(**options), f"{parts.netloc}{parts.path}".rstrip("/")
    if parts.scheme in ("", "file"):
        return fs.LocalFileSystem(), parts.path if parts.scheme else location
    raise ValueError(f"unsupported storage location '{location}': use a local folder or an s3a:// URI")


def write_text(settings: Settings, location: str, text: str, errors: str = "strict") -> str:
    """Write ``text`` as the whole file at ``location`` (parent folders made as needed); ``location``."""
    fs, path = filesystem(settings, location)
    parent = path.rsplit("/", 1)[0]
    if parent and parent != path:
        fs.create_dir(parent, recursive=True)
    with fs.open_output_stream(path) as out:
        out.write(text.encode(errors=errors))
    return location


def read_text(settings: Settings, location: str, errors: str = "strict") -> str:
    fs, path = filesystem(settings, location)
    with fs.open_input_stream(path) as src:
        return bytes(src.read()).decode(errors=errors)


def list_files(settings: Settings, folder: str, suffix: str = "") -> list[str]:
    """Locations of the files directly in ``folder`` ending in ``suffix``, sorted by name; empty
    when the folder does not exist."""
    from pyarrow import fs as pafs

    fs, path = filesystem(settings, folder)
    infos = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    names = sorted(i.base_name for i in infos if i.type == pafs.FileType.File and i.base_name.endswith(suffix))
    return [f"{folder.rstrip('/')}/{name}" for name in names]


def walk_files(settings: Settings, folder: str) -> list[str]:
    """Locations of every file under ``folder``, at any depth, sorted; empty when it does not exist."""
    from pyarrow import fs as pafs

    fs, path = filesystem(settings, folder)
    infos = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True, recursive=True))
    inside = sorted(i.path[len(path) :].lstrip("/") for i in infos if i.type == pafs.FileType.File)
    return [f"{folder.rstrip('/')}/{name}" for name in inside]
