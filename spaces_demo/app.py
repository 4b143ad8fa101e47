"""hf-spider Space: describe a dataset, rank the candidate models, plot them, push the shortlist to a collection.

A thin UI over ``hf_spider.pipeline("model-selection")``: every rule (reading the task, filters, ordering,
re-ranking, the collection push) lives in the library, so the Space ranks exactly as the CLI and the pipeline do. It
runs offline on the bundled candidate pool. The task comes from whichever one field the user filled in (a Hub dataset
id, an uploaded file, or label names); the modality is asked for only for label names (a dataset's is detected), and
is never assumed. The Hub token typed into the push box is used for that one request and never stored or logged.
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

#: What the user may fill in to describe the task, in the order the form shows them.
TASK_FIELDS = ("Hub dataset id", "dataset file", "label names")
MODALITIES = ("image", "text")
#: Largest upload unpacked from a zip, so a zip bomb cannot fill the Space's disk.
MAX_UNZIPPED_BYTES = 512 * 2**20


@lru_cache(maxsize=1)
def _selector() -> Any:
    """One pipeline per process: building it loads the ranker and its records."""
    from hf_spider.pipeline import pipeline

    return pipeline("model-selection")


def rank_task(
    dataset_id: str,
    upload: str | None,
    labels: str,
    modality: str | None,
    candidates: str,
    top_k: float,
    max_params_m: float,
    rerank: float,
    progress: gr.Progress = gr.Progress(),  # noqa: B008  (Gradio injects the tracker through this default)
) -> tuple[Any, Any, Any, str, str]:
    """Rank one task: the table, the two figures, a status (what was ranked, re-ranked, and the shortlist's notes),
    and the shortlist as JSON for the push."""
    progress(0.1, desc="reading the task")
    task = task_input(dataset_id, upload, labels, modality)
    options: dict[str, Any] = {"top_k": int(top_k), "candidates": _candidates(candidates)}
    if max_params_m:
        options["max_parameters"] = int(max_params_m * 1e6)
    if rerank:
        if isinstance(task, dict):
            raise gr.Error("re-ranking runs the models on samples: give a dataset, or set re-rank to 0")
        options["rerank"] = int(rerank)
    progress(0.4, desc="re-ranking with forward passes" if rerank else "scoring the candidates")
    try:
        shortlist = _selector()(task, **options)
    except HfSpiderError as exc:
        raise gr.Error(str(exc)) from exc
    progress(0.9, desc="plotting")
    import pandas as pd

    header, rows = shortlist.display_rows()
    table = pd.DataFrame(rows, columns=header)
    return table, shortlist.plot_scores(), shortlist.plot_size_vs_score(), status_text(shortlist), shortlist.to_json()


def status_text(shortlist: Any) -> str:
    """What was ranked, what re-ranking really did (read from the entries: which estimator ran, which models
    failed), and the shortlist's notes (what the value column means, an unpinned pool, inputs left out)."""
    lines = [f"Ranked {shortlist.metadata.get('candidates', '?')} candidates for **{shortlist.display_names[0]}**."]
    if "rerank" in shortlist.metadata:
        ran = sorted({name for e in shortlist for name in e.estimator_scores})
        reranked = sum(bool(e.estimator_scores) for e in shortlist)
        failed = [e for e in shortlist if e.error]
        # a re-ranking where nothing ran raises NothingRerankedError, shown as the error with its fix instead
        lines.append(f"Re-ranked {reranked} with forward passes, scored by {', '.join(ran)}.")
        if failed:
            lines.append(
                f"{len(failed)} could not be run and are listed last with the reason: "
                + ", ".join(e.model_id for e in failed)
                + "."
            )
    lines += [f"Note: {note}" for note in shortlist.notes]
    return "\n\n".join(lines)


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


def task_input(dataset_id: str, upload: str | None, labels: str, modality: str | None) -> Any:
    """The task from the one field the user filled in; a clear error when none, or more than one, is."""
    names = [n.strip() for n in (labels or "").replace("\n", ",").split(",") if n.strip()]
    given = dict(zip(TASK_FIELDS, (bool((dataset_id or "").strip()), bool(upload), bool(names)), strict=True))
    filled = [field for field, present in given.items() if present]
    if not filled:
        raise gr.Error("describe the task: type a Hub dataset id, upload a dataset file, or type its label names")
    if len(filled) > 1:
        raise gr.Error(f"fill in only one of {', '.join(filled)}; clear the others")
    if given["Hub dataset id"]:
        return dataset_id.strip()
    if upload:
        return unpacked(Path(upload))
    if modality not in MODALITIES:
        raise gr.Error("are the label names for an image or a text task? pick the modality")
    return {"labels": names, "modality": modality, "name": "labels"}


def unpacked(path: Path) -> str:
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
        target = Path(tempfile.mkdtemp(prefix="hf_spider_upload_")) / path.stem
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


def _show_for_task(dataset_id: str, upload: str | None, labels: str) -> tuple[Any, Any]:
    """The modality question only for label names; re-ranking only when there are samples to run models on."""
    has_samples = bool((dataset_id or "").strip()) or bool(upload)
    return gr.update(visible=bool((labels or "").strip())), gr.update(visible=has_samples)


def build_demo() -> gr.Blocks:
    """The Blocks app (tests launch it on 127.0.0.1; the Space runs it as ``app.py``)."""
    with gr.Blocks(title="hf-spider: which model should I fine-tune?") as demo:
        gr.Markdown(
            "# hf-spider\nRank pre-trained Hub models for your dataset without fine-tuning them all "
            "(Model Spider, NeurIPS 2023). Works offline on the bundled pool of about 2,300 Hub models "
            "(TransferGraph, timm, MTEB).\n\n"
            "**Describe your task with one of the three fields below.**"
        )
        with gr.Row():
            with gr.Column():
                dataset_id = gr.Textbox(label="Hub dataset id", placeholder="rotten_tomatoes", elem_id="dataset-id")
                upload = gr.File(
                    label="... or a dataset file: CSV / JSON / Parquet, or a zip of an image folder (one sub-folder "
                    "per class)",
                    file_types=[".csv", ".json", ".jsonl", ".parquet", ".zip"],
                    elem_id="upload",
                )
                labels = gr.Textbox(
                    label="... or just the label names (comma-separated)",
                    placeholder="cat, dog, bird",
                    elem_id="labels",
                )
                modality = gr.Radio(
                    list(MODALITIES),
                    value=None,
                    label="Are these labels for images or for texts?",
                    visible=False,
                    elem_id="modality",
                )
            with gr.Column():
                candidates = gr.Dropdown(
                    ["bundled", "Hub: image-classification", "Hub: text-classification"],
                    value="bundled",
                    label="Candidate pool (the bundled one works offline)",
                )
                top_k = gr.Slider(1, 50, value=10, step=1, label="How many models to list")
                max_params = gr.Number(value=0, label="Max parameters (millions, 0 = no limit)")
                rerank = gr.Number(
                    value=0,
                    precision=0,
                    label="Re-rank the best k with forward passes on your data (0 = off)",
                    visible=False,
                    elem_id="rerank",
                )
                rank_button = gr.Button("Rank", variant="primary", elem_id="rank-button")
        status = gr.Markdown(elem_id="status")
        table = gr.Dataframe(label="Shortlist", interactive=False, wrap=True, elem_id="shortlist")
        with gr.Row():
            scores_plot = gr.Plot(label="Scores", elem_id="scores-plot")
            size_plot = gr.Plot(label="Size versus score", elem_id="size-plot")
        shortlist_json = gr.State("")
        with gr.Accordion("Push the shortlist to a Hub collection", open=False):
            title = gr.Textbox(label="Collection title")
            namespace = gr.Textbox(label="Namespace (default: your user)")
            token = gr.Textbox(label="Hub write token (used once, never stored)", type="password")
            push_button = gr.Button("Push to collection")
            push_status = gr.Markdown()
        for field in (dataset_id, upload, labels):
            field.change(_show_for_task, [dataset_id, upload, labels], [modality, rerank], api_name=False)
        rank_button.click(
            rank_task,
            [dataset_id, upload, labels, modality, candidates, top_k, max_params, rerank],
            [table, scores_plot, size_plot, status, shortlist_json],
            api_name="rank",
        )
        push_button.click(push_collection, [shortlist_json, title, namespace, token], push_status, api_name="push")
    return demo


demo = build_demo()

if __name__ == "__main__":
    demo.launch()
