"""The engine: GDAL + numpy only, never imports qgis nor TensorFlow."""
