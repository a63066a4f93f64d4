"""One worker's training process of DISTRIBUTION workers (models/distributed.py starts
it on each Dask worker): ``python -m rsdl_qgis.models.train_worker JOB.json``, with
TensorFlow's TF_CONFIG in the environment. No qgis import here."""
import json
import sys

from ..deps import require_tensorflow
from ..errors import RsdlError
from .distributed import WorkerLines
from .training import TrainModelJob, train_model


def task_main(path: str) -> int:
    """`python -m rsdl_qgis.models.train_worker JOB.json`, TF_CONFIG in the environment:
    one worker of a MultiWorkerMirroredStrategy training. Its last line on stdout is
    {"result": ...} or {"error": ...}."""
    tf = require_tensorflow()
    # the strategy before any other TensorFlow call (TensorFlow's rule)
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    resolver = strategy.cluster_resolver
    rank = int(resolver.task_id)
    size = len(resolver.cluster_spec().as_dict().get("worker", [])) or 1
    with open(path, encoding="utf-8") as fh:
        job = TrainModelJob.from_dict(json.load(fh))
    try:
        result = train_model(job, WorkerLines(rank), worker=(strategy, rank, size))
    except RsdlError as exc:
        print(json.dumps({"error": {"kind": type(exc).__name__, "message": exc.message,
                                    "param": exc.param}}), flush=True)
        return 1
    print(json.dumps({"result": {k: v for k, v in result.items()
                                 if isinstance(v, (int, float, str, bool, type(None)))}}),
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(task_main(sys.argv[1]))
