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
def _load(path: str, mtime: float) -> Any:
    """A Predictor, shared by the sessions (keyed by path and file time, so a retrained run is reloaded)."""
    return Predictor.coco_detector() if path == COCO else load_predictor(path)


def pick_model(task: str, how_to_make: str, coco: bool = False) -> Any | None:
    """Sidebar: a run found under ``$TOOLKIT_RUNS``, a checkpoint path or (``coco``) torchvision's COCO detector
    when cached. Returns the Predictor, or None with the reason shown."""
    runs = support.find_checkpoints(task)
    choices = ["Trained run"] * bool(runs) + ["Checkpoint path"] + ["COCO-pretrained (torchvision)"] * coco
    st.sidebar.header("Model")
    source = st.sidebar.radio("Model source", choices, key=f"model-source-{task}")
    if not runs:
        st.sidebar.info(f"No {task} run found under {support.runs_dir()}/{task}/. {how_to_make}")
    if source == "Trained run":
        path = str(st.sidebar.selectbox("Run", runs, format_func=lambda p: str(Path(p).parent.parent)))
    elif source == "Checkpoint path":
        path = st.sidebar.text_input("Checkpoint (.pt)", placeholder=f"runs/{task}/exp/weights/best.pt").strip()
    else:
        if coco_weights_file() is None:
            st.sidebar.info(f"torchvision's COCO weights are not in the cache; run `toolkit weights fetch "
                            f"{COCO_MODEL}`.")
            return None
        path = COCO
    if not path:
        return None
    with shown_errors():
        if path != COCO and not Path(path).is_file():
            raise ToolkitError(f"checkpoint not found: {path}")
        mtime = 0.0 if path == COCO else Path(path).stat().st_mtime
        return support.check_task(_load(path, mtime), task)
    return None
