"""grocer: a reproducible DVC pipeline for image-classification competitions."""
