"""A tour of promptshelf on the embedded store ``./promptshelf-data``.

Each run plays one round of an optimization loop over three workflow nodes:
the first run records baselines, later runs record optimized versions, then
the tour prints a history, a diff, a rollback and the best version. Run it
as often as you like; every run adds versions and loses none.
"""

from __future__ import annotations

import os
import sys

from promptshelf import (
    FileSystemStorage,
    OptimizationResult,
    OptimizationStrategy,
    Prompt,
    PromptAnalysis,
    VersionManager,
)

NODES = {
    "wf_001_llm_1": "You are a helpful assistant. Summarize: {{document}}",
    "wf_001_llm_2": "Translate {{text}} into French.",
    "wf_002_classifier": "Classify the ticket {{ticket}} as bug, feature or question.",
}
REFINEMENTS = [
    ("\n\n## Format\nAnswer in at most five bullet points.", OptimizationStrategy.STRUCTURE_FOCUS),
    ("\nBe precise and name your sources.", OptimizationStrategy.CLARITY_FOCUS),
    ("\nKeep it short.", OptimizationStrategy.EFFICIENCY_FOCUS),
]


def analyse(prompt_id: str, text: str) -> PromptAnalysis:
    """A stand-in analyser: longer, more structured prompts score higher."""
    structure = text.count("\n") * 4 + text.count("##") * 6
    score = min(95.0, 55.0 + structure + len(text) / 40)
    return PromptAnalysis(
        prompt_id=prompt_id,
        overall_score=round(score, 1),
        clarity_score=round(min(100.0, score + 3), 1),
        efficiency_score=round(max(0.0, 90 - len(text) / 10), 1),
        metadata={"token_count": len(text.split())},
    )


def one_round(manager: VersionManager) -> None:
    for prompt_id, baseline in NODES.items():
        workflow_id, node_id = prompt_id[:6], prompt_id[7:]  # "wf_001" + "llm_1"
        history = manager.get_version_history(prompt_id)
        if not history:
            prompt = Prompt(
                id=prompt_id,
                workflow_id=workflow_id,
                node_id=node_id,
                node_type="llm",
                text=baseline,
                variables=[baseline.split("{{")[1].split("}}")[0]],
            )
            created = manager.create_version(prompt, analyse(prompt_id, baseline))
        else:
            latest = history[-1]
            addition, strategy = REFINEMENTS[len(history) % len(REFINEMENTS)]
            text = latest.prompt.text + addition
            prompt = latest.prompt.model_copy(update={"text": text})
            analysis = analyse(prompt_id, text)
            result = OptimizationResult(
                prompt_id=prompt_id,
                original_prompt=latest.prompt.text,
                optimized_prompt=text,
                strategy=strategy,
                confidence=0.8,
                changes=[f"appended {addition.strip()!r}"],
                improvement_score=analysis.overall_score - latest.analysis.overall_score,
            )
            created = manager.create_version(
                prompt, analysis, result, parent_version=latest.version
            )
        print(f"  saved {prompt_id} {created.version} (score {created.analysis.overall_score})")


def main() -> int:
    store_dir = os.environ.get("PROMPTSHELF_DATA", "./promptshelf-data")
    with FileSystemStorage(store_dir) as storage:
        manager = VersionManager(storage)
        print(f"store: {os.path.abspath(store_dir)}")
        print("one optimization round:")
        one_round(manager)

        prompt_id = "wf_001_llm_1"
        history = manager.get_version_history(prompt_id)
        print(f"\nhistory of {prompt_id}:")
        for v in history:
            print(
                f"  {v.version:>8}  score {v.analysis.overall_score:5.1f}  "
                f"parent {v.parent_version or '-':>8}  author {v.metadata.get('author')}"
            )

        if len(history) >= 2:
            first, last = history[0].version, history[-1].version
            comparison = manager.compare_versions(prompt_id, first, last)
            print(
                f"\ndiff {first} -> {last} (score {comparison['improvement']:+.1f}, "
                f"similarity {comparison['text_diff']['similarity']:.2f}):"
            )
            for line in comparison["text_diff"]["unified_diff"]:
                print(f"  {line}")
            rolled = manager.rollback(prompt_id, first)
            print(
                f"\nrollback to {first}: new version {rolled.version}, metadata {rolled.metadata}"
            )

        best = manager.get_best_version(prompt_id)
        print(
            f"\nbest version of {prompt_id}: {best.version} (score {best.analysis.overall_score})"
        )
        stats = storage.get_storage_stats()
        print(
            f"store holds {stats['total_prompts']} prompts, {stats['total_versions']} versions, "
            f"{stats['total_size_bytes']} bytes"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
