"""The learned hair-attribute model: one ONNX graph, one probability output per attribute.

The model file (``vrhub/models/hair_attributes.onnx``) and its metadata (``hair_attributes.json``:
class order per output, feature names and version, training data hash, metrics) are written by
``scripts/train_hair_attributes.py``. At run time onnxruntime executes it with the CUDA provider when
one is available, else on the CPU.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path

import numpy as np

#: Classes per learned attribute. Parting classes are in the *viewer's* convention of the labels
#: (``left`` = left half of the image); the stage converts them to the subject's own side.
ATTRIBUTE_CLASSES: dict[str, list[str]] = {
    "length": ["bald", "buzz", "short", "medium", "long"],
    "texture": ["straight", "wavy", "curly", "coily"],
    "fringe": ["no", "yes"],
    "parting": ["none", "left", "centre", "right"],
    "baldness": ["none", "receding", "crown_or_top", "full"],
    "colour": ["black", "dark_brown", "light_brown", "blonde", "red", "grey", "white"],
}

MODEL_DIR = Path(__file__).resolve().parents[1] / "models"
MODEL_PATH = MODEL_DIR / "hair_attributes.onnx"
META_PATH = MODEL_DIR / "hair_attributes.json"


def merge_classifier_models(
    models: Mapping[str, object],
    n_features: int,
    input_name: str = "features",
    columns: Mapping[str, list[int]] | None = None,
):
    """Merge per-attribute skl2onnx classifiers into one graph.

    models : attribute -> onnx.ModelProto with one float input and a ``probabilities`` output
        (zipmap disabled).
    columns : attribute -> the feature columns its classifier reads, in order (a Gather node picks
        them from the full vector); an attribute not named reads all ``n_features``.
    Returns an onnx.ModelProto with the input ``features`` (n, n_features) float32 and one output
    ``<attribute>_probabilities`` (n, k) float32 per attribute.
    """
    import onnx
    from onnx import TensorProto, compose, helper, numpy_helper

    nodes, inits, outputs = [], [], []
    opsets: dict[str, int] = {}
    for attr, model in models.items():
        m = compose.add_prefix(model, prefix=f"{attr}_")
        g = m.graph
        cols = (columns or {}).get(attr)
        if cols is None:
            nodes.append(helper.make_node("Identity", [input_name], [g.input[0].name], name=f"{attr}_in"))
        else:
            inits.append(numpy_helper.from_array(np.asarray(cols, np.int64), name=f"{attr}_columns"))
            nodes.append(
                helper.make_node(
                    "Gather", [input_name, f"{attr}_columns"], [g.input[0].name], axis=1, name=f"{attr}_in"
                )
            )
        nodes.extend(g.node)
        inits.extend(g.initializer)
        prob = next(o for o in g.output if o.name.endswith("probabilities"))
        outputs.append(prob)
        for op in m.opset_import:
            opsets[op.domain] = max(opsets.get(op.domain, 0), op.version)
    graph = helper.make_graph(
        nodes,
        "vrhub_hair_attributes",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [None, n_features])],
        outputs,
        initializer=inits,
    )
    merged = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()])
    merged.ir_version = min(max(m.ir_version for m in models.values()), 9)
    onnx.checker.check_model(merged)
    return merged


def onnx_providers() -> list[str]:
    """CUDAExecutionProvider when onnxruntime offers it, then the CPU."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


class HairAttributeModel:
    """Runs the merged ONNX graph. ``predict(vector)`` -> {attribute: {class: probability}}."""

    def __init__(self, path: Path = MODEL_PATH, classes: Mapping[str, list[str]] | None = None):
        import onnxruntime as ort

        if classes is None:
            meta = json.loads(Path(path).with_suffix(".json").read_text())
            classes = meta["classes"]
            self.meta = meta
        else:
            self.meta = {"classes": dict(classes)}
        self.classes = {a: list(c) for a, c in classes.items()}
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), sess_options=opts, providers=onnx_providers())
        self.outputs = [o.name for o in self.session.get_outputs()]

    def predict(self, vector: np.ndarray) -> dict[str, dict[str, float]]:
        """vector : (d,) float32 features. Returns class probabilities per attribute."""
        x = np.asarray(vector, np.float32).reshape(1, -1)
        results = self.session.run(self.outputs, {"features": x})
        out: dict[str, dict[str, float]] = {}
        for name, probs in zip(self.outputs, results, strict=True):
            attr = name[: -len("_probabilities")]
            out[attr] = {c: float(p) for c, p in zip(self.classes[attr], np.asarray(probs)[0], strict=True)}
        return out


_lock = threading.Lock()
_model: HairAttributeModel | None = None


def default_model() -> HairAttributeModel:
    """The packaged model, loaded once per process."""
    global _model
    with _lock:
        if _model is None:
            _model = HairAttributeModel()
        return _model
