"""The miniature model and its card, shipped inside the package as `dialogsum_lab.miniature_data` (pyproject.toml)."""
