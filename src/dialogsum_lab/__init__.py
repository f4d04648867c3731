"""dialogsum-lab: fine-tune FLAN-T5 on DialogSum three ways and judge it with ROUGE."""

__version__ = "0.1.0"
