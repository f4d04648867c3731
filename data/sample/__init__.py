"""The sample data, shipped inside the package as `dialogsum_lab.sample_data` (see pyproject.toml)."""
