"""Write the data of the label-kind examples: `pipelines/data/movies.csv` (multi-label)
and `pipelines/data/houses.csv` (regression). Generated, deterministic (fixed seeds):

    python scripts/make_label_examples.py

movies.csv (400 rows): five numeric facts about a film (``action_scenes``, ``jokes``,
``dialogue``, ``music``, ``year``) and ``genres``, the genres it has with `|` between them
(``Action|Comedy``; one to three of Action, Comedy, Drama, Musical, Thriller): each genre
follows a rule on the facts, with noise, so a small network can learn them.

houses.csv (400 rows): ``area`` (m²), ``rooms``, ``age`` (years), ``distance`` (km to the
centre) and ``price`` in euros (about 100,000 to 700,000): a smooth function of the four
with noise. The target's scale is far from the features', which `scale: standardize`
takes care of.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent.parent / "pipelines" / "data"
ROWS = 400
GENRES = ("Action", "Comedy", "Drama", "Musical", "Thriller")


def movies(rows: int = ROWS) -> tuple[list[str], list[list]]:
    """The header and rows of movies.csv."""
    rng = np.random.default_rng(7)
    action, jokes, dialogue, music = (rng.uniform(0, 10, rows) for _ in range(4))
    year = rng.integers(1960, 2024, rows)
    noise = lambda: rng.normal(0, 1.0, rows)  # noqa: E731
    scores = {"Action": action - 6 + noise(),
              "Comedy": jokes - 6 + noise(),
              "Drama": dialogue - jokes * 0.5 - 3 + noise(),
              "Musical": music - 7 + noise(),
              "Thriller": (action + dialogue) / 2 - 6 + (year > 1995) * 1.0 + noise()}
    body = []
    for i in range(rows):
        present = [g for g in GENRES if scores[g][i] > 0]
        if not present:  # every film has a genre: its most likely one
            present = [max(GENRES, key=lambda g: scores[g][i])]
        body.append([f"{action[i]:.2f}", f"{jokes[i]:.2f}", f"{dialogue[i]:.2f}",
                     f"{music[i]:.2f}", int(year[i]), "|".join(present)])
    return ["action_scenes", "jokes", "dialogue", "music", "year", "genres"], body


def houses(rows: int = ROWS) -> tuple[list[str], list[list]]:
    """The header and rows of houses.csv."""
    rng = np.random.default_rng(11)
    area = rng.uniform(30, 250, rows)
    rooms = np.clip(np.round(area / 30 + rng.normal(0, 0.8, rows)), 1, 9)
    age = rng.uniform(0, 80, rows)
    distance = rng.uniform(0.5, 30, rows)
    price = (60_000 + 2_400 * area + 8_000 * rooms - 900 * age
             + 250_000 * np.exp(-distance / 6) + rng.normal(0, 15_000, rows))
    body = [[f"{area[i]:.1f}", int(rooms[i]), f"{age[i]:.1f}", f"{distance[i]:.2f}",
             f"{price[i]:.0f}"] for i in range(rows)]
    return ["area", "rooms", "age", "distance", "price"], body


def write(name: str, header: list[str], body: list[list]) -> None:
    with open(DATA / name, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(body)
    print(f"wrote {DATA / name} ({len(body)} rows, {(DATA / name).stat().st_size:,} bytes)")


def main() -> None:
    write("movies.csv", *movies())
    write("houses.csv", *houses())


if __name__ == "__main__":
    main()
