"""Build the files shipped in ``hf_spider/data/`` from the TransferGraph records and the CLIP class lists.

    python scripts/build_bundled_data.py --shared ../shared

writes
- ``bundled_index.jsonl``: the 349 Hub models of the records as ``ModelRecord``s (the offline candidate pool), with
  what a crawl derives from the same fields (``hf_spider.hub.layouts.derive_fields``); the records name no revision
  and no licence, so neither is filled;
- ``finetune_records.csv``: ground truth ``model,target,modality,accuracy`` (best full fine-tuning run per pair);
- ``dataset_labels.json``: ordered class names of known datasets (CLIP lists, plus text datasets from their cards);
- ``target_tasks.json``: a ``TaskDescription`` for every TransferGraph target (label names, size).
Deterministic: the same inputs give byte-identical files.
"""

from __future__ import annotations

import argparse
import ast
import json
from pathlib import Path

import pandas as pd

from hf_spider.finetune_records import TRANSFERGRAPH_FOLDERS, load_transfergraph, write_records_csv
from hf_spider.hub.index import atomic_write, write_index
from hf_spider.hub.layouts import derive_fields
from hf_spider.hub.records import EvalResult, ModelRecord
from hf_spider.tokens.task import TaskDescription

DATA = Path(__file__).resolve().parents[1] / "hf_spider" / "data"
PIPELINE_TAGS = {"image": "image-classification", "text": "text-classification"}

# Label names of the text datasets, in label-id order, as their Hub dataset cards list them.
TEXT_DATASET_LABELS: dict[str, list[str]] = {
    "rotten_tomatoes": ["neg", "pos"],
    "imdb": ["neg", "pos"],
    "glue/sst2": ["negative", "positive"],
    "glue/cola": ["unacceptable", "acceptable"],
    "glue/qqp": ["not_duplicate", "duplicate"],
    "glue/mnli": ["entailment", "neutral", "contradiction"],
    "glue/qnli": ["entailment", "not_entailment"],
    "glue/rte": ["entailment", "not_entailment"],
    "glue/wnli": ["not_entailment", "entailment"],
    "xnli_en": ["entailment", "neutral", "contradiction"],
    "nli_tr/snli_tr": ["entailment", "neutral", "contradiction"],
    "tweet_eval/irony": ["non_irony", "irony"],
    "tweet_eval/sentiment": ["negative", "neutral", "positive"],
    "tweet_eval/offensive": ["non-offensive", "offensive"],
    "tweet_eval/hate": ["non-hate", "hate"],
    "tweet_eval/emotion": ["anger", "joy", "optimism", "sadness"],
    "dair-ai/emotion": ["sadness", "joy", "love", "anger", "fear", "surprise"],
    "ag_news": ["World", "Sports", "Business", "Sci/Tech"],
    "dbpedia_14": [
        "Company",
        "EducationalInstitution",
        "Artist",
        "Athlete",
        "OfficeHolder",
        "MeanOfTransportation",
        "Building",
        "NaturalPlace",
        "Village",
        "Animal",
        "Plant",
        "Album",
        "Film",
        "WrittenWork",
    ],
    "amazon_polarity": ["negative", "positive"],
    "trec": ["ABBR", "ENTY", "DESC", "HUM", "LOC", "NUM"],
    "twitter-financial-news-sentiment": ["Bearish", "Bullish", "Neutral"],
    "kaggle-financial-sentiment": ["negative", "neutral", "positive"],
}
# TransferGraph dataset names -> CLIP list names (shared/data/class_names/README.md).
CLIP_ALIASES = {
    "cifar10": "CIFAR10",
    "cifar100": "CIFAR100",
    "dtd": "DescribableTextures",
    "pets": "OxfordPets",
    "stanfordcars": "StanfordCars",
    "caltech101": "Caltech101",
    "eurosat": "EuroSAT",
    "flowers": "Flowers102",
    "food101": "Food101",
    "kitti": "KITTI",
    "imagenet": "ImageNet",
    "svhn": "MNIST",
}
# Image targets without a CLIP list: names from their dataset descriptions.
EXTRA_IMAGE_LABELS = {
    "smallnorb_label_elevation": [f"elevation {30 + 5 * i} degrees" for i in range(9)],
    "smallnorb_label_azimuth": [f"azimuth {20 * i} degrees" for i in range(18)],
    "diabetic_retinopathy_detection": ["no DR", "mild DR", "moderate DR", "severe DR", "proliferative DR"],
}
# Corrections listed in the records' README; CLIP's Caltech101 list also names the background class.
CLASS_COUNT_FIXES = {"flowers": 102, "tweet_eval/offensive": 2, "caltech101": 102}


