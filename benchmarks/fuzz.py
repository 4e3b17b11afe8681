"""Fuzz the collector's decoding, validation and privacy step for a bounded time.

    .venv/bin/python benchmarks/fuzz.py [--seconds 60] [--seed 1] [--findings DIR]

A mutation fuzzer over ``Collector.prepare`` (no I/O: what ``POST /v1/events`` and the Lambda
face run before their durable write), with the demo game's pseudonymisation and a
``default: drop`` data policy on. Seeds are valid batches in every shape (JSON array,
``{"events": [...]}``, NDJSON) and encoding (none, gzip, zstd); each execution mutates one
(bit flips, byte inserts and deletes, splices of two seeds, JSON-aware edits that swap a node
for a hostile value, deep nesting, truncated compression, multi-member bodies) and sends it with
random ``Content-Encoding`` / ``Content-Type`` headers.

A finding is any of: an exception out of ``prepare``; an answer other than 202, 400, 413 or 415
(a 5xx above all); a stored player id that is not a pseudonym; or a value the policy drops (the
marker planted under ``email`` at any depth, in any case) showing up in a stream record or a
dead letter. Findings are written to ``--findings`` (body, headers, what broke). It prints
executions per second, the answers seen and the findings; it never asserts a speed.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import random
import re
import sys
import tempfile
import time
import traceback
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zstandard

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from features.config import DEVELOPMENT_KEYS, GameConfig, Settings, load_settings  # noqa: E402
from features.contract import now_ms  # noqa: E402
from features.streams import decode_batch  # noqa: E402
from serving.collector import Collector  # noqa: E402

MARKER = "leak-7f3a9c"
"""Planted under policy-dropped names; it must never be stored."""
ALLOWED = {202, 400, 413, 415}
PSEUDONYM = re.compile(r"^p_[0-9a-f]{40}$")
HEADERS = {"authorization": f"Bearer {DEVELOPMENT_KEYS['ingest']}"}
FUZZ_SECRET = "fuzz-secret-0123456789abcdef"
POLICY = {"default": "drop", "properties": {"email": "drop", "sku": "keep", "cart": "keep", "ip": "coarsen:ip_24"}}


def fuzz_settings(workdir: Path) -> Settings:
    """Local settings with the demo game pseudonymised and under a ``default: drop`` policy."""
    base = load_settings("local", workdir)
    demo = base.games["demo"].model_dump(exclude_none=True)
    game = GameConfig.model_validate({**demo, "pseudonymise": {"secrets": [FUZZ_SECRET]}, "data_policy": POLICY})
    return base.model_copy(update={"games": {"demo": game}})


def _event(rng: random.Random) -> dict[str, Any]:
    return {
        "event_id": str(uuid.UUID(int=rng.getrandbits(128))),
        "event_type": rng.choice(["purchase", "session_start", "store_view", "level_up"]),
        "player_id": f"player-{rng.randrange(50)}",
        "game_id": "demo",
        "event_time": now_ms() - rng.randrange(10**7),
        "platform": rng.choice(["ios", "android", "pc"]),
        "app_version": "1.2.3",
        "properties": {
            "sku": "gems",
            "email": MARKER,
            "cart": {"EMAIL": MARKER, "items": [{"eMail": MARKER, "sku": "x"}]},
            "note": MARKER,
            "ip": "203.0.113.9",
        },
    }


def seed_corpus(rng: random.Random) -> list[bytes]:
    """Valid batches in every shape the collector reads."""
    out = []
    for n in (1, 3, 20):
        events = [_event(rng) for _ in range(n)]
        out.append(json.dumps(events).encode())
        out.append(json.dumps({"events": events}).encode())
        out.append("\n".join(json.dumps(e) for e in events).encode())
    return out


_HOSTILE: list[Any] = [
    None,
    True,
    -1,
    2**64,
    1e308,
    "",
    "\ud800",
    "\u0000",
    "x" * 5000,
    [],
    {},
    {"email": MARKER},
    {"Email": {"email": [MARKER]}},
    "2026-13-45T99:99:99Z",
    "::ffff:1.2.3.4",
    "p_" + "0" * 40,
]


def _json_mutation(data: bytes, rng: random.Random) -> bytes:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return data
    nodes: list[tuple[Any, Any]] = []
    stack = [doc]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, child in items:
            nodes.append((node, key))
            stack.append(child)
    if not nodes:
        return data
    parent, key = rng.choice(nodes)
    choice = rng.random()
    if choice < 0.6:
        parent[key] = rng.choice(_HOSTILE)
    elif choice < 0.8:
        deep: Any = {"email": MARKER}
        for _ in range(rng.randrange(1, 40)):
            deep = {"email": deep} if rng.random() < 0.5 else [deep]
        parent[key] = deep
    elif isinstance(parent, dict):
        parent[rng.choice(["surprise", "EMAIL", "player_id", "properties", "sent_at"])] = rng.choice(_HOSTILE)
    return json.dumps(doc).encode(errors="surrogatepass")


_BYTES = [b"{", b"[", b"]", b'"', b",", b"\\", b"\n", b"\xff", b"\x00", b"\\ud800", b"1e999"]


def _byte_mutation(data: bytes, rng: random.Random, corpus: list[bytes]) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randrange(1, 8)):
        op = rng.randrange(6)
        pos = rng.randrange(len(b) + 1)
        if op == 0 and b:
            b[min(pos, len(b) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1:
            b[pos:pos] = rng.choice(_BYTES)
        elif op == 2 and b:
            del b[pos : pos + rng.randrange(1, 16)]
        elif op == 3:
            other = rng.choice(corpus)
            cut = rng.randrange(len(other) + 1)
            b = b[:pos] + bytearray(other[cut:])
        elif op == 4 and b:
            chunk = b[pos : pos + rng.randrange(1, 64)]
            b[pos:pos] = chunk * rng.randrange(1, 20)
        else:
            b[pos:pos] = b"[" * rng.randrange(1, 3000)
    return bytes(b)


def _encode(data: bytes, rng: random.Random) -> tuple[bytes, str | None]:
    r = rng.random()
    if r < 0.4:
        return data, rng.choice([None, "identity", "br", "GZIP", ""])
    if r < 0.7:
        body = gzip.compress(data)
        if rng.random() < 0.2:
            body = body + rng.choice([gzip.compress(data), b"junk", body[: len(body) // 2]])
        elif rng.random() < 0.2:
            body = body[: rng.randrange(len(body))]
        return body, rng.choice(["gzip", "x-gzip"])
    body = zstandard.ZstdCompressor().compress(data)
    if rng.random() < 0.3:
        body = body[: rng.randrange(len(body))] if rng.random() < 0.5 else body + body
    return body, "zstd"


def one_case(rng: random.Random, corpus: list[bytes]) -> tuple[dict[str, str], bytes]:
    """Headers and body of one execution."""
    data = rng.choice(corpus)
    if rng.random() < 0.5:
        data = _json_mutation(data, rng)
    if rng.random() < 0.5:
        data = _byte_mutation(data, rng, corpus)
    body, encoding = _encode(data, rng)
    headers = dict(HEADERS)
    if encoding is not None:
        headers["content-encoding"] = encoding
    if rng.random() < 0.3:
        headers["content-type"] = rng.choice(["application/x-ndjson", "application/json", "text/plain; x=1"])
    return headers, body


def problems(prepared: Any) -> list[str]:
    """What an answer breaks of the collector's promises (empty when none)."""
    if prepared is None:
        return ["prepare returned None without an inline budget"]
    out = []
    if prepared.status not in ALLOWED:
        out.append(f"status {prepared.status}: {prepared.message}")
    for record in prepared.records:
        if not PSEUDONYM.fullmatch(record.partition_key):
            out.append(f"record partition key is not a pseudonym: {record.partition_key!r}")
        events = decode_batch(record.data)[1]
        if any(not PSEUDONYM.fullmatch(e["player_id"]) for e in events):
            out.append("a stored event's player_id is not a pseudonym")
        if MARKER in json.dumps(events):
            out.append("a policy-dropped value reached the stream")
    for letter in prepared.dead_letters:
        if MARKER in letter.raw:
            out.append("a policy-dropped value reached a dead letter")
        if "player-" in letter.raw:
            out.append("a raw player id reached a dead letter")
    return out


