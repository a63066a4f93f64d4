"""Training on several workers (DISTRIBUTION workers: TensorFlow's
MultiWorkerMirroredStrategy on the workers of a Dask cluster) and on this machine's GPUs.
The oracle is a one-process training of the same job: the same model files, a model that
serves, and a validation accuracy within the noise of two trainings."""
import json
import os

import pytest

from rsdl_qgis.api import ServeJob, ServeSource, serve_model, train_model
from rsdl_qgis.errors import ParameterError
from tests.log import Log
from tests.unit.test_training import job, patches  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.tensorflow, pytest.mark.filterwarnings("ignore")]


SETTINGS = dict(architecture="cnn", epochs=4, batch_size=32, seed=3)


def test_two_workers_give_the_model_files_of_one_and_its_accuracy(patches, tmp_path,  # noqa: F811
                                                                  dask_cluster):
    one = train_model(job(patches, tmp_path / "one", **SETTINGS))
    log = Log()
    two = train_model(job(patches, tmp_path / "two", distribution="workers",
                          scheduler=dask_cluster, output_report=str(tmp_path / "two.html"),
                          **SETTINGS), log)
    text = log.text()
    assert "DISTRIBUTION: 2 worker(s) of the Dask cluster" in text
    assert "Training on 2 workers (MultiWorkerMirroredStrategy): batches of 32, 16 per " \
           "worker" in text
    assert "epoch 4/4" in text and two["WORKERS"] == 2
    assert "listens on the port above on every interface of its machine, " \
           "unauthenticated" in text
    # the same files, the same metadata but for what training measured
    assert sorted(os.listdir(tmp_path / "one")) == sorted(os.listdir(tmp_path / "two"))
    m1, m2 = (json.loads((tmp_path / d / "rsdl_metadata.json").read_text())
              for d in ("one", "two"))
    measured = {"history", "metrics", "best_epoch", "best_val_loss"}
    assert {k: v for k, v in m1.items() if k not in measured} == \
        {k: v for k, v in m2.items() if k not in measured}
    assert "Training report" in (tmp_path / "two.html").read_text()
    # within the noise of two trainings of 4 epochs on 700 patches
    print(f"validation OA: one process {one['OA']:.3f}, two workers {two['OA']:.3f}")
    assert two["OA"] > 0.6 and abs(one["OA"] - two["OA"]) < 0.12
    # the model serves, from its metadata alone
    res = serve_model(ServeJob(str(tmp_path / "two"), [ServeSource(patches["image"], None)],
                               str(tmp_path / "map.tif")))
    assert res["WIDTH"] > 0


def test_workers_needs_a_scheduler_and_enough_workers(patches, tmp_path,  # noqa: F811
                                                      dask_cluster):
    with pytest.raises(ParameterError) as e:
        train_model(job(patches, tmp_path / "m", distribution="workers", **SETTINGS))
    assert e.value.param == "SCHEDULER"
    with pytest.raises(ParameterError) as e:
        train_model(job(patches, tmp_path / "m", distribution="workers", workers=5,
                        scheduler=dask_cluster, **SETTINGS))
    assert e.value.param == "WORKERS" and "has 2 worker(s)" in str(e.value)
    assert not (tmp_path / "m").exists()


def test_gpus_without_a_gpu_trains_on_the_cpu_and_says_so(patches, tmp_path):  # noqa: F811
    log = Log()
    res = train_model(job(patches, tmp_path / "m", distribution="gpus",
                          **dict(SETTINGS, epochs=1)), log)
    assert "has no GPU TensorFlow can use: training on the CPU" in log.text()
    assert res["EPOCHS"] == 1 and (tmp_path / "m" / "saved_model.pb").exists()


def test_model_files_from_a_worker_stay_in_the_model_folder(tmp_path):
    """The first worker's files are written under OUTPUT's temporary folder only: a name
    that climbs out (or is absolute) is refused and nothing lands outside."""
    from rsdl_qgis.errors import RsdlError
    from rsdl_qgis.models.distributed import write_files
    folder = tmp_path / "model"
    folder.mkdir()
    write_files({"variables": None, "variables/a.index": b"1", "rsdl.json": b"{}"},
                str(folder))
    assert (folder / "variables" / "a.index").read_bytes() == b"1"
    for bad in ("../evil.py", "variables/../../evil.py", str(tmp_path / "evil.py"), "."):
        with pytest.raises(RsdlError) as e:
            write_files({bad: b"x"}, str(folder))
        assert e.value.param == "OUTPUT" and "outside the model folder" in str(e.value)
    assert sorted(os.listdir(tmp_path)) == ["model"]
