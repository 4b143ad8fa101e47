"""Fit the stage-two fusion on recorded estimator values and validate it leave-one-target-out.

    python benchmarks/fusion_bench.py --json benchmarks/results/fusion.json

Reads the bundled ``hf_spider/data/fusion_validation.csv`` (TransferGraph records: recorded LogME / Reg-H-Score on
16 targets; the zoo's meta-training tasks and the benchmark zoo's 7 targets: every estimator, and the members of the
compared sets on the probe sets of successive halving's early rounds) and runs
:func:`hf_spider.rerank.validation.fit_fusion`. Prints, per benchmark and stage-one stand-in
(``seen``: collaborative prior, evidence records; ``mixed``: a quarter of the models unseen; ``size``: size prior;
``other``: another task's measured accuracies),
the weighted tau of the fusion, of stage one alone, of the chosen estimators alone and of LogME alone, each benchmark
scored with the option chosen on the other benchmarks (leave one benchmark out), then each target with the option
chosen without it; then the same with only the top k re-ranked, and with ``rank --dataset``'s successive halving
over the top 8 (``halving``); then each estimator alone; then the fitted parameters
and whether they are the ones shipped in :data:`hf_spider.rerank.fusion.FUSION_PARAMETERS`.
"""

from __future__ import annotations

import argparse
import json
import platform
from dataclasses import asdict
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, help="write the results to this JSON file")
    args = parser.parse_args()

    from hf_spider.hub.output_paths import atomic_write
    from hf_spider.rerank.fusion import DEFAULT_ESTIMATORS, FUSION_PARAMETERS
    from hf_spider.rerank.validation import fit_fusion

    fit = fit_fusion(progress=print)
    for protocol, kinds_by_group, top_by_group in (
        ("leave one benchmark out", fit.lobo, fit.lobo_top_k),
        ("leave one target out", fit.loto, fit.loto_top_k),
    ):
        print(f"\n{protocol}: weighted tau (TransferGraph: weighted by accuracy spread; zoo, zoo-meta: plain mean)")
        print(f"{'group':<22}{'stand-in':<11}{'fusion':>8}{'stage 1':>9}{'estim.':>8}{'LogME':>8}")
        for group, kinds in kinds_by_group.items():
            for kind, m in kinds.items():
                print(
                    f"{group:<22}{kind:<11}{m['fusion']:>8.3f}{m['stage_one']:>9.3f}{m['estimator']:>8.3f}"
                    f"{m['logme']:>8.3f}"
                )
        print(f"only the stage-one top k re-ranked, or halving ({protocol}; stand-in: collaborative prior, records)")
        for group, ks in top_by_group.items():
            for k, m in ks.items():
                print(f"{group:<22}{k:<11}{m['fusion']:>8.3f}{m['stage_one']:>9.3f}{m['estimator']:>8.3f}")
    print("\nestimator sets alone (all targets)")
    for group, sets in fit.estimator_sets.items():
        print(f"{group:<22}" + "  ".join(f"{name} {tau:.3f}" for name, tau in sets.items()))
    print("\nevery estimator alone (all targets)")
    for group, taus in fit.estimator_alone.items():
        print(f"{group:<22}" + "  ".join(f"{name} {tau:.3f}" for name, tau in taus.items()))
    shipped = fit.parameters == FUSION_PARAMETERS and fit.estimators == DEFAULT_ESTIMATORS
    print(f"\nchosen estimators: {'+'.join(fit.estimators)}")
    print(f"chosen parameters: {fit.parameters}")
    print(f"identical to the shipped FUSION_PARAMETERS / DEFAULT_ESTIMATORS: {shipped}")
    if args.json is not None:
        report = {
            "lobo": fit.lobo,
            "lobo_top_k": fit.lobo_top_k,
            "loto": fit.loto,
            "loto_top_k": fit.loto_top_k,
            "estimator_sets": fit.estimator_sets,
            "estimator_alone": fit.estimator_alone,
            "parameters": asdict(fit.parameters),
            "estimators": list(fit.estimators),
            "choices_per_held_out_target": fit.choices,
            "shipped": shipped,
            "environment": {"python": platform.python_version(), "platform": platform.platform()},
        }
        with atomic_write(args.json) as f:
            json.dump(report, f, indent=1, sort_keys=True)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
