"""Classical classifiers on pixel or deep features (scikit-learn)."""
