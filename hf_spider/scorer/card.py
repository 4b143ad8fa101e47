"""The default scorer's model card: the template the Hub mixin fills, and the training and benchmark summary.

Kept apart from the network (:mod:`hf_spider.scorer.model`): the card changes with every benchmark run, the weights'
layout does not.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from ..finetune_records import FinetuneRecords

if TYPE_CHECKING:
    from .train import TrainConfig

MODEL_CARD_TEMPLATE = """---
{{ card_data }}
---

# hf-spider default scorer (Model Spider)

Ranks pre-trained Hub models for a classification task **without a forward pass of any candidate**, as an expected
percentile of the model's fine-tuned accuracy. A model seen in training is scored by its learned model token (Model
Spider): its recorded fine-tuning results on the training tasks and its vector in a Fennec-style transfer space
factorised from them, read for the new task through the label-name similarity of the training tasks. A model never
seen is scored from what the Hub says about it: a regression forest over its size, architecture family, pre-training
source and scale, ImageNet facts (timm's published results, the card's reported accuracy), head and language,
trained on the seen models; a model that names a seen base model in its card, tags or config mixes in its
ancestor's reading. Each score says what it rests on (records, lineage, facts, content or size) with a confidence.

Use it with `hf-spider rank` or `hf_spider.rankers.get_ranker("spider")`; load it with
`TransferScorer.from_pretrained(path_or_repo_id)`. Rebuild it with `python scripts/train_default_scorer.py`.

{{ model_summary }}

## Limitations
- Trained on 23 TransferGraph targets (13 image, 10 text): classification only, small data; an exotic task gets
  a ranking close to the collaborative prior of the training records.
- The ranking does not replace re-ranking the top-k with forward passes, least of all for models known by their
  size or architecture only (see each candidate's evidence and confidence).
- The estimate for unseen models is learned from a few hundred Hub fine-tunes of ViT, Swin, ConvNeXt and BERT-like
  models; families absent from them (most timm CNNs) are placed by their ImageNet facts, size and pre-training alone.
- Language is read from the card, the repo name and the label names, and the training targets are English: a model
  for another language is placed low, also for a task in that language.

Code: https://github.com/hf-spider/hf-spider
"""


def card_summary(
    records: FinetuneRecords,
    source: str,
    config: TrainConfig,
    metrics: Mapping[str, Any] | None = None,
    *,
    sample_encoders: Mapping[str, str] | None = None,
) -> str:
    """Model-card Markdown: training data, what of a task it reads, hyper-parameters and, when given, the benchmark
    figures."""
    counts = records.accuracy.groupby("modality").agg(targets=("target", "nunique"), records=("model", "size"))
    lines = ["## Training data", "", f"Listwise (ListMLE) on {source}:", ""]
    lines += [
        f"- {m}: {int(r.targets)} targets, {int(r.records)} (model, target) results" for m, r in counts.iterrows()
    ]
    if sample_encoders:
        encoders = ", ".join(f"{m}: `{e}`" for m, e in sorted(sample_encoders.items()))
        lines += ["", f"Task samples: it reads the class prototypes of a task's samples, encoded by {encoders}."]
    else:
        lines += ["", "Task samples: it knows a task by its label names only; a dataset's samples are not read."]
    lines += ["", f"Hyper-parameters: `{json.dumps(asdict(config), sort_keys=True)}`."]
    if metrics:
        lines += _benchmark_lines(metrics)
    return "\n".join(lines)


#: Where the benchmark figures of the card come from (``scripts/train_default_scorer.py --metrics``): each figure is
#: written with a marker naming its key there, so ``scripts/figures.py`` can check the card against the file.
METRICS_SOURCE = "results/transfergraph"


def _benchmark_lines(metrics: Mapping[str, Any]) -> list[str]:
    """The card's benchmark section: leave one target out, the forward-pass estimators on the models they scored with
    hf-spider beside them, and the models without records."""

    def fig(modality: str, key: str) -> str:
        value = metrics[modality]
        for part in key.split("."):
            value = value[part]
        return f"{value:.3f}<!-- {METRICS_SOURCE} {modality}.{key} -->"

    modalities = [m for m in ("image", "text") if m in metrics]
    lines = ["", "## Benchmark (TransferGraph, leave one target out, mean weighted tau)", ""]
    lines += ["| modality | hf-spider (weighted) | hf-spider (plain) | collab prior | published TransferGraph |"]
    lines += ["|---|---|---|---|---|"]
    for m in modalities:
        cells = ["weighted_mean.hf_spider", "plain_mean.hf_spider", "weighted_mean.collab_prior"]
        cells += ["weighted_mean.transfergraph_published"]
        lines.append(f"| {m} | " + " | ".join(fig(m, c) for c in cells) + " |")
    if all("scored_subset" in metrics[m] for m in modalities):
        lines += [
            "",
            "LogME (forward passes on the target), on the models it scored, with hf-spider on the same models:",
            "",
        ]
        lines += [
            "| modality | LogME | hf-spider | cold start: LogME | cold start: hf-spider |",
            "|---|---|---|---|---|",
        ]
        for m in modalities:
            cells = [
                f"scored_subset.logme.{p}.weighted_mean.{n}"
                for p in ("loto", "cold_start")
                for n in ("logme", "hf_spider")
            ]
            lines.append(f"| {m} | " + " | ".join(fig(m, c) for c in cells) + " |")
    if all("cold_start" in metrics[m] and "mixed_pool" in metrics[m] for m in modalities):
        lines += ["", "## Models without records (weighted mean of weighted tau)", ""]
        lines += [
            "Cold start: a quarter of the models is held out entirely and ranked from what the Hub says about it.",
            "Mixed pool: those held-out models ranked together with the seen ones, in one list.",
            "",
            "| modality | cold start | size prior | own-records ceiling | mixed pool | collab prior + size |",
            "|---|---|---|---|---|---|",
        ]
        for m in modalities:
            cells = ["cold_start.hf_spider", "cold_start.size_prior", "cold_start.own_records_reference"]
            cells += ["mixed_pool.hf_spider", "mixed_pool.collab_prior_size_fallback"]
            lines.append(f"| {m} | " + " | ".join(fig(m, c) for c in cells) + " |")
    lines += ["", "Reproduce: `python benchmarks/transfergraph_bench.py --json OUT.json`."]
    return lines
