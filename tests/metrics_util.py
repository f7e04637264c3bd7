"""Read a /metrics page the way Prometheus would."""
from __future__ import annotations

import requests
from prometheus_client.parser import text_string_to_metric_families


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = requests.get(url, timeout=10).text
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    """The sum of every series of ``name`` whose labels include ``labels``."""
    total, found = 0.0, False
    for (sample_name, sample_labels), sample_value in samples.items():
        if sample_name == name and set(labels.items()) <= set(sample_labels):
            total += sample_value
            found = True
    if not found:
        raise KeyError(f"{name} {labels} not exported")
    return total
