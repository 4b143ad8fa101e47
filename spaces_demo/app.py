"""hf-spider Space: pick or upload a dataset, rank the candidate models, plot them, push the shortlist to a collection.

A thin UI over ``hf_spider.pipeline("model-selection")``: every rule (filters, ordering, re-ranking, the collection
push) lives in the library, so the Space ranks exactly as the CLI and the pipeline do. It runs offline on the bundled
candidate pool. The Hub token typed into the push box is used for that one request and never stored or logged.
"""

from __future__ import annotations

import logging
import tempfile
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import gradio as gr

from hf_spider.errors import HfSpiderError

logger = logging.getLogger(__name__)

TABLE_COLUMNS = ["rank", "model", "score", "params", "notes"]
SOURCES = ("Hub dataset id", "Upload (CSV / JSON / Parquet / zip of an image folder)", "Label names")
#: Largest upload unpacked from a zip, so a zip bomb cannot fill the Space's disk.
MAX_UNZIPPED_BYTES = 512 * 2**20


@lru_cache(maxsize=1)
def _selector() -> Any:
    """One pipeline per process: building it loads the ranker and its records."""
    from hf_spider.pipeline import pipeline

    return pipeline("model-selection")


def rank_task(
    source_kind: str,
    dataset_id: str,
    upload: str | None,
    labels: str,
    modality: str,
    candidates: str,
    top_k: float,
    max_params_m: float,
    rerank: float,
    progress: gr.Progress = gr.Progress(),  # noqa: B008  (Gradio injects the tracker through this default)
) -> tuple[list[list[Any]], Any, Any, str, str]:
    """Rank one task: table rows, the two figures, a status line, and the shortlist as JSON for the push."""
    progress(0.1, desc="reading the task")
    task = _task_input(source_kind, dataset_id, upload, labels, modality)
    options: dict[str, Any] = {"top_k": int(top_k), "candidates": _candidates(candidates)}
    if max_params_m:
        options["max_parameters"] = int(max_params_m * 1e6)
    if rerank:
        options["rerank"] = int(rerank)
    progress(0.4, desc="scoring the candidates")
    try:
        shortlist = _selector()(task, **options)
    except HfSpiderError as exc:
        raise gr.Error(str(exc)) from exc
    progress(0.9, desc="plotting")
    rows = [
        [e.rank, e.model_id, round(e.score, 4), e.num_parameters, e.error or "; ".join(e.reasons)] for e in shortlist
    ]
    status = (
        f"Ranked {shortlist.metadata.get('candidates', '?')} candidates for '{shortlist.task}' with {shortlist.ranker}."
    )
    return rows, shortlist.plot_scores(), shortlist.plot_size_vs_score(), status, shortlist.to_json()


def push_collection(shortlist_json: str, title: str, namespace: str, token: str) -> str:
    """Push the last shortlist to a collection with the user's token (kept in this call only)."""
    from hf_spider.outputs.shortlist import Shortlist

    if not shortlist_json:
        raise gr.Error("rank a task first, then push its shortlist")
    if not title.strip():
        raise gr.Error("give the collection a title")
    try:
        url = Shortlist.from_json(shortlist_json).push_to_hub_collection(
            title.strip(), namespace=namespace.strip() or None, token=token.strip() or None
        )
    except HfSpiderError as exc:
        raise gr.Error(str(exc)) from exc
    return f"Pushed to [{url}]({url})"


def _task_input(source_kind: str, dataset_id: str, upload: str | None, labels: str, modality: str) -> Any:
    if source_kind == SOURCES[0]:
        if not dataset_id.strip():
            raise gr.Error("type a Hub dataset id, e.g. 'rotten_tomatoes'")
        return dataset_id.strip()
    if source_kind == SOURCES[1]:
        if not upload:
            raise gr.Error("upload a CSV / JSON / Parquet file or a zip of an image folder")
        return _unpacked(Path(upload))
    names = [n.strip() for n in labels.replace("\n", ",").split(",") if n.strip()]
    return {"labels": names, "modality": modality, "name": "labels"}


