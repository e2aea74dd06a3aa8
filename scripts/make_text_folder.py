"""Write pipelines/data/text_topics/: generated short texts in one sub-folder per topic.

The text example (pipelines/text_topics.yaml) reads a folder laid out as
``keras.utils.text_dataset_from_directory`` expects it: one sub-folder per class, one
``.txt`` file per example. This script writes an offline stand-in for a real one (for
example IMDB's ``aclImdb/train`` with its ``pos`` and ``neg`` folders): 900 short
English-like texts, 300 for each of three topics (``food``, ``space``, ``sport``).

Each text is two or three sentences built from templates whose slots are filled from a
shared pool of filler words, and, for some slots, from the pools of topic words. What
makes a topic learnable but not trivially: a text has 1-3 words of its own topic, and
with some chance 1-2 words of another topic, so that a few texts are ambiguous (a
bag-of-words model gets about 90 %, not 100 %); words that begin the sentences and the
filler are shared by all topics. Deterministic (seeded); the output is committed:

    python scripts/make_text_folder.py
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "pipelines" / "data" / "text_topics"
PER_CLASS, SEED = 300, 13

TOPICS: dict[str, list[str]] = {
    "food": ["soup", "bread", "oven", "recipe", "garlic", "butter", "pasta", "salad", "kitchen",
             "dinner", "flour", "pepper", "onion", "cheese", "baking", "spoon", "sauce", "lunch",
             "tomato", "honey", "chef", "roast", "dessert", "noodles"],
    "space": ["rocket", "orbit", "planet", "comet", "galaxy", "telescope", "moon", "asteroid",
              "launch", "satellite", "astronaut", "crater", "nebula", "gravity", "mars",
              "capsule", "solar", "star", "eclipse", "probe", "cosmos", "meteor", "jupiter",
              "shuttle"],
    "sport": ["goal", "match", "coach", "stadium", "referee", "league", "striker", "tennis",
              "season", "player", "tournament", "score", "keeper", "penalty", "racket", "sprint",
              "marathon", "trophy", "team", "defender", "medal", "football", "innings", "serve"],
}
FILLER = {
    "det": ["the", "a", "this", "that", "our", "their", "every", "one"],
    "adj": ["new", "old", "big", "small", "quiet", "bright", "early", "late", "long", "short",
            "strange", "simple", "famous", "local", "whole", "second", "last", "best"],
    "noun": ["day", "week", "report", "story", "plan", "morning", "evening", "crowd", "town",
             "family", "friend", "picture", "idea", "question", "year", "group", "book",
             "radio", "letter", "time"],
    "verb": ["saw", "liked", "talked about", "waited for", "remembered", "found", "heard about",
             "watched", "described", "wanted", "missed", "shared", "explained", "checked"],
    "adv": ["again", "today", "yesterday", "quickly", "slowly", "together", "at last",
            "once more", "all evening", "after all"],
    "start": ["I think", "She said", "They told us", "We heard", "People say", "It seems",
              "He wrote", "Everyone knows"],
}
# {topic} slots take a word of the text's topic (or, for the noise words, of another)
TEMPLATES = [
    "{start} {det} {adj} {topic} was {adv}.",
    "{start} {det} {noun} {verb} {det} {topic} {adv}.",
    "{det} {adj} {noun} {verb} the {topic}.",
    "{start} that {det} {noun} {verb} {det} {adj} {noun} {adv}.",
    "{det} {topic} and {det} {noun} were {adj} {adv}.",
    "{start} {det} {adj} {noun} {verb} {det} {noun}.",
]


def sentence(rng: np.random.Generator, template: str, topic_words: list[str]) -> str:
    """Fill `template`; each {topic} slot takes the next of `topic_words` (filler if none)."""
    words = []
    for piece in template.split(" "):
        slot = piece.strip("{}.")
        if slot == "topic":
            word = topic_words.pop() if topic_words else str(rng.choice(FILLER["noun"]))
        elif slot in FILLER:
            word = str(rng.choice(FILLER[slot]))
        else:
            word = slot
        words.append(word + ("." if piece.endswith(".") else ""))
    text = " ".join(words)
    return text[0].upper() + text[1:]


def text(rng: np.random.Generator, topic: str) -> str:
    """Two or three sentences with 1-3 words of `topic` and sometimes 1-2 of another."""
    own = list(rng.choice(TOPICS[topic], rng.integers(2, 5)))
    others = [name for name in TOPICS if name != topic]
    noise = (list(rng.choice(TOPICS[str(rng.choice(others))], rng.integers(1, 3)))
             if rng.random() < 0.45 else [])
    words = [str(w) for w in own + noise]
    rng.shuffle(words)
    templates = [TEMPLATES[i] for i in rng.choice(len(TEMPLATES), rng.integers(2, 4),
                                                  replace=False)]
    slots = sum(t.count("{topic}") for t in templates)
    while slots < len(words):  # room for every topic word
        templates.append(TEMPLATES[0])
        slots += 1
    return " ".join(sentence(rng, t, words) for t in templates) + "\n"


def main() -> None:
    rng = np.random.default_rng(SEED)
    if OUT.exists():
        shutil.rmtree(OUT)
    total = 0
    for topic in TOPICS:
        (OUT / topic).mkdir(parents=True)
    for index in range(PER_CLASS):
        for topic in TOPICS:  # interleaved: each topic's texts come from the whole stream
            path = OUT / topic / f"{index:04d}.txt"
            path.write_text(text(rng, topic), "utf-8")
            total += path.stat().st_size
    print(f"wrote {OUT}: {PER_CLASS * len(TOPICS)} files in {len(TOPICS)} folders, "
          f"{total:,} bytes")


if __name__ == "__main__":
    main()
