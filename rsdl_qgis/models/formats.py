"""The model formats rsdl reads: one table, FORMATS, of how each is recognised, checked
and loaded, and what the model parameters' file filter and help say of it.

Adding a format is one entry here plus its adapter module (a ModelAdapter subclass:
engine/model.py's Model protocol). The loader imports its module only when a model of
that format is loaded: QGIS reads this table when it loads the plugin, with no numpy,
TensorFlow or ONNX Runtime imported (docs/extending.md)."""
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional, Tuple

from ..engine.jobs import MODEL
from ..errors import ModelError

if TYPE_CHECKING:                        # engine.model imports numpy: not at QGIS start-up
    from ..engine.model import LoadedModel


@dataclass(frozen=True)
class ModelFormat:
    key: str
    #: how the help and the errors name a model of this format ("a .keras file")
    noun: str
    #: its pattern in the model parameters' file filter ("*.keras", "saved_model.pb")
    pattern: str
    #: a folder format (the file picker gives its `pattern` file) or a file format
    folder: bool
    #: whether a path (a model folder, or a file) is of this format
    matches: Callable[[str], bool]
    #: the scan of what the model may run (models/safety.py), skipped when trusted:
    #: (path, param, trusted) -> anything the loader needs; raises ModelError for a model
    #: that acts outside the computation
    check: Callable[[str, str, bool], Any]
    #: (path, param, trusted, what check returned) -> a ModelAdapter
    load: Callable[[str, str, bool, Any], "LoadedModel"]
    #: what Apply a model's help says of it
    help: str = ""
    #: rsdl:trainmodel can train a model of this format further (a Keras model)
    trainable: bool = False


def _is_keras(path: str) -> bool:
    return os.path.isfile(path) and path.endswith(".keras")


def _is_onnx(path: str) -> bool:
    return os.path.isfile(path) and path.lower().endswith(".onnx")


def _is_saved_model(path: str) -> bool:
    return os.path.isdir(path)


def _check_keras(path: str, param: str, trusted: bool) -> None:
    from . import safety
    safety.check_keras_file(path, param, trusted)


def _load_keras(path: str, param: str, trusted: bool, checked: Any) -> "LoadedModel":
    from ..deps import require_tensorflow
    from .adapters import KerasModel
    return KerasModel(path, require_tensorflow(), safe_mode=not trusted, param=param)


def _check_onnx(path: str, param: str, trusted: bool) -> None:
    """ONNX Runtime's session is made from the file: its operators are checked on the
    parsed file by the adapter itself (safety.check_onnx), before the session exists."""
    return None


def _load_onnx(path: str, param: str, trusted: bool, checked: Any) -> "LoadedModel":
    from .onnx_model import OnnxModel
    return OnnxModel(path, param, trusted)


def _check_saved_model(path: str, param: str, trusted: bool) -> Any:
    """The parsed meta graph, scanned unless trusted."""
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise ModelError(f"'{path}' is not a SavedModel folder: it has no saved_model.pb", param)
    from ..deps import require_tensorflow
    from . import safety
    require_tensorflow()        # first: the scan parses with TensorFlow's own protobuf
    return safety.check_saved_model(path, param, trusted)


def _load_saved_model(path: str, param: str, trusted: bool, checked: Any) -> "LoadedModel":
    """A TF2 object graph with signatures (TF2Model), else a TF1 graph addressed by tensor
    names (TF1Model, OTBTF's models)."""
    from ..deps import require_tensorflow
    from .adapters import TF1Model, TF2Model
    tf = require_tensorflow()
    meta_graph = checked
    if len(meta_graph.object_graph_def.nodes):       # a TF2 object graph, not a TF1 graph
        try:
            loaded = tf.saved_model.load(path)
        except Exception as exc:
            raise ModelError(f"cannot load the SavedModel '{path}': {exc}", param) from exc
        if len(loaded.signatures):
            return TF2Model(path, tf, loaded)
    return TF1Model(path, tf, graph_def=None if trusted else meta_graph.graph_def, param=param)


#: in the file filter's order; a path is loaded by the first format that matches it
FORMATS: Tuple[ModelFormat, ...] = (
    ModelFormat("keras", "a .keras file", "*.keras", False, _is_keras, _check_keras,
                _load_keras, "A .keras file is loaded in Keras's safe mode.", trainable=True),
    ModelFormat("onnx", "an .onnx file", "*.onnx", False, _is_onnx, _check_onnx, _load_onnx,
                "ONNX models made to Deepness's contract are served as Deepness serves them "
                "(pixels / 255 and its standardisation, class names, class threshold, tile "
                "overlap; a regression model gives values, a super-resolution model a finer "
                "map); object detection models are refused."),
    ModelFormat("savedmodel", "a SavedModel folder (holding saved_model.pb)",
                "saved_model.pb", True, _is_saved_model, _check_saved_model,
                _load_saved_model, "In the dialog, choose a SavedModel's saved_model.pb. "
                "TF1 SavedModels (OTBTF's) are addressed by tensor names, TF2 SavedModels "
                "by signature keys.", trainable=True),
)


def formats(trainable: bool = False) -> Tuple[ModelFormat, ...]:
    """Every format, or those rsdl:trainmodel can train further."""
    return tuple(f for f in FORMATS if f.trainable or not trainable)


def file_filter(trainable: bool = False) -> str:
    """The model parameters' file filter: 'Models (*.keras *.onnx saved_model.pb);;...'."""
    patterns = " ".join(f.pattern for f in formats(trainable))
    return f"Models ({patterns});;All files (*)"


def nouns(trainable: bool = False) -> str:
    """'a SavedModel folder (holding saved_model.pb), a .keras file or an .onnx file'."""
    words = [f.noun for f in sorted(formats(trainable), key=lambda f: not f.folder)]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def help_text() -> str:
    """Apply a model's help on MODEL: what it takes, then what each format gets."""
    return (f"{nouns()}. "
            + " ".join(f.help for f in sorted(FORMATS, key=lambda f: not f.folder) if f.help))


def format_of(path: str) -> Optional[ModelFormat]:
    """The format of a model path (a folder, or a file), None when none matches."""
    return next((f for f in FORMATS if f.matches(path)), None)


def load(path: str, param: str = MODEL, trusted: bool = False) -> "LoadedModel":
    """The adapter of a model path. Unless `trusted`, what the model may run is scanned
    first (its format's `check`): a model acting outside the computation is refused, not
    loaded."""
    from .metadata import model_folder
    if not path:
        raise ModelError(f"no model given: choose {nouns()}", param)
    path = model_folder(path)
    if not os.path.exists(path):
        raise ModelError(f"'{path}' does not exist", param)
    fmt = format_of(path)
    if fmt is None:
        raise ModelError(f"'{path}' is not a model: choose {nouns()}", param)
    return fmt.load(path, param, trusted, fmt.check(path, param, trusted))
