"""Execution statistics per operator, and the text Dataset.stats() prints."""

from __future__ import annotations

from dataclasses import dataclass, field

from ember.data.block import BlockMetadata


@dataclass
class StageStats:
    name: str
    blocks: int = 0
    rows: list[int] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    exec_s: list[float] = field(default_factory=list)

    def record(self, meta: BlockMetadata) -> None:
        self.blocks += 1
        self.rows.append(meta.num_rows)
        self.sizes.append(meta.size_bytes)
        self.exec_s.append(meta.exec_s)


def _spread(values: list[float], unit: str = "") -> str:
    if not values:
        return "n/a"
    total = sum(values)
    return (
        f"{min(values):g}{unit} min, {max(values):g}{unit} max, "
        f"{total / len(values):g}{unit} mean, {total:g}{unit} total"
    )


def format_stats(stages: list[StageStats], wall_s: float) -> str:
    """A summary like Ray Data's: one paragraph per operator, then the dataset's wall time."""
    if not stages:
        return (
            "Dataset has not been executed yet (or its blocks were made in the driver)."
        )
    lines: list[str] = []
    for i, s in enumerate(stages, start=1):
        lines.append(
            f"Operator {i} {s.name}: {s.blocks} tasks executed, {s.blocks} blocks produced"
        )
        lines.append(
            f"* Remote wall time: {_spread([round(x, 6) for x in s.exec_s], 's')}"
        )
        lines.append(
            f"* Output num rows per block: {_spread([float(r) for r in s.rows])}"
        )
        lines.append(
            f"* Output size bytes per block: {_spread([float(b) for b in s.sizes])}"
        )
        lines.append("")
    lines.append(f"Dataset throughput: total wall time {wall_s:.3f}s")
    return "\n".join(lines)
