"""The declaration of a job's parameters, in the job itself.

A job dataclass (ServeJob, TrainModelJob...) declares each field that a dialog shows with
`param()`: the parameter's name, label, default, range or choices and help live in the
field's metadata, beside the default the Python API uses, so the two cannot drift. The
algorithm layer (algorithms/binder.py) builds the QGIS parameters from these
declarations, reads a run's values into a job, and names a parameter from a field.

mypy takes a field declared with `param` for one with a default, even when it has none
(a required parameter): a required field after it carries `# type: ignore[misc]`.

Nothing here imports QGIS: the engine, the Python API and the tests read the same
declarations."""
import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, Iterator, Optional, Tuple, Type, Union

if TYPE_CHECKING:                   # engine/model.py imports numpy: not at QGIS start-up
    from .model import Job

    #: a job class or one of its jobs
    AnyJob = Union[Job, Type[Job]]

#: a field without a default (the caller of the Python API must give it)
REQUIRED: Any = dataclasses.MISSING

#: what a declared field is in a dialog
KINDS = ("int", "float", "bool", "str", "choice", "raster", "vector", "field", "model",
         "file",     # a file to read, of `filter` (a classifier file)
         "raster_out", "vector_out", "file_out", "folder_out",
         "bands",    # a band list typed as 1,2,3 or 1-3: [1, 2, 3]; empty: None
         "names",    # comma-separated names: a list
         "windows")  # odd window sizes typed as 3,7,15: [3, 7, 15]; empty: []


@dataclass(frozen=True)
class Param:
    name: str                      # the parameter's name: SAMPLES, VALID_FRACTION...
    label: str                     # what the dialog shows
    kind: str                      # one of KINDS
    default: Any = None            # the dialog's default and the Python API's
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    #: a choice's names (what the job holds) -> the labels the dialog shows
    choices: Tuple[Tuple[str, str], ...] = ()
    help: str = ""
    advanced: bool = False
    optional: bool = False
    #: what else the dialog needs: a file filter, a vector's geometry types ("point",
    #: "polygon"), a field's parent parameter, a destination created by default; numbered:
    #: the numbered sources (`name` + 1..MAX_SOURCES, `label` with {i})...
    extra: Tuple[Tuple[str, Any], ...] = ()

    def option(self, key: str, default: Any = None) -> Any:
        return dict(self.extra).get(key, default)

    def choice_names(self) -> Tuple[str, ...]:
        return tuple(k for k, _ in self.choices)


def param(name: str, label: str, kind: str, default: Any = REQUIRED, *,
          minimum: Optional[float] = None, maximum: Optional[float] = None,
          choices: Any = (), help: str = "", advanced: bool = False,
          optional: Optional[bool] = None, **extra: Any) -> Any:
    """A dataclass field declaring its parameter. `default` is the field's default and the
    dialog's (REQUIRED: none; a list is copied for each job). `choices`: names, or a dict
    of names to labels. `optional`: by default, whether the default is None."""
    if kind not in KINDS:
        raise ValueError(f"unknown parameter kind {kind!r}")
    if isinstance(choices, dict):
        pairs = tuple(choices.items())
    else:
        pairs = tuple((c, c) for c in choices)
    shown = None if default is REQUIRED else default
    spec = Param(name, label, kind, shown, minimum, maximum, pairs, help, advanced,
                 default is None if optional is None else optional,
                 tuple(sorted(extra.items())))
    metadata = {"param": spec}
    if default is REQUIRED:
        return field(metadata=metadata)
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def declared(job: "AnyJob") -> Iterator[Tuple[str, Param]]:
    """(field name, Param) of each declared field of a job class or job, in field order."""
    for f in dataclasses.fields(job):
        spec = f.metadata.get("param")
        if spec is not None:
            yield f.name, spec


