"""What every benchmark here shares: the version it writes, timing, and store building."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

from promptshelf import FileSystemStorage, Prompt, PromptAnalysis, PromptVersion
from promptshelf.storage.filesystem.index import RACY_NS

TEXT = ("You are a precise assistant. Summarize {{document}} in five bullet points. " * 27)[:2000]
ROUNDS = 3


def make_version(prompt_id: str, version: str, text: str = TEXT) -> PromptVersion:
    """The version every benchmark writes (``text``: a payload of another size)."""
    return PromptVersion(
        prompt_id=prompt_id,
        version=version,
        prompt=Prompt(
            id=prompt_id,
            workflow_id="wf",
            node_id="n",
            node_type="llm",
            text=text,
            variables=["document"],
            extracted_at=datetime(2026, 1, 1),
        ),
        analysis=PromptAnalysis(
            prompt_id=prompt_id,
            overall_score=70,
            clarity_score=70,
            efficiency_score=70,
            analyzed_at=datetime(2026, 1, 1),
        ),
        created_at=datetime(2026, 1, 1),
        metadata={"author": "bench"},
    )


def versions_for(prompts: int, per_prompt: int, major: int = 1) -> Iterator[PromptVersion]:
    for i in range(prompts):
        for minor in range(per_prompt):
            yield make_version(f"p{i:07d}", f"{major}.{minor}.0")


def per_op(fn: Callable[[int], None], count: int) -> float:
    """Median seconds per call of ``fn(i)`` over ``ROUNDS`` rounds of ``count`` calls."""
    results = []
    offset = 0
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for i in range(count):
            fn(offset + i)
        results.append((time.perf_counter() - start) / count)
        offset += count
    return statistics.median(results)


def settle() -> None:
    """Let files age past the racy-timestamp window, as they do in real use."""
    time.sleep(RACY_NS / 1e9 * 2)


def quiesce() -> None:
    """Flush what earlier workloads left dirty, so it is not billed to the next one."""
    os.sync()
    time.sleep(0.5)


def build_store(root: Path, prompts: int, per_prompt: int, sharded: bool = False) -> float:
    """Create a store quickly (non-durable bulk saves); returns seconds taken."""
    start = time.perf_counter()
    store = FileSystemStorage(root, durable=False, enable_sharding=sharded)
    batch: list[PromptVersion] = []
    for version in versions_for(prompts, per_prompt):
        batch.append(version)
        if len(batch) == 5000:
            store.save_versions(batch)
            batch.clear()
    store.save_versions(batch)
    os.sync()
    return time.perf_counter() - start
