"""Classification benchmark: rsdl against OTB 8.1's ImageClassifier, same forest size.

    PYTHONPATH=build/deps:. /usr/bin/python3 bench/classify.py [--quick]

Both random forests are trained on the same sample points of the Landsat scene (100
trees, depth at most 10), then classify a 4 x 4 mosaic of the scene (16 Mpx; --quick:
the scene itself) into a uint8 map. Wall times include start-up on both sides (a fresh
Python process for rsdl, otbcli_ImageClassifier for OTB). Prints figures and the ratio;
asserts nothing.
"""
import argparse
import os
import shutil
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.sampling import child, run  # noqa: E402
from bench.serve import LANDSAT, mosaic_vrt  # noqa: E402

TRAIN = """
import sys
from rsdl_qgis.api import TrainClassifierJob, train_classifier
train_classifier(TrainClassifierJob(sys.argv[1], sys.argv[2], 'code', sys.argv[3], 'rf',
                                    {'trees': 100, 'max_depth': 10}, samples=100000,
                                    valid_fraction=0.0))
"""
CLASSIFY = """
import sys
from rsdl_qgis.api import ClassifyJob, classify
classify(ClassifyJob(sys.argv[1], sys.argv[2], sys.argv[3]))
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    from rsdl_qgis.api import SelectionJob, sample_selection
    from tests.polygons import rotated_polygons, spectral_classes
    tmp = tempfile.mkdtemp(prefix="rsdl-bench-classify-")
    try:
        polys = spectral_classes(LANDSAT, rotated_polygons(LANDSAT, os.path.join(tmp, "p.gpkg"),
                                                           2000, seed=4))
        points = os.path.join(tmp, "train.gpkg")
        sample_selection(SelectionJob(LANDSAT, points, vector=polys, field="code",
                                      strategy="constant", samples=2000, sampler="random", valid_fraction=0))
        image = LANDSAT
        if not args.quick:
            image = os.path.join(tmp, "mosaic.vrt")
            mosaic_vrt(LANDSAT, image, 4, 4)
        from osgeo import gdal
        ds = gdal.Open(image)
        mpx = ds.RasterXSize * ds.RasterYSize / 1e6
        ds = None
        otb_model = os.path.join(tmp, "otb.yml")
        run(["otbcli_TrainImagesClassifier", "-io.il", LANDSAT, "-io.vd", points,
             "-sample.vfn", "code", "-sample.mt", "-1", "-sample.mv", "-1", "-sample.vtr", "0",
             "-classifier", "rf", "-classifier.rf.max", "10", "-classifier.rf.nbtrees", "100",
             "-io.out", otb_model])
        rsdl_model = os.path.join(tmp, "rf.rsdlc")
        child(TRAIN, LANDSAT, points, rsdl_model)
        t_otb, _ = run(["otbcli_ImageClassifier", "-in", image, "-model", otb_model,
                        "-out", os.path.join(tmp, "otb.tif"), "uint8"])
        t_rsdl, _ = child(CLASSIFY, image, rsdl_model, os.path.join(tmp, "rsdl.tif"))
        print(f"image {mpx:.1f} Mpx, random forest 100 trees, depth <= 10, 3 features")
        print(f"OTB ImageClassifier {t_otb:.1f} s ({mpx / t_otb:.2f} Mpx/s); rsdl:classify "
              f"{t_rsdl:.1f} s ({mpx / t_rsdl:.2f} Mpx/s); speed ratio rsdl/OTB "
              f"{t_otb / t_rsdl:.2f} (goal >= 1)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