def declaration(job: "AnyJob", name: str) -> Param:
    """The Param of field `name` of a job class."""
    for f in dataclasses.fields(job):
        if f.name == name and "param" in f.metadata:
            return f.metadata["param"]
    raise KeyError(f"{getattr(job, '__name__', job)} declares no parameter '{name}'")


def param_name(job: "AnyJob", name: str) -> str:
    """The parameter that field `name` of a job is: what an error about it names."""
    return declaration(job, name).name


class Names:
    """The parameter names of a job's fields, for errors and logs that name them:
    ``N = names(TrainModelJob); N.epochs == "EPOCHS"``. Code below the algorithm layer
    names a parameter through its field, never by spelling it."""

    def __init__(self, job: "AnyJob") -> None:
        self._job = job

    def __getattr__(self, name: str) -> str:
        if name.startswith("_"):
            raise AttributeError(name)
        return param_name(self._job, name)


def names(job: "AnyJob") -> Names:
    return Names(job)


def numbered(prefix: str, index: int, setting: Any = "") -> str:
    """A numbered source's parameter, or one of its settings (a Param a source class
    declares, or its name): numbered("TRAIN_SOURCE", 0) == "TRAIN_SOURCE1",
    numbered(N.sources, 1, "RFIELD") == "SOURCE2_RFIELD"; a setting declared `before` its
    source: "OUTPUT_SOURCE2"."""
    key = f"{prefix}{index + 1}"
    if isinstance(setting, Param):
        return setting_of(key, setting)
    return key + (f"_{setting}" if setting else "")


def setting_of(source: str, setting: Param) -> str:
    """The parameter of a source's setting: SOURCE2 and RFIELD give SOURCE2_RFIELD, and a
    setting declared `before` its source (OUTPUT) gives OUTPUT_SOURCE2."""
    if setting.option("before"):
        return f"{setting.name}_{source}"
    return f"{source}_{setting.name}"


def defaults(job: "AnyJob") -> Dict[str, Any]:
    """{field name: default} of the declared fields that have one."""
    out = {}
    for f in dataclasses.fields(job):
        if "param" not in f.metadata:
            continue
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


# parameters several jobs share, declared once

def seed() -> Any:
    return param("SEED", "Random seed", "int", 0, minimum=0, maximum=2 ** 31 - 1)


def trust_model(what: str = "the model") -> Any:
    return param(
        "TRUST_MODEL", f"Trust {what}: run it even if it can act outside the computation "
        "(files, network, Python code)", "bool", False, advanced=True,
        help="A model is code. Before loading one, rsdl checks that it only computes; a "
        "model that writes or reads files, calls Python or uses the network is refused. "
        "Tick this only for a model whose origin you know and trust.")


def resume() -> Any:
    return param("RESUME", "Resume an interrupted run of the same job (keep finished chunks)",
                 "bool", True, advanced=True,
                 help="Finished chunks are kept beside the output until it is complete; "
                 "running the same job again after a crash or a cancel continues from them. "
                 "Untick to start over and keep nothing.")


def scheduler(what: str) -> Any:
    return param("SCHEDULER", "Dask scheduler address (empty = run in this process)", "str",
                 "", optional=True, advanced=True,
                 help=f"For example tcp://127.0.0.1:8786 (rsdl-scheduler, rsdl-worker): "
                 f"{what}. See docs/cluster.md.")


def chunk_scheduler() -> Any:
    """SCHEDULER of a chunked run (serving, classification)."""
    return scheduler("the chunks are computed by the cluster's workers, which read the "
                     "inputs and the model from the same paths (a shared folder)")


def tile_size(advanced: bool = False) -> Any:
    return param("TILE_SIZE", "Tile size (pixels, 0 = automatic)", "int", 0, minimum=0,
                 maximum=16384, advanced=advanced)


def memory_mb() -> Any:
    return param("MEMORY_MB", "Memory budget for automatic tiles (MB)", "int", 512,
                 minimum=16, maximum=1 << 20, advanced=True)
