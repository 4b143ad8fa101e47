"""Crawl benchmark against the loopback Hub: throughput, and correctness under hostile repos, faults and ``kill -9``.

One repo in ``--hostile-every`` is hostile (``hf_spider.testing.repos.HOSTILE_KINDS``: lone surrogates and RTL
overrides in ids and labels, ``..`` in ids, a billion-laughs card, control characters, a 5 MB card, a config nested 500
deep, 20,000 labels, a repo deleted after it was listed) and one in 50 of each ``BAD_KINDS`` is bad (malformed YAML,
no metadata, a config that is not JSON, gated): about 12 % in all with the defaults.

Scenarios (the crawler runs in a child process, the Hub in this one):
    1. throughput without faults: list only, then list + config.json + README.md;
    2. uninterrupted crawls with config and card under faults on each of ``--timed-fault-rates`` of all requests
       (429 with Retry-After, 500, 503, truncated bodies, and stalls for a tenth of them), timed;
    3. faults on ``--fault-rate`` of all requests, the crawl killed with SIGKILL at ``--kills`` random points and
       resumed; every record is compared field by field with what was generated (a hostile one on its error kinds
       too), and the index with the one of the uninterrupted crawl of scenario 1;
    4. ``--changed`` normal repos get a new commit; a re-crawl must fetch exactly those, plus the repos recorded as
       ``not_found`` (deleted ones), which every crawl tries again.

Peak RSS is the largest ``ru_maxrss`` of the crawls with config and card (each child reports its own).

Usage:
    python benchmarks/crawl_bench.py --json OUT.json [--repos 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_XET", "1")

from hf_spider.hub.index import read_index
from hf_spider.hub.records import ModelRecord
from hf_spider.hub.snapshot import CrawlJournal
from hf_spider.testing import LoopbackHub
from hf_spider.testing.repos import GeneratedRepo, change_repo, generate_repos, mismatches

# The child: one crawl, its report and peak RSS as JSON on the last line of stdout.
_CHILD = """
import json, resource, sys
from hf_spider.hub.crawl import Selection, crawl
settings = json.loads(sys.argv[1])
index = settings.pop("index")
report = crawl(index, Selection(sort=None), **settings)
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"listed": report.listed, "fetched": report.fetched, "seconds": report.seconds, "peak_mb": peak_mb}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repos", type=int, default=2000, help="generated repos (default 2000)")
    parser.add_argument("--fault-rate", type=float, default=0.10, help="share of requests given a fault")
    parser.add_argument(
        "--timed-fault-rates", type=float, nargs="+", default=[0.1, 0.3], help="fault rates of the timed crawls"
    )
    parser.add_argument("--hostile-every", type=int, default=25, help="one repo in this many is hostile")
    parser.add_argument("--kills", type=int, default=3, help="kill -9 points in the fault scenario")
    parser.add_argument("--changed", type=int, default=50, help="repos changed before the re-crawl")
    parser.add_argument("--workers", type=int, default=16, help="crawler threads")
    parser.add_argument("--page-size", type=int, default=100, help="models per listing page")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    settings = {
        "workers": args.workers,
        "backoff": 0.05,
        "max_backoff": 1.0,
        "timeout": 1.0,
        "max_retries": 8,
        "repo_budget": 30.0,
    }

    with tempfile.TemporaryDirectory(prefix="crawl_bench_") as tmp, LoopbackHub(page_size=args.page_size) as hub:
        work = Path(tmp)
        repos = generate_repos(hub, args.repos, seed=args.seed, hostile=args.hostile_every)
        base = {**settings, "endpoint": hub.endpoint}

        list_only = _child(work, {**base, "index": str(work / "list.parquet")}, cache="c1")
        both = {"with_config": True, "with_card": True}
        full = _child(work, {**base, "index": str(work / "full.parquet"), **both}, cache="c2")

        # Scenario 2: uninterrupted crawls under each fault rate, timed.
        timed = {}
        for rate in args.timed_fault_rates:
            _add_faults(hub, rate)
            timed[str(rate)] = _child(work, {**base, "index": str(work / f"timed-{rate}.parquet"), **both}, cache="c4")
            timed[str(rate)]["correct"] = _correct(repos, read_index(work / f"timed-{rate}.parquet"))
            hub.faults.clear()

        # Scenario 3: faults everywhere, killed at random points, resumed.
        _add_faults(hub, args.fault_rate)
        hub.clear_requests()
        faulty = {**base, "index": str(work / "faulty.parquet"), "with_config": True, "with_card": True}
        journal = CrawlJournal(work / "faulty.parquet").path
        targets = sorted(rng.sample(range(1, args.repos), args.kills))
        kills = [_kill_at(work, faulty, journal, target, rng) for target in targets]
        resumed = _child(work, faulty, cache="c3")
        injected = sum(1 for r in hub.requests if r.fault)
        total_requests = len(hub.requests)
        hub.faults.clear()

        records = read_index(work / "faulty.parquet")
        by_id = {r.repo_id: r for r in records}
        wrong = [m for g in repos if _id(g) in by_id for m in mismatches(_expected(g), by_id[_id(g)])]
        correct = set(_correct(repos, records))  # before scenario 4 changes some repos
        hostile = [_id(g) for g in repos if g.hostile]
        hostile_kinds = Counter(g.bad for g in repos if g.hostile)
        clean = {r.repo_id: r.to_dict() for r in read_index(work / "full.parquet")}
        differs = sum(1 for r in records if clean.get(r.repo_id) != r.to_dict())

        # Scenario 4: change some repos, re-crawl, count what was fetched.
        changed = rng.sample([i for i, g in enumerate(repos) if not g.hostile], args.changed)
        for i in changed:
            repos[i] = change_repo(hub, repos[i])
        hub.clear_requests()
        recrawl = _child(work, faulty, cache="c3")
        requested = {r.path.split("/resolve/")[0].lstrip("/") for r in hub.requests if "/resolve/" in r.path}
        retried = {g.repo_id for g in repos if g.bad == "deleted"}

    result: dict[str, Any] = {
        "repos": args.repos,
        "records_correct": len(correct),
        "lost": sum(1 for g in repos if _id(g) not in by_id),
        "duplicated": len(records) - len(by_id),
        "records_per_s": {
            "list_only": round(args.repos / list_only["seconds"], 1),
            "with_config_and_card": round(args.repos / full["seconds"], 1),
        },
        "hostile": {"repos": len(hostile), "recorded_with_error": len(correct.intersection(hostile))},
        "hostile_kinds": dict(sorted(hostile_kinds.items())),  # type: ignore[arg-type]
        "peak_rss_mb": round(max(run["peak_mb"] for run in [full, resumed, *timed.values()]), 1),
        "seconds_by_fault_rate": {rate: round(run["seconds"], 1) for rate, run in timed.items()},
        "records_correct_by_fault_rate": {rate: len(run["correct"]) for rate, run in timed.items()},
        "fault_scenario": {
            "fault_rate": args.fault_rate,
            "requests": total_requests,
            "faults_injected": injected,
            "kills_at_journal_lines": kills,
            "resume_fetched": resumed["fetched"],
            "records_differing_from_uninterrupted_crawl": differs,
            "mismatches": wrong[:10],
        },
        "recrawl": {
            "changed": args.changed,
            "not_found_retried": len(retried),
            "fetched": recrawl["fetched"],
            "repos_requested": len(requested),
            "only_changed_requested": requested == {repos[i].repo_id for i in changed} | retried,
        },
        "settings": {
            **settings,
            "page_size": args.page_size,
            "seed": args.seed,
            "hostile_every": args.hostile_every,
            "crawler": "child process",
        },
        "environment": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "huggingface_hub": _version("huggingface_hub"),
            "uvicorn": _version("uvicorn"),
            "hf_spider": _version("hf_spider"),
        },
    }
    _print_table(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


def _expected(repo: GeneratedRepo) -> ModelRecord:
    return repo.expected(with_config=True, with_card=True)


def _id(repo: GeneratedRepo) -> str:
    """The id the index holds for a generated repo (hostile characters escaped)."""
    return _expected(repo).repo_id


def _correct(repos: list[GeneratedRepo], records: list[ModelRecord]) -> list[str]:
    """Ids of the repos whose record is right field by field, error kinds included."""
    by_id = {r.repo_id: r for r in records}
    return [_id(g) for g in repos if _id(g) in by_id and not mismatches(_expected(g), by_id[_id(g)])]


def _add_faults(hub: LoopbackHub, rate: float) -> None:
    """Faults on ``rate`` of all requests: 429 (Retry-After 0), 500, 503 and truncated bodies, and a tenth stalls."""
    hub.faults.add("429", "500", "503", "truncate", probability=rate * 0.9, retry_after=0)
    hub.faults.add("stall", probability=rate * 0.1, stall_s=2.0)


def _child(work: Path, settings: dict[str, Any], *, cache: str) -> dict[str, Any]:
    """Run one crawl to completion in a child process; its report."""
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(settings)],
        env=_env(work, cache),
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _kill_at(work: Path, settings: dict[str, Any], journal: Path, lines: int, rng: random.Random) -> int:
    """Start a crawl and SIGKILL it once the journal holds ``lines`` lines (plus a random few ms)."""
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, json.dumps(settings)],
        env=_env(work, "c3"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while child.poll() is None and (not journal.exists() or journal.read_bytes().count(b"\n") < lines):
        time.sleep(0.01)
    time.sleep(rng.uniform(0, 0.05))
    if child.poll() is None:
        os.kill(child.pid, signal.SIGKILL)
    child.wait()
    return journal.read_bytes().count(b"\n") if journal.exists() else 0


def _env(work: Path, cache: str) -> dict[str, str]:
    return {**os.environ, "HF_HUB_CACHE": str(work / cache), "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package.replace("_", "-"))
    except PackageNotFoundError:
        return "unknown"


def _print_table(result: dict[str, Any]) -> None:
    s = result["settings"]
    print(f"loopback-Hub crawl, {result['repos']} repos, {s['workers']} workers, page size {s['page_size']}")
    print(f"{'list only':<28} {result['records_per_s']['list_only']:>10} records/s")
    print(f"{'list + config + card':<28} {result['records_per_s']['with_config_and_card']:>10} records/s")
    f = result["fault_scenario"]
    print(
        f"faults on {f['fault_rate']:.0%} of requests ({f['faults_injected']} of {f['requests']}), "
        f"kill -9 at journal lines {f['kills_at_journal_lines']}:"
    )
    print(f"{'records correct':<28} {result['records_correct']:>10}")
    h = result["hostile"]
    print(f"{'hostile recorded with error':<28} {h['recorded_with_error']:>5} of {h['repos']}")
    print(f"{'lost / duplicated':<28} {result['lost']:>5} / {result['duplicated']}")
    print(f"{'differ from clean crawl':<28} {f['records_differing_from_uninterrupted_crawl']:>10}")
    print(f"{'peak RSS (config + card)':<28} {result['peak_rss_mb']:>10} MB")
    for rate, seconds in result["seconds_by_fault_rate"].items():
        correct = result["records_correct_by_fault_rate"][rate]
        print(f"{f'faults on {float(rate):.0%}, uninterrupted':<28} {seconds:>10} s ({correct} records correct)")
    r = result["recrawl"]
    print(
        f"re-crawl after changing {r['changed']} (and {r['not_found_retried']} not_found retried): "
        f"fetched {r['fetched']}, repos requested {r['repos_requested']}, only those: {r['only_changed_requested']}"
    )


if __name__ == "__main__":
    main()