def dataset_labels(shared: Path) -> dict[str, list[str]]:
    clip = json.loads((shared / "data" / "class_names" / "clip_datasets.json").read_text())
    labels = {alias: clip[name] for alias, name in CLIP_ALIASES.items()}
    labels.update(EXTRA_IMAGE_LABELS)
    labels.update(TEXT_DATASET_LABELS)
    return dict(sorted(labels.items()))


def model_records(shared: Path, labels: dict[str, list[str]]) -> list[ModelRecord]:
    records = []
    for modality, folder in TRANSFERGRAPH_FOLDERS.items():
        frame = pd.read_csv(shared / "data" / "transfergraph" / folder / "model_config_dataset.csv")
        for row in frame.to_dict("records"):
            records.append(_model_record(row, modality, labels))
    return sorted(records, key=lambda r: r.repo_id)


def _model_record(row: dict[str, object], modality: str, labels: dict[str, list[str]]) -> ModelRecord:
    def present(key: str) -> object | None:
        value = row.get(key)
        return None if value is None or (isinstance(value, float) and value != value) else value

    architectures = present("architectures")
    if isinstance(architectures, str):
        architectures = ast.literal_eval(architectures) if architectures.startswith("[") else [architectures]
    label_field = present("labels")
    label_names: list[str] | None = None
    if isinstance(label_field, str) and label_field.startswith("["):
        label_names = [str(x) for x in ast.literal_eval(label_field)]
    elif isinstance(label_field, str):
        label_names = labels.get(label_field)
    dataset = present("dataset")
    accuracy = present("accuracy")
    eval_results = None
    if accuracy is not None:
        eval_results = (
            EvalResult(dataset=str(dataset) if dataset else None, metric="accuracy", value=float(accuracy)),
        )
    input_size = present("input_shape")
    extra = {"source": "transfergraph"}
    if present("memory_consumption") is not None:
        extra["memory_consumption"] = int(row["memory_consumption"])  # type: ignore[call-overload]
    return derive_fields(  # pre-training sources, head size and ImageNet top-1, as a crawl derives them
        ModelRecord(
            repo_id=str(row["model"]),
            pipeline_tag=PIPELINE_TAGS[modality],
            library_name="transformers",
            architectures=tuple(architectures) if architectures else None,
            model_type=str(present("model_type")) if present("model_type") else None,
            num_parameters=int(row["number_of_parameters"]) if present("number_of_parameters") else None,  # type: ignore[call-overload]
            input_size=int(input_size) if input_size is not None else None,  # type: ignore[call-overload]
            label_names=tuple(label_names) if label_names else None,
            datasets=(str(dataset),) if dataset else None,
            eval_results=eval_results,
            extra=extra,
        )
    )


def target_tasks(shared: Path, labels: dict[str, list[str]], targets: list[str]) -> list[dict[str, object]]:
    tasks = []
    for modality, folder in TRANSFERGRAPH_FOLDERS.items():
        sizes = pd.read_csv(shared / "data" / "transfergraph" / folder / "target_dataset_features.csv")
        for row in sizes.to_dict("records"):
            name = str(row["finetune_dataset"])
            if name not in targets or name not in labels:
                continue
            names = labels[name]
            if name == "svhn":
                names = [str(i) for i in range(10)]
            expected = CLASS_COUNT_FIXES.get(name, int(row["number_of_classes"]))
            if len(names) != expected:
                raise SystemExit(f"{name}: {len(names)} label names but {expected} classes")
            description = TaskDescription(
                name=name, modality=modality, label_names=tuple(names), num_examples={"train": int(row["size"])}
            )
            tasks.append(description.to_dict())
    return sorted(tasks, key=lambda t: str(t["name"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    args = parser.parse_args()
    labels = dataset_labels(args.shared)
    records = load_transfergraph(args.shared / "data" / "transfergraph")
    write_index(model_records(args.shared, labels), DATA / "bundled_index.jsonl")
    write_records_csv(records, DATA / "finetune_records.csv")
    with atomic_write(DATA / "dataset_labels.json") as f:
        json.dump(labels, f, indent=1, sort_keys=True, ensure_ascii=False)
        f.write("\n")
    with atomic_write(DATA / "target_tasks.json") as f:
        json.dump(target_tasks(args.shared, labels, records.targets), f, indent=1, sort_keys=True, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {DATA}: {len(labels)} label lists, {len(records.accuracy)} ground-truth pairs")


if __name__ == "__main__":
    main()