@dataclass
class FuzzReport:
    executions: int = 0
    seconds: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    findings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.executions / self.seconds if self.seconds else 0.0


def run(seconds: float, seed: int = 1, findings_dir: Path | None = None, workdir: Path | None = None) -> FuzzReport:
    """Fuzz for ``seconds``; every finding is kept in the report (and in ``findings_dir``)."""
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        collector = Collector.from_settings(fuzz_settings(workdir or Path(tmp)))
        corpus = seed_corpus(rng)
        report = FuzzReport()
        started = time.perf_counter()
        deadline = started + seconds
        while time.perf_counter() < deadline:
            headers, body = one_case(rng, corpus)
            try:
                prepared = collector.prepare(headers, body)
                broken = problems(prepared)
                if prepared is not None:
                    report.statuses[prepared.status] += 1
            except Exception:
                broken = [traceback.format_exc(limit=6)]
            report.executions += 1
            if broken:
                finding = {"headers": headers, "body_hex": body[:4096].hex(), "problems": broken}
                report.findings.append(finding)
                if findings_dir is not None:
                    findings_dir.mkdir(parents=True, exist_ok=True)
                    name = hashlib.sha256(body).hexdigest()[:16]
                    (findings_dir / f"{name}.json").write_text(json.dumps(finding, indent=1))
        report.seconds = time.perf_counter() - started
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--findings", type=Path, default=Path("var/fuzz-findings"))
    args = parser.parse_args(argv)
    report = run(args.seconds, args.seed, args.findings)
    print(f"executions: {report.executions:,} in {report.seconds:.1f} s ({report.per_second:,.0f}/s)")
    print("answers: " + ", ".join(f"{s}: {n:,}" for s, n in sorted(report.statuses.items())))
    print(f"findings: {len(report.findings)}" + (f" (written to {args.findings})" if report.findings else ""))
    for f in report.findings[:5]:
        print(" -", f["problems"][0].strip().splitlines()[-1])
    return 1 if report.findings else 0


if __name__ == "__main__":
    raise SystemExit(main())
