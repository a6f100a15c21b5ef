"""Calibrate the de-duplication threshold for an embedder on labelled bullet pairs (spec: do not reuse the
repo's 0.90, which was tuned for all-mpnet-base-v2).

    python -m reasonlab.systems.ace.calibration          # MiniLM: prints the F1-best threshold and the sweep

The pairs are playbook-style rules: duplicates are paraphrases of one rule; non-duplicates include
look-alike rules about different things (the failure mode the spec warns about).
"""

from __future__ import annotations

import json

import numpy as np

from reasonlab.llm.embed import Embedder

__all__ = ["PAIRS", "calibrate", "sweep"]

# (bullet a, bullet b, same rule?)
PAIRS: list[tuple[str, str, bool]] = [
    ("Transfers take amounts in cents: multiply coins by 100.", "Transfer amounts are in cents, so multiply the coins by 100.", True),
    ("Account ids are acct_ plus the lowercase name.", "Write account ids as acct_<name> with the name in lowercase.", True),
    ("Call freeze(acct_<name>) when a card is lost.", "For a lost or stolen card, freeze the account with freeze(acct_<name>).", True),
    ("zeta margin = (revenue - cost) / revenue", "The zeta margin is (revenue - cost) divided by revenue.", True),
    ("Always check units before dividing.", "Before any division, verify that the units match.", True),
    ("Round the final answer to two decimals.", "Give the final number rounded to 2 decimal places.", True),
    ("Use the net income, not the revenue, for EPS.", "EPS uses net income rather than revenue.", True),
    ("Convert percentages to decimals before multiplying.", "Turn percents into decimals before you multiply.", True),
    ("Read the question twice to find which metric is asked.", "Re-read the question to identify the requested metric.", True),
    ("Interest expense is found in the income statement.", "Look for interest expense on the income statement.", True),
    ("Do not cite rules you did not use.", "Only cite the rules you actually applied.", True),
    ("Log in before calling any account API.", "Authenticate first; every account API needs a login.", True),
    ("Dates must be written as YYYY-MM-DD.", "Use the YYYY-MM-DD format for dates.", True),
    ("Negative cash flow means the company spent more than it earned.", "A negative cash flow says spending exceeded earnings.", True),
    ("Paginate: call the list API until it returns an empty page.", "Keep calling the list endpoint page by page until a page is empty.", True),
    ("Quick ratio = (cash + receivables) / current liabilities.", "The quick ratio divides cash plus receivables by current liabilities.", True),
    ("Prefer exact API names from the documentation.", "Use the API names exactly as documented.", True),
    ("If an API returns an error, read the message and fix the argument.", "On an API error, use its message to correct the argument.", True),
    ("Check the balance before making a transfer.", "Verify there are enough funds before transferring.", True),
    ("Tag entity types with their XBRL names.", "Label each entity with its XBRL type name.", True),
    ("Transfers take amounts in cents: multiply coins by 100.", "Refunds take amounts in coins, not cents.", False),
    ("Account ids are acct_ plus the lowercase name.", "Shop ids are shop_ plus the city name.", False),
    ("Call freeze(acct_<name>) when a card is lost.", "Call get_balance(acct_<name>) to read a balance.", False),
    ("zeta margin = (revenue - cost) / revenue", "drift index = debt / (equity + cash)", False),
    ("zeta margin = (revenue - cost) / revenue", "lumen spread = (equity - debt) / assets", False),
    ("kappa yield = (cash + revenue) / assets", "nova cover = cash / cost", False),
    ("Always check units before dividing.", "Always round the final answer.", False),
    ("Round the final answer to two decimals.", "Report percentages without the % sign.", False),
    ("Use the net income, not the revenue, for EPS.", "Use total assets, not equity, for ROA.", False),
    ("Convert percentages to decimals before multiplying.", "Convert thousands to millions before adding.", False),
    ("Interest expense is found in the income statement.", "Inventory is found on the balance sheet.", False),
    ("Log in before calling any account API.", "Log out after the task is complete.", False),
    ("Dates must be written as YYYY-MM-DD.", "Phone numbers must include the country code.", False),
    ("Paginate: call the list API until it returns an empty page.", "Sort the results by date before answering.", False),
    ("Quick ratio = (cash + receivables) / current liabilities.", "Current ratio = current assets / current liabilities.", False),
    ("If an API returns an error, read the message and fix the argument.", "If a task is ambiguous, pick the most recent item.", False),
    ("Check the balance before making a transfer.", "Check the recipient's name before sending a message.", False),
    ("Tag entity types with their XBRL names.", "Tag monetary amounts with their currency.", False),
    ("Spotify playlists are listed with show_playlist_library.", "Venmo friends are listed with show_friends.", False),
    ("Use the supervisor's phone number to find contacts.", "Use the supervisor's email to log in to Gmail.", False),
]


def sweep(embedder: Embedder, pairs: list[tuple[str, str, bool]] = PAIRS) -> list[dict[str, float]]:
    """Precision, recall, F1 of 'cos >= t means duplicate' for t in 0.50..0.98."""
    a = embedder.embed([p[0] for p in pairs])
    b = embedder.embed([p[1] for p in pairs])
    cos = np.sum(a * b, axis=1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    labels = np.array([p[2] for p in pairs])
    rows = []
    for t in np.arange(0.50, 0.99, 0.02):
        predicted = cos >= t
        tp, fp, fn = int(np.sum(predicted & labels)), int(np.sum(predicted & ~labels)), int(np.sum(~predicted & labels))
        precision = tp / max(tp + fp, 1)
        recall = tp / max(tp + fn, 1)
        rows.append({"threshold": round(float(t), 2), "precision": round(precision, 3), "recall": round(recall, 3),
                     "f1": round(2 * precision * recall / max(precision + recall, 1e-9), 3)})
    return rows


def calibrate(embedder: Embedder, pairs: list[tuple[str, str, bool]] = PAIRS) -> dict[str, float]:
    """The best threshold by F1, ties broken toward the higher (safer: fewer wrong merges) threshold."""
    return max(sweep(embedder, pairs), key=lambda r: (r["f1"], r["threshold"]))


if __name__ == "__main__":
    from reasonlab.llm.embed import MiniLMEmbedder

    minilm = MiniLMEmbedder()
    print(json.dumps({"best": calibrate(minilm), "sweep": sweep(minilm)}, indent=1))
