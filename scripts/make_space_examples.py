"""Write the Space's bundled examples: a zipped image folder of drawn shapes and a CSV of short reviews.

Both are made here rather than taken from a dataset, so the Space ships no third-party data and the files can be
re-made byte for byte: ``python scripts/make_space_examples.py`` (default folder ``spaces_demo/examples``).

- ``shapes.zip``: ``shapes/<class>/<i>.png``, 3 classes (circle, square, triangle) x 4 images of 32 x 32 pixels, each
  shape in a random colour, size and place (seeded), on a light background.
- ``reviews.csv``: ``text,label``, 3 classes (positive, negative, neutral) x 6 film reviews from fixed templates.
"""

from __future__ import annotations

import argparse
import csv
import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
SHAPES = ("circle", "square", "triangle")
IMAGES_PER_CLASS = 4
SIDE = 32
#: A fixed timestamp for every zip member, so the archive's bytes depend on its content only.
ZIP_DATE = (2024, 1, 1, 0, 0, 0)
REVIEWS = {
    "positive": ("a joy from start to finish", "the cast is wonderful", "I loved every minute"),
    "negative": ("a dull, overlong mess", "the plot makes no sense", "I walked out early"),
    "neutral": ("it is a film about a family", "the story is set in Paris", "it runs for two hours"),
}
SUBJECTS = ("The film", "This movie")


def shape_image(shape: str, rng: np.random.Generator) -> Image.Image:
    """One ``SIDE`` x ``SIDE`` image of ``shape`` in a random colour, size and place."""
    image = Image.new("RGB", (SIDE, SIDE), (240, 240, 235))
    size = int(rng.integers(12, 24))
    x, y = (int(v) for v in rng.integers(2, SIDE - size - 2, size=2))
    colour = tuple(int(c) for c in rng.integers(0, 200, size=3))
    draw = ImageDraw.Draw(image)
    if shape == "circle":
        draw.ellipse((x, y, x + size, y + size), fill=colour)
    elif shape == "square":
        draw.rectangle((x, y, x + size, y + size), fill=colour)
    else:
        draw.polygon([(x + size // 2, y), (x, y + size), (x + size, y + size)], fill=colour)
    return image


def write_shapes_zip(path: Path, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for shape in SHAPES:
            for i in range(IMAGES_PER_CLASS):
                png = io.BytesIO()
                shape_image(shape, rng).save(png, format="PNG")
                archive.writestr(zipfile.ZipInfo(f"shapes/{shape}/{i}.png", ZIP_DATE), png.getvalue())


def write_reviews_csv(path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["text", "label"])
        for label, phrases in REVIEWS.items():
            for subject in SUBJECTS:
                for phrase in phrases:
                    writer.writerow([f"{subject}: {phrase}.", label])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=ROOT / "spaces_demo" / "examples")
    folder = parser.parse_args().folder
    folder.mkdir(parents=True, exist_ok=True)
    write_shapes_zip(folder / "shapes.zip")
    write_reviews_csv(folder / "reviews.csv")
    print(f"wrote {folder / 'shapes.zip'} and {folder / 'reviews.csv'}")


if __name__ == "__main__":
    main()
