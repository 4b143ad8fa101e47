"""Push benchmark: collection pushes and scorer pushes against a loopback Hub that faults 25 % of the write requests.

Faults: 429 (Retry-After 0), 500, 503, truncated bodies, a stall before the request is handled, and a write applied
but answered late (``stall_after``), on ``--fault-rate`` of the requests a push makes (``whoami``, every collection
call; repo creation, the head read, YAML validation, preupload and the commit). The pushes run in child processes
pointed at the Hub by ``HF_ENDPOINT``, the Hub in this one.

    1. collections: ``--pushes`` pushes of three rankings of 8 models in turn (new order, notes, models dropped and
       added) to one collection, each verified by reading the collection back (models, order, notes): it converged,
       or failed with one ``CollectionPushError`` line, or ended in any other exception (counted as a traceback);
    2. scorer: ``--scorer-pushes`` ``TransferScorer.push_to_hub`` calls, the weights changed before every other one;
       the commits the Hub holds are counted against the content changes (a lost commit answer must not become a
       second commit, and no commit may repeat its parent), then, faults off, ``from_pretrained`` must score a set
       of candidates exactly as the pushed scorer did.

Usage:
    python benchmarks/push_bench.py --json OUT.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_XET", "1")

from hf_spider.testing import DEFAULT_TOKEN, DEFAULT_USER, LoopbackHub

MODELS = [f"{DEFAULT_USER}/model-{i}" for i in range(8)]
SCORER = f"{DEFAULT_USER}/spider-scorer"
WRITES = (
    r"^(GET /api/whoami-v2|\S+ /api/collections|POST /api/repos/create|GET /api/models/|POST /api/validate-yaml"
    r"|POST /api/models/.+/(preupload|commit)/)"
)
# Retries as in production (hf_spider.hub.retry.WRITE_POLICY) with shorter waits and timeout, to keep the run short.
_POLICY = "RetryPolicy(max_retries=6, backoff=0.05, max_backoff=0.5, timeout=1.0, max_retry_after=5)"

_COLLECTIONS_CHILD = (
    """
import json, sys, time
from huggingface_hub import HfApi
from hf_spider.errors import CollectionPushError
from hf_spider.hub.retry import RetryPolicy, call_with_retries
from hf_spider.outputs.collections import collection_note, push_to_hub_collection
from hf_spider.outputs.shortlist import Shortlist
models, pushes, token, owner = json.loads(sys.argv[1])
policy = """
    + _POLICY
    + """
rankings = [
    {m: 1 - i / 10 for i, m in enumerate(models)},
    {m: i / 10 for i, m in enumerate(models)},
    {m: (i * 5 % 8) / 10 for i, m in enumerate(models[:5])},
]
api = HfApi(token=token)
outcomes, seconds = [], []
for n in range(pushes):
    shortlist = Shortlist.from_scores(rankings[n % 3], task="beans", ranker="spider")
    start = time.monotonic()
    try:
        push_to_hub_collection(shortlist, "Bench", token=token, date="2026-01-31", policy=policy)
    except CollectionPushError as exc:
        outcomes.append("one_line" if "\\n" not in str(exc) else "multi_line")
        continue
    except Exception as exc:
        outcomes.append("traceback")
        continue
    finally:
        seconds.append(time.monotonic() - start)
    wanted = [(e.model_id, collection_note(e, shortlist, date="2026-01-31")) for e in shortlist]
    def read():
        (listed,) = [c for c in api.list_collections(owner=owner) if c.title == "Bench"]
        items = sorted(api.get_collection(listed.slug).items, key=lambda i: i.position)
        return [(i.item_id, i.note) for i in items]
    got = call_with_retries(read, what="verify", policy=RetryPolicy(max_retries=20, backoff=0.05, timeout=1.0))
    outcomes.append("converged" if got == wanted else "wrong_state")
print(json.dumps({"outcomes": outcomes, "seconds": seconds}))
"""
)

# Scores of 8 candidates on one task, by a scorer: what must not change from a push to a from_pretrained.
_SCORES = """
import numpy as np
from hf_spider.hub.records import ModelRecord
from hf_spider.scorer.model import TransferScorer
from hf_spider.tokens.ptm import ptm_tokens, token_dim
from hf_spider.tokens.task import TaskDescription
from hf_spider.tokens.build import task_tokens_from_labels
def scores(scorer):
    candidates = [
        ModelRecord(f"org/m{i}", pipeline_tag="image-classification", num_parameters=10**6 * (i + 1)) for i in range(8)
    ]
    task = task_tokens_from_labels(TaskDescription(name="pets", modality="image", label_names=("cat", "dog")))
    return scorer.score_tokens(ptm_tokens(candidates), task)
"""

_SCORER_CHILD = (
    _SCORES
    + """
import json, sys
import torch
from hf_spider.errors import HubPushError
from hf_spider.hub.retry import RetryPolicy
repo_id, pushes, token, out = json.loads(sys.argv[1])
policy = """
    + _POLICY
    + """
