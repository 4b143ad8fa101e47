"""hf-spider: which pre-trained model on the Hugging Face Hub should I fine-tune for my dataset?"""

from __future__ import annotations

__version__ = "0.1.0"
