"""What `bench/serving_gpu.py` concludes from its rows: the table it prints and the `summary` of its JSON.

Ratios of the served path are taken over two direct paths, and the target check uses the stricter:
  frozen  the direct path of 2026-12-04 (bench/frozen_direct.py): issue 13's baseline, which no later change to the
          shared code can move;
  fused   the code the server runs (FusedForward), called in-process at the served max batch.
Side by side with the plain-PyTorch figures of ../shared/reference/gpu_anchors.md (same machine kind).
"""

from __future__ import annotations

from typing import Any

# Plain PyTorch towers in bf16 on an H200 (gpu_anchors.md, 2026-11-28): modality -> (items/s eager, compiled, batch)
ANCHORS = {"image": (8085.0, 8615.0, 256), "text": (37469.0, 39823.0, 1024)}
# Issue 13's measurement of the ensembles on the same machine (2026-12-04): best served items/s, and direct eager.
BEFORE = {"image": (2796.0, 6543.0), "text": (19420.0, 25979.0)}
TARGET_SERVED_OVER_DIRECT = 0.9
TARGET_DYNAMIC_BATCHING = 3.0


def _direct(data: dict[str, Any], modality: str, path: str, batch: str = "max") -> float:
    tenants = f"{data['setup']['tenants']} adapters"
    rows = [
        r["items_per_s"]
        for r in data["direct"]
        if r["modality"] == modality and r["path"] == path and r["adapters"] == tenants and r.get("at") == batch
    ]
    return max(rows, default=0.0)


def _served(data: dict[str, Any], modality: str, path: str = "triton", one_row: bool = False) -> list[dict[str, Any]]:
    return [
        r
        for r in data["triton"]
        if r["modality"] == modality and r["path"] == path and r["errors"] == 0 and (r["rows"] == 1) == one_row
    ]


def summary(data: dict[str, Any]) -> dict[str, Any]:
    """Per modality: served over each direct path, per concurrency and best; images: dynamic batching's gain;
    the compiled path against the plain-PyTorch anchors (the stretch target)."""
    out: dict[str, Any] = {"target_served_over_direct": TARGET_SERVED_OVER_DIRECT}
    for modality in ("text", "image"):
        frozen, fused = _direct(data, modality, "direct frozen"), _direct(data, modality, "direct fused")
        reference = max(frozen, fused)
        cells = _served(data, modality)
        row: dict[str, Any] = {
            "direct_frozen": frozen,
            "direct_fused": fused,
            "direct_fused_at_served_batch": _direct(data, modality, "direct fused", "served"),
            "best_served": max((c["items_per_s"] for c in cells), default=0.0),
            "before_served_and_direct": BEFORE[modality],
        }
        for cell in cells:
            c = cell["concurrency"]
            row[f"served_c{c}"] = cell["items_per_s"]
            if reference:
                row[f"served_over_direct_c{c}"] = round(cell["items_per_s"] / reference, 3)
        if reference and cells:
            row["served_over_frozen"] = round(row["best_served"] / frozen, 3) if frozen else None
            row["served_over_fused"] = round(row["best_served"] / fused, 3) if fused else None
            row["target_met"] = all(
                row[f"served_over_direct_c{c['concurrency']}"] >= TARGET_SERVED_OVER_DIRECT for c in cells
            )
        compiled = _served(data, modality, "triton compiled")
        if compiled:
            best = max(c["items_per_s"] for c in compiled)
            row["served_compiled"] = best
            row["served_compiled_over_plain_pytorch_eager"] = round(best / ANCHORS[modality][0], 3)
        out[modality] = row
    dynamic = _served(data, "image", one_row=True)
    single = _served(data, "image", "triton max batch 1", one_row=True)
    if dynamic and single and single[0]["items_per_s"]:
        out["image_dynamic_batching"] = {
            "dynamic": dynamic[0]["items_per_s"],
            "max_batch_1": single[0]["items_per_s"],
            "ratio": round(dynamic[0]["items_per_s"] / single[0]["items_per_s"], 2),
            "target": TARGET_DYNAMIC_BATCHING,
        }
    return out


def table(data: dict[str, Any]) -> str:
    lines = [
        f"{'path':<26}{'modality':<9}{'adapters':<13}{'at':>7}{'conc':>5}{'items/s':>11}{'vs direct':>10}"
        f"{'p50 ms':>9}{'p99 ms':>9}{'batch':>7}{'gpu %':>7}"
    ]
    for r in data["direct"]:
        lines.append(
            f"{r['path']:<26}{r['modality']:<9}{r['adapters']:<13}{r['batch']:>7}{'':>5}{r['items_per_s']:>11.1f}"
        )
    for r in data["triton"]:
        reference = max(_direct(data, r["modality"], "direct frozen"), _direct(data, r["modality"], "direct fused"))
        ratio = f"{r['items_per_s'] / reference:.2f}x" if reference else ""
        gpu = r.get("gpu", {}).get("util_mean")
        lines.append(
            f"{r['path']:<26}{r['modality']:<9}{str(r['adapters']) + ' adapters':<13}{r['rows']:>7}"
            f"{r['concurrency']:>5}{r['items_per_s']:>11.1f}{ratio:>10}{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}"
            f"{r['trunk_avg_batch_rows']:>7.1f}{'' if gpu is None else f'{gpu:.0f}':>7}"
        )
    return "\n".join(lines)