torch.manual_seed(0)
scorer = TransferScorer(in_dim=token_dim(384), members=2, model_ids=[f"org/m{i}" for i in range(8)], train_tasks=["a"])
outcomes, changes = [], 0
for n in range(pushes):
    if n % 2 == 0:
        with torch.no_grad():
            next(scorer.parameters()).add_(0.01)
        changes += 1
    try:
        scorer.push_to_hub(repo_id, token=token, policy=policy)
        outcomes.append("pushed")
    except HubPushError as exc:
        outcomes.append("one_line" if "\\n" not in str(exc) else "multi_line")
    except Exception:
        outcomes.append("traceback")
np.save(out, scores(scorer))
print(json.dumps({"outcomes": outcomes, "content_changes": changes}))
"""
)

_LOAD_CHILD = (
    _SCORES
    + """
import json, sys
repo_id, saved = json.loads(sys.argv[1])
remote = TransferScorer.from_pretrained(repo_id)
print(json.dumps({"identical": bool(np.array_equal(scores(remote), np.load(saved)))}))
"""
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pushes", type=int, default=30, help="collection pushes (default 30)")
    parser.add_argument("--scorer-pushes", type=int, default=10, help="scorer pushes (default 10)")
    parser.add_argument("--fault-rate", type=float, default=0.25, help="share of write requests given a fault")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="push_bench_") as tmp, LoopbackHub(seed=args.seed) as hub:
        for model_id in MODELS:
            hub.add_repo(model_id, {"config.json": "{}"}, pipeline_tag="image-classification")
        rule = hub.faults.add(
            "429", "500", "503", "truncate", "stall", "stall_after",
            match=WRITES, probability=args.fault_rate, retry_after=0, stall_s=2.0,
        )  # fmt: skip
        env = {**os.environ, "HF_ENDPOINT": hub.endpoint, "HF_HUB_OFFLINE": "0", "HF_HUB_CACHE": str(Path(tmp) / "c")}
        collections = _child(_COLLECTIONS_CHILD, [MODELS, args.pushes, DEFAULT_TOKEN, DEFAULT_USER], env)
        collection_faults = rule.hits
        saved = str(Path(tmp) / "scores.npy")
        scorer = _child(_SCORER_CHILD, [SCORER, args.scorer_pushes, DEFAULT_TOKEN, saved], env)
        scorer_faults = rule.hits - collection_faults
        hub.faults.clear()
        commits = hub.repos[SCORER].commits[1:]  # after the repo's first commit (.gitattributes)
        parents = hub.repos[SCORER].commits[:-1]
        empty = sum(child.files == parent.files for parent, child in zip(parents, commits, strict=True))
        loaded = _child(_LOAD_CHILD, [SCORER, saved], env)

    result: dict[str, Any] = {
        "fault_rate": args.fault_rate,
        "collections": {
            "pushes": args.pushes,
            "converged": collections["outcomes"].count("converged"),
            "failed_one_line": collections["outcomes"].count("one_line"),
            "wrong_state": collections["outcomes"].count("wrong_state"),
            "tracebacks": collections["outcomes"].count("traceback") + collections["outcomes"].count("multi_line"),
            "faults_injected": collection_faults,
            "seconds_mean": round(sum(collections["seconds"]) / len(collections["seconds"]), 2),
            "seconds_max": round(max(collections["seconds"]), 2),
        },
        "scorer": {
            "pushes": args.scorer_pushes,
            "pushed": scorer["outcomes"].count("pushed"),
            "failed_one_line": scorer["outcomes"].count("one_line"),
            "tracebacks": scorer["outcomes"].count("traceback") + scorer["outcomes"].count("multi_line"),
            "content_changes": scorer["content_changes"],
            "commits": len(commits),
            "empty_commits": empty,
            "faults_injected": scorer_faults,
            "identical_rankings_after_from_pretrained": loaded["identical"],
        },
        "settings": {"policy": _POLICY, "seed": args.seed, "stall_s": 2.0, "hf_hub_disable_xet": True},
        "environment": {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count()},
    }
    _print_table(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


def _child(script: str, argument: list[Any], env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", script, json.dumps(argument)], env=env, check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _print_table(result: dict[str, Any]) -> None:
    c, s = result["collections"], result["scorer"]
    print(f"faults on {result['fault_rate']:.0%} of the write requests")
    print(
        f"collections: {c['pushes']} pushes, {c['converged']} converged, {c['failed_one_line']} failed with one line, "
        f"{c['wrong_state']} wrong state, {c['tracebacks']} tracebacks ({c['faults_injected']} faults; "
        f"{c['seconds_mean']} s mean, {c['seconds_max']} s max)"
    )
    print(
        f"scorer: {s['pushes']} pushes ({s['pushed']} done, {s['failed_one_line']} failed with one line, "
        f"{s['tracebacks']} tracebacks), {s['content_changes']} content changes -> {s['commits']} commits, "
        f"{s['empty_commits']} empty; identical rankings after from_pretrained: "
        f"{s['identical_rankings_after_from_pretrained']} ({s['faults_injected']} faults)"
    )


if __name__ == "__main__":
    main()
