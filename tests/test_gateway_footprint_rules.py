"""What the gateway process keeps out of memory (docs/scaling.md, "The gateway on a Pi")."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
from gateway.run import keep_out_unused
keep_out_unused()
import jwt, jwt.algorithms
token = jwt.encode({"sub": "petugas"}, "k" * 32, algorithm="HS256")
assert jwt.decode(token, "k" * 32, algorithms=["HS256"]) == {"sub": "petugas"}
import httpx
assert httpx.Client(base_url="http://127.0.0.1:9").base_url.port == 9
import sys
loaded = sorted({m.split(".")[0] for m in sys.modules if sys.modules[m]})
print(jwt.algorithms.has_crypto, *(m in loaded for m in ("cryptography", "rich", "pygments")))
"""


def probe(script: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return out.split()


def test_gateway_sessions_and_central_client_work_without_the_unused() -> None:
    assert probe(PROBE) == ["False", "False", "False", "False"]


def test_without_the_rule_the_libraries_load_them() -> None:
    # The control: the rule is what keeps them out, not libraries that no longer import them.
    script = PROBE.replace("keep_out_unused()\n", "", 1).replace(
        "from gateway.run import keep_out_unused\n", ""
    )
    # PyJWT loads cryptography; httpx its command line's rich and pygments
    assert probe(script) == ["True", "True", "True", "True"]
