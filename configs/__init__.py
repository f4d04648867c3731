"""The YAML presets, shipped inside the package as `dialogsum_lab.presets` (see pyproject.toml)."""
