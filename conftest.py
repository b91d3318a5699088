"""Root conftest: its presence puts the repository root on sys.path, so the top-level packages
(models, metrics, videos, engine, reports) import exactly as they do when the pipeline runs."""
