"""Shared parts of the Streamlit pages: page set-up, the model picker, per-session memo, errors in the page."""
from __future__ import annotations

from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import streamlit as st
import support

from toolkit import load_predictor
from toolkit.errors import ToolkitError
from toolkit.predict import COCO_MODEL, Predictor, coco_weights_file

COCO = "coco"  # the model "path" of torchvision's COCO detector


def setup(title: str, about: str) -> None:
    st.set_page_config(page_title=title, layout="wide")
    st.title(title)
    st.caption(about)


def message(error: BaseException) -> str:
    """The first line of a toolkit error: what is wrong and how to fix it."""
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


@contextmanager
def shown_errors() -> Iterator[None]:
    """Bad input (any ToolkitError) becomes a red message in the page; the rest of the page still runs."""
    try:
        yield
    except ToolkitError as e:
        st.error(message(e))


def memo(key: tuple, make: Callable[[], Any], keep: int = 4) -> Any:
    """``make()`` once per key in this browser session, never shared between sessions; the last ``keep``
    values are kept for each kind (the key's first item)."""
    store: OrderedDict = st.session_state.setdefault(f"_memo-{key[0]}", OrderedDict())
    if key not in store:
        store[key] = make()
        while len(store) > keep:
            store.popitem(last=False)
    store.move_to_end(key)
    return store[key]


@st.cache_resource(max_entries=4, show_spinner="Loading the model ...")
def _load(path: str, mtime: float, overrides: tuple[str, ...] = ()) -> Any:
    """A Predictor, shared by the sessions (keyed by path and file times, so a retrained or newly exported run is
    reloaded); ``overrides``: ``a.b=c`` settings over the run's config. A checkpoint with a ``toolkit export`` beside
    it runs on onnxruntime."""
    if path == COCO:
        return Predictor.coco_detector()
    return Predictor.from_checkpoint(path, overrides=list(overrides)) if overrides else load_predictor(path)


def _mtime(path: str) -> float:
    """The newest modification time of ``path`` and of the ``.onnx`` export beside it (0 for the COCO model)."""
    if path == COCO:
        return 0.0
    files = [Path(path), Path(path).with_suffix(".onnx")]
    return max(p.stat().st_mtime for p in files if p.exists())


def with_overrides(predictor: Any, overrides: list[str]) -> Any:
    """The same model with ``a.b=c`` settings over its config (loaded once, shared like ``pick_model``'s)."""
    return _load(predictor.source, _mtime(predictor.source), tuple(overrides)) if overrides else predictor


def pick_model(task: str | tuple[str, ...], how_to_make: str, coco: bool = False) -> Any | None:
    """Sidebar: a run of ``task`` (or of any of several) found under ``$TOOLKIT_RUNS``, a checkpoint path or
    (``coco``) torchvision's COCO detector when cached. Returns the Predictor, or None with the reason shown."""
    tasks = (task,) if isinstance(task, str) else task
    runs = support.find_checkpoints(tasks)
    choices = ["Trained run"] * bool(runs) + ["Checkpoint path"] + ["COCO-pretrained (torchvision)"] * coco
    st.sidebar.header("Model")
    source = st.sidebar.radio("Model source", choices, key=f"model-source-{tasks[0]}")
    if not runs:
        folders = ", ".join(f"{support.runs_dir()}/{t}/" for t in tasks)
        st.sidebar.info(f"No {' or '.join(tasks)} run found under {folders}. {how_to_make}")
    if source == "Trained run":
        path = str(st.sidebar.selectbox("Run", runs, format_func=lambda p: support.run_label(Path(p))))
    elif source == "Checkpoint path":
        path = st.sidebar.text_input("Checkpoint (.pt, or .onnx from `toolkit export`)",
                                     placeholder=f"runs/{tasks[0]}/exp/weights/best.pt").strip()
    else:
        if coco_weights_file() is None:
            st.sidebar.info(f"torchvision's COCO weights are not in the cache; run `toolkit weights fetch "
                            f"{COCO_MODEL}`.")
            return None
        path = COCO
    if not path:
        return None
    with shown_errors():
        if path != COCO and not Path(path).exists():
            raise ToolkitError(f"checkpoint not found: {path}")
        return support.check_task(_load(path, _mtime(path)), task)
    return None
