"""Stage 2, the identifier: one domain from `DOMAINS` and up to three personas per document.

Paper: GPT-4.1-mini names exactly one domain and a comma-separated list of personas; a document whose domain is
not one of the ten labels is dropped (`unknown-domain`). CPU plan (spec section 9): the domain is the nearest
centroid of sentence embeddings (a short description plus a few example snippets per domain, written for this
project), the personas a seeded pick from a fixed per-domain list (no persona contains a comma: the reference code
splits on commas). `llm_identify` is the paper's identifier for capable endpoints, under a JSON schema whose
domain is an enum and whose personas are an array of at most three strings.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np

from reasonlab.errors import UserError
from reasonlab.llm import LLM, SamplingParams
from reasonlab.llm.embed import Embedder
from reasonlab.systems.webscale_rl import prompts
from reasonlab.systems.webscale_rl.config import DOMAINS, IdentifyConfig
from reasonlab.systems.webscale_rl.records import Record, StageOutput, rejection

__all__ = [
    "DOMAIN_ANCHORS",
    "PERSONAS",
    "DomainClassifier",
    "document_snippet",
    "identify_stage",
    "llm_identify",
    "parse_identity",
    "pick_personas",
]

SNIPPET_CHARS = 1000
IDENTIFY_MAX_TOKENS = 160
PERSONA_CHARS = 80

# per domain: a description first, then example snippets; their normalised mean is the domain's centroid
DOMAIN_ANCHORS: dict[str, tuple[str, ...]] = {
    "Math": (
        "Mathematics: numbers, algebra, geometry, calculus, probability, proofs, theorems and equations.",
        "Let f be continuous on [a, b]. Then there is a point c in the interval where f attains its maximum.",
        "To solve 3x + 7 = 22, subtract 7 from both sides and divide by 3, which gives x = 5.",
        "The probability of rolling two sixes with a pair of fair dice is one in thirty-six.",
    ),
    "Technology & Engineering": (
        "Technology and engineering: hardware, networks, electronics, machines, infrastructure, protocols and "
        "systems design.",
        "The router forwards packets between subnets and keeps a table of routes learned over BGP.",
        "A four-stroke engine completes intake, compression, power and exhaust in two turns of the crankshaft.",
        "Solid-state drives store data in NAND flash cells and wear out after a limited number of write cycles.",
    ),
    "Coding": (
        "Programming and software development: source code, programming languages, libraries, functions, "
        "classes, APIs and their reference documentation.",
        "The function returns a new list sorted in ascending order; pass key= to sort by a computed value and "
        "reverse=True to sort descending.",
        "Raises ValueError if the argument is not a valid integer literal. New in version 3.8.",
        "import json; data = json.loads(text) parses a string into Python dictionaries and lists.",
    ),
    "Social Science": (
        "Social science: history, politics, sociology, law, psychology, anthropology and society.",
        "The treaty ended the war in 1648 and reshaped the balance of power among European states.",
        "Survey respondents with higher incomes reported more trust in local government institutions.",
    ),
    "Natural Science": (
        "Natural science: physics, chemistry, biology, astronomy, geology and ecology.",
        "Photosynthesis converts carbon dioxide and water into glucose and oxygen using light energy.",
        "A neutron star is the collapsed core of a massive star, so dense that a teaspoon weighs a billion tons.",
        "Sodium reacts violently with water, releasing hydrogen gas and forming sodium hydroxide.",
    ),
    "Travel & Lifestyle": (
        "Travel and lifestyle: tourism, destinations, food, cooking, fashion, sports, hobbies and home life.",
        "The old town is best explored on foot; the cathedral opens at nine and the market runs on Saturdays.",
        "Simmer the onions slowly for twenty minutes until golden, then add the garlic and a pinch of salt.",
    ),
    "Commerce & Economics": (
        "Commerce and economics: business, markets, finance, trade, prices, companies and employment.",
        "The central bank raised interest rates by a quarter point to bring inflation back to its target.",
        "Quarterly revenue grew eight percent as the retailer expanded its online sales channel.",
    ),
    "Medicine & Health": (
        "Medicine and health: diseases, symptoms, treatments, drugs, anatomy, nutrition and public health.",
        "Type 2 diabetes is treated first with diet, exercise and metformin; insulin is added if glucose stays "
        "high.",
        "The patient presented with fever and a cough; a chest X-ray showed pneumonia in the lower lobe.",
        "Adults should get at least 150 minutes of moderate aerobic activity each week to lower heart risk.",
    ),
    "Education": (
        "Education: schools, teaching, learning, curricula, exams, universities and study skills.",
        "Students who space their revision over several weeks remember more than those who cram the night "
        "before.",
        "The course has weekly problem sets, a midterm exam and a final project worth forty percent.",
    ),
    "Other": (
        "General topics: entertainment, religion, arts, biographies, announcements and miscellaneous pages.",
        "The band released its third album in the spring and toured across twelve cities.",
        "The festival celebrates the harvest with music, dancing and a procession through the village.",
    ),
}

# who would read a document of each domain to learn something (none contains a comma)
PERSONAS: dict[str, list[str]] = {
    "Math": ["a high school student preparing for a mathematics olympiad",
             "a university lecturer teaching linear algebra", "an actuary checking a probability estimate",
             "a data analyst brushing up on statistics", "a hobbyist who enjoys number puzzles"],
    "Technology & Engineering": ["a network engineer troubleshooting a data center",
                                 "a hardware designer choosing components",
                                 "a systems administrator planning an upgrade",
                                 "a mechanical engineering student", "a technical writer documenting a product",
                                 "a product manager evaluating a platform"],
    "Coding": ["a backend developer maintaining a web service", "a data scientist writing analysis scripts",
               "a computer science student learning Python", "an open source maintainer reviewing patches",
               "a DevOps engineer automating deployments", "a developer porting code to a new Python version"],
    "Social Science": ["a sociology undergraduate writing an essay", "a policy analyst at a think tank",
                       "a journalist researching a historical event", "a high school history teacher",
                       "a political science graduate student"],
    "Natural Science": ["a chemistry student preparing for an exam", "a field biologist surveying wildlife",
                        "an amateur astronomer", "a physics teacher planning a lesson",
                        "a science journalist checking facts"],
    "Travel & Lifestyle": ["a backpacker planning a trip", "a home cook trying a new recipe",
                           "a fitness enthusiast building a training plan", "a travel blogger",
                           "a parent planning a family holiday"],
    "Commerce & Economics": ["a small business owner", "an economics student", "a financial analyst",
                             "a retail investor", "a procurement manager comparing suppliers"],
    "Medicine & Health": ["a nursing student", "a general practitioner", "a pharmacist checking a dosage",
                          "a patient reading about a diagnosis", "a public health researcher"],
    "Education": ["a primary school teacher", "a curriculum designer", "a university admissions officer",
                  "a parent helping with homework", "an education researcher"],
    "Other": ["a curious general reader", "a trivia enthusiast", "a librarian answering a reference question",
              "a quiz show contestant", "a student writing a report"],
}


def document_snippet(document: Record) -> str:
    """What the identifier sees of a document: its title and its first ~1000 characters."""
    text = " ".join(document["text"][:SNIPPET_CHARS * 2].split())[:SNIPPET_CHARS]
    title = document.get("title", "").strip()
    return f"{title}\n{text}" if title else text


class DomainClassifier:
    """Nearest centroid over sentence embeddings of `DOMAIN_ANCHORS`; the margin is the cosine gap between the
    nearest and the second-nearest centroid (small margins are uncertain labels)."""

    def __init__(self, embedder: Embedder, anchors: dict[str, Sequence[str]] | None = None) -> None:
        self.embedder = embedder
        anchors = DOMAIN_ANCHORS if anchors is None else anchors
        self.labels = list(anchors)
        centroids = []
        for label in self.labels:
            vectors = _unit_rows(embedder.embed(list(anchors[label])))
            centroids.append(vectors.mean(axis=0))
        self.centroids = _unit_rows(np.stack(centroids))  # (domains, dim)

    def classify(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        """The nearest domain of each text and its margin over the runner-up."""
        if not texts:
            return []
        scores = _unit_rows(self.embedder.embed(list(texts))) @ self.centroids.T  # (texts, domains)
        order = np.argsort(-scores, axis=1)
        results = []
        for row, ranked in zip(scores, order, strict=True):
            runner_up = float(row[ranked[1]]) if len(ranked) > 1 else 0.0
            results.append((self.labels[int(ranked[0])], float(row[ranked[0]]) - runner_up))
        return results


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)


def pick_personas(doc_id: str, domain: str, k: int, seed: int) -> list[str]:
    """`k` distinct personas of `domain`, the same for the same document, domain and seed.

    >>> pick_personas("a.html", "Coding", 2, 0) == pick_personas("a.html", "Coding", 2, 0)
    True
    """
    if domain not in PERSONAS:
        raise UserError(f"no personas for domain '{domain}': use one of {', '.join(PERSONAS)}")
    choices = PERSONAS[domain]
    return random.Random(f"{seed}:{doc_id}:{domain}").sample(choices, min(k, len(choices)))


def identify_stage(documents: Sequence[Record], config: IdentifyConfig, classifier: DomainClassifier,
                   seed: int, llm: LLM | None = None) -> StageOutput:
    """Stage 2: set `domain`, `domain_margin` and `personas` on each document (in place). A label outside
    `DOMAINS` is rejected as `unknown-domain` (the paper's pass rule); with `config.llm_identifier` the LLM names
    domain and personas, and an unparsable reply is rejected as `identify-parse-error`."""
    output = StageOutput()
    documents = list(documents)
    if config.llm_identifier:
        if llm is None:
            raise UserError("identify.llm_identifier needs an LLM: pass --llm SPEC or set "
                            "identify.llm_identifier=false")
        identities = llm_identify(documents, llm, config.max_personas)
        for document, identity in zip(documents, identities, strict=True):
            if isinstance(identity, str):
                output.rejected.append(rejection(document["doc_id"], "identify", "identify-parse-error", identity))
            else:
                _label(document, identity[0], None, identity[1], output)
        return output
    labels = classifier.classify([document_snippet(document) for document in documents])
    for document, (domain, margin) in zip(documents, labels, strict=True):
        personas = pick_personas(document["doc_id"], domain, config.max_personas, seed) if domain in PERSONAS else []
        _label(document, domain, margin, personas, output)
    return output


def _label(document: Record, domain: str, margin: float | None, personas: list[str], output: StageOutput) -> None:
    if domain not in DOMAINS:
        output.rejected.append(rejection(document["doc_id"], "identify", "unknown-domain", domain[:80]))
        return
    document["domain"] = domain
    document["domain_margin"] = None if margin is None else round(margin, 4)
    document["personas"] = personas
    output.kept.append(document)


def identity_schema(max_personas: int) -> dict:
    """The identifier's reply: one domain from the enum, at most `max_personas` comma-free persona strings."""
    persona = {"type": "string", "minLength": 3, "maxLength": PERSONA_CHARS, "pattern": "^[^,]+$"}
    return {
        "type": "object",
        "properties": {"domain": {"type": "string", "enum": list(DOMAINS)},
                       "personas": {"type": "array", "items": persona, "minItems": 1, "maxItems": max_personas}},
        "required": ["domain", "personas"],
        "additionalProperties": False,
    }


def parse_identity(text: str, max_personas: int) -> tuple[str, list[str]]:
    """A reply as (domain, personas); ValueError when it is not the schema's object. The domain is returned as
    given (the stage rejects labels outside DOMAINS); personas are split at commas, stripped and capped."""
    value = prompts.reply_json(text)
    if not isinstance(value, dict) or set(value) != {"domain", "personas"}:
        raise ValueError(f"expected keys domain and personas, got {sorted(value) if isinstance(value, dict) else value!r}")
    domain, personas = value["domain"], value["personas"]
    if not isinstance(domain, str) or not isinstance(personas, list) or not all(isinstance(p, str) for p in personas):
        raise ValueError("domain must be a string and personas a list of strings")
    names = [part.strip()[:PERSONA_CHARS] for persona in personas for part in persona.split(",") if part.strip()]
    if not names:
        raise ValueError("no persona")
    return domain.strip(), names[:max_personas]


def llm_identify(documents: Sequence[Record], llm: LLM, max_personas: int = 3,
                 temperature: float = 0.0) -> list[tuple[str, list[str]] | str]:
    """The paper's identifier, all documents in one batched call: per document (domain, personas), or the parse
    error as a string."""
    params = SamplingParams(temperature=temperature, max_tokens=IDENTIFY_MAX_TOKENS, logprobs=False,
                            json_schema=identity_schema(max_personas))
    batch = [prompts.render_identify(document_snippet(document), DOMAINS, max_personas) for document in documents]
    results: list[tuple[str, list[str]] | str] = []
    for group in llm.generate(batch, params) if batch else []:
        try:
            results.append(parse_identity(group[0].text, max_personas))
        except (ValueError, TypeError) as error:
            results.append(f"{type(error).__name__}: {str(error)[:160]}")
    return results