def _unpacked(path: Path) -> str:
    """A zip is unpacked to a temporary folder (one sub-folder per class); any other file is used as it is."""
    if path.suffix.lower() != ".zip":
        return str(path)
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise gr.Error(f"'{path.name}' is not a readable zip; upload a zip of an image folder") from exc
    with archive:
        members = archive.infolist()
        if sum(m.file_size for m in members) > MAX_UNZIPPED_BYTES:
            raise gr.Error(f"'{path.name}' unpacks to more than {MAX_UNZIPPED_BYTES >> 20} MiB; upload fewer images")
        target = Path(tempfile.mkdtemp(prefix="hf_spider_upload_"))
        for member in members:
            if Path(member.filename).is_absolute() or ".." in Path(member.filename).parts:
                raise gr.Error(f"'{path.name}' holds an unsafe path ({member.filename}); upload a plain image folder")
        archive.extractall(target)
    roots = [p for p in target.iterdir() if not p.name.startswith(("__MACOSX", "."))]
    return str(roots[0] if len(roots) == 1 and roots[0].is_dir() else target)


def _candidates(choice: str) -> Any:
    """``"bundled"``, or a Hub query for the most downloaded models of a pipeline tag."""
    if choice.startswith("Hub:"):
        return {"pipeline_tag": choice.removeprefix("Hub:").strip(), "sort": "downloads", "limit": 50}
    return "bundled"


def build_demo() -> gr.Blocks:
    """The Blocks app (tests launch it on 127.0.0.1; the Space runs it as ``app.py``)."""
    with gr.Blocks(title="hf-spider: which model should I fine-tune?") as demo:
        gr.Markdown(
            "# hf-spider\nRank pre-trained Hub models for your dataset without fine-tuning them all "
            "(Model Spider, NeurIPS 2023). Works offline on the bundled pool of 349 models."
        )
        with gr.Row():
            with gr.Column():
                source_kind = gr.Radio(list(SOURCES), value=SOURCES[1], label="Dataset")
                dataset_id = gr.Textbox(label="Hub dataset id", placeholder="rotten_tomatoes")
                upload = gr.File(label="Dataset file", file_types=[".csv", ".json", ".jsonl", ".parquet", ".zip"])
                labels = gr.Textbox(label="Label names (comma-separated)", placeholder="cat, dog, bird")
                modality = gr.Radio(["text", "image"], value="text", label="Modality of the label names")
            with gr.Column():
                candidates = gr.Dropdown(
                    ["bundled", "Hub: image-classification", "Hub: text-classification"],
                    value="bundled",
                    label="Candidate pool",
                )
                top_k = gr.Slider(1, 50, value=10, step=1, label="Top k")
                max_params = gr.Number(value=0, label="Max parameters (millions, 0 = no limit)")
                rerank = gr.Number(value=0, precision=0, label="Re-rank the top k with forward passes (0 = off)")
                rank_button = gr.Button("Rank", variant="primary", elem_id="rank-button")
        status = gr.Markdown(elem_id="status")
        table = gr.Dataframe(headers=TABLE_COLUMNS, label="Shortlist", interactive=False, elem_id="shortlist")
        with gr.Row():
            scores_plot = gr.Plot(label="Scores")
            size_plot = gr.Plot(label="Size versus score")
        shortlist_json = gr.State("")
        with gr.Accordion("Push the shortlist to a Hub collection", open=False):
            title = gr.Textbox(label="Collection title")
            namespace = gr.Textbox(label="Namespace (default: your user)")
            token = gr.Textbox(label="Hub write token (used once, never stored)", type="password")
            push_button = gr.Button("Push to collection")
            push_status = gr.Markdown()
        rank_button.click(
            rank_task,
            [source_kind, dataset_id, upload, labels, modality, candidates, top_k, max_params, rerank],
            [table, scores_plot, size_plot, status, shortlist_json],
            api_name="rank",
        )
        push_button.click(push_collection, [shortlist_json, title, namespace, token], push_status, api_name="push")
    return demo


demo = build_demo()

if __name__ == "__main__":
    demo.launch()
